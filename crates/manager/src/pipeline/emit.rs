//! After a commit: forwarded outputs, active-response commands, and the
//! job for the alerts.json and integration-log writer.

use std::sync::Arc;
use std::time::SystemTime;

use wire::ActiveResponseCommand;

use super::store::Store;
use super::{AgentRef, BatchWork, NewAlert};
use crate::connections::Delivery;
use crate::outputs::writer::{LookupLine, WriteJob};

impl Store {
    pub(super) fn emit(
        &mut self,
        mut stored: Vec<NewAlert>,
        lookups: Vec<LookupLine>,
        now: SystemTime,
        batches: &[BatchWork],
    ) {
        for alert in &stored {
            self.forward_alert(alert);
            if let Some(agent) = Store::agent_of(batches, alert) {
                self.request_action(agent, alert);
            }
        }
        let alerts: Vec<(i64, String)> = stored
            .iter_mut()
            .map(|alert| (alert.seq, std::mem::take(&mut alert.line)))
            .collect();
        self.discard.release(stored);
        let lookups = if self.integration_log {
            lookups
        } else {
            Vec::new()
        };
        if !alerts.is_empty() || !lookups.is_empty() {
            self.writer.send(WriteJob {
                now,
                alerts,
                lookups,
            });
        }
    }

    fn forward_alert(&mut self, alert: &NewAlert) {
        let Some(forward) = &self.forward else { return };
        let body = match &alert.doc {
            super::AlertDoc::Json(body) => body.clone(),
            // The line is the document the other outputs receive, so syslog and webhooks
            // get it byte for byte.
            super::AlertDoc::Rules(_) => serde_json::from_str(&alert.line).unwrap_or_default(),
        };
        if forward.try_send(Arc::new(body)).is_err() {
            self.forward_dropped += 1;
            if self.forward_dropped.is_power_of_two() {
                tracing::warn!(
                    dropped_total = self.forward_dropped,
                    "syslog and webhook queue full, alerts not forwarded"
                );
            }
        }
    }

    /// Sends a quarantine command when the alert's rule or level requests one.
    fn request_action(&self, agent: &AgentRef, alert: &NewAlert) {
        let doc = &alert.doc;
        let level = doc.level();
        let id = doc.rule_id().unwrap_or_default();
        let by_rule = self.config.quarantine_rule_ids.contains(&id);
        let by_level = self
            .config
            .quarantine_min_level
            .is_some_and(|min| level >= u64::from(min));
        if !(by_rule || by_level) {
            return;
        }
        let Some(path) = doc.present_file() else {
            return;
        };

        let command = ActiveResponseCommand {
            command_id: uuid::Uuid::new_v4().to_string(),
            action: "quarantine".into(),
            path: path.to_string(),
            rule_id: Some(id.clone()),
            alert_id: doc.id().map(str::to_string),
        };
        let command_id = command.command_id.clone();
        match self.connections.send_command(&agent.id, command) {
            Delivery::Sent => {
                tracing::info!(agent_id = %agent.id, path, rule_id = %id, command_id, "quarantine requested")
            }
            Delivery::Queued => {
                tracing::info!(agent_id = %agent.id, path, rule_id = %id, command_id, "quarantine queued until the agent connects")
            }
            Delivery::NotSent => {
                tracing::warn!(agent_id = %agent.id, path, rule_id = %id, "quarantine not sent: agent not connected or its queue full")
            }
        }
    }
}
