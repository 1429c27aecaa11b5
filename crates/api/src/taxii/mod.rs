//! TAXII 2.1 server under `/taxii2/`: discovery, one API root, and one read-only collection
//! of the store's indicators as STIX 2.1, for the API's users and keys.

mod auth;
mod error;
mod objects;
mod query;
mod store;
#[cfg(test)]
mod tests;

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::json::LOCAL_ORG_UUID;
use crate::AppState;
pub use error::TaxiiError;

/// Media type of every TAXII 2.1 response.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Media type of the objects in the collections.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

/// Name of the one API root, the path segment after `/taxii2/`.
pub const API_ROOT: &str = "intel";

/// Title of the indicator collection; its id is derived from it.
const INDICATORS_TITLE: &str = "Indicators";

pub const DATE_ADDED_FIRST: HeaderName = HeaderName::from_static("x-taxii-date-added-first");
pub const DATE_ADDED_LAST: HeaderName = HeaderName::from_static("x-taxii-date-added-last");

/// Returns the id of the indicator collection: a UUID v5 of its title in the namespace of the
/// local organisation's UUID, so it stays the same across restarts and installations.
pub fn indicators_collection_id() -> String {
    let namespace = Uuid::parse_str(LOCAL_ORG_UUID).unwrap_or(Uuid::nil());
    Uuid::new_v5(&namespace, INDICATORS_TITLE.as_bytes()).to_string()
}

/// Builds the TAXII routes with authentication and `Accept` negotiation applied, unknown
/// paths under `/taxii2/` included.
pub fn routes(state: AppState) -> Router {
    let collection = "/{root}/collections/{collection}";
    let taxii = Router::new()
        .route("/{root}/", read(get(api_root)))
        .route("/{root}/collections/", read(get(collections)))
        .route(&format!("{collection}/"), read(get(collection_info)))
        .route(
            &format!("{collection}/objects/"),
            read(get(objects::objects).post(read_only)),
        )
        .route(
            &format!("{collection}/objects/{{object}}/"),
            read(get(objects::object).delete(read_only)),
        )
        .route(
            &format!("{collection}/objects/{{object}}/versions/"),
            read(get(objects::versions)),
        )
        .route(
            &format!("{collection}/manifest/"),
            read(get(objects::manifest)),
        )
        .fallback(not_found);

    // A nested router's "/" is the prefix without its slash, so discovery is routed here.
    let discovery = Router::new()
        .route("/taxii2/", read(get(discovery)))
        .route("/taxii2", read(get(discovery)));
    discovery
        .nest("/taxii2", taxii)
        .layer(from_fn(auth::negotiate))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .with_state(state)
}

/// Returns a TAXII 405 for the other methods on a resource.
fn read(router: MethodRouter<AppState>) -> MethodRouter<AppState> {
    router.fallback(|| async { TaxiiError::method_not_allowed() })
}

/// Returns `value` as a TAXII 2.1 response.
fn taxii_json(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TAXII_MEDIA_TYPE),
        )],
        value.to_string(),
    )
        .into_response()
}

async fn discovery() -> Response {
    // NOTE: the root is a path, which clients resolve against the discovery URL (as
    // taxii2-client 2.3 does), because the server cannot know the scheme and host that
    // clients reach it by behind a proxy. A client that requires absolute URLs fails here.
    let root = format!("/taxii2/{API_ROOT}/");
    taxii_json(&json!({
        "title": "iocwatch TAXII server",
        "description": "Indicators of the iocwatch intel store as STIX 2.1",
        "default": root,
        "api_roots": [root],
    }))
}

/// Checks that `root` is the API root.
fn check_root(root: &str) -> Result<(), TaxiiError> {
    if root == API_ROOT {
        Ok(())
    } else {
        Err(TaxiiError::not_found(format!(
            "API root `{root}` not found; the server has one, `{API_ROOT}`"
        )))
    }
}

/// Checks that `root` and `collection` name the indicator collection.
fn check_collection(root: &str, collection: &str) -> Result<(), TaxiiError> {
    check_root(root)?;
    if collection.eq_ignore_ascii_case(&indicators_collection_id()) {
        Ok(())
    } else {
        Err(TaxiiError::not_found(format!(
            "collection `{collection}` not found in API root `{root}`"
        )))
    }
}

async fn api_root(Path(root): Path<String>) -> Result<Response, TaxiiError> {
    check_root(&root)?;
    Ok(taxii_json(&json!({
        "title": "iocwatch indicators",
        "description": "Indicators with to_ids set, as STIX 2.1",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": crate::MAX_BODY_BYTES,
    })))
}

fn indicators_collection() -> Value {
    json!({
        "id": indicators_collection_id(),
        "title": INDICATORS_TITLE,
        "description": "Every attribute with to_ids set whose type has a STIX pattern, as a \
                        STIX 2.1 indicator, and the identity of the organisation that creates them",
        "can_read": true,
        "can_write": false,
        "media_types": [STIX_MEDIA_TYPE],
    })
}

async fn collections(Path(root): Path<String>) -> Result<Response, TaxiiError> {
    check_root(&root)?;
    Ok(taxii_json(
        &json!({"collections": [indicators_collection()]}),
    ))
}

async fn collection_info(
    Path((root, collection)): Path<(String, String)>,
) -> Result<Response, TaxiiError> {
    check_collection(&root, &collection)?;
    Ok(taxii_json(&indicators_collection()))
}

/// Rejects writes with 403, the TAXII status for a collection whose `can_write` is false.
async fn read_only(Path(params): Path<Vec<(String, String)>>) -> Result<Response, TaxiiError> {
    let value = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    check_collection(value("root"), value("collection"))?;
    Err(TaxiiError::forbidden(
        "the collection is read-only; add indicators through the MISP API or `iocwatch intel import`",
    ))
}

async fn not_found() -> TaxiiError {
    TaxiiError::not_found("no TAXII resource at this URL; start at /taxii2/")
}
