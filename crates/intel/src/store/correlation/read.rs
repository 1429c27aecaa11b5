//! Reads the correlation: related events and attributes, and over-correlating values,
//! derived from the attribute rows and the shared values they have.

use std::sync::OnceLock;

use rusqlite::{params, Connection, OptionalExtension};
use rustc_hash::FxHashSet;

use super::{correlating_parts, event_range, non_correlating_list, text, value_key, KEY_WINDOW};

/// Returns the shared values attribute `id` (of type `kind`, value `value`) is linked by,
/// as (key, attributes carrying it). A value of one attribute is not shared, and links
/// nothing.
fn shared_keys(
    conn: &Connection,
    id: i64,
    kind: &str,
    value: &str,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut found = Vec::new();
    let (head, tail) = correlating_parts(kind, value);
    for text in [head, tail].into_iter().flatten() {
        let hash = value_key(&text);
        let shared: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT key, attributes FROM correlation_shared
                 WHERE key BETWEEN ?1 AND ?2 AND value = ?3",
            )?
            .query_row(params![hash, hash + KEY_WINDOW - 1, text], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((key, attributes)) = shared else {
            continue;
        };
        let member = conn
            .prepare_cached("SELECT 1 FROM correlation_keys WHERE key = ?1 AND attribute_id = ?2")?
            .query_row([key, id], |_| Ok(()))
            .optional()?;
        if member.is_some() {
            found.push((key, attributes));
        }
    }
    Ok(found)
}

/// Builds the query that reads the attributes `?1..=?2` of correlating types.
fn range_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT id, type, value FROM attributes
             WHERE id BETWEEN ?1 AND ?2 AND type NOT IN ({})",
            non_correlating_list()
        )
    })
}

/// Calls `each` with the id and shared values of every attribute in `first..=last`.
fn for_each_linked(
    conn: &Connection,
    first: i64,
    last: i64,
    mut each: impl FnMut(i64, Vec<(i64, i64)>),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(range_sql())?;
    let mut rows = stmt.query([first, last])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let keys = shared_keys(conn, id, &text(row, 1), &text(row, 2))?;
        if !keys.is_empty() {
            each(id, keys);
        }
    }
    Ok(())
}

/// Returns the attributes of key `key` outside `first..=last`.
fn members_outside(
    conn: &Connection,
    key: i64,
    (first, last): (i64, i64),
) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attribute_id FROM correlation_keys
         WHERE key = ?1 AND (attribute_id < ?2 OR attribute_id > ?3)",
    )?;
    let rows = stmt.query_map([key, first, last], |r| r.get(0))?;
    rows.collect()
}

/// Returns up to `max` ids of other events that share a value with event `event_id`,
/// newest id first. Over-correlating values (more than `limit` attributes) link nothing.
pub fn related_event_ids(
    conn: &Connection,
    event_id: i64,
    limit: i64,
    max: i64,
) -> rusqlite::Result<Vec<i64>> {
    let range = event_range(event_id);
    let mut keys = FxHashSet::default();
    for_each_linked(conn, range.0, range.1, |_, found| {
        keys.extend(
            found
                .into_iter()
                .filter(|(_, n)| *n <= limit)
                .map(|(k, _)| k),
        );
    })?;
    let mut events = Vec::new();
    for key in keys {
        events.extend(
            members_outside(conn, key, range)?
                .into_iter()
                .map(|a| a >> 32),
        );
    }
    Ok(newest_first(events, max))
}

/// Returns up to `max` ids of attributes of other events that share a value with attribute
/// `attribute_id`, newest first. Over-correlating values link nothing.
pub fn related_attribute_ids(
    conn: &Connection,
    attribute_id: i64,
    limit: i64,
    max: i64,
) -> rusqlite::Result<Vec<i64>> {
    let range = event_range(attribute_id >> 32);
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT type, value FROM attributes WHERE id = ?1")?
        .query_row([attribute_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((kind, value)) = row else {
        return Ok(Vec::new());
    };
    let mut related = Vec::new();
    for (key, attributes) in shared_keys(conn, attribute_id, &kind, &value)? {
        if attributes <= limit {
            related.extend(members_outside(conn, key, range)?);
        }
    }
    Ok(newest_first(related, max))
}

/// Sorts `ids` newest (largest) first without repeats and keeps the first `max`.
fn newest_first(mut ids: Vec<i64>, max: i64) -> Vec<i64> {
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(max.max(0) as usize);
    ids
}

/// Returns the ids of attributes in `first..=last` that have an over-correlating value.
pub fn over_correlating_ids(
    conn: &Connection,
    first: i64,
    last: i64,
    limit: i64,
) -> rusqlite::Result<Vec<i64>> {
    let mut ids = Vec::new();
    for_each_linked(conn, first, last, |id, found| {
        if found.iter().any(|(_, n)| *n > limit) {
            ids.push(id);
        }
    })?;
    Ok(ids)
}

/// Returns the over-correlating values of the store under `limit` with their attribute
/// counts, most shared first.
pub fn over_correlating_values(
    conn: &Connection,
    limit: i64,
    max: i64,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT value, attributes FROM correlation_shared WHERE attributes > ?1
         ORDER BY attributes DESC, value LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![limit, max], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
