//! Web dashboard served by `iocwatch server` and `iocwatch up` on the API's port.
//!
//! [`router`] returns the pages and their JSON feeds; the caller merges it with
//! [`api::router`] so both share one listener.

use std::path::PathBuf;

use axum::Router;

/// Where the dashboard reads the manager's data.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The manager's SQLite database (agents and stored alerts).
    pub manager_db: PathBuf,
    /// The newest alerts.json file.
    pub alerts_json: PathBuf,
    /// The integration log (one JSON line per intel lookup).
    pub integration_log: PathBuf,
}

/// Shared state of the dashboard's handlers.
#[derive(Clone)]
pub struct DashboardState {
    pub api: api::AppState,
    pub sources: Sources,
}

impl DashboardState {
    pub fn new(api: api::AppState, sources: Sources) -> DashboardState {
        DashboardState { api, sources }
    }
}

/// Builds the dashboard's routes (pages under `/`, `/alerts`, `/agents`, ... and the
/// JSON feeds under `/iocwatch/`).
pub fn router(state: DashboardState) -> Router {
    let _ = state;
    Router::new()
}
