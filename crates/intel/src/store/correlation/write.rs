//! Writes the correlation rows: collects the correlating values of new attributes, gives
//! each value its key and updates the counts, and removes attributes again.

use std::borrow::Cow;
use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension};
use rustc_hash::FxHashMap;

use super::{correlating_parts, non_correlating_list, text, value_key, KEY_WINDOW};

/// One correlating value of one attribute: the value's first key, its text and the
/// attribute id.
pub(super) struct Part<'v> {
    hash: i64,
    text: Cow<'v, str>,
    id: i64,
}

impl<'v> Part<'v> {
    /// Builds the part of attribute `id` with normalised value `text`.
    pub(super) fn new(id: i64, text: Cow<'v, str>) -> Part<'v> {
        Part {
            hash: value_key(&text),
            text,
            id,
        }
    }
}

/// Sorts `parts` by first key and text, so that equal values are neighbours.
pub(super) fn sort(parts: &mut [Part]) {
    parts.sort_unstable_by(|a, b| (a.hash, &a.text, a.id).cmp(&(b.hash, &b.text, b.id)));
}

/// Builds the query that reads the attributes `?1..=?2` that correlate (see the module
/// notes) with their type and value.
fn collect_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT a.id, a.type, a.value FROM attributes a
             JOIN events e ON e.id = a.event_id
             LEFT JOIN objects o ON o.id = a.object_id
             WHERE a.id BETWEEN ?1 AND ?2 AND a.deleted = 0
               AND a.disable_correlation = 0 AND e.disable_correlation = 0
               AND (o.id IS NULL OR o.deleted = 0) AND a.type NOT IN ({})",
            non_correlating_list()
        )
    })
}

/// Reads the correlating values of the attributes `first..=last`, split and normalised,
/// sorted by first key and text so that equal values are neighbours.
pub(super) fn collect(
    conn: &Connection,
    first: i64,
    last: i64,
) -> rusqlite::Result<Vec<Part<'static>>> {
    let mut parts = Vec::new();
    let mut stmt = conn.prepare_cached(collect_sql())?;
    let mut rows = stmt.query([first, last])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let (head, tail) = correlating_parts(&text(row, 1), &text(row, 2));
        for text in [head, tail].into_iter().flatten() {
            parts.push(Part::new(id, Cow::Owned(text)));
        }
    }
    sort(&mut parts);
    Ok(parts)
}

/// Writes the member rows of `parts` and the counts of their values; returns the number
/// of member rows written.
pub(super) fn link(conn: &Connection, parts: Vec<Part<'_>>) -> rusqlite::Result<usize> {
    let mut keys = Keys::new(conn)?;
    let mut members = Vec::with_capacity(parts.len());
    let mut shared = Vec::new();
    let mut start = 0;
    while start < parts.len() {
        let run = &parts[start..];
        let len = run
            .iter()
            .take_while(|p| p.hash == run[0].hash && p.text == run[0].text)
            .count();
        let (key, before) = keys.resolve(run[0].hash, &run[0].text)?;
        members.extend(run[..len].iter().map(|p| (key, p.id)));
        if before + len as i64 >= 2 {
            shared.push((key, start, before + len as i64));
        }
        start += len;
    }

    if !members.is_sorted() {
        members.sort_unstable();
    }
    let mut insert =
        conn.prepare_cached("INSERT INTO correlation_keys (key, attribute_id) VALUES (?1, ?2)")?;
    for (key, id) in &members {
        insert.execute([key, id])?;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO correlation_shared (key, value, attributes) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET attributes = excluded.attributes",
    )?;
    for (key, at, attributes) in shared {
        upsert.execute(rusqlite::params![key, parts[at].text, attributes])?;
    }
    Ok(members.len())
}

/// Gives values their keys: the key a value has in the store already, or a free one.
struct Keys<'c> {
    conn: &'c Connection,
    /// True when the store had no correlation row, so no value has a key yet.
    empty: bool,
    /// The last key given to a new value in this pass. Values come in order of first key,
    /// so new keys grow, and a new key is free when it is above this one.
    last_new: Option<i64>,
}

impl<'c> Keys<'c> {
    fn new(conn: &'c Connection) -> rusqlite::Result<Keys<'c>> {
        let empty = !conn.query_row("SELECT EXISTS (SELECT 1 FROM correlation_keys)", [], |r| {
            r.get::<_, bool>(0)
        })?;
        Ok(Keys {
            conn,
            empty,
            last_new: None,
        })
    }

    /// Returns the key of value `text` (first key `hash`) and how many attributes carry it
    /// in the store already.
    fn resolve(&mut self, hash: i64, text: &str) -> rusqlite::Result<(i64, i64)> {
        let mut used = Vec::new();
        if !self.empty {
            if let Some(found) = self.stored(hash, text, &mut used)? {
                return Ok(found);
            }
        }
        let above = |k: &i64| self.last_new.is_none_or(|last| *k > last);
        let free = (hash..hash + KEY_WINDOW).find(|k| !used.contains(k) && above(k));
        let Some(key) = free else {
            return Err(window_full(text));
        };
        self.last_new = Some(key);
        Ok((key, 0))
    }

    /// Finds the stored key of `text` in its window: a shared value with the same text, or
    /// a key whose one attribute has this value. Other keys of the window go to `used`.
    fn stored(
        &self,
        hash: i64,
        text: &str,
        used: &mut Vec<i64>,
    ) -> rusqlite::Result<Option<(i64, i64)>> {
        let end = hash + KEY_WINDOW - 1;
        let mut shared = self.conn.prepare_cached(
            "SELECT key, value, attributes FROM correlation_shared WHERE key BETWEEN ?1 AND ?2",
        )?;
        let mut rows = shared.query([hash, end])?;
        while let Some(row) = rows.next()? {
            let key: i64 = row.get(0)?;
            if row.get_ref(1)?.as_str()? == text {
                return Ok(Some((key, row.get(2)?)));
            }
            used.push(key);
        }
        let mut next = self.conn.prepare_cached(
            "SELECT key, attribute_id FROM correlation_keys WHERE key BETWEEN ?1 AND ?2
             ORDER BY key LIMIT 1",
        )?;
        let mut from = hash;
        while from <= end {
            let found: Option<(i64, i64)> = next
                .query_row([from, end], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((key, attribute)) = found else { break };
            if !used.contains(&key) {
                if attribute_has(self.conn, attribute, text)? {
                    return Ok(Some((key, 1)));
                }
                used.push(key);
            }
            from = key + 1;
        }
        Ok(None)
    }
}

/// True when the row of attribute `id` correlates by `text`.
fn attribute_has(conn: &Connection, id: i64, text: &str) -> rusqlite::Result<bool> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT type, value FROM attributes WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.is_some_and(|(kind, value)| {
        let (head, tail) = correlating_parts(&kind, &value);
        head.as_deref() == Some(text) || tail.as_deref() == Some(text)
    }))
}

/// Builds the error for a value whose key window is full. A window is full once it takes
/// [`KEY_WINDOW`] values whose hashes differ by less than the window.
fn window_full(text: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
        Some(format!(
            "no free correlation key for value `{text}`: {KEY_WINDOW} other values hold its \
             keys; turn correlation off and on again to recompute the keys"
        )),
    )
}

/// Builds the query that reads the values the attributes `?1..=?2` may have been linked
/// by: their rows (of correlating types), and the type and value an edit replaced.
fn linked_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT id, type, value FROM attributes
             WHERE id BETWEEN ?1 AND ?2 AND type NOT IN ({})
             UNION ALL
             SELECT attribute_id, type, value FROM correlation_stale
             WHERE attribute_id BETWEEN ?1 AND ?2",
            non_correlating_list()
        )
    })
}

/// Removes the member rows of attributes `first..=last` and updates the counts of their
/// values; a value left with one attribute loses its shared row.
pub(super) fn unlink(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    let any: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM correlation_keys)")?
        .query_row([], |r| r.get(0))?;
    if any {
        let mut removed: FxHashMap<i64, i64> = FxHashMap::default();
        let mut stmt = conn.prepare_cached(linked_sql())?;
        let mut rows = stmt.query([first, last])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let (head, tail) = correlating_parts(&text(row, 1), &text(row, 2));
            for part in [head, tail].into_iter().flatten() {
                for key in remove_member(conn, value_key(&part), id)? {
                    *removed.entry(key).or_default() += 1;
                }
            }
        }
        drop(rows);
        uncount(conn, removed)?;
    }
    conn.prepare_cached("DELETE FROM correlation_stale WHERE attribute_id BETWEEN ?1 AND ?2")?
        .execute([first, last])?;
    Ok(())
}

/// Deletes the member rows of attribute `id` in the key window from `hash`; returns their
/// keys. The first key is the usual one, so the rest of the window is read only when the
/// attribute is not there.
fn remove_member(conn: &Connection, hash: i64, id: i64) -> rusqlite::Result<Vec<i64>> {
    let deleted = conn
        .prepare_cached("DELETE FROM correlation_keys WHERE key = ?1 AND attribute_id = ?2")?
        .execute([hash, id])?;
    if deleted > 0 {
        return Ok(vec![hash]);
    }
    let mut stmt = conn.prepare_cached(
        "DELETE FROM correlation_keys WHERE key BETWEEN ?1 AND ?2 AND attribute_id = ?3
         RETURNING key",
    )?;
    let keys = stmt.query_map([hash + 1, hash + KEY_WINDOW - 1, id], |r| r.get(0))?;
    keys.collect()
}

/// Takes `removed` members (key, count) off the counts of shared values.
fn uncount(conn: &Connection, removed: FxHashMap<i64, i64>) -> rusqlite::Result<()> {
    let mut read =
        conn.prepare_cached("SELECT attributes FROM correlation_shared WHERE key = ?1")?;
    let mut update =
        conn.prepare_cached("UPDATE correlation_shared SET attributes = ?2 WHERE key = ?1")?;
    let mut delete = conn.prepare_cached("DELETE FROM correlation_shared WHERE key = ?1")?;
    for (key, count) in removed {
        let before: Option<i64> = read.query_row([key], |r| r.get(0)).optional()?;
        match before {
            Some(n) if n - count >= 2 => update.execute([key, n - count])?,
            Some(_) => delete.execute([key])?,
            None => 0,
        };
    }
    Ok(())
}
