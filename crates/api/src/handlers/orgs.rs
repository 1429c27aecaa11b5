//! Organisation and sharing group handlers: `organisations/index|view`,
//! `admin/organisations/add`, and `sharing_groups/index|view|add|addOrg|removeOrg` in
//! MISP's shapes (PyMISP writes `sharingGroups/...`, which is routed here too).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{blocking, first_segment, unwrap_key, JsonBody};
use crate::access::Viewer;
use crate::db::{NewSharingGroup, Org, SharingGroup};
use crate::{ApiError, AppState, User};

/// An organisation without the `{"Organisation": ...}` wrapper.
pub fn org_json(org: &Org) -> Value {
    let created = org.created.to_string();
    json!({
        "id": org.id.to_string(),
        "name": org.name,
        "uuid": org.uuid,
        "local": org.local,
        "date_created": created,
        "date_modified": created,
        "description": "",
        "type": "",
        "nationality": "",
        "sector": "",
        "created_by": "0",
        "contacts": "",
        "restricted_to_domain": [],
        "landingpage": null,
    })
}

/// `organisations/index[/scope:local|external|all]`: `[{"Organisation": {...}}]`.
pub async fn index(
    State(state): State<AppState>,
    rest: Option<Path<String>>,
) -> Result<Json<Value>, ApiError> {
    let scope = rest
        .map(|Path(r)| super::super::search::named_params(&r))
        .and_then(|p| p.get("scope").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "local".into());
    let orgs = blocking(move || Ok(state.db.orgs(false)?)).await?;
    let list = orgs
        .iter()
        .filter(|o| match scope.as_str() {
            "external" => !o.local,
            "all" => true,
            _ => o.local,
        })
        .map(|o| json!({"Organisation": org_json(o)}))
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `organisations/view/{id|uuid|name}`.
pub async fn view(
    State(state): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let org = blocking(move || Ok(state.db.org(&key)?)).await?;
    Ok(Json(json!({"Organisation": org_json(&org)})))
}

fn text(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn flag(body: &Value, key: &str) -> Option<bool> {
    match body.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64() == Some(1)),
        Value::String(s) => Some(matches!(s.trim(), "1" | "true")),
        _ => None,
    }
}

/// `admin/organisations/add` (site admins): adds a local organisation.
pub async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body = unwrap_key(body, "Organisation");
    let name = text(&body, "name")
        .ok_or_else(|| ApiError::bad_request("an organisation needs a `name`"))?;
    let org = blocking(move || Ok(state.db.ensure_local_org(&name)?)).await?;
    Ok(Json(json!({"Organisation": org_json(&org)})))
}

/// A sharing group as MISP's `sharing_groups/view` shapes it.
fn group_json(group: &SharingGroup, creator: Option<&Org>, viewer: &Viewer) -> Value {
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|(org, extend)| {
            json!({
                "sharing_group_id": group.id.to_string(),
                "org_id": org.id.to_string(),
                "extend": extend,
                "Organisation": org_json(org),
            })
        })
        .collect();
    let editable = viewer.site_admin || group.org_id == viewer.org_id;
    json!({
        "SharingGroup": {
            "id": group.id.to_string(),
            "uuid": group.uuid,
            "name": group.name,
            "description": group.description,
            "releasability": group.releasability,
            "local": true,
            "active": group.active,
            "roaming": false,
            "org_id": group.org_id.to_string(),
            "sync_user_id": "0",
            "created": group.created.to_string(),
            "modified": group.modified.to_string(),
            "org_count": members.len().to_string(),
        },
        "Organisation": creator.map(org_json).unwrap_or(Value::Null),
        "SharingGroupOrg": members,
        "SharingGroupServer": [{
            "sharing_group_id": group.id.to_string(),
            "server_id": "0",
            "all_orgs": group.all_orgs,
            "Server": {"id": "0", "name": "Local instance"},
        }],
        "editable": editable,
        "deletable": editable,
    })
}

/// Renders groups with their creator organisations.
fn groups_json(
    state: &AppState,
    groups: &[SharingGroup],
    viewer: &Viewer,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let creator = state.db.org(&group.org_id.to_string()).ok();
        out.push(group_json(group, creator.as_ref(), viewer));
    }
    Ok(out)
}

/// `sharing_groups/index`: `{"response": [...]}` with the groups the user may see.
pub async fn groups(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&user);
    let list = blocking(move || {
        let groups = state.db.sharing_groups(&viewer)?;
        groups_json(&state, &groups, &viewer)
    })
    .await?;
    Ok(Json(json!({"response": list})))
}

/// `sharing_groups/view/{id|uuid}`.
pub async fn group(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = first_segment(&rest);
    let viewer = Viewer::of(&user);
    let group = blocking(move || {
        let group = state.db.sharing_group(&key, &viewer)?;
        Ok(groups_json(&state, &[group], &viewer)?.remove(0))
    })
    .await?;
    Ok(Json(group))
}

/// `sharing_groups/add` (site admins): the creating user's organisation becomes the first
/// member; `all_orgs` (or a `SharingGroupServer` entry with it) opens it to every local one.
pub async fn add_group(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let servers_all = body
        .get("SharingGroupServer")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|s| flag(s, "all_orgs") == Some(true)));
    let body = unwrap_key(body, "SharingGroup");
    let name = text(&body, "name")
        .ok_or_else(|| ApiError::bad_request("a sharing group needs a `name`"))?;
    let new = NewSharingGroup {
        name,
        uuid: text(&body, "uuid"),
        description: text(&body, "description").unwrap_or_default(),
        releasability: text(&body, "releasability").unwrap_or_default(),
        all_orgs: flag(&body, "all_orgs").unwrap_or(servers_all),
        active: flag(&body, "active").unwrap_or(true),
    };
    let viewer = Viewer::of(&user);
    let group = blocking(move || {
        let group = state
            .db
            .add_sharing_group(user.org_id, &new)
            .map_err(conflict_to_400)?;
        Ok(groups_json(&state, &[group], &viewer)?.remove(0))
    })
    .await?;
    Ok(Json(group))
}

fn conflict_to_400(err: crate::DbError) -> ApiError {
    match err {
        crate::DbError::Conflict(message) => ApiError::bad_request(message),
        other => other.into(),
    }
}

/// The sharing group and organisation of `addOrg`/`removeOrg`: from the path
/// (`.../{sg}/{org}`) or from the body (`sg_id`, `org_id`), as PyMISP sends them.
fn group_and_org(rest: Option<Path<String>>, body: &Value) -> Result<(String, String), ApiError> {
    let parts: Vec<String> = rest
        .map(|Path(r)| {
            r.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let group = parts.first().cloned().or_else(|| text(body, "sg_id"));
    let org = parts.get(1).cloned().or_else(|| text(body, "org_id"));
    match (group, org) {
        (Some(g), Some(o)) => Ok((g, o)),
        _ => Err(ApiError::bad_request(
            "give the sharing group and organisation as `/{sg_id}/{org_id}` or `sg_id` and `org_id`",
        )),
    }
}

/// `sharing_groups/addOrg` (site admins).
pub async fn add_org(
    State(state): State<AppState>,
    rest: Option<Path<String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (group, org) = group_and_org(rest, &body)?;
    let extend = flag(&body, "extend").unwrap_or(false);
    blocking(move || Ok(state.db.add_org_to_sharing_group(&group, &org, extend)?)).await?;
    let message = "Organisation added to the sharing group.";
    Ok(Json(json!({
        "saved": true, "success": true, "name": message, "message": message,
        "url": "/sharing_groups/addOrg",
    })))
}

/// `sharing_groups/removeOrg` (site admins).
pub async fn remove_org(
    State(state): State<AppState>,
    rest: Option<Path<String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (group, org) = group_and_org(rest, &body)?;
    blocking(move || Ok(state.db.remove_org_from_sharing_group(&group, &org)?)).await?;
    let message = "Organisation removed from the sharing group.";
    Ok(Json(json!({
        "saved": true, "success": true, "name": message, "message": message,
        "url": "/sharing_groups/removeOrg",
    })))
}
