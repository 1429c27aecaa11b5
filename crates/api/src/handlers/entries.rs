//! Helpers shared by the event report and object reference handlers: request bodies,
//! uuid checks, and rendering the entries kept in an event's stored JSON.

use serde_json::{json, Map, Value};

use super::unwrap_key;
use crate::access::Viewer;
use crate::db::{EntryKind, EntryRow, EventMeta};
use crate::{ApiError, AppState};

/// Unwraps `{"<key>": {...}}` and drops the fields the store sets itself.
pub fn entry_body(body: Value, key: &str) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut map) = unwrap_key(body, key) else {
        return Err(ApiError::bad_request(format!(
            "the {key} must be a JSON object"
        )));
    };
    for field in ["id", "event_id", "timestamp", "deleted"] {
        map.remove(field);
    }
    Ok(map)
}

/// Returns the lower-case uuid the request gives, or a new one written into `map`.
pub fn uuid_or_new(map: &mut Map<String, Value>) -> String {
    match map.get("uuid").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => u.to_lowercase(),
        _ => {
            let uuid = uuid::Uuid::new_v4().to_string();
            map.insert("uuid".into(), Value::String(uuid.clone()));
            uuid
        }
    }
}

/// Returns the per-field error of a uuid that another entry already has.
pub fn uuid_in_use(uuid: &str) -> Map<String, Value> {
    let message = format!("uuid `{uuid}` is already in use. Leave it out to get a new one");
    Map::from_iter([("uuid".to_owned(), json!([message]))])
}

/// Returns MISP's write time: the current Unix time as a string.
pub fn now_text() -> Value {
    Value::String(crate::db::now_secs().to_string())
}

/// Returns the change that soft-deletes the entry with `uuid`, stamped with the current time.
pub fn soft_delete_change(uuid: &str) -> Map<String, Value> {
    Map::from_iter([
        ("uuid".to_owned(), Value::String(uuid.to_owned())),
        ("deleted".to_owned(), Value::Bool(true)),
        ("timestamp".to_owned(), now_text()),
    ])
}

/// Returns the entry `entry` of `kind` as rendered for `viewer` in event `meta`, with its id
/// and event id from the store, or "not found" when it is deleted or hidden from `viewer`.
pub fn kept_entry(
    state: &AppState,
    meta: &EventMeta,
    viewer: &Viewer,
    kind: EntryKind,
    entry: &EntryRow,
) -> Result<Map<String, Value>, ApiError> {
    let objects: Vec<Value> = entry
        .object_uuid
        .iter()
        .map(|u| json!({ "uuid": u }))
        .collect();
    let mut wrapped = json!({ "Event": { "Object": objects } });
    state.db.add_kept_keys(meta, viewer, &mut wrapped)?;

    let list = match kind {
        EntryKind::Report => &wrapped["Event"]["EventReport"],
        EntryKind::Reference => &wrapped["Event"]["Object"][0]["ObjectReference"],
    };
    let found = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|e| {
            e.get("uuid").and_then(Value::as_str).map(str::to_lowercase) == Some(entry.uuid.clone())
        });
    let Some(found) = found else {
        return Err(match kind {
            EntryKind::Report => ApiError::not_found("event report"),
            EntryKind::Reference => ApiError::not_found("object reference"),
        });
    };
    let mut found = found.clone();
    found.insert("id".into(), Value::String(entry.id.to_string()));
    found.insert("event_id".into(), Value::String(meta.id.to_string()));
    Ok(found)
}
