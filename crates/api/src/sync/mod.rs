//! Server-to-server sync with MISP-compatible servers, as MISP's own pull and push do:
//! compare the remote's event index (uuid and timestamp) with the local store, then move
//! whole events one by one with MISP's distribution rules applied.

pub mod distribution;
pub(crate) mod index;
mod pull;
mod push;
mod rows;

pub use index::IndexEntry;
pub use pull::{pull, PullReport};
pub use push::{push, PushReport};

use crate::remote::RemoteError;

/// Errors of a sync run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The connection failed part way, after the events before it were stored whole.
    #[error(
        "{action} interrupted after {done} of {total} events; the events done are complete, \
         rerun to move the rest"
    )]
    Interrupted {
        action: &'static str,
        done: usize,
        total: usize,
        #[source]
        source: Box<RemoteError>,
    },
    #[error("failed to read or write the local store")]
    Store(#[from] intel::Error),
    #[error("failed to read or write the sync state")]
    Db(#[from] crate::DbError),
    #[error("failed to read the local store")]
    Sqlite(#[from] rusqlite::Error),
}

/// An event that could not be moved, while the run went on with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub uuid: String,
    pub reason: String,
}

/// Key of a remote's sync state in the store, apart from the state of `intel pull`.
fn state_key(direction: &str, url: &str) -> String {
    format!("sync-{direction} {url}")
}

/// True for request errors that mean the connection or the server failed, after which
/// the next events would fail too. Other errors concern one event only.
fn is_transport(error: &RemoteError) -> bool {
    match error {
        RemoteError::Request { .. } => true,
        RemoteError::Status { status, .. } => *status == 401 || *status >= 500,
        _ => false,
    }
}
