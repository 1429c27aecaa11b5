//! After a commit: alerts.json, the integration log, forwarded outputs and
//! active-response commands.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use wire::{ActiveResponseCommand, Message};

use super::{rule_id, AgentRef, Pipeline, StoredAlert};
use crate::outputs::integration_log::LookupRecord;

impl Pipeline {
    pub(super) fn emit(
        &mut self,
        stored: &[StoredAlert],
        lookups: &[(AgentRef, String, LookupRecord)],
        now: SystemTime,
    ) {
        let now_utc = time::OffsetDateTime::from(now);
        for alert in stored {
            if let Err(err) = self.alerts_file.write_line(&alert.line, now_utc) {
                tracing::error!(error = %err, alert_id = %alert.body["id"], "failed to write alerts.json; the alert is kept in the database");
            }
            self.forward_alert(&alert.body);
            self.request_action(alert);
        }
        if let Err(err) = self.alerts_file.flush() {
            tracing::error!(error = %err, "failed to flush alerts.json");
        }
        if let Some(last) = stored.last() {
            self.pending_cursor = Some(last.seq);
        }

        if let Some(log) = self.integration.as_mut() {
            let timestamp = now_utc
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            for (agent, path, lookup) in lookups {
                if let Err(err) = log.write(&timestamp, &agent.id, path, lookup) {
                    tracing::warn!(error = %err, "failed to write the integration log");
                }
            }
            if let Err(err) = log.flush() {
                tracing::warn!(error = %err, "failed to flush the integration log");
            }
        }
    }

    fn forward_alert(&mut self, alert: &Value) {
        let Some(forward) = &self.forward else { return };
        if forward.try_send(Arc::new(alert.clone())).is_err() {
            self.forward_dropped += 1;
            if self.forward_dropped.is_power_of_two() {
                tracing::warn!(dropped_total = self.forward_dropped, "syslog and webhook queue full, alerts not forwarded");
            }
        }
    }

    /// Sends a quarantine command when the alert's rule asks for one.
    fn request_action(&self, alert: &StoredAlert) {
        let Some(agent) = &alert.agent else { return };
        let body = &alert.body;
        let level = body.pointer("/rule/level").and_then(Value::as_u64).unwrap_or(0);
        let id = rule_id(body).unwrap_or_default();
        let by_rule = self.config.quarantine_rule_ids.contains(&id);
        let by_level = self.config.quarantine_min_level.is_some_and(|min| level >= u64::from(min));
        if !(by_rule || by_level) {
            return;
        }
        let Some(path) = body.pointer("/syscheck/path").and_then(Value::as_str) else { return };
        if body.pointer("/syscheck/event").and_then(Value::as_str) == Some("deleted") {
            return;
        }

        let command = ActiveResponseCommand {
            command_id: uuid::Uuid::new_v4().to_string(),
            action: "quarantine".into(),
            path: path.to_string(),
            rule_id: Some(id.clone()),
            alert_id: body.get("id").and_then(Value::as_str).map(str::to_string),
        };
        let command_id = command.command_id.clone();
        if self.connections.send(&agent.id, Message::ActiveResponseCommand(command)) {
            tracing::info!(agent_id = %agent.id, path, rule_id = %id, command_id, "quarantine requested");
        } else {
            // NOTE: commands are not queued for agents that are offline; the
            // alert stays, and a later alert on the same file asks again.
            tracing::warn!(agent_id = %agent.id, path, rule_id = %id, "quarantine not sent: agent not connected");
        }
    }
}
