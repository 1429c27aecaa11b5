//! Authentication by API key (`Authorization` or `X-MISP-AUTH` header), roles and their
//! permissions, and the limiter that slows down repeated failed authentication.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// A role and what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including warninglists, feeds and tags management.
    Admin,
    /// Reads and writes events, attributes and sightings.
    User,
    /// Reads and searches only.
    ReadOnly,
    /// Server-to-server synchronisation: reads, and writes events and sightings.
    Sync,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::ReadOnly => "read-only",
            Role::Sync => "sync",
        }
    }

    /// Returns the role id shown in `users/view/me`, as in MISP's default roles.
    pub fn id(self) -> u32 {
        match self {
            Role::Admin => 1,
            Role::User => 3,
            Role::Sync => 5,
            Role::ReadOnly => 6,
        }
    }

    /// True when the role may add, change and delete indicators and sightings.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::ReadOnly)
    }

    /// True when the role may manage warninglists, feeds and tags.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "read-only" | "readonly" => Ok(Role::ReadOnly),
            "sync" => Ok(Role::Sync),
            _ => Err(format!(
                "unknown role `{s}`; use admin, user, read-only or sync"
            )),
        }
    }
}

/// The user a request authenticated as.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created: i64,
    /// The organisation the user belongs to (see `access.rs`).
    pub org_id: i64,
}

/// Failures allowed per client address within [`FAILURE_WINDOW`] before requests are
/// rejected without checking the key.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Counts failed authentications per client address.
#[derive(Default)]
pub struct FailureLimiter {
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl FailureLimiter {
    /// True when `client` failed [`MAX_FAILURES`] times within the current window.
    pub fn is_blocked(&self, client: Option<IpAddr>) -> bool {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        matches!(map.get(&client), Some((start, n))
            if start.elapsed() < FAILURE_WINDOW && *n >= MAX_FAILURES)
    }

    /// Records a failure; returns the number of failures in the current window.
    pub fn record(&self, client: Option<IpAddr>) -> u32 {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        }
        let entry = map.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1
    }
}

/// Reads the key from `Authorization` (bare, as PyMISP sends it) or `X-MISP-AUTH`.
fn request_key(headers: &HeaderMap) -> Option<&str> {
    ["authorization", "x-misp-auth"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::trim)
        .find(|key| !key.is_empty())
}

/// Middleware: authenticates the request and stores the [`User`] in its extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if state.limiter.is_blocked(client) {
        return refuse(&request, ApiError::too_many_failures());
    }
    let key = request_key(request.headers()).map(str::to_owned);
    let db = state.db.clone();
    let user = match key {
        Some(key) => tokio::task::spawn_blocking(move || db.user_by_key(&key))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
        None => None,
    };
    let Some(user) = user else {
        let failures = state.limiter.record(client);
        // The key itself is never logged.
        tracing::warn!(client = ?client, path = %request.uri().path(), failures, "API authentication failed");
        return refuse(&request, ApiError::unauthenticated());
    };
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// Middleware: lets through only users whose role may write indicators.
pub async fn require_write(request: Request, next: Next) -> Response {
    match request.extensions().get::<User>() {
        Some(user) if user.role.can_write() => next.run(request).await,
        _ => refuse(&request, ApiError::forbidden()),
    }
}

/// Middleware: lets through only administrators.
pub async fn require_admin(request: Request, next: Next) -> Response {
    match request.extensions().get::<User>() {
        Some(user) if user.role.is_admin() => next.run(request).await,
        _ => refuse(&request, ApiError::forbidden()),
    }
}

/// The error response for a request refused before its body was read. The unread body
/// makes the server drop the connection after the response, so the response says so:
/// a client that reused the connection for its next request would otherwise see it
/// closed mid-request.
fn refuse(request: &Request, error: ApiError) -> Response {
    let mut response = error.into_response();
    let headers = request.headers();
    let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|len| len.trim() != "0");
    if has_body {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}
