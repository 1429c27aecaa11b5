//! Rule evaluation throughput: file events per second through the default rules, with
//! and without 200 extra user rules, and with alert serialisation.
//!
//! Run with `cargo bench -p rules --bench evaluate [-- EVENTS]`. It prints one
//! `key=value` line per figure, on one thread.

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use rules::ruleset::DEFAULT_FILES;
use rules::{Agent, Event, FileAttributes, FileEvent, FileEventKind, MispMatch, Ruleset, State};

/// 200 user rules in the style of site rules: path and hash conditions under the
/// default file rules.
fn user_rules() -> String {
    let mut xml = String::from("<group name=\"local,\">\n");
    for i in 0..200 {
        let parent = 111001 + (i % 3);
        xml.push_str(&format!(
            "<rule id=\"{}\" level=\"{}\">\n<if_sid>{parent}</if_sid>\n\
             <field name=\"file\">^/srv/app{i}/\\w+\\.bin$</field>\n\
             <field name=\"sha256\" type=\"pcre2\">^[0-9a-f]{{64}}$</field>\n\
             <description>App {i} file $(file)</description>\n</rule>\n",
            100_000 + i,
            3 + i % 10
        ));
    }
    xml.push_str("</group>\n");
    xml
}

fn event(i: usize) -> Event {
    let kind = match i % 20 {
        0 => FileEventKind::Deleted,
        1..=4 => FileEventKind::Modified,
        _ => FileEventKind::Added,
    };
    let attrs = FileAttributes {
        size: Some((i % 5000).to_string()),
        md5: Some(format!("{:032x}", i)),
        sha256: Some(format!("{:064x}", i * 7919)),
        ..Default::default()
    };
    let file = FileEvent {
        path: format!("/srv/app{}/file{}.bin", i % 250, i),
        kind: Some(kind),
        mode: Some("realtime".into()),
        after: attrs.clone(),
        before: attrs,
        ..Default::default()
    };
    let agent = Agent {
        id: format!("{:03}", i % 50),
        name: format!("host{}", i % 50),
        ip: None,
    };
    let event = Event::new(file, agent, "syscheck");
    if i % 20 == 7 {
        return event.with_misp(MispMatch {
            event_id: Some("42".into()),
            attribute_id: Some("4242".into()),
            attribute_type: Some("sha256".into()),
            value: Some(format!("{:064x}", i * 7919)),
            ..Default::default()
        });
    }
    event
}

fn measure(name: &str, ruleset: &Ruleset, events: &[Event], serialise: bool) {
    let mut state = State::new("bench");
    let start = Instant::now();
    let mut bytes = 0usize;
    for (i, e) in events.iter().enumerate() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + i as u64);
        let outcome = ruleset.evaluate(&mut state, e, now);
        if serialise {
            if let Some(alert) = outcome.alert {
                bytes += alert.to_json_line().len();
            }
        } else {
            black_box(outcome);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name}_events_per_sec={:.0}", events.len() as f64 / secs);
    if serialise {
        println!(
            "{name}_alert_bytes_per_event={:.0}",
            bytes as f64 / events.len() as f64
        );
    }
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300_000);
    println!("events={count}");
    let events: Vec<Event> = (0..count).map(event).collect();

    let defaults = Ruleset::load(true, &[]).expect("default rules load");
    measure("default_rules_evaluate", &defaults, &events, false);
    measure("default_rules_evaluate_and_json", &defaults, &events, true);

    let mut files: Vec<(String, String)> = DEFAULT_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    files.push(("local_rules.xml".into(), user_rules()));
    let extended = Ruleset::from_sources(&files).expect("bench rules load");
    measure("with_200_user_rules_evaluate", &extended, &events, false);
    measure(
        "with_200_user_rules_evaluate_and_json",
        &extended,
        &events,
        true,
    );
}
