//! `iocwatch api`: serves the MISP-compatible REST API on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct ApiArgs {
    /// Address and port to listen on; plain HTTP is served only on a loopback address
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain for HTTPS
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

pub fn run(args: ApiArgs, global: &Global) -> anyhow::Result<ExitCode> {
    // TODO: serve HTTPS with --tls-cert/--tls-key; until then only loopback HTTP is served.
    if args.tls_cert.is_some() {
        anyhow::bail!(
            "HTTPS for `iocwatch api` is not available yet; listen on a loopback address \
             without --tls-cert, or serve the API through `iocwatch server`"
        );
    }
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing plain HTTP on {}: the API serves plain HTTP only on a loopback address \
             (127.0.0.1 or ::1)",
            args.listen
        );
    }
    let state = api::AppState::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in {}",
            global.data_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("failed to listen on {}", args.listen))?;
        let local = listener
            .local_addr()
            .context("failed to read the listen address")?;
        tracing::info!(address = %local, "API listening");
        // The first stdout line tells scripts which port was bound (useful with port 0).
        println!("listening on http://{local}");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        api::serve(listener, state, shutdown)
            .await
            .context("API server failed")
    })?;
    tracing::info!("API stopped");
    Ok(ExitCode::SUCCESS)
}
