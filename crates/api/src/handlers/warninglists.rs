//! Warninglist handlers: index, view, toggle and `checkValue`.

use axum::extract::{Path, State};
use axum::Json;
use intel::Action;
use rusqlite::params;
use serde_json::{json, Map, Value};

use super::{blocking, first_segment, JsonBody};
use crate::{stream, ApiError, AppState, DbError};

const LIST_COLUMNS: &str = "id, name, description, version, type, action, matching_attributes,
    json_array_length(entries)";

fn list_json(r: &rusqlite::Row) -> rusqlite::Result<Value> {
    let matching: String = r.get(6)?;
    let matching: Vec<String> = serde_json::from_str(&matching).unwrap_or_default();
    Ok(json!({
        "id": r.get::<_, i64>(0)?.to_string(),
        "name": r.get::<_, String>(1)?,
        "description": r.get::<_, String>(2)?,
        "version": r.get::<_, Option<i64>>(3)?.unwrap_or(1).to_string(),
        "type": r.get::<_, String>(4)?,
        // NOTE: the store has no disabled state: `suppress` lists count as enabled and
        // `annotate` lists, which only mark matches, as disabled.
        "enabled": r.get::<_, String>(5)? == "suppress",
        "default": true,
        "category": "false-positive",
        "warninglist_entry_count": r.get::<_, i64>(7)?.to_string(),
        "valid_attributes": matching.join(", "),
    }))
}

pub async fn index(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let lists = blocking(move || {
        let conn = state.db.reader()?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {LIST_COLUMNS} FROM warninglists ORDER BY id"
            ))
            .map_err(DbError::from)?;
        let rows = stmt
            .query_map([], list_json)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(DbError::from)?;
        Ok(rows)
    })
    .await?;
    let wrapped: Vec<Value> = lists
        .into_iter()
        .map(|l| json!({"Warninglist": l}))
        .collect();
    Ok(Json(json!({"Warninglists": wrapped})))
}

pub async fn view(
    State(state): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let id: i64 = key
        .parse()
        .map_err(|_| ApiError::not_found("warninglist"))?;
    blocking(move || {
        let conn = state.db.reader()?;
        let row = conn
            .query_row(
                &format!("SELECT {LIST_COLUMNS}, entries FROM warninglists WHERE id = ?1"),
                [id],
                |r| Ok((list_json(r)?, r.get::<_, String>(8)?)),
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => ApiError::not_found("warninglist"),
                e => DbError::from(e).into(),
            })?;
        let (mut list, entries) = row;
        let entries: Vec<String> = serde_json::from_str(&entries).unwrap_or_default();
        list["WarninglistEntry"] = entries
            .iter()
            .enumerate()
            .map(|(n, v)| json!({"id": (n + 1).to_string(), "value": v, "warninglist_id": id.to_string(), "comment": null}))
            .collect();
        Ok(Json(json!({"Warninglist": list})))
    })
    .await
}

/// Checks values against the warninglists; returns only the values on a list, each with
/// the lists that contain it, as MISP does.
pub async fn check_value(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let values: Vec<String> = match body {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s],
        Value::Object(map) => match map.get("value") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    blocking(move || {
        let conn = state.db.reader()?;
        let matcher = stream::load_matcher(&conn)?;
        let mut out = Map::new();
        for value in values {
            let (type_name, normalized) = misp::import::guess::guess_type(&value)
                .map(|(t, v)| (t.to_owned(), v))
                .unwrap_or_else(|_| (String::new(), value.clone()));
            let hits = matcher.check(&type_name, &normalized);
            if hits.is_empty() {
                continue;
            }
            let mut list = Vec::new();
            for hit in hits {
                let id: i64 = conn
                    .query_row(
                        "SELECT id FROM warninglists WHERE name = ?1",
                        [&hit.name],
                        |r| r.get(0),
                    )
                    .map_err(DbError::from)?;
                list.push(json!({"id": id.to_string(), "name": hit.name, "matched": normalized}));
            }
            out.insert(value, Value::Array(list));
        }
        Ok(Json(Value::Object(out)))
    })
    .await
}

/// `warninglists/toggleEnable`: `{"id": ..., "name": ..., "enabled": bool}`.
pub async fn toggle(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let enabled = match body.get("enabled") {
        Some(Value::Bool(b)) => *b,
        Some(v) => v.as_i64().or_else(|| v.as_str()?.parse().ok()) != Some(0),
        None => true,
    };
    let ids: Vec<String> = ["id", "name"]
        .iter()
        .filter_map(|k| body.get(*k))
        .flat_map(|v| match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        })
        .filter_map(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
        .collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "toggleEnable needs a warninglist `id` or `name`",
        ));
    }
    let action = if enabled {
        Action::Suppress
    } else {
        Action::Annotate
    };
    let changed = blocking(move || {
        let conn = state.db.writer();
        let mut changed = 0;
        for key in &ids {
            changed += conn
                .execute(
                    "UPDATE warninglists SET action = ?1 WHERE CAST(id AS TEXT) = ?2 OR name = ?2",
                    params![action.as_str(), key],
                )
                .map_err(DbError::from)?;
        }
        state.notify_change();
        Ok(changed)
    })
    .await?;
    if changed == 0 {
        return Err(ApiError::not_found("warninglist"));
    }
    let verb = if enabled { "enabled" } else { "disabled" };
    Ok(Json(
        json!({"saved": true, "success": format!("{changed} warninglist(s) {verb}")}),
    ))
}
