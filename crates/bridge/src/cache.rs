//! On-disk cache of lookup results, so the same digest is not asked again within the TTL.
//!
//! wazuh-integratord starts one process per alert and may run several at once, so each
//! entry is its own small JSON file, written to a temporary name and renamed into place.
//! A reader sees either the old entry or the new one, never a partial file, and no lock
//! is needed. Matches and misses are both cached; failed lookups are not.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::hash::Digest;
use crate::lookup::MispMatch;

/// A file touched after each sweep of expired entries. Its age shows when the next one is due.
const SWEEP_MARKER: &str = ".swept";
/// Entries larger than this are treated as damaged.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The search URL the result came from: a cache shared by two servers keeps them apart.
    server: String,
    stored_at_secs: u64,
    found: Option<MispMatch>,
}

/// The cache folder for one server.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    ttl: Duration,
    server: String,
}

impl Cache {
    /// Opens the cache folder, creating it (mode 0750) when missing.
    pub fn open(dir: &Path, ttl: Duration, server: &str) -> io::Result<Cache> {
        create_private_dir(dir)?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            ttl,
            server: server.to_string(),
        })
    }

    /// Returns the stored result for `digest`: `Some(Some(_))` for a match, `Some(None)`
    /// for a miss, and `None` when nothing usable is stored (absent, expired, damaged, or
    /// from another server).
    pub fn get(&self, digest: &Digest, now: SystemTime) -> Option<Option<MispMatch>> {
        let path = self.entry_path(digest);
        let metadata = fs::metadata(&path).ok()?;
        if metadata.len() > MAX_ENTRY_BYTES {
            return None;
        }
        let entry: Entry = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
        if entry.server != self.server || self.expired(entry.stored_at_secs, now) {
            return None;
        }
        Some(entry.found)
    }

    /// Stores the result for `digest`, replacing any earlier entry atomically.
    pub fn put(
        &self,
        digest: &Digest,
        found: Option<&MispMatch>,
        now: SystemTime,
    ) -> io::Result<()> {
        let entry = Entry {
            server: self.server.clone(),
            stored_at_secs: epoch_secs(now),
            found: found.cloned(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;

        // The temporary name is unique per process and entry, so concurrent writers of the
        // same digest never share a file; the last rename wins.
        let final_path = self.entry_path(digest);
        let temp_path = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            digest.algorithm.name(),
            digest.hex,
            process::id()
        ));
        fs::write(&temp_path, bytes)?;
        fs::rename(&temp_path, &final_path).inspect_err(|_| {
            let _ = fs::remove_file(&temp_path);
        })
    }

    /// Removes expired entries, at most once per TTL (tracked by a marker file), so the
    /// folder does not grow with every digest ever seen. Returns how many were removed.
    pub fn sweep(&self, now: SystemTime) -> io::Result<usize> {
        let marker = self.dir.join(SWEEP_MARKER);
        if let Ok(modified) = fs::metadata(&marker).and_then(|m| m.modified()) {
            if now.duration_since(modified).unwrap_or_default() < self.ttl {
                return Ok(0);
            }
        }
        fs::write(&marker, b"")?;

        let mut removed = 0;
        for item in fs::read_dir(&self.dir)? {
            let path = item?.path();
            let is_entry = path.extension().is_some_and(|e| e == "json");
            let stale = fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > self.ttl)
                .unwrap_or(false);
            if is_entry && stale && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn entry_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.json", digest.algorithm.name(), digest.hex))
    }

    fn expired(&self, stored_at_secs: u64, now: SystemTime) -> bool {
        let age = epoch_secs(now).saturating_sub(stored_at_secs);
        age >= self.ttl.as_secs()
    }
}

fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    fn digest() -> Digest {
        Digest::parse(HashAlgorithm::Md5, "0639b0a6f69b3265c1e42227d650b7d1").expect("valid")
    }

    #[test]
    fn stored_results_expire_after_ttl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path(), Duration::from_secs(60), "http://a").expect("open");
        let now = SystemTime::now();
        let found = MispMatch {
            event_id: Some("12".into()),
            ..Default::default()
        };

        assert_eq!(cache.get(&digest(), now), None);
        cache.put(&digest(), Some(&found), now).expect("put");
        assert_eq!(cache.get(&digest(), now), Some(Some(found)));
        assert_eq!(cache.get(&digest(), now + Duration::from_secs(61)), None);
    }

    #[test]
    fn misses_are_cached_per_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ttl = Duration::from_secs(60);
        let first = Cache::open(dir.path(), ttl, "http://a").expect("open");
        let second = Cache::open(dir.path(), ttl, "http://b").expect("open");
        let now = SystemTime::now();

        first.put(&digest(), None, now).expect("put");
        assert_eq!(first.get(&digest(), now), Some(None));
        assert_eq!(second.get(&digest(), now), None);
    }

    #[test]
    fn damaged_entries_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path(), Duration::from_secs(60), "http://a").expect("open");
        fs::write(cache.entry_path(&digest()), b"{not json").expect("write");
        assert_eq!(cache.get(&digest(), SystemTime::now()), None);
    }

    #[test]
    fn sweep_runs_once_per_ttl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path(), Duration::from_secs(60), "http://a").expect("open");
        let now = SystemTime::now();
        cache.put(&digest(), None, now).expect("put");

        let later = now + Duration::from_secs(3600);
        assert_eq!(cache.sweep(later).expect("sweep"), 1);
        cache.put(&digest(), None, now).expect("put");
        let soon = now + Duration::from_secs(1);
        assert_eq!(cache.sweep(soon).expect("sweep"), 0, "marker is fresh");
    }
}
