//! Soft-deleted attributes as MISP treats them: sightings on them are rejected, and
//! `attributes/restSearch` and `events/view` list them only on request.

use axum::http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::{api, Api};

/// Adds an event with two domains and soft-deletes the second; returns the event uuid
/// and the uuids of the kept and the deleted attribute.
async fn event_with_deleted(api: &Api) -> (String, String, String) {
    let event = json!({"Event": {"info": "deleted", "Attribute": [
        {"type": "domain", "value": "kept.example"},
        {"type": "domain", "value": "gone.example"}]}});
    let (status, added) = api.call("POST", "/events/add", event).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let uuid = |n: usize| {
        added["Event"]["Attribute"][n]["uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (kept, gone) = (uuid(0), uuid(1));
    let (status, body) = api
        .call("POST", &format!("/attributes/delete/{gone}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = added["Event"]["uuid"].as_str().unwrap().to_owned();
    (event, kept, gone)
}

#[tokio::test]
async fn sightings_skip_deleted_attributes() {
    let api = api();
    let (_, kept, gone) = event_with_deleted(&api).await;
    let (status, body) = api
        .call(
            "POST",
            "/sightings/add",
            json!({"values": ["kept.example"], "source": "s"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Sighting"]["source"], "s");
    let (status, body) = api
        .call("POST", "/sightings/add", json!({"id": kept}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .call("POST", "/sightings/add", json!({"id": gone}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["url"], "/sightings/add");
    let (status, _) = api
        .call(
            "POST",
            "/sightings/add",
            json!({"values": ["gone.example"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleted_filters_of_search_and_view() {
    let api = api();
    let (event, _, gone) = event_with_deleted(&api).await;
    let count = |body: &Value| body["response"]["Attribute"].as_array().map_or(0, Vec::len);
    for (deleted, expected) in [
        (json!([0, 1]), 2),
        (json!(1), 2),
        (json!(0), 1),
        (json!("only"), 1),
    ] {
        let body = json!({"eventid": event, "deleted": deleted});
        let (status, found) = api.call("POST", "/attributes/restSearch", body).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(count(&found), expected, "deleted: {deleted}");
    }
    let (_, only) = api
        .call(
            "POST",
            "/attributes/restSearch",
            json!({"eventid": event, "deleted": "only"}),
        )
        .await;
    assert_eq!(only["response"]["Attribute"][0]["uuid"], gone.as_str());

    let (_, view) = api
        .call("GET", &format!("/events/view/{event}"), json!({}))
        .await;
    assert_eq!(view["Event"]["Attribute"].as_array().unwrap().len(), 1);
    let (_, view) = api
        .call("GET", &format!("/events/view/{event}/deleted:1"), json!({}))
        .await;
    assert_eq!(view["Event"]["Attribute"].as_array().unwrap().len(), 2);
}
