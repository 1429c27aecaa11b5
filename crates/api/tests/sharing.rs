//! MISP's sharing model through the router: two organisations never see each other's
//! organisation-only events on any read route, a sharing group admits exactly its members,
//! an organisation-only attribute inside a community event is hidden on its own, so are
//! organisation-only event reports, and only the owner organisation may change an event.

use api::{AppState, Db, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Text that appears only in the organisation-only event of organisation A.
const SECRET_INFO: &str = "org-a private investigation";
const SECRET_DOMAIN: &str = "org-a-only.example";
/// The value the secret event shares with the community event, so correlations could leak.
const SHARED_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// Value of the organisation-only attribute inside the community event.
const HIDDEN_ATTRIBUTE: &str = "hidden-attribute.example";
/// Value of the attribute of the sharing group event.
const GROUP_DOMAIN: &str = "group-only.example";

const TAXII_ACCEPT: &str = "application/taxii+json;version=2.1";

struct Api {
    router: Router,
    admin: String,
    /// User of organisation A, which owns the events.
    alice: String,
    /// User of organisation B, a member of the sharing group.
    bob: String,
    /// User of organisation C, outside the sharing group.
    carol: String,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let user = |name: &str, role: Role, org: &str| {
        let org = db.ensure_local_org(org).unwrap();
        db.add_user_to_org(name, role, org.id).unwrap().1
    };
    let (_, admin) = db.add_user("admin@example.org", Role::Admin).unwrap();
    let alice = user("alice@a.example", Role::User, "Org A");
    let bob = user("bob@b.example", Role::User, "Org B");
    let carol = user("carol@c.example", Role::User, "Org C");
    Api {
        router: api::router(AppState::new(db)),
        admin,
        alice,
        bob,
        carol,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, key: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("Authorization", key)
            .header("Accept", accept_of(path))
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn ok(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = self.call(key, method, path, body.as_ref()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path}: {}",
            reply.text
        );
        reply.json()
    }

    async fn add_event(&self, key: &str, event: Value) -> Value {
        let body = self.ok(key, "POST", "/events/add", Some(event)).await;
        body["Event"].clone()
    }
}

fn accept_of(path: &str) -> &'static str {
    if path.starts_with("/taxii2") {
        TAXII_ACCEPT
    } else {
        "application/json"
    }
}

/// The events of the scenario, by name.
struct Scenario {
    api: Api,
    secret: Value,
    community: Value,
    group_event: Value,
    group_id: String,
    /// Id of the event report of the secret event.
    report_id: String,
}

/// Organisation A adds an organisation-only event, a community event holding one
/// organisation-only attribute, and an event for a sharing group of A and B; each of them
/// is sighted once by A.
async fn scenario() -> Scenario {
    let api = api();
    let group = api
        .ok(
            &api.admin,
            "POST",
            "/sharing_groups/add",
            Some(json!({"name": "A and B", "releasability": "A and B only"})),
        )
        .await;
    let group_id = group["SharingGroup"]["id"].as_str().unwrap().to_owned();
    for org in ["Org A", "Org B"] {
        let path = format!(
            "/sharing_groups/addOrg/{group_id}/{}",
            org.replace(' ', "%20")
        );
        api.ok(&api.admin, "POST", &path, None).await;
    }
    let secret = api
        .add_event(
            &api.alice,
            json!({"Event": {"info": SECRET_INFO, "distribution": "0", "Attribute": [
                {"type": "domain", "value": SECRET_DOMAIN, "to_ids": true},
                {"type": "sha256", "value": SHARED_SHA256, "to_ids": true},
            ]}}),
        )
        .await;
    let community = api
        .add_event(
            &api.alice,
            json!({"Event": {"info": "community event", "distribution": 1, "Attribute": [
                {"type": "sha256", "value": SHARED_SHA256, "to_ids": true},
                {"type": "domain", "value": HIDDEN_ATTRIBUTE, "to_ids": true, "distribution": "0"},
            ]}}),
        )
        .await;
    let group_event = api
        .add_event(
            &api.alice,
            json!({"Event": {"info": "group event", "distribution": "4",
                "sharing_group_id": group_id, "Attribute": [
                {"type": "domain", "value": GROUP_DOMAIN, "to_ids": true},
            ]}}),
        )
        .await;
    let report_path = format!("/eventReports/add/{}", secret["id"].as_str().unwrap());
    let report = json!({"name": "secret report", "content": format!("seen {SECRET_DOMAIN}")});
    let report = api.ok(&api.alice, "POST", &report_path, Some(report)).await;
    let report_id = report["EventReport"]["id"].as_str().unwrap().to_owned();
    for event in [&secret, &community, &group_event] {
        let attribute = event["Attribute"][0]["id"].as_str().unwrap();
        let path = format!("/sightings/add/{attribute}");
        api.ok(&api.alice, "POST", &path, Some(json!({"source": "test"})))
            .await;
    }
    Scenario {
        api,
        secret,
        community,
        group_event,
        group_id,
        report_id,
    }
}

/// Every read route of the API with a request that would show the secret event if the
/// route did not filter: (method, path, body). `{secret}` is replaced by the secret event's
/// id, `{attribute}` by its first attribute's id, `{community}` by the community event's.
const READ_REQUESTS: &[(&str, &str, &str)] = &[
    ("GET", "/events/index", ""),
    ("POST", "/events/index", "{}"),
    ("POST", "/events/index", r#"{"eventid": "{secret}"}"#),
    ("GET", "/events/index/limit:10/minimal:1", ""),
    ("GET", "/events", ""),
    ("GET", "/events/view/{secret}", ""),
    ("POST", "/events/view/{secret}", ""),
    ("GET", "/events/{secret}", ""),
    ("GET", "/events/view/{community}", ""),
    ("POST", "/events/restSearch", "{}"),
    (
        "POST",
        "/events/restSearch",
        r#"{"includeCorrelations": 1}"#,
    ),
    ("POST", "/events/restSearch", r#"{"returnFormat": "csv"}"#),
    ("POST", "/events/restSearch", r#"{"returnFormat": "text"}"#),
    ("POST", "/events/restSearch", r#"{"returnFormat": "stix2"}"#),
    (
        "POST",
        "/events/restSearch",
        r#"{"value": "org-a-only.example"}"#,
    ),
    ("GET", "/events/restSearch/value:org-a-only.example", ""),
    (
        "POST",
        "/events/restSearch/json",
        r#"{"eventid": "{secret}"}"#,
    ),
    ("POST", "/attributes/restSearch", "{}"),
    (
        "POST",
        "/attributes/restSearch",
        r#"{"includeCorrelations": 1, "includeContext": 1, "includeSightings": 1}"#,
    ),
    (
        "POST",
        "/attributes/restSearch",
        r#"{"returnFormat": "csv"}"#,
    ),
    (
        "POST",
        "/attributes/restSearch",
        r#"{"returnFormat": "text"}"#,
    ),
    (
        "POST",
        "/attributes/restSearch",
        r#"{"returnFormat": "stix2"}"#,
    ),
    ("GET", "/attributes/restSearch", ""),
    ("GET", "/attributes/restSearch/value:org-a-only.example", ""),
    (
        "POST",
        "/attributes/restSearch/json",
        r#"{"value": "org-a-only.example"}"#,
    ),
    ("GET", "/attributes/view/{attribute}", ""),
    (
        "POST",
        "/sightings/listSightings",
        r#"{"context": "event", "id": "{secret}"}"#,
    ),
    (
        "POST",
        "/sightings/listSightings",
        r#"{"context": "attribute", "id": "{attribute}"}"#,
    ),
    ("POST", "/sightings/listSightings", "{}"),
    ("GET", "/sightings/index", ""),
    ("POST", "/sightings/index", r#"{"id": "{secret}"}"#),
    ("GET", "/sightings/index/{secret}", ""),
    ("POST", "/sightings/restSearch", "{}"),
    (
        "POST",
        "/sightings/restSearch/event",
        r#"{"id": "{secret}"}"#,
    ),
    (
        "POST",
        "/sightings/restSearch/attribute",
        r#"{"id": "{attribute}"}"#,
    ),
    ("GET", "/eventReports/view/{report}", ""),
    ("GET", "/eventReports/index", ""),
    ("GET", "/eventReports/index/event_id:{secret}", ""),
    ("GET", "/taxii2/intel/collections/{collection}/objects/", ""),
    (
        "GET",
        "/taxii2/intel/collections/{collection}/manifest/",
        "",
    ),
    (
        "GET",
        "/taxii2/intel/collections/{collection}/objects/indicator--{attribute_uuid}/",
        "",
    ),
    (
        "GET",
        "/taxii2/intel/collections/{collection}/objects/indicator--{attribute_uuid}/versions/",
        "",
    ),
];

/// Read routes that show no event, attribute or sighting, so have nothing to filter.
const ROUTES_WITHOUT_INTEL: &[&str] = &[
    "/servers/getVersion",
    "/servers/getVersion.json",
    "/servers/getPyMISPVersion.json",
    "/users/view/me",
    "/users/view/me.json",
    "/attributes/describeTypes.json",
    "/tags/index",
    "/tags",
    "/feeds/index",
    "/feeds",
    "/warninglists/index",
    "/warninglists/view/{*rest}",
    "/warninglists/checkValue",
    "/organisations/index",
    "/organisations/index/{*rest}",
    "/organisations",
    "/organisations/view/{*rest}",
    "/sharing_groups/index",
    "/sharingGroups/index",
    "/sharing_groups",
    "/sharing_groups/view/{*rest}",
    "/sharingGroups/view/{*rest}",
];

/// Paths of the read router in `handlers/mod.rs` (the routes every authenticated user
/// reaches), from `let read` up to `let write`.
fn declared_read_routes() -> Vec<String> {
    let source = include_str!("../src/handlers/mod.rs");
    let start = source.find("let read = Router::new()").unwrap();
    let end = source.find("let write = Router::new()").unwrap();
    source[start..end]
        .split(".route(")
        .skip(1)
        .filter_map(|route| {
            let open = route.find('"')?;
            let close = route[open + 1..].find('"')?;
            Some(route[open + 1..open + 1 + close].to_owned())
        })
        .collect()
}

/// Turns a route pattern into the prefix its requests in [`READ_REQUESTS`] start with.
fn route_prefix(route: &str) -> &str {
    route.split_once("/{").map_or(route, |(head, _)| head)
}

#[test]
fn every_read_route_is_covered() {
    for route in declared_read_routes() {
        if ROUTES_WITHOUT_INTEL.contains(&route.as_str()) {
            continue;
        }
        let prefix = route_prefix(&route);
        let covered = READ_REQUESTS
            .iter()
            .any(|(_, path, _)| *path == route || path.starts_with(&format!("{prefix}/")));
        assert!(
            covered,
            "read route `{route}` is in neither READ_REQUESTS nor ROUTES_WITHOUT_INTEL; \
             add a request showing it filters by organisation"
        );
    }
}

fn fill(template: &str, s: &Scenario) -> String {
    let secret = &s.secret;
    template
        .replace("{secret}", secret["id"].as_str().unwrap())
        .replace(
            "{attribute}",
            secret["Attribute"][0]["id"].as_str().unwrap(),
        )
        .replace(
            "{attribute_uuid}",
            secret["Attribute"][0]["uuid"].as_str().unwrap(),
        )
        .replace("{community}", s.community["id"].as_str().unwrap())
        .replace("{report}", &s.report_id)
        .replace("{collection}", &api_collection_id())
}

fn api_collection_id() -> String {
    // The id is a UUID v5 of the collection title in the local organisation's namespace.
    let namespace = uuid::Uuid::parse_str("5f6e7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6").unwrap();
    uuid::Uuid::new_v5(&namespace, b"Indicators").to_string()
}

/// Markers of the secret event: its info, uuid, own value and attribute uuids.
fn secret_markers(s: &Scenario) -> Vec<String> {
    let mut markers = vec![
        SECRET_INFO.to_owned(),
        SECRET_DOMAIN.to_owned(),
        s.secret["uuid"].as_str().unwrap().to_owned(),
    ];
    for a in s.secret["Attribute"].as_array().unwrap() {
        markers.push(a["uuid"].as_str().unwrap().to_owned());
    }
    markers
}

#[tokio::test]
async fn org_only_event_hidden_on_every_read_route() {
    let s = scenario().await;
    let markers = secret_markers(&s);
    for (method, template, raw_body) in READ_REQUESTS {
        let path = fill(template, &s);
        let body: Option<Value> = if raw_body.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&fill(raw_body, &s)).unwrap())
        };

        // The owner gets the secret event on the same request, so the request is meaningful.
        let own = s.api.call(&s.api.alice, method, &path, body.as_ref()).await;
        assert_eq!(own.status, StatusCode::OK, "{method} {path}: {}", own.text);
        // A request naming the secret event or attribute is "not found" for others, except
        // searches, which find nothing.
        let names_secret = template.contains("{secret}")
            || template.contains("{attribute")
            || template.contains("{report}")
            || (template.starts_with("/sightings")
                && (raw_body.contains("{secret}") || raw_body.contains("{attribute}")));
        if !template.contains("{community}") && !template.contains("/versions/") {
            assert!(
                markers.iter().any(|m| own.text.contains(m.as_str())),
                "{method} {path} shows the owner nothing of its event: {}",
                own.text
            );
        }

        for other in [&s.api.bob, &s.api.carol] {
            let reply = s.api.call(other, method, &path, body.as_ref()).await;
            let expected = if names_secret {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            assert_eq!(reply.status, expected, "{method} {path}: {}", reply.text);
            // A "not found" message may repeat the id the request named.
            for marker in markers.iter().filter(|m| !path.contains(m.as_str())) {
                assert!(
                    !reply.text.contains(marker.as_str()),
                    "{method} {path} shows `{marker}` to another organisation: {}",
                    reply.text
                );
            }
        }
    }
}

fn attribute_values(event: &Value) -> Vec<String> {
    event["Attribute"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| a["value"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn sharing_group_admits_only_members() {
    let s = scenario().await;
    let path = format!("/events/view/{}", s.group_event["id"].as_str().unwrap());
    for key in [&s.api.admin, &s.api.alice, &s.api.bob] {
        let body = s.api.ok(key, "GET", &path, None).await;
        assert_eq!(body["Event"]["distribution"], "4");
        assert_eq!(body["Event"]["sharing_group_id"], s.group_id.as_str());
        assert_eq!(attribute_values(&body["Event"]), vec![GROUP_DOMAIN]);
    }
    let outside = s.api.call(&s.api.carol, "GET", &path, None).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND, "{}", outside.text);
    let search = json!({"value": GROUP_DOMAIN});
    let found = s
        .api
        .ok(&s.api.carol, "POST", "/attributes/restSearch", Some(search))
        .await;
    assert_eq!(found["response"]["Attribute"], json!([]));

    // The group lists its members; a non-member does not see the group.
    let group = s
        .api
        .ok(
            &s.api.bob,
            "GET",
            &format!("/sharing_groups/view/{}", s.group_id),
            None,
        )
        .await;
    let mut members: Vec<&str> = group["SharingGroupOrg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Organisation"]["name"].as_str().unwrap())
        .collect();
    members.sort();
    assert_eq!(members, vec!["Org A", "Org B", "iocwatch"]);
    let index = s
        .api
        .ok(&s.api.carol, "GET", "/sharing_groups/index", None)
        .await;
    assert_eq!(index["response"], json!([]));
}

#[tokio::test]
async fn org_only_attribute_hidden_alone() {
    let s = scenario().await;
    let path = format!("/events/view/{}", s.community["id"].as_str().unwrap());
    let owner = s.api.ok(&s.api.alice, "GET", &path, None).await;
    assert_eq!(
        attribute_values(&owner["Event"]),
        vec![SHARED_SHA256, HIDDEN_ATTRIBUTE]
    );
    let other = s.api.ok(&s.api.bob, "GET", &path, None).await;
    assert_eq!(attribute_values(&other["Event"]), vec![SHARED_SHA256]);
    assert!(!other.to_string().contains(HIDDEN_ATTRIBUTE));

    // An edit that gives no distribution keeps the attribute's own.
    let hidden = &s.community["Attribute"][1];
    let edit = json!({"Event": {"Attribute": [{"uuid": hidden["uuid"], "type": "domain",
        "value": HIDDEN_ATTRIBUTE, "comment": "edited"}]}});
    let edit_path = format!("/events/edit/{}", s.community["id"].as_str().unwrap());
    s.api.ok(&s.api.alice, "POST", &edit_path, Some(edit)).await;
    let other = s.api.ok(&s.api.bob, "GET", &path, None).await;
    assert_eq!(attribute_values(&other["Event"]), vec![SHARED_SHA256]);

    let search = json!({"value": HIDDEN_ATTRIBUTE});
    let found = s
        .api
        .ok(
            &s.api.bob,
            "POST",
            "/attributes/restSearch",
            Some(search.clone()),
        )
        .await;
    assert_eq!(found["response"]["Attribute"], json!([]));
    let found = s
        .api
        .ok(&s.api.alice, "POST", "/attributes/restSearch", Some(search))
        .await;
    assert_eq!(found["response"]["Attribute"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn other_org_cannot_change_event() {
    let s = scenario().await;
    let id = s.community["id"].as_str().unwrap();
    let attribute = s.community["Attribute"][0]["id"].as_str().unwrap();
    let edit = json!({"Event": {"info": "changed by B"}});
    let new_attribute = json!({"type": "domain", "value": "added-by-b.example"});
    let attempts = [
        ("POST", format!("/events/edit/{id}"), Some(edit)),
        ("POST", format!("/events/delete/{id}"), None),
        ("POST", format!("/events/publish/{id}"), None),
        ("POST", format!("/attributes/add/{id}"), Some(new_attribute)),
        (
            "POST",
            format!("/attributes/edit/{attribute}"),
            Some(json!({"comment": "changed by B"})),
        ),
        ("POST", format!("/attributes/delete/{attribute}"), None),
    ];
    for (method, path, body) in &attempts {
        let reply = s.api.call(&s.api.bob, method, path, body.as_ref()).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.text
        );
    }
    // An event the other organisation cannot see is not found rather than forbidden.
    let secret = s.secret["id"].as_str().unwrap();
    let reply = s
        .api
        .call(
            &s.api.bob,
            "POST",
            &format!("/events/delete/{secret}"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);

    let view = s
        .api
        .ok(&s.api.alice, "GET", &format!("/events/view/{id}"), None)
        .await;
    assert_eq!(view["Event"]["info"], "community event");
    assert_eq!(attribute_values(&view["Event"]).len(), 2);
    // The owner still may.
    s.api
        .ok(&s.api.alice, "POST", &format!("/events/delete/{id}"), None)
        .await;
}

#[tokio::test]
async fn events_record_owner_and_creator() {
    let s = scenario().await;
    let me = s.api.ok(&s.api.alice, "GET", "/users/view/me", None).await;
    let org_id = me["User"]["org_id"].as_str().unwrap().to_owned();
    assert_eq!(me["Organisation"]["name"], "Org A");
    assert_eq!(s.community["org_id"], org_id.as_str());
    assert_eq!(s.community["orgc_id"], org_id.as_str());
    assert_eq!(s.community["Orgc"]["name"], "Org A");
    assert_eq!(s.community["Attribute"][0]["distribution"], "5");
    assert_eq!(s.secret["distribution"], "0");

    // A user may share only with a sharing group of its organisation.
    let foreign_group = json!({"Event": {"info": "wrong group", "distribution": "4",
        "sharing_group_id": s.group_id}});
    let reply = s
        .api
        .call(&s.api.carol, "POST", "/events/add", Some(&foreign_group))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);

    // Without a distribution an event gets the default, this community (1).
    let plain = s
        .api
        .add_event(&s.api.bob, json!({"Event": {"info": "plain"}}))
        .await;
    assert_eq!(plain["distribution"], "1");
    let orgs = s
        .api
        .ok(&s.api.bob, "GET", "/organisations/index/scope:local", None)
        .await;
    let names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Organisation"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["iocwatch", "Org A", "Org B", "Org C"]);
}

#[tokio::test]
async fn restricted_event_reports_hidden_from_others() {
    let api = api();
    let event = api
        .add_event(
            &api.alice,
            json!({"Event": {"info": "reports", "distribution": "3", "EventReport": [
                {"uuid": "4d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a", "name": "internal",
                    "content": "org-a notes", "distribution": "0"},
                {"uuid": "5e3d2c1b-0a9f-4e8d-9c7b-6a5f4e3d2c1b", "name": "public",
                    "content": "shared notes", "distribution": "3"},
            ]}}),
        )
        .await;
    let path = format!("/events/view/{}", event["uuid"].as_str().unwrap());
    let names = |view: &Value| -> Vec<String> {
        view["Event"]["EventReport"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    let own = api.ok(&api.alice, "GET", &path, None).await;
    assert_eq!(names(&own), vec!["internal", "public"]);
    let other = api.ok(&api.carol, "GET", &path, None).await;
    assert_eq!(names(&other), vec!["public"]);
    assert!(!other.to_string().contains("org-a notes"));
}
