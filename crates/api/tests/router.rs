//! Handler behaviour through the router, without sockets: authentication and roles, MISP's
//! error shape, events, attributes, restSearch and sightings.

use api::{AppState, Db, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    router: Router,
    state: AppState,
    admin: String,
    reader: String,
    _dir: tempfile::TempDir,
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (_, admin) = db.add_user("admin", Role::Admin).unwrap();
    let (_, reader) = db.add_user("reader", Role::ReadOnly).unwrap();
    let state = AppState::new(db);
    Api {
        router: api::router(state.clone()),
        state,
        admin,
        reader,
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("Authorization", key);
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, text) = self
            .call(method, path, Some(&self.admin.clone()), body)
            .await;
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        (status, value)
    }

    async fn add_sample_event(&self) -> Value {
        let event = json!({"Event": {"info": "sample", "Attribute": [
            {"type": "md5", "value": "0749BAE92CA336A02C83D126E04EC628"},
            {"type": "filename|sha256", "value": "a.exe|E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"},
            {"type": "comment", "value": "note", "to_ids": false}
        ]}});
        let (status, body) = self.json("POST", "/events/add", Some(event)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn assert_misp_error(body: &str, path: &str) {
    let value: Value = serde_json::from_str(body).unwrap();
    assert!(value["name"].is_string(), "{body}");
    assert!(value["message"].is_string(), "{body}");
    assert_eq!(value["url"], path);
}

#[tokio::test]
async fn missing_key_gets_403_in_misp_shape() {
    let api = api();
    let (status, body) = api.call("GET", "/servers/getVersion", None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_misp_error(&body, "/servers/getVersion");
}

#[tokio::test]
async fn wrong_key_gets_403() {
    let api = api();
    let wrong = "A".repeat(40);
    let (status, body) = api.call("GET", "/users/view/me", Some(&wrong), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_misp_error(&body, "/users/view/me");
}

#[tokio::test]
async fn misp_auth_header_is_accepted() {
    let api = api();
    let request = Request::builder()
        .uri("/users/view/me")
        .header("X-MISP-AUTH", &api.reader)
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let me: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(me["User"]["email"], "reader");
    assert_eq!(me["Role"]["perm_add"], false);
    assert!(me["UserSetting"].is_array());
}

#[tokio::test]
async fn repeated_failures_are_rate_limited() {
    let api = api();
    let wrong = "B".repeat(40);
    for _ in 0..api::auth::MAX_FAILURES {
        let (status, _) = api
            .call("GET", "/servers/getVersion", Some(&wrong), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = api
        .call("GET", "/servers/getVersion", Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_misp_error(&body, "/servers/getVersion");
}

#[tokio::test]
async fn read_only_key_cannot_write() {
    let api = api();
    let event = json!({"Event": {"info": "x"}});
    let (status, body) = api
        .call(
            "POST",
            "/events/add",
            Some(&api.reader.clone()),
            Some(event),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_misp_error(&body, "/events/add");
    let (status, _) = api
        .call(
            "POST",
            "/attributes/restSearch",
            Some(&api.reader.clone()),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_value_rejected_per_field() {
    let api = api();
    let event = api.add_sample_event().await;
    let id = event["Event"]["id"].as_str().unwrap();
    let path = format!("/attributes/add/{id}");
    let (status, body) = api
        .json(
            "POST",
            &path,
            Some(json!({"type": "sha256", "value": "abc"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["saved"], false);
    assert!(body["errors"]["value"][0].is_string(), "{body}");
    assert_eq!(body["url"], path);
}

#[tokio::test]
async fn oversized_body_is_rejected() {
    let api = api();
    let big = "x".repeat(api::MAX_BODY_BYTES + 1);
    let (status, body) = api
        .call(
            "POST",
            "/events/add",
            Some(&api.admin.clone()),
            Some(Value::String(big)),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_misp_error(&body, "/events/add");
}

#[tokio::test]
async fn event_ids_and_values_are_misp_strings() {
    let api = api();
    let event = api.add_sample_event().await;
    let e = &event["Event"];
    assert!(e["id"].is_string());
    assert!(e["timestamp"].is_string());
    assert_eq!(
        e["Attribute"][0]["value"],
        "0749bae92ca336a02c83d126e04ec628"
    );
    assert_eq!(e["Attribute"][0]["category"], "Payload delivery");
    let (status, viewed) = api
        .json(
            "GET",
            &format!("/events/view/{}", e["uuid"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(viewed["Event"]["Attribute"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn search_matches_either_half_of_composite() {
    let api = api();
    api.add_sample_event().await;
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let (_, found) = api
        .json(
            "POST",
            "/attributes/restSearch",
            Some(json!({"value": sha.to_uppercase()})),
        )
        .await;
    let list = found["response"]["Attribute"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["type"], "filename|sha256");
    let (_, by_name) = api
        .json(
            "POST",
            "/attributes/restSearch",
            Some(json!({"value": "a.exe"})),
        )
        .await;
    assert_eq!(
        by_name["response"]["Attribute"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn search_by_named_parameters() {
    let api = api();
    api.add_sample_event().await;
    let (status, found) = api
        .json("GET", "/attributes/restSearch/type:md5/to_ids:1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["response"]["Attribute"].as_array().unwrap().len(), 1);
    let (_, wild) = api
        .json("GET", "/attributes/restSearch/value:0749%25", None)
        .await;
    assert_eq!(wild["response"]["Attribute"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn search_filters_and_pages() {
    let api = api();
    api.add_sample_event().await;
    let search = |body: Value| api.json("POST", "/attributes/restSearch", Some(body));
    let count = |v: &Value| v["response"]["Attribute"].as_array().unwrap().len();
    assert_eq!(count(&search(json!({"to_ids": 0})).await.1), 1);
    assert_eq!(
        count(&search(json!({"category": "Payload delivery"})).await.1),
        2
    );
    assert_eq!(count(&search(json!({"timestamp": "1d"})).await.1), 3);
    assert_eq!(
        count(&search(json!({"timestamp": "4102444800"})).await.1),
        0
    );
    assert_eq!(count(&search(json!({"limit": 2, "page": 2})).await.1), 1);
    assert_eq!(count(&search(json!({"eventid": "999"})).await.1), 0);
    assert_eq!(count(&search(json!({"no_such_filter": true})).await.1), 3);
}

#[tokio::test]
async fn search_csv_and_text_formats() {
    let api = api();
    api.add_sample_event().await;
    let (status, csv) = api
        .call(
            "POST",
            "/attributes/restSearch",
            Some(&api.admin.clone()),
            Some(json!({"returnFormat": "csv", "type": "md5"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("uuid,event_id,category,type,value"));
    let (_, text) = api
        .call(
            "POST",
            "/attributes/restSearch",
            Some(&api.admin.clone()),
            Some(json!({"returnFormat": "text", "type": "md5"})),
        )
        .await;
    assert_eq!(text, "0749bae92ca336a02c83d126e04ec628\n");
}

#[tokio::test]
async fn warninglist_enforced_on_request() {
    let api = api();
    let event = api.add_sample_event().await;
    let id = event["Event"]["id"].as_str().unwrap();
    let empty = json!({"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"});
    api.json("POST", &format!("/attributes/add/{id}"), Some(empty))
        .await;
    let (_, all) = api
        .json(
            "POST",
            "/attributes/restSearch",
            Some(json!({"type": "md5"})),
        )
        .await;
    assert_eq!(all["response"]["Attribute"].as_array().unwrap().len(), 2);
    let body = json!({"type": "md5", "enforceWarninglist": 1});
    let (_, enforced) = api.json("POST", "/attributes/restSearch", Some(body)).await;
    assert_eq!(
        enforced["response"]["Attribute"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn sightings_added_by_value_and_listed() {
    let api = api();
    let event = api.add_sample_event().await;
    let attribute_id = event["Event"]["Attribute"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sha = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    let (status, added) = api
        .json(
            "POST",
            "/sightings/add",
            Some(json!({"value": sha, "source": "test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["Sighting"]["attribute_id"], attribute_id.as_str());
    let body = json!({"context": "attribute", "id": attribute_id});
    let (_, listed) = api
        .json("POST", "/sightings/listSightings", Some(body))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["Sighting"]["source"], "test");
}

#[tokio::test]
async fn edit_and_delete_attribute() {
    let api = api();
    let event = api.add_sample_event().await;
    let id = event["Event"]["Attribute"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, edited) = api
        .json(
            "POST",
            &format!("/attributes/edit/{id}"),
            Some(json!({"comment": "changed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["Attribute"]["comment"], "changed");
    assert_eq!(edited["Attribute"]["type"], "md5");
    api.json("POST", &format!("/attributes/delete/{id}"), None)
        .await;
    let (_, found) = api
        .json(
            "POST",
            "/attributes/restSearch",
            Some(json!({"type": "md5"})),
        )
        .await;
    assert_eq!(found["response"]["Attribute"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn writes_notify_the_detector() {
    let api = api();
    let changes = api.state.subscribe_changes();
    let before = *changes.borrow();
    api.add_sample_event().await;
    assert!(*changes.borrow() > before);
}

#[tokio::test]
async fn deleted_event_is_not_found() {
    let api = api();
    let event = api.add_sample_event().await;
    let id = event["Event"]["id"].as_str().unwrap();
    let (status, _) = api
        .json("POST", &format!("/events/delete/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api.json("GET", &format!("/events/view/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["url"], format!("/events/view/{id}"));
}

#[tokio::test]
async fn describe_types_lists_hash_types() {
    let api = api();
    let (status, body) = api
        .json("GET", "/attributes/describeTypes.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["sane_defaults"]["md5"]["to_ids"], 1);
    assert!(body["result"]["category_type_mappings"]["Payload delivery"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "sha256"));
}

#[tokio::test]
async fn refused_write_with_unread_body_closes_the_connection() {
    // The server drops a connection whose request body it did not read; the response
    // must say so, or a client reusing the connection loses its next request.
    let api = api();
    let body = json!({"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"}).to_string();
    let request = Request::builder()
        .method("POST")
        .uri("/attributes/add/1")
        .header("Authorization", api.reader.clone())
        .header("Content-Length", body.len())
        .body(Body::from(body))
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["connection"], "close");

    let request = Request::builder()
        .method("GET")
        .uri("/events/index")
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("connection").is_none());
}
