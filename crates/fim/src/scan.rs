//! Full scans on their own threads: one walker lists directories, a pool of hashing threads
//! (one per CPU) probes files. Results go back to the agent thread as messages.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::baseline::{key, Baseline};
use crate::event::ScanKind;
use crate::probe::{probe, Probe, ProbeOptions};
use crate::scope::{Scope, Visit};
use crate::sys::{self, poll::Waker};

/// Files queued between the walker and the hashing threads.
const WORK_QUEUE: usize = 4096;

/// Results queued for the agent thread; a full queue makes the scan wait for it.
pub(crate) const RESULT_QUEUE: usize = 4096;

/// How often a scan blocked on a full result queue checks whether it was cancelled.
const SEND_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// A directory to scan, with the monitored directory it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct ScanTarget {
    pub root: usize,
    pub dir: PathBuf,
    pub depth: u32,
}

/// Progress of a scan, sent to the agent thread.
#[derive(Debug)]
pub(crate) enum ScanMsg {
    /// A directory the scan entered; realtime roots make sure it is watched.
    Dir {
        root: usize,
        path: PathBuf,
        depth: u32,
    },
    /// A directory that could not be listed; its baseline entries are kept.
    DirFailed {
        path: PathBuf,
        error: io::Error,
    },
    /// A file whose metadata changed since the baseline, or that is not in it.
    File {
        root: usize,
        path: PathBuf,
        probe: Probe,
    },
    /// A file that could not be read; its baseline entry is kept.
    FileFailed {
        path: PathBuf,
        error: io::Error,
    },
    Done {
        gen: u32,
        totals: ScanTotals,
    },
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScanTotals {
    pub files: u64,
    pub hashed: u64,
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    hashed: AtomicU64,
    bytes: AtomicU64,
}

/// A running scan.
pub(crate) struct ScanJob {
    pub gen: u32,
    pub kind: ScanKind,
    pub roots: Vec<usize>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScanJob {
    /// Starts scanning `targets`. Unchanged files (same stat as in `baseline`) are marked
    /// seen in place; everything else comes back through `tx`.
    pub fn start(
        gen: u32,
        kind: ScanKind,
        targets: Vec<ScanTarget>,
        scope: Arc<Scope>,
        baseline: Baseline,
        tx: Sender<ScanMsg>,
        waker: Waker,
    ) -> ScanJob {
        let roots = targets.iter().map(|t| t.root).collect();
        let cancel = Arc::new(AtomicBool::new(false));
        let cancel_in_thread = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("fim-scan".into())
            .spawn(move || {
                let ctx = ScanContext {
                    gen,
                    scope,
                    baseline,
                    tx,
                    cancel: cancel_in_thread,
                };
                let totals = ctx.run(targets);
                ctx.send(ScanMsg::Done { gen, totals });
                waker.wake();
            })
            .expect("spawning a thread only fails when the process is out of resources");
        ScanJob {
            gen,
            kind,
            roots,
            cancel,
            thread: Some(thread),
        }
    }

    /// Stops the scan early and waits for its threads.
    pub fn cancel(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ScanJob {
    fn drop(&mut self) {
        self.cancel();
    }
}

struct ScanContext {
    gen: u32,
    scope: Arc<Scope>,
    baseline: Baseline,
    tx: Sender<ScanMsg>,
    cancel: Arc<AtomicBool>,
}

impl ScanContext {
    fn run(&self, targets: Vec<ScanTarget>) -> ScanTotals {
        let counters = Counters::default();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (work_tx, work_rx) = crossbeam_channel::bounded::<(usize, PathBuf)>(WORK_QUEUE);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let work_rx = work_rx.clone();
                let counters = &counters;
                s.spawn(move || self.hash_files(work_rx, counters));
            }
            drop(work_rx);
            for target in targets {
                self.walk(target, &work_tx);
            }
            drop(work_tx);
        });
        ScanTotals {
            files: counters.files.load(Ordering::Relaxed),
            hashed: counters.hashed.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Sends a result, waiting while the queue is full unless the scan is cancelled.
    fn send(&self, mut msg: ScanMsg) {
        loop {
            match self.tx.send_timeout(msg, SEND_RETRY) {
                Ok(()) => return,
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) if !self.cancelled() => {
                    msg = back
                }
                Err(_) => return,
            }
        }
    }

    /// Lists directories depth-first and queues their files for the hashing threads.
    fn walk(&self, target: ScanTarget, work: &Sender<(usize, PathBuf)>) {
        let root = target.root;
        let Ok(top) = sys::fs::stat(&target.dir) else {
            return;
        };
        if let Some(fs_type) = self.scope.skipped_fs(&target.dir, top.dev) {
            tracing::info!(path = %target.dir.display(), fs_type, "monitored directory is on a skipped file system");
            return;
        }
        let mut visited = HashSet::new();
        visited.insert((top.dev, top.inode));
        let mut stack = vec![(target.dir, target.depth, top.dev)];
        while let Some((dir, depth, dev)) = stack.pop() {
            if self.cancelled() {
                return;
            }
            self.send(ScanMsg::Dir {
                root,
                path: dir.clone(),
                depth,
            });
            let entries = match sys::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => {
                    self.send(ScanMsg::DirFailed { path: dir, error });
                    continue;
                }
            };
            for entry in entries {
                match self.scope.classify(root, &entry, dev, depth, &mut visited) {
                    Visit::File => {
                        if work.send((root, entry.path)).is_err() {
                            return;
                        }
                    }
                    Visit::Dir(d) => {
                        let child_dev = sys::fs::stat(&entry.path).map(|s| s.dev).unwrap_or(dev);
                        stack.push((entry.path, d, child_dev));
                    }
                    Visit::Skip => {}
                }
            }
        }
    }

    /// Body of one hashing thread.
    fn hash_files(&self, work: Receiver<(usize, PathBuf)>, counters: &Counters) {
        let mut buf = Vec::new();
        for (root, path) in work {
            if self.cancelled() {
                continue;
            }
            counters.files.fetch_add(1, Ordering::Relaxed);
            let dir = self.scope.dir(root);
            if self.unchanged(&path, dir.follow_symlinks) {
                continue;
            }
            let opts = ProbeOptions {
                algorithms: dir.check.algorithms(),
                max_file_bytes: self.scope.config.max_file_bytes,
                follow_symlinks: dir.follow_symlinks,
            };
            let msg = match probe(&path, &opts, &mut buf) {
                Ok(probe) => {
                    if let Probe::File(state) = &probe {
                        if state.hash_skipped.is_none() && !opts.algorithms.is_empty() {
                            counters.hashed.fetch_add(1, Ordering::Relaxed);
                            counters.bytes.fetch_add(state.size, Ordering::Relaxed);
                        }
                    }
                    ScanMsg::File { root, path, probe }
                }
                Err(error) => ScanMsg::FileFailed { path, error },
            };
            self.send(msg);
        }
    }

    /// Marks the baseline entry seen and returns true when `stat` shows no change.
    fn unchanged(&self, path: &std::path::Path, follow: bool) -> bool {
        let stat = if follow {
            sys::fs::stat(path)
        } else {
            sys::fs::lstat(path)
        };
        let Ok(stat) = stat else { return false };
        let map = self.baseline.read();
        match map.get(key(path)) {
            Some(entry) if entry.state.matches_stat(&stat) => {
                entry.mark_seen(self.gen);
                true
            }
            _ => false,
        }
    }
}
