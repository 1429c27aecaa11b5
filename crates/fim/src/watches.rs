//! The inotify watch table: one watch per monitored directory, plus "anchor" watches on the
//! nearest existing ancestor of each monitored directory, to see it deleted and created again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::inotify::{self, Inotify, RawEvent};

/// Events wanted on a monitored directory.
const TREE_MASK: u32 = inotify::IN_CLOSE_WRITE
    | inotify::IN_MOVED_TO
    | inotify::IN_MOVED_FROM
    | inotify::IN_CREATE
    | inotify::IN_DELETE
    | inotify::IN_DELETE_SELF
    | inotify::IN_MOVE_SELF
    | inotify::IN_ATTRIB
    | inotify::IN_ONLYDIR
    | inotify::IN_MASK_ADD;

/// Events wanted on an ancestor that only guards a monitored directory's existence.
const ANCHOR_MASK: u32 = inotify::IN_CREATE
    | inotify::IN_MOVED_TO
    | inotify::IN_MOVED_FROM
    | inotify::IN_DELETE
    | inotify::IN_DELETE_SELF
    | inotify::IN_MOVE_SELF
    | inotify::IN_ONLYDIR
    | inotify::IN_MASK_ADD;

/// A watched directory inside a monitored tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TreeRole {
    /// Index of the monitored directory in the configuration.
    pub root: usize,
    /// Levels below the monitored directory (0 for the directory itself).
    pub depth: u32,
}

#[derive(Debug)]
pub(crate) struct Watched {
    pub path: PathBuf,
    pub tree: Option<TreeRole>,
    /// Monitored directories (by index) this directory is the anchor of.
    pub anchors: Vec<usize>,
}

/// Result of adding a watch.
#[derive(Debug)]
pub(crate) enum AddOutcome {
    Added,
    /// Already watched in this role.
    AlreadyWatched,
    /// The same directory is watched under another path (a symlink loop or bind mount).
    Duplicate,
    /// The kernel's (or the configured) watch limit is reached.
    LimitReached,
    /// The directory no longer exists.
    Gone,
    Failed(io::Error),
}

pub(crate) struct Watches {
    inotify: Inotify,
    by_wd: HashMap<i32, Watched>,
    by_path: BTreeMap<PathBuf, i32>,
    max_watches: Option<u64>,
}

impl Watches {
    pub fn new(max_watches: Option<u64>) -> io::Result<Watches> {
        Ok(Watches {
            inotify: Inotify::new()?,
            by_wd: HashMap::new(),
            by_path: BTreeMap::new(),
            max_watches,
        })
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.inotify.as_raw_fd()
    }

    pub fn len(&self) -> usize {
        self.by_wd.len()
    }

    pub fn read_into(&mut self, out: &mut VecDeque<RawEvent>) -> io::Result<usize> {
        self.inotify.read_into(out)
    }

    pub fn get(&self, wd: i32) -> Option<&Watched> {
        self.by_wd.get(&wd)
    }

    pub fn tree_role(&self, path: &Path) -> Option<TreeRole> {
        self.by_path
            .get(path)
            .and_then(|wd| self.by_wd.get(wd))
            .and_then(|w| w.tree)
    }

    /// Watches `path` as part of monitored directory `role.root`.
    ///
    /// Calls the kernel even when the path is already in the table, so a directory that was
    /// replaced behind the table's back (after a queue overflow) gets a fresh watch.
    pub fn add_tree(&mut self, path: &Path, role: TreeRole, follow: bool) -> AddOutcome {
        let mask = if follow {
            TREE_MASK
        } else {
            TREE_MASK | inotify::IN_DONT_FOLLOW
        };
        let wd = match self.add(path, mask) {
            Ok(wd) => wd,
            Err(outcome) => return outcome,
        };
        let entry = self.by_wd.get_mut(&wd).expect("add() registers the wd");
        if entry.path != path {
            return AddOutcome::Duplicate;
        }
        if entry.tree == Some(role) {
            return AddOutcome::AlreadyWatched;
        }
        entry.tree = Some(role);
        AddOutcome::Added
    }

    /// Watches `path` as the anchor of monitored directory `root`.
    pub fn add_anchor(&mut self, path: &Path, root: usize) -> AddOutcome {
        let wd = match self.add(path, ANCHOR_MASK) {
            Ok(wd) => wd,
            Err(outcome) => return outcome,
        };
        let entry = self.by_wd.get_mut(&wd).expect("add() registers the wd");
        if entry.anchors.contains(&root) {
            return AddOutcome::AlreadyWatched;
        }
        entry.anchors.push(root);
        AddOutcome::Added
    }

    fn add(&mut self, path: &Path, mask: u32) -> Result<i32, AddOutcome> {
        let known = self.by_path.contains_key(path);
        if !known
            && self
                .max_watches
                .is_some_and(|max| self.by_wd.len() as u64 >= max)
        {
            return Err(AddOutcome::LimitReached);
        }
        let wd = match self.inotify.add_watch(path, mask) {
            Ok(wd) => wd,
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(libc::ENOSPC) => AddOutcome::LimitReached,
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) => AddOutcome::Gone,
                    _ => AddOutcome::Failed(e),
                });
            }
        };
        if let Some(old) = self.by_path.get(path).copied() {
            if old != wd {
                // The path now names another directory; the old watch is stale.
                self.drop_wd(old);
            }
        }
        let entry = self.by_wd.entry(wd).or_insert_with(|| Watched {
            path: path.to_path_buf(),
            tree: None,
            anchors: Vec::new(),
        });
        if entry.path != path && !same_dir(&entry.path, path) {
            // The directory was moved while its watch stayed: follow it to its new path.
            let old = std::mem::replace(&mut entry.path, path.to_path_buf());
            if self.by_path.get(&old) == Some(&wd) {
                self.by_path.remove(&old);
            }
        }
        if self.by_wd[&wd].path == path {
            self.by_path.insert(path.to_path_buf(), wd);
        }
        Ok(wd)
    }

    /// Drops the tree role of `dir` and every watched directory below it; watches left with
    /// no role are removed from the kernel.
    pub fn remove_tree_under(&mut self, dir: &Path) {
        let wds: Vec<i32> = self
            .by_path
            .range(dir.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(dir))
            .map(|(_, wd)| *wd)
            .collect();
        for wd in wds {
            if let Some(entry) = self.by_wd.get_mut(&wd) {
                entry.tree = None;
                if entry.anchors.is_empty() {
                    let _ = self.inotify.rm_watch(wd);
                    self.drop_wd(wd);
                }
            }
        }
    }

    /// Drops the anchor role for monitored directory `root` wherever it is.
    pub fn remove_anchor(&mut self, root: usize) {
        let wds: Vec<i32> = self
            .by_wd
            .iter()
            .filter(|(_, w)| w.anchors.contains(&root))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in wds {
            let Some(entry) = self.by_wd.get_mut(&wd) else {
                continue;
            };
            entry.anchors.retain(|r| *r != root);
            if entry.anchors.is_empty() && entry.tree.is_none() {
                let _ = self.inotify.rm_watch(wd);
                self.drop_wd(wd);
            }
        }
    }

    /// Forgets a watch the kernel removed (`IN_IGNORED`).
    pub fn forget(&mut self, wd: i32) {
        self.drop_wd(wd);
    }

    fn drop_wd(&mut self, wd: i32) {
        if let Some(entry) = self.by_wd.remove(&wd) {
            if self.by_path.get(&entry.path) == Some(&wd) {
                self.by_path.remove(&entry.path);
            }
        }
    }
}

/// True when both paths currently name the same directory (same device and inode).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (crate::sys::fs::stat(a), crate::sys::fs::stat(b)) {
        (Ok(x), Ok(y)) => x.dev == y.dev && x.inode == y.inode,
        _ => false,
    }
}
