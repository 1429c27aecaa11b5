//! Tag handlers: index, add, and attaching or removing a tag on an event or attribute.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{blocking, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::TagRow;
use crate::{ApiError, AppState, User};

fn tag_json(t: &TagRow) -> Value {
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "colour": t.colour,
        "exportable": t.exportable,
        "org_id": "0",
        "user_id": "0",
        "hide_tag": t.hide_tag,
        "numerical_value": null,
        "is_galaxy": t.name.starts_with("misp-galaxy:"),
        "is_custom_galaxy": false,
        "local_only": false,
    })
}

fn text(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub async fn index(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tags = blocking(move || Ok(state.db.tags()?)).await?;
    Ok(Json(
        json!({"Tag": tags.iter().map(tag_json).collect::<Vec<_>>()}),
    ))
}

pub async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = unwrap_key(body, "Tag");
    let Some(name) = text(&body, "name") else {
        return Err(ApiError::bad_request("a tag needs a `name`"));
    };
    let colour = text(&body, "colour");
    let tag = blocking(move || Ok(state.db.add_tag(&name, colour.as_deref())?)).await?;
    Ok(Json(json!({"Tag": tag_json(&tag)})))
}

/// `tags/attachTagToObject`: `{"uuid": <event or attribute uuid>, "tag": <name or id>}`.
pub async fn attach(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (uuid, tag) = target_and_tag(&body)?;
    blocking(move || {
        state.db.check_tag_target_owner(&uuid, &Viewer::of(&user))?;
        state.db.attach_tag(&uuid, &tag)?;
        state.notify_change();
        Ok(())
    })
    .await?;
    Ok(Json(
        json!({"saved": true, "success": "Tag attached.", "check_publish": true}),
    ))
}

/// `tags/removeTagFromObject`: `{"uuid": ..., "tag": ...}`.
pub async fn remove(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (uuid, tag) = target_and_tag(&body)?;
    blocking(move || {
        state.db.check_tag_target_owner(&uuid, &Viewer::of(&user))?;
        state.db.remove_tag(&uuid, &tag)?;
        state.notify_change();
        Ok(())
    })
    .await?;
    Ok(Json(
        json!({"saved": true, "success": "Tag removed.", "check_publish": true}),
    ))
}

fn target_and_tag(body: &Value) -> Result<(String, String), ApiError> {
    let uuid = text(body, "uuid")
        .ok_or_else(|| ApiError::bad_request("missing `uuid` of the event or attribute"))?;
    let tag = text(body, "tag")
        .ok_or_else(|| ApiError::bad_request("missing `tag` (a tag name or id)"))?;
    Ok((uuid, tag))
}
