//! `iocwatch up`: the whole system in one process on one data folder: the manager with
//! the intel store, the API and dashboard, and a local agent watching folders in real time.
//!
//! A first start creates an admin user (its key is printed once), imports the bundled
//! sample intel and an EICAR test event, and generates the enrollment secret. Later
//! starts reuse all of it.

mod local_agent;
pub mod sample;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use manager::{ServerConfig, ServerPaths};

use super::server::Stack;
use super::Global;
use local_agent::LocalAgent;

/// Rules whose alerts quarantine the file with `--quarantine`: a match on a detection
/// indicator (default ruleset) and a match on the test event (`TEST_RULES`).
const QUARANTINE_RULE_IDS: [&str; 2] = ["111010", "111030"];
/// Rules of `up`, loaded after the default ruleset.
const TEST_RULES: &str = include_str!("up/test_rules.xml");
/// Name of the API user a first start creates.
const ADMIN_USER: &str = "admin";
/// Maximum wait for the local agent to watch its folders before `up` reports ready anyway.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Maximum wait at stop for the manager to acknowledge the agent's last events.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Folder to watch in real time, with everything below it. Repeat for more folders
    /// [default: <data-dir>/drop]
    #[arg(long = "watch", value_name = "DIR")]
    pub watch: Vec<PathBuf>,

    /// Address of the API and dashboard. Port 0 picks a free port. A loopback address gets
    /// plain HTTP, any other HTTPS with a certificate from the manager's CA
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,

    /// Quarantine each file that matches a detection indicator: the agent moves it to
    /// <data-dir>/agent/quarantine
    #[arg(long)]
    pub quarantine: bool,
}

/// Files and folders of `up` below the data folder.
struct Layout {
    data_dir: PathBuf,
}

impl Layout {
    fn own_dir(&self) -> PathBuf {
        self.data_dir.join("up")
    }
    fn secret_file(&self) -> PathBuf {
        self.own_dir().join("enrollment.secret")
    }
    fn rules_dir(&self) -> PathBuf {
        self.own_dir().join("rules")
    }
    fn sample_marker(&self) -> PathBuf {
        self.own_dir().join("sample-intel-imported")
    }
    fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
    fn default_drop_dir(&self) -> PathBuf {
        self.data_dir.join("drop")
    }
}

/// The admin key and intel counts of a first start, for the start-up message.
struct FirstStart {
    admin_key: Option<String>,
    imported: Option<sample::Imported>,
}

pub fn run(args: UpArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("iocwatch-up")
        .build()
        .context("failed to start the async runtime")?;
    // First of all, so that Ctrl-C or SIGTERM at any stage of the start stops it cleanly.
    let stop = StopRequest::install(&runtime)?;
    let data_dir = std::path::absolute(&global.data_dir)
        .with_context(|| format!("invalid data folder `{}`", global.data_dir.display()))?;
    let layout = Layout { data_dir };
    create_private_dir(&layout.own_dir())?;
    // Held until the process exits: a second `up`, or an agent started on the local agent's
    // folder, fails here instead of sharing its spool and enrollment.
    let _agent_lock = fim::lock::lock_state_dir(&layout.agent_dir())?;
    let dirs = watch_dirs(&args.watch, &layout)?;
    let secret = load_or_create_secret(&layout.secret_file())?;
    if stop.requested() {
        return Ok(stopped_during_start());
    }
    let first = prepare_intel(&layout)?;
    write_rules(&layout.rules_dir())?;
    let config = server_config(&args, &layout)?;
    if stop.requested() {
        return Ok(stopped_during_start());
    }
    let start = Start {
        layout: &layout,
        dirs: &dirs,
        secret: &secret,
        started,
    };
    runtime.block_on(serve(config, start, first, stop))?;
    Ok(ExitCode::SUCCESS)
}

fn stopped_during_start() -> ExitCode {
    tracing::info!("stopped during start-up");
    ExitCode::SUCCESS
}

/// Set once SIGINT (Ctrl-C) or SIGTERM arrives. The handlers are installed before the start
/// begins, so that a request at any stage is kept until the next check.
struct StopRequest(tokio::sync::watch::Receiver<bool>);

impl StopRequest {
    fn install(runtime: &tokio::runtime::Runtime) -> anyhow::Result<StopRequest> {
        use tokio::signal::unix::{signal, SignalKind};
        let _context = runtime.enter();
        let mut interrupt =
            signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
        let (requested, receiver) = tokio::sync::watch::channel(false);
        runtime.spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = requested.send(true);
        });
        Ok(StopRequest(receiver))
    }

    fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once a stop was requested, at once when it already was.
    async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Settings of the start beyond the manager's configuration.
struct Start<'a> {
    layout: &'a Layout,
    dirs: &'a [PathBuf],
    secret: &'a str,
    started: Instant,
}

async fn serve(
    config: ServerConfig,
    start: Start<'_>,
    mut first: FirstStart,
    mut stop: StopRequest,
) -> anyhow::Result<()> {
    let layout = start.layout;
    let quarantine = !config.active_response.quarantine_rule_ids.is_empty();
    let paths = ServerPaths::new(&layout.data_dir);
    let alerts_json = paths.default_alerts_json();
    let integration_log = paths.default_integration_log();
    let stack = Stack::start(config, &layout.data_dir).await?;
    if stop.requested() {
        stack.stop().await;
        stopped_during_start();
        return Ok(());
    }

    let agent = match start_agent(&stack, &start, &mut stop).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            stack.stop().await;
            stopped_during_start();
            return Ok(());
        }
        Err(err) => {
            stack.stop().await;
            return Err(err);
        }
    };
    // No stop check from here to the summary: the admin key is printed only this once.
    first.admin_key = match create_admin_if_none(&layout.data_dir) {
        Ok(key) => key,
        Err(err) => {
            let _ = tokio::task::spawn_blocking(move || agent.stop(DRAIN_TIMEOUT)).await;
            stack.stop().await;
            return Err(err);
        }
    };
    let url = stack.api.as_ref().map(|api| api.url()).unwrap_or_default();
    let summary = Summary {
        url: &url,
        first: &first,
        dirs: start.dirs,
        alerts_json: &alerts_json,
        integration_log: &integration_log,
        quarantine_dir: quarantine.then_some(agent.quarantine_dir.as_path()),
    };
    summary.print(start.started);

    stop.wait().await;
    tracing::info!("stopping");
    let stopped = tokio::task::spawn_blocking(move || agent.stop(DRAIN_TIMEOUT)).await;
    if let Err(err) = stopped {
        tracing::error!(error = %err, "failed to stop the local agent");
    }
    stack.stop().await;
    Ok(())
}

/// Enrolls the local agent when needed, starts it and waits until it watches its folders.
/// Returns `None`, with the agent stopped, when a stop is requested meanwhile.
async fn start_agent(
    stack: &Stack,
    start: &Start<'_>,
    stop: &mut StopRequest,
) -> anyhow::Result<Option<LocalAgent>> {
    let layout = start.layout;
    let paths = ServerPaths::new(&layout.data_dir);
    let ca_path = paths.ca_dir().join("ca.pem");
    let ca_pem = std::fs::read_to_string(&ca_path)
        .with_context(|| format!("failed to read the manager's CA `{}`", ca_path.display()))?;
    let agent_dir = layout.agent_dir();
    let addr = stack.server.enrollment_addr;
    let identity = local_agent::enrollment(&agent_dir, addr, start.secret, &ca_pem).await?;
    if stop.requested() {
        return Ok(None);
    }

    let (ready, is_ready) = tokio::sync::oneshot::channel();
    let agent = LocalAgent::start(
        start.dirs,
        &agent_dir,
        identity,
        stack.server.agents_addr,
        ready,
    )?;
    let waited = tokio::select! {
        waited = tokio::time::timeout(READY_TIMEOUT, is_ready) => Some(waited),
        () = stop.wait() => None,
    };
    match waited {
        Some(Ok(Ok(()))) if !stop.requested() => Ok(Some(agent)),
        // The sink was dropped: the agent thread ended before its first scan.
        Some(Ok(Err(_))) => {
            let _ = tokio::task::spawn_blocking(move || agent.stop(DRAIN_TIMEOUT)).await;
            anyhow::bail!(
                "the local agent stopped during start-up, see the log above for the cause"
            )
        }
        Some(Err(_)) if !stop.requested() => {
            tracing::warn!(
                timeout_secs = READY_TIMEOUT.as_secs(),
                "the local agent has not started its scan yet, so its folders may not be watched"
            );
            Ok(Some(agent))
        }
        _ => {
            let _ = tokio::task::spawn_blocking(move || agent.stop(DRAIN_TIMEOUT)).await;
            Ok(None)
        }
    }
}

/// The start-up message on stdout: the first line gives the bound URL, as `iocwatch api`
/// prints it, so that scripts can use port 0.
struct Summary<'a> {
    url: &'a str,
    first: &'a FirstStart,
    dirs: &'a [PathBuf],
    alerts_json: &'a Path,
    integration_log: &'a Path,
    quarantine_dir: Option<&'a Path>,
}

impl Summary<'_> {
    fn print(&self, started: Instant) {
        let mut out = std::io::stdout().lock();

        let _ = writeln!(out, "listening on {}", self.url);
        let _ = writeln!(out, "dashboard: {}/", self.url);
        match &self.first.admin_key {
            Some(key) => {
                let _ = writeln!(
                    out,
                    "api key: {key} (user `{ADMIN_USER}`; shown only this once, store it now)"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "api key: shown at the first start; `iocwatch users add NAME --role admin` \
                     makes a new one"
                );
            }
        }

        if let Some(imported) = &self.first.imported {
            let _ = writeln!(
                out,
                "sample intel: {} events, {} detection indicators (EICAR test event included)",
                imported.events, imported.indicators
            );
        }

        for dir in self.dirs {
            let _ = writeln!(out, "watching: {}", dir.display());
        }
        let _ = writeln!(out, "alerts: {}", self.alerts_json.display());
        let _ = writeln!(out, "integration log: {}", self.integration_log.display());
        if let Some(dir) = self.quarantine_dir {
            let _ = writeln!(
                out,
                "quarantine: on; matching files move to {}",
                dir.display()
            );
        }

        let elapsed_ms = started.elapsed().as_millis();
        let _ = writeln!(out, "ready in {elapsed_ms} ms; stop with Ctrl-C");
        let _ = out.flush();
    }
}

/// Resolves the folders to watch, creating the default drop folder.
fn watch_dirs(requested: &[PathBuf], layout: &Layout) -> anyhow::Result<Vec<PathBuf>> {
    if requested.is_empty() {
        let drop_dir = layout.default_drop_dir();
        std::fs::create_dir_all(&drop_dir)
            .with_context(|| format!("failed to create `{}`", drop_dir.display()))?;
        return Ok(vec![drop_dir]);
    }
    let mut dirs = Vec::with_capacity(requested.len());
    for dir in requested {
        let path = std::fs::canonicalize(dir).with_context(|| {
            format!(
                "failed to open the folder `{}`, check that the path exists",
                dir.display()
            )
        })?;
        if !path.is_dir() {
            anyhow::bail!("--watch `{}` is not a folder", dir.display());
        }
        if let Some(kind) = pseudo_file_system(&path) {
            tracing::warn!(
                folder = %path.display(),
                "--watch `{}` is on a {kind} file system, whose files the kernel generates: \
                 inotify reports no change there, so this folder gives no alerts",
                dir.display()
            );
        }
        dirs.push(path);
    }
    Ok(dirs)
}

/// File systems whose content the kernel generates, by `statfs` magic number
/// (linux/magic.h). Inotify reports no events on them.
const PSEUDO_FILE_SYSTEMS: [(u32, &str); 12] = [
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x1cd1, "devpts"),
    (0x6265_6570, "configfs"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
];

/// Names the pseudo file system `path` is on, if any.
fn pseudo_file_system(path: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is a valid C string and `stat` points to writable memory of the
    // right size, and it is read only after statfs reported success.
    let stat = unsafe {
        if libc::statfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    // f_type is a signed word on some targets, but the magic numbers fit in 32 bits.
    let magic = stat.f_type as u32;
    PSEUDO_FILE_SYSTEMS
        .iter()
        .find(|(number, _)| *number == magic)
        .map(|(_, name)| *name)
}

/// Imports the sample intel once, before the manager loads the index.
fn prepare_intel(layout: &Layout) -> anyhow::Result<FirstStart> {
    let marker = layout.sample_marker();
    let imported = if marker.exists() {
        None
    } else {
        let imported = sample::import(&layout.data_dir)?;
        std::fs::write(
            &marker,
            "the bundled sample intel was imported; delete to import again\n",
        )
        .with_context(|| format!("failed to write `{}`", marker.display()))?;
        Some(imported)
    };
    Ok(FirstStart {
        admin_key: None,
        imported,
    })
}

/// Creates the admin user when the store has no user and returns its key. It runs once
/// everything listens, so that a failed start never swallows the only copy of the key.
fn create_admin_if_none(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let db = api::Db::open(data_dir)
        .with_context(|| format!("failed to open the intel store in `{}`", data_dir.display()))?;
    let users = db.users().context("failed to list the API users")?;
    if !users.is_empty() {
        return Ok(None);
    }
    let (_, key) = db
        .add_user(ADMIN_USER, api::Role::Admin)
        .context("failed to create the admin user")?;
    Ok(Some(key))
}

/// Builds the manager's configuration: listeners on loopback with free ports, the API on
/// `--listen`, and quarantine of intel matches with `--quarantine`.
fn server_config(args: &UpArgs, layout: &Layout) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::default();
    config.listen.enrollment = "127.0.0.1:0".into();
    config.listen.agents = "127.0.0.1:0".into();
    config.listen.server_names = vec!["localhost".into(), "127.0.0.1".into()];
    config.enrollment.secret_file = Some(layout.secret_file());
    config.api.listen = args.listen.to_string();
    config.rules.dirs = vec![layout.rules_dir()];
    if args.quarantine {
        config.active_response.quarantine_rule_ids = QUARANTINE_RULE_IDS
            .iter()
            .map(|id| id.to_string())
            .collect();
    }
    let problems = config.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid configuration: {}", problems.join("; "));
    }
    Ok(config)
}

/// Writes `up`'s rules at every start, so that a new binary's rules replace the old ones.
fn write_rules(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let path = dir.join("0030-iocwatch_up_rules.xml");
    std::fs::write(&path, TEST_RULES)
        .with_context(|| format!("failed to write the rule file `{}`", path.display()))
}

/// Reads the enrollment secret, generating 32 random bytes (hex) on the first start.
fn load_or_create_secret(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        let secret = std::fs::read_to_string(path).with_context(|| {
            format!("failed to read the enrollment secret `{}`", path.display())
        })?;
        return Ok(secret.trim().to_string());
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("failed to read random bytes from /dev/urandom")?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &secret)?;
    Ok(secret)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write `{}`", path.display()))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create the folder `{}`", dir.display()))
}
