//! `iocwatch api`: serves the MISP-compatible REST API on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct ApiArgs {
    /// Address and port to listen on; without --tls-cert only a loopback address is accepted
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
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            api::tls_config(cert, key).context("failed to load the HTTPS certificate and key")?,
        ),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing plain HTTP on {}: pass --tls-cert and --tls-key, or listen on a \
             loopback address (127.0.0.1 or ::1)",
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
    runtime.block_on(serve(args.listen, state, tls))?;
    tracing::info!("API stopped");
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    address: SocketAddr,
    state: api::AppState,
    tls: Option<std::sync::Arc<api::TlsServerConfig>>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))?;
    let local = listener
        .local_addr()
        .context("failed to read the listen address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %local, scheme, "API listening");
    // The first stdout line gives scripts the bound port (useful with port 0).
    println!("listening on {scheme}://{local}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = match tls {
        Some(tls) => api::serve_tls(listener, state, tls, shutdown).await,
        None => api::serve(listener, state, shutdown).await,
    };
    served.context("API server failed")
}
