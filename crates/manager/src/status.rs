//! Agent status: marks silent agents disconnected and raises an alert for an
//! agent that stays disconnected longer than `agents.disconnect_alert_secs`.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::config::AgentsConfig;
use crate::db::now_secs;
use crate::pipeline::PipelineHandle;
use crate::registry::{Agent, Registry};

/// Wazuh 4.x's rule for a disconnected agent (`0015-ossec_rules.xml`, rule 504).
const DISCONNECT_RULE_ID: &str = "504";
const DISCONNECT_LEVEL: u8 = 3;

/// Checks agent status every `agents.status_check_secs` until the task is dropped.
pub async fn monitor(
    registry: Registry,
    pipeline: PipelineHandle,
    config: AgentsConfig,
    manager_name: String,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.status_check_secs.max(1)));
    loop {
        tick.tick().await;
        let registry_now = registry.clone();
        let config_now = config.clone();
        let due = tokio::task::spawn_blocking(move || check(&registry_now, &config_now)).await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "agent status check failed");
                continue;
            }
            Err(err) => {
                tracing::error!(error = %err, "agent status task failed");
                continue;
            }
        };
        for agent in due {
            tracing::warn!(agent_id = %agent.id, name = %agent.name, "agent disconnected for too long, raising an alert");
            if pipeline
                .raise(disconnect_alert(&agent, &manager_name, SystemTime::now()))
                .await
                .is_err()
            {
                return;
            }
            let registry = registry.clone();
            let _ =
                tokio::task::spawn_blocking(move || registry.mark_disconnect_alerted(&agent.id))
                    .await;
        }
    }
}

fn check(
    registry: &Registry,
    config: &AgentsConfig,
) -> Result<Vec<Agent>, crate::registry::RegistryError> {
    let now = now_secs();
    for agent in registry.silent_since(now - config.disconnect_after_secs as i64)? {
        tracing::info!(agent_id = %agent.id, "agent silent, marked disconnected");
        registry.mark_disconnected(&agent.id)?;
    }
    registry.due_disconnect_alerts(now - config.disconnect_alert_secs as i64)
}

/// Builds the alert for a disconnected agent, in the form of Wazuh's monitord alert.
pub fn disconnect_alert(agent: &Agent, manager_name: &str, now: SystemTime) -> Value {
    json!({
        "timestamp": wazuh_timestamp(now),
        "rule": {
            "level": DISCONNECT_LEVEL,
            "description": "Wazuh agent disconnected.",
            "id": DISCONNECT_RULE_ID,
            "firedtimes": 1,
            "mail": false,
            "groups": ["ossec"],
        },
        "agent": {"id": "000", "name": manager_name},
        "manager": {"name": manager_name},
        "id": "",
        "full_log": format!("Agent disconnected: '{}-{}'.", agent.name, agent.address.as_deref().unwrap_or("any")),
        "decoder": {"name": "ossec"},
        "data": {"agent_id": agent.id, "agent_name": agent.name},
        "location": "iocwatch-monitor",
    })
}

/// Formats a Wazuh alert timestamp: `2024-05-01T10:00:00.123+0000`.
pub fn wazuh_timestamp(now: SystemTime) -> String {
    let t = time::OffsetDateTime::from(now);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_wazuh_form() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_557_600_123);
        assert_eq!(wazuh_timestamp(t), "2024-05-01T10:00:00.123+0000");
    }
}
