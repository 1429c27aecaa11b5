//! Event handlers: index, view, add, edit, delete, publish, restSearch, objects and the
//! freetext import.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use axum::Json;
use misp::{Attribute, Event};
use serde_json::{json, Map, Value};

use std::collections::HashSet;

use super::event_checks::validate_event;
use super::{blocking, event_body, first_segment, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::{now_secs, EditError, EventEdit, FullEvent, StoredEvent};
use crate::event_index::IndexQuery;
use crate::search::{named_params, SearchQuery};
use crate::{json, stream, ApiError, AppState, User};

/// `events/index` with its filters in a JSON body (POST) or in the query string.
pub async fn index(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let filters = unwrap_request(unwrap_object(body)?);
    index_with(state, user, filters, params).await
}

/// `events/index/published:1/limit:10`: filters in named parameters too.
pub async fn index_named(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut filters = unwrap_request(unwrap_object(body)?);
    filters.extend(named_params(&rest));
    index_with(state, user, filters, params).await
}

async fn index_with(
    state: AppState,
    user: User,
    mut filters: Map<String, Value>,
    params: std::collections::HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    for (key, value) in params {
        filters.entry(key).or_insert(Value::String(value));
    }
    let query = IndexQuery::parse(filters)?;
    let minimal = query.minimal;
    let viewer = Viewer::of(&user);
    let events = blocking(move || Ok(state.db.event_index_filtered(&viewer, &query)?)).await?;
    let list: Vec<Value> = events
        .iter()
        .map(|e| match minimal {
            true => crate::event_index::minimal_json(e),
            false => Value::Object(json::event_meta_json(e)),
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

fn unwrap_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "events/index expects a JSON object of filters",
        )),
    }
}

fn event_response(
    state: &AppState,
    event: &FullEvent,
    viewer: &Viewer,
) -> Result<Json<Value>, ApiError> {
    let sightings = state
        .db
        .visible_sightings(Some(event.meta.id), None, viewer)?;
    let correlations = state.db.event_correlations(event, false, viewer)?;
    let mut rendered = json::full_event_json_with(event, &sightings, &correlations);
    state.db.add_kept_keys(&event.meta, viewer, &mut rendered)?;
    Ok(Json(rendered))
}

pub async fn view(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    // `events/view/ID/deleted:1` lists soft-deleted attributes and objects too, as MISP's.
    let deleted = matches!(
        named_params(&rest).get("deleted").and_then(Value::as_str),
        Some("1" | "true")
    );
    let viewer = Viewer::of(&user);
    blocking(move || {
        let event = state.db.event(&key, deleted, &viewer)?;
        event_response(&state, &event, &viewer)
    })
    .await
}

/// Validates and normalises an attribute and gives it the time of this write.
pub fn prepare_for_write(a: &mut Attribute) -> Result<(), misp::validate::ValueError> {
    misp::validate::prepare_attribute(a)?;
    a.timestamp = None;
    Ok(())
}

/// Reads a distribution or group id given as a number or a numeric string.
fn number_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// Rejects a sharing group that the user's organisation does not see, because MISP lets
/// users share only with groups they belong to. Sync users bring groups of other servers.
fn check_sharing_groups(state: &AppState, event: &Event, user: &User) -> Result<(), ApiError> {
    if user.role == crate::Role::Sync {
        return Ok(());
    }
    let mut groups = Vec::new();
    if number_text(event.extra.get("distribution")).as_deref() == Some("4") {
        groups.extend(number_text(event.extra.get("sharing_group_id")));
    }
    for (_, a) in event.all_attributes() {
        if a.distribution.as_deref().map(str::trim) == Some("4") {
            groups.extend(a.sharing_group_id.clone());
        }
    }
    let viewer = Viewer::of(user);
    for group in groups {
        if state.db.sharing_group(&group, &viewer).is_err() {
            return Err(ApiError::bad_request(format!(
                "sharing group `{group}` not found; `sharing_groups/index` lists the groups \
                 your organisation may share with"
            )));
        }
    }
    Ok(())
}

/// Unwraps a request's event and gives its new entries uuids (see `event_body.rs`).
fn event_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match unwrap_key(body, "Event") {
        Value::Object(mut map) => {
            event_body::fill_missing_uuids(&mut map);
            Ok(map)
        }
        _ => Err(ApiError::bad_request("the event must be a JSON object")),
    }
}

fn parse_event_map(map: Map<String, Value>) -> Result<Event, ApiError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::bad_request(format!("invalid event: {e}")))
}

/// Parses a request's event; returns it with its JSON object, unwrapped, whose keys the
/// model does not cover are kept with the event.
fn parse_event(body: Value) -> Result<(Event, Option<Map<String, Value>>), ApiError> {
    let json = event_object(body)?;
    let event = parse_event_map(json.clone())?;
    Ok((event, Some(json)))
}

pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (mut event, json) = parse_event(body)?;
    let errors = validate_event(&mut event, true, &HashSet::new());
    if !errors.is_empty() {
        return Err(ApiError::validation("Could not add Event", errors));
    }
    if event.uuid.is_empty() {
        event.uuid = uuid::Uuid::new_v4().to_string();
    }
    if event.date.as_deref().is_none_or(str::is_empty) {
        event.date = Some(misp::import::epoch_to_date(now_secs()));
    }
    event.timestamp = None;
    // As in MISP, only site admins and sync users create events in another organisation's
    // name; for others the creator organisation is their own.
    let keep_orgc = matches!(user.role, crate::Role::Admin | crate::Role::Sync);
    let viewer = Viewer::of(&user);
    let response = blocking(move || {
        check_sharing_groups(&state, &event, &user)?;
        let stored = state
            .db
            .add_event_json(&event, json.as_ref(), user.org_id, keep_orgc)
            .map_err(conflict_to_403)?;
        state.notify_change();
        event_response(&state, &stored, &viewer)
    })
    .await?;
    Ok(response)
}

pub fn conflict_to_403(err: crate::DbError) -> ApiError {
    match err {
        crate::DbError::Conflict(message) => {
            ApiError::new(StatusCode::FORBIDDEN, message.clone(), message)
        }
        other => other.into(),
    }
}

pub async fn edit(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let json = event_object(body)?;
    let viewer = Viewer::of(&user);
    write_event(
        state,
        "Could not edit Event",
        move |state| {
            state.db.edit_event_with(&key, &viewer, |before| {
                let edit = event_edit(json, before)?;
                check_sharing_groups(state, &edit.event, &user)?;
                Ok::<_, ApiError>(edit)
            })
        },
        move |state, stored| event_response(state, &stored, &viewer),
    )
    .await
}

/// Runs `write` on the blocking pool and maps its failure to MISP's shapes under `name`
/// (see [`edit_error`]). On success it notifies change watchers and builds the response
/// with `respond`.
pub(super) async fn write_event<S, W, R>(
    state: AppState,
    name: &'static str,
    write: W,
    respond: R,
) -> Result<Json<Value>, ApiError>
where
    W: FnOnce(&AppState) -> Result<S, EditError<ApiError>> + Send + 'static,
    R: FnOnce(&AppState, S) -> Result<Json<Value>, ApiError> + Send + 'static,
{
    blocking(move || {
        let stored = write(&state).map_err(|e| edit_error(e, name))?;
        state.notify_change();
        respond(&state, stored)
    })
    .await
}

/// Builds an edit of the stored event `before` from a request's event (unwrapped):
/// rejects a stale copy as MISP does, completes the attributes named by uuid with their
/// stored fields, and validates the result.
fn event_edit(json: Map<String, Value>, before: &StoredEvent) -> Result<EventEdit, ApiError> {
    let mut event = parse_event_map(event_body::with_stored_fields(&json, &before.event))?;
    if event
        .timestamp
        .is_some_and(|given| given <= before.event.meta.timestamp)
    {
        return Err(ApiError::save_failed(
            "Could not edit Event",
            "Event could not be saved: Event in the request not newer than the local copy.",
        ));
    }
    let errors = validate_event(&mut event, false, &before.entry_uuids);
    if !errors.is_empty() {
        return Err(ApiError::validation("Could not edit Event", errors));
    }
    Ok(EventEdit { event, json })
}

/// Maps a failed edit to MISP's shapes: the store's errors as [`write_error`] does, the
/// request's own as they are.
pub fn edit_error(err: EditError<ApiError>, name: &str) -> ApiError {
    match err {
        EditError::Store(e) => write_error(e, name),
        EditError::Request(e) => e,
    }
}

/// Maps a failed event write to MISP's shapes: a conflict is a 403, and a repeated
/// attribute the per-field error of its position in the request's `Attribute` list.
pub fn write_error(err: crate::DbError, name: &str) -> ApiError {
    match err {
        crate::DbError::Rejected {
            kind,
            field,
            message,
        } => ApiError::rejected(name, kind, field, message),
        crate::DbError::SimilarAttribute(position) => {
            let message = crate::DbError::SimilarAttribute(position).to_string();
            let mut errors = Map::new();
            errors.insert(
                "Attribute".into(),
                json!({ position.to_string(): {"value": [message]} }),
            );
            ApiError::validation(name, errors)
        }
        other => conflict_to_403(other),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = change_owned_event(state, &user, &rest, |db, key| db.delete_event(key)).await?;
    Ok(Json(json!({
        "saved": true, "success": true, "name": "Event deleted.", "message": "Event deleted.",
        "url": format!("/events/delete/{id}"), "id": id.to_string(),
    })))
}

/// Runs `change` on the event named by the first segment of `rest` once the user's
/// organisation is checked as its owner, then signals the detector to reload.
async fn change_owned_event<F>(
    state: AppState,
    user: &User,
    rest: &str,
    change: F,
) -> Result<i64, ApiError>
where
    F: FnOnce(&crate::Db, &str) -> Result<i64, crate::DbError> + Send + 'static,
{
    let key = first_segment(rest);
    let viewer = Viewer::of(user);
    blocking(move || {
        state.db.check_event_owner(&key, &viewer)?;
        let id = change(&state.db, &key)?;
        state.notify_change();
        Ok(id)
    })
    .await
}

async fn set_published(
    state: AppState,
    user: User,
    rest: String,
    published: bool,
) -> Result<Json<Value>, ApiError> {
    let id = change_owned_event(state, &user, &rest, move |db, key| {
        db.publish_event(key, published)
    })
    .await?;
    let (name, url) = if published {
        ("Publish", format!("/events/publish/{id}"))
    } else {
        ("Unpublish", format!("/events/unpublish/{id}"))
    };
    let message = if published {
        "Event published."
    } else {
        "Event unpublished."
    };
    Ok(Json(
        json!({"saved": true, "success": true, "name": name, "message": message, "url": url, "id": id.to_string()}),
    ))
}

pub async fn publish(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_published(state, user, rest, true).await
}

pub async fn unpublish(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_published(state, user, rest, false).await
}

pub async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Response {
    match search_body(body) {
        Ok(query) => stream::events(&state, query.for_user(&user)).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

pub async fn search_get(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Response {
    match SearchQuery::parse(&named_params(&rest)) {
        Ok(query) => stream::events(&state, query.for_user(&user)).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

/// Parses a restSearch JSON body, with its filters at the top level or inside MISP's
/// `request` key.
pub fn search_body(body: Value) -> Result<SearchQuery, ApiError> {
    match body {
        Value::Object(map) => SearchQuery::parse(&unwrap_request(map)),
        _ => Err(ApiError::bad_request("restSearch expects a JSON object")),
    }
}

/// MISP accepts restSearch filters inside a `request` key too.
pub fn unwrap_request(mut map: Map<String, Value>) -> Map<String, Value> {
    match map.remove("request") {
        Some(Value::Object(inner)) => inner,
        Some(other) => {
            map.insert("request".into(), other);
            map
        }
        None => map,
    }
}

pub async fn free_text(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let text = body
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let adhere = matches!(body.get("adhereToWarninglists"), Some(Value::Bool(true)))
        || body.get("adhereToWarninglists").and_then(Value::as_str) == Some("soft");
    let mut attributes = free_text_attributes(&text);
    blocking(move || {
        let viewer = Viewer::of(&user);
        state.db.check_event_owner(&key, &viewer)?;
        if adhere {
            let conn = state.db.reader()?;
            let matcher = stream::load_matcher(&conn)?;
            attributes.retain(|a| matcher.check(&a.r#type, &a.value).is_empty());
        }
        let mut out = Vec::new();
        for a in &attributes {
            let row = state.db.add_attribute(&key, a, &viewer)?;
            out.push(Value::Object(json::attribute_json(&row)));
        }
        state.notify_change();
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// Finds indicators in free text as MISP's freetext import does. Each token (split at
/// whitespace, quotes, brackets, commas and semicolons) is refanged and its type guessed.
/// Tokens that are no indicator are skipped, and repeats are kept once.
fn free_text_attributes(text: &str) -> Vec<Attribute> {
    let separators = |c: char| c.is_whitespace() || "\"'<>(){},;".contains(c);
    let mut seen = std::collections::HashSet::new();
    let mut attributes = Vec::new();
    for token in text.split(separators) {
        let token = token.trim_end_matches(['.', ':', '!', '?']);
        if token.is_empty() {
            continue;
        }
        let refanged = misp::import::guess::refang(token);
        let Ok((type_name, value)) = misp::import::guess::guess_type(&refanged) else {
            continue;
        };
        if !seen.insert((type_name, value.clone())) {
            continue;
        }
        let mut attribute = Attribute {
            r#type: type_name.to_owned(),
            value,
            ..Attribute::default()
        };
        if misp::validate::prepare_attribute(&mut attribute).is_ok() {
            attributes.push(attribute);
        }
    }
    attributes
}

/// `events/upload_stix/2`: imports a STIX 2.0 or 2.1 bundle as a new event.
pub async fn upload_stix(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let meta = misp::FileMeta {
        name: "STIX upload".into(),
        source_key: format!("api:upload_stix:{}", uuid::Uuid::new_v4()),
        mtime: now_secs(),
    };
    // PyMISP's `upload_stix(data=str)` sends the bundle as a JSON string; unwrap it.
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::String(inner)) => axum::body::Bytes::from(inner),
        _ => body,
    };
    let parsed = misp::parse_bytes(&body, Some(misp::Format::Stix2), &meta, &Default::default())
        .map_err(|e| ApiError::bad_request(format!("invalid STIX 2 bundle: {e}")))?;
    let Some(first) = parsed.events.into_iter().next() else {
        return Err(ApiError::bad_request(
            "the STIX bundle contains no supported indicators",
        ));
    };
    let mut event = first.event;
    event.timestamp = None;
    for a in &mut event.attributes {
        a.timestamp = None;
    }
    let viewer = Viewer::of(&user);
    blocking(move || {
        free_stix_uuids(&state, &mut event)?;
        let stored = state
            .db
            .add_event_for(&event, user.org_id, false)
            .map_err(conflict_to_403)?;
        state.notify_change();
        event_response(&state, &stored, &viewer)
    })
    .await
}

/// Gives new uuids to the attributes and objects of an uploaded bundle whose uuids are
/// stored already, because uuids are unique across the store. A bundle exported from this
/// instance names its indicators by the uuids of the attributes it was made from.
fn free_stix_uuids(state: &AppState, event: &mut Event) -> Result<(), ApiError> {
    let free = |uuid: &mut Option<String>| -> Result<(), ApiError> {
        if let Some(given) = uuid.as_deref() {
            if state.db.uuid_in_use(given)? {
                *uuid = None;
            }
        }
        Ok(())
    };
    for a in &mut event.attributes {
        free(&mut a.uuid)?;
    }
    for o in &mut event.objects {
        free(&mut o.uuid)?;
        for a in &mut o.attributes {
            free(&mut a.uuid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_finds_refanged_indicators() {
        let found = free_text_attributes(
            "seen 8.8.8.8, evil[.]example[.]com and 44D88612FEA8A8F36DE82E1278ABB02F.",
        );
        let pairs: Vec<(&str, &str)> = found
            .iter()
            .map(|a| (a.r#type.as_str(), a.value.as_str()))
            .collect();
        assert!(
            pairs.contains(&("hostname", "evil.example.com")),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("md5", "44d88612fea8a8f36de82e1278abb02f")),
            "{pairs:?}"
        );
        assert!(
            pairs
                .iter()
                .any(|(t, v)| t.starts_with("ip-") && *v == "8.8.8.8"),
            "{pairs:?}"
        );
    }
}
