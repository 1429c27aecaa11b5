//! Push: sends the published local events whose distribution lets them leave this server,
//! downgraded as MISP does, to `events/add`, or to `events/edit` when the remote has an
//! older copy. Incremental by local event timestamp.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::distribution::prepare_for_push;
use super::index;
use super::{is_transport, state_key, Failure, SyncError};
use crate::remote::{agent, request, RemoteConfig};
use crate::Db;

/// Counts of one push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Published local events changed since the last complete push.
    pub candidates: usize,
    pub added: usize,
    pub edited: usize,
    /// Events the remote has with the same or a newer timestamp.
    pub unchanged: usize,
    /// Events whose distribution keeps them on this server.
    pub withheld: usize,
    pub failures: Vec<Failure>,
    /// Newest local event timestamp once every event up to it is pushed. The next push
    /// starts after it. `None` after a push with failures, or with nothing to push.
    pub synced_until: Option<i64>,
}

/// A published local event.
struct Candidate {
    id: i64,
    uuid: String,
    timestamp: i64,
}

/// Pushes local events to the remote in `config`. With `full`, every published event is
/// considered, not only those changed since the last complete push.
pub fn push(db: &Db, config: &RemoteConfig, full: bool) -> Result<PushReport, SyncError> {
    let key = state_key("push", &config.url);
    let since = if full {
        None
    } else {
        db.remote_watermark(&key)?
    };
    let candidates = published_since(db, since)?;
    let mut report = PushReport {
        candidates: candidates.len(),
        ..PushReport::default()
    };
    if candidates.is_empty() {
        return Ok(report);
    }
    let agent = agent(config)?;
    let remote: HashMap<String, i64> = index::fetch(&agent, config, &Map::new())?
        .into_iter()
        .map(|e| (e.uuid, e.timestamp))
        .collect();

    for (done, candidate) in candidates.iter().enumerate() {
        let Some(event) = outgoing_event(db, candidate, &config.url)? else {
            report.withheld += 1;
            continue;
        };
        let path = match remote.get(&candidate.uuid) {
            Some(ts) if *ts >= candidate.timestamp => {
                report.unchanged += 1;
                continue;
            }
            Some(_) => format!("events/edit/{}", candidate.uuid),
            None => "events/add".to_owned(),
        };
        match request(&agent, config, &path, Some(&json!({ "Event": event }))) {
            Ok(_) if path == "events/add" => report.added += 1,
            Ok(_) => report.edited += 1,
            Err(source) if is_transport(&source) => {
                return Err(SyncError::Interrupted {
                    action: "push",
                    done,
                    total: candidates.len(),
                    source: Box::new(source),
                })
            }
            Err(e) => report.failures.push(Failure {
                uuid: candidate.uuid.clone(),
                reason: e.to_string(),
            }),
        }
    }

    if report.failures.is_empty() {
        report.synced_until = candidates.iter().map(|c| c.timestamp).max();
        if let Some(newest) = report.synced_until {
            db.set_remote_watermark(&key, newest)?;
        }
    }
    tracing::info!(url = %config.url, added = report.added, edited = report.edited,
        withheld = report.withheld, failed = report.failures.len(), "sync push finished");
    Ok(report)
}

/// Published local events with a timestamp after `since`, oldest first.
fn published_since(db: &Db, since: Option<i64>) -> Result<Vec<Candidate>, SyncError> {
    let conn = db.reader()?;
    let mut stmt = conn.prepare(
        "SELECT id, lower(uuid), timestamp FROM events
         WHERE published = 1 AND timestamp > ?1 ORDER BY timestamp, id",
    )?;
    let rows = stmt.query_map([since.unwrap_or(i64::MIN)], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            uuid: r.get(1)?,
            timestamp: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Builds the JSON sent for `candidate`, or `None` when its distribution withholds it.
/// The MISP JSON kept from an import carries the distribution levels, and an event
/// without it is rendered from its rows.
fn outgoing_event(
    db: &Db,
    candidate: &Candidate,
    remote_url: &str,
) -> Result<Option<Map<String, Value>>, SyncError> {
    let stored = {
        let conn = db.reader()?;
        index::stored_json(&conn, candidate.id)?
    };
    let mut event = match stored {
        Some(event) => event,
        None => {
            let full = db.event(&candidate.uuid, false, &crate::Viewer::SITE_ADMIN)?;
            match crate::json::full_event_json(&full, &[]) {
                Value::Object(mut wrapped) => match wrapped.remove("Event") {
                    Some(Value::Object(event)) => event,
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
    };
    // The rows are current, but the kept JSON misses a later publish or timestamp change.
    event.insert("published".into(), Value::Bool(true));
    event.insert(
        "timestamp".into(),
        Value::String(candidate.timestamp.to_string()),
    );
    Ok(prepare_for_push(&mut event, remote_url).then_some(event))
}
