//! Messages for Wazuh's analysis queue: the JSON bodies for a match, a miss and a failed
//! lookup, and the `1:<location>:<json>` frame around them.
//!
//! The body has the shape Wazuh's own integrations send (`integration` plus an object
//! named after it), so wazuh-analysisd decodes it with its JSON decoder and rules test
//! `integration`, `iocwatch.*` and `misp.*`. Alerts show these under `data`.

use serde_json::{json, Value};

use crate::alert::{Agent, FileObservation};
use crate::hash::Digest;
use crate::lookup::{LookupError, MispMatch};

/// The integration name: `integration` in every body and the end of the location.
pub const INTEGRATION: &str = "iocwatch";

/// Queue type 1 is a local event (`LOCALFILE_MQ` in Wazuh's sources).
const QUEUE_PREFIX: &str = "1";

/// The alert a message reports on: its ids, file, digest and agent.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub alert_id: Option<&'a str>,
    pub rule_id: Option<&'a str>,
    pub file: &'a FileObservation,
    pub digest: &'a Digest,
    pub agent: Option<&'a Agent>,
}

impl Source<'_> {
    fn to_json(self) -> Value {
        json!({
            "alert_id": self.alert_id,
            "rule_id": self.rule_id,
            "file": self.file.path,
            "event": self.file.event,
            "hash": self.digest.hex,
            "hash_type": self.digest.algorithm.name(),
            "agent": self.agent,
        })
    }
}

/// Builds the body for a digest that matched a detection attribute.
pub fn match_body(source: Source<'_>, found: &MispMatch) -> Value {
    json!({
        "integration": INTEGRATION,
        "iocwatch": {"status": "match", "source": source.to_json()},
        "misp": found,
    })
}

/// Builds the body for a file none of whose digests matched (sent only with
/// `report_misses`).
pub fn miss_body(source: Source<'_>) -> Value {
    json!({
        "integration": INTEGRATION,
        "iocwatch": {"status": "miss", "source": source.to_json()},
    })
}

/// Builds the body for a lookup that failed.
pub fn error_body(source: Source<'_>, error: &LookupError) -> Value {
    json!({
        "integration": INTEGRATION,
        "iocwatch": {
            "status": "error",
            "error": error.kind(),
            "http_status": error.status(),
            "description": error.to_string(),
            "source": source.to_json(),
        },
    })
}

/// Returns the location of a message. For an agent's alert it is
/// `[<id>] (<name>) <ip>-><integration>`, so wazuh-analysisd attributes the new alert to
/// that agent. The manager's own alerts (agent `000`) use the integration name alone. As
/// in Wazuh's integrations, `|` and `:` in the agent part are escaped as `||` and `|:`,
/// because `:` ends the location.
pub fn location(agent: Option<&Agent>) -> String {
    match agent {
        Some(agent) if agent.id != "000" => {
            let ip = agent.ip.as_deref().unwrap_or("any");
            let origin = format!("[{}] ({}) {}", agent.id, agent.name, ip)
                .replace('|', "||")
                .replace(':', "|:");
            format!("{origin}->{INTEGRATION}")
        }
        _ => INTEGRATION.to_string(),
    }
}

/// Frames `body` for the queue socket.
pub fn frame(agent: Option<&Agent>, body: &Value) -> String {
    format!("{QUEUE_PREFIX}:{}:{body}", location(agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, ip: Option<&str>) -> Agent {
        Agent {
            id: id.into(),
            name: "web:1".into(),
            ip: ip.map(str::to_string),
        }
    }

    #[test]
    fn agent_location_is_escaped() {
        assert_eq!(
            location(Some(&agent("001", Some("fe80::1")))),
            "[001] (web|:1) fe80|:|:1->iocwatch"
        );
        assert_eq!(
            location(Some(&agent("002", None))),
            "[002] (web|:1) any->iocwatch"
        );
    }

    #[test]
    fn manager_location_is_the_integration() {
        assert_eq!(location(Some(&agent("000", None))), "iocwatch");
        assert_eq!(location(None), "iocwatch");
    }

    #[test]
    fn frame_has_queue_prefix() {
        let framed = frame(None, &json!({"integration": "iocwatch"}));
        assert_eq!(framed, r#"1:iocwatch:{"integration":"iocwatch"}"#);
    }
}
