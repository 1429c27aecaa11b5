//! Rule behaviour tests written as data: each folder of `tests/cases/` is one case.
//!
//! A case folder holds:
//! * `rules.xml` (optional): user rules loaded after the default rules;
//! * `case.json` (optional): `{"defaults": false}` to load only `rules.xml`;
//! * `events.jsonl`: one event document per line, as `iocwatch rules test` reads them,
//!   with `"time"` (seconds since the epoch) giving the event's clock;
//! * `expected.jsonl`: for each event, the alert document or `null` for no alert;
//! * or `expected-error.txt` instead of events: lines the load error must contain.
//!
//! Set `BLESS=1` to rewrite `expected.jsonl` from the current output, then review the
//! diff before committing it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use rules::{Event, Ruleset, State};
use serde_json::Value;

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/cases exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn load_ruleset(dir: &Path) -> Result<Ruleset, rules::Error> {
    let defaults = fs::read_to_string(dir.join("case.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("defaults").and_then(Value::as_bool))
        .unwrap_or(true);
    let user_rules = dir.join("rules.xml");
    let user_dirs: Vec<PathBuf> = if user_rules.exists() {
        vec![user_rules]
    } else {
        Vec::new()
    };
    Ruleset::load(defaults, &user_dirs)
}

fn run_error_case(dir: &Path, expected: &str) -> Result<(), String> {
    let err = match load_ruleset(dir) {
        Ok(_) => return Err("rules loaded, but an error was expected".into()),
        Err(err) => err.to_string(),
    };
    for needle in expected.lines().filter(|l| !l.trim().is_empty()) {
        if !err.contains(needle.trim()) {
            return Err(format!(
                "error `{err}` does not contain `{}`",
                needle.trim()
            ));
        }
    }
    Ok(())
}

fn event_time(doc: &Value) -> std::time::SystemTime {
    let secs = doc
        .get("time")
        .and_then(Value::as_f64)
        .unwrap_or(1_700_000_000.0);
    UNIX_EPOCH + Duration::from_secs_f64(secs)
}

fn actual_outputs(dir: &Path) -> Result<Vec<Value>, String> {
    let ruleset = load_ruleset(dir).map_err(|e| format!("rules failed to load: {e}"))?;
    let mut state = State::new("iocwatch-test");
    let events =
        fs::read_to_string(dir.join("events.jsonl")).map_err(|e| format!("events.jsonl: {e}"))?;
    let mut outputs = Vec::new();
    for (n, line) in events
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let doc: Value =
            serde_json::from_str(line).map_err(|e| format!("events.jsonl line {}: {e}", n + 1))?;
        let event =
            Event::from_json(&doc).map_err(|e| format!("events.jsonl line {}: {e}", n + 1))?;
        let outcome = ruleset.evaluate(&mut state, &event, event_time(&doc));
        outputs.push(outcome.alert.map_or(Value::Null, |a| a.to_json()));
    }
    Ok(outputs)
}

fn run_case(dir: &Path) -> Result<(), String> {
    if let Ok(expected) = fs::read_to_string(dir.join("expected-error.txt")) {
        return run_error_case(dir, &expected);
    }
    let actual = actual_outputs(dir)?;
    let expected_path = dir.join("expected.jsonl");
    if std::env::var_os("BLESS").is_some() {
        let text: String = actual.iter().map(|v| format!("{v}\n")).collect();
        fs::write(&expected_path, text).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let text = fs::read_to_string(&expected_path).map_err(|e| format!("expected.jsonl: {e}"))?;
    let expected: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("expected.jsonl: {e}")))
        .collect::<Result<_, _>>()?;
    if expected.len() != actual.len() {
        return Err(format!(
            "{} events but {} expected outputs",
            actual.len(),
            expected.len()
        ));
    }
    for (i, (want, got)) in expected.iter().zip(&actual).enumerate() {
        // Compare the text so that key order, which Wazuh tools rely on, counts too.
        let (want_text, got_text) = (want.to_string(), got.to_string());
        if want_text != got_text {
            return Err(format!(
                "event {}:\n  expected {want_text}\n  actual   {got_text}",
                i + 1
            ));
        }
    }
    Ok(())
}

#[test]
fn rule_behaviour_cases() {
    let dirs = case_dirs();
    assert!(!dirs.is_empty(), "no case folders found");
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            run_case(dir).err().map(|e| format!("case `{name}`: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
