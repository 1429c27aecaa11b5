//! `events/index` filters, sort and paging, as MISP's index and PyMISP's `search_index`
//! use them.

use axum::http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::{api, Api};

impl Api {
    async fn infos(&self, body: Value) -> Vec<String> {
        let (status, list) = self.call("POST", "/events/index", body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}: {list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e["info"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn three_events() -> Api {
    let api = api();
    for (info, published, level, tag) in [
        ("alpha report", true, 1, "tlp:green"),
        ("beta report", false, 2, "tlp:amber"),
        ("gamma note", true, 3, "tlp:green"),
    ] {
        let event = json!({"Event": {"info": info, "published": published,
            "threat_level_id": level.to_string(), "analysis": "2", "distribution": "1",
            "Tag": [{"name": tag}]}});
        let (status, body) = api.call("POST", "/events/add", event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    api
}

#[tokio::test]
async fn index_applies_filters() {
    let api = three_events().await;
    assert_eq!(api.infos(json!({})).await.len(), 3);
    assert_eq!(
        api.infos(json!({"published": 1})).await,
        vec!["gamma note", "alpha report"]
    );
    assert_eq!(
        api.infos(json!({"eventinfo": "beta"})).await,
        vec!["beta report"]
    );
    assert_eq!(
        api.infos(json!({"tags": ["tlp:amber"]})).await,
        vec!["beta report"]
    );
    assert_eq!(
        api.infos(json!({"tags": ["!tlp:green"]})).await,
        vec!["beta report"]
    );
    assert_eq!(
        api.infos(json!({"threatlevel": 3})).await,
        vec!["gamma note"]
    );
    assert_eq!(api.infos(json!({"analysis": "0"})).await.len(), 0);
    assert_eq!(api.infos(json!({"distribution": 1})).await.len(), 3);
    assert_eq!(api.infos(json!({"timestamp": "1m"})).await.len(), 3);
    assert_eq!(
        api.infos(json!({"publish_timestamp": ["1m", "0m"]}))
            .await
            .len(),
        2
    );
    assert_eq!(
        api.infos(json!({"publishtimestamp": "1m", "published": 0}))
            .await
            .len(),
        0
    );
    assert_eq!(api.infos(json!({"org": "ORGNAME"})).await.len(), 0);
}

#[tokio::test]
async fn index_sorts_and_pages() {
    let api = three_events().await;
    let body = json!({"sort": "info", "direction": "asc", "limit": 2, "page": 2});
    assert_eq!(api.infos(body).await, vec!["gamma note"]);
    assert_eq!(api.infos(json!({"limit": 2})).await.len(), 2);
    let (status, list) = api
        .call("GET", "/events/index/limit:1/minimal:1", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = &list[0];
    assert!(
        first.get("info").is_none() && first["uuid"].is_string(),
        "{first}"
    );
    let (status, list) = api
        .call("GET", "/events/index?published=0", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn index_rejects_bad_values_in_misp_shape() {
    let api = three_events().await;
    let (status, body) = api
        .call(
            "POST",
            "/events/index",
            json!({"publish_timestamp": "banana"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["url"], "/events/index");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("publish_timestamp"));
}
