//! Event edits through the router. Keys the rows do not store survive add, edit, view,
//! restSearch and export, merged as MISP merges an edit. `publish_timestamp` records the
//! real time of publishing.

use serde_json::{json, Value};

mod common;
use common::{api, Api};

impl Api {
    async fn view(&self, uuid: &str) -> Value {
        self.json("GET", &format!("/events/view/{uuid}"), None)
            .await
            .get("Event")
            .cloned()
            .unwrap()
    }
}

const EVENT_UUID: &str = "8a1c9f4e-2b7d-4c3a-9e5f-1d2c3b4a5f60";
const ATTRIBUTE_UUID: &str = "5b2d0e1f-3c4a-4b5c-8d6e-7f8091a2b3c4";
const OBJECT_UUID: &str = "6c3e1f20-4d5b-4c6d-9e7f-8091a2b3c4d5";
const OBJECT_ATTRIBUTE_UUID: &str = "7d4f2031-5e6c-4d7e-8f90-91a2b3c4d5e6";

fn event_with_unmodelled_keys() -> Value {
    json!({"Event": {
        "uuid": EVENT_UUID,
        "info": "unmodelled keys",
        "extends_uuid": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "x_origin": {"feed": "partner", "rank": 2},
        "Attribute": [{
            "uuid": ATTRIBUTE_UUID, "type": "md5", "category": "Payload delivery",
            "value": "0749bae92ca336a02c83d126e04ec628", "to_ids": true,
            "first_seen": "2024-01-02T03:04:05.000000+00:00", "x_note": "first",
        }],
        "Object": [{
            "uuid": OBJECT_UUID, "name": "file", "meta-category": "file",
            "template_uuid": "688c46fb-5edb-40a3-8273-1af7923e2215", "template_version": "24",
            "comment": "dropped by the loader",
            "ObjectReference": [{"referenced_uuid": ATTRIBUTE_UUID, "relationship_type": "related-to"}],
            "Attribute": [{
                "uuid": OBJECT_ATTRIBUTE_UUID, "type": "filename", "object_relation": "filename",
                "category": "Payload delivery", "value": "loader.exe", "x_hint": "kept",
            }],
        }],
    }})
}

fn attribute<'a>(event: &'a Value, uuid: &str) -> &'a Value {
    let own = event["Attribute"].as_array().into_iter().flatten();
    let in_objects = event["Object"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["Attribute"].as_array().into_iter().flatten());
    own.chain(in_objects)
        .find(|a| a["uuid"] == uuid)
        .unwrap_or_else(|| panic!("attribute {uuid} missing: {event}"))
}

fn assert_unmodelled_keys(event: &Value) {
    assert_eq!(
        event["extends_uuid"],
        "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    );
    assert_eq!(event["x_origin"]["feed"], "partner");
    let object = &event["Object"][0];
    assert_eq!(
        object["template_uuid"],
        "688c46fb-5edb-40a3-8273-1af7923e2215"
    );
    assert_eq!(object["comment"], "dropped by the loader");
    assert_eq!(
        object["ObjectReference"][0]["referenced_uuid"],
        ATTRIBUTE_UUID
    );
    assert_eq!(attribute(event, OBJECT_ATTRIBUTE_UUID)["x_hint"], "kept");
    assert_eq!(
        attribute(event, ATTRIBUTE_UUID)["first_seen"],
        "2024-01-02T03:04:05.000000+00:00"
    );
}

#[tokio::test]
async fn add_keeps_unmodelled_keys() {
    let api = api();
    api.json("POST", "/events/add", Some(event_with_unmodelled_keys()))
        .await;
    assert_unmodelled_keys(&api.view(EVENT_UUID).await);
}

#[tokio::test]
async fn edit_merges_unmodelled_keys() {
    let api = api();
    api.json("POST", "/events/add", Some(event_with_unmodelled_keys()))
        .await;
    let edit = json!({"Event": {
        "info": "edited",
        "x_added": true,
        "Attribute": [{"uuid": ATTRIBUTE_UUID, "type": "md5",
            "value": "0749bae92ca336a02c83d126e04ec628", "x_note": "second"}],
    }});
    api.json("POST", &format!("/events/edit/{EVENT_UUID}"), Some(edit))
        .await;

    let event = api.view(EVENT_UUID).await;
    assert_eq!(event["info"], "edited");
    assert_eq!(event["x_added"], true);
    assert_eq!(attribute(&event, ATTRIBUTE_UUID)["x_note"], "second");
    assert_unmodelled_keys(&event);

    // An attribute change through its own endpoint keeps them too.
    api.json(
        "POST",
        &format!("/attributes/edit/{ATTRIBUTE_UUID}"),
        Some(json!({"comment": "reviewed"})),
    )
    .await;
    let event = api.view(EVENT_UUID).await;
    assert_eq!(attribute(&event, ATTRIBUTE_UUID)["comment"], "reviewed");
    assert_unmodelled_keys(&event);
}

#[tokio::test]
async fn edited_event_exports_unmodelled_keys() {
    let api = api();
    api.json("POST", "/events/add", Some(event_with_unmodelled_keys()))
        .await;
    api.json(
        "POST",
        &format!("/events/edit/{EVENT_UUID}"),
        Some(json!({"Event": {"info": "edited"}})),
    )
    .await;

    let found = api
        .json(
            "POST",
            "/events/restSearch",
            Some(json!({"uuid": EVENT_UUID})),
        )
        .await;
    assert_unmodelled_keys(&found["response"][0]["Event"]);

    let store = intel::Store::open(api.dir.path()).unwrap();
    let mut out = Vec::new();
    intel::export::export(
        &store,
        intel::export::ExportFormat::MispJson,
        &intel::export::ExportFilter::default(),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    let exported = export["response"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["Event"]["uuid"] == EVENT_UUID)
        .unwrap_or_else(|| panic!("event missing from the export: {text}"));
    assert_eq!(exported["Event"]["info"], "edited");
    assert_unmodelled_keys(&exported["Event"]);
}

#[tokio::test]
async fn imported_event_keeps_keys_after_edit() {
    let api = api();
    let text = event_with_unmodelled_keys().to_string();
    let parsed = misp::parse_bytes(
        text.as_bytes(),
        Some(misp::Format::MispJson),
        &misp::FileMeta::default(),
        &misp::CsvOptions::default(),
    )
    .unwrap();
    let mut store = intel::Store::open(api.dir.path()).unwrap();
    store.write_parsed(&parsed, "import.json", None).unwrap();
    drop(store);

    api.json(
        "POST",
        &format!("/events/edit/{EVENT_UUID}"),
        Some(json!({"Event": {"info": "edited after import"}})),
    )
    .await;
    let event = api.view(EVENT_UUID).await;
    assert_eq!(event["info"], "edited after import");
    assert_unmodelled_keys(&event);
}

fn publish_time(event: &Value) -> i64 {
    event["publish_timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn publish_records_its_time() {
    let api = api();
    api.json(
        "POST",
        "/events/add",
        Some(json!({"Event": {"uuid": EVENT_UUID, "info": "draft"}})),
    )
    .await;
    assert_eq!(publish_time(&api.view(EVENT_UUID).await), 0);

    let before = now();
    api.json("POST", &format!("/events/publish/{EVENT_UUID}"), None)
        .await;
    let published = publish_time(&api.view(EVENT_UUID).await);
    assert!(published >= before, "{published}");
    assert!(published <= now(), "{published}");

    // Unpublishing keeps the time of the last publishing, as MISP does.
    api.json("POST", &format!("/events/unpublish/{EVENT_UUID}"), None)
        .await;
    let event = api.view(EVENT_UUID).await;
    assert_eq!(event["published"], false);
    assert_eq!(publish_time(&event), published);
}

#[tokio::test]
async fn add_published_records_its_time() {
    let api = api();
    let before = now();
    api.json(
        "POST",
        "/events/add",
        Some(json!({"Event": {"uuid": EVENT_UUID, "info": "out", "published": true}})),
    )
    .await;
    let published = publish_time(&api.view(EVENT_UUID).await);
    assert!(published >= before, "{published}");
}

#[tokio::test]
async fn publish_timestamp_filter_reads_publish_time() {
    let api = api();
    let old = "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b";
    for (uuid, info) in [(old, "published long ago"), (EVENT_UUID, "published now")] {
        api.json(
            "POST",
            "/events/add",
            Some(json!({"Event": {"uuid": uuid, "info": info, "published": true}})),
        )
        .await;
    }
    // As a pull records the publish time the remote reports.
    api.state
        .db
        .set_publish_timestamps(&[(old.to_owned(), 1_600_000_000)])
        .unwrap();

    let found = api
        .json(
            "POST",
            "/events/restSearch",
            Some(json!({"publish_timestamp": ["1599999000", "1600001000"]})),
        )
        .await;
    let uuids: Vec<&Value> = found["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["Event"]["uuid"])
        .collect();
    assert_eq!(uuids, vec![&json!(old)]);
    assert_eq!(publish_time(&found["response"][0]["Event"]), 1_600_000_000);

    let recent = api
        .json(
            "POST",
            "/events/restSearch",
            Some(json!({"publish_timestamp": (now() - 600).to_string()})),
        )
        .await;
    let uuids: Vec<&Value> = recent["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["Event"]["uuid"])
        .collect();
    assert_eq!(uuids, vec![&json!(EVENT_UUID)]);
}
