//! The in-memory baseline: every monitored file's last recorded state, keyed by path bytes.
//!
//! The agent thread is the only writer; scan threads read it to skip unchanged files and
//! mark the entries they saw. The database copy is written behind it by `db::DbWriter`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::state::FileState;

/// One recorded file.
#[derive(Debug)]
pub(crate) struct Entry {
    pub state: FileState,
    /// Generation of the last scan that saw this file (0: none yet).
    pub seen_gen: AtomicU32,
    /// Recorded by a silent baseline scan and not reported yet.
    pub silent: bool,
}

impl Entry {
    pub fn new(state: FileState, seen_gen: u32, silent: bool) -> Entry {
        Entry {
            state,
            seen_gen: AtomicU32::new(seen_gen),
            silent,
        }
    }

    pub fn mark_seen(&self, gen: u32) {
        self.seen_gen.store(gen, Ordering::Relaxed);
    }

    pub fn seen_in(&self, gen: u32) -> bool {
        self.seen_gen.load(Ordering::Relaxed) == gen
    }
}

pub(crate) type Map = BTreeMap<Box<[u8]>, Entry>;

/// The baseline map, shared between the agent thread and scan threads.
#[derive(Clone, Default)]
pub(crate) struct Baseline {
    map: Arc<RwLock<Map>>,
}

impl Baseline {
    pub fn read(&self) -> RwLockReadGuard<'_, Map> {
        self.map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Map> {
        self.map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Rebuilds the map from its sorted entries. Inserting paths one by one, mostly in
    /// order, leaves B-tree nodes about half full; a bulk build fills them, which halves
    /// the map's memory.
    pub fn compact(&self) {
        let mut map = self.write();
        let entries = std::mem::take(&mut *map);
        *map = entries.into_iter().collect();
    }
}

pub(crate) fn key(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// Returns the keys of every entry strictly below directory `dir`.
pub(crate) fn keys_under(map: &Map, dir: &Path) -> Vec<Box<[u8]>> {
    let mut prefix = key(dir).to_vec();
    if prefix.last() != Some(&b'/') {
        prefix.push(b'/');
    }
    map.range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> FileState {
        FileState {
            size: 0,
            perm: 0,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            dev: 0,
            md5: None,
            sha1: None,
            sha256: None,
            hash_skipped: None,
        }
    }

    #[test]
    fn keys_under_stops_at_siblings() {
        let mut map = Map::new();
        for p in ["/a/b", "/a/b.txt", "/a/b/c", "/a/b/d/e", "/a/b0", "/a/c"] {
            map.insert(p.as_bytes().into(), Entry::new(state(), 0, false));
        }
        let keys = keys_under(&map, Path::new("/a/b"));
        let keys: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        assert_eq!(keys, vec![&b"/a/b/c"[..], &b"/a/b/d/e"[..]]);
        assert_eq!(keys_under(&map, Path::new("/")).len(), 6);
    }
}
