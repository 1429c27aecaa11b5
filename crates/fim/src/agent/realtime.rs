//! Realtime monitoring: turning inotify events into file checks, following directories as
//! they are created, deleted and moved, and recovering from queue overflows.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Agent, AgentError};
use crate::event::{Mode, NoticeKind, ScanKind};
use crate::scope::Visit;
use crate::sys::fs::{self, Kind};
use crate::sys::inotify::{
    RawEvent, IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_IGNORED,
    IN_ISDIR, IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_UNMOUNT,
};
use crate::watches::{AddOutcome, TreeRole};

impl Agent {
    /// Moves every event the kernel has queued into `self.queue`.
    pub(super) fn read_events(&mut self) -> Result<usize, AgentError> {
        let before = self.queue.len();
        let n = self
            .watches
            .read_into(&mut self.queue)
            .map_err(AgentError::Read)?;
        for event in self.queue.iter().skip(before) {
            if let Some(key) = close_key(event) {
                *self.queued_closes.entry(key).or_insert(0) += 1;
            }
        }
        Ok(n)
    }

    pub(super) fn process_queue(&mut self, max: usize) -> Result<(), AgentError> {
        let mut handled = 0;
        while handled < max {
            let Some(event) = self.queue.pop_front() else {
                break;
            };
            if let Some(key) = close_key(&event) {
                if let Some(count) = self.queued_closes.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        self.queued_closes.remove(&key);
                    }
                }
            }
            self.handle_event(event)?;
            handled += 1;
        }
        Ok(())
    }

    /// True when a later close or move-in of the same entry is already queued, so this one
    /// can be left to it: a file closed several times is hashed once, and a read that raced
    /// a writer is not reported.
    fn superseded(&mut self, key: &(i32, OsString)) -> Result<bool, AgentError> {
        if self.queued_closes.contains_key(key) {
            return Ok(true);
        }
        self.read_events()?;
        Ok(self.queued_closes.contains_key(key))
    }

    fn handle_event(&mut self, event: RawEvent) -> Result<(), AgentError> {
        if event.has(IN_Q_OVERFLOW) {
            return self.on_overflow();
        }
        if event.has(IN_IGNORED) {
            self.watches.forget(event.wd);
            return Ok(());
        }
        let Some(watched) = self.watches.get(event.wd) else {
            return Ok(());
        };
        let dir = watched.path.clone();
        let tree = watched.tree;
        let anchors = watched.anchors.clone();
        match &event.name {
            None => {
                if event.has(IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT) {
                    if tree.is_some() {
                        self.on_dir_gone(&dir)?;
                    }
                    for root in anchors {
                        self.setup_root(root, true)?;
                    }
                }
            }
            Some(name) => {
                let path = dir.join(name);
                for root in anchors {
                    self.on_anchor_event(root, &path, &event)?;
                }
                if let Some(role) = tree {
                    self.on_tree_event(role, path, &event)?;
                }
            }
        }
        Ok(())
    }

    /// Handles an event on an entry of a watched directory of monitored directory `role.root`.
    fn on_tree_event(
        &mut self,
        role: TreeRole,
        path: PathBuf,
        event: &RawEvent,
    ) -> Result<(), AgentError> {
        let root = role.root;
        if self.scope.is_excluded(root, &path) {
            return Ok(());
        }
        if event.has(IN_ISDIR) {
            if event.has(IN_CREATE | IN_MOVED_TO) {
                if role.depth < self.scope.dir(root).recursion_depth {
                    self.on_new_dir(root, path, role.depth + 1)?;
                }
            } else if event.has(IN_DELETE | IN_MOVED_FROM) {
                self.on_dir_gone(&path)?;
            }
            return Ok(());
        }
        if event.has(IN_CREATE) {
            return self.on_create(role, path);
        }
        if let Some(key) = close_key(event) {
            self.open_writes.remove(&path);
            if self.queued_closes.contains_key(&key) {
                return Ok(());
            }
            self.check_file_unless(root, &path, Mode::Realtime, Some(&key))
        } else if event.has(IN_DELETE | IN_MOVED_FROM) {
            self.open_writes.remove(&path);
            self.record(root, &path, None, Mode::Realtime)
        } else if event.has(IN_ATTRIB) && !self.open_writes.contains(&path) {
            self.check_file(root, &path, Mode::Realtime)
        } else {
            Ok(())
        }
    }

    /// Handles a new entry that is not a directory. A regular file waits for its close, except
    /// a new hard link (already complete). A symlink to a directory is followed when allowed.
    fn on_create(&mut self, role: TreeRole, path: PathBuf) -> Result<(), AgentError> {
        let root = role.root;
        let Ok(stat) = fs::lstat(&path) else {
            return Ok(());
        };
        match stat.kind {
            Kind::File if stat.nlink > 1 => self.check_file(root, &path, Mode::Realtime),
            Kind::File => {
                self.open_writes.insert(path);
                Ok(())
            }
            Kind::Symlink if self.scope.dir(root).follow_symlinks => match fs::stat(&path) {
                Ok(target) if target.kind == Kind::Dir => {
                    if role.depth < self.scope.dir(root).recursion_depth {
                        self.on_new_dir(root, path, role.depth + 1)?;
                    }
                    Ok(())
                }
                Ok(target) if target.kind == Kind::File => {
                    self.check_file(root, &path, Mode::Realtime)
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Handles an event in the anchor directory of monitored directory `root`.
    fn on_anchor_event(
        &mut self,
        root: usize,
        path: &Path,
        event: &RawEvent,
    ) -> Result<(), AgentError> {
        let target = self.scope.dir(root).path.clone();
        if !target.starts_with(path) {
            return Ok(());
        }
        if event.has(IN_ISDIR) && event.has(IN_CREATE | IN_MOVED_TO) {
            self.setup_root(root, true)?;
        } else if event.has(IN_DELETE | IN_MOVED_FROM) {
            self.on_dir_gone(&target)?;
        }
        Ok(())
    }

    /// Handles a directory that appeared inside a monitored tree: watches it and everything
    /// below, then reports the files already in it. Files whose creation the new watches saw are left
    /// to their close events, so a file being written is reported once, complete.
    pub(super) fn on_new_dir(
        &mut self,
        root: usize,
        dir: PathBuf,
        depth: u32,
    ) -> Result<(), AgentError> {
        let files = self.watch_and_list(root, &dir, depth, true);
        self.mark_queued_creates()?;
        let found: HashSet<&PathBuf> = files.iter().collect();
        let stale: Vec<PathBuf> = self
            .paths_under(&dir)
            .into_iter()
            .filter(|p| !found.contains(p) && self.scope.owner_root(p) == Some(root))
            .collect();
        let follow = self.scope.dir(root).follow_symlinks;
        for file in &files {
            if self.open_writes.contains(file) {
                continue;
            }
            // Created before the watch but still being written: its close event will come.
            if crate::probe::has_writers(file, follow) == Some(true) {
                self.open_writes.insert(file.clone());
                continue;
            }
            self.check_file(root, file, Mode::Realtime)?;
        }
        for path in stale {
            self.record(root, &path, None, Mode::Realtime)?;
        }
        Ok(())
    }

    /// Adds watches (for realtime roots) on `dir` and below, and lists regular files when
    /// `collect_files` is set.
    fn watch_and_list(
        &mut self,
        root: usize,
        dir: &Path,
        depth: u32,
        collect_files: bool,
    ) -> Vec<PathBuf> {
        let realtime = self.scope.dir(root).realtime;
        let Ok(top) = fs::stat(dir) else {
            return Vec::new();
        };
        if top.kind != Kind::Dir || self.scope.skipped_fs(dir, top.dev).is_some() {
            return Vec::new();
        }
        let mut files = Vec::new();
        let mut visited = HashSet::from([(top.dev, top.inode)]);
        let mut stack = vec![(dir.to_path_buf(), depth, top.dev)];
        while let Some((current, level, dev)) = stack.pop() {
            if realtime && !self.is_unwatched(&current) {
                // Errors other than the limit are logged inside; the listing goes on.
                let _ = self.watch_dir(root, &current, level);
            }
            let Ok(entries) = fs::read_dir(&current) else {
                continue;
            };
            for entry in entries {
                match self.scope.classify(root, &entry, dev, level, &mut visited) {
                    Visit::File if collect_files => files.push(entry.path),
                    Visit::Dir(next) => {
                        let child_dev = fs::stat(&entry.path).map(|s| s.dev).unwrap_or(dev);
                        stack.push((entry.path, next, child_dev));
                    }
                    _ => {}
                }
            }
        }
        files
    }

    /// Reads newly queued events and marks files whose creation they report as being
    /// written, so a scan running now leaves them to their close events.
    fn mark_queued_creates(&mut self) -> Result<(), AgentError> {
        let before = self.queue.len();
        self.read_events()?;
        for event in self.queue.iter().skip(before) {
            if !event.has(IN_CREATE) || event.has(IN_ISDIR) {
                continue;
            }
            let (Some(watched), Some(name)) = (self.watches.get(event.wd), &event.name) else {
                continue;
            };
            if watched.tree.is_some() {
                self.open_writes.insert(watched.path.join(name));
            }
        }
        Ok(())
    }

    /// Handles a watched directory that was deleted or moved away: drops its watches, reports
    /// its files as deleted, and re-anchors monitored directories that were inside it.
    pub(super) fn on_dir_gone(&mut self, dir: &Path) -> Result<(), AgentError> {
        self.watches.remove_tree_under(dir);
        if let Some(scan) = &mut self.scan {
            scan.touched_dirs.push(dir.to_path_buf());
        }
        self.open_writes.retain(|p| !p.starts_with(dir));
        for path in self.paths_under(dir) {
            if let Some(root) = self.scope.owner_root(&path) {
                self.record(root, &path, None, Mode::Realtime)?;
            }
        }
        let inside: Vec<usize> = (0..self.scope.config.directories.len())
            .filter(|&r| self.scope.dir(r).path.starts_with(dir))
            .collect();
        for root in inside {
            self.setup_root(root, true)?;
        }
        Ok(())
    }

    /// Watches monitored directory `root` and its anchor, or only the anchor while it does
    /// not exist. With `scan`, files found in a directory that (re)appeared are reported.
    pub(super) fn setup_root(&mut self, root: usize, scan: bool) -> Result<(), AgentError> {
        let dir = self.scope.dir(root).path.clone();
        if !self.scope.dir(root).realtime {
            return Ok(());
        }
        let exists = fs::stat(&dir).is_ok_and(|s| s.kind == Kind::Dir);
        self.place_anchor(root, &dir, exists);
        if exists {
            self.root_missing[root] = false;
            if self.watches.tree_role(&dir).is_some() {
                return Ok(());
            }
            if scan {
                tracing::info!(path = %dir.display(), "monitored directory appeared");
                self.on_new_dir(root, dir, 0)?;
            } else {
                self.watch_and_list(root, &dir, 0, false);
            }
        } else if !self.root_missing[root] {
            self.root_missing[root] = true;
            let message = format!(
                "monitored directory `{}` does not exist; watching for it to appear",
                dir.display()
            );
            tracing::warn!(path = %dir.display(), "monitored directory does not exist; watching for it to appear");
            self.notice(NoticeKind::DirectoryMissing, Some(&dir), message)?;
        }
        Ok(())
    }

    /// Keeps an anchor watch on the parent of `dir` (or its nearest existing ancestor).
    fn place_anchor(&mut self, root: usize, dir: &Path, exists: bool) {
        let mut anchor = dir.parent();
        if !exists {
            while let Some(a) = anchor {
                if fs::stat(a).is_ok_and(|s| s.kind == Kind::Dir) {
                    break;
                }
                anchor = a.parent();
            }
        }
        let Some(anchor) = anchor else { return };
        if self.root_anchor[root].as_deref() == Some(anchor) {
            if let AddOutcome::Added | AddOutcome::AlreadyWatched =
                self.watches.add_anchor(anchor, root)
            {
                return;
            }
        }
        self.watches.remove_anchor(root);
        match self.watches.add_anchor(anchor, root) {
            AddOutcome::Added | AddOutcome::AlreadyWatched => {
                self.root_anchor[root] = Some(anchor.to_path_buf());
            }
            outcome => {
                tracing::warn!(path = %anchor.display(), ?outcome, "failed to watch the parent of a monitored directory; its re-creation is seen by scheduled scans only");
                self.root_anchor[root] = None;
            }
        }
    }

    /// Handles dropped kernel events: reports them and rescans every realtime directory.
    fn on_overflow(&mut self) -> Result<(), AgentError> {
        let limit = crate::sys::host::max_queued_events()
            .map(|n| format!(" (fs.inotify.max_queued_events = {n})"))
            .unwrap_or_default();
        let message = format!("inotify event queue overflowed{limit}; rescanning realtime directories so that no change is lost");
        tracing::warn!("{message}");
        self.notice(NoticeKind::QueueOverflow, None, message)?;
        self.open_writes.clear();
        if self.scan.is_some() {
            self.rescan_pending = true;
            Ok(())
        } else {
            self.start_scan(ScanKind::Rescan, self.realtime_roots())
        }
    }
}

/// (watch, name) of an event after which a file is re-read: `IN_CLOSE_WRITE` or
/// `IN_MOVED_TO` of a non-directory.
fn close_key(event: &RawEvent) -> Option<(i32, OsString)> {
    if event.has(IN_CLOSE_WRITE | IN_MOVED_TO) && !event.has(IN_ISDIR) {
        event.name.clone().map(|name| (event.wd, name))
    } else {
        None
    }
}

impl Agent {
    /// Like `check_file`, but drops the result when `key`'s entry was closed again while
    /// it was being read (see `superseded`).
    pub(super) fn check_file_unless(
        &mut self,
        root: usize,
        path: &Path,
        mode: Mode,
        key: Option<&(i32, OsString)>,
    ) -> Result<(), AgentError> {
        let Some(state) = self.probe_file(root, path)? else {
            return Ok(());
        };
        if let Some(key) = key {
            if self.superseded(key)? {
                return Ok(());
            }
        }
        self.record(root, path, state, mode)
    }
}
