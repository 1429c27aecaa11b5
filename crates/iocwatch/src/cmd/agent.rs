//! `iocwatch agent`: runs the file integrity monitoring agent, or enrolls it with a manager,
//! and sends its events to the manager when the configuration has a `[manager]` section.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use fim::config::Problem;
use fim::{Agent, AgentHandle, Config, ConfigError, ConfigFile, EventSink, JsonLinesSink};

/// Spool of events not yet acknowledged by the manager, relative to the data directory.
const SPOOL_FILE: &str = "link/spool.sqlite";
/// Enrollment folder, relative to the data directory, as `iocwatch agent enroll` stores it.
const ENROLLMENT_DIR: &str = "manager";
/// How long `--once` waits for the manager to acknowledge the scan's events.
const ONCE_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

use super::Global;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,

    /// Agent configuration file (TOML; see docs/agent-config.md)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Validate the configuration, print every problem, and exit
    #[arg(long)]
    pub check_config: bool,

    /// Run one full scan (the silent baseline when the database is empty), print its
    /// totals on stderr, and exit without watching
    #[arg(long)]
    pub once: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Enroll this agent with a manager and store its certificate
    Enroll(super::enroll::EnrollArgs),
}

pub fn run(args: AgentArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if let Some(AgentCommand::Enroll(enroll)) = args.command {
        return super::enroll::run(enroll, global);
    }
    let Some(config_path) = args.config else {
        anyhow::bail!("missing --config FILE; docs/agent-config.md describes the file");
    };
    let loaded = load_config(&config_path, &global.data_dir)?;
    if args.check_config {
        eprintln!(
            "{}: valid, {} monitored directories{}",
            config_path.display(),
            loaded.config.directories.len(),
            if loaded.manager.is_some() {
                ", sending to a manager"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }

    // Held until the process exits; the kernel drops the locks when it does. The data
    // folder's lock keeps a second agent off the spool, enrollment and quarantine, even
    // with a baseline database of its own.
    let _baseline_lock = fim::lock::lock_baseline(&loaded.config.database)?;
    let data_dir = std::path::absolute(&global.data_dir).unwrap_or(global.data_dir.clone());
    let state_lock = fim::lock::lock_state_dir(&data_dir)?;
    let mut loaded = loaded;
    loaded
        .config
        .own_paths
        .push(state_lock.path().to_path_buf());
    let (config, sink, link) = open_sinks(loaded, &global.data_dir)?;
    let mut agent = Agent::new(config, sink).context("failed to start the agent")?;
    agent.set_memory_release(release_allocator_memory);
    if args.once {
        let summary = agent.run_once().context("scan failed")?;
        eprintln!(
            "{} scan: {} files, {} hashed ({} bytes), {} events, {} ms",
            summary.kind.as_str(),
            summary.files,
            summary.hashed,
            summary.bytes,
            summary.events,
            summary.duration_ms
        );
        if let Some(link) = link {
            if !link.wait_drained(ONCE_DRAIN_TIMEOUT) {
                tracing::warn!(
                    pending = link.sink().pending(),
                    "events not yet acknowledged by the manager stay in the spool"
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    stop_on_signal(agent.handle())?;
    agent.run().context("the agent stopped")?;
    Ok(ExitCode::SUCCESS)
}

/// Returns memory freed by the agent to the kernel. The binary's allocator (mimalloc, see
/// main.rs) keeps freed pages of an idle thread committed until it is asked to collect.
pub(crate) fn release_allocator_memory() {
    // SAFETY: mi_collect takes a plain flag and only walks mimalloc's own heap structures.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// A validated agent configuration with its `[manager]` section parsed.
struct Loaded {
    config: Config,
    manager: Option<link::ManagerSection>,
    /// `[output]` was written in the file, so the local sink runs beside the manager.
    explicit_output: bool,
}

/// Reads the file and validates it, reporting `[manager]` problems and paths of the wrong
/// kind with the others.
fn load_config(path: &Path, data_dir: &Path) -> Result<Loaded, ConfigError> {
    let mut file = ConfigFile::read(path)?;
    let explicit_output = file.output.is_some();
    let (manager, mut problems) = match file.manager.take() {
        None => (None, Vec::new()),
        Some(table) => parse_manager(table),
    };
    problems.extend(path_kind_problems(&file, manager.as_ref(), data_dir));
    let mut config = file.validate_with(data_dir, problems)?;
    config.manager = None;
    Ok(Loaded {
        config,
        manager,
        explicit_output,
    })
}

/// Checks that the monitored paths and the folders the agent writes to are directories
/// and its files are not, for the paths as written or their defaults under `data_dir`. Paths that do not exist
/// yet pass when their nearest existing parent is a directory.
fn path_kind_problems(
    file: &ConfigFile,
    manager: Option<&link::ManagerSection>,
    data_dir: &Path,
) -> Vec<Problem> {
    use fim::config::defaults;

    let mut problems = Vec::new();
    // A monitored path may be missing (the agent reports it and waits for it), but a file
    // in its place would never be read: the agent lists directories only.
    for (i, dir) in file.directories.iter().enumerate() {
        let field = format!("directories[{i}].path");
        check_path_kind(&mut problems, &field, &dir.path, true);
    }
    let default_under = |relative: &str| data_dir.join(relative);
    let quarantine = file
        .quarantine_dir
        .clone()
        .unwrap_or_else(|| default_under(defaults::QUARANTINE_DIR));
    check_path_kind(&mut problems, "quarantine_dir", &quarantine, true);
    let database = file
        .database_path
        .clone()
        .unwrap_or_else(|| default_under(defaults::DATABASE_FILE));
    check_path_kind(&mut problems, "database_path", &database, false);
    if let Some(path) = file.output.as_ref().and_then(|o| o.path.as_ref()) {
        check_path_kind(&mut problems, "output.path", path, false);
    }
    if let Some(section) = manager {
        let enrollment = section
            .enrollment_dir
            .clone()
            .unwrap_or_else(|| default_under(ENROLLMENT_DIR));
        check_path_kind(&mut problems, "manager.enrollment_dir", &enrollment, true);
        let spool = default_under(SPOOL_FILE);
        check_path_kind(&mut problems, "--data-dir (spool)", &spool, false);
    }
    problems
}

/// Adds a problem when `path` (or its nearest existing parent) is of the wrong kind:
/// a directory is expected when `directory` is set, anything but a directory otherwise.
fn check_path_kind(problems: &mut Vec<Problem>, field: &str, path: &Path, directory: bool) {
    let mut problem = |message: String| {
        problems.push(Problem {
            field: field.to_string(),
            message,
        })
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() && !directory => problem(format!(
            "`{}` is a directory; expected a file path",
            path.display()
        )),
        Ok(meta) if !meta.is_dir() && directory => problem(format!(
            "`{}` is {}; expected a directory",
            path.display(),
            file_kind(&meta)
        )),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            let parent = path
                .ancestors()
                .skip(1)
                .find(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_dir()))
                .unwrap_or(path);
            problem(format!(
                "`{}` is below `{}`, which is not a directory",
                path.display(),
                parent.display()
            ))
        }
        // Missing paths are created at start; other errors surface when they are opened.
        Err(_) => {}
    }
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a directory"
    }
}

/// Parses and checks the `[manager]` table, returning one problem per invalid field.
fn parse_manager(table: toml::Table) -> (Option<link::ManagerSection>, Vec<Problem>) {
    let section: link::ManagerSection = match toml::Value::Table(table).try_into() {
        Ok(section) => section,
        Err(e) => {
            let problem = Problem {
                field: "manager".into(),
                message: e.message().trim_end().to_string(),
            };
            return (None, vec![problem]);
        }
    };
    let problems: Vec<Problem> = section
        .problems()
        .into_iter()
        .map(|text| match text.split_once(": ") {
            Some((field, message)) => Problem {
                field: field.to_string(),
                message: message.to_string(),
            },
            None => Problem {
                field: "manager".into(),
                message: text,
            },
        })
        .collect();
    (Some(section), problems)
}

/// Opens the sinks the configuration selects: the manager link when `[manager]` is present
/// (with the local sink too when `[output]` is written), otherwise the local sink.
fn open_sinks(
    loaded: Loaded,
    data_dir: &Path,
) -> anyhow::Result<(Config, Box<dyn EventSink>, Option<link::Link>)> {
    let Loaded {
        mut config,
        manager,
        explicit_output,
    } = loaded;
    let local = open_local_sink(&config.output)?;
    let Some(section) = manager else {
        return Ok((config, local, None));
    };
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let link = start_link(&mut config, section, &data_dir)?;
    let remote: Box<dyn EventSink> = Box::new(LinkSink(link.sink()));
    let sink = if explicit_output {
        Box::new(TeeSink(vec![remote, local]))
    } else {
        remote
    };
    Ok((config, sink, Some(link)))
}

/// Loads the enrollment and starts the link. Its folders join the agent's own paths, so they
/// are never monitored.
fn start_link(
    config: &mut Config,
    section: link::ManagerSection,
    data_dir: &Path,
) -> anyhow::Result<link::Link> {
    let enrollment = section
        .enrollment_dir
        .clone()
        .unwrap_or_else(|| data_dir.join(ENROLLMENT_DIR));
    let identity = link::Identity::load(&enrollment).with_context(|| {
        format!(
            "failed to load the enrollment from `{}`; run `iocwatch agent enroll` first",
            enrollment.display()
        )
    })?;
    let spool_path = data_dir.join(SPOOL_FILE);
    let spool_dir = spool_path.parent().unwrap_or(data_dir).to_path_buf();
    create_private_dir(&spool_dir)?;

    let quarantine = link::QuarantineConfig {
        dir: config.quarantine_dir.clone(),
        allowed_roots: config.directories.iter().map(|d| d.path.clone()).collect(),
    };
    let link = link::Link::start(link::LinkConfig {
        identity,
        spool_path,
        section,
        version: env!("CARGO_PKG_VERSION").to_string(),
        quarantine: Some(quarantine),
    })
    .context("failed to start the manager link")?;
    config.own_paths.extend([spool_dir, enrollment]);
    Ok(link)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create the folder `{}`", dir.display()))
}

/// Opens the local sink the configuration selects.
fn open_local_sink(output: &fim::OutputConfig) -> anyhow::Result<Box<dyn EventSink>> {
    Ok(match output {
        fim::OutputConfig::Stdout => Box::new(JsonLinesSink::stdout()),
        fim::OutputConfig::File(path) => Box::new(
            JsonLinesSink::append_to(path)
                .with_context(|| format!("failed to open the event file `{}`", path.display()))?,
        ),
    })
}

/// Commits each event to the manager link's spool.
struct LinkSink(link::EventSink);

impl EventSink for LinkSink {
    fn send(&mut self, event: fim::Event) -> Result<(), fim::SinkError> {
        let value = serde_json::to_value(&event).map_err(|e| fim::SinkError::Io(e.into()))?;
        self.0
            .send(&value)
            .map_err(|e| fim::SinkError::Io(std::io::Error::other(e)))?;
        Ok(())
    }
}

/// Hands each event to every sink in turn.
struct TeeSink(Vec<Box<dyn EventSink>>);

impl EventSink for TeeSink {
    fn send(&mut self, event: fim::Event) -> Result<(), fim::SinkError> {
        let Some((last, rest)) = self.0.split_last_mut() else {
            return Ok(());
        };
        for sink in rest {
            sink.send(event.clone())?;
        }
        last.send(event)
    }

    fn flush(&mut self) -> Result<(), fim::SinkError> {
        for sink in &mut self.0 {
            sink.flush()?;
        }
        Ok(())
    }
}

/// Stops the agent on SIGINT or SIGTERM, from a small thread of its own.
pub(crate) fn stop_on_signal(handle: AgentHandle) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("failed to set up signal handling")?;
    let (mut interrupt, mut terminate) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("failed to set up signal handling")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
            tracing::info!("stop requested by signal");
            handle.stop();
        })
        .context("failed to start the signal thread")?;
    Ok(())
}
