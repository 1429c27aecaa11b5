//! Event reports and object references through their own routes (`eventReports/*`,
//! `objectReferences/*`), as PyMISP calls them: shapes, validation, ownership and
//! visibility, soft and hard deletion, and the event's timestamp.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

const REPORT_UUID: &str = "5a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

/// Adds an event with one domain attribute and one file object as `key`; returns the event.
async fn add_event(api: &common::Api, key: &str, distribution: &str) -> Value {
    let body = json!({"Event": {
        "info": "entries", "distribution": distribution,
        "Attribute": [{"type": "domain", "value": "entries.example"}],
        "Object": [{"name": "file", "meta-category": "file",
            "Attribute": [{"type": "filename", "object_relation": "filename",
                "value": "entries.exe"}]}],
    }});
    let (status, added) = api.call_as(key, "POST", "/events/add", body).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    added["Event"].clone()
}

async fn event_timestamp(api: &common::Api, id: &str) -> i64 {
    let view = api.json("GET", &format!("/events/view/{id}"), None).await;
    view["Event"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn report_add_view_edit_index() {
    let api = common::api();
    let event = add_event(&api, &api.admin.clone(), "1").await;
    let event_id = text(&event["id"]);
    let before = event_timestamp(&api, &event_id).await;
    let mut changes = api.state.subscribe_changes();
    changes.borrow_and_update();

    let body = json!({"EventReport": {"uuid": REPORT_UUID, "name": "Summary",
        "content": "# Findings", "distribution": "1"}});
    let added = api
        .json("POST", &format!("/eventReports/add/{event_id}"), Some(body))
        .await;
    let report = &added["EventReport"];
    assert_eq!(report["uuid"], REPORT_UUID);
    assert_eq!(report["name"], "Summary");
    assert_eq!(report["event_id"], event_id.as_str());
    assert_eq!(report["deleted"], false);
    let id = text(&report["id"]);
    assert!(changes.has_changed().unwrap());
    assert!(event_timestamp(&api, &event_id).await > before);

    for key in [id.as_str(), REPORT_UUID] {
        let view = api
            .json("GET", &format!("/eventReports/view/{key}"), None)
            .await;
        assert_eq!(view["EventReport"]["content"], "# Findings");
    }

    let edit = json!({"EventReport": {"name": "Summary v2"}});
    let edited = api
        .json("POST", &format!("/eventReports/edit/{id}"), Some(edit))
        .await;
    assert_eq!(edited["EventReport"]["name"], "Summary v2");
    assert_eq!(edited["EventReport"]["content"], "# Findings");

    let path = format!("/eventReports/index/event_id:{event_id}");
    let list = api.json("GET", &path, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["EventReport"]["name"], "Summary v2");
    let all = api.json("GET", "/eventReports/index", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let view = api
        .json("GET", &format!("/events/view/{event_id}"), None)
        .await;
    assert_eq!(view["Event"]["EventReport"][0]["name"], "Summary v2");
}

#[tokio::test]
async fn report_soft_and_hard_delete() {
    let api = common::api();
    let event = add_event(&api, &api.admin.clone(), "1").await;
    let event_id = text(&event["id"]);
    let add = format!("/eventReports/add/{event_id}");
    let first = api
        .json("POST", &add, Some(json!({"name": "a", "content": "x"})))
        .await;
    let second = api
        .json("POST", &add, Some(json!({"name": "b", "content": "y"})))
        .await;
    let first_id = text(&first["EventReport"]["id"]);
    let second_uuid = text(&second["EventReport"]["uuid"]);

    let deleted = api
        .json("POST", &format!("/eventReports/delete/{first_id}"), None)
        .await;
    assert_eq!(
        deleted["message"],
        format!("Event Report {first_id} soft deleted")
    );
    let (status, _) = api
        .send("GET", &format!("/eventReports/view/{first_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let path = format!("/eventReports/delete/{second_uuid}");
    let hard = api.json("POST", &path, Some(json!({"hard": 1}))).await;
    let second_id = text(&second["EventReport"]["id"]);
    assert_eq!(
        hard["message"],
        format!("Event Report {second_id} hard deleted")
    );
    let (status, _) = api
        .send("GET", &format!("/eventReports/view/{second_uuid}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let list = api
        .json(
            "GET",
            &format!("/eventReports/index/event_id:{event_id}"),
            None,
        )
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn report_validation_errors() {
    let api = common::api();
    let event = add_event(&api, &api.admin.clone(), "1").await;
    let add = format!("/eventReports/add/{}", text(&event["id"]));

    let (status, answer) = api.call("POST", &add, json!({"EventReport": {}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["name"].is_array(), "{answer}");
    assert!(answer["errors"]["content"].is_array(), "{answer}");

    let bad = json!({"name": "n", "content": "c", "uuid": "not-a-uuid"});
    let (status, answer) = api.call("POST", &add, bad).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["uuid"].is_array(), "{answer}");

    let report = json!({"name": "n", "content": "c", "uuid": REPORT_UUID});
    api.json("POST", &add, Some(report.clone())).await;
    let (status, answer) = api.call("POST", &add, report).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["uuid"].is_array(), "{answer}");

    let attribute_uuid = text(&event["Attribute"][0]["uuid"]);
    let taken = json!({"name": "n", "content": "c", "uuid": attribute_uuid});
    let (status, answer) = api.call("POST", &add, taken).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["uuid"].is_array(), "{answer}");

    let edit = format!("/eventReports/edit/{REPORT_UUID}");
    let (status, answer) = api.call("POST", &edit, json!({"name": ""})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["name"].is_array(), "{answer}");
}

#[tokio::test]
async fn report_owner_and_visibility() {
    let api = common::api();
    let alice = api.user_in_org("alice@a.example", "Org A");
    let bob = api.user_in_org("bob@b.example", "Org B");
    let event = add_event(&api, &alice, "1").await;
    let add = format!("/eventReports/add/{}", text(&event["id"]));
    let private = json!({"name": "org only", "content": "c", "distribution": "0"});
    let shared = json!({"name": "community", "content": "c", "distribution": "1"});
    let (_, private) = api.call_as(&alice, "POST", &add, private).await;
    let (_, shared) = api.call_as(&alice, "POST", &add, shared).await;
    let private_id = text(&private["EventReport"]["id"]);
    let shared_id = text(&shared["EventReport"]["id"]);

    let body = json!({"name": "intruder", "content": "c"});
    let (status, _) = api.call_as(&bob, "POST", &add, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let view = |id: &str| format!("/eventReports/view/{id}");
    let (status, _) = api
        .call_as(&bob, "GET", &view(&private_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call_as(&bob, "GET", &view(&shared_id), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call_as(&alice, "GET", &view(&private_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let edit = format!("/eventReports/edit/{shared_id}");
    let (status, _) = api.call_as(&bob, "POST", &edit, json!({"name": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let delete = format!("/eventReports/delete/{shared_id}/1");
    let (status, _) = api.call_as(&bob, "POST", &delete, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = api
        .call_as(&bob, "GET", "/eventReports/index", json!({}))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reference_add_and_delete() {
    let api = common::api();
    let event = add_event(&api, &api.admin.clone(), "1").await;
    let event_id = text(&event["id"]);
    let object_uuid = text(&event["Object"][0]["uuid"]);
    let attribute_uuid = text(&event["Attribute"][0]["uuid"]);
    let before = event_timestamp(&api, &event_id).await;

    let body = json!({"ObjectReference": {"object_uuid": object_uuid,
        "referenced_uuid": attribute_uuid, "relationship_type": "communicates-with"}});
    let added = api.json("POST", "/objectReferences/add", Some(body)).await;
    let reference = &added["ObjectReference"];
    assert_eq!(reference["object_uuid"], object_uuid.as_str());
    assert_eq!(reference["referenced_type"], "0");
    assert_eq!(reference["relationship_type"], "communicates-with");
    let first_id = text(&reference["id"]);
    assert!(event_timestamp(&api, &event_id).await > before);

    let object_id = text(&event["Object"][0]["id"]);
    let body = json!({"referenced_uuid": object_uuid, "relationship_type": "related-to"});
    let path = format!("/objectReferences/add/{object_id}");
    let second = api.json("POST", &path, Some(body)).await;
    assert_eq!(second["ObjectReference"]["referenced_type"], "1");
    let second_uuid = text(&second["ObjectReference"]["uuid"]);

    let view = api
        .json("GET", &format!("/events/view/{event_id}"), None)
        .await;
    let listed = &view["Event"]["Object"][0]["ObjectReference"];
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let soft = api
        .json(
            "POST",
            &format!("/objectReferences/delete/{first_id}"),
            None,
        )
        .await;
    assert_eq!(soft["message"], "ObjectReference deleted.");
    let path = format!("/objectReferences/delete/{second_uuid}/true");
    let hard = api.json("POST", &path, None).await;
    assert_eq!(hard["message"], "ObjectReference permanently deleted.");
    let view = api
        .json("GET", &format!("/events/view/{event_id}"), None)
        .await;
    let listed = &view["Event"]["Object"][0]["ObjectReference"];
    assert!(listed.as_array().is_none_or(Vec::is_empty), "{listed}");
    let (status, _) = api
        .send(
            "POST",
            &format!("/objectReferences/delete/{second_uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reference_validation_and_owner() {
    let api = common::api();
    let alice = api.user_in_org("alice@a.example", "Org A");
    let bob = api.user_in_org("bob@b.example", "Org B");
    let event = add_event(&api, &alice, "1").await;
    let other = add_event(&api, &alice, "1").await;
    let object_uuid = text(&event["Object"][0]["uuid"]);
    let path = format!("/objectReferences/add/{object_uuid}");

    let (status, answer) = api.call_as(&alice, "POST", &path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["referenced_uuid"].is_array(), "{answer}");
    assert!(answer["errors"]["relationship_type"].is_array(), "{answer}");

    let elsewhere = text(&other["Attribute"][0]["uuid"]);
    let body = json!({"referenced_uuid": elsewhere, "relationship_type": "drops"});
    let (status, answer) = api.call_as(&alice, "POST", &path, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(answer["errors"]["referenced_uuid"].is_array(), "{answer}");

    let target = text(&event["Attribute"][0]["uuid"]);
    let body = json!({"referenced_uuid": target, "relationship_type": "drops"});
    let (status, _) = api.call_as(&bob, "POST", &path, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, added) = api.call_as(&alice, "POST", &path, body).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let id = text(&added["ObjectReference"]["id"]);
    let delete = format!("/objectReferences/delete/{id}");
    let (status, _) = api.call_as(&bob, "POST", &delete, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let missing = json!({"referenced_uuid": target, "relationship_type": "drops"});
    let (status, _) = api
        .call_as(&alice, "POST", "/objectReferences/add", missing)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let object_id = text(&event["Object"][0]["id"]);
    let delete_object = format!("/objects/delete/{object_id}");
    let (status, _) = api.call_as(&alice, "POST", &delete_object, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"referenced_uuid": target, "relationship_type": "drops"});
    let (status, _) = api.call_as(&alice, "POST", &path, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
