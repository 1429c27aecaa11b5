//! Event edits merged as MISP merges them: new entries without a uuid keep their
//! unmodelled keys, reports and object references merge by uuid, stale copies are
//! skipped, objects are added, edited and deleted, and repeated attributes are rejected.

use axum::http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::{api, Api};

impl Api {
    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.call("POST", path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {value}");
        value
    }

    async fn view(&self, uuid: &str) -> Value {
        let (_, text) = self
            .send("GET", &format!("/events/view/{uuid}"), None)
            .await;
        let value: Value = serde_json::from_str(&text).unwrap();
        value["Event"].clone()
    }

    async fn add(&self, event: Value) -> String {
        let added = self.ok("/events/add", json!({ "Event": event })).await;
        added["Event"]["uuid"].as_str().unwrap().to_owned()
    }
}

fn list<'a>(value: &'a Value, key: &str) -> &'a Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list in {value}"))
}

fn report_names(event: &Value) -> Vec<&Value> {
    list(event, "EventReport")
        .iter()
        .map(|r| &r["name"])
        .collect()
}

#[tokio::test]
async fn entries_without_uuid_keep_unmodelled_keys() {
    let api = api();
    let uuid = api
        .add(json!({"info": "x",
            "Attribute": [{"type": "domain", "value": "a.example",
                "first_seen": "2026-01-01T00:00:00+00:00"}],
            "Object": [{"name": "file", "template_uuid": "688c46fb-5edb-40a3-8273-1af7923e2215",
                "template_version": "22", "comment": "c",
                "Attribute": [{"type": "filename", "object_relation": "filename",
                    "value": "q.exe"}]}]}))
        .await;
    let event = api.view(&uuid).await;
    assert_eq!(
        list(&event, "Attribute")[0]["first_seen"],
        "2026-01-01T00:00:00+00:00"
    );
    let object = &list(&event, "Object")[0];
    assert_eq!(
        object["template_uuid"],
        "688c46fb-5edb-40a3-8273-1af7923e2215"
    );
    assert_eq!(object["template_version"], "22");
    assert_eq!(object["comment"], "c");
}

#[tokio::test]
async fn imported_entries_without_uuid_match_the_export() {
    let api = api();
    let text = json!({"Event": {"info": "import", "date": "2026-01-01",
        "Attribute": [{"type": "domain", "value": "a.example",
            "first_seen": "2026-01-01T00:00:00+00:00"}],
        "Object": [{"name": "file", "template_uuid": "t-2", "Attribute": [
            {"type": "filename", "object_relation": "filename", "value": "q.exe"}]}]}})
    .to_string();
    let meta = misp::FileMeta::default();
    let csv = misp::CsvOptions::default();
    let parsed =
        misp::parse_bytes(text.as_bytes(), Some(misp::Format::MispJson), &meta, &csv).unwrap();
    let mut store = intel::Store::open(api.dir.path()).unwrap();
    store.write_parsed(&parsed, "import.json", None).unwrap();
    let mut out = Vec::new();
    let format = intel::export::ExportFormat::MispJson;
    intel::export::export(&store, format, &Default::default(), &mut out).unwrap();
    drop(store);
    let export: Value = serde_json::from_slice(&out).unwrap();
    let exported = &export["response"][0]["Event"];

    let uuid = exported["uuid"].as_str().unwrap();
    let event = api.view(uuid).await;
    let attribute = &list(&event, "Attribute")[0];
    assert_eq!(attribute["first_seen"], "2026-01-01T00:00:00+00:00");
    assert_eq!(attribute["uuid"], exported["Attribute"][0]["uuid"]);
    let object = &list(&event, "Object")[0];
    assert_eq!(object["template_uuid"], "t-2");
    assert_eq!(object["uuid"], exported["Object"][0]["uuid"]);
    assert_eq!(
        object["Attribute"][0]["uuid"],
        exported["Object"][0]["Attribute"][0]["uuid"]
    );
}

#[tokio::test]
async fn partial_edit_merges_reports_and_references_by_uuid() {
    let api = api();
    let target = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
    let uuid = api
        .add(json!({"info": "r",
            "EventReport": [{"name": "A", "content": "a"}, {"name": "B", "content": "b"}],
            "Object": [{"uuid": "0b1c2d3e-4f5a-4b6c-8d7e-8f9a0b1c2d3e", "name": "file",
                "ObjectReference": [{"referenced_uuid": target,
                    "relationship_type": "communicates-with"}],
                "Attribute": [{"type": "filename", "object_relation": "filename",
                    "value": "q.exe"}]}]}))
        .await;
    let path = format!("/events/edit/{uuid}");
    api.ok(
        &path,
        json!({"Event": {"EventReport": [{"name": "C", "content": "c"}]}}),
    )
    .await;
    let event = api.view(&uuid).await;
    let names = report_names(&event);
    assert_eq!(names, vec!["A", "B", "C"]);

    let first = list(&event, "EventReport")[0]["uuid"].clone();
    api.ok(
        &path,
        json!({"Event": {"EventReport": [{"uuid": first, "deleted": true}]}}),
    )
    .await;
    api.ok(
        &path,
        json!({"Event": {"Object": [{"uuid": "0b1c2d3e-4f5a-4b6c-8d7e-8f9a0b1c2d3e",
        "ObjectReference": [{"referenced_uuid": target, "relationship_type": "drops"}]}]}}),
    )
    .await;
    let event = api.view(&uuid).await;
    let names = report_names(&event);
    assert_eq!(names, vec!["B", "C"], "a deleted report is not listed");
    let kinds: Vec<&Value> = list(&list(&event, "Object")[0], "ObjectReference")
        .iter()
        .map(|r| &r["relationship_type"])
        .collect();
    assert_eq!(kinds, vec!["communicates-with", "drops"]);
}

/// Views event `uuid`, deletes its first entry of `kind` (`Attribute` or `Object`) through
/// `delete_path`, then sends the copy viewed before in an event edit. Returns the event
/// viewed after the edit.
async fn resend_deleted_copy(api: &Api, uuid: &str, kind: &str, delete_path: &str) -> Value {
    let stale = list(&api.view(uuid).await, kind)[0].clone();
    let entry = stale["uuid"].as_str().unwrap().to_owned();
    // The deletion's timestamp is at least one second newer than the copy's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    api.ok(&format!("{delete_path}/{entry}"), json!({})).await;
    api.ok(
        &format!("/events/edit/{uuid}"),
        json!({"Event": {kind: [stale]}}),
    )
    .await;
    api.view(uuid).await
}

#[tokio::test]
async fn stale_copy_keeps_attribute_deleted() {
    let api = api();
    let uuid = api
        .add(json!({"info": "stale", "Attribute": [{"type": "domain", "value": "a.example"}]}))
        .await;
    let event = resend_deleted_copy(&api, &uuid, "Attribute", "/attributes/delete").await;
    assert!(list(&event, "Attribute").is_empty(), "{event}");
}

#[tokio::test]
async fn partial_attribute_changes_only_the_given_fields() {
    let api = api();
    let uuid = api
        .add(json!({"info": "partial", "Tag": [{"name": "tlp:green"}],
            "Attribute": [{"type": "ip-dst", "value": "192.0.2.1",
            "to_ids": true, "comment": "kept"}]}))
        .await;
    let attribute = list(&api.view(&uuid).await, "Attribute")[0]["uuid"].clone();
    api.ok(
        &format!("/events/edit/{uuid}"),
        json!({"Attribute": [{"uuid": attribute, "to_ids": false}]}),
    )
    .await;
    let event = api.view(&uuid).await;
    let stored = &list(&event, "Attribute")[0];
    assert_eq!(stored["to_ids"], false);
    assert_eq!(stored["value"], "192.0.2.1");
    assert_eq!(stored["comment"], "kept");
    assert_eq!(event["info"], "partial");
    assert_eq!(
        event["Tag"][0]["name"], "tlp:green",
        "a partial edit keeps the tags"
    );
}

#[tokio::test]
async fn stale_object_copy_is_skipped() {
    let api = api();
    let uuid = api
        .add(
            json!({"info": "stale object", "Object": [{"name": "file", "Attribute": [
            {"type": "filename", "object_relation": "filename", "value": "a.exe"}]}]}),
        )
        .await;
    let event = resend_deleted_copy(&api, &uuid, "Object", "/objects/delete").await;
    assert!(list(&event, "Object").is_empty());
}

#[tokio::test]
async fn objects_are_added_edited_and_deleted() {
    let api = api();
    let uuid = api.add(json!({"info": "objects"})).await;
    let file = json!({"name": "file", "template_uuid": "t-1", "Attribute": [
        {"type": "filename", "object_relation": "filename", "value": "a.exe"}]});
    let added = api
        .ok(&format!("/objects/add/{uuid}"), json!({"Object": file}))
        .await;
    let object = added["Object"]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(added["Object"]["template_uuid"], "t-1");
    let inner = added["Object"]["Attribute"][0]["uuid"].clone();

    let edited = api
        .ok(
            &format!("/objects/edit/{object}"),
            json!({"Object": {"comment": "edited",
            "Attribute": [{"uuid": inner, "value": "b.exe"}]}}),
        )
        .await;
    assert_eq!(edited["Object"]["comment"], "edited");
    assert_eq!(edited["Object"]["Attribute"][0]["value"], "b.exe");
    assert_eq!(edited["Object"]["template_uuid"], "t-1");

    api.ok(&format!("/objects/delete/{object}"), json!({}))
        .await;
    assert!(list(&api.view(&uuid).await, "Object").is_empty());

    let second = api
        .ok(&format!("/objects/add/{uuid}"), json!({"Object": file}))
        .await;
    let second = second["Object"]["uuid"].clone();
    api.ok(
        &format!("/events/edit/{uuid}"),
        json!({"Event": {"Object": [
        {"uuid": second, "deleted": true}]}}),
    )
    .await;
    assert!(list(&api.view(&uuid).await, "Object").is_empty());

    let third = api
        .ok(&format!("/objects/add/{uuid}"), json!({"Object": file}))
        .await;
    let id = third["Object"]["id"].as_str().unwrap().to_owned();
    api.ok(&format!("/objects/delete/{id}/1"), json!({})).await;
    let (status, _) = api
        .call("POST", &format!("/objects/delete/{id}"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a hard-deleted object is gone"
    );
}

#[tokio::test]
async fn similar_attributes_are_rejected() {
    let api = api();
    let uuid = api.add(json!({"info": "dup"})).await;
    let domain = json!({"type": "domain", "category": "Network activity", "value": "d.example"});
    api.ok(&format!("/attributes/add/{uuid}"), domain.clone())
        .await;
    let (status, body) = api
        .call("POST", &format!("/attributes/add/{uuid}"), domain.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["errors"]["value"][0],
        "A similar attribute already exists for this event."
    );
    let (status, body) = api
        .call(
            "POST",
            &format!("/events/edit/{uuid}"),
            json!({"Event": {"Attribute": [domain]}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["errors"]["Attribute"]["0"]["value"][0],
        "A similar attribute already exists for this event."
    );
    assert_eq!(list(&api.view(&uuid).await, "Attribute").len(), 1);
}
