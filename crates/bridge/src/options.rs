//! Settings of a run: the JSON options file of the integration block, the values on the
//! command line, and the defaults, resolved and checked in one place.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::args::Invocation;

/// The socket wazuh-analysisd reads messages from integrations on.
pub const DEFAULT_SOCKET_PATH: &str = "/var/ossec/queue/sockets/queue";
/// The log file that Wazuh's own integrations write to.
pub const DEFAULT_LOG_PATH: &str = "/var/ossec/logs/integrations.log";
/// A folder the `wazuh` user can write to on a stock manager.
pub const DEFAULT_CACHE_PATH: &str = "/var/ossec/tmp/iocwatch-cache";
/// wazuh-integratord's own default for `<timeout>`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// wazuh-integratord's own default for `<retries>`.
pub const DEFAULT_RETRIES: u32 = 3;
/// How long a lookup result, match or miss, is reused.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 900;

const MAX_TIMEOUT_SECS: u64 = 300;
const MAX_RETRIES: u32 = 10;
const MAX_CACHE_TTL_SECS: u64 = 7 * 24 * 3600;
const MAX_OPTIONS_BYTES: u64 = 64 * 1024;

/// The options file: the JSON object of the integration block's `<options>` element,
/// which wazuh-integratord writes to a temporary file for each run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub timeout_secs: Option<u64>,
    pub retries: Option<u32>,
    pub ca_file: Option<PathBuf>,
    pub tls_verify: Option<bool>,
    pub cache_ttl_secs: Option<u64>,
    pub cache_path: Option<PathBuf>,
    pub report_misses: Option<bool>,
    pub socket_path: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    pub enforce_warninglist: Option<bool>,
}

/// The options file could not be used.
#[derive(Debug, Error)]
pub enum OptionsError {
    #[error("failed to read options file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("options file `{path}` is larger than {MAX_OPTIONS_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("invalid options file `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Options {
    /// Reads the options file. A missing file is no error (integratord passes none when
    /// `<options>` is unset), and neither is an empty one.
    pub fn load(path: &Path) -> Result<Options, OptionsError> {
        let read_error = |source| OptionsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = match open_regular(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Options::default()),
            Err(e) => return Err(read_error(e)),
        };
        let mut text = String::new();
        file.take(MAX_OPTIONS_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_OPTIONS_BYTES {
            return Err(OptionsError::TooLarge {
                path: path.to_path_buf(),
            });
        }

        if text.trim().is_empty() {
            return Ok(Options::default());
        }
        serde_json::from_str(&text).map_err(|e| OptionsError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Opens `path` for reading only when it is a regular file. The open uses O_NONBLOCK, so
/// a FIFO in its place fails at once instead of blocking the run. A blocked run would
/// block integratord too, because it waits for every run. Regular files ignore the flag.
pub(crate) fn open_regular(path: &Path) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or folder)",
        ));
    }
    Ok(file)
}

/// Returns `log_path` from an options file that [`Options::load`] rejected, so that the
/// rejection is logged where the administrator asked for logs.
pub fn log_path_of_invalid(path: &Path) -> Option<PathBuf> {
    let mut text = String::new();
    open_regular(path)
        .ok()?
        .take(MAX_OPTIONS_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    let document: serde_json::Value = serde_json::from_str(&text).ok()?;
    document.get("log_path")?.as_str().map(PathBuf::from)
}

/// The resolved settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Limit for one HTTP attempt, connection included.
    pub timeout: Duration,
    /// Attempts after the first one, for timeouts, refused connections, 429 and 5xx.
    pub retries: u32,
    pub ca_file: Option<PathBuf>,
    pub tls_verify: bool,
    /// Zero turns the cache off.
    pub cache_ttl: Duration,
    pub cache_path: PathBuf,
    pub report_misses: bool,
    pub socket_path: PathBuf,
    pub log_path: PathBuf,
    pub enforce_warninglist: bool,
    pub debug: bool,
}

impl Settings {
    /// Resolves each setting from the options file, then the command line, then the
    /// default, and checks the ranges. Every out-of-range value is reported in one error.
    pub fn resolve(invocation: &Invocation, options: Options) -> Result<Settings, OptionsError> {
        let timeout_secs = options
            .timeout_secs
            .or(invocation.timeout_secs)
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        let retries = options
            .retries
            .or(invocation.retries)
            .unwrap_or(DEFAULT_RETRIES);
        let cache_ttl_secs = options.cache_ttl_secs.unwrap_or(DEFAULT_CACHE_TTL_SECS);

        let mut problems = Vec::new();
        if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
            problems.push(format!(
                "`timeout_secs` is {timeout_secs}: use 1 to {MAX_TIMEOUT_SECS}"
            ));
        }
        if retries > MAX_RETRIES {
            problems.push(format!("`retries` is {retries}: use 0 to {MAX_RETRIES}"));
        }
        if cache_ttl_secs > MAX_CACHE_TTL_SECS {
            problems.push(format!(
                "`cache_ttl_secs` is {cache_ttl_secs}: use 0 to {MAX_CACHE_TTL_SECS}"
            ));
        }
        if !problems.is_empty() {
            return Err(OptionsError::Invalid {
                path: invocation.options_file.clone().unwrap_or_default(),
                message: problems.join("; "),
            });
        }

        let log_path = Self::log_path(&options);
        Ok(Settings {
            timeout: Duration::from_secs(timeout_secs),
            retries,
            ca_file: options.ca_file,
            tls_verify: options.tls_verify.unwrap_or(true),
            cache_ttl: Duration::from_secs(cache_ttl_secs),
            cache_path: options
                .cache_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_PATH)),
            report_misses: options.report_misses.unwrap_or(false),
            socket_path: options
                .socket_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_PATH)),
            log_path,
            enforce_warninglist: options.enforce_warninglist.unwrap_or(true),
            debug: invocation.debug,
        })
    }

    /// Returns the log file of these options, so that errors in the other settings can
    /// be logged where the administrator looks.
    pub fn log_path(options: &Options) -> PathBuf {
        options
            .log_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_PATH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation() -> Invocation {
        Invocation {
            alert_file: "/tmp/a".into(),
            api_key: String::new(),
            hook_url: String::new(),
            debug: false,
            options_file: Some("/tmp/x.options".into()),
            timeout_secs: Some(5),
            retries: Some(1),
        }
    }

    #[test]
    fn options_file_wins_over_command_line() {
        let options: Options =
            serde_json::from_str(r#"{"timeout_secs": 2, "report_misses": true}"#).expect("valid");
        let settings = Settings::resolve(&invocation(), options).expect("in range");
        assert_eq!(settings.timeout, Duration::from_secs(2));
        assert_eq!(settings.retries, 1);
        assert!(settings.report_misses);
        assert!(settings.tls_verify);
        assert_eq!(settings.socket_path, PathBuf::from(DEFAULT_SOCKET_PATH));
    }

    #[test]
    fn all_range_problems_are_reported_together() {
        let options: Options = serde_json::from_str(
            r#"{"timeout_secs": 0, "retries": 99, "cache_ttl_secs": 99999999}"#,
        )
        .expect("valid");
        let message = Settings::resolve(&invocation(), options)
            .expect_err("out of range")
            .to_string();
        assert!(message.contains("`timeout_secs` is 0"), "{message}");
        assert!(message.contains("`retries` is 99"), "{message}");
        assert!(message.contains("`cache_ttl_secs`"), "{message}");
    }

    #[test]
    fn unknown_option_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.options");
        fs::write(&path, r#"{"timeout": 3}"#).expect("write");
        let message = Options::load(&path).expect_err("unknown field").to_string();
        assert!(message.contains("unknown field `timeout`"), "{message}");
    }

    #[test]
    fn fifo_options_file_is_rejected_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.options");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());

        let message = Options::load(&fifo).expect_err("a FIFO").to_string();

        assert!(message.contains("fifo.options"), "{message}");
        assert_eq!(log_path_of_invalid(&fifo), None);
    }

    #[test]
    fn missing_or_empty_options_file_is_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Options::load(&dir.path().join("none.options")).expect("missing is fine");
        assert!(missing.timeout_secs.is_none());
        let empty = dir.path().join("empty.options");
        fs::write(&empty, "\n").expect("write");
        assert!(Options::load(&empty)
            .expect("empty is fine")
            .retries
            .is_none());
    }
}
