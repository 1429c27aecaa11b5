//! The dashboard through its router, merged with the API's as the server serves them: login
//! and sessions, CSRF, roles, escaping, security headers and the JSON feeds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A file path that would run script if a page printed it unescaped.
const HOSTILE_PATH: &str = "/srv/<script>alert(\"owned\")</script>&.exe";
const MATCHED_SHA256: &str = "9c1185a5c5e9fc54612808977ee8f548b2258d31e5e2a0b5b3f1d3c1f1f0d7a1";

struct Harness {
    _dir: tempfile::TempDir,
    data: PathBuf,
    app: Router,
    admin_key: String,
    reader_key: String,
    user_key: String,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_limits(Duration::from_secs(1800), Duration::from_secs(3600))
    }

    fn with_limits(idle: Duration, absolute: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let event_id = import_hash_list(&data);
        let state = api::AppState::open(&data).unwrap();
        let (_, admin_key) = state.db.add_user("admin", api::Role::Admin).unwrap();
        let (_, reader_key) = state.db.add_user("reader", api::Role::ReadOnly).unwrap();
        let (_, user_key) = state.db.add_user("analyst", api::Role::User).unwrap();
        let sources = dashboard::Sources {
            manager_db: data.join("manager.db"),
            alerts_json: data.join("logs/alerts/alerts.json"),
            integration_log: data.join("logs/integrations.json"),
        };
        fill_manager_db(&sources.manager_db, event_id);
        fill_integration_log(&sources.integration_log);
        let dashboard = dashboard::DashboardState::new(state.clone(), sources)
            .with_session_limits(idle, absolute);
        let app = api::router(state).merge(dashboard::router(dashboard));
        Harness {
            _dir: dir,
            data,
            app,
            admin_key,
            reader_key,
            user_key,
        }
    }

    async fn send(&self, request: Request<Body>) -> Response<Body> {
        let mut request = request;
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        self.app.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Response<Body> {
        let body = serde_urlencoded::to_string(form).unwrap();
        let request = Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    async fn feed(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, key)
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .unwrap();
        let response = self.send(request).await;
        let status = response.status();
        let body = text(response).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Logs in; returns the session cookie (`name=value`) and the session's CSRF token.
    async fn login(&self, name: &str, key: &str) -> (String, String) {
        let response = self.try_login(name, key).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "login of `{name}`"
        );
        let session = set_cookies(&response)
            .into_iter()
            .find(|c| c.starts_with("iocwatch_session=") && !c.starts_with("iocwatch_session=;"))
            .expect("session cookie set");
        let cookie = session.split(';').next().unwrap().to_owned();
        let page = text(self.get("/", Some(&cookie)).await).await;
        let csrf = attribute_after(&page, "name=\"csrf-token\" content=\"");
        (cookie, csrf)
    }

    async fn try_login(&self, name: &str, key: &str) -> Response<Body> {
        let form_page = self.get("/login", None).await;
        let login_cookie = set_cookies(&form_page)
            .into_iter()
            .find(|c| c.starts_with("iocwatch_login="))
            .expect("login cookie set");
        let cookie = login_cookie.split(';').next().unwrap().to_owned();
        let html = text(form_page).await;
        let token = attribute_after(&html, "name=\"csrf\" value=\"");
        self.post_form(
            "/login",
            &cookie,
            &[
                ("name", name),
                ("key", key),
                ("csrf", &token),
                ("next", "/"),
            ],
        )
        .await
    }
}

/// Imports a one-line sha256 list into the intel store; returns the new event's id.
fn import_hash_list(data: &Path) -> i64 {
    let list = data.join("known-bad.sha256");
    std::fs::write(&list, format!("{MATCHED_SHA256}\n")).unwrap();
    let mut store = intel::Store::open(data).unwrap();
    let reports = intel::import::import_path(
        &mut store,
        &list,
        &intel::import::ImportOptions::default(),
        &mut |_| {},
    );
    assert!(reports.iter().all(|r| r.outcome.is_ok()), "{reports:?}");
    let state = api::AppState::open(data).unwrap();
    state.db.event_index(&api::Viewer::SITE_ADMIN).unwrap()[0].id
}

fn alert(
    seq: u32,
    level: i64,
    rule: &str,
    agent: (&str, &str),
    path: &str,
    misp: Option<Value>,
) -> Value {
    let mut alert = json!({
        "timestamp": format!("2026-12-04T10:{:02}:00.000+0000", seq % 60),
        "rule": {"level": level, "description": format!("Rule {rule} fired on {path}"), "id": rule,
                 "groups": if misp.is_some() { json!(["misp", "misp_alert", "syscheck"]) } else { json!(["syscheck"]) }},
        "agent": {"id": agent.0, "name": agent.1, "ip": "10.0.0.5"},
        "manager": {"name": "test"},
        "id": format!("1796378400.{seq}"),
        "full_log": format!("File '{path}' added"),
        "syscheck": {"path": path, "event": "added", "sha256_after": MATCHED_SHA256},
        "decoder": {"name": "syscheck_new_entry"},
        "location": "syscheck",
    });
    if let Some(misp) = misp {
        alert["data"] = json!({"misp": misp});
    }
    alert
}

fn fill_manager_db(path: &Path, event_id: i64) {
    let conn = manager::db::open(path).unwrap();
    conn.execute(
        "INSERT INTO agents (id, name, cert_sha256, status, enrolled_at, last_seen, version, address)
         VALUES ('001', 'web1', 'aa', 'active', 1796378000, 1796378400, '0.1.0', '10.0.0.5'),
                ('002', 'db<b>1</b>', 'bb', 'disconnected', 1796378000, NULL, '0.1.0', NULL)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO event_streams (agent_id, stream, last_seq) VALUES ('001', 's1', 30), ('001', 's2', 10)",
        [],
    )
    .unwrap();
    let misp = json!({"event_id": event_id.to_string(), "event_info": "hash list", "type": "sha256",
                      "category": "Payload delivery", "value": MATCHED_SHA256, "tags": ["tlp:green"]});
    let quarantined = {
        let mut a = alert(4, 7, "111201", ("001", "web1"), HOSTILE_PATH, None);
        a["data"] = json!({"active_response": {"command_id": "c1", "action": "quarantine",
            "path": HOSTILE_PATH, "status": "done", "quarantine_path": "/var/q/1-x.exe"}});
        a
    };
    let alerts = [
        alert(1, 3, "550", ("001", "web1"), "/srv/readme.txt", None),
        alert(2, 12, "111010", ("001", "web1"), HOSTILE_PATH, Some(misp)),
        alert(3, 5, "554", ("002", "db1"), "/var/lib/new.bin", None),
        quarantined,
    ];
    for (index, body) in alerts.iter().enumerate() {
        conn.execute(
            "INSERT INTO alerts (id, timestamp, agent_id, rule_id, level, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                body["id"].as_str().unwrap(),
                body["timestamp"].as_str().unwrap(),
                body["agent"]["id"].as_str().unwrap(),
                body["rule"]["id"].as_str().unwrap(),
                body["rule"]["level"].as_i64().unwrap(),
                body.to_string(),
            ],
        )
        .unwrap_or_else(|e| panic!("alert {index}: {e}"));
    }
}

fn fill_integration_log(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let lines = [
        json!({"timestamp": "2026-12-04T10:01:00.000+0000", "integration": "intel", "agent_id": "001",
               "path": "/srv/readme.txt", "algorithm": "sha256", "hash": "00ff", "result": "no_match",
               "matches": [], "latency_us": 2.5}),
        json!({"timestamp": "2026-12-04T10:02:00.000+0000", "integration": "intel", "agent_id": "001",
               "path": HOSTILE_PATH, "algorithm": "sha256", "hash": MATCHED_SHA256, "result": "match",
               "matches": [["1", "4294967297"]], "latency_us": 3.25}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn attribute_after(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` in page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn location(response: &Response<Body>) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_redirect_to_login_without_session() {
    let harness = Harness::new();
    for path in ["/", "/alerts?level=7", "/agents", "/intel", "/integrations"] {
        let response = harness.get(path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&response).starts_with("/login?next="), "{path}");
    }
    let live = harness.get("/live/alerts?after=0", None).await;
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_sets_strict_http_only_cookie() {
    let harness = Harness::new();
    let response = harness.try_login("admin", &harness.admin_key).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("iocwatch_session="))
        .unwrap();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(
        !session.contains("Secure"),
        "plain HTTP gets no Secure flag: {session}"
    );
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    let page = text(harness.get("/", Some(&cookie)).await).await;
    assert!(page.contains("<h1>Overview</h1>"));
    assert!(page.contains("admin (admin)"));
}

#[tokio::test]
async fn https_deployment_marks_cookies_secure() {
    let mut harness = Harness::new();
    let state = api::AppState::open(&harness.data).unwrap();
    let sources = dashboard::Sources {
        manager_db: harness.data.join("manager.db"),
        alerts_json: harness.data.join("alerts.json"),
        integration_log: harness.data.join("integrations.json"),
    };
    let dashboard =
        dashboard::DashboardState::new(state.clone(), sources).with_secure_cookies(true);
    harness.app = api::router(state).merge(dashboard::router(dashboard));
    let form = harness.get("/login", None).await;
    assert!(set_cookies(&form).iter().all(|c| c.contains("; Secure")));
    let login = harness.try_login("admin", &harness.admin_key).await;
    assert!(set_cookies(&login).iter().all(|c| c.contains("; Secure")));
}

#[tokio::test]
async fn removed_user_loses_session() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("analyst", &harness.user_key).await;
    let state = api::AppState::open(&harness.data).unwrap();
    assert!(state.db.remove_user("analyst").unwrap());
    let page = harness.get("/", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_rejects_wrong_key_and_other_users_key() {
    let harness = Harness::new();
    let wrong = harness.try_login("admin", &"x".repeat(40)).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(text(wrong).await.contains("Invalid user name or API key."));
    let swapped = harness.try_login("admin", &harness.reader_key).await;
    assert_eq!(swapped.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_hit_the_api_limiter() {
    let harness = Harness::new();
    for _ in 0..api::auth::MAX_FAILURES {
        let response = harness.try_login("admin", "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = harness.try_login("admin", &harness.admin_key).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    // The API shares the limiter: the same address is blocked there too.
    let (status, _) = harness.feed("/iocwatch/agents", &harness.admin_key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn login_form_requires_its_csrf_token() {
    let harness = Harness::new();
    let response = harness
        .post_form(
            "/login",
            "iocwatch_login=abc",
            &[
                ("name", "admin"),
                ("key", &harness.admin_key),
                ("csrf", "def"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookies(&response)
        .iter()
        .all(|c| !c.starts_with("iocwatch_session=")));
}

#[tokio::test]
async fn post_without_csrf_token_is_rejected() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("admin", &harness.admin_key).await;
    let forged = harness
        .post_form("/logout", &cookie, &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let missing = harness.post_form("/logout", &cookie, &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let cross_site = Request::post("/logout")
        .header(header::COOKIE, &cookie)
        .header(header::HOST, "127.0.0.1:8443")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    assert_eq!(
        harness.send(cross_site).await.status(),
        StatusCode::FORBIDDEN
    );
    // The session survived the forged requests, and a real logout ends it.
    assert_eq!(
        harness.get("/", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    let logout = harness
        .post_form("/logout", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        harness.get("/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn multipart_upload_without_csrf_is_rejected() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("analyst", &harness.user_key).await;
    let body = multipart(&[
        ("csrf", None, "forged"),
        ("file", Some("x.sha256"), MATCHED_SHA256),
    ]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn idle_session_expires() {
    let harness = Harness::with_limits(Duration::ZERO, Duration::from_secs(3600));
    let response = harness.try_login("admin", &harness.admin_key).await;
    let cookie = set_cookies(&response)[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = harness.get("/alerts", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(location(&page).starts_with("/login"));
}

#[tokio::test]
async fn session_expires_after_absolute_limit() {
    let harness = Harness::with_limits(Duration::from_secs(3600), Duration::ZERO);
    let response = harness.try_login("admin", &harness.admin_key).await;
    let cookie = set_cookies(&response)[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        harness.get("/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn read_only_user_cannot_import() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("reader", &harness.reader_key).await;
    assert_eq!(
        harness.get("/intel/import", Some(&cookie)).await.status(),
        StatusCode::FORBIDDEN
    );
    let body = multipart(&[
        ("csrf", None, &csrf),
        ("file", Some("x.sha256"), MATCHED_SHA256),
    ]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let intel = text(harness.get("/intel", Some(&cookie)).await).await;
    assert!(
        !intel.contains("href=\"/intel/import\""),
        "no import link for read-only users"
    );
}

#[tokio::test]
async fn user_imports_hash_list_by_upload() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let body = multipart(&[("csrf", None, &csrf), ("file", Some("../new.sha256"), hash)]);
    let response = harness.send(upload_request(&cookie, body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = text(response).await;
    assert!(page.contains("new.sha256"), "{page}");
    assert!(page.contains("1 hash detections"), "{page}");
    let search = text(
        harness
            .get(&format!("/intel?q={hash}"), Some(&cookie))
            .await,
    )
    .await;
    assert!(search.contains(hash));
    assert!(!harness.data.join("new.sha256").exists());
}

#[tokio::test]
async fn upload_accepts_csrf_header() {
    let harness = Harness::new();
    let (cookie, csrf) = harness.login("analyst", &harness.user_key).await;
    let hash = "a".repeat(64);
    let body = multipart(&[("file", Some("header.sha256"), &hash)]);
    let mut request = upload_request(&cookie, body);
    request
        .headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    let response = harness.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(text(response).await.contains("1 hash detections"));
}

#[tokio::test]
async fn hostile_alert_fields_are_escaped() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    for path in [
        "/",
        "/alerts",
        "/alerts/1796378400.2",
        "/integrations",
        "/agents",
    ] {
        let page = text(harness.get(path, Some(&cookie)).await).await;
        assert!(
            !page.contains("<script>alert"),
            "{path} prints markup from data"
        );
        assert!(!page.contains("<b>1</b>"), "{path} prints markup from data");
    }
    let detail = text(harness.get("/alerts/1796378400.2", Some(&cookie)).await).await;
    assert!(
        detail.contains("&lt;script&gt;alert("),
        "the path is shown, escaped"
    );
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    for path in ["/login", "/", "/static/app.js"] {
        let response = harness.get(path, Some(&cookie)).await;
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    }
    let page = text(harness.get("/", Some(&cookie)).await).await;
    assert!(!page.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn alerts_page_filters_and_detail_shows_event() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("reader", &harness.reader_key).await;
    let high = text(harness.get("/alerts?level=10", Some(&cookie)).await).await;
    assert!(high.contains("1796378400.2"));
    assert!(!high.contains("1796378400.1\""));
    let agent = text(harness.get("/alerts?agent=002", Some(&cookie)).await).await;
    assert!(agent.contains("1796378400.3"));
    assert!(!agent.contains("1796378400.2"));
    let intel = text(harness.get("/alerts?intel=1", Some(&cookie)).await).await;
    assert!(intel.contains("href=\"/alerts/1796378400.2\""));
    assert!(!intel.contains("href=\"/alerts/1796378400.3\""));
    let group = text(harness.get("/alerts?group=misp_alert", Some(&cookie)).await).await;
    assert!(group.contains("href=\"/alerts/1796378400.2\""));
    assert!(!group.contains("href=\"/alerts/1796378400.1\""));
    let text_and_group = harness.get("/alerts?group=misp_alert&q=readme", Some(&cookie));
    let none = text(text_and_group.await).await;
    assert!(!none.contains("href=\"/alerts/1796378400"));
    assert!(agent.contains("href=\"/alerts?from="), "time range presets");
    assert!(
        agent.contains("&amp;agent=002\""),
        "presets keep the other filters"
    );
    let invalid = harness.get("/alerts?from=yesterday", Some(&cookie)).await;
    assert!(text(invalid).await.contains("expected YYYY-MM-DD"));

    let detail = text(harness.get("/alerts/1796378400.2", Some(&cookie)).await).await;
    assert!(detail.contains("MISP event"));
    assert!(detail.contains("12 critical"), "level as text");
    assert!(
        detail.contains("/var/q/1-x.exe"),
        "quarantine status from the active response"
    );
    assert!(detail.contains(MATCHED_SHA256));
    let missing = harness.get("/alerts/nope", Some(&cookie)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn live_feed_returns_newer_alerts() {
    let harness = Harness::new();
    let (cookie, _) = harness.login("reader", &harness.reader_key).await;
    let response = harness
        .get("/live/alerts?after=2&level=5", Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let live: Value = serde_json::from_str(&text(response).await).unwrap();
    let ids: Vec<&str> = live["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1796378400.3", "1796378400.4"]);
    assert_eq!(live["last_seq"], 4);
    assert_eq!(live["alerts"][0]["level_label"], "notice");
}

#[tokio::test]
async fn feeds_require_api_key() {
    let harness = Harness::new();
    for path in [
        "/iocwatch/alerts",
        "/iocwatch/alerts/1796378400.2",
        "/iocwatch/agents",
        "/iocwatch/integrations",
    ] {
        let (status, body) = harness.feed(path, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body["message"].is_string(), "{path}: MISP error shape");
    }
    // A session cookie is not an API key.
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    assert_eq!(
        harness
            .get("/iocwatch/agents", Some(&cookie))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn alerts_feed_filters_and_pages() {
    let harness = Harness::new();
    let (status, all) = harness.feed("/iocwatch/alerts", &harness.reader_key).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "1796378400.4",
            "1796378400.3",
            "1796378400.2",
            "1796378400.1"
        ]
    );

    let (_, paged) = harness
        .feed("/iocwatch/alerts?limit=3&page=2", &harness.reader_key)
        .await;
    assert_eq!(paged["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(paged["has_next"], false);

    let (_, filtered) = harness
        .feed(
            "/iocwatch/alerts?level=7&agent=web1&rule_id=111010",
            &harness.reader_key,
        )
        .await;
    assert_eq!(filtered["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        filtered["alerts"][0]["data"]["misp"]["value"],
        MATCHED_SHA256
    );

    let (status, bad) = harness
        .feed("/iocwatch/alerts?to=tomorrow", &harness.reader_key)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["message"].as_str().unwrap().contains("`to`"));
}

#[tokio::test]
async fn alert_agent_and_integration_feeds() {
    let harness = Harness::new();
    let (status, one) = harness
        .feed("/iocwatch/alerts/1796378400.2", &harness.reader_key)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["alert"]["rule"]["id"], "111010");
    assert_eq!(
        one["active_response"][0]["data"]["active_response"]["status"],
        "done"
    );
    let (status, _) = harness
        .feed("/iocwatch/alerts/none", &harness.reader_key)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, agents) = harness.feed("/iocwatch/agents", &harness.reader_key).await;
    assert_eq!(agents["agents"][0]["id"], "001");
    assert_eq!(agents["agents"][0]["alerts"], 3);
    assert_eq!(agents["agents"][0]["events"], 40);
    assert_eq!(agents["agents"][1]["status"], "disconnected");

    let (_, lookups) = harness
        .feed("/iocwatch/integrations?result=match", &harness.reader_key)
        .await;
    assert_eq!(lookups["lookups"].as_array().unwrap().len(), 1);
    assert_eq!(lookups["lookups"][0]["latency_us"], 3.25);
}

#[tokio::test]
async fn pages_render_without_manager_database() {
    let harness = Harness::new();
    std::fs::remove_file(harness.data.join("manager.db")).unwrap();
    let (cookie, _) = harness.login("admin", &harness.admin_key).await;
    for path in [
        "/",
        "/alerts",
        "/agents",
        "/intel",
        "/intel/warninglists",
        "/integrations",
    ] {
        let response = harness.get(path, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

const BOUNDARY: &str = "dashboard-test-boundary";

fn multipart(fields: &[(&str, Option<&str>, &str)]) -> String {
    let mut body = String::new();
    for (name, file, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(file) = file {
            body.push_str(&format!(
                "; filename=\"{file}\"\r\nContent-Type: text/plain"
            ));
        }
        body.push_str(&format!("\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body
}

fn upload_request(cookie: &str, body: String) -> Request<Body> {
    Request::post("/intel/import")
        .header(header::COOKIE, cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap()
}
