//! Pulling indicators from a remote MISP instance (or another iocwatch server) and pushing
//! sightings back. Pulls are incremental: each requests the events changed since the newest
//! event timestamp already pulled from `events/restSearch`, page by page.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

use crate::Db;

/// Largest response read per page, in bytes.
const MAX_PAGE_BYTES: u64 = 512 * 1024 * 1024;

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
    #[error("{url} returned HTTP {status}; check the URL and that the key may read events")]
    Status { url: String, status: u16 },
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
        return Err(RemoteError::Status { url, status });
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_PAGE_BYTES)
        .read_to_vec()
        .map_err(request_error)?;
    serde_json::from_slice(&bytes).map_err(|e| RemoteError::Response {
        url,
        reason: e.to_string(),
    })
}

/// Pulls events changed since the last pull from the instance into the store of `db`.
pub fn pull(db: &Db, config: &RemoteConfig) -> Result<PullSummary, RemoteError> {
    let agent = agent(config)?;
    let data_dir = db.path().parent().unwrap_or(Path::new(".")).to_owned();
    let mut store = intel::Store::open(&data_dir)?;
    let since = db.remote_watermark(&config.url)?;
    let mut summary = PullSummary {
        last_timestamp: since.unwrap_or(0),
        ..PullSummary::default()
    };
    for page in 1.. {
        let mut body = config.filters.clone();
        body.insert("returnFormat".into(), json!("json"));
        body.insert("limit".into(), json!(config.page_size));
        body.insert("page".into(), json!(page));
        if let Some(since) = since {
            body.insert("timestamp".into(), json!(since + 1));
        }
        let response = post(&agent, config, "events/restSearch", &Value::Object(body))?;
        let events = page_events(&config.url, response)?;
        summary.pages += 1;
        let count = events.len() as u64;
        store_page(&mut store, &config.url, events, &mut summary)?;
        if count < config.page_size {
            break;
        }
    }
    db.set_remote_watermark(&config.url, summary.last_timestamp)?;
    tracing::info!(url = %config.url, pages = summary.pages, added = summary.events_added,
        updated = summary.events_updated, "remote MISP pulled");
    Ok(summary)
}

fn page_events(url: &str, response: Value) -> Result<Vec<Value>, RemoteError> {
    let list = match response {
        Value::Object(mut map) => map.remove("response").unwrap_or(Value::Null),
        other => other,
    };
    match list {
        Value::Array(events) => Ok(events),
        _ => Err(RemoteError::Response {
            url: url.to_owned(),
            reason: "expected a list of events".into(),
        }),
    }
}

fn store_page(
    store: &mut intel::Store,
    url: &str,
    events: Vec<Value>,
    summary: &mut PullSummary,
) -> Result<(), RemoteError> {
    let text = Value::Array(events).to_string();
    let parsed = misp::parse_bytes(
        text.as_bytes(),
        Some(misp::Format::MispJson),
        &misp::FileMeta::default(),
        &misp::CsvOptions::default(),
    )
    .map_err(|e| RemoteError::Response {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    for event in &parsed.events {
        summary.last_timestamp = summary
            .last_timestamp
            .max(event.event.timestamp.unwrap_or(0));
    }
    let write = store.write_parsed(&parsed, url, None)?;
    summary.events_added += write.events_added;
    summary.events_updated += write.events_updated;
    summary.events_unchanged += write.events_unchanged;
    summary.attributes += write.attributes;
    Ok(())
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
