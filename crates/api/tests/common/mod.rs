//! Router harness shared by the API's behaviour tests: a fresh database in a temporary
//! folder, one admin key, and requests sent through the router with `oneshot`.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use api::{AppState, Db, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The router over a fresh database, with the key of its admin user.
pub struct Api {
    pub router: Router,
    pub state: AppState,
    pub admin: String,
    pub dir: tempfile::TempDir,
}

/// Opens a database in a new temporary folder and adds one admin user.
pub fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (_, admin) = db.add_user("admin", Role::Admin).unwrap();
    let state = AppState::new(db);
    Api {
        router: api::router(state.clone()),
        state,
        admin,
        dir,
    }
}

impl Api {
    /// Adds a user with the `User` role in organisation `org` (created when missing) and
    /// returns its key.
    pub fn user_in_org(&self, name: &str, org: &str) -> String {
        let org = self.state.db.ensure_local_org(org).unwrap();
        self.state
            .db
            .add_user_to_org(name, Role::User, org.id)
            .unwrap()
            .1
    }

    /// Sends a request as the admin and returns the status and the body as text.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        self.send_as(&self.admin, method, path, body).await
    }

    /// Sends a request with API key `key` and returns the status and the body as text.
    pub async fn send_as(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("Authorization", key)
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sends `body` as the admin and returns the status and the parsed JSON response.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, text) = self.send(method, path, Some(body)).await;
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        (status, value)
    }

    /// Sends `body` with API key `key` and returns the status and the parsed JSON response
    /// (null when the body is not JSON).
    pub async fn call_as(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, text) = self.send_as(key, method, path, Some(body)).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends a request as the admin, asserts a 200 and returns the parsed JSON response.
    pub async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self.send(method, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }
}
