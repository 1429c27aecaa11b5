//! Login with a user name and API key, logout, and the middleware that admits only requests
//! with a live session and, for POST, the session's CSRF token.

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Deserialize;

use crate::error::{blocking, PageError};
use crate::pages::layout;
use crate::session::{
    cookie, key_hash, set_cookie, Session, LOGIN_COOKIE, LOGIN_FORM_LIFETIME, SESSION_COOKIE,
};
use crate::DashboardState;

/// Largest URL-encoded form body read to check its CSRF token, in bytes.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The logged-in user of a request, with the session.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: api::User,
    pub session: Session,
}

/// Outcome of the CSRF check of a POST, for handlers of multipart forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrfCheck {
    /// The `X-CSRF-Token` header or the URL-encoded form carried the right token.
    Done,
    /// A multipart body: the handler must check the form's `csrf` field.
    InBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    key: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Returns `next` when it is a path on this site, else `/`. Only printable ASCII is kept,
/// which is also what a `Location` header may contain.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.chars().all(|c| c.is_ascii_graphic());
    if local {
        next
    } else {
        "/"
    }
}

/// GET /login: the login form, with a fresh CSRF token in a cookie and in the form.
pub async fn form(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let has_session = cookie(&headers, SESSION_COOKIE)
        .and_then(|token| state.sessions.touch(token))
        .is_some();
    if has_session {
        return Ok(Redirect::to(safe_next(&query.next)).into_response());
    }
    login_page(&state, safe_next(&query.next), None, StatusCode::OK)
}

fn login_page(
    state: &DashboardState,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (cookie_token, token) = state.sessions.open_login().map_err(|e| {
        tracing::error!(error = %e, "failed to generate a CSRF token");
        PageError::Internal
    })?;
    let set = set_cookie(
        LOGIN_COOKIE,
        &cookie_token,
        Some(LOGIN_FORM_LIFETIME),
        state.secure_cookies,
    );
    let page = layout::login(&token, next, error);
    Ok((
        status,
        [(header::SET_COOKIE, set)],
        Html(page.into_string()),
    )
        .into_response())
}

/// True when the request's `Origin`, or without one its `Referer`, has the scheme, host and
/// port of the request itself. A request with neither is rejected.
fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = text(header::HOST) else {
        return false;
    };
    let own = format!("{}://{host}", if secure { "https" } else { "http" });
    let claimed = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => origin_of(referer),
        (None, None) => return false,
    };
    claimed.eq_ignore_ascii_case(&own)
}

/// Returns the `scheme://host:port` part of a URL.
fn origin_of(url: &str) -> &str {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url;
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    &url[..end]
}

/// Handles POST /login: checks the origin, the CSRF token and the failure limiter, then the
/// name and key.
pub async fn submit(
    State(state): State<DashboardState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let pre_session = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_origin(&headers, state.secure_cookies) {
        tracing::warn!("dashboard login rejected: Origin or Referer is not this site");
        return Err(PageError::Csrf);
    }
    if !state.sessions.close_login(pre_session, &form.csrf) {
        tracing::warn!("dashboard login rejected: unknown or expired login form");
        return Err(PageError::Csrf);
    }
    let client = connect.map(|c| c.0 .0.ip());
    if state.api.limiter.is_blocked(client) {
        return Err(PageError::TooManyFailures);
    }
    let db = state.api.db.clone();
    let key = form.key.trim().to_owned();
    let key_typed = key.clone();
    let user = blocking(move || Ok(db.user_by_key(&key)?)).await?;
    let name = form.name.trim();
    let Some(user) = user.filter(|u| u.name == name) else {
        let failures = state.api.limiter.record(client);
        // Neither the key nor the name typed is logged.
        tracing::warn!(client = ?client, failures, "dashboard login failed");
        return login_page(
            &state,
            safe_next(&form.next),
            Some("Invalid user name or API key."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let token = state
        .sessions
        .create(user.id, key_hash(&key_typed))
        .map_err(|e| {
            tracing::error!(error = %e, "failed to generate a session token");
            PageError::Internal
        })?;
    tracing::info!(user = %user.name, client = ?client, "dashboard login");
    let secure = state.secure_cookies;
    let session = set_cookie(SESSION_COOKIE, &token, None, secure);
    let clear = set_cookie(LOGIN_COOKIE, "", Some(std::time::Duration::ZERO), secure);
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let headers = response.headers_mut();
    for value in [session, clear] {
        if let Ok(value) = value.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// POST /logout: ends the session and clears its cookie.
pub async fn logout(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.remove(token);
    }
    let clear = set_cookie(
        SESSION_COOKIE,
        "",
        Some(std::time::Duration::ZERO),
        state.secure_cookies,
    );
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

/// Middleware: admits requests with a live session of an existing user. A POST must also
/// carry the session's CSRF token, and its `Origin`, when sent, must be this site.
pub async fn require_session(
    State(state): State<DashboardState>,
    request: Request,
    next: Next,
) -> Response {
    let background = request.uri().path().starts_with("/live/");
    let session = cookie(request.headers(), SESSION_COOKIE).and_then(|token| {
        if background {
            state.sessions.peek(token)
        } else {
            state.sessions.touch(token)
        }
    });
    let user = match session.clone() {
        Some(session) => {
            let path = state.api.db.path().to_owned();
            let user_id = session.user_id;
            match tokio::task::spawn_blocking(move || session_user(&path, &session)).await {
                Ok(Ok(Some(user))) => Some(user),
                Ok(Ok(None)) => {
                    // The user was removed, or removed and added again with a new key.
                    tracing::info!(user_id, "dashboard sessions of a removed user ended");
                    state.sessions.remove_user(user_id);
                    None
                }
                Ok(Err(error)) => {
                    tracing::error!(error = %error, user_id, "failed to check a dashboard session's user");
                    None
                }
                Err(error) => {
                    tracing::error!(error = %error, user_id, "dashboard session check failed");
                    None
                }
            }
        }
        None => None,
    };
    let (Some(session), Some(user)) = (session, user) else {
        return not_logged_in(&request);
    };
    let mut request = if request.method() == Method::POST {
        match check_csrf(request, &session).await {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        }
    } else {
        request
    };
    request.extensions_mut().insert(Viewer { user, session });
    next.run(request).await
}

/// Returns the user a session was opened for: the same id and still the same key. A user
/// removed (and maybe added again under the same id) has none.
fn session_user(path: &Path, session: &Session) -> rusqlite::Result<Option<api::User>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.query_row(
        "SELECT id, name, role, created, org_id FROM api_users
         WHERE id = ?1 AND key_sha256 = ?2",
        params![session.user_id, session.key_sha256.as_slice()],
        |r| {
            Ok(api::User {
                id: r.get(0)?,
                name: r.get(1)?,
                // An unknown role gets the least privilege, as in the API.
                role: r
                    .get::<_, String>(2)?
                    .parse()
                    .unwrap_or(api::Role::ReadOnly),
                created: r.get(3)?,
                org_id: r.get(4)?,
            })
        },
    )
    .optional()
}

fn not_logged_in(request: &Request) -> Response {
    let path = request.uri().path();
    if request.method() == Method::GET && !path.starts_with("/live/") {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let query = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
        return Redirect::to(&format!("/login?{query}")).into_response();
    }
    (StatusCode::UNAUTHORIZED, "not logged in or session expired").into_response()
}

/// Checks a POST's origin and CSRF token (header `X-CSRF-Token` or form field `csrf`);
/// a multipart body is marked for the handler to check.
async fn check_csrf(request: Request, session: &Session) -> Result<Request, PageError> {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_host != host {
            return Err(PageError::Csrf);
        }
    }
    if let Some(token) = headers.get("x-csrf-token").and_then(|t| t.to_str().ok()) {
        return if session.csrf_matches(token) {
            let mut request = request;
            request.extensions_mut().insert(CsrfCheck::Done);
            Ok(request)
        } else {
            Err(PageError::Csrf)
        };
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut request = request;
        request.extensions_mut().insert(CsrfCheck::InBody);
        return Ok(request);
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(PageError::Csrf);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| PageError::BadRequest(format!("form larger than {MAX_FORM_BYTES} bytes")))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let token = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    if !session.csrf_matches(token) {
        return Err(PageError::Csrf);
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(CsrfCheck::Done);
    Ok(request)
}

/// Middleware: admits only users whose role may write indicators.
pub async fn require_write(request: Request, next: Next) -> Response {
    match request.extensions().get::<Viewer>() {
        Some(viewer) if viewer.user.role.can_write() => next.run(request).await,
        _ => PageError::Forbidden.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_scheme_host_and_port() {
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), value.parse().unwrap());
            }
            map
        };
        let host = (header::HOST, "127.0.0.1:8443");
        let ok = headers(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:8443")]);
        assert!(same_origin(&ok, false));
        assert!(!same_origin(&ok, true));
        let port = headers(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:9001")]);
        assert!(!same_origin(&port, false));
        let referer = headers(&[
            host.clone(),
            (header::REFERER, "http://127.0.0.1:8443/login?next=/"),
        ]);
        assert!(same_origin(&referer, false));
        let other = headers(&[host.clone(), (header::REFERER, "http://127.0.0.1:9001/x")]);
        assert!(!same_origin(&other, false));
        assert!(!same_origin(&headers(&[host]), false));
    }

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next("/alerts?level=7"), "/alerts?level=7");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next(""), "/");
        assert_eq!(safe_next("/caf\u{e9}"), "/");
        assert_eq!(safe_next("/a\r\nSet-Cookie: x=1"), "/");
    }
}
