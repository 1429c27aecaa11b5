//! Web dashboard served by `iocwatch server` and `iocwatch up` on the API's port.
//!
//! [`router`] returns the pages and their JSON feeds; the caller merges it with
//! [`api::router`] so both share one listener. Pages use login sessions (user name and
//! API key), the feeds under `/iocwatch/` take the API key in `Authorization` as the
//! MISP API does.

mod error;
mod feeds;
mod login;
mod pages;
mod security;
pub mod session;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;

use session::Sessions;

/// Largest intel file accepted by the import form, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

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
    sessions: Arc<Sessions>,
    secure_cookies: bool,
    /// Largest file accepted by the import form, in bytes.
    upload_limit: usize,
    /// One permit: intel imports from the dashboard run one at a time.
    imports: Arc<tokio::sync::Semaphore>,
}

impl DashboardState {
    /// Creates the state with sessions that end after 30 minutes idle or 8 hours in all.
    pub fn new(api: api::AppState, sources: Sources) -> DashboardState {
        DashboardState {
            api,
            sources,
            sessions: Arc::new(Sessions::new(
                session::DEFAULT_IDLE,
                session::DEFAULT_ABSOLUTE,
            )),
            secure_cookies: false,
            upload_limit: MAX_UPLOAD_BYTES,
            imports: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Sets how long a session lives without requests (`idle`) and in all (`absolute`).
    /// Sessions already open are dropped.
    pub fn with_session_limits(mut self, idle: Duration, absolute: Duration) -> DashboardState {
        self.sessions = Arc::new(Sessions::new(idle, absolute));
        self
    }

    /// Marks cookies `Secure` and expects `https://` in the `Origin` of a login; set it
    /// when the listener serves HTTPS.
    pub fn with_secure_cookies(mut self, secure: bool) -> DashboardState {
        self.secure_cookies = secure;
        self
    }

    /// Sets the largest file the import form accepts, in bytes (default [`MAX_UPLOAD_BYTES`]).
    pub fn with_upload_limit(mut self, bytes: usize) -> DashboardState {
        self.upload_limit = bytes;
        self
    }

    /// Returns the folder of the intel store.
    fn intel_dir(&self) -> PathBuf {
        let db = self.api.db.path();
        db.parent().map(PathBuf::from).unwrap_or_default()
    }
}

/// Builds the dashboard's routes (pages under `/`, `/alerts`, `/agents`, ... and the
/// JSON feeds under `/iocwatch/`). The router sets no fallback, so it merges with
/// [`api::router`], which has one.
pub fn router(state: DashboardState) -> Router {
    let public = Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/static/{file}", get(security::asset));

    let writers = Router::new()
        .route(
            "/intel/import",
            get(pages::intel::import_form).post(pages::intel::import),
        )
        // The form's other fields and multipart headers need a little more than the file.
        .layer(DefaultBodyLimit::max(
            state.upload_limit.saturating_add(64 * 1024),
        ))
        .route_layer(from_fn(login::require_write));

    let pages = Router::new()
        .route("/", get(pages::overview::show))
        .route("/alerts", get(pages::alerts::list))
        .route("/alerts/{id}", get(pages::alerts::detail))
        .route("/live/alerts", get(pages::alerts::live))
        .route("/agents", get(pages::agents::list))
        .route("/intel", get(pages::intel::events))
        .route("/intel/events/{id}", get(pages::intel::event))
        .route("/intel/warninglists", get(pages::intel::warninglists))
        .route("/integrations", get(pages::integrations::list))
        .route("/logout", post(login::logout))
        .merge(writers)
        .route_layer(from_fn_with_state(state.clone(), login::require_session));

    let feeds = Router::new()
        .route("/iocwatch/alerts", get(feeds::alerts))
        .route("/iocwatch/alerts/{id}", get(feeds::alert))
        .route("/iocwatch/agents", get(feeds::agents))
        .route("/iocwatch/integrations", get(feeds::integrations))
        .route_layer(from_fn_with_state(
            state.api.clone(),
            api::auth::authenticate,
        ));

    public
        .merge(pages)
        .merge(feeds)
        .layer(from_fn(security::headers))
        .with_state(state)
}
