//! Pushing queued sightings (see `db/outbox.rs`) to the remote MISP instance their events
//! were pulled from, through `sightings/add` addressed by attribute uuid.

use serde_json::{json, Value};

use crate::db::OutboxRow;
use crate::remote::{agent, post_any_status, RemoteConfig, RemoteError};
use crate::Db;

/// Rows claimed and sent per batch.
const BATCH_ROWS: u32 = 100;

/// HTTP rejections in a row after which a run stops, taking them for a wrong URL or a
/// server without `sightings/add` rather than for rejected sightings.
pub const MAX_REJECTIONS_IN_A_ROW: u32 = 3;

/// Counts of one push run.
#[derive(Debug, Default)]
pub struct SightingPushSummary {
    /// Sightings the remote accepted in this run.
    pub pushed: u64,
    /// Sightings the remote rejected for good (such as an attribute it no longer has).
    pub rejected: u64,
    /// Sightings left for a later run.
    pub pending: u64,
    /// Sightings that another run has claimed and is sending.
    pub in_flight: u64,
    /// The error that ended the run early, such as the remote being unreachable; the
    /// sightings not sent stay pending.
    pub error: Option<RemoteError>,
}

/// Outcome of one row's request.
enum Outcome {
    Pushed,
    /// MISP's "Could not add the Sighting" message in an HTTP 200 response.
    Refused(String),
    /// HTTP 400, 404 or 422 with a MISP error body.
    Rejected {
        status: u16,
        reason: String,
    },
    Failed(RemoteError),
}

/// Pushes the pending sightings queued for `config.url`, batch by batch, each marked
/// pushed as soon as the remote accepted it. MISP's "Could not add the Sighting" message
/// marks that row rejected, and so does an HTTP 400, 404 or 422 with a MISP JSON error
/// body, and the run goes on. A transport error, a timeout, any other status, a 400, 404
/// or 422 without a MISP JSON body, or [`MAX_REJECTIONS_IN_A_ROW`] HTTP rejections in a
/// row end the run, and the rows not accepted stay pending.
pub fn push_sightings(db: &Db, config: &RemoteConfig) -> Result<SightingPushSummary, RemoteError> {
    let agent = agent(config)?;
    let token = uuid::Uuid::new_v4().to_string();
    let mut summary = SightingPushSummary::default();
    // Rows rejected by HTTP status since the last accepted one, marked rejected only once
    // a later row shows that the remote accepts sightings.
    let mut streak: Vec<(i64, String)> = Vec::new();
    'batches: loop {
        let rows = db.claim_outbox(&config.url, &token, BATCH_ROWS)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let outcome = push_one(&agent, config, row);
            if matches!(outcome, Outcome::Pushed | Outcome::Refused(_)) {
                summary.rejected += settle_streak(db, config, &mut streak)?;
            }
            match outcome {
                Outcome::Pushed => {
                    db.mark_outbox_pushed(row.id)?;
                    summary.pushed += 1;
                }
                Outcome::Refused(reason) => {
                    reject(db, config, row.id, &row.attribute_uuid, &reason)?;
                    summary.rejected += 1;
                }
                Outcome::Rejected { status, reason } => {
                    streak.push((row.id, reason));
                    if streak.len() as u32 >= MAX_REJECTIONS_IN_A_ROW {
                        let error = RemoteError::Rejections {
                            url: config.url.clone(),
                            status,
                            count: MAX_REJECTIONS_IN_A_ROW,
                        };
                        for (id, _) in streak.drain(..) {
                            db.mark_outbox_failed(id, &error_text(&error))?;
                        }
                        summary.error = Some(error);
                        break 'batches;
                    }
                }
                Outcome::Failed(error) => {
                    db.mark_outbox_failed(row.id, &error_text(&error))?;
                    summary.error = Some(error);
                    break 'batches;
                }
            }
        }
    }
    if summary.error.is_none() {
        summary.rejected += settle_streak(db, config, &mut streak)?;
    }
    for (id, reason) in streak {
        db.mark_outbox_failed(id, &reason)?;
    }
    db.release_outbox(&token)?;
    db.prune_outbox()?;
    let stats = db.outbox_stats(&config.url)?;
    summary.pending = stats.pending;
    summary.in_flight = stats.in_flight;
    log_summary(config, &summary);
    Ok(summary)
}

/// Marks the rows of `streak` rejected for good; returns how many.
fn settle_streak(
    db: &Db,
    config: &RemoteConfig,
    streak: &mut Vec<(i64, String)>,
) -> Result<u64, RemoteError> {
    let count = streak.len() as u64;
    for (id, reason) in streak.drain(..) {
        reject(db, config, id, "", &reason)?;
    }
    Ok(count)
}

fn reject(
    db: &Db,
    config: &RemoteConfig,
    id: i64,
    attribute: &str,
    reason: &str,
) -> Result<(), RemoteError> {
    tracing::warn!(url = %config.url, row = id, attribute = %attribute, reason = %reason,
        "remote rejected a sighting; it is not sent again");
    db.mark_outbox_rejected(id, reason)?;
    Ok(())
}

fn log_summary(config: &RemoteConfig, summary: &SightingPushSummary) {
    match &summary.error {
        Some(error) => tracing::warn!(url = %config.url, pushed = summary.pushed,
            pending = summary.pending, error = %error_text(error),
            "sighting push interrupted; the rest stays queued for the next run"),
        None => tracing::info!(url = %config.url, pushed = summary.pushed,
            rejected = summary.rejected, in_flight = summary.in_flight, "sightings pushed"),
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
    let (url, status, body) =
        match post_any_status(agent, config, "sightings/add", &sighting_body(row)) {
            Ok(reply) => reply,
            Err(error) => return Outcome::Failed(error),
        };
    match (status, body) {
        (200, Some(body)) => match rejection_message(&body) {
            Some(message) => Outcome::Refused(message),
            None => Outcome::Pushed,
        },
        (200, None) => Outcome::Failed(RemoteError::Response {
            url,
            reason: "the response is not JSON".into(),
        }),
        (400 | 404 | 422, Some(body)) if misp_error(&body).is_some() => {
            let message = misp_error(&body).unwrap_or_default();
            let reason = format!("{url} returned HTTP {status}: {message}");
            Outcome::Rejected { status, reason }
        }
        (status, _) => Outcome::Failed(RemoteError::Status {
            url,
            status,
            access: "add sightings (write access)",
        }),
    }
}

/// Returns the message of a MISP error body, `{"name": ..., "message": ..., "url": ...}`.
fn misp_error(body: &Value) -> Option<String> {
    let message = body.get("message").or_else(|| body.get("name"))?;
    message.as_str().map(str::to_owned)
}

/// Returns MISP's error message when an HTTP 200 response carries one instead of the
/// sighting, because MISP 2.4 returns `{"message": "Could not add the Sighting. Reason:
/// ..."}` with status 200.
fn rejection_message(response: &Value) -> Option<String> {
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
    fn rejection_message_reads_misp_message() {
        let rejected =
            json!({"message": "Could not add the Sighting. Reason: No valid attributes found."});
        assert!(rejection_message(&rejected).is_some());
        assert!(rejection_message(&json!({"message": "Sighting added"})).is_none());
        assert!(rejection_message(&json!({"Sighting": {"id": "1"}})).is_none());
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
