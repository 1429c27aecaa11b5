//! Agents from the manager's registry with their alert counts.

use std::path::Path;

use serde::Serialize;

use super::{open_read_only, StoreError};

/// An enrolled agent.
#[derive(Clone, Debug, Serialize)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    /// `never_connected`, `active` or `disconnected`.
    pub status: String,
    pub removed: bool,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub version: Option<String>,
    pub address: Option<String>,
    /// Events the agent dropped because its spool was full.
    pub dropped_events: i64,
    /// Alerts stored for the agent.
    pub alerts: i64,
    /// Events received from the agent: the sum over its spools of the highest sequence
    /// number received. A spool numbers the events it stores from 1, so events dropped
    /// before they were spooled are not counted.
    pub events: i64,
}

/// Lists agents in id order.
pub fn list(db_path: &Path) -> Result<Vec<AgentRow>, StoreError> {
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare(
            "SELECT a.id, a.name, a.status, a.removed, a.enrolled_at, a.last_seen, a.version,
                a.address, a.dropped_events,
                (SELECT count(*) FROM alerts WHERE alerts.agent_id = a.id),
                (SELECT coalesce(sum(last_seq), 0) FROM event_streams s WHERE s.agent_id = a.id)
             FROM agents a ORDER BY a.id",
        )
        .map_err(StoreError::sqlite(db_path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(AgentRow {
                id: r.get(0)?,
                name: r.get(1)?,
                status: r.get(2)?,
                removed: r.get::<_, i64>(3)? != 0,
                enrolled_at: r.get(4)?,
                last_seen: r.get(5)?,
                version: r.get(6)?,
                address: r.get(7)?,
                dropped_events: r.get(8)?,
                alerts: r.get(9)?,
                events: r.get(10)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(db_path))?;
    Ok(rows)
}
