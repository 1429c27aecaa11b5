//! Looking a digest up through MISP's `POST /attributes/restSearch`, which both MISP and
//! the iocwatch server serve: the request, retries, and reading the matched attribute.
//!
//! Request and response follow MISP's OpenAPI description: the body is an
//! `AttributeRestSearchFilter` (`value`, `to_ids`, `returnFormat`, ...), the key goes in the
//! `Authorization` header, and a 200 response is `{"response": {"Attribute": [...]}}` where
//! each attribute may carry its `Event` and `Tag` list.

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

use crate::alert::text;
use crate::hash::Digest;
use crate::options::Settings;

/// Responses larger than this are rejected: a digest matches a handful of attributes.
const MAX_RESPONSE_BYTES: u64 = 4 << 20;
/// At most this many attributes are requested.
const RESULT_LIMIT: u32 = 50;
/// Pause before the first retry; it doubles for each further retry.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
const SEARCH_PATH: &str = "/attributes/restSearch";

/// The attribute that matched and its event, as sent to Wazuh under `misp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MispMatch {
    pub event_id: Option<String>,
    pub event_uuid: Option<String>,
    pub event_info: Option<String>,
    /// `1` high, `2` medium, `3` low, `4` undefined.
    pub threat_level_id: Option<String>,
    pub attribute_id: Option<String>,
    pub attribute_uuid: Option<String>,
    #[serde(rename = "type")]
    pub attribute_type: Option<String>,
    pub category: Option<String>,
    pub value: Option<String>,
    pub comment: Option<String>,
    /// Tag names of the attribute, then of the event.
    pub tags: Vec<String>,
    /// How many detection attributes matched the digest in all.
    pub matches: usize,
}

/// A lookup that did not return a result.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LookupError {
    #[error(
        "the server rejected the API key (HTTP {status}): check <api_key> in the integration block"
    )]
    Unauthorized { status: u16 },
    #[error(
        "timed out after {attempts} attempt(s): check that the server is up, or raise timeout_secs"
    )]
    Timeout { attempts: u32 },
    #[error("server unreachable after {attempts} attempt(s): {message}")]
    Unreachable { attempts: u32, message: String },
    #[error("TLS failure: {message}: set ca_file to the CA that signed the server certificate")]
    Tls { message: String },
    #[error("unexpected HTTP status {status}")]
    HttpStatus { status: u16 },
    #[error("the server redirects (HTTP {status}): set <hook_url> to the final URL")]
    Redirected { status: u16 },
    #[error("invalid response: {message}")]
    InvalidResponse { message: String },
    #[error("invalid configuration: {message}")]
    Configuration { message: String },
}

impl LookupError {
    /// Returns the short name sent to Wazuh as `iocwatch.error`, which the rules test.
    pub fn kind(&self) -> &'static str {
        match self {
            LookupError::Unauthorized { .. } => "unauthorized",
            LookupError::Timeout { .. } => "timeout",
            LookupError::Unreachable { .. } => "unreachable",
            LookupError::Tls { .. } => "tls",
            LookupError::HttpStatus { .. } | LookupError::Redirected { .. } => "http_status",
            LookupError::InvalidResponse { .. } => "invalid_response",
            LookupError::Configuration { .. } => "configuration",
        }
    }

    /// Returns the HTTP status of the failed response, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            LookupError::Unauthorized { status }
            | LookupError::HttpStatus { status }
            | LookupError::Redirected { status } => Some(*status),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            LookupError::Timeout { .. } | LookupError::Unreachable { .. } => true,
            LookupError::HttpStatus { status } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    fn with_attempts(self, attempts: u32) -> Self {
        match self {
            LookupError::Timeout { .. } => LookupError::Timeout { attempts },
            LookupError::Unreachable { message, .. } => {
                LookupError::Unreachable { attempts, message }
            }
            other => other,
        }
    }
}

/// A client for one server and key.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    api_key: String,
    retries: u32,
    enforce_warninglist: bool,
}

impl Client {
    /// Builds a client for the server at `hook_url`. TLS certificates are verified against
    /// Mozilla's roots, or against the certificates of `ca_file` when it is set.
    pub fn new(settings: &Settings, hook_url: &str, api_key: &str) -> Result<Client, LookupError> {
        if api_key.is_empty() {
            return Err(LookupError::Configuration {
                message: "the API key is empty: set <api_key> in the integration block".into(),
            });
        }
        let url = search_url(hook_url)?;

        let mut tls = TlsConfig::builder().disable_verification(!settings.tls_verify);
        if let Some(ca_file) = &settings.ca_file {
            tls = tls.root_certs(read_ca_file(ca_file)?);
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("custom-iocwatch/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();

        Ok(Client {
            agent: config.new_agent(),
            url,
            api_key: api_key.to_string(),
            retries: settings.retries,
            enforce_warninglist: settings.enforce_warninglist,
        })
    }

    /// Returns the search URL, for logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Looks `digest` up, retrying timeouts, refused connections, 429 and 5xx responses.
    /// Returns `None` when no detection attribute (`to_ids`) has this value.
    pub fn search(&self, digest: &Digest) -> Result<Option<MispMatch>, LookupError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.search_once(digest) {
                Err(error) if error.retryable() && attempt <= self.retries => {
                    tracing::debug!(attempt, error = %error, "lookup failed, retrying");
                    thread::sleep(RETRY_PAUSE * 2u32.pow(attempt - 1));
                }
                Err(error) => return Err(error.with_attempts(attempt)),
                Ok(found) => return Ok(found),
            }
        }
    }

    fn search_once(&self, digest: &Digest) -> Result<Option<MispMatch>, LookupError> {
        let body = request_body(digest, self.enforce_warninglist).to_string();
        let mut response = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.api_key)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map_err(classify)?;

        let status = response.status().as_u16();
        match status {
            200 => {}
            401 | 403 => return Err(LookupError::Unauthorized { status }),
            300..=399 => return Err(LookupError::Redirected { status }),
            _ => return Err(LookupError::HttpStatus { status }),
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(classify)?;
        parse_response(&text)
    }
}

/// Returns the search URL for a hook URL: the server's base URL, with or without the
/// `/attributes/restSearch` path.
pub fn search_url(hook_url: &str) -> Result<String, LookupError> {
    let base = hook_url.trim().trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(LookupError::Configuration {
            message: format!(
                "hook URL `{}` is not an http:// or https:// URL: set <hook_url> to the server's base URL",
                redact_url(base)
            ),
        });
    }
    if base.ends_with(SEARCH_PATH) {
        Ok(base.to_string())
    } else {
        Ok(format!("{base}{SEARCH_PATH}"))
    }
}

/// Returns `url` without a `user:password@` part, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Builds the `AttributeRestSearchFilter` for one digest: detection attributes only and,
/// unless turned off, none whose value is on a warninglist. The type is left open so that
/// composite attributes such as `filename|sha256` and `malware-sample` match too.
pub fn request_body(digest: &Digest, enforce_warninglist: bool) -> Value {
    json!({
        "returnFormat": "json",
        "value": digest.hex,
        "to_ids": true,
        "enforceWarninglist": enforce_warninglist,
        "includeEventTags": true,
        // Without it MISP returns a short `Event` that has no `threat_level_id`.
        "includeContext": true,
        "limit": RESULT_LIMIT,
    })
}

/// Reads a 200 response. Attributes without `to_ids` or marked deleted are ignored even
/// if the server returned them. Of the rest, the one with the highest event threat level
/// (lowest `threat_level_id`) is reported.
pub fn parse_response(body: &str) -> Result<Option<MispMatch>, LookupError> {
    let document: Value = serde_json::from_str(body).map_err(|e| LookupError::InvalidResponse {
        message: format!("not JSON: {e}"),
    })?;
    let response = document
        .get("response")
        .ok_or_else(|| LookupError::InvalidResponse {
            message: "no `response` object".into(),
        })?;

    // Older MISP releases return `"response": []` for an empty search.
    let attributes = match response.get("Attribute") {
        Some(Value::Array(attributes)) => attributes.as_slice(),
        None if response.as_array().is_some_and(Vec::is_empty) => &[],
        _ => {
            return Err(LookupError::InvalidResponse {
                message: "`response.Attribute` is not a list".into(),
            })
        }
    };

    let detections: Vec<&Value> = attributes
        .iter()
        .filter(|a| flag(a.get("to_ids")) && !flag(a.get("deleted")))
        .collect();
    let best = detections
        .iter()
        .min_by_key(|a| text(a.pointer("/Event/threat_level_id")).unwrap_or_else(|| "9".into()));
    Ok(best.map(|attribute| read_match(attribute, detections.len())))
}

fn read_match(attribute: &Value, matches: usize) -> MispMatch {
    let event = attribute.get("Event");
    let field = |key: &str| text(attribute.get(key));
    let event_field = |key: &str| text(event.and_then(|e| e.get(key)));

    let mut tags = tag_names(attribute.get("Tag"));
    for tag in tag_names(event.and_then(|e| e.get("Tag"))) {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    MispMatch {
        event_id: field("event_id").or_else(|| event_field("id")),
        event_uuid: field("event_uuid").or_else(|| event_field("uuid")),
        event_info: event_field("info"),
        threat_level_id: event_field("threat_level_id"),
        attribute_id: field("id"),
        attribute_uuid: field("uuid"),
        attribute_type: field("type"),
        category: field("category"),
        value: field("value"),
        comment: field("comment").filter(|c| !c.is_empty()),
        tags,
        matches,
    }
}

fn tag_names(tags: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(tags)) = tags else {
        return Vec::new();
    };
    tags.iter().filter_map(|t| text(t.get("name"))).collect()
}

/// Reads a MISP boolean, which servers write as `true`, `1` or `"1"`.
fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<RootCerts, LookupError> {
    let configuration = |message: String| LookupError::Configuration { message };
    let mut pem = Vec::new();
    crate::options::open_regular(path)
        .and_then(|mut file| std::io::Read::read_to_end(&mut file, &mut pem))
        .map_err(|e| configuration(format!("failed to read ca_file `{}`: {e}", path.display())))?;

    let mut certificates = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(e) => {
                return Err(configuration(format!(
                    "invalid PEM in ca_file `{}`: {e}",
                    path.display()
                )))
            }
        }
    }
    if certificates.is_empty() {
        return Err(configuration(format!(
            "ca_file `{}` contains no PEM certificate",
            path.display()
        )));
    }
    Ok(RootCerts::Specific(Arc::new(certificates)))
}

/// Sorts a transport error into the kinds Wazuh rules tell apart.
fn classify(error: ureq::Error) -> LookupError {
    match error {
        ureq::Error::Timeout(_) => LookupError::Timeout { attempts: 1 },
        ureq::Error::Tls(message) => LookupError::Tls {
            message: message.to_string(),
        },
        ureq::Error::Rustls(e) => LookupError::Tls {
            message: e.to_string(),
        },
        ureq::Error::Pem(e) => LookupError::Tls {
            message: e.to_string(),
        },
        ureq::Error::Io(e) => classify_io(e),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => LookupError::Unreachable {
            attempts: 1,
            message: error.to_string(),
        },
        ureq::Error::BodyExceedsLimit(limit) => LookupError::InvalidResponse {
            message: format!("response larger than {limit} bytes"),
        },
        other => LookupError::Unreachable {
            attempts: 1,
            message: other.to_string(),
        },
    }
}

fn classify_io(error: io::Error) -> LookupError {
    if matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return LookupError::Timeout { attempts: 1 };
    }
    // rustls reports handshake failures through the I/O error it returns.
    if let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return LookupError::Tls {
            message: tls.to_string(),
        };
    }
    LookupError::Unreachable {
        attempts: 1,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    #[test]
    fn search_url_accepts_base_or_full_url() {
        assert_eq!(
            search_url("https://misp.example/").expect("valid"),
            "https://misp.example/attributes/restSearch"
        );
        assert_eq!(
            search_url("http://127.0.0.1:8080/attributes/restSearch").expect("valid"),
            "http://127.0.0.1:8080/attributes/restSearch"
        );
        assert!(matches!(
            search_url("misp.example"),
            Err(LookupError::Configuration { .. })
        ));
    }

    #[test]
    fn credentials_are_removed_from_urls() {
        assert_eq!(
            redact_url("https://user:secret@misp.example/x@y"),
            "https://misp.example/x@y"
        );
        assert_eq!(redact_url("https://misp.example"), "https://misp.example");
    }

    #[test]
    fn request_asks_for_detection_attributes() {
        let digest =
            Digest::parse(HashAlgorithm::Md5, "d41d8cd98f00b204e9800998ecf8427e").expect("valid");
        let body = request_body(&digest, true);
        assert_eq!(body["value"], "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(body["to_ids"], true);
        assert_eq!(body["returnFormat"], "json");
        assert!(body.get("type").is_none());
    }

    #[test]
    fn empty_responses_are_misses() {
        assert_eq!(
            parse_response(r#"{"response": {"Attribute": []}}"#),
            Ok(None)
        );
        assert_eq!(parse_response(r#"{"response": []}"#), Ok(None));
    }

    #[test]
    fn non_detection_attributes_are_ignored() {
        let body = r#"{"response": {"Attribute": [
            {"id": "1", "value": "x", "to_ids": false},
            {"id": "2", "value": "x", "to_ids": true, "deleted": true}]}}"#;
        assert_eq!(parse_response(body), Ok(None));
    }

    #[test]
    fn highest_threat_level_is_reported() {
        let body = r#"{"response": {"Attribute": [
            {"id": "1", "event_id": "7", "to_ids": "1", "Event": {"threat_level_id": "3", "info": "low"}},
            {"id": "2", "event_id": "8", "to_ids": 1, "Event": {"threat_level_id": "1", "info": "high",
              "Tag": [{"name": "tlp:amber"}]}, "Tag": [{"name": "malware"}]}]}}"#;
        let found = parse_response(body).expect("valid").expect("match");
        assert_eq!(found.attribute_id.as_deref(), Some("2"));
        assert_eq!(found.event_info.as_deref(), Some("high"));
        assert_eq!(found.tags, ["malware", "tlp:amber"]);
        assert_eq!(found.matches, 2);
    }

    #[test]
    fn malformed_responses_are_errors() {
        for body in ["", "[]", r#"{"response": {"Attribute": 3}}"#, "<html>"] {
            assert!(
                matches!(
                    parse_response(body),
                    Err(LookupError::InvalidResponse { .. })
                ),
                "{body}"
            );
        }
    }
}
