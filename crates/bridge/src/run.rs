//! One run of the integration: read the alert, look its digests up, send the result to
//! Wazuh's queue, and write one line about it to the log.

use std::error::Error;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::Value;
use tracing::{debug, error, info, warn, Level};

use crate::alert::{Alert, FileObservation};
use crate::args::{self, Invocation};
use crate::cache::Cache;
use crate::hash::Digest;
use crate::lookup::{redact_url, search_url, Client, LookupError, MispMatch};
use crate::message::{self, Source};
use crate::options::{log_path_of_invalid, Options, Settings, DEFAULT_LOG_PATH};
use crate::queue;

/// Alerts larger than this are not read; Wazuh's own limit for a message is 64 KiB.
const MAX_ALERT_BYTES: u64 = 1 << 20;

/// The end of a run. The process exits 0 for every outcome, because wazuh-integratord
/// writes any other status to `ossec.log` as a failure to run the integration. These
/// outcomes are already logged and, for failed lookups, sent to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Arguments or options were invalid; nothing was looked up.
    InvalidSetup,
    /// The alert file could not be read or is not JSON.
    InvalidAlert,
    /// The alert names no file with a digest.
    Skipped,
    Matched,
    NoMatch,
    LookupFailed,
    /// The result could not be written to the queue socket.
    SendFailed,
}

/// Runs the integration for the command line `args` (program name first).
pub fn main(args: &[OsString]) -> Outcome {
    let invocation = match args::parse(args) {
        Ok(invocation) => invocation,
        Err(e) => {
            init_logging(Path::new(DEFAULT_LOG_PATH), false);
            let _span = tracing::info_span!("custom-iocwatch").entered();
            error!(error = %e, "invalid arguments");
            return Outcome::InvalidSetup;
        }
    };

    let options = match &invocation.options_file {
        Some(path) => Options::load(path),
        None => Ok(Options::default()),
    };
    let log_path = match (&options, &invocation.options_file) {
        (Ok(options), _) => Settings::log_path(options),
        (Err(_), Some(path)) => {
            log_path_of_invalid(path).unwrap_or_else(|| DEFAULT_LOG_PATH.into())
        }
        (Err(_), None) => DEFAULT_LOG_PATH.into(),
    };
    init_logging(&log_path, invocation.debug);
    let _span = tracing::info_span!("custom-iocwatch").entered();

    match options.and_then(|options| Settings::resolve(&invocation, options)) {
        Ok(settings) => run(&invocation, &settings, SystemTime::now()),
        Err(e) => {
            error!(error = %chain(&e), "invalid options, alert not processed");
            Outcome::InvalidSetup
        }
    }
}

/// Processes the alert of `invocation` with resolved settings.
pub fn run(invocation: &Invocation, settings: &Settings, now: SystemTime) -> Outcome {
    let path = invocation.alert_file.display().to_string();
    let document = match read_alert(&invocation.alert_file) {
        Ok(document) => document,
        Err(e) => {
            error!(path = %path, error = %e, "failed to read alert file");
            return Outcome::InvalidAlert;
        }
    };

    let alert = Alert::from_json(&document);
    let file = match &alert.subject {
        Ok(file) => file,
        Err(reason) => {
            info!(
                alert_id = %alert.id.as_deref().unwrap_or("-"),
                rule_id = %alert.rule_id.as_deref().unwrap_or("-"),
                reason = %reason,
                "alert skipped, nothing to look up"
            );
            return Outcome::Skipped;
        }
    };
    debug!(path = %file.path, digests = file.digests.len(), "alert read");

    let lookup = Lookup {
        settings,
        server: search_url(&invocation.hook_url)
            .map(|url| redact_url(&url))
            .unwrap_or_default(),
        alert: &alert,
        file,
        now,
    };
    match Client::new(settings, &invocation.hook_url, &invocation.api_key) {
        Ok(client) => lookup.search(&client),
        Err(e) => lookup.report_failure(&file.digests[0], &e),
    }
}

/// The lookups for one file and the messages that report them.
struct Lookup<'a> {
    settings: &'a Settings,
    /// The search URL without credentials, for logs.
    server: String,
    alert: &'a Alert,
    file: &'a FileObservation,
    now: SystemTime,
}

impl Lookup<'_> {
    /// Looks each digest up, strongest first, until one matches. The first failed
    /// lookup ends the run: the others would most likely fail the same way, and each
    /// failure can cost the whole timeout while integratord waits.
    fn search(&self, client: &Client) -> Outcome {
        let cache = self.open_cache(client.url());
        for digest in &self.file.digests {
            let cached = cache.as_ref().and_then(|c| c.get(digest, self.now));
            let found = match cached {
                Some(found) => {
                    debug!(hash = %digest.hex, "cached result used");
                    found
                }
                None => match client.search(digest) {
                    Ok(found) => {
                        self.store(cache.as_ref(), digest, found.as_ref());
                        found
                    }
                    Err(e) => return self.report_failure(digest, &e),
                },
            };
            if let Some(found) = found {
                return self.report_match(digest, &found);
            }
        }
        self.report_miss()
    }

    fn open_cache(&self, server: &str) -> Option<Cache> {
        if self.settings.cache_ttl.is_zero() {
            return None;
        }
        let path = &self.settings.cache_path;
        match Cache::open(path, self.settings.cache_ttl, server) {
            Ok(cache) => Some(cache),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cache unavailable, looking up without it");
                None
            }
        }
    }

    fn store(&self, cache: Option<&Cache>, digest: &Digest, found: Option<&MispMatch>) {
        let Some(cache) = cache else { return };
        if let Err(e) = cache.put(digest, found, self.now) {
            warn!(error = %e, "failed to store lookup result in cache");
        }
        if let Err(e) = cache.sweep(self.now) {
            debug!(error = %e, "failed to remove expired cache entries");
        }
    }

    fn source<'b>(&'b self, digest: &'b Digest) -> Source<'b> {
        Source {
            alert_id: self.alert.id.as_deref(),
            rule_id: self.alert.rule_id.as_deref(),
            file: self.file,
            digest,
            agent: self.alert.agent.as_ref(),
        }
    }

    fn report_match(&self, digest: &Digest, found: &MispMatch) -> Outcome {
        let body = message::match_body(self.source(digest), found);
        if !self.send(&body) {
            return Outcome::SendFailed;
        }
        info!(
            path = %self.file.path,
            agent_id = %self.agent_id(),
            hash_type = %digest.algorithm.name(),
            hash = %digest.hex,
            event_id = %found.event_id.as_deref().unwrap_or("-"),
            attribute_id = %found.attribute_id.as_deref().unwrap_or("-"),
            "known-malicious file: intel match sent to Wazuh"
        );
        Outcome::Matched
    }

    fn report_miss(&self) -> Outcome {
        let strongest = &self.file.digests[0];
        if self.settings.report_misses {
            let body = message::miss_body(self.source(strongest));
            if !self.send(&body) {
                return Outcome::SendFailed;
            }
        }
        info!(
            path = %self.file.path,
            agent_id = %self.agent_id(),
            digests = self.file.digests.len(),
            reported = self.settings.report_misses,
            "no intel match"
        );
        Outcome::NoMatch
    }

    fn report_failure(&self, digest: &Digest, failure: &LookupError) -> Outcome {
        let body = message::error_body(self.source(digest), failure);
        let sent = self.send(&body);
        error!(
            path = %self.file.path,
            agent_id = %self.agent_id(),
            hash = %digest.hex,
            server = %self.server,
            error = %failure,
            "intel lookup failed"
        );
        if sent {
            Outcome::LookupFailed
        } else {
            Outcome::SendFailed
        }
    }

    /// Sends a body to the queue and logs a failure to do so.
    fn send(&self, body: &Value) -> bool {
        let frame = message::frame(self.alert.agent.as_ref(), body);
        debug!(message = %frame, "sending to the analysis queue");
        match queue::send(&self.settings.socket_path, &frame) {
            Ok(()) => true,
            Err(e) => {
                error!(
                    socket = %self.settings.socket_path.display(),
                    error = %e,
                    "failed to send message to the analysis queue: is wazuh-analysisd running?"
                );
                false
            }
        }
    }

    fn agent_id(&self) -> &str {
        self.alert.agent.as_ref().map_or("-", |a| a.id.as_str())
    }
}

fn read_alert(path: &Path) -> Result<Value, String> {
    // O_NONBLOCK keeps a FIFO in place of the alert from blocking the open, and with it
    // integratord, which waits for every run; regular files ignore the flag.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let is_file = file.metadata().map_err(|e| e.to_string())?.is_file();
    if !is_file {
        return Err("not a regular file".to_string());
    }
    let mut text = String::new();
    file.take(MAX_ALERT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_ALERT_BYTES {
        return Err(format!("larger than {MAX_ALERT_BYTES} bytes"));
    }
    serde_json::from_str(&text).map_err(|e| format!("not a JSON alert: {e}"))
}

/// Sends log lines to `path`, appending, or to standard error when the file cannot be
/// opened (integratord shows that output when run with debug).
fn init_logging(path: &Path, debug: bool) {
    let level = if debug { Level::DEBUG } else { Level::INFO };
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level);
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => {
            let _ = builder.with_writer(Mutex::new(file)).try_init();
        }
        Err(e) => {
            let _ = builder.with_writer(io::stderr).try_init();
            warn!(path = %path.display(), error = %e, "failed to open log file, logging to standard error");
        }
    }
}

/// Joins an error and its sources into one line.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_alert_rejects_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("alert.fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());

        let error = read_alert(&fifo).unwrap_err();

        assert_eq!(error, "not a regular file");
    }

    #[test]
    fn read_alert_rejects_a_directory() {
        let dir = tempfile::tempdir().unwrap();

        assert!(read_alert(dir.path()).is_err());
    }

    #[test]
    fn read_alert_parses_a_json_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.alert");
        std::fs::write(&path, br#"{"id":"1"}"#).unwrap();

        let document = read_alert(&path).unwrap();

        assert_eq!(document["id"], "1");
    }
}
