//! Pulling indicators from a remote MISP instance (or another iocwatch server) and pushing
//! sightings back. Pulls are incremental: each requests the events changed since the newest
//! event timestamp already pulled from `events/restSearch`, less an overlap, page by page.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

pub use crate::sighting_push::{push_sightings, SightingPushSummary};
use crate::Db;

/// Largest response read per request unless configured otherwise, in bytes.
pub const DEFAULT_MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// How far before the watermark an incremental pull starts again, for events that reach
/// the remote shortly after newer ones.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(3_600);

/// Remote instance and pull options.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Base URL of the instance, such as `https://misp.example.org`.
    pub url: String,
    /// API key; sent in the `Authorization` header and never logged.
    pub key: String,
    /// PEM file of the CA that signed the instance's certificate, instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Extra restSearch filters (`tags`, `type`, `to_ids`, ...), sent as given.
    pub filters: Map<String, Value>,
    /// Events per page.
    pub page_size: u64,
    pub timeout: Duration,
    /// Largest response read per request, in bytes.
    pub max_page_bytes: u64,
    /// Ignore the stored watermark and request every event (from `not_before`, if set).
    pub full: bool,
    /// How far before the watermark an incremental pull starts.
    pub overlap: Duration,
    /// Request no event older than this timestamp (seconds since the epoch); once the
    /// pull succeeds the watermark is at least this.
    pub not_before: Option<i64>,
}

impl RemoteConfig {
    pub fn new(url: &str, key: &str) -> RemoteConfig {
        RemoteConfig {
            url: url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            ca_file: None,
            filters: Map::new(),
            page_size: 100,
            timeout: Duration::from_secs(60),
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            full: false,
            overlap: DEFAULT_OVERLAP,
            not_before: None,
        }
    }
}

/// Errors of a pull or push.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("failed to read the CA file `{path}`: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{url} returned HTTP {status}; check the URL and that the key may {access}")]
    Status {
        url: String,
        status: u16,
        /// Permission the key needs for the request, such as "read events".
        access: &'static str,
    },
    #[error(
        "{url} rejected {count} sightings in a row with HTTP {status} and no MISP error \
         message; check the URL (a proxy path or a server without `sightings/add`) and \
         that the key may add sightings (write access); the sightings stay queued"
    )]
    Rejections {
        url: String,
        status: u16,
        count: u32,
    },
    #[error("{url} returned an invalid response: {reason}")]
    Response { url: String, reason: String },
    #[error("failed to store pulled events")]
    Store(#[from] intel::Error),
    #[error("failed to record the pull state")]
    Db(#[from] crate::DbError),
}

/// Counts of one pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSummary {
    pub pages: u64,
    pub events_added: usize,
    pub events_updated: usize,
    pub events_unchanged: usize,
    pub attributes: usize,
    /// Events left out whole, such as those with a malformed uuid.
    pub events_invalid: usize,
    /// Values and events left out, with their page, position and reason.
    pub rejected: Vec<misp::Rejected>,
    /// Newest event timestamp seen; the next pull starts after it.
    pub last_timestamp: i64,
}

fn read_ca_file(path: &Path) -> Result<RootCerts, RemoteError> {
    let error = |reason: String| RemoteError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let mut certificates = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(e) => return Err(error(format!("invalid PEM: {e}"))),
        }
    }
    if certificates.is_empty() {
        return Err(error("no PEM certificate in the file".into()));
    }
    Ok(RootCerts::Specific(Arc::new(certificates)))
}

/// Builds an HTTP client with the timeout and trusted roots of `config`.
pub(crate) fn agent(config: &RemoteConfig) -> Result<ureq::Agent, RemoteError> {
    let mut tls = TlsConfig::builder();
    if let Some(ca_file) = &config.ca_file {
        tls = tls.root_certs(read_ca_file(ca_file)?);
    }
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("iocwatch/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build()
        .new_agent())
}

/// POSTs `body` as JSON to `path` on the instance; returns the parsed response.
fn post(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    path: &str,
    body: &Value,
) -> Result<Value, RemoteError> {
    request(agent, config, path, Some(body))
}

/// Sends a request to `path` on the instance: a POST of `body` as JSON, or a GET without
/// one. Returns the parsed response of an HTTP 200; other statuses are errors.
pub(crate) fn request(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, RemoteError> {
    let (url, bytes) = request_bytes(agent, config, path, body)?;
    serde_json::from_slice(&bytes).map_err(|e| RemoteError::Response {
        url,
        reason: e.to_string(),
    })
}

/// Sends a request as [`request`] does; returns the URL and the body of an HTTP 200.
fn request_bytes(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    path: &str,
    body: Option<&Value>,
) -> Result<(String, Vec<u8>), RemoteError> {
    let url = format!("{}/{path}", config.url);
    let request_error = |source: ureq::Error| RemoteError::Request {
        url: url.clone(),
        source: Box::new(source),
    };
    let sent = match body {
        Some(body) => agent
            .post(&url)
            .header("Authorization", &config.key)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes()),
        None => agent
            .get(&url)
            .header("Authorization", &config.key)
            .header("Accept", "application/json")
            .call(),
    };
    let mut response = sent.map_err(request_error)?;
    let status = response.status().as_u16();
    if status != 200 {
        let access = access_needed(path);
        return Err(RemoteError::Status {
            url,
            status,
            access,
        });
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(config.max_page_bytes)
        .read_to_vec();
    let bytes = match bytes {
        Err(ureq::Error::BodyExceedsLimit(limit)) => {
            return Err(RemoteError::Response {
                url,
                reason: format!(
                    "the response is larger than {limit} bytes; request fewer events per \
                     page or raise the limit"
                ),
            })
        }
        other => other.map_err(request_error)?,
    };
    Ok((url, bytes))
}

/// Returns the permission the key needs for a request to `path`, for the hint of a
/// refused request.
fn access_needed(path: &str) -> &'static str {
    if path.starts_with("sightings/") {
        "add sightings (write access)"
    } else {
        "read events"
    }
}

/// Posts `body` to `path`; returns the URL, the status and the response body when it is
/// JSON, whatever the status. Fails only when no response arrived.
pub(crate) fn post_any_status(
    agent: &ureq::Agent,
    config: &RemoteConfig,
    path: &str,
    body: &Value,
) -> Result<(String, u16, Option<Value>), RemoteError> {
    let url = format!("{}/{path}", config.url);
    let request_error = |source: ureq::Error| RemoteError::Request {
        url: url.clone(),
        source: Box::new(source),
    };
    let mut response = agent
        .post(&url)
        .header("Authorization", &config.key)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .map_err(request_error)?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(config.max_page_bytes)
        .read_to_vec()
        .map_err(request_error)?;
    Ok((url, status, serde_json::from_slice(&bytes).ok()))
}

/// Pulls events changed since the last pull from the instance into the store of `db`.
/// The watermark moves only when every page was stored.
pub fn pull(db: &Db, config: &RemoteConfig) -> Result<PullSummary, RemoteError> {
    let agent = agent(config)?;
    let data_dir = db.path().parent().unwrap_or(Path::new(".")).to_owned();
    let mut store = intel::Store::open(&data_dir)?;
    let stored = db.remote_watermark(&config.url)?;
    let start = first_timestamp(config, stored);
    let floor = config.not_before.map_or(0, |t| t.saturating_sub(1));
    let mut summary = PullSummary {
        last_timestamp: stored.unwrap_or(0).max(floor),
        ..PullSummary::default()
    };
    for page in 1.. {
        let body = page_request(config, start, page);
        let (_, bytes) = request_bytes(&agent, config, "events/restSearch", Some(&body))?;
        let (count, published) = store_page(&mut store, &config.url, &bytes, page, &mut summary)?;
        db.set_publish_timestamps(&published)?;
        summary.pages += 1;
        if count < config.page_size {
            break;
        }
    }
    db.set_remote_watermark(&config.url, summary.last_timestamp)?;
    tracing::info!(url = %config.url, pages = summary.pages, added = summary.events_added,
        updated = summary.events_updated, rejected = summary.rejected.len(), "remote MISP pulled");
    Ok(summary)
}

/// Oldest event timestamp to request: the watermark less the overlap (none with `full`),
/// and not before `not_before`.
fn first_timestamp(config: &RemoteConfig, stored: Option<i64>) -> Option<i64> {
    let overlap = i64::try_from(config.overlap.as_secs()).unwrap_or(i64::MAX);
    let from_watermark = stored
        .filter(|_| !config.full)
        .map(|w| w.saturating_add(1).saturating_sub(overlap));
    match (from_watermark, config.not_before) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn page_request(config: &RemoteConfig, start: Option<i64>, page: u64) -> Value {
    let mut body = config.filters.clone();
    body.insert("returnFormat".into(), json!("json"));
    body.insert("limit".into(), json!(config.page_size));
    body.insert("page".into(), json!(page));
    if let Some(start) = start {
        body.insert("timestamp".into(), json!(start));
    }
    Value::Object(body)
}

/// A restSearch response: `{"response": [...]}` or a bare list, read without parsing
/// the events.
#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    response: Vec<&'a RawValue>,
}

/// Counts the events of a page; fails when the page is not a list of events.
fn count_events(bytes: &[u8]) -> Result<usize, String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let count = if first == Some(&b'[') {
        serde_json::from_slice::<Vec<&RawValue>>(bytes).map(|list| list.len())
    } else {
        serde_json::from_slice::<Wrapped<'_>>(bytes).map(|page| page.response.len())
    };
    count.map_err(|e| format!("expected a list of events: {e}"))
}

/// Parses one page once and stores its events; returns how many events it held, and the
/// publish time each published event carries, by uuid.
fn store_page(
    store: &mut intel::Store,
    url: &str,
    bytes: &[u8],
    page: u64,
    summary: &mut PullSummary,
) -> Result<(u64, Vec<(String, i64)>), RemoteError> {
    let invalid = |reason: String| RemoteError::Response {
        url: url.to_owned(),
        reason: format!("page {page}: {reason}"),
    };
    let count = count_events(bytes).map_err(invalid)?;
    let mut parsed = misp::parse_bytes(
        bytes,
        Some(misp::Format::MispJson),
        &misp::FileMeta::default(),
        &misp::CsvOptions::default(),
    )
    .map_err(|e| invalid(e.to_string()))?;
    let mut published = Vec::new();
    for event in &parsed.events {
        summary.last_timestamp = summary
            .last_timestamp
            .max(event.event.timestamp.unwrap_or(0));
        if let Some(time) = event.event.publish_timestamp.filter(|t| *t > 0) {
            published.push((event.event.uuid.clone(), time));
        }
    }
    let write = store.write_parsed(&parsed, url, None)?;
    summary.events_added += write.events_added;
    summary.events_updated += write.events_updated;
    summary.events_unchanged += write.events_unchanged;
    summary.attributes += write.attributes;
    summary.events_invalid += count.saturating_sub(parsed.events.len());
    for mut rejected in parsed.rejected.drain(..) {
        rejected.location = format!("page {page} {}", rejected.location);
        summary.rejected.push(rejected);
    }
    Ok((count as u64, published))
}

/// Reports a sighting of `value` at `timestamp` (seconds since the epoch) to the instance.
pub fn push_sighting(
    config: &RemoteConfig,
    value: &str,
    timestamp: i64,
    source: &str,
) -> Result<(), RemoteError> {
    let agent = agent(config)?;
    let body =
        json!({"value": value, "timestamp": timestamp.to_string(), "source": source, "type": "0"});
    post(&agent, config, "sightings/add", &body)?;
    Ok(())
}
