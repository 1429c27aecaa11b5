//! Object reference handlers: `objectReferences/add[/{object id|uuid}]` and
//! `objectReferences/delete/{id|uuid}[/1]`, as PyMISP's add_object_reference and
//! delete_object_reference send them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use misp::Event;
use serde_json::{json, Map, Value};

use super::entries::{
    entry_body, kept_entry, now_text, soft_delete_change, uuid_in_use, uuid_or_new,
};
use super::event_checks::reference_errors;
use super::events::{conflict_to_403, edit_error, write_event};
use super::{delete_entry, first_segment, JsonBody};
use crate::access::Viewer;
use crate::db::{EditError, EntryKind, EventEdit, FullEvent, ObjectRow, StoredEvent};
use crate::{ApiError, AppState, User};

const ADD: &str = "Could not add ObjectReference";

/// Builds the edit that merges `reference` into the `ObjectReference` list of the object
/// with uuid `object_uuid`.
fn reference_edit(object_uuid: &str, reference: Map<String, Value>) -> EventEdit {
    let object = json!({ "uuid": object_uuid, "ObjectReference": [Value::Object(reference)] });
    EventEdit {
        event: Event::default(),
        json: Map::from_iter([("Object".to_owned(), json!([object]))]),
    }
}

/// Returns (id, 0 for an attribute or 1 for an object) of the entry of `event` with uuid
/// `uuid`, as MISP's `referenced_id` and `referenced_type` give them.
fn referenced(event: &FullEvent, uuid: &str) -> Option<(i64, u8)> {
    let attributes = event
        .attributes
        .iter()
        .chain(event.objects.iter().flat_map(|o| o.attributes.iter()));
    if let Some(a) = attributes
        .clone()
        .find(|a| a.uuid.eq_ignore_ascii_case(uuid))
    {
        return Some((a.id, 0));
    }
    event
        .objects
        .iter()
        .find(|o| o.uuid.eq_ignore_ascii_case(uuid))
        .map(|o| (o.id, 1))
}

/// Completes a new reference of `object` in `before` with the fields MISP sets, checking
/// that its uuid is new in the event and that its target is in the same event.
fn new_reference(
    mut reference: Map<String, Value>,
    before: &StoredEvent,
    object: &ObjectRow,
) -> Result<EventEdit, ApiError> {
    // MISP adds references to live objects only.
    if object.deleted {
        return Err(ApiError::not_found("object"));
    }
    let uuid = uuid_or_new(&mut reference);
    if before.entry_uuids.contains(&uuid) {
        return Err(ApiError::validation(ADD, uuid_in_use(&uuid)));
    }
    let target = reference
        .get("referenced_uuid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some((target_id, target_type)) = referenced(&before.event, target) else {
        let message = format!(
            "referenced_uuid `{target}` is not an attribute or object of the object's event. \
             A reference must point within its own event"
        );
        let errors = Map::from_iter([("referenced_uuid".to_owned(), json!([message]))]);
        return Err(ApiError::validation(ADD, errors));
    };
    let fields = [
        ("referenced_id", target_id.to_string()),
        ("referenced_type", target_type.to_string()),
        ("object_id", object.id.to_string()),
        ("object_uuid", object.uuid.clone()),
        ("source_uuid", object.uuid.clone()),
    ];
    for (key, value) in fields {
        reference.insert(key.into(), Value::String(value));
    }
    reference
        .entry("comment")
        .or_insert(Value::String(String::new()));
    Ok(reference_edit(&object.uuid, reference))
}

/// Returns the object that a request names: the path's first segment, else the body's
/// `object_uuid` or `object_id`, as PyMISP sends it.
fn object_key(rest: Option<&str>, reference: &Map<String, Value>) -> Result<String, ApiError> {
    let from_path = rest.map(first_segment).filter(|k| !k.is_empty());
    let from_body =
        ["object_uuid", "object_id"]
            .iter()
            .find_map(|key| match reference.get(*key)? {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
    from_path.or(from_body).ok_or_else(|| {
        // MISP also returns a 404 for a request without an object.
        let message = "No object defined: give the object's id or uuid in the path \
                       (objectReferences/add/ID) or as object_uuid in the body.";
        ApiError::new(StatusCode::NOT_FOUND, message, message)
    })
}

pub async fn add_bare(
    state: State<AppState>,
    user: Extension<User>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    add_to(state, user, None, body).await
}

pub async fn add(
    state: State<AppState>,
    user: Extension<User>,
    Path(rest): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    add_to(state, user, Some(rest), body).await
}

async fn add_to(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    rest: Option<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut reference = entry_body(body, "ObjectReference")?;
    let key = object_key(rest.as_deref(), &reference)?;
    for field in [
        "object_id",
        "object_uuid",
        "referenced_id",
        "referenced_type",
    ] {
        reference.remove(field);
    }
    let uuid = uuid_or_new(&mut reference);
    reference.insert("timestamp".into(), now_text());
    reference.insert("deleted".into(), Value::Bool(false));
    let errors = reference_errors(&Value::Object(reference.clone()), false);
    if !errors.is_empty() {
        return Err(ApiError::validation(ADD, errors));
    }

    let viewer = Viewer::of(&user);
    let written = uuid.clone();
    write_event(
        state,
        ADD,
        move |state| {
            if state.db.entry_uuid_in_use(&uuid)? {
                let error = ApiError::validation(ADD, uuid_in_use(&uuid));
                return Err(EditError::Request(error));
            }
            state.db.edit_object_with(&key, &viewer, |before, object| {
                new_reference(reference, before, object)
            })
        },
        move |state, stored| {
            let entry = state.db.entry(EntryKind::Reference, &written)?;
            let found = kept_entry(state, &stored.meta, &viewer, EntryKind::Reference, &entry)?;
            Ok(Json(json!({ "ObjectReference": found })))
        },
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let delete = |db: &crate::Db, key: &str, hard: bool, viewer: &Viewer| {
        if hard {
            return Ok(db
                .hard_delete_entry(EntryKind::Reference, key, viewer)
                .map_err(conflict_to_403)?
                .id);
        }
        let entry = db.entry(EntryKind::Reference, key)?;
        let object_uuid = entry.object_uuid.clone().unwrap_or_default();
        let change = soft_delete_change(&entry.uuid);
        db.edit_event_with(&entry.event_id.to_string(), viewer, |_| {
            Ok::<_, ApiError>(reference_edit(&object_uuid, change))
        })
        .map_err(|e| edit_error(e, "Could not delete ObjectReference"))?;
        Ok(entry.id)
    };
    let (id, message) =
        delete_entry(state, &user, (&rest, &body), "ObjectReference", delete).await?;
    Ok(Json(json!({
        "saved": true, "success": true, "name": message, "message": message,
        "url": format!("/objectReferences/delete/{id}"), "id": id.to_string(),
    })))
}
