//! `iocwatch server`: runs the manager with a TOML configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use manager::analysis::intel::DetectorLookup;
use manager::analysis::Engine;
use manager::{RunningServer, ServerConfig};

use super::Global;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Manager configuration file (TOML); see examples/server.toml
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: ServerArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let config = ServerConfig::load(&args.config)?;
    let data_dir = config.data_dir_or(&global.data_dir);

    let mut ruleset =
        rules::Ruleset::load(true, &config.rules.dirs).context("failed to load the rules")?;
    ruleset.set_alert_levels(
        config.alerts.min_level,
        rules::ruleset::DEFAULT_EMAIL_ALERT_LEVEL,
    );
    let intel = DetectorLookup::load(&data_dir)
        .with_context(|| format!("failed to load the intel store in `{}`", data_dir.display()))?
        .into_shared();
    let engine = Engine::new(Arc::new(ruleset), Some(intel), &config.manager_name);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("iocwatch-server")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config, &data_dir, engine))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServerConfig, data_dir: &Path, engine: Engine) -> anyhow::Result<()> {
    let mut server = RunningServer::start(config, data_dir, Box::new(engine)).await?;
    eprintln!(
        "iocwatch: manager listening: enrollment {}, agents {}",
        server.enrollment_addr, server.agents_addr
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("manager stopping");
    server.stop();
    Ok(())
}
