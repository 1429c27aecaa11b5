//! Pull: fetches each published event that the remote has and the local store lacks or
//! has older, and stores it in a transaction of its own, downgraded as MISP does.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::distribution::downgrade_pulled;
use super::index::{self, IndexEntry};
use super::{is_transport, rows, state_key, Failure, SyncError};
use crate::json::{LOCAL_ORG, LOCAL_ORG_UUID};
use crate::remote::{agent, request, RemoteConfig, RemoteError};
use crate::Db;

/// Counts of one pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Published events in the remote's index, from the last complete pull on when the
    /// remote applies the `timestamp` filter.
    pub remote_events: usize,
    /// Events fetched because the local store lacked them or had them older.
    pub fetched: usize,
    pub added: usize,
    pub updated: usize,
    pub attributes: usize,
    /// Attributes of fetched events that failed validation and were left out.
    pub rejected_attributes: usize,
    pub failures: Vec<Failure>,
    /// Newest remote event timestamp once every event up to it is stored. The next pull
    /// requests the index from there. `None` after a pull with failures.
    pub synced_until: Option<i64>,
}

/// Pulls from the remote in `config` into the store of `db`. A connection failure stops
/// the pull with [`SyncError::Interrupted`]. The events stored before it are complete,
/// and the next pull fetches only the rest.
pub fn pull(db: &Db, config: &RemoteConfig) -> Result<PullReport, SyncError> {
    let agent = agent(config)?;
    let key = state_key("pull", &config.url);
    let since = db.remote_watermark(&key)?;
    let mut filters = Map::new();
    filters.insert("published".into(), json!(true));
    if let Some(since) = since {
        filters.insert("timestamp".into(), json!(since));
    }
    let index = index::fetch(&agent, config, &filters)?;
    let outdated = newer_than_local(db, &index)?;

    let data_dir = db.path().parent().unwrap_or(Path::new(".")).to_owned();
    let mut store = intel::Store::open(&data_dir)?;
    let mut report = PullReport {
        remote_events: index.iter().filter(|e| e.published).count(),
        ..PullReport::default()
    };
    for (done, entry) in outdated.iter().enumerate() {
        let event = match fetch_event(&agent, config, &entry.uuid) {
            Ok(event) => event,
            Err(source) if is_transport(&source) => {
                return Err(SyncError::Interrupted {
                    action: "pull",
                    done,
                    total: outdated.len(),
                    source: Box::new(source),
                })
            }
            Err(e) => {
                report.failures.push(failure(&entry.uuid, &e));
                continue;
            }
        };
        report.fetched += 1;
        if let Err(reason) = store_event(db, &mut store, &config.url, event, &mut report)? {
            report.failures.push(Failure {
                uuid: entry.uuid.clone(),
                reason,
            });
        }
    }

    if report.failures.is_empty() {
        report.synced_until = index.iter().map(|e| e.timestamp).max().or(since);
        if let Some(newest) = report.synced_until {
            db.set_remote_watermark(&key, newest)?;
        }
    }
    tracing::info!(url = %config.url, fetched = report.fetched, added = report.added,
        updated = report.updated, failed = report.failures.len(), "sync pull finished");
    Ok(report)
}

/// Published index entries that the local store lacks or has with an older timestamp,
/// oldest first.
// NOTE: MISP refuses to let a pull replace an event created on the puller (not locked).
// The store cannot tell those from events pushed to it through the API, so a newer remote
// copy always replaces the local one.
fn newer_than_local<'a>(
    db: &Db,
    index: &'a [IndexEntry],
) -> Result<Vec<&'a IndexEntry>, SyncError> {
    let local = index::local_timestamps(db)?;
    let mut outdated: Vec<&IndexEntry> = index
        .iter()
        .filter(|e| e.published)
        .filter(|e| local.get(&e.uuid).is_none_or(|ts| *ts < e.timestamp))
        .collect();
    outdated.sort_by(|a, b| (a.timestamp, &a.uuid).cmp(&(b.timestamp, &b.uuid)));
    outdated.dedup_by_key(|e| e.uuid.as_str());
    Ok(outdated)
}

fn failure(uuid: &str, error: &dyn std::error::Error) -> Failure {
    let mut reason = error.to_string();
    if let Some(source) = error.source() {
        reason.push_str(&format!(": {source}"));
    }
    Failure {
        uuid: uuid.to_owned(),
        reason,
    }
}

fn fetch_event(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    uuid: &str,
) -> Result<Map<String, Value>, RemoteError> {
    let invalid = |reason: String| RemoteError::Response {
        url: format!("{}/events/view/{uuid}", config.url),
        reason,
    };
    if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(invalid(format!("index entry `{uuid}` is not a uuid")));
    }
    let response = request(agent, config, &format!("events/view/{uuid}"), None)?;
    let event = match response {
        Value::Object(mut map) => match map.remove("Event") {
            Some(Value::Object(event)) => event,
            _ => return Err(invalid("expected an object with an `Event` key".into())),
        },
        _ => return Err(invalid("expected an object with an `Event` key".into())),
    };
    let returned = event
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !returned.eq_ignore_ascii_case(uuid) {
        return Err(invalid(format!("asked for event {uuid}, got `{returned}`")));
    }
    Ok(event)
}

/// Downgrades and stores one event in its own transaction. The outer error is a store
/// failure that ends the pull, and the inner one an event that could not be parsed.
fn store_event(
    db: &Db,
    store: &mut intel::Store,
    url: &str,
    mut event: Map<String, Value>,
    report: &mut PullReport,
) -> Result<Result<(), String>, SyncError> {
    downgrade_pulled(&mut event, &|uuid| rows::sharing_group_known(db, uuid));
    // The puller's organisation owns its copy; `Orgc`, the creator, stays the remote's.
    event.insert(
        "Org".into(),
        json!({"name": LOCAL_ORG, "uuid": LOCAL_ORG_UUID, "local": true}),
    );
    let event = Value::Object(event);
    let text = json!({ "Event": &event }).to_string();
    let parsed = match misp::parse_bytes(
        text.as_bytes(),
        Some(misp::Format::MispJson),
        &misp::FileMeta::default(),
        &misp::CsvOptions::default(),
    ) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Err(format!("invalid event: {e}"))),
    };
    let written = store.write_parsed(&parsed, url, None)?;
    // NOTE: the levels reach the rows in a second transaction, right after the event's.
    rows::record_levels(db, &event)?;
    let published: Vec<(String, i64)> = parsed
        .events
        .iter()
        .filter_map(|e| Some((e.event.uuid.clone(), e.event.publish_timestamp?)))
        .filter(|(_, time)| *time > 0)
        .collect();
    db.set_publish_timestamps(&published)?;
    report.added += written.events_added;
    report.updated += written.events_updated;
    report.attributes += written.attributes;
    report.rejected_attributes += parsed.rejected.len();
    Ok(Ok(()))
}
