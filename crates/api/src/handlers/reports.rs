//! Event report handlers: `eventReports/add/{event}`, `eventReports/view/{id|uuid}`,
//! `eventReports/edit/{id|uuid}`, `eventReports/delete/{id|uuid}[/1]` and
//! `eventReports/index[/event_id:N]`, as PyMISP's event report calls send them.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use misp::Event;
use serde_json::{json, Map, Value};

use super::entries::{
    entry_body, kept_entry, now_text, soft_delete_change, uuid_in_use, uuid_or_new,
};
use super::event_checks::report_errors;
use super::events::{conflict_to_403, write_event};
use super::{blocking, delete_entry, first_segment, JsonBody};
use crate::access::Viewer;
use crate::db::{EditError, EntryKind, EventEdit, FullEvent};
use crate::search::named_params;
use crate::{ApiError, AppState, User};

const ADD: &str = "Could not add Event Report";
const EDIT: &str = "Could not edit Event Report";

/// Returns the per-field errors of `report`; `stored` relaxes the fields a partial edit
/// may leave out.
fn report_field_errors(report: &Map<String, Value>, stored: bool) -> Map<String, Value> {
    let uuid = report
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let known = match stored {
        true => HashSet::from([uuid.to_lowercase()]),
        false => HashSet::new(),
    };
    let list = json!([Value::Object(report.clone())]);
    let mut errors = report_errors(Some(&list), &known);
    match errors.remove("0") {
        Some(Value::Object(own)) => own,
        _ => errors,
    }
}

/// Builds the edit that merges `report` into the event's `EventReport` list by uuid.
fn report_edit(report: Map<String, Value>) -> EventEdit {
    let json = Map::from_iter([("EventReport".to_owned(), json!([Value::Object(report)]))]);
    EventEdit {
        event: Event::default(),
        json,
    }
}

/// Renders report `uuid` of the stored event as `{"EventReport": {...}}`.
fn report_response(
    state: &AppState,
    stored: &FullEvent,
    uuid: &str,
    viewer: &Viewer,
) -> Result<Json<Value>, ApiError> {
    let entry = state.db.entry(EntryKind::Report, uuid)?;
    let report = kept_entry(state, &stored.meta, viewer, EntryKind::Report, &entry)?;
    Ok(Json(json!({ "EventReport": report })))
}

pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let mut report = entry_body(body, "EventReport")?;
    let uuid = uuid_or_new(&mut report);
    report.insert("timestamp".into(), now_text());
    report.insert("deleted".into(), Value::Bool(false));
    report
        .entry("distribution")
        .or_insert_with(|| Value::String(crate::access::DIST_INHERIT.to_string()));
    let errors = report_field_errors(&report, false);
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
                return Err(EditError::Request(ApiError::validation(
                    ADD,
                    uuid_in_use(&uuid),
                )));
            }
            state
                .db
                .edit_event_with(&key, &viewer, |_| Ok(report_edit(report)))
        },
        move |state, stored| report_response(state, &stored, &written, &viewer),
    )
    .await
}

pub async fn view(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let viewer = Viewer::of(&user);
    blocking(move || {
        let entry = state.db.entry(EntryKind::Report, &key)?;
        let event = state
            .db
            .event(&entry.event_id.to_string(), false, &viewer)?;
        let report = kept_entry(&state, &event.meta, &viewer, EntryKind::Report, &entry)?;
        Ok(Json(json!({ "EventReport": report })))
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
    let mut report = entry_body(body, "EventReport")?;
    let viewer = Viewer::of(&user);
    write_event(
        state,
        EDIT,
        move |state| {
            let entry = state.db.entry(EntryKind::Report, &key)?;
            // The path names the report, whatever uuid the body gives.
            report.insert("uuid".into(), Value::String(entry.uuid.clone()));
            report.insert("timestamp".into(), now_text());
            let errors = report_field_errors(&report, true);
            if !errors.is_empty() {
                return Err(EditError::Request(ApiError::validation(EDIT, errors)));
            }
            let event = entry.event_id.to_string();
            let stored = state
                .db
                .edit_event_with(&event, &viewer, |_| Ok(report_edit(report)))?;
            Ok((stored, entry.uuid))
        },
        move |state, (stored, uuid)| report_response(state, &stored, &uuid, &viewer),
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
                .hard_delete_entry(EntryKind::Report, key, viewer)
                .map_err(conflict_to_403)?
                .id);
        }
        let entry = db.entry(EntryKind::Report, key)?;
        let change = soft_delete_change(&entry.uuid);
        db.edit_event_with(&entry.event_id.to_string(), viewer, |_| {
            Ok::<_, ApiError>(report_edit(change))
        })
        .map_err(|e| super::events::edit_error(e, "Could not delete Event Report"))?;
        Ok(entry.id)
    };
    let hard = super::hard_delete(&rest, &body);
    let (id, _) = delete_entry(state, &user, (&rest, &body), "Event Report", delete).await?;
    // MISP's message names the report and the kind of deletion.
    let message = format!(
        "Event Report {id} {} deleted",
        if hard { "hard" } else { "soft" }
    );
    Ok(Json(json!({
        "saved": true, "success": true, "name": message, "message": message,
        "url": format!("/eventReports/delete/{id}"), "id": id.to_string(),
    })))
}

/// `eventReports/index/event_id:N` (or `?event_id=N`): the reports of one event, or of
/// every event visible to the user without the filter.
pub async fn index(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    rest: Option<Path<String>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut filters = rest.map(|Path(r)| named_params(&r)).unwrap_or_default();
    for (key, value) in params {
        filters.entry(key).or_insert(Value::String(value));
    }
    let event_key = match filters.get("event_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let viewer = Viewer::of(&user);
    blocking(move || {
        let events = match event_key {
            Some(key) => vec![state.db.event(&key, false, &viewer)?],
            None => visible_events_with_reports(&state, &viewer)?,
        };
        let mut list = Vec::new();
        for event in &events {
            list.extend(event_reports(&state, event, &viewer)?);
        }
        Ok(Json(Value::Array(list)))
    })
    .await
}

fn visible_events_with_reports(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Vec<FullEvent>, ApiError> {
    let mut events = Vec::new();
    for id in state.db.events_with_entries(EntryKind::Report)? {
        match state.db.event(&id.to_string(), false, viewer) {
            Ok(event) => events.push(event),
            Err(crate::DbError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(events)
}

/// Lists the reports of `event` visible to `viewer`, each as `{"EventReport": {...}}`.
fn event_reports(
    state: &AppState,
    event: &FullEvent,
    viewer: &Viewer,
) -> Result<Vec<Value>, ApiError> {
    let mut wrapped = json!({ "Event": {} });
    state.db.add_kept_keys(&event.meta, viewer, &mut wrapped)?;
    let reports = wrapped["Event"]["EventReport"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut list = Vec::new();
    for report in reports {
        let Some(uuid) = report.get("uuid").and_then(Value::as_str) else {
            continue;
        };
        let Ok(entry) = state.db.entry(EntryKind::Report, uuid) else {
            continue;
        };
        let report = kept_entry(state, &event.meta, viewer, EntryKind::Report, &entry)?;
        list.push(json!({ "EventReport": report }));
    }
    Ok(list)
}
