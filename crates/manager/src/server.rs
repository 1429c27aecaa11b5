//! Starting and stopping the manager: CA, listeners, pipeline, outputs and
//! the status monitor, all under one tokio runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::ca::{CaError, CertificateAuthority};
use crate::config::ServerConfig;
use crate::connections::Connections;
use crate::enrollment::{self, Enroller};
use crate::outputs::{self, syslog::Syslog, webhook::Webhook};
use crate::pipeline::{Analyze, Pipeline, PipelineConfig};
use crate::registry::{Registry, RegistryError};
use crate::secret::SecretHash;
use crate::session::{self, SessionContext};
use crate::status;
use crate::tls::{ServerTls, TlsError};

/// Files and folders of the manager below its data folder.
#[derive(Clone, Debug)]
pub struct ServerPaths {
    pub data_dir: PathBuf,
}

impl ServerPaths {
    pub fn new(data_dir: &Path) -> ServerPaths {
        ServerPaths {
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.data_dir.join("ca")
    }

    /// Returns the path of the SQLite database: agents, alerts and event-stream positions.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("manager.db")
    }

    /// JSON file with the bound listener addresses, written at every start.
    pub fn listen_file(&self) -> PathBuf {
        self.data_dir.join("listen.json")
    }

    pub fn default_alerts_json(&self) -> PathBuf {
        self.data_dir
            .join("logs")
            .join("alerts")
            .join("alerts.json")
    }

    pub fn default_integration_log(&self) -> PathBuf {
        self.data_dir.join("logs").join("integrations.json")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to create the data folder `{path}`")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the enrollment secret file `{path}`")]
    Secret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("failed to listen on `{address}`")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start the event pipeline")]
    Pipeline(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    CommandQueue(#[from] crate::ar_queue::QueueError),
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The agents' connections, with the queue of commands for agents that are not connected
/// unless `active_response.offline_max_age_secs` is 0.
fn connections(config: &ServerConfig, paths: &ServerPaths) -> Result<Connections, ServerError> {
    let max_age = config.active_response.offline_max_age_secs;
    if max_age == 0 {
        return Ok(Connections::default());
    }
    let queue =
        crate::ar_queue::CommandQueue::open(&paths.database(), Duration::from_secs(max_age))?;
    Ok(Connections::with_offline_queue(queue))
}

/// A started manager; dropping it stops the listeners.
pub struct RunningServer {
    pub enrollment_addr: SocketAddr,
    pub agents_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Starts every part of the manager on the current tokio runtime.
    pub async fn start(
        config: ServerConfig,
        data_dir: &Path,
        analyzer: Box<dyn Analyze>,
    ) -> Result<RunningServer, ServerError> {
        let paths = ServerPaths::new(data_dir);
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let secret = load_secret(&config)?;
        let ca = Arc::new(CertificateAuthority::load_or_create(&paths.ca_dir())?);
        let registry = Registry::open(&paths.database())?;
        registry.reset_connections()?;

        let server_cert = ca.issue_server(&config.listen.server_names)?;
        let tls = ServerTls::new(&ca, &server_cert)?;
        let enroll_listener = bind(&config.listen.enrollment).await?;
        let agents_listener = bind(&config.listen.agents).await?;
        let enrollment_addr = local_addr(&enroll_listener, &config.listen.enrollment)?;
        let agents_addr = local_addr(&agents_listener, &config.listen.agents)?;
        write_listen_file(&paths, enrollment_addr, agents_addr)?;

        let connections = Arc::new(connections(&config, &paths)?);
        let (forward, forward_task) = start_forwarding(&config);
        let pipeline = Pipeline::open(
            pipeline_config(&config, &paths),
            analyzer,
            connections.clone(),
            forward,
        )
        .map_err(ServerError::Pipeline)?
        .spawn()
        .map_err(|err| ServerError::Pipeline(Box::new(err)))?;

        let enroller = Arc::new(Enroller {
            ca,
            registry: registry.clone(),
            secret,
            events_port: agents_addr.port(),
        });
        let context = Arc::new(SessionContext {
            registry: registry.clone(),
            pipeline: pipeline.clone(),
            connections,
            max_frame_bytes: config.listen.max_frame_bytes,
            idle_timeout: Duration::from_secs(config.agents.disconnect_after_secs.max(1)),
        });

        let mut tasks = vec![
            tokio::spawn(enrollment::serve(
                enroll_listener,
                TlsAcceptor::from(tls.enrollment),
                enroller,
            )),
            tokio::spawn(session::serve(
                agents_listener,
                TlsAcceptor::from(tls.agents),
                context,
            )),
            tokio::spawn(status::monitor(
                registry,
                pipeline,
                config.agents.clone(),
                config.manager_name.clone(),
            )),
        ];
        tasks.extend(forward_task);
        tracing::info!(enrollment = %enrollment_addr, agents = %agents_addr, data_dir = %data_dir.display(), "manager started");
        Ok(RunningServer {
            enrollment_addr,
            agents_addr,
            tasks,
        })
    }

    /// Stops accepting connections and ends the background tasks.
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn load_secret(config: &ServerConfig) -> Result<SecretHash, ServerError> {
    if let Some(path) = &config.enrollment.secret_file {
        return SecretHash::from_file(path).map_err(|source| ServerError::Secret {
            path: path.clone(),
            source,
        });
    }
    // Validation guarantees one of the two is set and that the hex form is valid.
    let hex_digest = config
        .enrollment
        .secret_sha256
        .as_deref()
        .unwrap_or_default();
    SecretHash::from_hex(hex_digest).ok_or_else(|| ServerError::Secret {
        path: PathBuf::from("enrollment.secret_sha256"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "expected 64 hex digits"),
    })
}

fn pipeline_config(config: &ServerConfig, paths: &ServerPaths) -> PipelineConfig {
    PipelineConfig {
        db_path: paths.database(),
        alerts_path: config
            .alerts
            .json_path
            .clone()
            .unwrap_or_else(|| paths.default_alerts_json()),
        alerts_rotate_max_bytes: config.alerts.rotate_max_bytes,
        alerts_rotate_daily: config.alerts.rotate_daily,
        integration_log: config.integration_log.enabled.then(|| {
            config
                .integration_log
                .path
                .clone()
                .unwrap_or_else(|| paths.default_integration_log())
        }),
        min_level: config.alerts.min_level,
        quarantine_rule_ids: config.active_response.quarantine_rule_ids.clone(),
        quarantine_min_level: config.active_response.quarantine_min_level,
    }
}

type Forwarding = (
    Option<tokio::sync::mpsc::Sender<Arc<serde_json::Value>>>,
    Option<JoinHandle<()>>,
);

fn start_forwarding(config: &ServerConfig) -> Forwarding {
    let syslog = config
        .syslog
        .clone()
        .map(|c| Syslog::new(c, config.manager_name.clone()));
    let webhook = match config.webhook.clone().map(Webhook::start) {
        Some(Ok(webhook)) => Some(webhook),
        Some(Err(err)) => {
            tracing::error!(error = %err, "failed to start the webhook output");
            None
        }
        None => None,
    };
    if syslog.is_none() && webhook.is_none() {
        return (None, None);
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(10_000);
    (
        Some(sender),
        Some(tokio::spawn(outputs::forward(receiver, syslog, webhook))),
    )
}

async fn bind(address: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            address: address.to_string(),
            source,
        })
}

fn local_addr(listener: &TcpListener, address: &str) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        address: address.to_string(),
        source,
    })
}

fn write_listen_file(
    paths: &ServerPaths,
    enrollment: SocketAddr,
    agents: SocketAddr,
) -> Result<(), ServerError> {
    let path = paths.listen_file();
    let body =
        serde_json::json!({ "enrollment": enrollment.to_string(), "agents": agents.to_string() });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{body}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| ServerError::Write { path, source })
}
