//! `iocwatch intel pull`: pulls indicators from a MISP-compatible server into the store,
//! incrementally by event timestamp, then pushes the sightings queued for that server.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use api::remote::{pull, PullSummary, RemoteConfig};
use clap::Args;
use serde_json::Value;

use super::remote::RemoteArgs;

use crate::cmd::Global;

/// Environment variable read for the API key when `--key-file` is not given.
pub const KEY_ENV: &str = "IOCWATCH_REMOTE_KEY";

/// Largest key file read, in bytes.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Rejected values listed after a pull unless `--all-rejected` is given.
const REJECTED_SHOWN: usize = 20;

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    remote: RemoteArgs,

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

    /// Request every event again, not only those changed since the last pull, to catch
    /// events that reached the server with older timestamps
    #[arg(long)]
    full: bool,

    /// How far before the newest event already pulled an incremental pull starts again
    #[arg(long, value_name = "AGE", value_parser = parse_age, default_value = "1h")]
    overlap: Duration,

    /// Events per request
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    page_size: u64,

    /// Largest response read per request, in MiB; a larger page is an error (lower
    /// --page-size then)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    max_page_mib: u64,

    /// List every rejected value instead of the first 20
    #[arg(long)]
    all_rejected: bool,

    /// Do not push the sightings queued for this server after the pull (they stay queued
    /// for `intel push-sightings` or the next pull)
    #[arg(long)]
    no_push_sightings: bool,
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
    let config = remote_config(&args)?;

    let db = api::Db::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in `{}`",
            global.data_dir.display()
        )
    })?;
    let summary =
        pull(&db, &config).with_context(|| format!("failed to pull from {}", config.url))?;
    print_summary(&config.url, &summary, args.all_rejected)?;
    if !args.no_push_sightings {
        // A failed push leaves the exit code of the pull as it is: the sightings stay
        // queued, and the warning names the error.
        let pushed = super::sightings::push_and_print(&db, &config)?;
        if let Some(error) = pushed {
            eprintln!("warning: {error:#}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn remote_config(args: &PullArgs) -> anyhow::Result<RemoteConfig> {
    let mut config = args.remote.config()?;
    config.page_size = args.page_size;
    config.max_page_bytes = args.max_page_mib * 1024 * 1024;
    config.full = args.full;
    config.overlap = args.overlap;
    config.not_before = args.since.map(cutoff);
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
    Ok(config)
}

fn string_list(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

/// Checks `url` and returns it with the scheme and host in lower case, so that one server
/// keeps one pull state however its URL is spelt. Plain HTTP is refused to anything but a
/// loopback address, because the API key travels in a request header.
pub(super) fn remote_url(url: &str) -> anyhow::Result<String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("--url `{url}` is not a URL: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        anyhow::bail!("--url `{url}` must start with https:// (or http:// on loopback)");
    }
    let Some(authority) = uri.authority() else {
        anyhow::bail!("--url `{url}` has no host; use https://HOST[:PORT]");
    };
    if authority.as_str().contains('@') {
        anyhow::bail!(
            "--url must not hold a user name or password (before `@`); the API key goes in \
             --key-file"
        );
    }
    if uri.query().is_some() {
        anyhow::bail!("--url `{url}` must not hold a query (after `?`); give the base URL");
    }
    let host = authority.host().to_ascii_lowercase();
    if scheme == "http" && !is_loopback(&host) {
        anyhow::bail!(
            "refusing to send the API key over plain HTTP to `{host}`; use https:// \
             (plain http:// is accepted for loopback addresses only)"
        );
    }
    let port = authority.port().map_or(String::new(), |p| format!(":{p}"));
    let path = uri.path().trim_end_matches('/');
    Ok(format!("{scheme}://{host}{port}{path}"))
}

fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads the API key from `key_file`, else from the environment. The key is never taken
/// from the command line, where other users of the host can read it.
pub(super) fn read_key(key_file: Option<&Path>) -> anyhow::Result<String> {
    let (key, origin) = match key_file {
        Some(path) => {
            let text = read_key_file(path)?;
            let first = text.lines().next().unwrap_or_default().trim().to_string();
            (first, format!("the key file `{}`", path.display()))
        }
        None => {
            let key = std::env::var(KEY_ENV).map_err(|_| {
                anyhow::anyhow!("missing API key: pass --key-file FILE or set {KEY_ENV}")
            })?;
            (key, KEY_ENV.to_owned())
        }
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        anyhow::bail!("the API key is empty; check --key-file or {KEY_ENV}");
    }
    // An HTTP header cannot carry control characters, so the request would fail later
    // without naming where the key came from.
    if let Some(position) = key.chars().position(char::is_control) {
        anyhow::bail!(
            "the API key in {origin} contains a control character at position {}; \
             write the key alone on the first line",
            position + 1
        );
    }
    Ok(key)
}

/// Reads a key file: a regular file of at most [`MAX_KEY_FILE_BYTES`], so that a device
/// or a pipe named by mistake neither exhausts memory nor blocks.
fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let failed = || format!("failed to read the key file `{}`", path.display());
    let meta = std::fs::metadata(path).with_context(failed)?;
    if !meta.is_file() {
        anyhow::bail!(
            "the key file `{}` is not a regular file; give a file holding the key",
            path.display()
        );
    }
    warn_if_readable_by_others(&meta, path);
    let mut text = String::new();
    std::fs::File::open(path)
        .with_context(failed)?
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(failed)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        anyhow::bail!(
            "the key file `{}` is larger than {MAX_KEY_FILE_BYTES} bytes; its first line \
             must be the API key",
            path.display()
        );
    }
    Ok(text)
}

fn warn_if_readable_by_others(meta: &std::fs::Metadata, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "the key file is readable by group or others; chmod 600 it"
        );
    }
}

/// Timestamp `age` ago, in seconds since the epoch.
fn cutoff(age: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    i64::try_from(now.saturating_sub(age.as_secs())).unwrap_or(i64::MAX)
}

/// Prints the summary line and the rejected values, as `intel import` does; rejections
/// leave the exit code at 0 and give a warning.
fn print_summary(url: &str, summary: &PullSummary, all_rejected: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{url}: {} pages, {} events added, {} updated, {} unchanged, {} invalid; \
         {} attributes, {} rejected; newest event timestamp {}",
        summary.pages,
        summary.events_added,
        summary.events_updated,
        summary.events_unchanged,
        summary.events_invalid,
        summary.attributes,
        summary.rejected.len(),
        summary.last_timestamp
    )?;
    let shown = if all_rejected {
        summary.rejected.len()
    } else {
        REJECTED_SHOWN
    };
    for r in summary.rejected.iter().take(shown) {
        writeln!(
            out,
            "  rejected {}: `{}`: {}",
            r.location, r.value, r.reason
        )?;
        tracing::debug!(location = %r.location, reason = %r.reason, "value rejected");
    }
    if summary.rejected.len() > shown {
        let more = summary.rejected.len() - shown;
        writeln!(out, "  ... {more} more rejected (use --all-rejected)")?;
    }
    if !summary.rejected.is_empty() {
        tracing::warn!(
            rejected = summary.rejected.len(),
            invalid_events = summary.events_invalid,
            "some pulled values were rejected and not stored; the other values were"
        );
    }
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
        assert!(remote_url("https://misp.example.org").is_ok());
        assert!(remote_url("http://127.0.0.1:8443").is_ok());
        assert!(remote_url("http://[::1]:8443/").is_ok());
        assert!(remote_url("http://localhost").is_ok());
        assert!(remote_url("http://misp.example.org").is_err());
        assert!(remote_url("http://10.0.0.1:80").is_err());
        assert!(remote_url("http://127.1").is_err());
        assert!(remote_url("ftp://127.0.0.1").is_err());
        assert!(remote_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn user_info_never_passes_for_loopback() {
        for url in [
            "http://localhost:1@192.0.2.1:8080",
            "http://127.0.0.1@192.0.2.1/",
            "https://user:secret@misp.example.org",
        ] {
            assert!(remote_url(url).is_err(), "{url} accepted");
        }
    }

    #[test]
    fn scheme_and_host_case_is_normalised() {
        assert_eq!(
            remote_url("HTTPS://MISP.Example.org:8443/misp").unwrap(),
            "https://misp.example.org:8443/misp"
        );
        assert_eq!(
            remote_url("Http://LOCALHOST:80").unwrap(),
            "http://localhost:80"
        );
        assert!(remote_url("https://misp.example.org/?a=1").is_err());
    }

    #[test]
    fn key_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_key(Some(Path::new("/dev/zero"))).is_err());
        assert!(read_key(Some(dir.path())).is_err());
        let big = dir.path().join("big.key");
        std::fs::write(&big, "k".repeat(5000)).unwrap();
        let error = read_key(Some(&big)).unwrap_err().to_string();
        assert!(error.contains("larger than 4096 bytes"), "{error}");
        let fine = dir.path().join("fine.key");
        std::fs::write(&fine, "abc\nrest\n").unwrap();
        assert_eq!(read_key(Some(&fine)).unwrap(), "abc");
    }
}
