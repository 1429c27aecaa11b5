//! Attribute handlers: view, add, edit, delete and restSearch.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use misp::Attribute;
use serde_json::{json, Map, Value};

use super::events::search_body;
use super::{blocking, delete_entry, first_segment, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::EditError;
use crate::search::{named_params, SearchQuery};
use crate::{json, stream, ApiError, AppState, User};

pub async fn view(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let row = blocking(move || Ok(state.db.attribute(&key, &Viewer::of(&user))?)).await?;
    Ok(Json(json!({"Attribute": json::attribute_json(&row)})))
}

fn parse_attribute(value: Value) -> Result<Attribute, Map<String, Value>> {
    let mut attribute: Attribute = serde_json::from_value(unwrap_key(value, "Attribute"))
        .map_err(|e| field_error("value", &format!("invalid attribute: {e}")))?;
    if attribute.r#type.is_empty() {
        return Err(field_error("type", "The type field is required."));
    }
    if attribute.value.trim().is_empty() {
        return Err(field_error("value", "The value field is required."));
    }
    let errors = super::event_checks::attribute_errors_of(&mut attribute, true);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(attribute)
}

fn field_error(field: &str, message: &str) -> Map<String, Value> {
    let mut errors = Map::new();
    errors.insert(field.to_owned(), json!([message]));
    errors
}

/// Adds one attribute, or a list of them (each validated on its own, as MISP does).
pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let viewer = Viewer::of(&user);
    // The owner check comes first so that a missing or foreign event is reported before
    // the request's own errors. The write checks it again, inside its transaction.
    let check = (state.clone(), key.clone());
    blocking(move || Ok(check.0.db.check_event_owner(&check.1, &viewer)?)).await?;
    match body {
        Value::Array(items) => add_many(state, key, items, viewer).await,
        single => {
            let attribute = parse_attribute(single)
                .map_err(|errors| ApiError::validation("Could not add Attribute", errors))?;
            let row = blocking(move || {
                let row =
                    state
                        .db
                        .add_attribute(&key, &attribute, &viewer)
                        .map_err(|e| match e {
                            crate::DbError::Rejected { field, message, .. } => {
                                ApiError::validation(
                                    "Could not add Attribute",
                                    field_error(field, &message),
                                )
                            }
                            other => other.into(),
                        })?;
                state.notify_change();
                Ok(row)
            })
            .await?;
            Ok(Json(json!({"Attribute": json::attribute_json(&row)})))
        }
    }
}

async fn add_many(
    state: AppState,
    key: String,
    items: Vec<Value>,
    viewer: Viewer,
) -> Result<Json<Value>, ApiError> {
    let mut valid = Vec::new();
    let mut errors = Map::new();
    for (n, item) in items.into_iter().enumerate() {
        match parse_attribute(item) {
            Ok(a) => valid.push((n, a)),
            Err(e) => {
                errors.insert(n.to_string(), Value::Object(e));
            }
        }
    }
    let single = valid.len() == 1 && errors.is_empty();
    let (rows, errors) = blocking(move || {
        let mut rows = Vec::new();
        for (n, a) in valid {
            match state.db.add_attribute(&key, &a, &viewer) {
                Ok(row) => rows.push(row),
                Err(e @ crate::DbError::SimilarAttribute(_)) => {
                    errors.insert(n.to_string(), json!({"value": [e.to_string()]}));
                }
                Err(crate::DbError::Rejected { field, message, .. }) => {
                    errors.insert(n.to_string(), json!({ field: [message] }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        state.notify_change();
        Ok((rows, errors))
    })
    .await?;
    if rows.is_empty() && !errors.is_empty() {
        return Err(ApiError::validation("Could not add Attributes", errors));
    }
    let list: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(json::attribute_json(r)))
        .collect();
    let mut out = Map::new();
    out.insert(
        "Attribute".into(),
        if single {
            list[0].clone()
        } else {
            Value::Array(list)
        },
    );
    if !errors.is_empty() {
        out.insert("errors".into(), Value::Object(errors));
    }
    Ok(Json(Value::Object(out)))
}

/// Changes an attribute: the keys given replace the stored ones.
pub async fn edit(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let Value::Object(changes) = unwrap_key(body, "Attribute") else {
        return Err(ApiError::bad_request(
            "attributes/edit expects a JSON object",
        ));
    };
    let row = blocking(move || {
        let viewer = Viewer::of(&user);
        let row = state
            .db
            .edit_attribute(&key, &viewer, |old| merge_edit(old, changes))
            .map_err(|e| match e {
                EditError::Request(e) => e,
                EditError::Store(e @ crate::DbError::SimilarAttribute(_)) => ApiError::validation(
                    "Could not edit Attribute",
                    field_error("value", &e.to_string()),
                ),
                EditError::Store(e) => e.into(),
            })?;
        state.notify_change();
        Ok(row)
    })
    .await?;
    Ok(Json(json!({"Attribute": json::attribute_json(&row)})))
}

/// Applies the keys of an edit to the stored attribute `old` and validates the result.
fn merge_edit(
    old: &crate::db::AttributeRow,
    changes: Map<String, Value>,
) -> Result<Attribute, ApiError> {
    let mut merged = json::attribute_json(old);
    for (k, v) in changes {
        if !matches!(
            k.as_str(),
            "id" | "event_id" | "object_id" | "uuid" | "timestamp"
        ) {
            merged.insert(k, v);
        }
    }
    parse_attribute(Value::Object(merged))
        .map_err(|errors| ApiError::validation("Could not edit Attribute", errors))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let delete = |db: &crate::Db, key: &str, hard: bool, viewer: &Viewer| {
        Ok(db.delete_attribute(key, hard, viewer)?)
    };
    let (_, message) = delete_entry(state, &user, (&rest, &body), "Attribute", delete).await?;
    Ok(Json(json!({"message": message})))
}

pub async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Response {
    match search_body(body) {
        Ok(query) => stream::attributes(&state, query.for_user(&user)).await,
        Err(e) => e.into_response(),
    }
}

pub async fn search_get(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Response {
    match SearchQuery::parse(&named_params(&rest)) {
        Ok(query) => stream::attributes(&state, query.for_user(&user)).await,
        Err(e) => e.into_response(),
    }
}

pub async fn search_get_bare(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
) -> Response {
    match SearchQuery::parse(&Map::new()) {
        Ok(query) => stream::attributes(&state, query.for_user(&user)).await,
        Err(e) => e.into_response(),
    }
}
