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

/// Fetches the remote's event index. The `filters` (`published`, `timestamp`) go to the
/// server as given, and a server that ignores them returns more entries, never fewer.
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
        Err(RemoteError::Status {
            status: 404 | 405, ..
        }) => fetch_from_search(agent, config, filters),
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
        let response = request(
            agent,
            config,
            "events/restSearch",
            Some(&Value::Object(body)),
        )?;
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
    // Old MISP versions return a single event as an object, not as a list.
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
            return Err(invalid(format!("index entry {n} has no uuid or timestamp")));
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
/// changed since. Other events have none.
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
        tracing::warn!(
            event_id = id,
            "stored event JSON is corrupt; rebuilding it from rows"
        );
        return Ok(None);
    }
    Ok(serde_json::from_slice::<Map<String, Value>>(&text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://misp.example.org";

    #[test]
    fn minimal_index_entries_parse() {
        let minimal = json!([
            {"id": "4", "timestamp": "1700000100", "sighting_timestamp": "0",
             "published": true, "uuid": "5B0C1A2E-0000-4000-8000-000000000001",
             "orgc_uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
            {"id": "5", "timestamp": 1700000200, "published": false,
             "uuid": "5b0c1a2e-0000-4000-8000-000000000002"},
        ]);
        let parsed = entries(URL, minimal).expect("minimal index");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].uuid, "5b0c1a2e-0000-4000-8000-000000000001");
        assert_eq!(parsed[0].timestamp, 1_700_000_100);
        assert!(parsed[0].published);
        assert!(!parsed[1].published);
    }

    #[test]
    fn search_metadata_entries_parse() {
        let wrapped = json!([{"Event": {"uuid": "a-1", "timestamp": "7", "published": "1"}}]);
        let parsed = entries(URL, wrapped).expect("restSearch metadata");
        assert_eq!(parsed[0].uuid, "a-1");
        assert_eq!(parsed[0].timestamp, 7);
        assert!(parsed[0].published);
    }

    #[test]
    fn single_event_object_parses() {
        let single = json!({"uuid": "a-2", "timestamp": "9"});
        let parsed = entries(URL, single).expect("single event");
        assert_eq!(parsed.len(), 1);
        assert!(
            parsed[0].published,
            "entries without the key count as published"
        );
    }

    #[test]
    fn entry_without_timestamp_is_rejected() {
        let broken = json!([{"uuid": "a-3"}]);
        let error = entries(URL, broken).expect_err("entry without timestamp");
        assert!(error.to_string().contains(URL), "{error}");
        assert!(entries(URL, json!("text")).is_err());
    }
}
