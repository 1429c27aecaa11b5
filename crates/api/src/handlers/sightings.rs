//! Sighting handlers: add (by attribute id, uuid or value), list and delete.

use axum::extract::{Extension, Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, first_segment, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::NewSighting;
use crate::search::{attribute_condition, SearchQuery, Terms};
use crate::{json, ApiError, AppState, User};

fn text(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn new_sighting(body: &Value) -> Result<NewSighting, ApiError> {
    let r#type = match text(body, "type") {
        None => 0,
        Some(t) => match t.parse::<i64>() {
            Ok(n @ 0..=2) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid sighting type `{t}`; use 0, 1 or 2"
                )))
            }
        },
    };
    let date_sighting = match text(body, "timestamp").or_else(|| text(body, "date_sighting")) {
        None => None,
        Some(t) => Some(
            t.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid sighting timestamp `{t}`")))?,
        ),
    };
    Ok(NewSighting {
        r#type,
        source: text(body, "source").unwrap_or_default(),
        date_sighting,
        uuid: text(body, "uuid").filter(|_| {
            body.get("id").is_some() || body.get("value").is_some() || body.get("values").is_some()
        }),
    })
}

/// Finds the ids of the attributes whose value (or either half of it) is `value`.
fn attributes_with_value(
    state: &AppState,
    value: &str,
    user: &User,
) -> Result<Vec<String>, ApiError> {
    let mut map = serde_json::Map::new();
    map.insert("value".into(), Value::String(value.to_owned()));
    let mut query = SearchQuery::parse(&map)?.for_user(user);
    query.values = Terms {
        any: vec![value.to_owned()],
        not: Vec::new(),
    };
    let condition = attribute_condition(&query);
    let conn = state.db.reader()?;
    let sql = format!(
        "SELECT a.id FROM attributes a JOIN events e ON e.id = a.event_id WHERE {} ORDER BY a.id",
        condition.sql()
    );
    let mut stmt = conn.prepare(&sql).map_err(crate::DbError::from)?;
    let ids = stmt
        .query_map(rusqlite::params_from_iter(condition.params.iter()), |r| {
            r.get::<_, i64>(0)
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(crate::DbError::from)?;
    Ok(ids.into_iter().map(|id| id.to_string()).collect())
}

/// Reads the values a sighting names: MISP's `values` list (or a single string), and
/// `value`.
fn sighting_values(body: &Value) -> Vec<String> {
    let mut values: Vec<String> = match body.get("values") {
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    };
    values.extend(text(body, "value"));
    values
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn add_sightings(
    state: AppState,
    user: User,
    body: Value,
    attribute: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let body = unwrap_key(body, "Sighting");
    let new = new_sighting(&body)?;
    let rows = blocking(move || {
        // As in MISP, a body with only `uuid` names the attribute by its uuid.
        let keys = match attribute
            .or_else(|| text(&body, "id"))
            .or_else(|| text(&body, "attribute_id"))
            .or_else(|| {
                text(&body, "uuid")
                    .filter(|_| body.get("value").is_none() && body.get("values").is_none())
            }) {
            Some(key) => vec![key],
            None => {
                let values = sighting_values(&body);
                if values.is_empty() {
                    return Err(ApiError::bad_request(
                        "a sighting needs an attribute `id`, `uuid`, `value` or `values`",
                    ));
                }
                let mut keys = Vec::new();
                for value in values {
                    keys.extend(attributes_with_value(&state, &value, &user)?);
                }
                keys.sort();
                keys.dedup();
                keys
            }
        };
        if keys.is_empty() {
            return Err(ApiError::not_found("attribute"));
        }
        Ok(state
            .db
            .add_sightings(&keys, &new, user.id, &Viewer::of(&user))?)
    })
    .await?;
    let last = rows.last().map(json::sighting_json).unwrap_or(Value::Null);
    Ok(Json(json!({"Sighting": last})))
}

pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    add_sightings(state, user, body, None).await
}

pub async fn add_to(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    add_sightings(state, user, body, Some(first_segment(&rest))).await
}

fn wrap(rows: &[crate::db::SightingRow]) -> Json<Value> {
    Json(Value::Array(
        rows.iter()
            .map(|s| json!({"Sighting": json::sighting_json(s)}))
            .collect(),
    ))
}

/// `sightings/listSightings`: `{"context": "attribute" | "event", "id": ...}`.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&user);
    let context = text(&body, "context").unwrap_or_else(|| "event".into());
    let id = text(&body, "id");
    let rows = blocking(move || {
        let rows = match (context.as_str(), id) {
            ("attribute", Some(key)) => {
                let attribute = state.db.attribute(&key, &viewer)?;
                state
                    .db
                    .visible_sightings(None, Some(attribute.id), &viewer)?
            }
            (_, Some(key)) => {
                let event = state.db.event(&key, true, &viewer)?;
                state
                    .db
                    .visible_sightings(Some(event.meta.id), None, &viewer)?
            }
            (_, None) => state.db.visible_sightings(None, None, &viewer)?,
        };
        Ok(rows)
    })
    .await?;
    Ok(wrap(&rows))
}

pub async fn list_all(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&user);
    let rows = blocking(move || Ok(state.db.visible_sightings(None, None, &viewer)?)).await?;
    Ok(wrap(&rows))
}

pub async fn list_event(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let viewer = Viewer::of(&user);
    let rows = blocking(move || {
        let event = state.db.event(&key, true, &viewer)?;
        Ok(state
            .db
            .visible_sightings(Some(event.meta.id), None, &viewer)?)
    })
    .await?;
    Ok(wrap(&rows))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let viewer = Viewer::of(&user);
    let deleted = blocking({
        let key = key.clone();
        move || Ok(state.db.delete_sighting(&key, &viewer)?)
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found("sighting"));
    }
    Ok(Json(
        json!({"saved": true, "success": true, "name": "Sighting successfully deleted.", "message": "Sighting successfully deleted.", "url": format!("/sightings/delete/{key}")}),
    ))
}

/// `sightings/restSearch/{context}`: sightings of one attribute or event (`id`), or all,
/// filtered by `type`, `source` and time (`last`, `from`, `to`, `timestamp`).
pub async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    rest: Option<Path<String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&user);
    let context = rest.map(|Path(r)| first_segment(&r)).unwrap_or_default();
    let id = text(&body, "id");
    let sighting_type = text(&body, "type");
    let source = text(&body, "source");
    let from = ["last", "from", "timestamp"]
        .iter()
        .find_map(|k| text(&body, k))
        .map(|t| {
            crate::search::parse_time(&t)
                .ok_or_else(|| ApiError::bad_request(format!("invalid time `{t}`")))
        })
        .transpose()?;
    let to = text(&body, "to")
        .map(|t| {
            crate::search::parse_time(&t)
                .ok_or_else(|| ApiError::bad_request(format!("invalid time `{t}`")))
        })
        .transpose()?;
    let rows = blocking(move || {
        let rows = match (context.as_str(), id) {
            ("attribute", Some(key)) => {
                let attribute = state.db.attribute(&key, &viewer)?;
                state
                    .db
                    .visible_sightings(None, Some(attribute.id), &viewer)?
            }
            ("event", Some(key)) => {
                let event = state.db.event(&key, true, &viewer)?;
                state
                    .db
                    .visible_sightings(Some(event.meta.id), None, &viewer)?
            }
            _ => state.db.visible_sightings(None, None, &viewer)?,
        };
        Ok(rows)
    })
    .await?;
    let selected: Vec<Value> = rows
        .iter()
        .filter(|s| {
            sighting_type
                .as_ref()
                .is_none_or(|t| *t == s.r#type.to_string())
        })
        .filter(|s| source.as_ref().is_none_or(|src| *src == s.source))
        .filter(|s| from.is_none_or(|f| s.date_sighting >= f))
        .filter(|s| to.is_none_or(|t| s.date_sighting <= t))
        .map(|s| json!({"Sighting": json::sighting_json(s)}))
        .collect();
    Ok(Json(json!({"response": selected})))
}
