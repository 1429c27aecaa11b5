//! docs/configuration.md against the real configuration structs: every key they accept
//! has a row, every row names a key they accept, and every TOML example parses.
//!
//! The accepted keys come from the structs themselves. They all reject unknown fields, so
//! parsing a probe key at a table's position fails with serde's list of the table's
//! fields ("unknown field `x`, expected one of `a`, `b`"). A field is a nested table when
//! the same probe one level down yields such a list too.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

const REFERENCE: &str = include_str!("../../../docs/configuration.md");
const SERVER_HEADING: &str = "\n## Server configuration";
const AGENT_HEADING: &str = "\n## Agent configuration";
const PROBE: &str = "unknown_probe_key";

/// One step from the root to a table: `[name]` or `[[name]]`.
#[derive(Clone)]
enum Step {
    Table(String),
    ArrayOfTables(String),
}

/// Returns the fields of the table at `path` in `T`, or `None` when no table with a field
/// list sits there (a value, or a free-form table).
fn fields_at<T: DeserializeOwned>(path: &[Step]) -> Option<Vec<String>> {
    let mut text = String::new();
    let mut dotted = Vec::new();
    for (i, step) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        match step {
            Step::Table(name) => {
                dotted.push(name.clone());
                if last {
                    text.push_str(&format!("[{}]\n", dotted.join(".")));
                }
            }
            Step::ArrayOfTables(name) => {
                dotted.push(name.clone());
                text.push_str(&format!("[[{}]]\n", dotted.join(".")));
            }
        }
    }
    text.push_str(&format!("{PROBE} = 0\n"));
    let error = toml::from_str::<T>(&text).err()?;
    let message = error.message();
    let rest = message.split(&format!("unknown field `{PROBE}`")).nth(1)?;
    let list = rest.lines().next().unwrap_or_default();
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Collects every leaf key of `T` below `path`, as `a.b` with `[]` after arrays of tables.
fn collect_keys<T: DeserializeOwned>(path: &mut Vec<Step>, prefix: &str, keys: &mut Vec<String>) {
    let Some(fields) = fields_at::<T>(path) else {
        return;
    };
    for field in fields {
        let name = format!("{prefix}{field}");
        path.push(Step::Table(field.clone()));
        if fields_at::<T>(path).is_some() {
            collect_keys::<T>(path, &format!("{name}."), keys);
            path.pop();
            continue;
        }
        path.pop();
        path.push(Step::ArrayOfTables(field.clone()));
        if fields_at::<T>(path).is_some() {
            collect_keys::<T>(path, &format!("{name}[]."), keys);
            path.pop();
            continue;
        }
        path.pop();
        keys.push(name);
    }
}

fn keys_of<T: DeserializeOwned>() -> Vec<String> {
    let mut keys = Vec::new();
    collect_keys::<T>(&mut Vec::new(), "", &mut keys);
    keys
}

fn server_keys() -> Vec<String> {
    keys_of::<manager::ServerConfig>()
}

/// Returns the agent's keys. `[manager]` is kept as a free-form table by the agent's own
/// structs and parsed with the link's, so its keys come from there.
fn agent_keys() -> Vec<String> {
    let mut keys: Vec<String> = keys_of::<fim::ConfigFile>()
        .into_iter()
        .filter(|k| k != "manager")
        .collect();
    keys.extend(
        keys_of::<link::ManagerSection>()
            .into_iter()
            .map(|k| format!("manager.{k}")),
    );
    keys
}

/// Returns the part of the reference under `heading`, up to the next `## ` heading.
fn part(heading: &str) -> &'static str {
    let start = REFERENCE
        .find(heading)
        .unwrap_or_else(|| panic!("docs/configuration.md has no `{}` heading", heading.trim()));
    let body = &REFERENCE[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    &body[..end]
}

/// Keys named in the first cell of table rows: "| `key` | ...".
fn documented_keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |"))
        .map(|(key, _)| key.to_string())
        .collect()
}

fn toml_blocks(text: &str) -> Vec<&str> {
    text.split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect()
}

fn check_rows(section: &str, accepted: &[String], documented: &BTreeSet<String>) {
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|k| !documented.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md, {section}: no row for key(s) {missing:?}; add a row \
         \"| `KEY` | type | default | meaning |\""
    );
    let stale: Vec<&String> = documented
        .iter()
        .filter(|k| !accepted.contains(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/configuration.md, {section}: row(s) for key(s) {stale:?} that the \
         configuration no longer accepts"
    );
}

#[test]
fn key_lists_are_found() {
    let server = server_keys();
    assert!(server.contains(&"listen.agents".to_string()), "{server:?}");
    assert!(server.contains(&"syslog.address".to_string()), "{server:?}");
    let agent = agent_keys();
    assert!(
        agent.contains(&"directories[].path".to_string()),
        "{agent:?}"
    );
    assert!(
        agent.contains(&"manager.keepalive_secs".to_string()),
        "{agent:?}"
    );
    assert!(agent.contains(&"output.kind".to_string()), "{agent:?}");
}

#[test]
fn every_server_key_is_documented() {
    let documented = documented_keys(part(SERVER_HEADING));
    check_rows("server configuration", &server_keys(), &documented);
}

#[test]
fn every_agent_key_is_documented() {
    let documented = documented_keys(part(AGENT_HEADING));
    check_rows("agent configuration", &agent_keys(), &documented);
}

#[test]
fn server_examples_parse() {
    let blocks = toml_blocks(part(SERVER_HEADING));
    assert!(!blocks.is_empty(), "no ```toml block in the server part");
    for (i, block) in blocks.iter().enumerate() {
        let config: manager::ServerConfig = toml::from_str(block)
            .unwrap_or_else(|e| panic!("server example {} does not parse: {e}\n{block}", i + 1));
        let problems = config.problems();
        assert!(
            problems.is_empty(),
            "server example {} is invalid: {problems:?}\n{block}",
            i + 1
        );
    }
}

#[test]
fn agent_examples_parse() {
    let blocks = toml_blocks(part(AGENT_HEADING));
    assert!(!blocks.is_empty(), "no ```toml block in the agent part");
    for (i, block) in blocks.iter().enumerate() {
        let mut file: fim::ConfigFile = toml::from_str(block)
            .unwrap_or_else(|e| panic!("agent example {} does not parse: {e}\n{block}", i + 1));
        if let Some(table) = file.manager.take() {
            let section: link::ManagerSection = toml::Value::Table(table)
                .try_into()
                .unwrap_or_else(|e| panic!("agent example {}: invalid [manager]: {e}", i + 1));
            let problems = section.problems();
            assert!(
                problems.is_empty(),
                "agent example {}: invalid [manager]: {problems:?}",
                i + 1
            );
        }
        if let Err(e) = file.validate(std::path::Path::new("/var/lib/iocwatch-agent")) {
            panic!("agent example {} is invalid: {e}\n{block}", i + 1);
        }
    }
}
