//! Preparation of a request's event JSON before it is parsed and stored: every new
//! attribute, object, event report and object reference gets its uuid here, so the rows
//! and the kept keys (see `db/extras.rs`) name it by the same uuid.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::db::{AttributeRow, FullEvent};
use crate::json;

/// Gives a random uuid to each attribute, object, `EventReport` and `ObjectReference` of
/// `event` (unwrapped) that has none.
pub fn fill_missing_uuids(event: &mut Map<String, Value>) {
    fill_list(event, "Attribute");
    fill_list(event, "EventReport");
    if let Some(Value::Array(objects)) = event.get_mut("Object") {
        for object in objects.iter_mut().filter_map(Value::as_object_mut) {
            fill_uuid(object);
            fill_list(object, "Attribute");
            fill_list(object, "ObjectReference");
        }
    }
}

/// Gives a random uuid to an object of a request, and to its attributes and references,
/// where they have none.
pub fn fill_object_uuids(object: &mut Map<String, Value>) {
    fill_uuid(object);
    fill_list(object, "Attribute");
    fill_list(object, "ObjectReference");
}

/// Keys of a stored attribute that a partial attribute of an edit does not take over: the
/// row's ids, and its timestamp, which a write replaces by its own time.
const NOT_TAKEN_OVER: &[&str] = &[
    "id",
    "event_id",
    "object_id",
    "timestamp",
    "first_seen",
    "last_seen",
];

/// Completes the attributes of an edit (unwrapped) that name a stored attribute by uuid
/// with that attribute's fields, so `{"uuid": U, "to_ids": false}` changes only `to_ids`,
/// as in MISP. Returns the completed copy of `event`.
pub fn with_stored_fields(event: &Map<String, Value>, stored: &FullEvent) -> Map<String, Value> {
    let mut rows: HashMap<String, &AttributeRow> = HashMap::new();
    let all = stored
        .attributes
        .iter()
        .chain(stored.objects.iter().flat_map(|o| o.attributes.iter()));
    for row in all {
        rows.insert(row.uuid.to_lowercase(), row);
    }
    let mut completed = event.clone();
    complete_list(&mut completed, &rows);
    if let Some(Value::Array(objects)) = completed.get_mut("Object") {
        for object in objects.iter_mut().filter_map(Value::as_object_mut) {
            complete_list(object, &rows);
        }
    }
    completed
}

fn complete_list(parent: &mut Map<String, Value>, rows: &HashMap<String, &AttributeRow>) {
    let Some(Value::Array(items)) = parent.get_mut("Attribute") else {
        return;
    };
    for item in items.iter_mut() {
        let Some(given) = item.as_object() else {
            continue;
        };
        let uuid = given
            .get("uuid")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let Some(row) = uuid.and_then(|u| rows.get(&u).copied()) else {
            continue;
        };
        let mut merged = json::attribute_json(row);
        merged.retain(|key, _| !NOT_TAKEN_OVER.contains(&key.as_str()));
        merged.extend(given.clone());
        *item = Value::Object(merged);
    }
}

fn fill_list(parent: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Array(items)) = parent.get_mut(key) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            fill_uuid(item);
        }
    }
}

fn fill_uuid(item: &mut Map<String, Value>) {
    let missing = match item.get("uuid") {
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Null) | None => true,
        Some(_) => false,
    };
    if missing {
        let uuid = uuid::Uuid::new_v4().to_string();
        item.insert("uuid".into(), Value::String(uuid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_entries_get_uuids_and_given_ones_stay() {
        let mut event = json!({
            "Attribute": [{"value": "a"}, {"uuid": "kept", "value": "b"}],
            "EventReport": [{"name": "r"}],
            "Object": [{"name": "file", "ObjectReference": [{"referenced_uuid": "x"}],
                "Attribute": [{"uuid": "", "value": "c"}]}],
        });
        fill_missing_uuids(event.as_object_mut().unwrap());
        assert!(event["Attribute"][0]["uuid"].as_str().unwrap().len() == 36);
        assert_eq!(event["Attribute"][1]["uuid"], "kept");
        assert!(event["EventReport"][0]["uuid"].is_string());
        let object = &event["Object"][0];
        assert!(object["uuid"].is_string());
        assert!(object["ObjectReference"][0]["uuid"].is_string());
        assert_eq!(object["Attribute"][0]["uuid"].as_str().unwrap().len(), 36);
    }
}
