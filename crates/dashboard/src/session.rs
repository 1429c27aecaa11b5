//! Server-side login sessions: random tokens in a cookie, idle and absolute expiry, and the
//! CSRF token each session carries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "iocwatch_session";
/// Name of the cookie that carries the login form's CSRF token before a session exists.
pub const LOGIN_COOKIE: &str = "iocwatch_login";

/// A session ends after this long without a request, unless configured otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login whatever its use, unless configured otherwise.
pub const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions kept at most; the oldest are dropped beyond it.
const MAX_SESSIONS: usize = 10_000;
/// A login form must be sent within this time of being shown.
pub const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Login forms shown and not yet sent, kept at most; the oldest are dropped beyond it.
const MAX_LOGIN_FORMS: usize = 10_000;

/// A logged-in user's session.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: i64,
    /// SHA-256 of the key the user logged in with. A user removed and added again gets a
    /// new key, so a session never outlives the user it was opened for, even when the
    /// database gives the new user the same id.
    pub key_sha256: [u8; 32],
    /// Token every form and POST of this session must carry.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    /// True when `token` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, token: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// The session table, keyed by the SHA-256 of each token so that a lookup's timing reveals
/// nothing about stored tokens.
pub struct Sessions {
    idle: Duration,
    absolute: Duration,
    table: Mutex<HashMap<[u8; 32], Session>>,
    /// Pre-sessions of login forms: hash of the login cookie to the form's token.
    logins: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Sessions {
        Sessions {
            idle,
            absolute,
            table: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a pre-session for a login form; returns its cookie token and the form's token.
    pub fn open_login(&self) -> Result<(String, String), getrandom::Error> {
        let (cookie, form) = (random_token()?, random_token()?);
        let now = Instant::now();
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        if logins.len() >= MAX_LOGIN_FORMS {
            logins.retain(|_, (_, shown)| now.duration_since(*shown) < LOGIN_FORM_LIFETIME);
        }
        if logins.len() >= MAX_LOGIN_FORMS {
            if let Some(oldest) = logins.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| *k) {
                logins.remove(&oldest);
            }
        }
        logins.insert(token_key(&cookie), (form.clone(), now));
        Ok((cookie, form))
    }

    /// Ends the login pre-session of `cookie`; true when it was live and issued `form`.
    pub fn close_login(&self, cookie: &str, form: &str) -> bool {
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        match logins.remove(&token_key(cookie)) {
            Some((expected, shown)) => {
                shown.elapsed() < LOGIN_FORM_LIFETIME
                    && bool::from(expected.as_bytes().ct_eq(form.as_bytes()))
            }
            None => false,
        }
    }

    /// Starts a session for `user_id`, who logged in with the key of hash `key_sha256`;
    /// returns the cookie token.
    pub fn create(&self, user_id: i64, key_sha256: [u8; 32]) -> Result<String, getrandom::Error> {
        let token = random_token()?;
        let now = Instant::now();
        let session = Session {
            user_id,
            key_sha256,
            csrf: random_token()?,
            created: now,
            last_seen: now,
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, s| !self.is_expired(s, now));
        }
        if table.len() >= MAX_SESSIONS {
            if let Some(oldest) = table.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                table.remove(&oldest);
            }
        }
        table.insert(token_key(&token), session);
        Ok(token)
    }

    /// Returns the live session of `token` and marks it used; an expired one is removed.
    pub fn touch(&self, token: &str) -> Option<Session> {
        self.find_at(token, Instant::now(), true)
    }

    /// Returns the live session of `token` without marking it used, so that background
    /// requests (the pages' live updates) do not keep an idle session open.
    pub fn peek(&self, token: &str) -> Option<Session> {
        self.find_at(token, Instant::now(), false)
    }

    fn find_at(&self, token: &str, now: Instant, mark_used: bool) -> Option<Session> {
        let key = token_key(token);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let session = table.get_mut(&key)?;
        if self.is_expired(session, now) {
            table.remove(&key);
            return None;
        }
        if mark_used {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    /// Ends the session of `token`.
    pub fn remove(&self, token: &str) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.remove(&token_key(token));
    }

    /// Ends every session of `user_id`.
    pub fn remove_user(&self, user_id: i64) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.retain(|_, s| s.user_id != user_id);
    }

    fn is_expired(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) >= self.idle
            || now.duration_since(session.created) >= self.absolute
    }
}

/// SHA-256 of an API key, as the API's user table stores it.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Returns 32 random bytes from the operating system, hex-encoded.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads cookie `name` from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Builds a `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site, and Secure
/// when the dashboard is served over HTTPS. `max_age` of zero deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_when_idle() {
        let sessions = Sessions::new(Duration::ZERO, DEFAULT_ABSOLUTE);
        let token = sessions.create(1, [0; 32]).unwrap();
        assert!(sessions.touch(&token).is_none());
    }

    #[test]
    fn session_expires_after_absolute_limit() {
        let sessions = Sessions::new(DEFAULT_IDLE, Duration::ZERO);
        let token = sessions.create(1, [0; 32]).unwrap();
        assert!(sessions.touch(&token).is_none());
    }

    #[test]
    fn session_lives_and_ends_on_remove() {
        let sessions = Sessions::new(DEFAULT_IDLE, DEFAULT_ABSOLUTE);
        let token = sessions.create(7, [0; 32]).unwrap();
        let session = sessions.touch(&token).unwrap();
        assert_eq!(session.user_id, 7);
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("nope"));
        sessions.remove(&token);
        assert!(sessions.touch(&token).is_none());
    }

    #[test]
    fn peek_does_not_extend_idle_time() {
        let idle = Duration::from_secs(60);
        let sessions = Sessions::new(idle, DEFAULT_ABSOLUTE);
        let token = sessions.create(1, [0; 32]).unwrap();
        let start = Instant::now();
        let later = start + Duration::from_secs(40);
        assert!(sessions.find_at(&token, later, false).is_some());
        let past_idle = start + Duration::from_secs(61);
        assert!(sessions.find_at(&token, past_idle, false).is_none());
    }

    #[test]
    fn touch_extends_idle_time_until_absolute_limit() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(100));
        let token = sessions.create(1, [0; 32]).unwrap();
        let start = Instant::now();
        for seconds in [40, 80] {
            let at = start + Duration::from_secs(seconds);
            assert!(
                sessions.find_at(&token, at, true).is_some(),
                "at {seconds} s"
            );
        }
        let past_absolute = start + Duration::from_secs(101);
        assert!(sessions.find_at(&token, past_absolute, true).is_none());
    }

    #[test]
    fn login_form_token_is_bound_to_its_cookie_and_used_once() {
        let sessions = Sessions::new(DEFAULT_IDLE, DEFAULT_ABSOLUTE);
        let (cookie, form) = sessions.open_login().unwrap();
        assert!(!sessions.close_login("chosen-by-someone-else", "chosen-by-someone-else"));
        assert!(sessions.close_login(&cookie, &form));
        assert!(!sessions.close_login(&cookie, &form));
        let (cookie, _) = sessions.open_login().unwrap();
        assert!(!sessions.close_login(&cookie, &cookie));
    }

    #[test]
    fn cookie_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; iocwatch_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
