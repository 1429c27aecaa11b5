//! The remote's event index (`events/index` with `minimal`, or restSearch metadata where
//! the index is missing) and the local store's side of the comparison.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::remote::{request, RemoteConfig, RemoteError};
use crate::Db;

/// Events per restSearch page when the remote has no `events/index`.
const SEARCH_PAGE_SIZE: u64 = 500;

/// One event of a remote's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Lowercase uuid.
    pub uuid: String,
    /// Last change, in seconds since the epoch.
    pub timestamp: i64,
    pub published: bool,
}

/// Fetches the remote's event index. `filters` go to the server as given (`published`,
/// `timestamp`); a server that ignores them returns more entries, never fewer.
pub(crate) fn fetch(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    filters: &Map<String, Value>,
) -> Result<Vec<IndexEntry>, RemoteError> {
    let mut body = filters.clone();
    body.insert("minimal".into(), json!(true));
    match request(agent, config, "events/index", Some(&Value::Object(body))) {
        Ok(response) => entries(&config.url, response),
        // Some MISP-compatible servers serve restSearch only.
        Err(RemoteError::Status { status, .. }) if matches!(status, 404 | 405) => {
            fetch_from_search(agent, config, filters)
        }
        Err(e) => Err(e),
    }
}

fn fetch_from_search(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    filters: &Map<String, Value>,
) -> Result<Vec<IndexEntry>, RemoteError> {
    let mut all = Vec::new();
    for page in 1.. {
        let mut body = filters.clone();
        body.insert("returnFormat".into(), json!("json"));
        body.insert("metadata".into(), json!(true));
        body.insert("limit".into(), json!(SEARCH_PAGE_SIZE));
        body.insert("page".into(), json!(page));
        let response = request(agent, config, "events/restSearch", Some(&Value::Object(body)))?;
        let list = match response {
            Value::Object(mut map) => map.remove("response").unwrap_or(Value::Null),
            other => other,
        };
        let page_entries = entries(&config.url, list)?;
        let count = page_entries.len() as u64;
        all.extend(page_entries);
        if count < SEARCH_PAGE_SIZE {
            break;
        }
    }
    Ok(all)
}

/// Reads index entries from a list of events, bare or wrapped in `{"Event": ...}`.
fn entries(url: &str, response: Value) -> Result<Vec<IndexEntry>, RemoteError> {
    let invalid = |reason: String| RemoteError::Response {
        url: url.to_owned(),
        reason,
    };
    // MISP before 2.4.100 returned a single event as an object.
    let list = match response {
        Value::Array(list) => list,
        Value::Object(map) if map.contains_key("uuid") => vec![Value::Object(map)],
        _ => return Err(invalid("expected a list of events".into())),
    };
    let mut out = Vec::with_capacity(list.len());
    for (n, item) in list.iter().enumerate() {
        let event = item.get("Event").unwrap_or(item);
        let uuid = event.get("uuid").and_then(Value::as_str);
        let timestamp = event.get("timestamp").and_then(number);
        let (Some(uuid), Some(timestamp)) = (uuid, timestamp) else {
            return Err(invalid(format!(
                "index entry {n} has no uuid or timestamp"
            )));
        };
        out.push(IndexEntry {
            uuid: uuid.to_lowercase(),
            timestamp,
            published: event
                .get("published")
                .is_none_or(|v| super::distribution::flag(Some(v))),
        });
    }
    Ok(out)
}

/// Reads an integer given as a number or a numeric string.
pub(crate) fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Timestamps of the local events, by lowercase uuid.
pub(crate) fn local_timestamps(db: &Db) -> Result<HashMap<String, i64>, crate::DbError> {
    let conn = db.reader()?;
    let mut stmt = conn.prepare("SELECT lower(uuid), timestamp FROM events")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reads the MISP JSON kept for event `id` when it was imported as MISP JSON and not
/// changed since; `None` for other events.
pub(crate) fn stored_json(
    conn: &Connection,
    id: i64,
) -> Result<Option<Map<String, Value>>, rusqlite::Error> {
    use std::io::Read;
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT json_lz4 FROM event_json WHERE event_id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(blob) = blob else {
        return Ok(None);
    };
    let mut text = Vec::with_capacity(blob.len() * 4);
    if lz4_flex::frame::FrameDecoder::new(blob.as_slice())
        .read_to_end(&mut text)
        .is_err()
    {
        tracing::warn!(event_id = id, "stored event JSON is corrupt; rebuilding it from rows");
        return Ok(None);
    }
    Ok(serde_json::from_slice::<Map<String, Value>>(&text).ok())
}
