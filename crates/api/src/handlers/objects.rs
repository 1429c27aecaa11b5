//! Object handlers: `objects/add/{event}`, `objects/edit/{id|uuid}` and
//! `objects/delete/{id|uuid}[/1]`, as PyMISP's add_object, update_object and
//! delete_object call them.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use misp::Event;
use serde_json::{json, Map, Value};

use super::events::{conflict_to_403, prepare_for_write, write_error};
use super::{blocking, event_body, first_segment, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::FullEvent;
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

/// Parses an edit that carries only `object`, validating its attributes. New attributes
/// get the time of the write; given timestamps stay for the store to compare.
fn object_edit(object: Map<String, Value>, creating: bool, name: &str) -> Result<Event, ApiError> {
    let wrapped = json!({ "Object": [Value::Object(object)] });
    let mut event: Event = serde_json::from_value(wrapped)
        .map_err(|e| ApiError::bad_request(format!("invalid object: {e}")))?;
    let mut errors = Map::new();
    for o in &mut event.objects {
        for (n, a) in o.attributes.iter_mut().enumerate() {
            let result = match creating {
                true => prepare_for_write(a),
                false => misp::validate::prepare_attribute(a),
            };
            if let Err(e) = result {
                errors.insert(n.to_string(), json!({"value": [e.0]}));
            }
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
    let event = object_edit(object.clone(), true, "Could not add Object")?;
    blocking(move || {
        state.db.check_event_owner(&key, &Viewer::of(&user))?;
        let json = json!({ "Object": [Value::Object(object)] });
        let stored = state
            .db
            .edit_event_json(&key, &event, json.as_object())
            .map_err(|e| write_error(e, "Could not add Object"))?;
        state.notify_change();
        object_response(&state, &stored, &uuid)
    })
    .await
}

pub async fn edit(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let mut object = object_body(body)?;
    let viewer = Viewer::of(&user);
    blocking(move || {
        let event_id = state.db.object_event(&key, &viewer)?.to_string();
        state.db.check_event_owner(&event_id, &viewer)?;
        let before = state.db.event(&event_id, true, &Viewer::SITE_ADMIN)?;
        let Some(stored) = before.objects.iter().find(|o| matches_key(o, &key)) else {
            return Err(ApiError::not_found("object"));
        };
        // The path names the object, whatever uuid the body gives.
        object.insert("uuid".into(), Value::String(stored.uuid.clone()));
        let uuid = stored.uuid.clone();
        let wrapped = Map::from_iter([("Object".to_owned(), json!([Value::Object(object)]))]);
        let completed = event_body::with_stored_fields(&wrapped, &before);
        let inner = completed["Object"][0]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let event = object_edit(inner, false, "Could not edit Object")?;
        let stored = state
            .db
            .edit_event_json(&event_id, &event, Some(&wrapped))
            .map_err(|e| write_error(e, "Could not edit Object"))?;
        state.notify_change();
        object_response(&state, &stored, &uuid)
    })
    .await
}

fn matches_key(object: &crate::db::ObjectRow, key: &str) -> bool {
    object.id.to_string() == key || object.uuid.eq_ignore_ascii_case(key)
}

/// Reads MISP's hard-delete switch: `objects/delete/ID/1` (or `/true`, `/hard:1`), or
/// `"hard": 1` in the body.
fn hard_delete(rest: &str, body: &Value) -> bool {
    let in_path = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .nth(1)
        .is_some_and(|s| matches!(s, "1" | "true" | "hard:1"));
    let in_body = match body.get("hard") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true"),
        _ => false,
    };
    in_path || in_body
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let hard = hard_delete(&rest, &body);
    let viewer = Viewer::of(&user);
    let id = blocking(move || {
        let event_id = state.db.object_event(&key, &viewer)?;
        state.db.check_event_owner(&event_id.to_string(), &viewer)?;
        let old = state
            .db
            .delete_object(&key, hard)
            .map_err(conflict_to_403)?;
        state.notify_change();
        Ok(old.id)
    })
    .await?;
    let message = if hard {
        "Object permanently deleted."
    } else {
        "Object deleted."
    };
    Ok(Json(json!({
        "saved": true, "success": true, "name": message, "message": message,
        "url": format!("/objects/delete/{id}"), "id": id.to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_delete_reads_path_and_body() {
        assert!(hard_delete("12/1", &json!({})));
        assert!(hard_delete("12/true", &json!({})));
        assert!(!hard_delete("12", &json!({})));
        assert!(hard_delete("12", &json!({"hard": 1})));
        assert!(!hard_delete("12.json", &json!({"hard": false})));
    }
}
