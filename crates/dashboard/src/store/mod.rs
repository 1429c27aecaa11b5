//! Read access to the data the dashboard shows: the manager's database (alerts, agents),
//! the intel store and the integration log.

pub mod agents;
pub mod alerts;
pub mod intel;
pub mod intlog;
pub mod overview;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Errors of the dashboard's reads.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to read database `{path}`")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to read the integration log `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid filter: {0}")]
    Filter(String),
}

impl StoreError {
    pub(crate) fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Opens `path` read-only; `None` when the database does not exist yet (a server that has
/// received no agent yet, or the API served alone).
pub fn open_read_only(path: &Path) -> Result<Option<Connection>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(StoreError::sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(StoreError::sqlite(path))?;
    Ok(Some(conn))
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_epoch(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}
