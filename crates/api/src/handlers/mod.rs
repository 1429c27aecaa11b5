//! Routes of the API, grouped by the permission they need, and helpers shared by handlers.

mod attributes;
mod entries;
mod event_body;
mod event_checks;
mod events;
mod feeds;
mod objects;
mod orgs;
mod references;
mod reports;
mod server;
mod sightings;
mod tags;
mod warninglists;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};

use crate::access::Viewer;
use crate::{auth, ApiError, AppState, User};

/// Builds every route with authentication and role checks.
pub fn routes(state: AppState) -> Router {
    let read = Router::new()
        .route("/servers/getVersion", get(server::version))
        .route("/servers/getVersion.json", get(server::version))
        .route(
            "/servers/getPyMISPVersion.json",
            get(server::pymisp_version),
        )
        .route("/users/view/me", get(server::me))
        .route("/users/view/me.json", get(server::me))
        .route(
            "/attributes/describeTypes.json",
            get(server::describe_types),
        )
        .route("/events/index", get(events::index).post(events::index))
        .route(
            "/events/index/{*rest}",
            get(events::index_named).post(events::index_named),
        )
        .route("/events", get(events::index))
        .route("/events/view/{*rest}", get(events::view).post(events::view))
        .route("/events/{id}", get(events::view))
        .route("/attributes/view/{*rest}", get(attributes::view))
        .route(
            "/attributes/restSearch",
            post(attributes::search).get(attributes::search_get_bare),
        )
        .route(
            "/attributes/restSearch/{*rest}",
            get(attributes::search_get).post(attributes::search),
        )
        .route("/events/restSearch", post(events::search))
        .route(
            "/events/restSearch/{*rest}",
            get(events::search_get).post(events::search),
        )
        .route("/sightings/listSightings", post(sightings::list))
        .route(
            "/sightings/index",
            post(sightings::list).get(sightings::list_all),
        )
        .route("/sightings/index/{*rest}", get(sightings::list_event))
        .route("/sightings/restSearch", post(sightings::search))
        .route("/sightings/restSearch/{*rest}", post(sightings::search))
        .route("/tags/index", get(tags::index))
        .route("/feeds/index", get(feeds::index))
        .route("/feeds", get(feeds::index))
        .route("/tags", get(tags::index))
        .route("/warninglists/index", get(warninglists::index))
        .route("/warninglists/view/{*rest}", get(warninglists::view))
        .route("/warninglists/checkValue", post(warninglists::check_value))
        .route("/organisations/index", get(orgs::index))
        .route("/organisations/index/{*rest}", get(orgs::index))
        .route("/organisations", get(orgs::index))
        .route("/organisations/view/{*rest}", get(orgs::view))
        .route("/sharing_groups/index", get(orgs::groups))
        .route("/sharingGroups/index", get(orgs::groups))
        .route("/sharing_groups", get(orgs::groups))
        .route("/sharing_groups/view/{*rest}", get(orgs::group))
        .route("/sharingGroups/view/{*rest}", get(orgs::group))
        .route("/eventReports/view/{*rest}", get(reports::view))
        .route("/eventReports/index", get(reports::index))
        .route("/eventReports/index/{*rest}", get(reports::index));

    let write = Router::new()
        .route("/events/add", post(events::add))
        .route("/events/add/{*rest}", post(events::add))
        .route("/events/edit/{*rest}", post(events::edit).put(events::edit))
        .route(
            "/events/delete/{*rest}",
            post(events::delete).delete(events::delete),
        )
        .route("/events/publish/{*rest}", post(events::publish))
        .route("/events/unpublish/{*rest}", post(events::unpublish))
        .route("/events/freeTextImport/{*rest}", post(events::free_text))
        .route("/events/upload_stix/2", post(events::upload_stix))
        .route("/objects/add/{*rest}", post(objects::add))
        .route(
            "/objects/edit/{*rest}",
            post(objects::edit).put(objects::edit),
        )
        .route(
            "/objects/delete/{*rest}",
            post(objects::delete).delete(objects::delete),
        )
        .route("/objectReferences/add", post(references::add_bare))
        .route("/objectReferences/add/{*rest}", post(references::add))
        .route(
            "/objectReferences/delete/{*rest}",
            post(references::delete).delete(references::delete),
        )
        .route("/eventReports/add/{*rest}", post(reports::add))
        .route(
            "/eventReports/edit/{*rest}",
            post(reports::edit).put(reports::edit),
        )
        .route(
            "/eventReports/delete/{*rest}",
            post(reports::delete).delete(reports::delete),
        )
        .route("/attributes/add/{*rest}", post(attributes::add))
        .route(
            "/attributes/edit/{*rest}",
            post(attributes::edit).put(attributes::edit),
        )
        .route(
            "/attributes/delete/{*rest}",
            post(attributes::delete).delete(attributes::delete),
        )
        .route("/sightings/add", post(sightings::add))
        .route("/sightings/add/{*rest}", post(sightings::add_to))
        .route("/sightings/delete/{*rest}", post(sightings::delete))
        .route("/tags/attachTagToObject", post(tags::attach))
        .route("/tags/removeTagFromObject", post(tags::remove))
        .route("/shadowAttributes/add/{*rest}", post(proposals_unsupported))
        .route(
            "/shadowAttributes/edit/{*rest}",
            post(proposals_unsupported),
        )
        .route(
            "/shadowAttributes/delete/{*rest}",
            post(proposals_unsupported),
        )
        .route_layer(from_fn(auth::require_write));

    let admin = Router::new()
        .route("/warninglists/toggleEnable", post(warninglists::toggle))
        .route("/admin/organisations/add", post(orgs::add))
        .route("/sharing_groups/add", post(orgs::add_group))
        .route("/sharingGroups/add", post(orgs::add_group))
        .route("/sharing_groups/addOrg", post(orgs::add_org))
        .route("/sharingGroups/addOrg", post(orgs::add_org))
        .route("/sharing_groups/addOrg/{*rest}", post(orgs::add_org))
        .route("/sharingGroups/addOrg/{*rest}", post(orgs::add_org))
        .route("/sharing_groups/removeOrg", post(orgs::remove_org))
        .route("/sharingGroups/removeOrg", post(orgs::remove_org))
        .route("/sharing_groups/removeOrg/{*rest}", post(orgs::remove_org))
        .route("/sharingGroups/removeOrg/{*rest}", post(orgs::remove_org))
        .route("/tags/add", post(tags::add))
        .route("/feeds/add", post(feeds::add))
        .route(
            "/feeds/fetchFromFeed/{*rest}",
            post(feeds::fetch).get(feeds::fetch),
        )
        .route_layer(from_fn(auth::require_admin));

    read.merge(write)
        .merge(admin)
        .fallback(not_found)
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        .with_state(state)
}

/// Proposals (shadow attributes) are not kept: every user who may propose may also write.
/// PyMISP proposes after a 403 on a write, so read-only users get a 403 here too.
async fn proposals_unsupported() -> ApiError {
    ApiError::forbidden()
}

async fn not_found() -> ApiError {
    let message = "Not Found";
    ApiError::new(StatusCode::NOT_FOUND, message, message)
}

/// A JSON request body; an empty body reads as `{}`. Errors use MISP's shape.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!("request body larger than {} bytes", crate::MAX_BODY_BYTES)
                } else {
                    rejection.body_text()
                };
                ApiError::new(status, message.clone(), message)
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Object(Map::new())));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))
    }
}

/// Returns the id in the first segment of a wildcard path (`12`, `12.json`, `12/noSightings:1`).
pub fn first_segment(rest: &str) -> String {
    let first = rest.split('/').find(|s| !s.is_empty()).unwrap_or_default();
    first.strip_suffix(".json").unwrap_or(first).to_owned()
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        let message = "An internal error has occurred.";
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message, message)
    })?
}

/// Deletes the entry that `rest` names with `delete` on the blocking pool, soft or hard as
/// [`hard_delete`] reads the request, and notifies change watchers. Returns the output of
/// `delete` and MISP's message for an entry of `kind`, such as `Object deleted.`.
pub async fn delete_entry<T, D>(
    state: AppState,
    user: &User,
    (rest, body): (&str, &Value),
    kind: &str,
    delete: D,
) -> Result<(T, String), ApiError>
where
    D: FnOnce(&crate::Db, &str, bool, &Viewer) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let key = first_segment(rest);
    let hard = hard_delete(rest, body);
    let viewer = Viewer::of(user);
    let deleted = blocking(move || {
        let deleted = delete(&state.db, &key, hard, &viewer)?;
        state.notify_change();
        Ok(deleted)
    })
    .await?;
    let message = if hard {
        format!("{kind} permanently deleted.")
    } else {
        format!("{kind} deleted.")
    };
    Ok((deleted, message))
}

/// Reads MISP's hard-delete switch of `attributes/delete` and `objects/delete`: `/1`,
/// `/true` or `/hard:1` after the id in the path, or `"hard"` set in the body.
pub fn hard_delete(rest: &str, body: &Value) -> bool {
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

/// Unwraps `{"Event": {...}}` style bodies; a bare object is returned as it is.
pub fn unwrap_key(value: Value, key: &str) -> Value {
    match value {
        Value::Object(mut map) if map.get(key).is_some_and(Value::is_object) => {
            map.remove(key).unwrap_or(Value::Null)
        }
        other => other,
    }
}
