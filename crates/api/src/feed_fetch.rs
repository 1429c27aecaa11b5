//! Fetching a feed into the intel store. A local folder or file is imported as it is. An
//! HTTP feed is downloaded to a temporary folder first: a MISP feed as `manifest.json` and
//! one `<uuid>.json` per event, other formats as one file.

use std::path::Path;
use std::time::Duration;

use intel::import::{import_path, ImportOptions};
use misp::Format;

use crate::db::FeedRow;

/// Largest download accepted per file, in bytes.
const MAX_DOWNLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// Errors of a feed fetch.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("failed to download {url}")]
    Download {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("failed to write the downloaded feed: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid feed manifest at {url}: {reason}")]
    Manifest { url: String, reason: String },
    #[error("failed to open the intel store")]
    Store(#[from] intel::Error),
}

/// Counts of one fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSummary {
    pub files: usize,
    pub events: usize,
    pub attributes: usize,
    pub failed_files: usize,
}

fn format_of(feed: &FeedRow) -> Option<Format> {
    match feed.source_format.as_str() {
        "misp" => Some(Format::MispFeed),
        "freetext" => Some(Format::Freetext),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// Imports `feed` into the store in `data_dir`.
pub fn fetch(feed: &FeedRow, data_dir: &Path) -> Result<FetchSummary, FetchError> {
    let options = ImportOptions {
        format: format_of(feed),
        ..ImportOptions::default()
    };
    let mut store = intel::Store::open(data_dir)?;
    let download;
    let path = if feed.input_source == "network" {
        download = tempfile::tempdir()?;
        download_feed(feed, download.path())?
    } else {
        Path::new(&feed.url).to_owned()
    };
    let reports = import_path(&mut store, &path, &options, &mut |_| {});
    let mut summary = FetchSummary::default();
    for report in reports {
        summary.files += 1;
        match report.outcome {
            Ok(s) => {
                summary.events += s.write.events_added + s.write.events_updated;
                summary.attributes += s.write.attributes;
            }
            Err(error) => {
                summary.failed_files += 1;
                tracing::warn!(feed = feed.id, path = %report.path.display(), error = %error, "feed file not imported");
            }
        }
    }
    Ok(summary)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .user_agent(concat!("iocwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn get(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, FetchError> {
    let download = |source| FetchError::Download {
        url: url.to_owned(),
        source: Box::new(source),
    };
    let mut response = agent.get(url).call().map_err(download)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .read_to_vec()
        .map_err(download)
}

/// Downloads the feed into `dir`; returns the path to import.
fn download_feed(feed: &FeedRow, dir: &Path) -> Result<std::path::PathBuf, FetchError> {
    let agent = agent();
    let base = feed.url.trim_end_matches('/');
    if feed.source_format != "misp" {
        let file = dir.join("feed.txt");
        std::fs::write(&file, get(&agent, base)?)?;
        return Ok(file);
    }
    let manifest_url = format!("{base}/manifest.json");
    let manifest = get(&agent, &manifest_url)?;
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&manifest)
        .map_err(|e| FetchError::Manifest {
            url: manifest_url.clone(),
            reason: e.to_string(),
        })?;
    std::fs::write(dir.join("manifest.json"), &manifest)?;
    for uuid in entries.keys() {
        // Manifest keys name files in the folder, so only uuids are accepted.
        if uuid::Uuid::parse_str(uuid).is_err() {
            return Err(FetchError::Manifest {
                url: manifest_url,
                reason: format!("key `{uuid}` is not an event uuid"),
            });
        }
        let body = get(&agent, &format!("{base}/{uuid}.json"))?;
        std::fs::write(dir.join(format!("{uuid}.json")), body)?;
    }
    Ok(dir.to_owned())
}
