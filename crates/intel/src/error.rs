//! Errors of the intel store and importers; each names the file or store involved.

use std::path::PathBuf;

/// An intel store or import failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to create the data directory `{path}`")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("failed to open the intel store `{path}`")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error(
        "the intel store `{path}` has schema version {found}, newer than the {supported} this \
         build knows; use a newer iocwatch"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("no intel store in `{}`: import first with `iocwatch intel import`", .dir.display())]
    NotFound { dir: PathBuf },

    #[error(
        "the intel store `{path}` has schema version {found}, older than the {supported} this \
         build reads; upgrade it by running `iocwatch intel stats` once with write access"
    )]
    SchemaTooOld {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("intel store query failed")]
    Sqlite(#[from] rusqlite::Error),

    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("failed to import `{path}`: {error}")]
    Parse { path: PathBuf, error: misp::Error },

    #[error(
        "`{path}` is {size} bytes, over the {limit}-byte limit for one file; split it or raise \
         --max-file-bytes"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error("failed to import `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("failed to write the export")]
    Write(#[source] std::io::Error),

    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}
