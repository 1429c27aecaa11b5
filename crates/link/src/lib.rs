//! The agent side of the manager link: enrollment, a durable on-disk spool,
//! and a TLS 1.3 sender with the agent's client certificate, keepalives and
//! reconnection with backoff.
//!
//! The agent hands events to an [`EventSink`]; each event is committed to the
//! spool before `send` returns, and deleted only when the manager acknowledged
//! it, so events survive a manager outage and the agent being killed.

mod client;
mod enroll;
mod identity;
pub mod quarantine;
mod spool;
mod tls;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

pub use enroll::{ca_fingerprint, enroll, EnrollError, EnrollOptions};
pub use identity::{join_host_port, EnrollmentInfo, Identity, IdentityError};
pub use quarantine::{Quarantine, QuarantineConfig};
pub use spool::{Pushed, Spool, SpoolError};
pub use tls::{agent_config, TlsError};
pub use wire::EventId;

/// The `[manager]` section of an agent configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerSection {
    /// Folder holding the enrollment (key, certificates, `enrollment.json`);
    /// defaults to `<data_dir>/manager`.
    pub enrollment_dir: Option<PathBuf>,
    /// `HOST:PORT` of the agent listener, in place of the one learnt at enrollment.
    pub address: Option<String>,
    /// Size bound of the spool's event bodies.
    pub spool_max_bytes: u64,
    pub keepalive_secs: u64,
    /// Events per batch sent to the manager.
    pub batch_max_events: usize,
    /// Maximum wait between two connection attempts.
    pub reconnect_max_secs: u64,
}

impl Default for ManagerSection {
    fn default() -> Self {
        ManagerSection {
            enrollment_dir: None,
            address: None,
            spool_max_bytes: 256 * 1024 * 1024,
            keepalive_secs: 10,
            batch_max_events: 500,
            reconnect_max_secs: 60,
        }
    }
}

impl ManagerSection {
    /// Checks the values and returns one message per invalid field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.spool_max_bytes < 64 * 1024 {
            problems.push("manager.spool_max_bytes: must be at least 65536".to_string());
        }
        for (name, value) in [
            ("manager.keepalive_secs", self.keepalive_secs),
            ("manager.batch_max_events", self.batch_max_events as u64),
            ("manager.reconnect_max_secs", self.reconnect_max_secs),
        ] {
            if value == 0 {
                problems.push(format!("{name}: must be at least 1"));
            }
        }
        problems
    }
}

/// Everything [`Link::start`] needs.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub identity: Identity,
    /// Path of the spool database file.
    pub spool_path: PathBuf,
    pub section: ManagerSection,
    /// The agent's version, reported in keepalives.
    pub version: String,
    /// How to carry out quarantine requests; `None` rejects them.
    pub quarantine: Option<QuarantineConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("failed to start the link runtime")]
    Runtime(#[source] std::io::Error),
}

/// Counters shared between the sink, the sender and the caller.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub connected: AtomicBool,
    pub sent_batches: AtomicU64,
    pub acked_events: AtomicU64,
    pub reconnects: AtomicU64,
}

pub(crate) struct Shared {
    spool: Mutex<Spool>,
    wake: tokio::sync::Notify,
    stats: LinkStats,
}

impl Shared {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Handle the agent sends events to. It is cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct EventSink {
    shared: Arc<Shared>,
}

impl EventSink {
    /// Commits one event to the spool and wakes the sender.
    pub fn send(&self, event: &Value) -> Result<Pushed, SpoolError> {
        let pushed = self.shared.spool().push(event)?;
        self.shared.wake.notify_one();
        Ok(pushed)
    }

    /// Commits events in one transaction and wakes the sender.
    pub fn send_many(&self, events: &[Value]) -> Result<Vec<Pushed>, SpoolError> {
        let pushed = self.shared.spool().push_many(events)?;
        self.shared.wake.notify_one();
        Ok(pushed)
    }

    /// Events waiting for the manager's acknowledgement.
    pub fn pending(&self) -> u64 {
        self.shared.spool().len()
    }

    /// Events dropped because the spool was full.
    pub fn dropped(&self) -> u64 {
        self.shared.spool().dropped()
    }
}

/// The running link: a background thread with its own tokio runtime.
pub struct Link {
    shared: Arc<Shared>,
    shutdown: Arc<tokio::sync::Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Link {
    /// Opens the spool and starts sending in a background thread.
    pub fn start(config: LinkConfig) -> Result<Link, LinkError> {
        let spool = Spool::open(&config.spool_path, config.section.spool_max_bytes)?;
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            wake: tokio::sync::Notify::new(),
            stats: LinkStats::default(),
        });
        let tls = tls::agent_config(
            &config.identity.ca_pem,
            &config.identity.cert_pem,
            &config.identity.key_pem,
        )?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LinkError::Runtime)?;

        let shutdown = Arc::new(tokio::sync::Notify::new());
        let sender = client::Sender::new(config, Arc::new(tls), shared.clone());
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("iocwatch-link".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = sender.run() => {}
                        () = stop.notified() => {}
                    }
                })
            })
            .map_err(LinkError::Runtime)?;

        Ok(Link {
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    pub fn sink(&self) -> EventSink {
        EventSink {
            shared: self.shared.clone(),
        }
    }

    pub fn stats(&self) -> &LinkStats {
        &self.shared.stats
    }

    /// Waits until the spool is empty or `timeout` passed; true when empty.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.shared.spool().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.spool().is_empty()
    }

    /// Stops the sender; events not yet acknowledged stay in the spool.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shutdown.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}
