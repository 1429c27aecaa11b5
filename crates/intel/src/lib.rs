//! Threat-intel store (SQLite), warninglists and the in-memory detection index.
//!
//! [`Store`] keeps events, attributes and warninglists in `intel.db` in the data
//! directory; [`import::import_path`] fills it from files; [`Detector`] is the index
//! that `intel lookup` and `scan` query without touching the disk.

pub mod detector;
mod error;
pub mod export;
pub mod galaxy;
pub mod import;
pub mod store;
pub mod warninglist;

pub use detector::{Detector, DetectorStats, Match};
pub use error::Error;
pub use store::Store;
pub use warninglist::{Action, WarninglistHit};
