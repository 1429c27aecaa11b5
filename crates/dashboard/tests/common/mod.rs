//! Shared set-up of the router tests: a data folder with users, alerts and intel, the
//! merged router, and helpers to log in, post forms and upload files.

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
pub const HOSTILE_PATH: &str = "/srv/<script>alert(\"owned\")</script>&.exe";
/// The address the tests' requests claim to be sent to.
pub const HOST: &str = "127.0.0.1:8443";
pub const ORIGIN: &str = "http://127.0.0.1:8443";
pub const MATCHED_SHA256: &str = "9c1185a5c5e9fc54612808977ee8f548b2258d31e5e2a0b5b3f1d3c1f1f0d7a1";

pub struct Harness {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub app: Router,
    pub admin_key: String,
    pub reader_key: String,
    pub user_key: String,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_limits(Duration::from_secs(1800), Duration::from_secs(3600))
    }

    pub fn with_limits(idle: Duration, absolute: Duration) -> Harness {
        Harness::build(idle, absolute, dashboard::MAX_UPLOAD_BYTES)
    }

    pub fn with_upload_limit(bytes: usize) -> Harness {
        Harness::build(Duration::from_secs(1800), Duration::from_secs(3600), bytes)
    }

    pub fn build(idle: Duration, absolute: Duration, upload_limit: usize) -> Harness {
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
            .with_session_limits(idle, absolute)
            .with_upload_limit(upload_limit);
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

    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        let mut request = request;
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, HOST.parse().unwrap());
        }
        self.app.clone().oneshot(request).await.unwrap()
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: &str,
        form: &[(&str, &str)],
    ) -> Response<Body> {
        let body = serde_urlencoded::to_string(form).unwrap();
        let request = Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::ORIGIN, ORIGIN)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    pub async fn feed(&self, path: &str, key: &str) -> (StatusCode, Value) {
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
    pub async fn login(&self, name: &str, key: &str) -> (String, String) {
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

    pub async fn try_login(&self, name: &str, key: &str) -> Response<Body> {
        let (cookie, token) = self.login_form().await;
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

impl Harness {
    /// Opens the login form; returns its cookie (`name=value`) and the form's token.
    pub async fn login_form(&self) -> (String, String) {
        let form_page = self.get("/login", None).await;
        let login_cookie = set_cookies(&form_page)
            .into_iter()
            .find(|c| c.starts_with("iocwatch_login="))
            .expect("login cookie set");
        let cookie = login_cookie.split(';').next().unwrap().to_owned();
        let html = text(form_page).await;
        (cookie, attribute_after(&html, "name=\"csrf\" value=\""))
    }

    /// Sends a login form with the given `Origin` and `Referer` headers.
    pub async fn login_from(
        &self,
        origin: Option<&str>,
        referer: Option<&str>,
        cookie: &str,
        token: &str,
    ) -> Response<Body> {
        let form = [
            ("name", "admin"),
            ("key", self.admin_key.as_str()),
            ("csrf", token),
        ];
        let mut request = Request::post("/login")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        let body = Body::from(serde_urlencoded::to_string(form).unwrap());
        self.send(request.body(body).unwrap()).await
    }
}

/// Imports a one-line sha256 list into the intel store; returns the new event's id.
pub fn import_hash_list(data: &Path) -> i64 {
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

pub fn alert(
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

pub fn fill_manager_db(path: &Path, event_id: i64) {
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

pub fn fill_integration_log(path: &Path) {
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

pub fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

pub async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn attribute_after(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` in page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn location(response: &Response<Body>) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub const BOUNDARY: &str = "dashboard-test-boundary";

pub fn multipart(fields: &[(&str, Option<&str>, &str)]) -> String {
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

pub fn upload_request(cookie: &str, body: String) -> Request<Body> {
    Request::post("/intel/import")
        .header(header::COOKIE, cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap()
}
