//! Authentication of TAXII requests with the API's users and keys (HTTP Basic with the key as
//! the password, or the bare key as MISP clients send it), and `Accept` negotiation.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::error::TaxiiError;
use crate::{AppState, User};

/// Credentials read from a request.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    /// HTTP Basic: the user name and the API key as the password.
    Basic { name: String, key: String },
    /// The API key alone, in `Authorization` or `X-MISP-AUTH`.
    Key(String),
}

impl Credentials {
    fn key(&self) -> &str {
        match self {
            Credentials::Basic { key, .. } | Credentials::Key(key) => key,
        }
    }

    /// True when `user`, found by the key, is the user these credentials name.
    fn names(&self, user: &User) -> bool {
        match self {
            Credentials::Basic { name, .. } => *name == user.name,
            Credentials::Key(_) => true,
        }
    }
}

/// Reads credentials from `Authorization` (Basic or a bare key) or `X-MISP-AUTH`.
fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(value) = header(header::AUTHORIZATION.as_str()) {
        let basic = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
        return match basic {
            Some((_, encoded)) => basic_credentials(encoded.trim()),
            None => Some(Credentials::Key(value.to_owned())),
        };
    }
    header("x-misp-auth").map(|key| Credentials::Key(key.to_owned()))
}

fn basic_credentials(encoded: &str) -> Option<Credentials> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, key) = text.split_once(':')?;
    Some(Credentials::Basic {
        name: name.to_owned(),
        key: key.to_owned(),
    })
}

/// Middleware: authenticates the request and stores the [`User`] in its extensions. Failed
/// attempts count in the API's limiter, and the key is never logged.
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
        return TaxiiError::too_many_failures().into_response();
    }

    let credentials = credentials(request.headers());
    let user = match &credentials {
        Some(credentials) => {
            let db = state.db.clone();
            let key = credentials.key().to_owned();
            tokio::task::spawn_blocking(move || db.user_by_key(&key))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
                .filter(|user| credentials.names(user))
        }
        None => None,
    };

    let Some(user) = user else {
        let failures = state.limiter.record(client);
        let name = match &credentials {
            Some(Credentials::Basic { name, .. }) => Some(logged_name(&state, name).await),
            _ => None,
        };
        tracing::warn!(
            client = ?client,
            user = name.as_deref(),
            path = %request.uri().path(),
            failures,
            "TAXII authentication failed"
        );
        return TaxiiError::unauthorized().into_response();
    };
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// Returns the user name of a failed Basic login as it is logged. An existing user name is
/// logged as it is. Any other name is logged as `unknown:` and the first 4 hex digits of its
/// SHA-256, because a client that swaps name and password sends the key as the name.
async fn logged_name(state: &AppState, name: &str) -> String {
    let db = state.db.clone();
    let requested_name = name.to_owned();
    let user_exists = tokio::task::spawn_blocking(move || {
        db.users()
            .map(|users| users.iter().any(|user| user.name == requested_name))
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or(false);
    if user_exists {
        name.to_owned()
    } else {
        unknown_name_tag(name)
    }
}

/// Returns a tag of an unknown user name that distinguishes names in the log without
/// revealing them.
fn unknown_name_tag(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    format!("unknown:{:02x}{:02x}", digest[0], digest[1])
}

/// True when one media range of an `Accept` header value allows TAXII 2.1 JSON: the TAXII
/// media type with `version=2.1` or without a version, `application/*` or `*/*`.
pub fn accepts_taxii(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut version = None;
        let mut quality_zero = false;
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "version" => version = Some(value.to_owned()),
                "q" => quality_zero = value.parse::<f32>().is_ok_and(|q| q <= 0.0),
                _ => {}
            }
        }
        let type_matches = match media_type.as_str() {
            "application/taxii+json" => version.as_deref().is_none_or(|v| v == "2.1"),
            "*/*" | "application/*" => true,
            _ => false,
        };
        type_matches && !quality_zero
    })
}

/// Middleware: rejects requests whose `Accept` header allows no TAXII 2.1 response with 406.
/// A request without `Accept` is served.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match accept {
        Some(accept) if !accepts_taxii(&accept) => {
            TaxiiError::not_acceptable(&accept).into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_split_at_first_colon() {
        // "alice:k:ey" in base64.
        let parsed = credentials(&headers("authorization", "Basic YWxpY2U6azpleQ=="));
        let expected = Credentials::Basic {
            name: "alice".into(),
            key: "k:ey".into(),
        };
        assert_eq!(parsed, Some(expected));
    }

    #[test]
    fn bare_key_and_misp_header() {
        let bare = credentials(&headers("authorization", "abc"));
        assert_eq!(bare, Some(Credentials::Key("abc".into())));
        let misp = credentials(&headers("x-misp-auth", "def"));
        assert_eq!(misp, Some(Credentials::Key("def".into())));
    }

    #[test]
    fn invalid_basic_is_no_credentials() {
        assert_eq!(credentials(&headers("authorization", "Basic !!!")), None);
        assert_eq!(credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn unknown_name_tag_hides_the_name() {
        let key = "0123456789abcdef0123456789abcdef01234567";
        let tag = unknown_name_tag(key);
        assert_eq!(tag.len(), "unknown:".len() + 4);
        assert!(!tag.contains(&key[..4]), "{tag}");
        assert_eq!(tag, unknown_name_tag(key));
        assert_ne!(tag, unknown_name_tag("alice"));
    }

    #[test]
    fn accept_header_taxii_ranges() {
        assert!(accepts_taxii("application/taxii+json;version=2.1"));
        assert!(accepts_taxii("application/taxii+json; version=\"2.1\""));
        assert!(accepts_taxii("application/taxii+json"));
        assert!(accepts_taxii("text/html, */*;q=0.8"));
        assert!(!accepts_taxii("application/taxii+json;version=2.0"));
        assert!(!accepts_taxii(
            "application/vnd.oasis.taxii+json; version=2.0"
        ));
        assert!(!accepts_taxii("application/json"));
        assert!(!accepts_taxii("application/taxii+json;q=0"));
    }
}
