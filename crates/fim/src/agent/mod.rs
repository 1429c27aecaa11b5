//! The agent: one thread that owns the baseline and the inotify watches, reads kernel
//! events and scan results, and emits file events to the sink.
//!
//! Realtime events are hashed on this thread as they arrive (no database commit on that
//! path: baseline writes go to the writer thread). Full scans run on their own threads and
//! send results back; paths that realtime events touched during a scan keep the realtime
//! result.

mod realtime;
mod scanning;
mod state;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::baseline::{Baseline, Entry};
use crate::config::Config;
use crate::db::{self, BaselineDb, DbError, DbOp, DbWriter};
use crate::emit::{Emitter, ID_BLOCK};
use crate::event::{Event, EventBody, Notice, NoticeKind, ScanSummary};
use crate::quarantine::QuarantineError;
use crate::scan::ScanMsg;
use crate::scope::Scope;
use crate::sink::{EventSink, SinkError};
use crate::sys::{self, inotify::RawEvent, mounts::MountTable, poll::Waker, users::NameCache};

/// Kernel events handled per loop turn before scan results and commands get a turn.
const EVENTS_PER_TURN: usize = 4096;

/// Scan results applied per loop turn.
const SCAN_MSGS_PER_TURN: usize = 1024;

/// How often the loop checks for scan results while a scan runs.
const SCAN_POLL: Duration = Duration::from_millis(10);

/// The agent failed and stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("failed to set up inotify")]
    Inotify(#[source] io::Error),
    #[error("failed to wait for inotify events")]
    Poll(#[source] io::Error),
    #[error("failed to read inotify events")]
    Read(#[source] io::Error),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

enum Command {
    Stop,
    ScanNow,
    Quarantine(PathBuf, Sender<Result<Event, QuarantineError>>),
}

/// Controls a running agent from other threads.
#[derive(Clone)]
pub struct AgentHandle {
    tx: Sender<Command>,
    waker: Waker,
}

impl AgentHandle {
    /// Asks the agent to stop; `Agent::run` returns after committing the baseline.
    pub fn stop(&self) {
        self.send(Command::Stop);
    }

    /// Starts a full scan now, unless one is running.
    pub fn scan_now(&self) {
        self.send(Command::ScanNow);
    }

    /// Moves a monitored file into quarantine and returns the `quarantined` event, which
    /// also goes to the sink. Paths outside the monitored directories are rejected.
    pub fn quarantine(&self, path: &Path) -> Result<Event, QuarantineError> {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.send(Command::Quarantine(path.to_path_buf(), reply_tx));
        reply_rx.recv().map_err(|_| QuarantineError::AgentStopped)?
    }

    fn send(&self, command: Command) {
        if self.tx.send(command).is_ok() {
            self.waker.wake();
        }
    }
}

/// A scan in progress, with what realtime handling changed meanwhile.
struct ActiveScan {
    job: crate::scan::ScanJob,
    started: Instant,
    /// Paths a realtime event updated during the scan; their scan results are stale.
    touched: HashSet<PathBuf>,
    /// Directories deleted or moved away during the scan.
    touched_dirs: Vec<PathBuf>,
    /// Directories the scan could not list; their entries are kept.
    failed_dirs: Vec<PathBuf>,
    events: u64,
}

/// The file integrity monitoring agent.
pub struct Agent {
    scope: Arc<Scope>,
    watches: crate::watches::Watches,
    baseline: Baseline,
    db: DbWriter,
    emitter: Emitter,
    names: NameCache,
    waker: Waker,
    cmd_tx: Sender<Command>,
    cmd_rx: Receiver<Command>,
    scan_tx: Sender<ScanMsg>,
    scan_rx: Receiver<ScanMsg>,
    queue: VecDeque<RawEvent>,
    /// Queued `IN_CLOSE_WRITE`/`IN_MOVED_TO` events per (watch, name), to skip superseded reads.
    queued_closes: HashMap<(i32, std::ffi::OsString), u32>,
    /// Files created and not closed yet: hashed on close, skipped by new-directory scans.
    open_writes: HashSet<PathBuf>,
    scan: Option<ActiveScan>,
    last_gen: u32,
    rescan_pending: bool,
    next_scheduled: Instant,
    /// True from the start of a silent baseline scan until the events queued during it are
    /// handled. Meanwhile realtime events report silently recorded files as added.
    silent_phase: bool,
    baseline_complete: bool,
    probe_buf: Vec<u8>,
    root_anchor: Vec<Option<PathBuf>>,
    root_missing: Vec<bool>,
    /// Subtrees already reported as over the watch limit.
    unwatched_subtrees: Vec<PathBuf>,
    stopping: bool,
    failed_reads: state::LogLimiter,
    /// Extra step to return freed memory, for binaries with their own allocator.
    memory_release: Option<fn()>,
    /// When to return freed memory next: shortly after a scan, once the writer is done.
    release_due: Option<Instant>,
}

impl Agent {
    /// Opens the baseline database, loads it, and prepares inotify. Nothing is watched or
    /// scanned until [`Agent::run`].
    pub fn new(config: Config, sink: Box<dyn EventSink>) -> Result<Agent, AgentError> {
        sys::host::ignore_sigio();
        let config = Arc::new(config);
        let db = BaselineDb::open(&config.database)?;
        let baseline_id = match db.meta(db::META_BASELINE_ID)? {
            Some(id) => id,
            None => {
                let id = new_baseline_id();
                db.set_meta(db::META_BASELINE_ID, &id)?;
                id
            }
        };
        let first_id = db
            .meta(db::META_NEXT_EVENT_ID)?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        let reserved = first_id + ID_BLOCK;
        db.set_meta(db::META_NEXT_EVENT_ID, &reserved.to_string())?;
        let baseline_complete = db.meta(db::META_BASELINE_COMPLETE)?.as_deref() == Some("1");

        let mounts = MountTable::read().unwrap_or_else(|error| {
            tracing::warn!(%error, "failed to read the mount table; no file system is skipped");
            MountTable::default()
        });
        let scope = Arc::new(Scope::new(Arc::clone(&config), mounts));
        let baseline = Baseline::default();
        let dropped = load_baseline(&db, &scope, &baseline)?;
        let db = DbWriter::start(db, reserved);
        for key in dropped {
            db.send(DbOp::Remove(key));
        }

        let boot_id = sys::host::boot_id().unwrap_or_default();
        let emitter = Emitter::new(
            sink,
            first_id,
            reserved,
            baseline_id,
            boot_id,
            config.max_events_per_sec,
        );
        let watches =
            crate::watches::Watches::new(config.max_watches).map_err(AgentError::Inotify)?;
        let waker = Waker::new().map_err(AgentError::Inotify)?;
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (scan_tx, scan_rx) = crossbeam_channel::bounded(crate::scan::RESULT_QUEUE);
        let roots = config.directories.len();
        Ok(Agent {
            scope,
            watches,
            baseline,
            db,
            emitter,
            names: NameCache::default(),
            waker,
            cmd_tx,
            cmd_rx,
            scan_tx,
            scan_rx,
            queue: VecDeque::new(),
            queued_closes: HashMap::new(),
            open_writes: HashSet::new(),
            scan: None,
            last_gen: 0,
            rescan_pending: false,
            next_scheduled: Instant::now() + config.scan_interval,
            silent_phase: false,
            baseline_complete,
            probe_buf: Vec::new(),
            root_anchor: vec![None; roots],
            root_missing: vec![false; roots],
            unwatched_subtrees: Vec::new(),
            stopping: false,
            failed_reads: state::LogLimiter::default(),
            memory_release: None,
            release_due: Some(Instant::now()),
        })
    }

    /// Sets a function that returns freed memory to the kernel, called after loading the
    /// baseline and after each scan, when the agent goes idle. The agent already calls
    /// glibc's `malloc_trim`; a binary with another global allocator passes its own step.
    pub fn set_memory_release(&mut self, release: fn()) {
        self.memory_release = Some(release);
    }

    pub fn handle(&self) -> AgentHandle {
        AgentHandle {
            tx: self.cmd_tx.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Returns the number of files in the baseline.
    pub fn baseline_len(&self) -> usize {
        self.baseline.len()
    }

    /// Runs the agent on a new thread; returns its handle and the thread to join.
    pub fn spawn(self) -> (AgentHandle, JoinHandle<Result<(), AgentError>>) {
        let handle = self.handle();
        let thread = std::thread::Builder::new()
            .name("fim-agent".into())
            .spawn(move || self.run())
            .expect("spawning a thread only fails when the process is out of resources");
        (handle, thread)
    }

    /// Watches, scans and reports until [`AgentHandle::stop`] or a sink failure.
    pub fn run(mut self) -> Result<(), AgentError> {
        tracing::info!(
            directories = self.scope.config.directories.len(),
            baseline_files = self.baseline.len(),
            "agent started"
        );
        let result = self.run_loop();
        self.shutdown();
        result
    }

    /// Runs one full scan (the baseline when the database is empty) without watching, then
    /// returns its totals.
    pub fn run_once(mut self) -> Result<ScanSummary, AgentError> {
        self.start_scan(self.startup_scan_kind(), self.all_roots())?;
        let mut summary = None;
        while summary.is_none() {
            let Ok(msg) = self.scan_rx.recv() else { break };
            summary = self.on_scan_msg(msg)?;
        }
        self.emitter.flush()?;
        self.shutdown();
        Ok(summary.unwrap_or(ScanSummary {
            kind: crate::event::ScanKind::Scheduled,
            files: 0,
            hashed: 0,
            bytes: 0,
            events: 0,
            duration_ms: 0,
        }))
    }

    fn run_loop(&mut self) -> Result<(), AgentError> {
        for root in 0..self.scope.config.directories.len() {
            self.setup_root(root, false)?;
        }
        if self.scope.config.scan_on_start {
            self.start_scan(self.startup_scan_kind(), self.all_roots())?;
        }
        self.emitter.flush()?;
        while !self.stopping {
            let [_, woken] = sys::poll::wait_readable(
                [
                    self.watches.fd(),
                    std::os::fd::AsRawFd::as_raw_fd(&self.waker),
                ],
                self.poll_timeout(),
            )
            .map_err(AgentError::Poll)?;
            if woken {
                self.waker.drain();
            }
            self.handle_commands()?;
            self.read_events()?;
            self.process_queue(EVENTS_PER_TURN)?;
            self.apply_scan_msgs(SCAN_MSGS_PER_TURN)?;
            if self.scan.is_none() && Instant::now() >= self.next_scheduled {
                self.start_scan(crate::event::ScanKind::Scheduled, self.all_roots())?;
            }
            self.emitter.flush()?;
            if self.release_due.is_some_and(|due| Instant::now() >= due) {
                self.release_due = None;
                self.release_memory();
            }
        }
        Ok(())
    }

    fn release_memory(&self) {
        sys::host::release_free_memory();
        if let Some(release) = self.memory_release {
            release();
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.queue.is_empty() || !self.scan_rx.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let mut timeout = self.next_scheduled.saturating_duration_since(now);
        if let Some(due) = self.release_due {
            timeout = timeout.min(due.saturating_duration_since(now));
        }
        if self.scan.is_some() {
            timeout = timeout.min(SCAN_POLL);
        }
        Some(timeout)
    }

    fn handle_commands(&mut self) -> Result<(), AgentError> {
        while let Ok(command) = self.cmd_rx.try_recv() {
            match command {
                Command::Stop => self.stopping = true,
                Command::ScanNow => {
                    if self.scan.is_none() {
                        self.start_scan(crate::event::ScanKind::Scheduled, self.all_roots())?;
                    }
                }
                Command::Quarantine(path, reply) => {
                    let result = self.quarantine(&path);
                    let _ = reply.send(result);
                }
            }
        }
        Ok(())
    }

    fn all_roots(&self) -> Vec<usize> {
        (0..self.scope.config.directories.len()).collect()
    }

    fn startup_scan_kind(&self) -> crate::event::ScanKind {
        if self.scope.config.silent_first_scan && !self.baseline_complete {
            crate::event::ScanKind::Baseline
        } else {
            crate::event::ScanKind::Scheduled
        }
    }

    fn notice(
        &mut self,
        kind: NoticeKind,
        path: Option<&Path>,
        message: String,
    ) -> Result<(), AgentError> {
        let notice = Notice {
            notice: kind,
            path: path.map(|p| p.to_string_lossy().into_owned()),
            message,
            scan: None,
        };
        self.emitter.emit(EventBody::Notice(notice), &self.db)?;
        Ok(())
    }

    fn shutdown(&mut self) {
        if let Some(mut scan) = self.scan.take() {
            scan.job.cancel();
        }
        let _ = self.emitter.flush();
        self.db.close();
        tracing::info!(baseline_files = self.baseline.len(), "agent stopped");
    }
}

/// Loads the database into the in-memory baseline, leaving out files that are no longer in
/// scope because the configuration changed. Returns their keys, to delete them.
fn load_baseline(
    db: &BaselineDb,
    scope: &Scope,
    baseline: &Baseline,
) -> Result<Vec<Box<[u8]>>, DbError> {
    use std::os::unix::ffi::OsStrExt;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    db.for_each_file(|key, state| {
        let path = Path::new(std::ffi::OsStr::from_bytes(&key));
        if state::in_scope(scope, path).is_some() {
            kept.push((key, Entry::new(state, 0, false)));
        } else {
            dropped.push(key);
        }
    })?;
    // Built in bulk, so that the B-tree nodes are full.
    *baseline.write() = kept.into_iter().collect();
    Ok(dropped)
}

/// Creates 128 random bits in hex, from time and pid when no random source is readable.
fn new_baseline_id() -> String {
    let mut bytes = [0u8; 16];
    if sys::host::random_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..8].copy_from_slice(&(nanos as u64).to_le_bytes());
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    hex::encode(bytes)
}
