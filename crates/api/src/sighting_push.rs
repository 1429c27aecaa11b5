//! Pushing queued sightings (see `db/outbox.rs`) to the remote MISP instance their events
//! were pulled from, through `sightings/add` addressed by attribute uuid.

use serde_json::{json, Value};

use crate::db::OutboxRow;
use crate::remote::{agent, request, RemoteConfig, RemoteError};
use crate::Db;

/// Rows claimed and sent per batch.
const BATCH_ROWS: u32 = 100;

/// Counts of one push run.
#[derive(Debug, Default)]
pub struct SightingPushSummary {
    /// Sightings the remote accepted in this run.
    pub pushed: u64,
    /// Sightings the remote rejected for good (such as an attribute it no longer has).
    pub rejected: u64,
    /// Sightings left for a later run.
    pub pending: u64,
    /// The error that ended the run early, such as the remote being unreachable; the
    /// sightings not sent stay pending.
    pub error: Option<RemoteError>,
}

/// Outcome of one row's request.
enum Outcome {
    Pushed,
    Rejected(String),
    Failed(RemoteError),
}

/// Pushes the pending sightings queued for `config.url`, batch by batch, each marked
/// pushed as soon as the remote accepted it. A transport error, a timeout, HTTP 401, 403,
/// 429 or 5xx ends the run and leaves the rest pending. An HTTP 400, 404 or 422, or MISP's
/// "Could not add the Sighting" message, marks that row rejected, and the run goes on.
pub fn push_sightings(db: &Db, config: &RemoteConfig) -> Result<SightingPushSummary, RemoteError> {
    let agent = agent(config)?;
    let token = uuid::Uuid::new_v4().to_string();
    let mut summary = SightingPushSummary::default();
    'batches: loop {
        let rows = db.claim_outbox(&config.url, &token, BATCH_ROWS)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            match push_one(&agent, config, row) {
                Outcome::Pushed => {
                    db.mark_outbox_pushed(row.id)?;
                    summary.pushed += 1;
                }
                Outcome::Rejected(reason) => {
                    tracing::warn!(url = %config.url, attribute = %row.attribute_uuid,
                        reason = %reason, "remote rejected a sighting; it is not sent again");
                    db.mark_outbox_rejected(row.id, &reason)?;
                    summary.rejected += 1;
                }
                Outcome::Failed(error) => {
                    db.mark_outbox_failed(row.id, &error_text(&error))?;
                    summary.error = Some(error);
                    break 'batches;
                }
            }
        }
    }
    db.release_outbox(&token)?;
    db.prune_outbox()?;
    summary.pending = db.outbox_stats(&config.url)?.pending;
    log_summary(config, &summary);
    Ok(summary)
}

fn log_summary(config: &RemoteConfig, summary: &SightingPushSummary) {
    match &summary.error {
        Some(error) => tracing::warn!(url = %config.url, pushed = summary.pushed,
            pending = summary.pending, error = %error_text(error),
            "sighting push interrupted; the rest stays queued for the next run"),
        None => tracing::info!(url = %config.url, pushed = summary.pushed,
            rejected = summary.rejected, "sightings pushed"),
    }
}

/// Builds the request body of one sighting, with the keys MISP's
/// `SightingsController::add` reads (MISP 2.4): the attribute `uuid`, `type`, `source`
/// and `timestamp`.
fn sighting_body(row: &OutboxRow) -> Value {
    json!({
        "uuid": row.attribute_uuid,
        "type": row.r#type.to_string(),
        "source": row.source,
        "timestamp": row.date_sighting.to_string(),
    })
}

fn push_one(agent: &ureq::Agent, config: &RemoteConfig, row: &OutboxRow) -> Outcome {
    match request(agent, config, "sightings/add", Some(&sighting_body(row))) {
        Ok(response) => match refusal(&response) {
            Some(message) => Outcome::Rejected(message),
            None => Outcome::Pushed,
        },
        Err(RemoteError::Status { status, url }) if matches!(status, 400 | 404 | 422) => {
            Outcome::Rejected(format!("{url} returned HTTP {status}"))
        }
        Err(error) => Outcome::Failed(error),
    }
}

/// Returns MISP's error message when an HTTP 200 response carries one instead of the
/// sighting, because MISP 2.4 returns `{"message": "Could not add the Sighting. Reason:
/// ..."}` with status 200.
fn refusal(response: &Value) -> Option<String> {
    if response.get("Sighting").is_some() {
        return None;
    }
    let message = response.get("message")?.as_str()?;
    message
        .to_ascii_lowercase()
        .starts_with("could not")
        .then(|| message.to_owned())
}

/// Formats an error with its causes, for the outbox's `last_error` column.
fn error_text(error: &RemoteError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_reads_misp_message() {
        let refused =
            json!({"message": "Could not add the Sighting. Reason: No valid attributes found."});
        assert!(refusal(&refused).is_some());
        assert!(refusal(&json!({"message": "Sighting added"})).is_none());
        assert!(refusal(&json!({"Sighting": {"id": "1"}})).is_none());
    }

    #[test]
    fn body_addresses_attribute_by_uuid() {
        let row = OutboxRow {
            id: 1,
            remote_url: "https://misp.example.org".into(),
            sighting_uuid: "s".into(),
            attribute_uuid: "a-uuid".into(),
            r#type: 0,
            source: "web-01".into(),
            date_sighting: 1_700_000_000,
            attempts: 0,
        };
        let body = sighting_body(&row);
        assert_eq!(body["uuid"], "a-uuid");
        assert_eq!(body["type"], "0");
        assert_eq!(body["source"], "web-01");
        assert_eq!(body["timestamp"], "1700000000");
    }
}
