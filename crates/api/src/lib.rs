//! MISP-compatible REST API over the intel store.
//!
//! [`router`] builds the axum router that `iocwatch api` serves on its own and that
//! `iocwatch server` mounts; [`AppState`] contains the database handles, the failed
//! authentication limiter and the change counter that signals the detector to reload.

pub mod access;
pub mod auth;
pub mod db;
mod error;
mod event_index;
mod feed_fetch;
mod handlers;
mod json;
pub mod remote;
mod search;
mod serve;
mod sighting_push;
mod stix;
mod stream;
pub mod sync;
mod taxii;

use std::path::Path;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::sync::watch;

pub use access::Viewer;
pub use auth::{Role, User};
pub use db::{Db, DbError};
pub use error::ApiError;
pub use rustls::ServerConfig as TlsServerConfig;
pub use serve::{
    serve, serve_router, serve_router_tls, serve_tls, tls_config, tls_config_from_pem, TlsError,
};

/// Largest request body accepted, in bytes (MISP JSON events of a few thousand attributes fit).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Db>,
    pub limiter: Arc<auth::FailureLimiter>,
    changes: Arc<watch::Sender<u64>>,
}

impl AppState {
    /// Opens the intel store in `data_dir` and the API's own tables in the same database.
    pub fn open(data_dir: &Path) -> Result<AppState, DbError> {
        let db = Db::open(data_dir)?;
        Ok(AppState::new(db))
    }

    /// Wraps an opened database.
    pub fn new(db: Db) -> AppState {
        let (changes, _) = watch::channel(0);
        AppState {
            db: Arc::new(db),
            limiter: Arc::new(auth::FailureLimiter::default()),
            changes: Arc::new(changes),
        }
    }

    /// Subscribes to indicator changes: the counter grows after each write through the API,
    /// so a detector can reload (an agent's next event then matches the new indicators).
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Signals that indicators changed, for writers outside the API's handlers.
    pub fn notify_change(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// Builds the API router with authentication, role checks, MISP's error shape and the
/// body size limit applied, and the TAXII 2.1 server under `/taxii2/`.
pub fn router(state: AppState) -> Router {
    handlers::routes(state.clone())
        .merge(taxii::routes(state.clone()))
        .layer(axum::middleware::from_fn(error::fill_error_url))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
