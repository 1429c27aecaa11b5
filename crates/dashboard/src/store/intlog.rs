//! The integration log's newest lines, read from the end of the file and paged.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Bytes read from the end of the log; older lines are not shown.
pub const TAIL_BYTES: u64 = 8 * 1024 * 1024;
/// Lookups per page.
pub const PAGE_SIZE: usize = 100;

/// One intel lookup as the manager logs it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Lookup {
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub agent_id: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub algorithm: String,
    #[serde(default)]
    pub hash: String,
    /// `match`, `no_match`, `suppressed` or `error`.
    #[serde(default)]
    pub result: String,
    /// `(MISP event id, attribute id)` of each match.
    #[serde(default)]
    pub matches: Vec<(String, String)>,
    #[serde(default)]
    pub latency_us: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Filters of the integration log page and feed.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LookupFilter {
    /// Keeps only this result.
    pub result: String,
    /// Text searched in the hash, path and agent id.
    pub q: String,
    /// Page number from 1.
    pub page: Option<u32>,
}

/// A page of lookups, newest first.
#[derive(Debug, Default)]
pub struct LookupPage {
    pub rows: Vec<Lookup>,
    pub page: u32,
    pub has_next: bool,
    /// Lines in the tail that were not valid lookup records.
    pub unreadable: usize,
    /// True when the file is longer than the tail read.
    pub truncated: bool,
}

impl LookupFilter {
    fn keeps(&self, lookup: &Lookup) -> bool {
        let result = self.result.trim();
        let q = self.q.trim();
        (result.is_empty() || lookup.result == result)
            && (q.is_empty()
                || lookup.hash.contains(q)
                || lookup.path.contains(q)
                || lookup.agent_id == q)
    }
}

/// Reads one page of the newest lookups matching `filter`; an absent log is empty.
pub fn page(log_path: &Path, filter: &LookupFilter) -> Result<LookupPage, StoreError> {
    let page = filter.page.unwrap_or(1).max(1);
    let (text, truncated) = match read_tail(log_path) {
        Ok(tail) => tail,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LookupPage {
                page,
                ..LookupPage::default()
            })
        }
        Err(source) => {
            return Err(StoreError::Io {
                path: log_path.display().to_string(),
                source,
            })
        }
    };
    let mut unreadable = 0;
    let skip = (page as usize - 1) * PAGE_SIZE;
    let mut matching = text
        .lines()
        .rev()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| match serde_json::from_str::<Lookup>(line) {
            Ok(lookup) => Some(lookup),
            Err(_) => {
                unreadable += 1;
                None
            }
        })
        .filter(|lookup| filter.keeps(lookup))
        .skip(skip);
    let rows: Vec<Lookup> = matching.by_ref().take(PAGE_SIZE).collect();
    let has_next = matching.next().is_some();
    Ok(LookupPage {
        rows,
        page,
        has_next,
        unreadable,
        truncated,
    })
}

/// Reads the last [`TAIL_BYTES`] of the file, starting at a line boundary.
fn read_tail(path: &Path) -> std::io::Result<(String, bool)> {
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    let start = length.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((length - start) as usize);
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    if start > 0 {
        // The first line is cut; it starts after the first newline.
        let cut = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..cut);
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), start > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(hash: &str, result: &str) -> String {
        format!(
            "{{\"timestamp\":\"2026-12-04T10:00:00.000+0000\",\"integration\":\"intel\",\
             \"agent_id\":\"001\",\"path\":\"/srv/a\",\"algorithm\":\"sha256\",\"hash\":\"{hash}\",\
             \"result\":\"{result}\",\"matches\":[],\"latency_us\":3.5}}\n"
        )
    }

    #[test]
    fn pages_newest_first_with_filters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("integrations.json");
        let mut text = String::new();
        for i in 0..150 {
            text.push_str(&line(
                &format!("{i:064}"),
                if i % 2 == 0 { "match" } else { "no_match" },
            ));
        }
        text.push_str("not json\n");
        std::fs::write(&path, text).unwrap();

        let first = page(&path, &LookupFilter::default()).unwrap();
        assert_eq!(first.rows.len(), PAGE_SIZE);
        assert!(first.has_next);
        assert_eq!(first.rows[0].hash, format!("{:064}", 149));
        assert_eq!(first.unreadable, 1);

        let matches = LookupFilter {
            result: "match".into(),
            page: Some(1),
            ..LookupFilter::default()
        };
        let only = page(&path, &matches).unwrap();
        assert_eq!(only.rows.len(), 75);
        assert!(!only.has_next);
        assert!(only.rows.iter().all(|r| r.result == "match"));
    }

    #[test]
    fn missing_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let page = page(&dir.path().join("none.json"), &LookupFilter::default()).unwrap();
        assert!(page.rows.is_empty());
    }
}
