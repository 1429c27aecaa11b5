//! `iocwatch agent`: runs the file integrity monitoring agent, or enrolls it with a manager.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use fim::{Agent, AgentHandle, Config, EventSink, JsonLinesSink, OutputConfig};

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
    let config = Config::load(&config_path, &global.data_dir)?;
    if args.check_config {
        eprintln!(
            "{}: valid, {} monitored directories",
            config_path.display(),
            config.directories.len()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let sink = open_sink(&config.output)?;
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

/// Opens the local sink the configuration selects.
fn open_sink(output: &OutputConfig) -> anyhow::Result<Box<dyn EventSink>> {
    Ok(match output {
        OutputConfig::Stdout => Box::new(JsonLinesSink::stdout()),
        OutputConfig::File(path) => Box::new(
            JsonLinesSink::append_to(path)
                .with_context(|| format!("failed to open the event file `{}`", path.display()))?,
        ),
    })
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
