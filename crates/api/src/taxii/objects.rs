//! Handlers of the object endpoints of a collection: objects, one object, its versions and
//! the manifest, each with the `X-TAXII-Date-Added-First` and `-Last` headers.

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, Uri};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::error::TaxiiError;
use super::query::{ObjectQuery, VersionFilter};
use super::store::{self, Entry, Page};
use super::{check_collection, taxii_json, DATE_ADDED_FIRST, DATE_ADDED_LAST, STIX_MEDIA_TYPE};
use crate::access::Viewer;
use crate::stix::timestamp;
use crate::{AppState, User};

type CollectionPath = Path<(String, String)>;
type ObjectPath = Path<(String, String, String)>;

/// Runs `read` on a reader connection off the async threads.
async fn with_reader<T, F>(state: &AppState, read: F) -> Result<T, TaxiiError>
where
    F: FnOnce(&rusqlite::Connection) -> Result<T, crate::DbError> + Send + 'static,
    T: Send + 'static,
{
    let db = state.db.clone();
    let result = tokio::task::spawn_blocking(move || db.reader().and_then(|conn| read(&conn)))
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "TAXII database task failed");
            TaxiiError::internal()
        })?;
    Ok(result?)
}

/// Returns `body` with `list` (when not empty) under `key`, `more`, and `next` when more
/// follow, as TAXII's envelope, manifest and versions resources have them.
fn paged_body(key: &str, list: Vec<Value>, page: &Page) -> Value {
    let mut body = Map::new();
    body.insert("more".into(), Value::Bool(page.more));
    if page.more {
        if let Some(last) = page.entries.last() {
            body.insert("next".into(), Value::String(last.cursor.encode()));
        }
    }
    // TAXII lists contain one or more items, so an empty page has none.
    if !list.is_empty() {
        body.insert(key.into(), Value::Array(list));
    }
    Value::Object(body)
}

/// Returns `body` with the date-added headers of the page's first and last entries.
fn respond(body: &Value, entries: &[Entry]) -> Response {
    let mut response = taxii_json(body);
    let headers = response.headers_mut();
    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
        for (name, added) in [
            (DATE_ADDED_FIRST, first.added),
            (DATE_ADDED_LAST, last.added),
        ] {
            if let Ok(value) = HeaderValue::from_str(&timestamp(added)) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// `GET {root}/collections/{id}/objects/`: a page of objects in an envelope.
pub async fn objects(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path((root, collection)): CollectionPath,
    uri: Uri,
) -> Result<Response, TaxiiError> {
    check_collection(&root, &collection)?;
    let query = ObjectQuery::from_uri(&uri)?;
    let viewer = Viewer::of(&user);
    let page = with_reader(&state, move |conn| store::read_page(conn, &query, &viewer)).await?;
    let objects = page.entries.iter().map(|e| e.object.clone()).collect();
    Ok(respond(
        &paged_body("objects", objects, &page),
        &page.entries,
    ))
}

fn manifest_record(entry: &Entry) -> Value {
    json!({
        "id": entry.id,
        "date_added": timestamp(entry.added),
        "version": timestamp(entry.version),
        "media_type": STIX_MEDIA_TYPE,
    })
}

/// `GET {root}/collections/{id}/manifest/`: a page of manifest records.
pub async fn manifest(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path((root, collection)): CollectionPath,
    uri: Uri,
) -> Result<Response, TaxiiError> {
    check_collection(&root, &collection)?;
    let query = ObjectQuery::from_uri(&uri)?;
    let viewer = Viewer::of(&user);
    let page = with_reader(&state, move |conn| store::read_page(conn, &query, &viewer)).await?;
    let records = page.entries.iter().map(manifest_record).collect();
    Ok(respond(
        &paged_body("objects", records, &page),
        &page.entries,
    ))
}

/// Reads object `id` and keeps it when it passes the filters of the request, which apply to
/// its one version (`match[version]` only when `by_version`, because the versions endpoint
/// has no such filter). Returns 404 when the collection has no object with that id.
async fn read_filtered_object(
    state: &AppState,
    viewer: Viewer,
    (root, collection, id): (String, String, String),
    uri: &Uri,
    by_version: bool,
) -> Result<Page, TaxiiError> {
    check_collection(&root, &collection)?;
    let mut query = ObjectQuery::from_uri(uri)?;
    if !by_version {
        query.version = VersionFilter::Any;
    }
    let entry = with_reader(state, {
        let id = id.clone();
        move |conn| store::read_object(conn, &id, &viewer)
    })
    .await?;
    let Some(entry) = entry else {
        return Err(TaxiiError::not_found(format!(
            "object `{id}` not found in collection `{collection}`"
        )));
    };
    let passes = query.spec_version_matches
        && query.version.matches(entry.version)
        && query.added_after.is_none_or(|t| entry.added > t.secs)
        && query.next.is_none();
    let entries = if passes { vec![entry] } else { Vec::new() };
    Ok(Page {
        entries,
        more: false,
    })
}

/// `GET {root}/collections/{id}/objects/{object-id}/`: the object in an envelope.
pub async fn object(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(path): ObjectPath,
    uri: Uri,
) -> Result<Response, TaxiiError> {
    let page = read_filtered_object(&state, Viewer::of(&user), path, &uri, true).await?;
    let objects = page.entries.iter().map(|e| e.object.clone()).collect();
    Ok(respond(
        &paged_body("objects", objects, &page),
        &page.entries,
    ))
}

/// `GET {root}/collections/{id}/objects/{object-id}/versions/`: the object's versions.
pub async fn versions(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(path): ObjectPath,
    uri: Uri,
) -> Result<Response, TaxiiError> {
    let page = read_filtered_object(&state, Viewer::of(&user), path, &uri, false).await?;
    let versions = page
        .entries
        .iter()
        .map(|e| Value::String(timestamp(e.version)))
        .collect();
    Ok(respond(
        &paged_body("versions", versions, &page),
        &page.entries,
    ))
}
