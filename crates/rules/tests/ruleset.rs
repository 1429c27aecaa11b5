//! Rule tree building and evaluation order, through the public API.

use std::time::{Duration, UNIX_EPOCH};

use rules::{Agent, Event, FileEvent, FileEventKind, Ruleset, State, TraceStep};

fn load(xml: &str) -> Result<Ruleset, rules::Error> {
    Ruleset::from_sources(&[("t.xml".to_string(), xml.to_string())])
}

fn added(path: &str, agent: &str) -> Event {
    let file = FileEvent {
        path: path.into(),
        kind: Some(FileEventKind::Added),
        mode: Some("realtime".into()),
        ..Default::default()
    };
    let agent = Agent {
        id: agent.into(),
        name: format!("host-{agent}"),
        ip: None,
    };
    Event::new(file, agent, "syscheck")
}

const BASE: &str = r#"<group name="syscheck,">
  <rule id="10" level="5">
    <decoded_as>syscheck_new_entry</decoded_as>
    <description>added</description>
    <group>added_files,</group>
  </rule>
"#;

#[test]
fn if_sid_cycle_is_rejected() {
    let xml = format!(
        "{BASE}<rule id=\"20\" level=\"3\"><if_sid>30</if_sid><description>a</description></rule>\n\
         <rule id=\"30\" level=\"3\"><if_sid>20</if_sid><description>b</description></rule></group>"
    );
    let err = load(&xml).unwrap_err();
    assert!(err.to_string().contains("own ancestor"), "{err}");
}

#[test]
fn self_parent_is_rejected() {
    let xml = format!(
        "{BASE}<rule id=\"20\" level=\"3\"><if_sid>20</if_sid><description>a</description></rule></group>"
    );
    let err = load(&xml).unwrap_err();
    assert!(err.to_string().contains("names itself"), "{err}");
}

#[test]
fn deep_chain_is_rejected() {
    let mut xml = String::from(BASE);
    for id in 11..=80 {
        xml.push_str(&format!(
            "<rule id=\"{id}\" level=\"3\"><if_sid>{}</if_sid><description>d</description></rule>\n",
            id - 1
        ));
    }
    xml.push_str("</group>");
    let err = load(&xml).unwrap_err();
    assert!(err.to_string().contains("chain of more than"), "{err}");
}

#[test]
fn siblings_try_level_zero_then_higher_levels() {
    let xml = format!(
        "{BASE}<rule id=\"21\" level=\"4\"><if_sid>10</if_sid><description>low</description></rule>\n\
         <rule id=\"22\" level=\"9\"><if_sid>10</if_sid><description>high</description></rule>\n\
         <rule id=\"23\" level=\"0\"><if_sid>10</if_sid><field name=\"file\">^/ignored</field><description>quiet</description></rule></group>"
    );
    let ruleset = load(&xml).unwrap();
    let mut state = State::new("m");
    let outcome = ruleset.evaluate_traced(&mut state, &added("/x", "001"), UNIX_EPOCH);
    let tried: Vec<u32> = outcome
        .trace
        .iter()
        .filter_map(|s| match s {
            TraceStep::Trying { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(tried, vec![10, 23, 22]);
    assert_eq!(outcome.rule_id, Some(22));
    assert_eq!(outcome.chain, vec![10, 22]);
}

#[test]
fn level_zero_rule_silences_event() {
    let xml = format!(
        "{BASE}<rule id=\"23\" level=\"0\"><if_sid>10</if_sid><description>quiet</description></rule></group>"
    );
    let ruleset = load(&xml).unwrap();
    let mut state = State::new("m");
    let outcome = ruleset.evaluate(&mut state, &added("/x", "001"), UNIX_EPOCH);
    assert_eq!(outcome.rule_id, Some(23));
    assert!(outcome.alert.is_none());
    assert_eq!(state.fired_times(23), 0);
}

#[test]
fn if_matched_group_counts_per_agent() {
    let xml = format!(
        "{BASE}<rule id=\"40\" level=\"10\" frequency=\"2\" timeframe=\"30\">\n\
         <if_matched_group>added_files</if_matched_group><description>two adds</description></rule></group>"
    );
    let ruleset = load(&xml).unwrap();
    let mut state = State::new("m");
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_000 + s);

    let first = ruleset.evaluate(&mut state, &added("/a", "001"), at(0));
    assert_eq!(first.rule_id, Some(10));
    let other_agent = ruleset.evaluate(&mut state, &added("/b", "002"), at(1));
    assert_eq!(other_agent.rule_id, Some(10));
    let second = ruleset.evaluate(&mut state, &added("/c", "001"), at(2));
    assert_eq!(second.rule_id, Some(40));
    let alert = second.alert.expect("level 10 alerts");
    assert_eq!(alert.rule.frequency, Some(2));
    let late = ruleset.evaluate(&mut state, &added("/d", "002"), at(60));
    assert_eq!(
        late.rule_id,
        Some(10),
        "the first event of agent 002 is outside the timeframe"
    );
}

#[test]
fn alert_ids_count_up_within_state() {
    let ruleset = load(&format!("{BASE}</group>")).unwrap();
    let mut state = State::new("m");
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let a = ruleset
        .evaluate(&mut state, &added("/a", "001"), at)
        .alert
        .unwrap();
    let b = ruleset
        .evaluate(&mut state, &added("/b", "001"), at)
        .alert
        .unwrap();
    assert_eq!(a.id, "1700000000.1");
    assert_eq!(b.id, "1700000000.2");
    assert_eq!(b.rule.fired_times, Some(2));
}

#[test]
fn user_folder_loads_sorted_xml_files() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: u32| {
        format!(
            "<group name=\"local,\"><rule id=\"{id}\" level=\"6\"><if_sid>111001</if_sid>\
             <field name=\"file\">^/srv/</field><description>r{id}</description></rule></group>"
        )
    };
    std::fs::write(dir.path().join("b.xml"), rule(100002)).unwrap();
    std::fs::write(dir.path().join("a.xml"), rule(100001)).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule file").unwrap();
    let ruleset = Ruleset::load(true, &[dir.path().to_path_buf()]).unwrap();
    assert!(ruleset.rule(100001).is_some());
    assert!(ruleset.rule(100002).is_some());
    let mut state = State::new("m");
    let outcome = ruleset.evaluate(&mut state, &added("/srv/x", "001"), UNIX_EPOCH);
    assert_eq!(
        outcome.rule_id,
        Some(100001),
        "equal levels keep load order"
    );
}

#[test]
fn missing_user_folder_is_an_error() {
    let err = Ruleset::load(true, &["/nonexistent/rules".into()]).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/rules"), "{err}");
}

#[test]
fn owned_evaluation_builds_the_same_alert() {
    let ruleset = Ruleset::load(true, &[]).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let event = added("/tmp/dropper.sh", "001");

    let borrowed = ruleset.evaluate(&mut State::new("m"), &event, now);
    let owned = ruleset.evaluate_owned(&mut State::new("m"), event, now);

    assert_eq!(borrowed.rule_id, owned.rule_id);
    assert_eq!(borrowed.chain, owned.chain);
    let (borrowed, owned) = (borrowed.alert.unwrap(), owned.alert.unwrap());
    assert_eq!(borrowed, owned);
    assert_eq!(borrowed.to_json_line(), owned.to_json_line());
}
