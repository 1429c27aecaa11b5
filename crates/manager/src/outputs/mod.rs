//! Alert outputs: alerts.json, the integration log, syslog and webhooks.

pub mod alerts_file;
pub mod integration_log;
pub mod syslog;
pub mod webhook;
pub mod writer;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

/// Forwards alerts to syslog and the webhook off the pipeline's threads.
pub async fn forward(
    mut alerts: mpsc::Receiver<Arc<Value>>,
    mut syslog: Option<syslog::Syslog>,
    mut webhook: Option<webhook::Webhook>,
) {
    let mut syslog_failures = 0u64;
    while let Some(alert) = alerts.recv().await {
        let level = alert
            .pointer("/rule/level")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if let Some(out) = syslog
            .as_mut()
            .filter(|s| level >= u64::from(s.min_level()))
        {
            if let Err(err) = out.send(&alert).await {
                syslog_failures += 1;
                if syslog_failures.is_power_of_two() {
                    tracing::warn!(error = %err, failures_total = syslog_failures, "syslog output failed");
                }
            }
        }
        if let Some(out) = webhook
            .as_mut()
            .filter(|w| level >= u64::from(w.min_level()))
        {
            out.enqueue(alert.clone());
        }
    }
}
