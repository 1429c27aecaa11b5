//! Object handlers: `objects/add/{event}`, `objects/edit/{id|uuid}` and
//! `objects/delete/{id|uuid}[/1]`, as PyMISP's add_object, update_object and
//! delete_object call them.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use misp::Event;
use serde_json::{json, Map, Value};

use super::event_checks::{attribute_errors_of, object_errors_of};
use super::events::{conflict_to_403, write_event};
use super::{delete_entry, event_body, first_segment, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::{EventEdit, FullEvent, StoredEvent};
use crate::{json, ApiError, AppState, User};

/// Unwraps `{"Object": {...}}` and gives the object and its entries uuids where missing.
fn object_body(body: Value) -> Result<Map<String, Value>, ApiError> {
    match unwrap_key(body, "Object") {
        Value::Object(mut map) => {
            event_body::fill_object_uuids(&mut map);
            Ok(map)
        }
        _ => Err(ApiError::bad_request("the object must be a JSON object")),
    }
}

/// Parses an edit that carries only `object`, validating it. A new object (`known` is
/// `None`) gets the time of the write for its attributes. An edit keeps the timestamps
/// given, for the store to compare, and `known` contains the uuids of the stored entries
/// (see `StoredEvent`).
fn object_edit(
    object: Map<String, Value>,
    known: Option<&HashSet<String>>,
    name: &str,
) -> Result<Event, ApiError> {
    let creating = known.is_none();
    let none = HashSet::new();
    let wrapped = json!({ "Object": [Value::Object(object)] });
    let mut event: Event = serde_json::from_value(wrapped)
        .map_err(|e| ApiError::bad_request(format!("invalid object: {e}")))?;
    let mut errors = Map::new();
    for o in &mut event.objects {
        errors.extend(object_errors_of(o, known.unwrap_or(&none)));
        let mut attribute_errors = Map::new();
        for (n, a) in o.attributes.iter_mut().enumerate() {
            let found = attribute_errors_of(a, creating);
            if !found.is_empty() {
                attribute_errors.insert(n.to_string(), Value::Object(found));
            }
        }
        if !attribute_errors.is_empty() {
            errors.insert("Attribute".into(), Value::Object(attribute_errors));
        }
    }
    match errors.is_empty() {
        true => Ok(event),
        false => Err(ApiError::validation(name, errors)),
    }
}

/// Renders object `uuid` of `stored` as `{"Object": {...}}` with its kept keys.
fn object_response(
    state: &AppState,
    stored: &FullEvent,
    uuid: &str,
) -> Result<Json<Value>, ApiError> {
    let mut event = json::full_event_json(stored, &[]);
    state
        .db
        .add_kept_keys(&stored.meta, &Viewer::SITE_ADMIN, &mut event)?;
    let found = event["Event"]["Object"]
        .as_array()
        .and_then(|list| list.iter().find(|o| o["uuid"] == uuid))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Json(json!({ "Object": found })))
}

pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let mut object = object_body(body)?;
    object.remove("timestamp");
    let uuid = object["uuid"].as_str().unwrap_or_default().to_lowercase();
    let event = object_edit(object.clone(), None, "Could not add Object")?;
    let json = Map::from_iter([("Object".to_owned(), json!([Value::Object(object)]))]);
    let edit = EventEdit { event, json };
    write_event(
        state,
        "Could not add Object",
        move |state| {
            state
                .db
                .edit_event_with(&key, &Viewer::of(&user), |_| Ok(edit))
        },
        move |state, stored| object_response(state, &stored, &uuid),
    )
    .await
}

pub async fn edit(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let object = object_body(body)?;
    let viewer = Viewer::of(&user);
    write_event(
        state,
        "Could not edit Object",
        move |state| {
            let mut uuid = String::new();
            let stored = state.db.edit_object_with(&key, &viewer, |before, stored| {
                uuid = stored.uuid.clone();
                object_change(object, before, stored)
            })?;
            Ok((stored, uuid))
        },
        |state, (stored, uuid)| object_response(state, &stored, &uuid),
    )
    .await
}

/// Builds the edit of the stored object `stored` of event `before` from a request's
/// object: the path names the object, whatever uuid the body gives, and the attributes
/// named by uuid are completed with their stored fields.
fn object_change(
    mut object: Map<String, Value>,
    before: &StoredEvent,
    stored: &crate::db::ObjectRow,
) -> Result<EventEdit, ApiError> {
    object.insert("uuid".into(), Value::String(stored.uuid.clone()));
    let wrapped = Map::from_iter([("Object".to_owned(), json!([Value::Object(object)]))]);
    let completed = event_body::with_stored_fields(&wrapped, &before.event);
    let inner = completed["Object"][0]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let event = object_edit(inner, Some(&before.entry_uuids), "Could not edit Object")?;
    Ok(EventEdit {
        event,
        json: wrapped,
    })
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let delete = |db: &crate::Db, key: &str, hard: bool, viewer: &Viewer| {
        Ok(db
            .delete_object(key, hard, viewer)
            .map_err(conflict_to_403)?
            .id)
    };
    let (id, message) = delete_entry(state, &user, (&rest, &body), "Object", delete).await?;
    Ok(Json(json!({
        "saved": true, "success": true, "name": message, "message": message,
        "url": format!("/objects/delete/{id}"), "id": id.to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::hard_delete;

    #[test]
    fn hard_delete_reads_path_and_body() {
        assert!(hard_delete("12/1", &json!({})));
        assert!(hard_delete("12/true", &json!({})));
        assert!(!hard_delete("12", &json!({})));
        assert!(hard_delete("12", &json!({"hard": 1})));
        assert!(!hard_delete("12.json", &json!({"hard": false})));
    }
}
