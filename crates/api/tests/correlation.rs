//! Correlations through the router: `RelatedEvent` in event views and event searches,
//! `RelatedAttribute` with `includeCorrelations`, the over-correlation flag, and links that
//! follow attribute edits and deletes.

use serde_json::{json, Value};

mod common;
use common::{api, Api};

const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

impl Api {
    /// Adds an event with the given attributes; returns its id.
    async fn add_event(&self, info: &str, attributes: Value) -> String {
        let event = json!({"Event": {"info": info, "Attribute": attributes}});
        let body = self.json("POST", "/events/add", Some(event)).await;
        body["Event"]["id"].as_str().unwrap().to_owned()
    }

    async fn related_event_ids(&self, id: &str) -> Vec<String> {
        let body = self.json("GET", &format!("/events/view/{id}"), None).await;
        body["Event"]["RelatedEvent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Event"]["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn attr(kind: &str, value: &str) -> Value {
    json!({"type": kind, "value": value})
}

#[tokio::test]
async fn event_view_lists_related_events() {
    let api = api();
    let first = api
        .add_event("first", json!([attr("sha256", SHA256)]))
        .await;
    let composite = format!("dropper.exe|{SHA256}");
    let second = api
        .add_event("second", json!([attr("filename|sha256", &composite)]))
        .await;
    let third = api
        .add_event("third", json!([attr("domain", "unrelated.example")]))
        .await;

    assert_eq!(api.related_event_ids(&first).await, [second.as_str()]);
    assert_eq!(api.related_event_ids(&second).await, [first.as_str()]);
    assert!(api.related_event_ids(&third).await.is_empty());

    let body = api.json("GET", &format!("/events/{first}"), None).await;
    let related = &body["Event"]["RelatedEvent"][0]["Event"];
    assert_eq!(related["info"], "second");
    assert_eq!(related["orgc_id"], "1");
    assert!(related["Orgc"]["name"].is_string());
    assert_eq!(body["Event"]["Attribute"][0]["over_correlation"], false);
}

#[tokio::test]
async fn searches_include_correlations_on_request() {
    let api = api();
    let first = api
        .add_event("first", json!([attr("ip-dst", "192.0.2.8")]))
        .await;
    let second = api
        .add_event("second", json!([attr("ip-src", "192.0.2.8")]))
        .await;

    let query = json!({"value": "192.0.2.8", "eventid": first, "includeCorrelations": 1});
    let body = api
        .json("POST", "/attributes/restSearch", Some(query))
        .await;
    let attribute = &body["response"]["Attribute"][0];
    let related = attribute["RelatedAttribute"].as_array().unwrap();
    assert_eq!(related.len(), 1);
    assert_eq!(related[0]["event_id"], second.as_str());
    assert_eq!(related[0]["type"], "ip-src");
    assert_eq!(related[0]["Event"]["info"], "second");
    assert_eq!(attribute["over_correlation"], false);

    let plain = json!({"value": "192.0.2.8", "eventid": first});
    let body = api
        .json("POST", "/attributes/restSearch", Some(plain))
        .await;
    assert!(body["response"]["Attribute"][0]
        .get("RelatedAttribute")
        .is_none());

    let query = json!({"eventid": first, "includeCorrelations": 1});
    let body = api.json("POST", "/events/restSearch", Some(query)).await;
    let event = &body["response"][0]["Event"];
    assert_eq!(event["RelatedEvent"][0]["Event"]["id"], second.as_str());
    let related = &event["Attribute"][0]["RelatedAttribute"];
    assert_eq!(related[0]["event_id"], second.as_str());
}

#[tokio::test]
async fn edits_and_deletes_keep_links_exact() {
    let api = api();
    let first = api
        .add_event("first", json!([attr("domain", "shared.example")]))
        .await;
    let second = api
        .add_event("second", json!([attr("domain", "shared.example")]))
        .await;
    assert_eq!(api.related_event_ids(&first).await, [second.as_str()]);

    let view = api
        .json("GET", &format!("/events/view/{second}"), None)
        .await;
    let attribute_id = view["Event"]["Attribute"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let edit = json!({"value": "changed.example"});
    api.json(
        "POST",
        &format!("/attributes/edit/{attribute_id}"),
        Some(edit),
    )
    .await;
    assert!(api.related_event_ids(&first).await.is_empty());

    let edit = json!({"value": "shared.example"});
    api.json(
        "POST",
        &format!("/attributes/edit/{attribute_id}"),
        Some(edit),
    )
    .await;
    assert_eq!(api.related_event_ids(&first).await, [second.as_str()]);

    api.json(
        "POST",
        &format!("/attributes/delete/{attribute_id}"),
        Some(json!({})),
    )
    .await;
    assert!(api.related_event_ids(&first).await.is_empty());

    let third = api
        .add_event("third", json!([attr("domain", "shared.example")]))
        .await;
    assert_eq!(api.related_event_ids(&first).await, [third.as_str()]);
    api.json("POST", &format!("/events/delete/{third}"), Some(json!({})))
        .await;
    assert!(api.related_event_ids(&first).await.is_empty());
}

#[tokio::test]
async fn disabled_correlation_links_nothing() {
    let api = api();
    let first = api
        .add_event(
            "first",
            json!([attr("md5", "0749bae92ca336a02c83d126e04ec628")]),
        )
        .await;
    let quiet = json!([{"type": "md5", "value": "0749bae92ca336a02c83d126e04ec628",
        "disable_correlation": true}]);
    api.add_event("second", quiet).await;
    assert!(api.related_event_ids(&first).await.is_empty());

    let view = api
        .json("GET", &format!("/events/view/{first}"), None)
        .await;
    assert_eq!(view["Event"]["Attribute"][0]["disable_correlation"], false);

    let quiet_event = json!({"Event": {"info": "quiet", "disable_correlation": true,
        "Attribute": [attr("md5", "0749bae92ca336a02c83d126e04ec628")]}});
    let added = api.json("POST", "/events/add", Some(quiet_event)).await;
    assert_eq!(added["Event"]["disable_correlation"], true);
    assert!(api.related_event_ids(&first).await.is_empty());
}

#[tokio::test]
async fn over_correlating_value_is_flagged() {
    let api = api();
    let first = api
        .add_event("first", json!([attr("ip-dst", "203.0.113.9")]))
        .await;
    api.add_event("second", json!([attr("ip-dst", "203.0.113.9")]))
        .await;
    let store = intel::Store::open(api.dir.path()).unwrap();
    store.set_correlation_limit(1).unwrap();

    let view = api
        .json("GET", &format!("/events/view/{first}"), None)
        .await;
    assert_eq!(view["Event"]["Attribute"][0]["over_correlation"], true);
    assert!(view["Event"]["RelatedEvent"].as_array().unwrap().is_empty());
}
