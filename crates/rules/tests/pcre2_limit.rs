//! A PCRE2 field pattern that exceeds the backtracking limit: no match, counted, and the
//! evaluation goes on.

use std::time::UNIX_EPOCH;

use rules::{Agent, Event, FileEvent, FileEventKind, Pattern, PatternType, Ruleset, State};

/// Exponential on a long run of `a` without a `c`; the look-ahead keeps it on
/// fancy-regex's backtracking engine.
const CATASTROPHIC: &str = "^(a|a)*(?=c)";

fn added(path: &str) -> Event {
    let file = FileEvent {
        path: path.into(),
        kind: Some(FileEventKind::Added),
        mode: Some("realtime".into()),
        ..Default::default()
    };
    let agent = Agent {
        id: "001".into(),
        name: "host-001".into(),
        ip: None,
    };
    Event::new(file, agent, "syscheck")
}

#[test]
fn pattern_reports_aborted_match() {
    let pattern = Pattern::compile(CATASTROPHIC, PatternType::Pcre2, false).unwrap();
    let text = "a".repeat(40);
    assert!(pattern.try_match(&text).is_err());
    assert!(!pattern.is_match(&text));
    assert_eq!(pattern.try_match("aac"), Ok(true));
}

#[test]
fn aborted_match_is_counted_per_event() {
    let xml = format!(
        r#"<group name="syscheck,">
  <rule id="10" level="5">
    <decoded_as>syscheck_new_entry</decoded_as>
    <description>added</description>
  </rule>
  <rule id="11" level="9">
    <if_sid>10</if_sid>
    <field name="file" type="pcre2">{CATASTROPHIC}</field>
    <description>catastrophic</description>
  </rule>
</group>"#
    );
    let ruleset = Ruleset::from_sources(&[("t.xml".to_string(), xml)]).unwrap();
    let mut state = State::new("m");
    let event = added(&"a".repeat(40));

    let before = rules::aborted_pcre2_matches();
    for _ in 0..3 {
        let outcome = ruleset.evaluate(&mut state, &event, UNIX_EPOCH);
        assert_eq!(outcome.rule_id, Some(10), "the aborted rule must not match");
    }
    let counted = rules::aborted_pcre2_matches() - before;
    assert!(
        counted >= 3,
        "expected 3 aborted matches, counted {counted}"
    );
}
