//! Reading a Wazuh 4.x alert: the agent that sent it, the file it names and the digests it carries.
//!
//! Two kinds of alert carry file digests. File integrity (syscheck) alerts put them in
//! `syscheck.md5_after`, `sha1_after` and `sha256_after`. Sysmon events collected from the
//! Windows event channel put them in `data.win.eventdata.hashes` (`hash` for event 15) as
//! `ALG=value` pairs. Every other alert is skipped with a reason.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::hash::{parse_sysmon_hashes, strongest_first, Digest, HashAlgorithm};
use crate::message::INTEGRATION;

/// The agent that reported the event, from the alert's `agent` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// A file the alert names, with its digests in lookup order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileObservation {
    pub path: String,
    /// `added` or `modified` for file integrity events, `sysmon_event<N>` for Sysmon.
    pub event: String,
    pub digests: Vec<Digest>,
}

/// The reason an alert has nothing to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Neither a `syscheck` object nor Sysmon hashes.
    NotFileEvent,
    /// An alert raised from this integration's own message.
    OwnMessage,
    /// A Windows registry entry: its digests are of a registry value, not of a file.
    Registry,
    /// A file integrity event other than `added` or `modified`.
    Event(String),
    /// A field the lookup needs is absent or not text.
    MissingField(&'static str),
    /// The event names a file but carries no valid MD5, SHA-1 or SHA-256 digest.
    NoDigests,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotFileEvent => f.write_str("not a file integrity or Sysmon event"),
            Skip::OwnMessage => f.write_str("alert raised from an iocwatch message"),
            Skip::Registry => f.write_str("registry entry, not a file"),
            Skip::Event(event) => write!(f, "file event `{event}` is not added or modified"),
            Skip::MissingField(field) => write!(f, "missing field `{field}`"),
            Skip::NoDigests => f.write_str("no valid md5, sha1 or sha256 digest"),
        }
    }
}

/// The parts of one alert that the bridge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: Option<String>,
    pub rule_id: Option<String>,
    pub agent: Option<Agent>,
    pub subject: Result<FileObservation, Skip>,
}

impl Alert {
    /// Reads an alert document. Missing or oddly typed fields never fail the read: they
    /// become `None` or a [`Skip`] reason.
    pub fn from_json(alert: &Value) -> Alert {
        Alert {
            id: text(alert.get("id")),
            rule_id: text(alert.pointer("/rule/id")),
            agent: read_agent(alert.get("agent")),
            subject: read_subject(alert),
        }
    }
}

fn read_agent(agent: Option<&Value>) -> Option<Agent> {
    let agent = agent?;
    Some(Agent {
        id: text(agent.get("id"))?,
        name: text(agent.get("name")).unwrap_or_default(),
        ip: text(agent.get("ip")).filter(|ip| !ip.is_empty()),
    })
}

fn read_subject(alert: &Value) -> Result<FileObservation, Skip> {
    if text(alert.pointer("/data/integration")).as_deref() == Some(INTEGRATION) {
        return Err(Skip::OwnMessage);
    }
    if let Some(syscheck) = alert.get("syscheck").filter(|v| v.is_object()) {
        return read_syscheck(alert, syscheck);
    }
    if let Some(eventdata) = alert
        .pointer("/data/win/eventdata")
        .filter(|v| v.is_object())
    {
        if eventdata.get("hashes").is_some() || eventdata.get("hash").is_some() {
            return read_sysmon(alert, eventdata);
        }
    }
    Err(Skip::NotFileEvent)
}

fn read_syscheck(alert: &Value, syscheck: &Value) -> Result<FileObservation, Skip> {
    let path = text(syscheck.get("path")).ok_or(Skip::MissingField("syscheck.path"))?;
    if is_registry(alert, &path) {
        return Err(Skip::Registry);
    }

    let event = text(syscheck.get("event")).ok_or(Skip::MissingField("syscheck.event"))?;
    if event != "added" && event != "modified" {
        return Err(Skip::Event(event));
    }

    let fields = [
        (HashAlgorithm::Md5, "md5_after"),
        (HashAlgorithm::Sha1, "sha1_after"),
        (HashAlgorithm::Sha256, "sha256_after"),
    ];
    let digests = fields
        .into_iter()
        .filter_map(|(algorithm, field)| {
            let value = text(syscheck.get(field))?;
            Digest::parse(algorithm, &value)
        })
        .collect();
    observation(path, event, strongest_first(digests))
}

/// Registry keys and values are reported through syscheck too, with the `syscheck_registry`
/// group (rules 594-598, 750-752) and a path under a `HKEY_` root.
fn is_registry(alert: &Value, path: &str) -> bool {
    let in_group = alert
        .pointer("/rule/groups")
        .and_then(Value::as_array)
        .is_some_and(|groups| {
            groups
                .iter()
                .any(|g| g.as_str() == Some("syscheck_registry"))
        });
    in_group || path.starts_with("HKEY_")
}

fn read_sysmon(alert: &Value, eventdata: &Value) -> Result<FileObservation, Skip> {
    let hashes = text(eventdata.get("hashes"))
        .or_else(|| text(eventdata.get("hash")))
        .ok_or(Skip::MissingField("data.win.eventdata.hashes"))?;

    // Sysmon names the hashed file in a field that depends on the event: the created
    // stream or deleted file, the loaded image or driver, or the process image.
    let path = ["targetFilename", "imageLoaded", "image"]
        .into_iter()
        .find_map(|field| text(eventdata.get(field)).filter(|p| !p.is_empty()))
        .ok_or(Skip::MissingField("data.win.eventdata.image"))?;

    let event = match text(alert.pointer("/data/win/system/eventID")) {
        Some(id) => format!("sysmon_event{id}"),
        None => "sysmon".to_string(),
    };
    observation(path, event, parse_sysmon_hashes(&hashes))
}

fn observation(path: String, event: String, digests: Vec<Digest>) -> Result<FileObservation, Skip> {
    if digests.is_empty() {
        return Err(Skip::NoDigests);
    }
    Ok(FileObservation {
        path,
        event,
        digests,
    })
}

/// Returns a string or number field as text. Wazuh writes ids as strings, but other
/// producers of the same format write numbers.
pub(crate) fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syscheck_digests_come_strongest_first() {
        let alert = json!({
            "id": "1.2", "rule": {"id": "554"},
            "agent": {"id": "010", "name": "Ubuntu", "ip": "10.0.2.15"},
            "syscheck": {"path": "/tmp/a", "event": "added",
                "md5_after": "d41d8cd98f00b204e9800998ecf8427e",
                "sha256_after": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
        });
        let alert = Alert::from_json(&alert);
        let file = alert.subject.expect("file event");
        assert_eq!(file.digests[0].algorithm, HashAlgorithm::Sha256);
        assert_eq!(file.digests[1].algorithm, HashAlgorithm::Md5);
        assert_eq!(alert.rule_id.as_deref(), Some("554"));
        assert_eq!(alert.agent.expect("agent").ip.as_deref(), Some("10.0.2.15"));
    }

    #[test]
    fn deleted_and_registry_events_are_skipped() {
        let deleted = json!({"syscheck": {"path": "/tmp/a", "event": "deleted"}});
        assert_eq!(
            Alert::from_json(&deleted).subject,
            Err(Skip::Event("deleted".into()))
        );
        let registry =
            json!({"syscheck": {"path": "HKEY_LOCAL_MACHINE\\SOFTWARE\\x", "event": "added"}});
        assert_eq!(Alert::from_json(&registry).subject, Err(Skip::Registry));
    }

    #[test]
    fn odd_types_never_fail() {
        for alert in [
            json!(null),
            json!([]),
            json!({"syscheck": 5}),
            json!({"syscheck": {"path": 7, "event": []}}),
            json!({"data": {"win": {"eventdata": {"hashes": 3}}}}),
            json!({"agent": {"name": "x"}}),
        ] {
            let read = Alert::from_json(&alert);
            assert!(read.subject.is_err(), "{alert}");
        }
    }

    #[test]
    fn own_messages_are_skipped() {
        let alert = json!({"data": {"integration": "iocwatch", "iocwatch": {}}});
        assert_eq!(Alert::from_json(&alert).subject, Err(Skip::OwnMessage));
    }

    #[test]
    fn sysmon_stream_event_uses_target_file() {
        let alert = json!({"data": {"win": {
            "system": {"eventID": "15"},
            "eventdata": {"image": "C:\\\\a.exe", "targetFilename": "C:\\\\b.zip:Zone.Identifier",
                          "hash": "MD5=0639B0A6F69B3265C1E42227D650B7D1"}}}});
        let file = Alert::from_json(&alert).subject.expect("sysmon event");
        assert_eq!(file.path, "C:\\\\b.zip:Zone.Identifier");
        assert_eq!(file.event, "sysmon_event15");
    }
}
