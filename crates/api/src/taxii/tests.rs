//! TAXII behaviour through the router, without sockets: discovery, collections, paging,
//! `added_after` and the `match` filters, errors, and authentication.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::{AppState, Db, Role};

struct Taxii {
    router: Router,
    state: AppState,
    /// HTTP Basic credentials of the admin and of the read-only user.
    admin: String,
    reader: String,
    admin_key: String,
    _dir: tempfile::TempDir,
}

fn basic(name: &str, key: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{key}"));
    format!("Basic {encoded}")
}

fn taxii() -> Taxii {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (_, admin_key) = db.add_user("admin@example.org", Role::Admin).unwrap();
    let (_, reader_key) = db.add_user("reader@example.org", Role::ReadOnly).unwrap();
    let state = AppState::new(db);
    Taxii {
        router: crate::router(state.clone()),
        state,
        admin: basic("admin@example.org", &admin_key),
        reader: basic("reader@example.org", &reader_key),
        admin_key,
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn collection_url() -> String {
    format!(
        "/taxii2/{API_ROOT}/collections/{}/",
        indicators_collection_id()
    )
}

impl Taxii {
    async fn request(&self, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        let auth = self.admin.clone();
        let reply = self
            .request(
                "GET",
                uri,
                &[("authorization", &auth), ("accept", TAXII_MEDIA_TYPE)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some(TAXII_MEDIA_TYPE));
        reply
    }

    /// Adds an event through the MISP API; returns the uuids of its attributes.
    async fn add_event(&self, attributes: Value) -> Vec<String> {
        let event = json!({"Event": {"info": "taxii sample", "Attribute": attributes}});
        let response = self
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .method("POST")
                    .uri("/events/add")
                    .header("authorization", &self.admin_key)
                    .body(Body::from(event.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        body["Event"]["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["uuid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Sets the timestamp of attribute `uuid` and the import time of its event.
    fn set_times(&self, uuid: &str, timestamp: i64, imported_at: i64) {
        let conn = self.state.db.writer();
        conn.execute(
            "UPDATE attributes SET timestamp = ?2 WHERE uuid = ?1",
            rusqlite::params![uuid, timestamp],
        )
        .unwrap();
        conn.execute(
            "UPDATE events SET imported_at = ?2
             WHERE id = (SELECT event_id FROM attributes WHERE uuid = ?1)",
            rusqlite::params![uuid, imported_at],
        )
        .unwrap();
        // Writers keep the date added; times set back by hand need it set again.
        conn.execute(
            "UPDATE attributes SET added = MAX(COALESCE(timestamp, 0), ?2)
             WHERE event_id = (SELECT event_id FROM attributes WHERE uuid = ?1)",
            rusqlite::params![uuid, imported_at],
        )
        .unwrap();
    }

    /// Adds five md5 indicators with timestamps 1000, 2000, ... 5000 in one event imported at
    /// time 0, plus two attributes that are not indicators; returns the indicator uuids.
    async fn add_five_indicators(&self) -> Vec<String> {
        let mut attributes: Vec<Value> = (0..5)
            .map(|i| json!({"type": "md5", "value": format!("{i:032x}"), "to_ids": true}))
            .collect();
        attributes.push(json!({"type": "md5", "value": "f".repeat(32), "to_ids": false}));
        attributes.push(json!({"type": "text", "value": "no pattern", "to_ids": true}));
        let uuids = self.add_event(Value::Array(attributes)).await;
        for (i, uuid) in uuids.iter().enumerate() {
            self.set_times(uuid, 1000 * (i as i64 + 1), 0);
        }
        uuids[..5].to_vec()
    }

    /// Follows `next` from `first_uri` to the end; returns every page.
    async fn pages(&self, first_uri: &str) -> Vec<Reply> {
        let mut pages = vec![self.get(first_uri).await];
        while pages.last().unwrap().body["more"] == json!(true) {
            let next = pages.last().unwrap().body["next"]
                .as_str()
                .unwrap()
                .to_owned();
            let separator = if first_uri.contains('?') { '&' } else { '?' };
            pages.push(
                self.get(&format!("{first_uri}{separator}next={next}"))
                    .await,
            );
            assert!(pages.len() < 100, "paging does not end");
        }
        pages
    }
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_taxii_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some(TAXII_MEDIA_TYPE));
    assert!(reply.body["title"].is_string(), "{}", reply.body);
    assert!(reply.body["description"].is_string(), "{}", reply.body);
    assert_eq!(
        reply.body["http_status"],
        json!(status.as_u16().to_string())
    );
}

#[tokio::test]
async fn discovery_lists_the_api_root() {
    let t = taxii();
    let reply = t.get("/taxii2/").await;
    let root = format!("/taxii2/{API_ROOT}/");
    assert_eq!(reply.body["api_roots"], json!([root]));
    assert_eq!(reply.body["default"], json!(root));

    let reply = t.get(&root).await;
    assert_eq!(reply.body["versions"], json!([TAXII_MEDIA_TYPE]));
    assert!(reply.body["max_content_length"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn collection_is_listed_and_read_only() {
    let t = taxii();
    let reply = t.get(&format!("/taxii2/{API_ROOT}/collections/")).await;
    let collections = reply.body["collections"].as_array().unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0]["id"], json!(indicators_collection_id()));
    assert_eq!(collections[0]["can_read"], json!(true));
    assert_eq!(collections[0]["can_write"], json!(false));

    let reply = t.get(&collection_url()).await;
    assert_eq!(reply.body["media_types"], json!([STIX_MEDIA_TYPE]));
}

#[test]
fn collection_id_is_stable() {
    // UUID v5 of "Indicators" in the namespace of the local organisation's UUID.
    assert_eq!(
        indicators_collection_id(),
        "26679580-fd1d-5a6c-afb7-3726d83da31d"
    );
}

#[tokio::test]
async fn objects_are_paged_in_date_added_order() {
    let t = taxii();
    let uuids = t.add_five_indicators().await;
    let pages = t
        .pages(&format!("{}objects/?limit=2", collection_url()))
        .await;

    // The identity comes first (date added 1970), then the indicators by timestamp.
    let mut expected = vec![store::identity_id()];
    expected.extend(uuids.iter().map(|u| format!("indicator--{u}")));
    let got: Vec<String> = pages.iter().flat_map(ids).collect();
    assert_eq!(got, expected);
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|p| ids(p).len() <= 2));
    assert!(pages.last().unwrap().body.get("next").is_none());

    let second = &pages[1];
    assert_eq!(
        second.header("x-taxii-date-added-first"),
        Some("1970-01-01T00:33:20.000Z")
    );
    assert_eq!(
        second.header("x-taxii-date-added-last"),
        Some("1970-01-01T00:50:00.000Z")
    );
}

#[tokio::test]
async fn paging_is_exact_within_one_second() {
    let t = taxii();
    let attributes: Vec<Value> = (0..12)
        .map(|i| json!({"type": "sha1", "value": format!("{i:040x}"), "to_ids": true}))
        .collect();
    let uuids = t.add_event(Value::Array(attributes)).await;
    for uuid in &uuids {
        t.set_times(uuid, 7000, 7000);
    }

    let pages = t
        .pages(&format!(
            "{}objects/?limit=5&match[type]=indicator",
            collection_url()
        ))
        .await;
    let got: Vec<String> = pages.iter().flat_map(ids).collect();
    let expected: Vec<String> = uuids.iter().map(|u| format!("indicator--{u}")).collect();
    assert_eq!(got, expected);
    assert_eq!(pages.len(), 3);
}

#[tokio::test]
async fn added_after_matches_manifest_dates() {
    let t = taxii();
    t.add_five_indicators().await;
    // An event imported at 10000 with an older attribute timestamp was added at 10000.
    let late = t
        .add_event(json!([{"type": "sha256", "value": "a".repeat(64), "to_ids": true}]))
        .await;
    t.set_times(&late[0], 100, 10_000);

    let manifest = t.get(&format!("{}manifest/", collection_url())).await;
    let records = manifest.body["objects"].as_array().unwrap();
    assert_eq!(records.len(), 7);
    let last = records.last().unwrap();
    assert_eq!(last["id"], json!(format!("indicator--{}", late[0])));
    assert_eq!(last["date_added"], json!("1970-01-01T02:46:40.000Z"));
    assert_eq!(last["version"], json!("1970-01-01T00:01:40.000Z"));
    assert_eq!(last["media_type"], json!(STIX_MEDIA_TYPE));

    // Every record's date_added is the cut-off that returns exactly the records after it.
    for (n, record) in records.iter().enumerate() {
        let after = record["date_added"].as_str().unwrap();
        let reply = t
            .get(&format!("{}objects/?added_after={after}", collection_url()))
            .await;
        let expected: Vec<&str> = records[n + 1..]
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids(&reply), expected, "added_after={after}");
    }

    // A fraction of a second after 5000 still excludes the object added at 5000.
    let reply = t
        .get(&format!(
            "{}objects/?added_after=1970-01-01T01:23:19.5Z",
            collection_url()
        ))
        .await;
    assert_eq!(ids(&reply).len(), 2);
}

#[tokio::test]
async fn match_filters_select_objects() {
    let t = taxii();
    let uuids = t.add_five_indicators().await;
    let objects = format!("{}objects/", collection_url());

    let reply = t.get(&format!("{objects}?match[type]=identity")).await;
    assert_eq!(ids(&reply), [store::identity_id()]);

    let third = format!("indicator--{}", uuids[2]);
    let reply = t.get(&format!("{objects}?match[id]={third}")).await;
    assert_eq!(ids(&reply), std::slice::from_ref(&third));

    let reply = t
        .get(&format!(
            "{objects}?match[type]=indicator&match[version]=1970-01-01T00:50:00.000Z"
        ))
        .await;
    assert_eq!(ids(&reply), [third]);

    let reply = t.get(&format!("{objects}?match[version]=all")).await;
    assert_eq!(ids(&reply).len(), 6);

    let reply = t.get(&format!("{objects}?match[spec_version]=2.0")).await;
    assert_eq!(reply.body, json!({"more": false}));

    let reply = t.get(&format!("{objects}?match[type]=malware")).await;
    assert!(reply.header("x-taxii-date-added-first").is_none());
}

#[tokio::test]
async fn indicators_use_the_stix2_patterns() {
    let t = taxii();
    let uuids = t.add_five_indicators().await;
    let url = format!("{}objects/indicator--{}/", collection_url(), uuids[0]);
    let reply = t.get(&url).await;
    let object = &reply.body["objects"][0];
    assert_eq!(
        object["pattern"],
        json!(format!("[file:hashes.'MD5' = '{:032x}']", 0))
    );
    assert_eq!(object["created_by_ref"], json!(store::identity_id()));
    assert_eq!(object["modified"], json!("1970-01-01T00:16:40.000Z"));
    assert_eq!(
        reply.header("x-taxii-date-added-first"),
        Some("1970-01-01T00:16:40.000Z")
    );

    let reply = t.get(&format!("{url}versions/")).await;
    assert_eq!(reply.body["versions"], json!(["1970-01-01T00:16:40.000Z"]));
    assert_eq!(reply.body["more"], json!(false));
}

#[tokio::test]
async fn missing_objects_and_resources_are_404() {
    let t = taxii();
    t.add_five_indicators().await;
    let auth = t.admin.clone();
    let headers = [("authorization", auth.as_str())];
    let collection = collection_url();
    let missing = [
        format!("{collection}objects/indicator--{}/", uuid::Uuid::nil()),
        format!(
            "{collection}objects/malware--{}/versions/",
            uuid::Uuid::nil()
        ),
        format!("/taxii2/{API_ROOT}/collections/{}/", uuid::Uuid::nil()),
        "/taxii2/other/".to_owned(),
        format!("/taxii2/{API_ROOT}/status/{}/", uuid::Uuid::nil()),
    ];
    for uri in &missing {
        let reply = t.request("GET", uri, &headers).await;
        assert_taxii_error(&reply, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn writes_are_forbidden() {
    let t = taxii();
    let auth = t.admin.clone();
    let headers = [("authorization", auth.as_str())];
    let reply = t
        .request("POST", &format!("{}objects/", collection_url()), &headers)
        .await;
    assert_taxii_error(&reply, StatusCode::FORBIDDEN);
    let object = format!("{}objects/{}/", collection_url(), store::identity_id());
    let reply = t.request("DELETE", &object, &headers).await;
    assert_taxii_error(&reply, StatusCode::FORBIDDEN);
    let reply = t.request("PUT", &collection_url(), &headers).await;
    assert_taxii_error(&reply, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn invalid_parameters_are_400() {
    let t = taxii();
    let auth = t.admin.clone();
    let headers = [("authorization", auth.as_str())];
    for query in [
        "limit=0",
        "added_after=yesterday",
        "next=x",
        "match[version]=latest",
    ] {
        let uri = format!("{}objects/?{query}", collection_url());
        let reply = t.request("GET", &uri, &headers).await;
        assert_taxii_error(&reply, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn unsupported_accept_is_406() {
    let t = taxii();
    let auth = t.admin.clone();
    for accept in ["application/json", "application/taxii+json;version=2.0"] {
        let headers = [("authorization", auth.as_str()), ("accept", accept)];
        let reply = t.request("GET", "/taxii2/", &headers).await;
        assert_taxii_error(&reply, StatusCode::NOT_ACCEPTABLE);
    }
    let reply = t
        .request(
            "GET",
            "/taxii2/",
            &[("authorization", &auth), ("accept", "*/*")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn credentials_are_checked() {
    let t = taxii();
    let reader = t.reader.clone();
    let reply = t
        .request("GET", "/taxii2/", &[("authorization", &reader)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let key = t.admin_key.clone();
    let reply = t
        .request("GET", "/taxii2/", &[("authorization", &key)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let wrong_key = basic("admin@example.org", &"x".repeat(40));
    let wrong_name = basic("reader@example.org", &t.admin_key);
    for headers in [
        vec![],
        vec![("authorization", wrong_key.as_str())],
        vec![("authorization", wrong_name.as_str())],
    ] {
        let reply = t.request("GET", "/taxii2/", &headers).await;
        assert_taxii_error(&reply, StatusCode::UNAUTHORIZED);
        let challenge = reply.header(header::WWW_AUTHENTICATE.as_str()).unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
}

#[tokio::test]
async fn repeated_failures_are_rate_limited() {
    let t = taxii();
    let wrong = basic("admin@example.org", "wrong");
    for _ in 0..crate::auth::MAX_FAILURES {
        let reply = t
            .request("GET", "/taxii2/", &[("authorization", &wrong)])
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let admin = t.admin.clone();
    let reply = t
        .request("GET", "/taxii2/", &[("authorization", &admin)])
        .await;
    assert_taxii_error(&reply, StatusCode::TOO_MANY_REQUESTS);
}
