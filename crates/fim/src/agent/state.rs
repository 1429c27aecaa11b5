//! Recording changes: compare a file's new state with the baseline, update it, emit events.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Agent, AgentError};
use crate::baseline::{key, Entry};
use crate::db::DbOp;
use crate::event::{Event, EventBody, FileEvent, FileEventKind, Mode};
use crate::probe::{probe, Probe, ProbeOptions};
use crate::quarantine::{self, QuarantineError};
use crate::scope::Scope;
use crate::state::FileState;

/// Returns the monitored directory that covers `path`, unless an ignore rule, the depth limit
/// or a nested monitored directory takes it out of scope.
pub(super) fn in_scope(scope: &Scope, path: &Path) -> Option<usize> {
    let root = scope.owner_root(path)?;
    let dir = scope.dir(root);
    let relative = path.strip_prefix(&dir.path).ok()?;
    let levels = relative.components().count().saturating_sub(1);
    if levels > dir.recursion_depth as usize {
        return None;
    }
    let mut current = dir.path.clone();
    for part in relative.components() {
        current.push(part);
        if scope.is_excluded(root, &current) {
            return None;
        }
    }
    Some(root)
}

/// Lets through the first few repeats of a log line per minute and counts the rest.
#[derive(Default)]
pub(super) struct LogLimiter {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    const PER_MINUTE: u32 = 10;

    /// True when this occurrence should be logged; reports suppressed counts on rollover.
    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        let expired = self
            .window_start
            .is_none_or(|s| now.duration_since(s) > Duration::from_secs(60));
        if expired {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "more file read failures were not logged"
                );
            }
            self.window_start = Some(now);
            self.logged = 0;
            self.suppressed = 0;
        }
        if self.logged < Self::PER_MINUTE {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

impl Agent {
    /// Probes `path` now and records the result.
    ///
    /// NOTE: realtime hashing runs on the agent thread, so a large file delays the events
    /// queued behind it. The kernel keeps them, and an overflow leads to a rescan.
    pub(super) fn check_file(
        &mut self,
        root: usize,
        path: &Path,
        mode: Mode,
    ) -> Result<(), AgentError> {
        self.check_file_unless(root, path, mode, None)
    }

    /// Probes `path`: `Some(Some(state))` for a regular file, `Some(None)` when it is gone
    /// or not a regular file, `None` when nothing should be recorded now.
    pub(super) fn probe_file(
        &mut self,
        root: usize,
        path: &Path,
    ) -> Result<Option<Option<FileState>>, AgentError> {
        let dir = self.scope.dir(root);
        let opts = ProbeOptions {
            algorithms: dir.check.algorithms(),
            max_file_bytes: self.scope.config.max_file_bytes,
            follow_symlinks: dir.follow_symlinks,
        };
        match probe(path, &opts, &mut self.probe_buf) {
            Ok(Probe::File(state)) => Ok(Some(Some(state))),
            Ok(Probe::Missing) | Ok(Probe::NotRegular) => Ok(Some(None)),
            Ok(Probe::Unstable(_)) => {
                // A writer is still at it; its close brings another event.
                tracing::debug!(path = %path.display(), "file changed during every read; waiting for the next close");
                Ok(None)
            }
            Err(error) => {
                if self.failed_reads.allow() {
                    tracing::warn!(path = %path.display(), %error, "failed to read file; keeping its baseline entry");
                }
                Ok(None)
            }
        }
    }

    /// Compares `new` with the baseline entry of `path`, updates the baseline and emits the
    /// event, if any checked attribute changed. `None` means the file is gone.
    pub(super) fn record(
        &mut self,
        root: usize,
        path: &Path,
        new: Option<FileState>,
        mode: Mode,
    ) -> Result<(), AgentError> {
        let gen = self.scan.as_ref().map_or(0, |s| s.job.gen);
        if mode == Mode::Realtime {
            if let Some(scan) = &mut self.scan {
                scan.touched.insert(path.to_path_buf());
            }
        }
        let k = key(path);
        let prior = {
            let map = self.baseline.read();
            let entry = map.get(k);
            let hidden = |e: &&Entry| self.silent_phase && e.silent && mode == Mode::Realtime;
            match entry {
                Some(e) if hidden(&e) => None,
                Some(e) if new.as_ref() == Some(&e.state) => {
                    e.mark_seen(gen);
                    return Ok(());
                }
                Some(e) => Some(e.state.clone()),
                None => None,
            }
        };
        let check = self.scope.dir(root).check;
        let name = path.to_string_lossy().into_owned();
        let event = FileEvent::from_change(
            name,
            mode,
            prior.as_ref(),
            new.as_ref(),
            &check,
            &mut self.names,
        );
        match new {
            Some(state) => {
                self.baseline
                    .write()
                    .insert(k.into(), Entry::new(state.clone(), gen, false));
                self.db.send(DbOp::Upsert(k.into(), Box::new(state)));
            }
            None => {
                if self.baseline.write().remove(k).is_some() {
                    self.db.send(DbOp::Remove(k.into()));
                }
            }
        }
        if let Some(event) = event {
            if let Some(scan) = &mut self.scan {
                scan.events += 1;
            }
            self.emitter.emit(EventBody::File(event), &self.db)?;
        }
        Ok(())
    }

    /// Quarantines a monitored file, drops it from the baseline without a `deleted` event,
    /// records it in the database, and emits the `quarantined` event.
    pub(super) fn quarantine(&mut self, path: &Path) -> Result<Event, QuarantineError> {
        let (record, state, monitored) = quarantine::quarantine_file(path, &self.scope.config)?;
        tracing::info!(path = %record.original_path.display(), to = %record.quarantine_path.display(), "file quarantined");
        let root = self.scope.owner_root(&monitored).unwrap_or(0);
        self.forget(&monitored);
        self.db.send(DbOp::Quarantine(Box::new(record.clone())));

        let check = self.scope.dir(root).check;
        let name = monitored.to_string_lossy().into_owned();
        let mut event = FileEvent::from_change(
            name,
            Mode::ActiveResponse,
            Some(&state),
            None,
            &check,
            &mut self.names,
        )
        .unwrap_or_default();
        event.event = FileEventKind::Quarantined;
        event.mode = Mode::ActiveResponse;
        event.quarantine_path = Some(record.quarantine_path.to_string_lossy().into_owned());
        self.emitter
            .emit(EventBody::File(event), &self.db)
            .map_err(|error| {
                tracing::error!(%error, "failed to deliver the quarantine event; stopping");
                self.stopping = true;
                QuarantineError::AgentStopped
            })
    }

    /// Removes `path` from the baseline and pending state without an event.
    pub(super) fn forget(&mut self, path: &Path) {
        self.open_writes.remove(path);
        if let Some(scan) = &mut self.scan {
            scan.touched.insert(path.to_path_buf());
        }
        if self.baseline.write().remove(key(path)).is_some() {
            self.db.send(DbOp::Remove(key(path).into()));
        }
    }

    /// Returns every baseline path below `dir`.
    pub(super) fn paths_under(&self, dir: &Path) -> Vec<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        let map = self.baseline.read();
        crate::baseline::keys_under(&map, dir)
            .iter()
            .map(|k| PathBuf::from(std::ffi::OsStr::from_bytes(k)))
            .collect()
    }
}
