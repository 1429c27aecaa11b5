//! The agent `iocwatch up` runs in its own process: enrolled with its own manager over
//! loopback, sending events through the link's spool like any other agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use fim::{Agent, AgentHandle, Event, EventBody, EventSink, NoticeKind};

/// Folders below the agent's state folder.
const ENROLLMENT_DIR: &str = "manager";
const SPOOL_FILE: &str = "link/spool.sqlite";

/// A running local agent: the FIM thread and its link to the manager.
pub struct LocalAgent {
    handle: AgentHandle,
    thread: std::thread::JoinHandle<Result<(), fim::AgentError>>,
    link: link::Link,
    pub quarantine_dir: PathBuf,
    _baseline_lock: Option<fim::lock::AgentLock>,
}

/// Loads the agent's enrollment from `state_dir`, or enrolls it with the manager at
/// `enrollment_addr` first, trusting only the manager's CA in `ca_pem`.
pub async fn enrollment(
    state_dir: &Path,
    enrollment_addr: std::net::SocketAddr,
    secret: &str,
    ca_pem: &str,
) -> anyhow::Result<link::Identity> {
    let dir = state_dir.join(ENROLLMENT_DIR);
    if dir.join("enrollment.json").is_file() {
        return link::Identity::load(&dir).with_context(|| {
            format!(
                "failed to load the local agent's enrollment from `{}`",
                dir.display()
            )
        });
    }
    let name = agent_name();
    let manager = enrollment_addr.to_string();
    let options = link::EnrollOptions {
        manager: &manager,
        secret,
        name: &name,
        version: env!("CARGO_PKG_VERSION"),
        ca_pem: Some(ca_pem),
    };
    let identity = link::enroll(&options).await.with_context(|| {
        format!(
            "failed to enroll the local agent `{name}`; when it was enrolled before, remove it \
             with `iocwatch agents remove` and start again"
        )
    })?;
    identity
        .save(&dir)
        .with_context(|| format!("failed to store the enrollment in `{}`", dir.display()))?;
    tracing::info!(agent_id = %identity.info.agent_id, name = %name, "local agent enrolled");
    Ok(identity)
}

/// Returns the host name, the name agents get by default, or `local` when it cannot be read.
fn agent_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "local".to_string())
}

impl LocalAgent {
    /// Starts the link to the manager's agent listener at `agents_addr`, then the agent on
    /// `dirs`. `ready` fires once the agent watches every folder.
    pub fn start(
        dirs: &[PathBuf],
        state_dir: &Path,
        identity: link::Identity,
        agents_addr: std::net::SocketAddr,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<LocalAgent> {
        let mut config = fim::Config::for_directories(dirs, state_dir)
            .context("invalid local agent configuration")?;
        let baseline_lock = fim::lock::lock_baseline(&config.database)?;
        let spool_path = state_dir.join(SPOOL_FILE);
        let spool_dir = spool_path.parent().unwrap_or(state_dir).to_path_buf();
        std::fs::create_dir_all(&spool_dir)
            .with_context(|| format!("failed to create `{}`", spool_dir.display()))?;

        let section = link::ManagerSection {
            enrollment_dir: Some(state_dir.join(ENROLLMENT_DIR)),
            // The manager's listeners use free ports, so the enrollment's port is stale.
            address: Some(agents_addr.to_string()),
            ..Default::default()
        };
        let link = link::Link::start(link::LinkConfig {
            identity,
            spool_path,
            section,
            version: env!("CARGO_PKG_VERSION").to_string(),
            quarantine: Some(link::QuarantineConfig {
                dir: config.quarantine_dir.clone(),
                allowed_roots: dirs.to_vec(),
            }),
        })
        .context("failed to start the local agent's link")?;
        config
            .own_paths
            .extend([spool_dir, state_dir.join(ENROLLMENT_DIR)]);
        config
            .own_paths
            .push(state_dir.join(fim::lock::STATE_LOCK_FILE));
        let quarantine_dir = config.quarantine_dir.clone();

        let sink = ReadySink {
            link: link.sink(),
            ready: Some(ready),
        };
        let mut agent = Agent::new(config, Box::new(sink)).context("failed to start the agent")?;
        agent.set_memory_release(crate::cmd::agent::release_allocator_memory);
        let (handle, thread) = agent.spawn();
        Ok(LocalAgent {
            handle,
            thread,
            link,
            quarantine_dir,
            _baseline_lock: baseline_lock,
        })
    }

    /// Stops the agent, then the link; events not yet acknowledged stay in the spool for the
    /// next start. Blocks until both threads ended.
    pub fn stop(self, drain_timeout: Duration) {
        self.handle.stop();
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "the local agent stopped with an error"),
            Err(_) => tracing::error!("the local agent thread panicked"),
        }
        self.link.wait_drained(drain_timeout);
        self.link.shutdown();
    }
}

/// Commits each event to the link's spool, and reports readiness when the start-up scan
/// begins: the agent adds its watches before that scan.
struct ReadySink {
    link: link::EventSink,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EventSink for ReadySink {
    fn send(&mut self, event: Event) -> Result<(), fim::SinkError> {
        let started =
            matches!(&event.body, EventBody::Notice(n) if n.notice == NoticeKind::ScanStarted);
        let value = serde_json::to_value(&event).map_err(|e| fim::SinkError::Io(e.into()))?;
        self.link
            .send(&value)
            .map_err(|e| fim::SinkError::Io(std::io::Error::other(e)))?;
        if started {
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(());
            }
        }
        Ok(())
    }
}
