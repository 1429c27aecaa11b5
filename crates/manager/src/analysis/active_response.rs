//! Alerts for active-response results reported by agents.

use std::time::SystemTime;

use serde_json::{json, Value};
use wire::{ActionStatus, ActiveResponseResult};

use crate::pipeline::AgentRef;
use crate::status::wazuh_timestamp;

/// Rule id of the alert for a file the agent quarantined.
pub const QUARANTINED_RULE_ID: &str = "111201";
/// Rule id of the alert for a quarantine the agent rejected or failed.
pub const NOT_QUARANTINED_RULE_ID: &str = "111202";

/// The alert for one result; `None` when the result does not parse.
pub fn alert(
    agent: &AgentRef,
    result: &Value,
    manager_name: &str,
    now: SystemTime,
) -> Option<Value> {
    let result: ActiveResponseResult = match serde_json::from_value(result.clone()) {
        Ok(result) => result,
        Err(err) => {
            tracing::warn!(agent_id = %agent.id, error = %err, "invalid active-response result skipped");
            return None;
        }
    };
    let (id, level, description) = match result.status {
        ActionStatus::Done => (
            QUARANTINED_RULE_ID,
            7,
            format!(
                "Active response: file {} quarantined to {}",
                result.path,
                result.quarantine_path.as_deref().unwrap_or("?")
            ),
        ),
        ActionStatus::Rejected | ActionStatus::Failed => (
            NOT_QUARANTINED_RULE_ID,
            10,
            format!(
                "Active response: quarantine of {} {}: {}",
                result.path,
                if result.status == ActionStatus::Rejected {
                    "rejected"
                } else {
                    "failed"
                },
                result.message.as_deref().unwrap_or("no reason given")
            ),
        ),
    };
    Some(json!({
        "timestamp": wazuh_timestamp(now),
        "rule": {
            "level": level,
            "description": description,
            "id": id,
            "firedtimes": 1,
            "mail": false,
            "groups": ["active_response", "quarantine"],
        },
        "agent": {"id": agent.id, "name": agent.name, "ip": agent.ip},
        "manager": {"name": manager_name},
        "id": "",
        "full_log": description,
        "decoder": {"name": "active_response"},
        "data": {"active_response": result},
        "location": "active-response",
    }))
}
