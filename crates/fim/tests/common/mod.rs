//! Test harness: an agent with a channel sink on a temporary folder, and ways to wait for
//! its events with deadlines.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fim::crossbeam_channel::{Receiver, RecvTimeoutError};
use fim::{
    Agent, AgentError, AgentHandle, ChannelSink, ConfigFile, Event, FileEvent, FileEventKind,
    NoticeKind,
};

/// Maximum wait for any one expected event, generous for loaded 2-core machines.
pub const DEADLINE: Duration = Duration::from_secs(30);

static BARRIERS: AtomicU64 = AtomicU64::new(0);

pub struct Harness {
    pub tmp: tempfile::TempDir,
    /// The monitored directory.
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub handle: AgentHandle,
    pub rx: Receiver<Event>,
    thread: Option<JoinHandle<Result<(), AgentError>>>,
    /// Every event received so far, in order.
    pub seen: Vec<Event>,
}

/// Writes `content` to `path`, creating parent folders.
pub fn write(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

pub fn sha256_hex(data: &[u8]) -> String {
    let d = hashing::hash_reader(data, hashing::Algorithms::ALL).unwrap();
    d.sha256_hex().unwrap()
}

/// Builds a config for one monitored directory with test-friendly defaults.
pub fn config_for(root: &Path) -> ConfigFile {
    let text = format!(
        "scan_interval_secs = 86400\n[[directories]]\npath = {:?}\n",
        root.display().to_string()
    );
    toml::from_str(&text).unwrap()
}

impl Harness {
    /// Creates `<tmp>/root`, lets `prepare` fill it, starts the agent with `config_for(root)`
    /// adjusted by `configure`, and waits for the start-up scan to finish.
    pub fn start(prepare: impl FnOnce(&Path), configure: impl FnOnce(&mut ConfigFile)) -> Harness {
        let mut h = Harness::start_no_wait(prepare, configure, None);
        h.wait_notice(NoticeKind::ScanFinished);
        h
    }

    /// Like `start` without waiting; `capacity` bounds the event channel.
    pub fn start_no_wait(
        prepare: impl FnOnce(&Path),
        configure: impl FnOnce(&mut ConfigFile),
        capacity: Option<usize>,
    ) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        prepare(&root);
        let data_dir = tmp.path().join("data");
        let mut file = config_for(&root);
        configure(&mut file);
        Harness::launch(tmp, root, data_dir, file, capacity)
    }

    fn launch(
        tmp: tempfile::TempDir,
        root: PathBuf,
        data_dir: PathBuf,
        file: ConfigFile,
        capacity: Option<usize>,
    ) -> Harness {
        let config = file.validate(&data_dir).unwrap();
        let (tx, rx) = match capacity {
            Some(n) => fim::crossbeam_channel::bounded(n),
            None => fim::crossbeam_channel::unbounded(),
        };
        let agent = Agent::new(config, Box::new(ChannelSink::new(tx))).unwrap();
        let (handle, thread) = agent.spawn();
        Harness {
            tmp,
            root,
            data_dir,
            handle,
            rx,
            thread: Some(thread),
            seen: Vec::new(),
        }
    }

    /// Stops the agent and starts a new one on the same folders and database.
    pub fn restart(mut self, configure: impl FnOnce(&mut ConfigFile)) -> Harness {
        self.stop_agent();
        let mut file = config_for(&self.root);
        configure(&mut file);
        let tmp = std::mem::replace(&mut self.tmp, tempfile::tempdir().unwrap());
        Harness::launch(tmp, self.root.clone(), self.data_dir.clone(), file, None)
    }

    /// Waits for the first new event that satisfies `pred`, failing after `DEADLINE`.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if pred(&event) {
                        return event;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {what}; received:\n{}", self.dump());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "agent stopped while waiting for {what}; received:\n{}",
                        self.dump()
                    );
                }
            }
        }
    }

    /// Returns a notice of `kind` already received, or waits for the next one.
    pub fn seen_or_wait_notice(&mut self, kind: NoticeKind) -> Event {
        let seen = self
            .seen
            .iter()
            .find(|e| e.as_notice().is_some_and(|n| n.notice == kind));
        match seen {
            Some(event) => event.clone(),
            None => self.wait_notice(kind),
        }
    }

    pub fn wait_notice(&mut self, kind: NoticeKind) -> Event {
        self.wait_for(&format!("notice {kind:?}"), |e| {
            e.as_notice().is_some_and(|n| n.notice == kind)
        })
    }

    pub fn wait_file(&mut self, path: &Path, kind: FileEventKind) -> FileEvent {
        let p = path.to_string_lossy().into_owned();
        let event = self.wait_for(&format!("{kind:?} {p}"), |e| {
            e.as_file().is_some_and(|f| f.path == p && f.event == kind)
        });
        event.as_file().unwrap().clone()
    }

    /// Writes a marker file into `dir` and waits for its event. The agent handles kernel
    /// events in order, so every event caused before the marker has been received when this
    /// returns. Returns the file events received since the previous barrier, markers left out.
    pub fn barrier_in(&mut self, dir: &Path) -> Vec<FileEvent> {
        let start = self.seen.len();
        let n = BARRIERS.fetch_add(1, Ordering::Relaxed);
        let marker = dir.join(format!("barrier-{n}"));
        std::fs::write(&marker, b"barrier").unwrap();
        self.wait_file(&marker, FileEventKind::Added);
        self.seen[start..]
            .iter()
            .filter_map(Event::as_file)
            .filter(|f| {
                !Path::new(&f.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("barrier-")
            })
            .cloned()
            .collect()
    }

    pub fn barrier(&mut self) -> Vec<FileEvent> {
        let root = self.root.clone();
        self.barrier_in(&root)
    }

    pub fn dump(&self) -> String {
        self.seen
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the agent and waits until it has committed the baseline; folders stay.
    pub fn stop_agent(&mut self) {
        self.handle.stop();
        // Drain so a blocked send cannot keep the agent from seeing the stop.
        while let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                let _ = self.rx.recv_timeout(Duration::from_millis(20));
            }
            thread.join().unwrap().unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.stop();
            if let Some(thread) = self.thread.take() {
                while !thread.is_finished() {
                    let _ = self.rx.recv_timeout(Duration::from_millis(20));
                }
                let _ = thread.join();
            }
        }
    }
}

/// File events for `path`, in order.
pub fn events_for<'a>(events: &'a [FileEvent], path: &Path) -> Vec<&'a FileEvent> {
    let p = path.to_string_lossy();
    events.iter().filter(|e| e.path == p).collect()
}
