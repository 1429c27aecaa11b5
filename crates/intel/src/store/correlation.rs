//! Correlation: links between attributes of different events that share a value, as MISP
//! draws them, kept in storage linear in the number of attributes.
//!
//! MISP stores one row per pair of correlating attributes, so a value shared by n
//! attributes costs n² rows. This store keeps one row per correlating attribute and value
//! (`correlation_members`), keyed by a value id (`correlation_values`, which also counts the
//! attributes), and derives related attributes and events when they are read.
//!
//! Which attributes correlate follows MISP 2.4 and 2.5 (`app/Model/Attribute.php`):
//! - the attribute is not deleted nor in a deleted object, and neither it nor its event has
//!   `disable_correlation`;
//! - its type is not in [`NON_CORRELATING_TYPES`];
//! - a composite (`filename|sha256`) correlates by each half, split at the first `|`,
//!   except the types in [`PRIMARY_ONLY_TYPES`], which correlate by their first half;
//! - an attribute never links to another attribute of its own event.
//!
//! Values are compared trimmed, with ASCII letters lower-cased, because MISP keeps
//! `value1` and `value2` in MySQL's case-insensitive `utf8_unicode_ci` collation. That
//! collation also folds accents, but this store does not.
//!
//! A value shared by more attributes than the over-correlation limit (a store setting,
//! [`DEFAULT_LIMIT`] unless set) links nothing and is reported as over-correlating. Its
//! member rows stay, so counts stay exact across deletes and a new limit takes effect at
//! once, without recorrelating.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

/// Over-correlation limit of a store where none was set, the default of MISP's
/// `MISP.correlation_limit`.
pub const DEFAULT_LIMIT: i64 = 100;

/// Key of the over-correlation limit in the `meta` table.
const LIMIT_KEY: &str = "correlation_limit";
/// Key of the switch that turns correlation off (MISP's `completely_disable_correlation`).
const DISABLED_KEY: &str = "correlation_disabled";

/// Types that never correlate: MISP's `NON_CORRELATING_TYPES` (`comment` to `anonymised`),
/// then free-form and measurement types whose values unrelated events share. MISP's `file`
/// object template, for one, disables correlation on its `text` and `size-in-bytes` fields.
pub const NON_CORRELATING_TYPES: &[&str] = &[
    "comment",
    "http-method",
    "aba-rtn",
    "gender",
    "counter",
    "integer",
    "float",
    "port",
    "nationality",
    "cortex",
    "boolean",
    "anonymised",
    "text",
    "other",
    "hex",
    "datetime",
    "cpe",
    "size-in-bytes",
    "attachment",
];

/// Composite types that correlate by their first half only (the port is not an indicator).
pub const PRIMARY_ONLY_TYPES: &[&str] = &["ip-src|port", "ip-dst|port", "hostname|port"];

/// Counts of the correlation tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CorrelationStats {
    /// Distinct correlating values.
    pub values: u64,
    /// Rows of `correlation_members`: one per correlating attribute and value.
    pub members: u64,
    /// Values shared by more attributes than the limit.
    pub over_correlating: u64,
}

/// Returns the over-correlation limit stored in `meta`, or [`DEFAULT_LIMIT`].
pub fn limit(conn: &Connection) -> rusqlite::Result<i64> {
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [LIMIT_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(stored
        .and_then(|v| v.parse().ok())
        .filter(|n: &i64| *n > 0)
        .unwrap_or(DEFAULT_LIMIT))
}

/// Stores the over-correlation limit. Values shared by more attributes stop linking.
pub fn set_limit(conn: &Connection, limit: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![LIMIT_KEY, limit.max(1).to_string()],
    )?;
    Ok(())
}

/// True unless correlation was turned off with [`set_enabled`].
pub fn is_enabled(conn: &Connection) -> rusqlite::Result<bool> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([DISABLED_KEY], |r| r.get(0))
        .optional()?;
    Ok(stored.as_deref() != Some("1"))
}

/// Turns correlation on or off. Turning it off empties the tables, and turning it on
/// again recomputes them. Returns the number of member rows written.
pub fn set_enabled(conn: &Connection, enabled: bool) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![DISABLED_KEY, if enabled { "0" } else { "1" }],
    )?;
    if enabled {
        rebuild(conn)
    } else {
        conn.execute_batch("DELETE FROM correlation_members; DELETE FROM correlation_values;")?;
        Ok(0)
    }
}

/// First and last attribute id of an event (ids are `event_id << 32 | n`).
fn event_range(event_id: i64) -> (i64, i64) {
    (event_id << 32, (event_id << 32) | 0xFFFF_FFFF)
}

/// Builds the query that reads the attributes `?1..=?2` that correlate (see the module
/// notes) with their type and value. [`correlating_parts`] then splits and normalises the
/// values.
fn collect_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let quoted = NON_CORRELATING_TYPES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT a.id, a.type, a.value FROM attributes a
             JOIN events e ON e.id = a.event_id
             LEFT JOIN objects o ON o.id = a.object_id
             WHERE a.id BETWEEN ?1 AND ?2 AND a.deleted = 0
               AND a.disable_correlation = 0 AND e.disable_correlation = 0
               AND (o.id IS NULL OR o.deleted = 0) AND a.type NOT IN ({quoted})"
        )
    })
}

/// Returns the values an attribute of type `kind` correlates by, at most two and never
/// the same twice. A composite (`|` in both type and value) correlates by each half, split
/// at the first `|`, or by its first half for [`PRIMARY_ONLY_TYPES`]. Other attributes
/// correlate by the whole value. Each part is trimmed of spaces and lower-cased (ASCII), as
/// SQLite's `trim` and `lower` do, and empty parts are dropped.
pub fn correlating_parts(kind: &str, value: &str) -> (Option<String>, Option<String>) {
    let normal = |text: &str| {
        let part = text.trim_matches(' ').to_ascii_lowercase();
        (!part.is_empty()).then_some(part)
    };
    let split = value.split_once('|').filter(|_| kind.contains('|'));
    let Some((head, tail)) = split else {
        return (normal(value), None);
    };
    let head = normal(head);
    if PRIMARY_ONLY_TYPES.contains(&kind) {
        return (head, None);
    }
    let tail = normal(tail).filter(|t| head.as_ref() != Some(t));
    (head, tail)
}

/// Recomputes the correlation of attributes `first..=last` from their rows: drops what
/// they had, then links those that correlate. Returns the number of member rows written,
/// which is 0 when correlation is turned off.
///
/// The values are grouped in memory, so each distinct value costs one upsert into
/// `correlation_values`, made in value order so the index pages it walks stay cached.
/// Each member row costs one insert, in (value id, attribute id) order, which appends for
/// new values. Memory grows with the range's values, one transaction's worth.
pub fn correlate_range(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<usize> {
    uncorrelate_range(conn, first, last)?;
    if !is_enabled(conn)? {
        return Ok(0);
    }

    // Group the attribute ids of each value.
    let mut groups: FxHashMap<String, Vec<i64>> = FxHashMap::default();
    let mut collected = 0;
    let mut collect = conn.prepare_cached(collect_sql())?;
    let mut rows = collect.query([first, last])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let text = |i| match row.get_ref(i) {
            Ok(ValueRef::Text(bytes)) => String::from_utf8_lossy(bytes),
            _ => "".into(),
        };
        let (head, tail) = correlating_parts(&text(1), &text(2));
        for part in [head, tail].into_iter().flatten() {
            groups.entry(part).or_default().push(id);
            collected += 1;
        }
    }
    drop(rows);
    let mut groups: Vec<(String, Vec<i64>)> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    // Count each value, learning its id.
    let mut upsert = conn.prepare_cached(
        "INSERT INTO correlation_values (value, attributes) VALUES (?1, ?2)
         ON CONFLICT (value) DO UPDATE SET attributes = attributes + excluded.attributes
         RETURNING id",
    )?;
    let mut members = Vec::with_capacity(collected);
    for (value, attributes) in &groups {
        let value_id: i64 =
            upsert.query_row(params![value, attributes.len() as i64], |r| r.get(0))?;
        members.extend(attributes.iter().map(|a| (value_id, *a)));
    }
    drop(groups);

    members.sort_unstable();
    let mut insert = conn.prepare_cached(
        "INSERT INTO correlation_members (value_id, attribute_id) VALUES (?1, ?2)",
    )?;
    for (value_id, attribute_id) in members {
        insert.execute([value_id, attribute_id])?;
    }
    Ok(collected)
}

/// Removes attributes `first..=last` from the correlation and drops values left with no
/// attribute.
pub fn uncorrelate_range(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS correlation_gone (
             value_id INTEGER PRIMARY KEY,
             attributes INTEGER NOT NULL
         );",
    )?;
    let gone = conn
        .prepare_cached(
            "INSERT INTO temp.correlation_gone (value_id, attributes)
             SELECT value_id, COUNT(*) FROM correlation_members
             WHERE attribute_id BETWEEN ?1 AND ?2 GROUP BY value_id",
        )?
        .execute([first, last])?;
    if gone == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE correlation_values SET attributes = correlation_values.attributes - g.attributes
         FROM temp.correlation_gone g WHERE correlation_values.id = g.value_id",
    )?
    .execute([])?;
    conn.prepare_cached(
        "DELETE FROM correlation_values WHERE attributes <= 0
             AND id IN (SELECT value_id FROM temp.correlation_gone)",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM correlation_members WHERE attribute_id BETWEEN ?1 AND ?2")?
        .execute([first, last])?;
    conn.execute("DELETE FROM temp.correlation_gone", [])?;
    Ok(())
}

/// Recomputes the correlation of every attribute of an event.
pub fn correlate_event(conn: &Connection, event_id: i64) -> rusqlite::Result<usize> {
    let (first, last) = event_range(event_id);
    correlate_range(conn, first, last)
}

/// Removes every attribute of an event from the correlation.
pub fn uncorrelate_event(conn: &Connection, event_id: i64) -> rusqlite::Result<()> {
    let (first, last) = event_range(event_id);
    uncorrelate_range(conn, first, last)
}

/// Correlates the attributes of `event_ids`, one set-based pass per run of consecutive ids
/// (the events of one import are usually a single run).
pub fn correlate_events(conn: &Connection, event_ids: &[i64]) -> rusqlite::Result<usize> {
    let mut ids = event_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut written = 0;
    let mut start = 0;
    for i in 0..ids.len() {
        let run_ends = i + 1 == ids.len() || ids[i + 1] != ids[i] + 1;
        if run_ends {
            let (first, _) = event_range(ids[start]);
            let (_, last) = event_range(ids[i]);
            written += correlate_range(conn, first, last)?;
            start = i + 1;
        }
    }
    Ok(written)
}

/// Drops and recomputes the whole correlation.
pub fn rebuild(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute_batch("DELETE FROM correlation_members; DELETE FROM correlation_values;")?;
    correlate_range(conn, 0, i64::MAX)
}

/// Counts values, member rows and over-correlating values under `limit`.
pub fn stats(conn: &Connection, limit: i64) -> rusqlite::Result<CorrelationStats> {
    let (values, over) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(attributes > ?1), 0) FROM correlation_values",
        [limit],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let members: i64 =
        conn.query_row("SELECT COUNT(*) FROM correlation_members", [], |r| r.get(0))?;
    Ok(CorrelationStats {
        values: values as u64,
        members: members as u64,
        over_correlating: over as u64,
    })
}

/// Returns up to `max` ids of other events that share a value with event `event_id`,
/// newest id first. Over-correlating values (more than `limit` attributes) link nothing.
pub fn related_event_ids(
    conn: &Connection,
    event_id: i64,
    limit: i64,
    max: i64,
) -> rusqlite::Result<Vec<i64>> {
    let (first, last) = event_range(event_id);
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT m2.attribute_id >> 32 AS event FROM correlation_members m1
         JOIN correlation_values v ON v.id = m1.value_id
         JOIN correlation_members m2 ON m2.value_id = m1.value_id
         WHERE m1.attribute_id BETWEEN ?1 AND ?2 AND v.attributes <= ?3
           AND m2.attribute_id NOT BETWEEN ?1 AND ?2
         ORDER BY event DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![first, last, limit, max], |r| r.get(0))?;
    rows.collect()
}

/// Returns up to `max` ids of attributes of other events that share a value with attribute
/// `attribute_id`, newest first. Over-correlating values link nothing.
pub fn related_attribute_ids(
    conn: &Connection,
    attribute_id: i64,
    limit: i64,
    max: i64,
) -> rusqlite::Result<Vec<i64>> {
    let (first, last) = event_range(attribute_id >> 32);
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT m2.attribute_id FROM correlation_members m1
         JOIN correlation_values v ON v.id = m1.value_id
         JOIN correlation_members m2 ON m2.value_id = m1.value_id
         WHERE m1.attribute_id = ?1 AND v.attributes <= ?2
           AND m2.attribute_id NOT BETWEEN ?3 AND ?4
         ORDER BY m2.attribute_id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![attribute_id, limit, first, last, max], |r| r.get(0))?;
    rows.collect()
}

/// Returns the ids of attributes in `first..=last` that have an over-correlating value.
pub fn over_correlating_ids(
    conn: &Connection,
    first: i64,
    last: i64,
    limit: i64,
) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT m.attribute_id FROM correlation_members m
         JOIN correlation_values v ON v.id = m.value_id
         WHERE m.attribute_id BETWEEN ?1 AND ?2 AND v.attributes > ?3 ORDER BY 1",
    )?;
    let rows = stmt.query_map(params![first, last, limit], |r| r.get(0))?;
    rows.collect()
}

/// Returns the over-correlating values of the store under `limit` with their attribute
/// counts, most shared first.
pub fn over_correlating_values(
    conn: &Connection,
    limit: i64,
    max: i64,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT value, attributes FROM correlation_values WHERE attributes > ?1
         ORDER BY attributes DESC, value LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![limit, max], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::correlating_parts;

    /// Returns the correlating parts of a value, with "" for a missing part (a returned part
    /// is never empty).
    fn parts(kind: &str, value: &str) -> (String, String) {
        let (head, tail) = correlating_parts(kind, value);
        (head.unwrap_or_default(), tail.unwrap_or_default())
    }

    fn pair(head: &str, tail: &str) -> (String, String) {
        (head.to_owned(), tail.to_owned())
    }

    #[test]
    fn plain_values_are_trimmed_and_lowercased() {
        assert_eq!(parts("domain", "  Evil.Example "), pair("evil.example", ""));
        assert_eq!(parts("domain", "   "), pair("", ""));
        // Only spaces are trimmed, as SQLite's trim() does.
        assert_eq!(parts("domain", "\tx"), pair("\tx", ""));
    }

    #[test]
    fn composites_split_at_the_first_bar() {
        assert_eq!(
            parts("filename|sha256", "A.exe|AB|cd"),
            pair("a.exe", "ab|cd")
        );
        assert_eq!(parts("filename|md5", "same|SAME"), pair("same", ""));
        assert_eq!(parts("filename|md5", "|abc"), pair("", "abc"));
        assert_eq!(parts("ip-dst|port", "192.0.2.1|443"), pair("192.0.2.1", ""));
    }

    #[test]
    fn unsplit_values_keep_their_bars() {
        assert_eq!(parts("text2", "a|b"), pair("a|b", ""));
        assert_eq!(parts("filename|md5", "no-bar"), pair("no-bar", ""));
    }
}
