//! Alerts from the manager's `alerts` table: filtered pages, new alerts since a sequence
//! number, and one alert with its quarantine results.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{like_pattern, open_read_only, StoreError};

/// Rule ids of the alerts the manager raises for active-response results.
pub const QUARANTINE_RULE_IDS: [&str; 2] = ["111201", "111202"];

/// Alerts per page of the alerts page.
pub const PAGE_SIZE: u32 = 50;
/// Largest `limit` a feed request may ask for.
pub const MAX_LIMIT: u32 = 500;

/// Filters shared by the alerts page, its live updates and the `/iocwatch/alerts` feed.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AlertFilter {
    /// Earliest time, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` in UTC, inclusive.
    pub from: String,
    /// Latest time in the same form, inclusive of the whole day, hour or minute given.
    pub to: String,
    /// Minimum rule level, 0 to 16; empty for any.
    pub level: String,
    pub rule_id: String,
    /// Agent id or name.
    pub agent: String,
    /// A rule group, such as `misp_alert`.
    pub group: String,
    /// Text searched anywhere in the alert JSON.
    pub q: String,
    /// Non-empty to keep only alerts with an intel match (`data.misp.event_id`).
    pub intel: String,
    /// Page number from 1.
    pub page: Option<u32>,
    /// Alerts per page (feeds only), at most [`MAX_LIMIT`].
    pub limit: Option<u32>,
}

/// An alert as listed.
#[derive(Clone, Debug, Serialize)]
pub struct AlertRow {
    pub seq: i64,
    pub id: String,
    pub timestamp: String,
    pub level: i64,
    pub rule_id: String,
    pub description: String,
    pub agent_id: String,
    pub agent_name: String,
    pub groups: Vec<String>,
    pub path: String,
    /// MISP event id of the intel match, when there is one.
    pub misp_event_id: Option<String>,
    #[serde(skip)]
    pub body: Value,
}

impl AlertRow {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<AlertRow> {
        let body_text: String = r.get(6)?;
        let body: Value = serde_json::from_str(&body_text).unwrap_or(Value::Null);
        let text = |pointer: &str| match body.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let groups = body
            .pointer("/rule/groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let misp_event_id = Some(text("/data/misp/event_id")).filter(|s| !s.is_empty());
        Ok(AlertRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            timestamp: r.get(2)?,
            agent_id: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            rule_id: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            level: r.get(5)?,
            description: text("/rule/description"),
            agent_name: text("/agent/name"),
            path: text("/syscheck/path"),
            groups,
            misp_event_id,
            body,
        })
    }
}

const COLUMNS: &str = "seq, id, timestamp, agent_id, rule_id, level, body";

/// A page of alerts, newest first.
#[derive(Debug, Default)]
pub struct AlertPage {
    pub rows: Vec<AlertRow>,
    pub page: u32,
    pub has_next: bool,
}

/// Checks a time bound: digits with `-`, `T`, `:` and `.`, at most 23 characters.
fn time_bound(name: &str, value: &str) -> Result<String, StoreError> {
    let value = value.trim().replace(' ', "T");
    let valid = value.len() <= 23
        && value.len() >= 4
        && value.starts_with(|c: char| c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | 'T' | ':' | '.'));
    if !valid || !is_real_time(&value) {
        return Err(StoreError::Filter(format!(
            "`{name}` is `{value}`; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM in UTC"
        )));
    }
    Ok(value)
}

/// True when `value` (already limited to digits, `-`, `T`, `:` and `.`) starts with a real
/// calendar date and any time after it is a real time of day.
fn is_real_time(value: &str) -> bool {
    let (date, clock) = value.split_once('T').unwrap_or((value, ""));
    let mut fields = date.split('-').map(|f| f.parse::<u16>().ok());
    let (Some(Some(year)), month, day, None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let month = month.unwrap_or(Some(1)).and_then(|m| u8::try_from(m).ok());
    let day = day.unwrap_or(Some(1)).and_then(|d| u8::try_from(d).ok());
    let real_date = match (month.and_then(|m| time::Month::try_from(m).ok()), day) {
        (Some(month), Some(day)) => {
            time::Date::from_calendar_date(i32::from(year), month, day).is_ok()
        }
        _ => false,
    };
    real_date && (clock.is_empty() || is_real_clock(clock))
}

fn is_real_clock(clock: &str) -> bool {
    let whole = clock.split_once('.').map_or(clock, |(whole, _)| whole);
    let parts: Vec<Option<u8>> = whole.split(':').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(h)] => *h < 24,
        [Some(h), Some(m)] => *h < 24 && *m < 60,
        [Some(h), Some(m), Some(s)] => *h < 24 && *m < 60 && *s < 60,
        _ => false,
    }
}

impl AlertFilter {
    /// Builds the SQL condition and its parameters.
    fn condition(&self) -> Result<(String, Vec<SqlValue>), StoreError> {
        let mut parts = vec!["1 = 1".to_owned()];
        if !self.intel.trim().is_empty() {
            parts.push("json_extract(body, '$.data.misp.event_id') IS NOT NULL".to_owned());
        }
        let mut params = Vec::new();
        let mut add = |sql: &str, value: SqlValue| {
            params.push(value);
            parts.push(sql.replace('?', &format!("?{}", params.len())));
        };
        if !self.from.trim().is_empty() {
            add("timestamp >= ?", time_bound("from", &self.from)?.into());
        }
        if !self.to.trim().is_empty() {
            let to = time_bound("to", &self.to)?;
            let length = to.len() as i64;
            add(&format!("substr(timestamp, 1, {length}) <= ?"), to.into());
        }
        if !self.level.trim().is_empty() {
            let level: i64 = self.level.trim().parse().map_err(|_| {
                StoreError::Filter(format!("`level` is `{}`; expected 0 to 16", self.level))
            })?;
            add("level >= ?", level.into());
        }
        if !self.rule_id.trim().is_empty() {
            add("rule_id = ?", self.rule_id.trim().to_owned().into());
        }
        if !self.agent.trim().is_empty() {
            add(
                "(agent_id = ? OR json_extract(body, '$.agent.name') = ?)",
                self.agent.trim().to_owned().into(),
            );
        }
        if !self.group.trim().is_empty() {
            add(
                "EXISTS (SELECT 1 FROM json_each(body, '$.rule.groups') WHERE value = ?)",
                self.group.trim().to_owned().into(),
            );
        }
        if !self.q.trim().is_empty() {
            add(
                "body LIKE ? ESCAPE '\\'",
                like_pattern(self.q.trim()).into(),
            );
        }
        Ok((parts.join(" AND "), params))
    }

    /// Returns the page size: [`PAGE_SIZE`], or the feed's `limit` up to [`MAX_LIMIT`].
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_LIMIT)
    }

    /// Encodes the set filters, without the page, as a query string for links and live updates.
    pub fn query_string(&self) -> String {
        let pairs = [
            ("from", &self.from),
            ("to", &self.to),
            ("level", &self.level),
            ("rule_id", &self.rule_id),
            ("agent", &self.agent),
            ("group", &self.group),
            ("q", &self.q),
            ("intel", &self.intel),
        ];
        let set: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        serde_urlencoded::to_string(set).unwrap_or_default()
    }
}

/// Reads one page of alerts matching `filter`, newest first.
pub fn page(db_path: &Path, filter: &AlertFilter) -> Result<AlertPage, StoreError> {
    let (condition, params) = filter.condition()?;
    let page = filter.page.unwrap_or(1).max(1);
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(AlertPage {
            page,
            ..AlertPage::default()
        });
    };
    let size = filter.page_size();
    let offset = i64::from(page - 1) * i64::from(size);
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts WHERE {condition} ORDER BY seq DESC LIMIT {} OFFSET {offset}",
        size + 1
    );
    let mut rows = query_rows(&conn, db_path, &sql, params)?;
    let has_next = rows.len() > size as usize;
    rows.truncate(size as usize);
    Ok(AlertPage {
        rows,
        page,
        has_next,
    })
}

/// Reads alerts after sequence number `after` that match `filter`, oldest first, at most 100.
pub fn since(
    db_path: &Path,
    filter: &AlertFilter,
    after: i64,
) -> Result<Vec<AlertRow>, StoreError> {
    let (condition, mut params) = filter.condition()?;
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(Vec::new());
    };
    params.push(after.into());
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts WHERE {condition} AND seq > ?{} ORDER BY seq LIMIT 100",
        params.len()
    );
    query_rows(&conn, db_path, &sql, params)
}

/// Returns the highest sequence number stored, 0 when there is none.
pub fn last_seq(db_path: &Path) -> Result<i64, StoreError> {
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(0);
    };
    conn.query_row("SELECT coalesce(max(seq), 0) FROM alerts", [], |r| r.get(0))
        .map_err(StoreError::sqlite(db_path))
}

/// Reads the alert whose id is `id`.
pub fn by_id(db_path: &Path, id: &str) -> Result<Option<AlertRow>, StoreError> {
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(None);
    };
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
        [id],
        AlertRow::from_row,
    )
    .optional()
    .map_err(StoreError::sqlite(db_path))
}

/// Reads the active-response results that followed `alert` for the same file on the same
/// agent, oldest first.
pub fn quarantine_results(db_path: &Path, alert: &AlertRow) -> Result<Vec<AlertRow>, StoreError> {
    if alert.path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts WHERE agent_id = ?1 AND rule_id IN (?2, ?3) AND seq > ?4
         AND json_extract(body, '$.data.active_response.path') = ?5 ORDER BY seq LIMIT 10"
    );
    let params: Vec<SqlValue> = vec![
        alert.agent_id.clone().into(),
        QUARANTINE_RULE_IDS[0].to_owned().into(),
        QUARANTINE_RULE_IDS[1].to_owned().into(),
        alert.seq.into(),
        alert.path.clone().into(),
    ];
    query_rows(&conn, db_path, &sql, params)
}

fn query_rows(
    conn: &Connection,
    db_path: &Path,
    sql: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<AlertRow>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(StoreError::sqlite(db_path))?;
    let rows = stmt
        .query_map(params_from_iter(params), AlertRow::from_row)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(db_path))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_are_checked() {
        assert!(time_bound("from", "2026-12-04").is_ok());
        assert_eq!(
            time_bound("from", "2026-12-04 10:00").unwrap(),
            "2026-12-04T10:00"
        );
        assert!(time_bound("from", "yesterday").is_err());
        assert!(time_bound("from", "2026-13-45").is_err());
        assert!(time_bound("to", "2026-02-30").is_err());
        assert!(time_bound("to", "2026-02-28T24:00").is_err());
        assert!(time_bound("to", "2026-02").is_ok());
        assert!(time_bound("to", "2026-02-28T23:59:59.999").is_ok());
        assert!(time_bound("from", "2026' OR 1=1").is_err());
    }

    #[test]
    fn query_string_keeps_set_filters() {
        let filter = AlertFilter {
            level: "7".into(),
            q: "a b&c".into(),
            ..AlertFilter::default()
        };
        assert_eq!(filter.query_string(), "level=7&q=a+b%26c");
    }
}
