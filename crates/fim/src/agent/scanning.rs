//! Full scans from the agent thread's side: starting them, applying their results, and
//! reporting files that were not seen as deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{ActiveScan, Agent, AgentError};
use crate::baseline::{key, Entry};
use crate::db::{self, DbOp};
use crate::event::{EventBody, Mode, Notice, NoticeKind, ScanKind, ScanSummary};
use crate::probe::Probe;
use crate::scan::{ScanJob, ScanMsg, ScanTarget, ScanTotals};
use crate::watches::TreeRole;

/// Time between the end of a scan and returning freed memory, so that the database writer
/// has released the scan's queued writes by then.
const MEMORY_RELEASE_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

impl Agent {
    /// Starts a scan of monitored directories `roots` on the scan threads.
    pub(super) fn start_scan(
        &mut self,
        kind: ScanKind,
        roots: Vec<usize>,
    ) -> Result<(), AgentError> {
        self.last_gen += 1;
        let gen = self.last_gen;
        let targets = roots
            .iter()
            .map(|&root| ScanTarget {
                root,
                dir: self.scope.dir(root).path.clone(),
                depth: 0,
            })
            .collect();
        if kind == ScanKind::Baseline {
            self.silent_phase = true;
        }
        let message = format!("{} scan started", kind.as_str());
        let notice = Notice {
            notice: NoticeKind::ScanStarted,
            path: None,
            message,
            scan: None,
        };
        self.emitter.emit(EventBody::Notice(notice), &self.db)?;
        tracing::info!(kind = kind.as_str(), gen, "scan started");
        let job = ScanJob::start(
            gen,
            kind,
            targets,
            Arc::clone(&self.scope),
            self.baseline.clone(),
            self.scan_tx.clone(),
            self.waker.clone(),
        );
        self.scan = Some(ActiveScan {
            job,
            started: Instant::now(),
            touched: Default::default(),
            touched_dirs: Vec::new(),
            failed_dirs: Vec::new(),
            events: 0,
        });
        Ok(())
    }

    pub(super) fn apply_scan_msgs(&mut self, max: usize) -> Result<(), AgentError> {
        for _ in 0..max {
            let Ok(msg) = self.scan_rx.try_recv() else {
                break;
            };
            self.on_scan_msg(msg)?;
        }
        Ok(())
    }

    /// Applies one scan result; returns the summary when the scan finished.
    pub(super) fn on_scan_msg(&mut self, msg: ScanMsg) -> Result<Option<ScanSummary>, AgentError> {
        let Some((gen, kind)) = self.scan.as_ref().map(|s| (s.job.gen, s.job.kind)) else {
            return Ok(None);
        };
        match msg {
            ScanMsg::Dir { root, path, depth } => {
                if self.scope.dir(root).realtime && !self.stopping && !self.is_unwatched(&path) {
                    self.watch_dir(root, &path, depth)?;
                }
            }
            ScanMsg::DirFailed { path, error } => {
                tracing::warn!(path = %path.display(), %error, "failed to list directory; keeping its baseline entries");
                if let Some(scan) = &mut self.scan {
                    scan.failed_dirs.push(path);
                }
            }
            ScanMsg::FileFailed { path, error } => {
                if self.failed_reads.allow() {
                    tracing::warn!(path = %path.display(), %error, "failed to read file; keeping its baseline entry");
                }
                self.mark_seen(&path, gen);
            }
            ScanMsg::File { root, path, probe } => {
                if !self.touched_in_scan(&path) {
                    self.apply_probe(root, &path, probe, kind, gen)?;
                }
            }
            ScanMsg::Done {
                gen: done_gen,
                totals,
            } if done_gen == gen => {
                return self.finish_scan(totals).map(Some);
            }
            ScanMsg::Done { .. } => {}
        }
        Ok(None)
    }

    fn apply_probe(
        &mut self,
        root: usize,
        path: &Path,
        probe: Probe,
        kind: ScanKind,
        gen: u32,
    ) -> Result<(), AgentError> {
        match probe {
            Probe::File(state) if kind == ScanKind::Baseline => {
                let k = key(path);
                self.baseline
                    .write()
                    .insert(k.into(), Entry::new(state.clone(), gen, true));
                self.db.send(DbOp::Upsert(k.into(), Box::new(state)));
            }
            Probe::File(state) => self.record(root, path, Some(state), Mode::Scheduled)?,
            // Kept as it was; the next scan or close event retries.
            Probe::Unstable(_) => self.mark_seen(path, gen),
            // Not seen, so reported as deleted at the end if it was in the baseline.
            Probe::Missing | Probe::NotRegular => {}
        }
        Ok(())
    }

    fn mark_seen(&self, path: &Path, gen: u32) {
        if let Some(entry) = self.baseline.read().get(key(path)) {
            entry.mark_seen(gen);
        }
    }

    fn touched_in_scan(&self, path: &Path) -> bool {
        let Some(scan) = &self.scan else { return false };
        scan.touched.contains(path) || scan.touched_dirs.iter().any(|d| path.starts_with(d))
    }

    /// Reports unseen files as deleted, closes a silent baseline, and emits the summary.
    fn finish_scan(&mut self, totals: ScanTotals) -> Result<ScanSummary, AgentError> {
        self.sweep_unseen()?;
        let Some(scan) = self.scan.take() else {
            unreachable!("finish_scan runs with a scan")
        };
        let kind = scan.job.kind;
        if kind == ScanKind::Baseline {
            self.db
                .send(DbOp::Meta(db::META_BASELINE_COMPLETE, "1".into()));
            self.baseline_complete = true;
            self.end_silent_phase()?;
        }

        let summary = ScanSummary {
            kind,
            files: totals.files,
            hashed: totals.hashed,
            bytes: totals.bytes,
            events: scan.events,
            duration_ms: scan.started.elapsed().as_millis() as u64,
        };
        self.report_finished(&summary)?;

        self.next_scheduled = Instant::now() + self.scope.config.scan_interval;
        self.baseline.compact();
        self.release_due = Some(Instant::now() + MEMORY_RELEASE_DELAY);
        if self.rescan_pending && !self.stopping {
            self.rescan_pending = false;
            self.start_scan(ScanKind::Rescan, self.realtime_roots())?;
        }
        Ok(summary)
    }

    /// Reports baseline files the scan did not see as deleted; a silent baseline drops them
    /// without events.
    fn sweep_unseen(&mut self) -> Result<(), AgentError> {
        let silent = self
            .scan
            .as_ref()
            .is_some_and(|s| s.job.kind == ScanKind::Baseline);
        for (path, root) in self.unseen_files() {
            if silent {
                self.forget(&path);
            } else {
                self.record(root, &path, None, Mode::Scheduled)?;
            }
        }
        Ok(())
    }

    fn report_finished(&mut self, summary: &ScanSummary) -> Result<(), AgentError> {
        let kind = summary.kind.as_str();
        tracing::info!(
            kind,
            files = summary.files,
            hashed = summary.hashed,
            events = summary.events,
            duration_ms = summary.duration_ms,
            "scan finished"
        );
        let notice = Notice {
            notice: NoticeKind::ScanFinished,
            path: None,
            message: format!("{kind} scan finished"),
            scan: Some(summary.clone()),
        };
        self.emitter.emit(EventBody::Notice(notice), &self.db)?;
        Ok(())
    }

    /// Baseline files under the scanned directories that the scan did not see, with their
    /// monitored directory, leaving out what realtime events or listing failures explain.
    fn unseen_files(&self) -> Vec<(PathBuf, usize)> {
        let Some(scan) = &self.scan else {
            return Vec::new();
        };
        let gen = scan.job.gen;
        let mut out = Vec::new();
        for &root in &scan.job.roots {
            for path in self.paths_under(&self.scope.dir(root).path) {
                if self.scope.owner_root(&path) != Some(root) || self.touched_in_scan(&path) {
                    continue;
                }
                if scan.failed_dirs.iter().any(|d| path.starts_with(d)) {
                    continue;
                }
                let seen = self
                    .baseline
                    .read()
                    .get(key(&path))
                    .is_some_and(|e| e.seen_in(gen));
                if !seen {
                    out.push((path, root));
                }
            }
        }
        out
    }

    /// Handles every event queued while the silent baseline ran, then treats the silently
    /// recorded files as reported.
    ///
    /// NOTE: after a queue overflow during the silent baseline, a file created meanwhile
    /// whose events were dropped and that the baseline recorded is not reported as added.
    fn end_silent_phase(&mut self) -> Result<(), AgentError> {
        self.read_events()?;
        self.process_queue(usize::MAX)?;
        self.silent_phase = false;
        for entry in self.baseline.write().values_mut() {
            entry.silent = false;
        }
        Ok(())
    }

    pub(super) fn realtime_roots(&self) -> Vec<usize> {
        (0..self.scope.config.directories.len())
            .filter(|&r| self.scope.dir(r).realtime)
            .collect()
    }

    /// Watches `path` (part of monitored directory `root`); reports the watch limit once
    /// per subtree. Returns false when the directory is not watched.
    pub(super) fn watch_dir(
        &mut self,
        root: usize,
        path: &Path,
        depth: u32,
    ) -> Result<bool, AgentError> {
        use crate::watches::AddOutcome;
        // The monitored directory itself may be a symlink; the configuration names it.
        let follow = self.scope.dir(root).follow_symlinks || depth == 0;
        match self
            .watches
            .add_tree(path, TreeRole { root, depth }, follow)
        {
            AddOutcome::Added | AddOutcome::AlreadyWatched => Ok(true),
            AddOutcome::Duplicate | AddOutcome::Gone => Ok(false),
            AddOutcome::LimitReached => {
                self.report_watch_limit(path)?;
                Ok(false)
            }
            AddOutcome::Failed(error) => {
                tracing::warn!(path = %path.display(), %error, "failed to watch directory; it falls back to scheduled scans");
                Ok(false)
            }
        }
    }

    pub(super) fn is_unwatched(&self, path: &Path) -> bool {
        self.unwatched_subtrees.iter().any(|d| path.starts_with(d))
    }

    fn report_watch_limit(&mut self, path: &Path) -> Result<(), AgentError> {
        if self.is_unwatched(path) {
            return Ok(());
        }
        self.unwatched_subtrees.push(path.to_path_buf());
        let limit = match self.scope.config.max_watches {
            Some(max) => format!("max_watches = {max} in the agent configuration"),
            None => match crate::sys::host::max_user_watches() {
                Some(n) => format!("fs.inotify.max_user_watches = {n}"),
                None => "fs.inotify.max_user_watches".to_string(),
            },
        };
        let message = format!(
            "inotify watch limit reached ({limit}, {} watches in use); `{}` falls back to scheduled scans; raise the limit to watch it in real time",
            self.watches.len(),
            path.display()
        );
        tracing::warn!(path = %path.display(), watches = self.watches.len(), "{message}");
        self.notice(NoticeKind::WatchLimit, Some(path), message)
    }
}
