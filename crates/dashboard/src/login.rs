//! Login with a user name and API key, logout, and the middleware that admits only requests
//! with a live session and, for POST, the session's CSRF token.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{blocking, PageError};
use crate::pages::layout;
use crate::session::{cookie, random_token, set_cookie, Session, LOGIN_COOKIE, SESSION_COOKIE};
use crate::DashboardState;

/// Largest URL-encoded form body read to check its CSRF token, in bytes.
const MAX_FORM_BYTES: usize = 1024 * 1024;
/// Lifetime of the login form's CSRF cookie.
const LOGIN_FORM_SECS: u64 = 30 * 60;

/// The logged-in user of a request, with the session.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: api::User,
    pub session: Session,
}

/// How the CSRF token of a POST was checked, for handlers of multipart forms.
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
    let token = random_token().map_err(|e| {
        tracing::error!(error = %e, "failed to generate a CSRF token");
        PageError::Internal
    })?;
    let set = set_cookie(
        LOGIN_COOKIE,
        &token,
        Some(std::time::Duration::from_secs(LOGIN_FORM_SECS)),
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

/// POST /login: checks the CSRF token, the failure limiter, then the name and key.
pub async fn submit(
    State(state): State<DashboardState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Err(PageError::Csrf);
    }
    let client = connect.map(|c| c.0 .0.ip());
    if state.api.limiter.is_blocked(client) {
        return Err(PageError::TooManyFailures);
    }
    let db = state.api.db.clone();
    let key = form.key.trim().to_owned();
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
    let token = state.sessions.create(user.id).map_err(|e| {
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
            let db = state.api.db.clone();
            blocking(move || Ok(db.users()?))
                .await
                .ok()
                .and_then(|users| users.into_iter().find(|u| u.id == session.user_id))
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
