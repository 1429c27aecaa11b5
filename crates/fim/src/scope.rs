//! Monitoring scope: monitored directories, ignore rules, recursion depth, symlinks and file
//! system types.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, DirectoryConfig};
use crate::sys::fs::{self, DirEntry, Kind};
use crate::sys::mounts::MountTable;

/// Decision of a walk about one directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    Skip,
    /// Descend; the value is the directory's depth below its monitored directory.
    Dir(u32),
    File,
}

/// The configuration plus the mount table, used to decide whether a path is monitored.
pub(crate) struct Scope {
    pub config: Arc<Config>,
    mounts: MountTable,
    roots_by_path: HashMap<PathBuf, usize>,
}

impl Scope {
    pub fn new(config: Arc<Config>, mounts: MountTable) -> Scope {
        let roots_by_path = config
            .directories
            .iter()
            .enumerate()
            .map(|(i, d)| (d.path.clone(), i))
            .collect();
        Scope {
            config,
            mounts,
            roots_by_path,
        }
    }

    pub fn dir(&self, root: usize) -> &DirectoryConfig {
        &self.config.directories[root]
    }

    /// Returns the monitored directory whose path is exactly `path`.
    pub fn root_at(&self, path: &Path) -> Option<usize> {
        self.roots_by_path.get(path).copied()
    }

    /// Returns the innermost monitored directory strictly above `path`.
    pub fn owner_root(&self, path: &Path) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, d) in self.config.directories.iter().enumerate() {
            if path != d.path && path.starts_with(&d.path) {
                let deeper = best.is_none_or(|b| {
                    d.path.as_os_str().len() > self.config.directories[b].path.as_os_str().len()
                });
                if deeper {
                    best = Some(i);
                }
            }
        }
        best
    }

    /// True when `path` below monitored directory `root` is ignored, is one of the agent's
    /// own files, or is another monitored directory (which is walked on its own).
    pub fn is_excluded(&self, root: usize, path: &Path) -> bool {
        let dir = self.dir(root);
        if dir.ignore.is_ignored(&dir.path, path) {
            return true;
        }
        if self.config.own_paths.iter().any(|p| path.starts_with(p)) {
            return true;
        }
        self.root_at(path).is_some_and(|r| r != root)
    }

    /// Returns the file system type of `path` when the configuration skips that type.
    pub fn skipped_fs(&self, path: &Path, dev: u64) -> Option<&str> {
        let fs_type = self.mounts.fs_type(path, dev)?;
        self.config
            .skipped_fs_types
            .iter()
            .any(|t| t == fs_type)
            .then_some(fs_type)
    }

    /// Decides whether a walk descends into, hashes or skips `entry`, found in a directory
    /// at `depth` on device `parent_dev`. `visited` contains (device, inode) of directories
    /// already walked, to stop symlink loops.
    pub fn classify(
        &self,
        root: usize,
        entry: &DirEntry,
        parent_dev: u64,
        depth: u32,
        visited: &mut HashSet<(u64, u64)>,
    ) -> Visit {
        if self.is_excluded(root, &entry.path) {
            return Visit::Skip;
        }
        let dir = self.dir(root);
        let kind = match entry.kind {
            Kind::Symlink if dir.follow_symlinks => match fs::stat(&entry.path) {
                Ok(st) => st.kind,
                Err(_) => return Visit::Skip,
            },
            other => other,
        };
        match kind {
            Kind::File => Visit::File,
            Kind::Dir if depth < dir.recursion_depth => {
                let stat = if dir.follow_symlinks {
                    fs::stat(&entry.path)
                } else {
                    fs::lstat(&entry.path)
                };
                let Ok(stat) = stat else { return Visit::Skip };
                if stat.dev != parent_dev {
                    if let Some(fs_type) = self.skipped_fs(&entry.path, stat.dev) {
                        tracing::debug!(path = %entry.path.display(), fs_type, "skipping file system");
                        return Visit::Skip;
                    }
                }
                if dir.follow_symlinks && !visited.insert((stat.dev, stat.inode)) {
                    return Visit::Skip;
                }
                Visit::Dir(depth + 1)
            }
            _ => Visit::Skip,
        }
    }
}
