//! Write checks through the router, as MISP makes them. Attribute and object uuids are
//! unique across the store, and every by-uuid write acts on the row whose access it
//! checked. Event fields are validated before anything is stored, and a stale event edit
//! is rejected. Sightings carry the organisation that recorded them, and MISP's forms of
//! hard delete and object restore work.

use api::{AppState, Db, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const SHA256: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const MD5: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

struct Api {
    router: Router,
    db_dir: tempfile::TempDir,
    admin: String,
    /// User of organisation A.
    alice: String,
    /// User of organisation B.
    bob: String,
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let user = |name: &str, org: &str| {
        let org = db.ensure_local_org(org).unwrap();
        db.add_user_to_org(name, Role::User, org.id).unwrap().1
    };
    let (_, admin) = db.add_user("admin@example.org", Role::Admin).unwrap();
    let alice = user("alice@a.example", "Org A");
    let bob = user("bob@b.example", "Org B");
    Api {
        router: api::router(AppState::new(db)),
        db_dir: dir,
        admin,
        alice,
        bob,
    }
}

impl Api {
    async fn call(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method("POST")
            .uri(path)
            .header("Authorization", key)
            .header("Accept", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn ok(&self, key: &str, path: &str, body: Value) -> Value {
        let (status, value) = self.call(key, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {value}");
        value
    }

    async fn event(&self, id: &str) -> Value {
        let view = self
            .ok(
                &self.admin,
                &format!("/events/view/{id}/deleted:1"),
                json!({}),
            )
            .await;
        view["Event"].clone()
    }

    /// Adds alice's organisation-only event with one sha256 attribute of uuid `uuid`.
    async fn private_event(&self, uuid: &str) -> String {
        let event = json!({"Event": {"info": "org A private", "distribution": 0,
            "Attribute": [{"uuid": uuid, "type": "sha256", "value": SHA256, "to_ids": true}]}});
        let added = self.ok(&self.alice, "/events/add", event).await;
        added["Event"]["id"].as_str().unwrap().to_owned()
    }

    fn open_store(&self) -> Db {
        Db::open(self.db_dir.path()).unwrap()
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn foreign_attribute_uuid_cannot_be_planted() {
    let api = api();
    let uuid = new_uuid();
    let id = api.private_event(&uuid).await;

    let plant = json!({"Event": {"info": "plant", "distribution": 0,
        "Attribute": [{"uuid": uuid, "type": "comment", "value": "x"}]}});
    let (status, body) = api.call(&api.bob, "/events/add", plant).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errors"]["Attribute"]["uuid"].is_array(), "{body}");

    let own = api
        .ok(&api.bob, "/events/add", json!({"Event": {"info": "own"}}))
        .await;
    let own_id = own["Event"]["id"].as_str().unwrap().to_owned();
    let edit = json!({"Event": {"Attribute": [{"uuid": uuid, "type": "comment", "value": "x"}]}});
    let (status, body) = api
        .call(&api.bob, &format!("/events/edit/{own_id}"), edit)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let single = json!({"uuid": uuid, "type": "comment", "value": "x"});
    let (status, body) = api
        .call(&api.bob, &format!("/attributes/add/{own_id}"), single)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errors"]["uuid"].is_array(), "{body}");

    let event = api.event(&own_id).await;
    assert_eq!(event["Attribute"].as_array().unwrap().len(), 0);
    let event = api.event(&id).await;
    assert_eq!(event["Attribute"][0]["value"], SHA256);
}

#[tokio::test]
async fn invisible_attribute_cannot_be_changed_by_uuid() {
    let api = api();
    let uuid = new_uuid();
    let id = api.private_event(&uuid).await;

    let (status, _) = api
        .call(
            &api.bob,
            &format!("/attributes/edit/{uuid}"),
            json!({"comment": "changed by org B"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(&api.bob, &format!("/attributes/delete/{uuid}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(&api.bob, &format!("/attributes/delete/{uuid}/1"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let attribute = &api.event(&id).await["Attribute"][0];
    assert_eq!(attribute["type"], "sha256");
    assert_eq!(attribute["comment"], "");
    assert_eq!(attribute["deleted"], false);
    let found = api
        .open_store()
        .attribute(&uuid, &api::access::Viewer::SITE_ADMIN)
        .unwrap();
    assert!(found.to_ids);
}

#[tokio::test]
async fn foreign_object_uuid_cannot_be_planted() {
    let api = api();
    let object_uuid = new_uuid();
    let object = json!({"Event": {"info": "a", "distribution": 0, "Object": [{
        "uuid": object_uuid, "name": "file",
        "Attribute": [{"type": "filename", "object_relation": "filename", "value": "a.exe"}]}]}});
    let id = api.ok(&api.alice, "/events/add", object).await["Event"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = api
        .ok(&api.bob, "/events/add", json!({"Event": {"info": "own"}}))
        .await;
    let own_id = own["Event"]["id"].as_str().unwrap().to_owned();

    let planted = json!({"Object": {"uuid": object_uuid, "name": "file",
        "Attribute": [{"type": "filename", "object_relation": "filename", "value": "b.exe"}]}});
    let (status, body) = api
        .call(&api.bob, &format!("/objects/add/{own_id}"), planted)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errors"]["Object"]["uuid"].is_array(), "{body}");

    let (status, _) = api
        .call(
            &api.bob,
            &format!("/objects/delete/{object_uuid}"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(
            &api.bob,
            &format!("/objects/edit/{object_uuid}"),
            json!({"Object": {"name": "renamed"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let event = api.event(&id).await;
    assert_eq!(event["Object"][0]["name"], "file");
    assert_eq!(event["Object"][0]["deleted"], false);
}

#[tokio::test]
async fn object_attribute_is_not_edited_from_top_level() {
    let api = api();
    let object = json!({"Event": {"info": "a", "Object": [{"name": "file",
        "Attribute": [{"type": "filename", "object_relation": "filename", "value": "a.exe"}]}]}});
    let event = api.ok(&api.alice, "/events/add", object).await["Event"].clone();
    let id = event["id"].as_str().unwrap();
    let inner = event["Object"][0]["Attribute"][0]["uuid"].as_str().unwrap();

    let edit = json!({"Event": {"Attribute": [{"uuid": inner, "type": "comment", "value": "x"}]}});
    let (status, body) = api
        .call(&api.alice, &format!("/events/edit/{id}"), edit)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let event = api.event(id).await;
    assert_eq!(event["Object"][0]["Attribute"][0]["value"], "a.exe");
    assert_eq!(event["Attribute"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn invalid_event_fields_are_rejected() {
    let api = api();
    let added = api
        .ok(
            &api.alice,
            "/events/add",
            json!({"Event": {"info": "valid"}}),
        )
        .await;
    let id = added["Event"]["id"].as_str().unwrap().to_owned();
    let edit_path = format!("/events/edit/{id}");
    let md5 = |extra: Value| {
        let mut a = json!({"type": "md5", "value": MD5});
        a.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        a
    };
    let cases = [
        (json!({"date": "2026-99-99"}), "date"),
        (json!({"uuid": "qqq"}), "uuid"),
        (json!({"EventReport": [{}]}), "EventReport"),
        (json!({"EventReport": [{"name": "r"}]}), "EventReport"),
        (json!({"Tag": [{"name": ""}]}), "Tag"),
        (json!({"Object": [{}]}), "Object"),
        (
            json!({"Object": [{"name": "file", "ObjectReference": [{}]}]}),
            "Object",
        ),
        (
            json!({"Attribute": [md5(json!({"uuid": "not-a-uuid"}))]}),
            "Attribute",
        ),
        (
            json!({"Attribute": [md5(json!({"first_seen": "garbage"}))]}),
            "Attribute",
        ),
        (
            json!({"Attribute": [md5(json!({"first_seen": "2024-02-01T00:00:00+00:00",
                "last_seen": "2024-01-01T00:00:00+00:00"}))]}),
            "Attribute",
        ),
    ];
    for (fields, key) in cases {
        let mut add = fields.clone();
        add["info"] = json!("x");
        let (status, body) = api
            .call(&api.alice, "/events/add", json!({ "Event": add }))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "add {fields}: {body}");
        assert!(
            body["errors"][key].is_object() || body["errors"][key].is_array(),
            "add {fields}: {body}"
        );
        let (status, body) = api
            .call(&api.alice, &edit_path, json!({ "Event": fields }))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "edit {fields}: {body}");
        assert!(
            body["errors"][key].is_object() || body["errors"][key].is_array(),
            "edit {fields}: {body}"
        );
    }
    let (status, body) = api
        .call(
            &api.alice,
            &format!("/attributes/add/{id}"),
            json!({"uuid": "yyy", "type": "md5", "value": MD5}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = api
        .call(
            &api.alice,
            &format!("/objects/add/{id}"),
            json!({"Object": {"uuid": "ooo", "name": "file"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let event = api.event(&id).await;
    assert_eq!(event["info"], "valid");
    assert_eq!(event["Attribute"].as_array().unwrap().len(), 0);
    assert_eq!(event["Object"].as_array().unwrap().len(), 0);
    assert_eq!(event["EventReport"].as_array().unwrap().len(), 0);
    assert!(event["Tag"].as_array().is_none_or(Vec::is_empty), "{event}");
    assert_ne!(event["date"], "2026-99-99");
}

#[tokio::test]
async fn valid_seen_times_and_reports_are_stored() {
    let api = api();
    let event = json!({"Event": {"info": "seen", "date": "2024-02-29",
        "EventReport": [{"name": "r", "content": ""}],
        "Attribute": [{"type": "md5", "value": MD5,
            "first_seen": "2024-01-01T00:00:00+00:00", "last_seen": "2024-01-02"}]}});
    let added = api.ok(&api.alice, "/events/add", event).await;
    let id = added["Event"]["id"].as_str().unwrap();
    let event = api.event(id).await;
    assert_eq!(event["date"], "2024-02-29");
    assert_eq!(
        event["Attribute"][0]["first_seen"],
        "2024-01-01T00:00:00+00:00"
    );
    assert_eq!(event["EventReport"][0]["name"], "r");
}

#[tokio::test]
async fn stale_event_edit_is_rejected() {
    let api = api();
    let added = api
        .ok(
            &api.alice,
            "/events/add",
            json!({"Event": {"info": "fresh"}}),
        )
        .await;
    let id = added["Event"]["id"].as_str().unwrap().to_owned();
    let stored: i64 = added["Event"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let path = format!("/events/edit/{id}");
    for stale in [json!("1"), json!(stored.to_string())] {
        let edit = json!({"Event": {"info": "stale info", "timestamp": stale}});
        let (status, body) = api.call(&api.alice, &path, edit).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            body["errors"],
            "Event could not be saved: Event in the request not newer than the local copy."
        );
    }
    let event = api.event(&id).await;
    assert_eq!(event["info"], "fresh");
    assert_eq!(event["timestamp"].as_str().unwrap(), stored.to_string());

    let newer = json!({"Event": {"info": "newer", "timestamp": (stored + 1).to_string()}});
    api.ok(&api.alice, &path, newer).await;
    assert_eq!(api.event(&id).await["info"], "newer");
}

#[tokio::test]
async fn sightings_carry_the_recording_organisation() {
    let api = api();
    let event = json!({"Event": {"info": "shared", "distribution": 1,
        "Attribute": [{"type": "md5", "value": MD5}]}});
    let added = api.ok(&api.alice, "/events/add", event).await;
    let attribute = added["Event"]["Attribute"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let sighting = api
        .ok(&api.bob, "/sightings/add", json!({"values": [MD5]}))
        .await;
    assert_eq!(sighting["Sighting"]["Organisation"]["name"], "Org B");
    let bob_org = sighting["Sighting"]["org_id"].as_str().unwrap().to_owned();
    assert_ne!(bob_org, "1");
    assert_eq!(sighting["Sighting"]["Organisation"]["id"], bob_org.as_str());

    let recorded = api::db::NewSighting::default();
    let db = api.open_store();
    assert_eq!(
        db.record_sightings(&[(attribute.clone(), recorded)])
            .unwrap(),
        1
    );
    let rows = db
        .sightings(None, Some(attribute.parse().unwrap()))
        .unwrap();
    let orgs: Vec<i64> = rows.iter().map(|s| s.org_id).collect();
    assert_eq!(orgs, vec![bob_org.parse::<i64>().unwrap(), 1]);
}

#[tokio::test]
async fn repeated_attribute_in_new_event_is_dropped() {
    let api = api();
    let event = json!({"Event": {"info": "twice", "Attribute": [
        {"type": "md5", "value": MD5}, {"type": "md5", "value": MD5.to_uppercase()}]}});
    let added = api.ok(&api.alice, "/events/add", event).await;
    assert_eq!(added["Event"]["Attribute"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn attribute_delete_path_form_is_hard() {
    let api = api();
    let uuid = new_uuid();
    let id = api.private_event(&uuid).await;
    let deleted = api
        .ok(
            &api.alice,
            &format!("/attributes/delete/{uuid}/1"),
            json!({}),
        )
        .await;
    assert_eq!(deleted["message"], "Attribute permanently deleted.");
    let event = api.event(&id).await;
    assert_eq!(event["Attribute"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn object_edit_restores_soft_deleted_object() {
    let api = api();
    let object = json!({"Event": {"info": "a", "Object": [{"name": "file",
        "Attribute": [{"type": "filename", "object_relation": "filename", "value": "a.exe"}]}]}});
    let added = api.ok(&api.alice, "/events/add", object).await;
    let id = added["Event"]["id"].as_str().unwrap().to_owned();
    let object_uuid = added["Event"]["Object"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok(
        &api.alice,
        &format!("/objects/delete/{object_uuid}"),
        json!({}),
    )
    .await;
    assert_eq!(api.event(&id).await["Object"][0]["deleted"], true);

    let restored = api
        .ok(
            &api.alice,
            &format!("/objects/edit/{object_uuid}"),
            json!({"Object": {"deleted": false}}),
        )
        .await;
    assert_eq!(restored["Object"]["uuid"], object_uuid.as_str());
    let event = api.event(&id).await;
    assert_eq!(event["Object"][0]["deleted"], false);
    assert_eq!(event["Object"][0]["Attribute"][0]["deleted"], false);
}

#[tokio::test]
async fn repeated_uuid_writes_the_checked_row() {
    let api = api();
    let uuid = new_uuid();
    let id = api.private_event(&uuid).await;
    let own = json!({"Event": {"info": "own", "distribution": 0,
        "Attribute": [{"type": "md5", "value": MD5}]}});
    let own = api.ok(&api.bob, "/events/add", own).await["Event"].clone();
    let own_id = own["id"].as_str().unwrap().to_owned();
    let own_uuid = own["Attribute"][0]["uuid"].as_str().unwrap().to_owned();

    // A store written before uuids were checked may repeat one across events.
    let path = api.db_dir.path().join(intel::store::DB_FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE attributes SET uuid = ?1 WHERE uuid = ?2",
        [&uuid, &own_uuid],
    )
    .unwrap();
    drop(conn);

    let edited = api
        .ok(
            &api.bob,
            &format!("/attributes/edit/{uuid}"),
            json!({"comment": "org B's own"}),
        )
        .await;
    assert_eq!(edited["Attribute"]["event_id"], own_id.as_str());
    api.ok(&api.bob, &format!("/attributes/delete/{uuid}"), json!({}))
        .await;

    let theirs = &api.event(&id).await["Attribute"][0];
    assert_eq!(theirs["comment"], "");
    assert_eq!(theirs["deleted"], false);
    let mine = &api.event(&own_id).await["Attribute"][0];
    assert_eq!(mine["comment"], "org B's own");
    assert_eq!(mine["deleted"], true);
}
