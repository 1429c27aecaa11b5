//! Active-response commands for agents that are not connected: kept in the manager's
//! database and sent when the agent connects again, unless they waited too long.
//!
//! A command names a path, not file contents, so a command sent long after its alert could
//! act on a different file at that path. `active_response.offline_max_age_secs` bounds the
//! wait.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection};
use wire::ActiveResponseCommand;

use crate::db::now_secs;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pending_commands (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    command TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_commands_by_agent ON pending_commands (agent_id, id);
";

/// Errors of the command queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("failed to open the active-response queue in `{path}`")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("active-response queue database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("invalid queued active-response command")]
    Json(#[from] serde_json::Error),
}

/// A command read back from the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedCommand {
    pub command: ActiveResponseCommand,
    /// Seconds the command waited in the queue.
    pub waited_secs: i64,
}

/// The queue of commands waiting for their agents, on a connection of its own.
pub struct CommandQueue {
    conn: Mutex<Connection>,
    max_age: Duration,
}

impl CommandQueue {
    /// Opens the queue in the manager's database at `path`. Commands older than `max_age`
    /// are dropped instead of sent.
    pub fn open(path: &Path, max_age: Duration) -> Result<CommandQueue, QueueError> {
        let open_err = |source| QueueError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(CommandQueue {
            conn: Mutex::new(conn),
            max_age,
        })
    }

    /// Stores `command` for `agent_id`.
    pub fn push(&self, agent_id: &str, command: &ActiveResponseCommand) -> Result<(), QueueError> {
        let text = serde_json::to_string(command)?;
        self.lock().execute(
            "INSERT INTO pending_commands (agent_id, queued_at, command) VALUES (?1, ?2, ?3)",
            params![agent_id, now_secs(), text],
        )?;
        Ok(())
    }

    /// Puts back commands taken for `agent_id` that could not be sent, with the age they
    /// had, so that the limit on waiting still counts from their first queueing.
    pub fn restore(&self, agent_id: &str, commands: &[QueuedCommand]) -> Result<(), QueueError> {
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for item in commands {
            let text = serde_json::to_string(&item.command)?;
            tx.execute(
                "INSERT INTO pending_commands (agent_id, queued_at, command) VALUES (?1, ?2, ?3)",
                params![agent_id, now.saturating_sub(item.waited_secs), text],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes and returns the commands waiting for `agent_id`, oldest first, leaving out
    /// (and logging) the ones older than the limit.
    pub fn take(&self, agent_id: &str) -> Result<Vec<QueuedCommand>, QueueError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let rows: Vec<(i64, String)> = {
            let mut statement = tx.prepare(
                "SELECT queued_at, command FROM pending_commands WHERE agent_id = ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([agent_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        tx.execute(
            "DELETE FROM pending_commands WHERE agent_id = ?1",
            [agent_id],
        )?;
        tx.commit()?;

        let now = now_secs();
        let mut commands = Vec::with_capacity(rows.len());
        for (queued_at, text) in rows {
            let command: ActiveResponseCommand = serde_json::from_str(&text)?;
            let waited_secs = now.saturating_sub(queued_at).max(0);
            if waited_secs as u64 > self.max_age.as_secs() {
                tracing::warn!(agent_id, path = %command.path, command_id = %command.command_id, waited_secs, "queued quarantine dropped: older than active_response.offline_max_age_secs");
                continue;
            }
            commands.push(QueuedCommand {
                command,
                waited_secs,
            });
        }
        Ok(commands)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(path: &str) -> ActiveResponseCommand {
        ActiveResponseCommand {
            command_id: format!("id-{path}"),
            action: "quarantine".into(),
            path: path.into(),
            rule_id: Some("111010".into()),
            alert_id: None,
        }
    }

    #[test]
    fn queued_commands_come_back_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            CommandQueue::open(&dir.path().join("manager.db"), Duration::from_secs(60)).unwrap();
        queue.push("001", &command("/a")).unwrap();
        queue.push("002", &command("/b")).unwrap();
        queue.push("001", &command("/c")).unwrap();

        let taken = queue.take("001").unwrap();
        let paths: Vec<&str> = taken.iter().map(|q| q.command.path.as_str()).collect();
        assert_eq!(paths, ["/a", "/c"]);
        assert!(queue.take("001").unwrap().is_empty());
        assert_eq!(queue.take("002").unwrap().len(), 1);
    }

    #[test]
    fn queue_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manager.db");
        let max_age = Duration::from_secs(60);
        CommandQueue::open(&path, max_age)
            .unwrap()
            .push("001", &command("/a"))
            .unwrap();
        let taken = CommandQueue::open(&path, max_age)
            .unwrap()
            .take("001")
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].command, command("/a"));
    }

    #[test]
    fn expired_command_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            CommandQueue::open(&dir.path().join("manager.db"), Duration::from_secs(60)).unwrap();
        queue.push("001", &command("/old")).unwrap();
        queue
            .lock()
            .execute("UPDATE pending_commands SET queued_at = queued_at - 61", [])
            .unwrap();
        queue.push("001", &command("/new")).unwrap();

        let taken = queue.take("001").unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].command.path, "/new");
    }
}
