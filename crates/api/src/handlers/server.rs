//! Instance and user information: `servers/getVersion`, `users/view/me` and
//! `attributes/describeTypes.json`.

use axum::extract::{Extension, State};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::{ApiError, AppState, User};

/// MISP version whose API this server follows.
pub const MISP_VERSION: &str = "2.5.2";

pub async fn version() -> Json<Value> {
    Json(json!({
        "version": MISP_VERSION,
        "pymisp_recommended_version": MISP_VERSION,
        "perm_sync": false,
        "perm_sighting": true,
        "perm_galaxy_editor": false,
        "request_encoding": [],
        "filter_sightings": false,
    }))
}

pub async fn pymisp_version() -> Json<Value> {
    Json(json!({"version": MISP_VERSION}))
}

fn role_json(user: &User) -> Value {
    let role = user.role;
    let write = role.can_write();
    let admin = role.is_admin();
    json!({
        "id": role.id().to_string(),
        "name": role.as_str(),
        "perm_add": write,
        "perm_modify": write,
        "perm_modify_org": write,
        "perm_publish": write,
        "perm_delegate": false,
        "perm_sync": matches!(role, crate::Role::Sync | crate::Role::Admin),
        "perm_admin": admin,
        "perm_audit": admin,
        "perm_auth": true,
        "perm_site_admin": admin,
        "perm_regexp_access": admin,
        "perm_tagger": write,
        "perm_template": admin,
        "perm_sharing_group": admin,
        "perm_tag_editor": admin,
        "perm_sighting": write,
        "perm_object_template": admin,
        "perm_galaxy_editor": admin,
        "perm_warninglist": admin,
        "perm_publish_zmq": false,
        "perm_publish_kafka": false,
        "perm_decaying": false,
        "perm_view_feed_correlations": true,
        "default_role": false,
        "restricted_to_site_admin": false,
        "enforce_rate_limit": false,
        "rate_limit_count": "0",
        "memory_limit": "",
        "max_execution_time": "",
        "permission": if admin { "3" } else if write { "2" } else { "0" },
        "permission_description": if write { "read/write" } else { "read" },
    })
}

pub async fn me(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
) -> Result<Json<Value>, ApiError> {
    let key = user.org_id.to_string();
    let org = super::blocking(move || Ok(state.db.org(&key)?)).await?;
    Ok(Json(json!({
        "User": {
            "id": user.id.to_string(),
            "email": user.name,
            "org_id": user.org_id.to_string(),
            "role_id": user.role.id().to_string(),
            "autoalert": false,
            "contactalert": false,
            "disabled": false,
            "termsaccepted": true,
            "change_pw": false,
            "date_created": user.created.to_string(),
            "date_modified": user.created.to_string(),
            "last_login": "0",
            "current_login": "0",
            "nids_sid": "0",
            "gpgkey": "",
            "certif_public": "",
            "server_id": "0",
            "invited_by": "0",
            "expiration": null,
            "force_logout": false,
            "sub": null,
            "external_auth_required": false,
            "external_auth_key": "",
            "notification_daily": false,
            "notification_weekly": false,
            "notification_monthly": false,
            "totp": null,
            "hotp_counter": null,
            "last_pw_change": null,
        },
        "Role": role_json(&user),
        "UserSetting": [],
        "Organisation": super::orgs::org_json(&org),
    })))
}

/// Rebuilds MISP's describeTypes document from the type table of the `misp` crate.
pub async fn describe_types() -> Json<Value> {
    let table = misp::types::describe_types();
    let mut names: Vec<&String> = table.types.keys().collect();
    names.sort();
    let mut defaults = Map::new();
    for name in &names {
        let info = &table.types[*name];
        defaults.insert(
            (*name).clone(),
            json!({"default_category": info.default_category, "to_ids": u8::from(info.default_to_ids)}),
        );
    }
    let mut mappings = Map::new();
    for category in &table.categories {
        let types: Vec<&String> = names
            .iter()
            .copied()
            .filter(|n| table.types[*n].categories.contains(category))
            .collect();
        mappings.insert(category.clone(), json!(types));
    }
    Json(json!({"result": {
        "sane_defaults": defaults,
        "types": names,
        "categories": table.categories,
        "category_type_mappings": mappings,
    }}))
}
