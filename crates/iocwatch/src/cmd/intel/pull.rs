//! `iocwatch intel pull`: pulls indicators from a MISP-compatible server into the store,
//! incrementally by event timestamp.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use api::remote::{pull, PullSummary, RemoteConfig};
use clap::Args;
use serde_json::Value;

use crate::cmd::Global;

/// Environment variable read for the API key when `--key-file` is not given.
pub const KEY_ENV: &str = "IOCWATCH_REMOTE_KEY";

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Base URL of the MISP-compatible server, such as https://misp.example.org; plain
    /// http:// is accepted for loopback addresses only
    #[arg(long)]
    url: String,

    /// File whose first line is the API key; without it the key is read from the
    /// IOCWATCH_REMOTE_KEY environment variable
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,

    /// PEM file of the CA that signed the server's certificate, in place of the system roots
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// Pull only events with this tag; repeat for events with any of several tags
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,

    /// Pull only attributes of this type, such as sha256; repeat for several types
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,

    /// Pull only attributes with `to_ids` set (detections)
    #[arg(long)]
    to_ids: bool,

    /// Skip events last changed longer ago than AGE (such as 7d, 12h or 30m); applies when
    /// no pull from this URL is newer
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    since: Option<Duration>,

    /// Events per request
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    page_size: u64,

    /// Limit for each HTTP request, in seconds
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,
}

/// Parses an age such as `7d`: a whole number followed by s, m, h, d or w.
fn parse_age(text: &str) -> Result<Duration, String> {
    let invalid = || format!("`{text}` is not an age such as 30m, 12h, 7d or 2w");
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let count: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(invalid()),
    };
    count
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

pub fn run(args: PullArgs, global: &Global) -> anyhow::Result<ExitCode> {
    check_scheme(&args.url)?;
    let key = read_key(args.key_file.as_deref())?;
    let config = remote_config(&args, key);

    let db = api::Db::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in `{}`",
            global.data_dir.display()
        )
    })?;
    if let Some(age) = args.since {
        apply_since(&db, &config.url, age)?;
    }
    let summary =
        pull(&db, &config).with_context(|| format!("failed to pull from {}", config.url))?;
    print_summary(&config.url, &summary)?;
    Ok(ExitCode::SUCCESS)
}

fn remote_config(args: &PullArgs, key: String) -> RemoteConfig {
    let mut config = RemoteConfig::new(&args.url, &key);
    config.ca_file = args.ca_file.clone();
    config.page_size = args.page_size;
    config.timeout = Duration::from_secs(args.timeout_secs);
    if !args.tags.is_empty() {
        config
            .filters
            .insert("tags".into(), string_list(&args.tags));
    }
    if !args.types.is_empty() {
        config
            .filters
            .insert("type".into(), string_list(&args.types));
    }
    if args.to_ids {
        config.filters.insert("to_ids".into(), Value::Bool(true));
    }
    config
}

fn string_list(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

/// Rejects plain HTTP to anything but a loopback address, because the API key travels in
/// a request header.
pub(super) fn check_scheme(url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        anyhow::bail!("--url `{url}` must start with https:// (or http:// on loopback)");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        anyhow::bail!(
            "refusing to send the API key over plain HTTP to `{host}`; use https:// \
             (plain http:// is accepted for loopback addresses only)"
        );
    }
    Ok(())
}

/// Reads the API key from `key_file`, else from the environment. The key is never taken
/// from the command line, where other users of the host can read it.
pub(super) fn read_key(key_file: Option<&Path>) -> anyhow::Result<String> {
    let key = match key_file {
        Some(path) => {
            warn_if_readable_by_others(path);
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the key file `{}`", path.display()))?;
            text.lines().next().unwrap_or_default().trim().to_string()
        }
        None => std::env::var(KEY_ENV).map_err(|_| {
            anyhow::anyhow!("missing API key: pass --key-file FILE or set {KEY_ENV}")
        })?,
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        anyhow::bail!("the API key is empty; check --key-file or {KEY_ENV}");
    }
    Ok(key)
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the key file is readable by group or others; chmod 600 it"
            );
        }
    }
}

/// Moves the stored watermark of `url` forward to now minus `age`, so that the pull skips
/// older events. A newer watermark stays.
fn apply_since(db: &api::Db, url: &str, age: Duration) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let cutoff = i64::try_from(now.saturating_sub(age.as_secs())).unwrap_or(i64::MAX);
    let stored = db
        .remote_watermark(url)
        .context("failed to read the pull state")?;
    // The pull requests events newer than the watermark.
    let watermark = cutoff.saturating_sub(1);
    if stored.is_none_or(|stored| stored < watermark) {
        db.set_remote_watermark(url, watermark)
            .context("failed to record the pull state")?;
    }
    Ok(())
}

fn print_summary(url: &str, summary: &PullSummary) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{url}: {} pages, {} events added, {} updated, {} unchanged; {} attributes; \
         newest event timestamp {}",
        summary.pages,
        summary.events_added,
        summary.events_updated,
        summary.events_unchanged,
        summary.attributes,
        summary.last_timestamp
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_units() {
        assert_eq!(parse_age("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(1_209_600)));
    }

    #[test]
    fn invalid_ages_are_rejected() {
        for text in ["", "d", "7", "7y", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_age(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_scheme("https://misp.example.org").is_ok());
        assert!(check_scheme("http://127.0.0.1:8443").is_ok());
        assert!(check_scheme("http://[::1]:8443/").is_ok());
        assert!(check_scheme("http://localhost").is_ok());
        assert!(check_scheme("http://misp.example.org").is_err());
        assert!(check_scheme("http://10.0.0.1:80").is_err());
        assert!(check_scheme("ftp://127.0.0.1").is_err());
    }
}
