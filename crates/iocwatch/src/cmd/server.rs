//! `iocwatch server`: runs the manager with a TOML configuration, with the
//! MISP-compatible API and the dashboard on the `[api]` listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use manager::analysis::intel::{DetectorLookup, Sighting, SightingWriter, StoreVersion};
use manager::analysis::Engine;
use manager::ca::CertificateAuthority;
use manager::{RunningServer, ServerConfig, ServerPaths};
use tokio::task::JoinHandle;

use super::Global;

/// How long a stop waits for open API requests to finish.
const API_STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Manager configuration file (TOML); see examples/server.toml
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: ServerArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let config = ServerConfig::load(&args.config)?;
    let data_dir = config.data_dir_or(&global.data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("iocwatch-server")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config, &data_dir))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServerConfig, data_dir: &Path) -> anyhow::Result<()> {
    let stack = Stack::start(config, data_dir).await?;
    eprintln!(
        "iocwatch: manager listening: enrollment {}, agents {}",
        stack.server.enrollment_addr, stack.server.agents_addr
    );
    if let Some(api) = &stack.api {
        eprintln!("iocwatch: API and dashboard on {}", api.url());
    }
    wait_for_stop_signal().await?;
    tracing::info!("manager stopping");
    stack.stop().await;
    Ok(())
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// The manager with its live intel index, plus the API and dashboard listener.
pub(crate) struct Stack {
    pub server: RunningServer,
    pub api: Option<ApiListener>,
    reloader: JoinHandle<()>,
}

impl Stack {
    /// Loads the rules and the intel index, then starts the manager and, when `[api]` is
    /// enabled, the API and dashboard, all on the current tokio runtime.
    pub async fn start(config: ServerConfig, data_dir: &Path) -> anyhow::Result<Stack> {
        let mut ruleset =
            rules::Ruleset::load(true, &config.rules.dirs).context("failed to load the rules")?;
        ruleset.set_alert_levels(
            config.alerts.min_level,
            rules::ruleset::DEFAULT_EMAIL_ALERT_LEVEL,
        );
        let state = api::AppState::open(data_dir).with_context(|| {
            format!("failed to open the intel store in `{}`", data_dir.display())
        })?;
        let lookup = Arc::new(
            DetectorLookup::load(data_dir)
                .with_context(|| {
                    format!("failed to load the intel index in `{}`", data_dir.display())
                })?
                .with_sightings(sighting_writer(state.db.clone()))
                .context("failed to start the sighting writer")?
                .with_store_version(store_version(state.db.clone())),
        );
        let reloader = lookup.clone().spawn_reloader(state.subscribe_changes());
        let engine = Engine::new(Arc::new(ruleset), Some(lookup), &config.manager_name);

        let server = RunningServer::start(config.clone(), data_dir, Box::new(engine)).await?;
        // Without the listener, the API's state still writes sightings.
        let api = match config.api.enabled {
            true => Some(ApiListener::start(&config, data_dir, state).await?),
            false => None,
        };
        Ok(Stack {
            server,
            api,
            reloader,
        })
    }

    /// Stops the API (letting open requests finish), the manager and the reloader.
    pub async fn stop(mut self) {
        if let Some(api) = self.api.take() {
            api.stop().await;
        }
        self.server.stop();
        self.reloader.abort();
    }
}

/// Reads the store's data version on the API's writer connection, which also writes the
/// sightings, so only other processes' writes change it.
fn store_version(db: Arc<api::Db>) -> StoreVersion {
    Box::new(move || match db.data_version() {
        Ok(version) => Some(version),
        Err(err) => {
            tracing::warn!(error = %err, "failed to read the intel store's data version");
            None
        }
    })
}

/// Stores sightings through the API's database, as MISP sightings of type 0.
fn sighting_writer(db: Arc<api::Db>) -> SightingWriter {
    Box::new(move |batch: &[Sighting]| {
        let rows: Vec<(String, api::db::NewSighting)> = batch
            .iter()
            .map(|s| {
                let new = api::db::NewSighting {
                    r#type: 0,
                    source: s.source.clone(),
                    date_sighting: Some(s.date_sighting),
                    uuid: None,
                };
                (s.attribute_id.clone(), new)
            })
            .collect();
        db.record_sightings(&rows).map_err(|err| format!("{err:#}"))
    })
}

/// The API router merged with the dashboard's, served on one listener.
pub(crate) struct ApiListener {
    pub address: SocketAddr,
    pub scheme: &'static str,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ApiListener {
    async fn start(
        config: &ServerConfig,
        data_dir: &Path,
        state: api::AppState,
    ) -> anyhow::Result<ApiListener> {
        let listen = &config.api.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("failed to listen on `{listen}` for the API; choose a free address")
            })?;
        let address = listener
            .local_addr()
            .context("failed to read the API listen address")?;
        let tls = api_tls(config, data_dir, address)?;

        let sources = dashboard_sources(config, data_dir);
        let app = api::router(state.clone()).merge(dashboard::router(
            dashboard::DashboardState::new(state, sources).with_secure_cookies(tls.is_some()),
        ));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let stopped = async move {
            let _ = stop.await;
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = match tls {
            Some(tls) => tokio::spawn(api::serve_router_tls(listener, app, tls, stopped)),
            None => tokio::spawn(api::serve_router(listener, app, stopped)),
        };
        tracing::info!(address = %address, scheme, "API and dashboard listening");
        Ok(ApiListener {
            address,
            scheme,
            shutdown,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        match tokio::time::timeout(API_STOP_TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "API server failed"),
            Ok(Err(err)) => tracing::warn!(error = %err, "API server task failed"),
            Err(_) => tracing::warn!("API requests still open after the stop timeout"),
        }
    }
}

/// Returns the files the dashboard reads: the manager's database, alerts.json and the
/// integration log.
fn dashboard_sources(config: &ServerConfig, data_dir: &Path) -> dashboard::Sources {
    let paths = ServerPaths::new(data_dir);
    dashboard::Sources {
        manager_db: paths.database(),
        alerts_json: config
            .alerts
            .json_path
            .clone()
            .unwrap_or_else(|| paths.default_alerts_json()),
        integration_log: config
            .integration_log
            .path
            .clone()
            .unwrap_or_else(|| paths.default_integration_log()),
    }
}

/// Chooses the API's TLS: the configured certificate, plain HTTP on a loopback address,
/// or else a certificate issued by the manager's CA.
fn api_tls(
    config: &ServerConfig,
    data_dir: &Path,
    address: SocketAddr,
) -> anyhow::Result<Option<Arc<api::TlsServerConfig>>> {
    if let (Some(cert), Some(key)) = (&config.api.tls_cert, &config.api.tls_key) {
        let tls = api::tls_config(cert, key)
            .context("failed to load the API certificate and key (api.tls_cert, api.tls_key)")?;
        return Ok(Some(tls));
    }
    if address.ip().is_loopback() {
        return Ok(None);
    }

    let ca_dir = ServerPaths::new(data_dir).ca_dir();
    let ca = CertificateAuthority::load_or_create(&ca_dir)?;
    let mut names = config.listen.server_names.clone();
    if !address.ip().is_unspecified() {
        names.push(address.ip().to_string());
    }
    let issued = ca
        .issue_server(&names)
        .context("failed to issue the API certificate")?;
    let tls = api::tls_config_from_pem(&issued.certificate_pem, &issued.key_pem)
        .context("failed to load the API certificate issued by the manager's CA")?;
    tracing::info!(names = ?names, "API serves HTTPS with a certificate from the manager's CA");
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        let mut config = ServerConfig::default();
        config.enrollment.secret_sha256 = Some("0".repeat(64));
        config
    }

    #[test]
    fn api_on_loopback_is_plain_http() {
        let dir = tempfile::tempdir().unwrap();
        let address: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let tls = api_tls(&config(), dir.path(), address).unwrap();
        assert!(tls.is_none());
        assert!(
            !dir.path().join("ca").exists(),
            "no CA needed for plain HTTP"
        );
    }

    #[test]
    fn api_elsewhere_gets_certificate_from_ca() {
        let dir = tempfile::tempdir().unwrap();
        let address: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let tls = api_tls(&config(), dir.path(), address).unwrap();
        assert!(tls.is_some());
        assert!(dir.path().join("ca").join("ca.pem").is_file());
    }
}
