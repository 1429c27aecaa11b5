//! The manager's SQLite database: schema and connection settings.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    cert_sha256 TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'never_connected',
    removed INTEGER NOT NULL DEFAULT 0,
    enrolled_at INTEGER NOT NULL,
    last_seen INTEGER,
    version TEXT,
    address TEXT,
    disconnected_at INTEGER,
    disconnect_alerted INTEGER NOT NULL DEFAULT 0,
    dropped_events INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS event_streams (
    agent_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (agent_id, stream)
);
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    timestamp TEXT NOT NULL,
    agent_id TEXT,
    rule_id TEXT,
    level INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (timestamp);
CREATE INDEX IF NOT EXISTS alerts_by_agent ON alerts (agent_id, seq);
CREATE INDEX IF NOT EXISTS alerts_by_rule ON alerts (rule_id, seq);
CREATE TABLE IF NOT EXISTS file_states (
    agent_id TEXT NOT NULL,
    path TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    PRIMARY KEY (agent_id, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS output_cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
";

/// Opens (creating when missing) the database at `path` with the schema applied.
///
/// WAL mode with `synchronous = FULL` makes each commit durable on disk before
/// the manager acknowledges the batch it contains.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Opens the database for the running manager: commits never copy the WAL
/// back into the database themselves, [`spawn_checkpointer`] does.
pub fn open_without_checkpoints(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open(path)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// Copies the WAL into the database every `every` from a thread of its own,
/// so that the pipeline's store thread only appends to the WAL.
pub fn spawn_checkpointer(path: &Path, every: Duration) -> std::io::Result<()> {
    let path = path.to_path_buf();
    std::thread::Builder::new().name("iocwatch-checkpoint".into()).spawn(move || {
        let conn = match open_without_checkpoints(&path) {
            Ok(conn) => conn,
            Err(err) => {
                tracing::error!(path = %path.display(), error = %err, "failed to open the database for checkpoints");
                return;
            }
        };
        loop {
            std::thread::sleep(every);
            // PASSIVE copies what no reader still needs and never blocks writers.
            let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if let Err(err) = result {
                tracing::warn!(error = %err, "database checkpoint failed");
            }
        }
    })?;
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
