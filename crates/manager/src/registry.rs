//! The agent registry: enrolled agents, their certificates and their status.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::db::{self, now_secs};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("agent registry database `{path}` failed")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("agent `{0}` not found")]
    NotFound(String),
    #[error("an agent named `{name}` is already enrolled as `{id}`: remove it first with `iocwatch agents remove {id}`")]
    DuplicateName { name: String, id: String },
}

/// Connection state of an agent, as Wazuh names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Disconnected,
    NeverConnected,
}

impl AgentStatus {
    fn parse(text: &str) -> AgentStatus {
        match text {
            "active" => AgentStatus::Active,
            "disconnected" => AgentStatus::Disconnected,
            _ => AgentStatus::NeverConnected,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Disconnected => "disconnected",
            AgentStatus::NeverConnected => "never_connected",
        }
    }
}

/// One row of the registry.
#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub status: AgentStatus,
    pub removed: bool,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub version: Option<String>,
    pub address: Option<String>,
    pub dropped_events: i64,
    #[serde(skip)]
    pub disconnected_at: Option<i64>,
    #[serde(skip)]
    pub disconnect_alerted: bool,
}

/// Shared handle on the registry tables; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

const AGENT_COLUMNS: &str = "id, name, status, removed, enrolled_at, last_seen, version, \
                             address, dropped_events, disconnected_at, disconnect_alerted";

impl Registry {
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        let conn = db::open_without_checkpoints(path).map_err(|source| RegistryError::Db {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Registry {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RegistryError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&conn).map_err(|source| RegistryError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// Adds an agent and returns its new id ("001", "002", ...; "000" is the manager).
    ///
    /// `prepare` receives the id and returns the client certificate's
    /// fingerprint; the row is only inserted when it succeeds.
    pub fn enroll<E>(
        &self,
        name: &str,
        prepare: impl FnOnce(&str) -> Result<String, E>,
    ) -> Result<Result<String, E>, RegistryError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let db_err = |source| RegistryError::Db {
            path: self.path.clone(),
            source,
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err)?;

        let existing: Option<String> = tx
            .query_row(
                "SELECT id FROM agents WHERE name = ?1 AND removed = 0",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        if let Some(id) = existing {
            return Err(RegistryError::DuplicateName {
                name: name.to_string(),
                id,
            });
        }
        let max: Option<i64> = tx
            .query_row("SELECT MAX(CAST(id AS INTEGER)) FROM agents", [], |r| {
                r.get(0)
            })
            .map_err(db_err)?;
        let id = format!("{:03}", max.unwrap_or(0) + 1);

        let fingerprint = match prepare(&id) {
            Ok(fingerprint) => fingerprint,
            Err(err) => return Ok(Err(err)),
        };
        tx.execute(
            "INSERT INTO agents (id, name, cert_sha256, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, fingerprint, now_secs()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Ok(id))
    }

    /// Finds the agent whose client certificate has this SHA-256 fingerprint.
    pub fn by_certificate(&self, fingerprint: &str) -> Result<Option<Agent>, RegistryError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE cert_sha256 = ?1");
        self.with(|c| c.query_row(&sql, [fingerprint], agent_from_row).optional())
    }

    pub fn get(&self, id: &str) -> Result<Option<Agent>, RegistryError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1");
        self.with(|c| c.query_row(&sql, [id], agent_from_row).optional())
    }

    /// Lists agents ordered by id, including removed ones only when `include_removed` is set.
    pub fn list(&self, include_removed: bool) -> Result<Vec<Agent>, RegistryError> {
        let filter = if include_removed {
            ""
        } else {
            "WHERE removed = 0"
        };
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents {filter} ORDER BY id");
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], agent_from_row)?;
            rows.collect()
        })
    }

    /// Marks an agent removed: its certificate is rejected from then on.
    pub fn remove(&self, id: &str) -> Result<(), RegistryError> {
        let changed = self.with(|c| {
            c.execute(
                "UPDATE agents SET removed = 1 WHERE id = ?1 AND removed = 0",
                [id],
            )
        })?;
        if changed == 0 {
            return Err(RegistryError::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// Records a new connection from `address`.
    pub fn mark_connected(&self, id: &str, address: &str) -> Result<(), RegistryError> {
        self.with(|c| {
            c.execute(
                "UPDATE agents SET status = 'active', address = ?2, last_seen = ?3, \
                 disconnected_at = NULL, disconnect_alerted = 0 WHERE id = ?1",
                params![id, address, now_secs()],
            )
        })
        .map(drop)
    }

    /// Records a keepalive: version, drop counter and last-seen time.
    ///
    /// Returns false when the agent was removed meanwhile, so that its
    /// connection can be closed.
    pub fn keepalive(&self, id: &str, version: &str, dropped: u64) -> Result<bool, RegistryError> {
        let changed = self.with(|c| {
            c.execute(
                "UPDATE agents SET status = 'active', version = ?2, dropped_events = ?3, \
                 last_seen = ?4 WHERE id = ?1 AND removed = 0",
                params![id, version, dropped as i64, now_secs()],
            )
        })?;
        Ok(changed == 1)
    }

    /// Updates the last-seen time of an agent that sent events.
    pub fn touch(&self, id: &str) -> Result<(), RegistryError> {
        self.with(|c| {
            c.execute(
                "UPDATE agents SET last_seen = ?2 WHERE id = ?1",
                params![id, now_secs()],
            )
        })
        .map(drop)
    }

    /// Marks an agent disconnected unless it already is.
    pub fn mark_disconnected(&self, id: &str) -> Result<(), RegistryError> {
        self.with(|c| {
            c.execute(
                "UPDATE agents SET status = 'disconnected', disconnected_at = ?2 \
                 WHERE id = ?1 AND status = 'active'",
                params![id, now_secs()],
            )
        })
        .map(drop)
    }

    /// Agents marked active whose last-seen time is older than `cutoff` (epoch seconds).
    pub fn silent_since(&self, cutoff: i64) -> Result<Vec<Agent>, RegistryError> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE removed = 0 AND status = 'active' \
             AND COALESCE(last_seen, 0) < ?1"
        );
        self.with(|c| {
            c.prepare(&sql)?
                .query_map([cutoff], agent_from_row)?
                .collect()
        })
    }

    /// Disconnected agents, not yet alerted on, disconnected before `cutoff`.
    pub fn due_disconnect_alerts(&self, cutoff: i64) -> Result<Vec<Agent>, RegistryError> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE removed = 0 AND status = 'disconnected' \
             AND disconnect_alerted = 0 AND COALESCE(disconnected_at, 0) <= ?1"
        );
        self.with(|c| {
            c.prepare(&sql)?
                .query_map([cutoff], agent_from_row)?
                .collect()
        })
    }

    pub fn mark_disconnect_alerted(&self, id: &str) -> Result<(), RegistryError> {
        self.with(|c| {
            c.execute(
                "UPDATE agents SET disconnect_alerted = 1 WHERE id = ?1",
                [id],
            )
        })
        .map(drop)
    }

    /// Marks every agent disconnected, used at start since no connection survives a restart.
    pub fn reset_connections(&self) -> Result<(), RegistryError> {
        self.with(|c| {
            c.execute(
                "UPDATE agents SET status = 'disconnected', disconnected_at = ?1 \
                 WHERE status = 'active'",
                [now_secs()],
            )
        })
        .map(drop)
    }
}

fn agent_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
    let status: String = row.get(2)?;
    Ok(Agent {
        id: row.get(0)?,
        name: row.get(1)?,
        status: AgentStatus::parse(&status),
        removed: row.get::<_, i64>(3)? != 0,
        enrolled_at: row.get(4)?,
        last_seen: row.get(5)?,
        version: row.get(6)?,
        address: row.get(7)?,
        dropped_events: row.get(8)?,
        disconnected_at: row.get(9)?,
        disconnect_alerted: row.get::<_, i64>(10)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enroll(registry: &Registry, name: &str, fingerprint: &str) -> String {
        let fingerprint = fingerprint.to_string();
        registry
            .enroll(name, |_| Ok::<_, ()>(fingerprint))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn removed_agents_listed_with_all() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("m.db")).unwrap();
        assert_eq!(enroll(&registry, "a", "fa"), "001");
        assert_eq!(enroll(&registry, "b", "fb"), "002");

        registry.remove("001").unwrap();
        assert_eq!(registry.list(false).unwrap().len(), 1);
        assert_eq!(registry.list(true).unwrap().len(), 2);
        assert!(registry.by_certificate("fa").unwrap().unwrap().removed);
        assert!(matches!(
            registry.remove("001"),
            Err(RegistryError::NotFound(_))
        ));

        // A removed agent's name may be enrolled again, under a new id.
        assert_eq!(enroll(&registry, "a", "fa2"), "003");
    }

    #[test]
    fn duplicate_name_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("m.db")).unwrap();
        enroll(&registry, "a", "fa");
        let err = registry
            .enroll("a", |_| Ok::<_, ()>("fz".into()))
            .unwrap_err();
        assert!(matches!(err, RegistryError::DuplicateName { .. }), "{err}");
    }

    #[test]
    fn status_moves_from_never_connected_to_disconnected() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("m.db")).unwrap();
        let id = enroll(&registry, "a", "fa");
        assert_eq!(
            registry.get(&id).unwrap().unwrap().status,
            AgentStatus::NeverConnected
        );

        registry.mark_connected(&id, "127.0.0.1:5000").unwrap();
        assert!(registry.keepalive(&id, "0.1.0", 4).unwrap());
        let agent = registry.get(&id).unwrap().unwrap();
        assert_eq!(agent.status, AgentStatus::Active);
        assert_eq!(agent.version.as_deref(), Some("0.1.0"));
        assert_eq!(agent.dropped_events, 4);

        registry.mark_disconnected(&id).unwrap();
        let agent = registry.get(&id).unwrap().unwrap();
        assert_eq!(agent.status, AgentStatus::Disconnected);
        assert_eq!(
            registry
                .due_disconnect_alerts(now_secs() + 1)
                .unwrap()
                .len(),
            1
        );
        registry.mark_disconnect_alerted(&id).unwrap();
        assert!(registry
            .due_disconnect_alerts(now_secs() + 1)
            .unwrap()
            .is_empty());
    }
}
