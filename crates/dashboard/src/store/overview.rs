//! The overview's figures: alerts per hour, counts by level, top rules and agents, and the
//! latest intel matches.

use std::path::Path;

use rusqlite::Connection;

use super::alerts::AlertRow;
use super::{open_read_only, StoreError};

/// Hours shown in the alerts-over-time chart.
pub const CHART_HOURS: usize = 24;

/// Figures of the overview page.
#[derive(Debug, Default)]
pub struct Overview {
    pub total: i64,
    /// `(hour as YYYY-MM-DDTHH, alerts)` for the last [`CHART_HOURS`] hours, oldest first.
    pub per_hour: Vec<(String, i64)>,
    /// `(level, alerts)`, highest level first.
    pub by_level: Vec<(i64, i64)>,
    /// `(rule id, description, alerts)`, most alerts first.
    pub top_rules: Vec<(String, String, i64)>,
    /// `(agent id, agent name, alerts)`, most alerts first.
    pub top_agents: Vec<(String, String, i64)>,
    pub latest_matches: Vec<AlertRow>,
    pub last_seq: i64,
}

/// Reads the overview's figures; `now` is Unix seconds, the end of the chart.
pub fn read(db_path: &Path, now: i64) -> Result<Overview, StoreError> {
    let hours = hour_keys(now);
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(Overview {
            per_hour: hours.into_iter().map(|h| (h, 0)).collect(),
            ..Overview::default()
        });
    };
    let err = StoreError::sqlite;
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let total = one("SELECT count(*) FROM alerts").map_err(err(db_path))?;
    let last_seq = one("SELECT coalesce(max(seq), 0) FROM alerts").map_err(err(db_path))?;
    let per_hour = per_hour(&conn, &hours).map_err(err(db_path))?;
    let by_level = pairs(
        &conn,
        "SELECT level, count(*) FROM alerts GROUP BY level ORDER BY level DESC",
    )
    .map_err(err(db_path))?;
    let top_rules = triples(
        &conn,
        "SELECT coalesce(rule_id, ''), json_extract(body, '$.rule.description'), count(*) AS n
         FROM alerts GROUP BY rule_id ORDER BY n DESC, rule_id LIMIT 10",
    )
    .map_err(err(db_path))?;
    let top_agents = triples(
        &conn,
        "SELECT coalesce(agent_id, ''), json_extract(body, '$.agent.name'), count(*) AS n
         FROM alerts GROUP BY agent_id ORDER BY n DESC, agent_id LIMIT 10",
    )
    .map_err(err(db_path))?;
    // NOTE: this scans alerts newest first until it finds ten matches, so a large table
    // with few matches is read whole.
    let latest_matches = super::alerts::page(
        db_path,
        &super::alerts::AlertFilter {
            intel: "1".into(),
            limit: Some(10),
            ..Default::default()
        },
    )?
    .rows;
    Ok(Overview {
        total,
        per_hour,
        by_level,
        top_rules,
        top_agents,
        latest_matches,
        last_seq,
    })
}

/// Returns the keys `YYYY-MM-DDTHH` of the last [`CHART_HOURS`] hours up to `now`, oldest first.
fn hour_keys(now: i64) -> Vec<String> {
    (0..CHART_HOURS as i64)
        .rev()
        .filter_map(|back| time::OffsetDateTime::from_unix_timestamp(now - back * 3600).ok())
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour()
            )
        })
        .collect()
}

fn per_hour(conn: &Connection, hours: &[String]) -> rusqlite::Result<Vec<(String, i64)>> {
    let first = hours.first().cloned().unwrap_or_default();
    let mut stmt = conn.prepare(
        "SELECT substr(timestamp, 1, 13) AS hour, count(*) FROM alerts
         WHERE timestamp >= ?1 GROUP BY hour",
    )?;
    let counts: std::collections::HashMap<String, i64> = stmt
        .query_map([first], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(hours
        .iter()
        .map(|h| (h.clone(), counts.get(h).copied().unwrap_or(0)))
        .collect())
}

fn pairs(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn triples(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            r.get(2)?,
        ))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_keys_end_at_now() {
        // 2023-11-14T22:13:20Z
        let keys = hour_keys(1_700_000_000);
        assert_eq!(keys.len(), CHART_HOURS);
        assert_eq!(keys.last().unwrap(), "2023-11-14T22");
        assert_eq!(keys.first().unwrap(), "2023-11-13T23");
    }
}
