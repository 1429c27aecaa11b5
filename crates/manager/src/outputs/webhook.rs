//! Webhook output: each alert at or above the configured level is POSTed as
//! JSON to a URL, from a thread of its own so a slow receiver never holds up
//! the pipeline.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::WebhookConfig;

/// Alerts waiting for the webhook thread; more are dropped and counted.
const QUEUE_ALERTS: usize = 10_000;

/// Returns `(scheme, rest)` for an `http://` or `https://` URL with a host, else `None`.
pub fn parse_url(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    if !matches!(scheme, "http" | "https") || host.is_empty() {
        return None;
    }
    Some((scheme, rest))
}

/// The sending side, held by the output task.
pub struct Webhook {
    queue: SyncSender<Arc<Value>>,
    min_level: u8,
    dropped: u64,
}

impl Webhook {
    /// Starts the sender thread.
    pub fn start(config: WebhookConfig) -> std::io::Result<Webhook> {
        let (queue, receiver) = sync_channel(QUEUE_ALERTS);
        let min_level = config.min_level;
        std::thread::Builder::new()
            .name("iocwatch-webhook".into())
            .spawn(move || post_all(&config, receiver))?;
        Ok(Webhook {
            queue,
            min_level,
            dropped: 0,
        })
    }

    pub fn min_level(&self) -> u8 {
        self.min_level
    }

    /// Queues an alert; when the queue is full the alert is dropped and counted.
    pub fn enqueue(&mut self, alert: Arc<Value>) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(alert) {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped_total = self.dropped,
                    "webhook queue full, alerts dropped"
                );
            }
        }
    }
}

fn post_all(config: &WebhookConfig, receiver: Receiver<Arc<Value>>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(config.timeout_secs)))
        .http_status_as_error(true)
        .build()
        .into();
    let mut failures = 0u64;
    while let Ok(alert) = receiver.recv() {
        let body = alert.to_string();
        let result = agent
            .post(&config.url)
            .header("content-type", "application/json")
            .send(body.as_bytes());
        if let Err(err) = result {
            failures += 1;
            // The URL may carry a token: log its scheme and host only.
            let host = parse_url(&config.url)
                .and_then(|(_, rest)| rest.split('/').next())
                .unwrap_or("");
            if failures.is_power_of_two() {
                tracing::warn!(host, error = %err, failures_total = failures, "webhook POST failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_scheme_and_host() {
        assert!(parse_url("http://127.0.0.1:9000/hook").is_some());
        assert!(parse_url("https://hooks.example/x").is_some());
        assert!(parse_url("ftp://x/y").is_none());
        assert!(parse_url("http:///path").is_none());
        assert!(parse_url("127.0.0.1:9000").is_none());
    }
}
