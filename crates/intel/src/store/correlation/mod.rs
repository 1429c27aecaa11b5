//! Correlation: links between attributes of different events that share a value, as MISP
//! draws them, kept in storage linear in the number of attributes.
//!
//! MISP stores one row per pair of correlating attributes, so a value shared by n
//! attributes costs n² rows. This store keeps one row per correlating attribute and value
//! (`correlation_keys`), keyed by an integer derived from the value, and one row per value
//! that two or more attributes share (`correlation_shared`, with the value's text and its
//! attribute count). Related attributes and events are derived when they are read. A value
//! carried by one attribute, the common case of a hash list, costs one small row.
//!
//! The key of a value is a 62-bit XXH3 hash of its normalised text. Two values whose keys
//! would be equal get different keys within [`KEY_WINDOW`] of the hash, checked against the
//! text (the shared row's, or the single attribute's), so a hash collision never links
//! unrelated attributes. Which keys an attribute has is computed again from its row when it
//! is read or removed. An edit of an attribute's type or value leaves the old pair in
//! `correlation_stale` (a trigger writes it), so removing the old keys still finds them.
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
//! rows stay, so counts stay exact across deletes and a new limit takes effect at once,
//! without recorrelating.

mod read;
mod write;

use std::borrow::Cow;
use std::sync::OnceLock;

use rusqlite::{params, Connection, OptionalExtension};
use twox_hash::XxHash3_64;

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

/// Number of keys a value may take, starting at [`value_key`]. A value whose first key
/// another value already uses takes the next free one.
pub const KEY_WINDOW: i64 = 16;

/// Returns the first key a normalised value may take: its XXH3 hash shifted to 62 bits, so
/// the keys of its window stay positive.
pub fn value_key(text: &str) -> i64 {
    (XxHash3_64::oneshot(text.as_bytes()) >> 2) as i64
}

/// Counts of the correlation tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CorrelationStats {
    /// Distinct correlating values.
    pub values: u64,
    /// Rows of `correlation_keys`: one per correlating attribute and value.
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
        clear(conn)?;
        Ok(0)
    }
}

/// Empties the correlation tables.
fn clear(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM correlation_keys; DELETE FROM correlation_shared;
         DELETE FROM correlation_stale;",
    )
}

/// First and last attribute id of an event (ids are `event_id << 32 | n`).
fn event_range(event_id: i64) -> (i64, i64) {
    (event_id << 32, (event_id << 32) | 0xFFFF_FFFF)
}

/// Returns the SQL list of [`NON_CORRELATING_TYPES`], quoted: `'comment', 'http-method', ...`.
fn non_correlating_list() -> &'static str {
    static LIST: OnceLock<String> = OnceLock::new();
    LIST.get_or_init(|| {
        NON_CORRELATING_TYPES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Reads text column `i` of `row`, or "" when it is not text.
fn text<'r>(row: &'r rusqlite::Row, i: usize) -> std::borrow::Cow<'r, str> {
    match row.get_ref(i) {
        Ok(rusqlite::types::ValueRef::Text(bytes)) => String::from_utf8_lossy(bytes),
        _ => "".into(),
    }
}

/// Returns the values an attribute of type `kind` correlates by, at most two and never
/// the same twice. A composite (`|` in both type and value) correlates by each half, split
/// at the first `|`, or by its first half for [`PRIMARY_ONLY_TYPES`]. Other attributes
/// correlate by the whole value. Each part is trimmed of spaces and lower-cased (ASCII), as
/// SQLite's `trim` and `lower` do, and empty parts are dropped.
pub fn correlating_parts(kind: &str, value: &str) -> (Option<String>, Option<String>) {
    let (head, tail) = normal_parts(kind, value);
    (head.map(Cow::into_owned), tail.map(Cow::into_owned))
}

/// [`correlating_parts`], borrowing the parts from `value` when they need no change.
fn normal_parts<'v>(kind: &str, value: &'v str) -> (Option<Cow<'v, str>>, Option<Cow<'v, str>>) {
    let normal = |text: &'v str| {
        let part = text.trim_matches(' ');
        let part = if part.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(part.to_ascii_lowercase())
        } else {
            Cow::Borrowed(part)
        };
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
pub fn correlate_range(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<usize> {
    uncorrelate_range(conn, first, last)?;
    correlate_new_range(conn, first, last)
}

/// Links the attributes `first..=last` that correlate, which must have no correlation rows
/// yet (new rows). Returns the number of member rows written.
///
/// The values are grouped in memory, one transaction's worth, and each distinct value
/// costs one lookup of its key when the store contains correlation rows already. Then each
/// member costs one insert, in key order, and each value now shared by two or more
/// attributes one upsert of its count.
pub fn correlate_new_range(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<usize> {
    if !is_enabled(conn)? {
        return Ok(0);
    }
    let parts = write::collect(conn, first, last)?;
    write::link(conn, parts)
}

/// The correlating values of new attributes, gathered while their rows are written, so
/// that [`link_new`] need not read the rows back.
#[derive(Default)]
pub struct NewValues<'v>(Vec<write::Part<'v>>);

impl<'v> NewValues<'v> {
    /// Adds new attribute `id` of type `kind` with `value`, when its type correlates. The
    /// caller checks the rest of the rules (deleted, `disable_correlation`, deleted
    /// object).
    pub fn push(&mut self, id: i64, kind: &str, value: &'v str) {
        if NON_CORRELATING_TYPES.contains(&kind) {
            return;
        }
        let (head, tail) = normal_parts(kind, value);
        for text in [head, tail].into_iter().flatten() {
            self.0.push(write::Part::new(id, text));
        }
    }
}

/// Links the values gathered in `values`, whose attributes must have no correlation rows
/// yet. Returns the number of member rows written.
pub fn link_new(conn: &Connection, mut values: NewValues) -> rusqlite::Result<usize> {
    write::sort(&mut values.0);
    write::link(conn, values.0)
}

/// Removes attributes `first..=last` from the correlation, as their rows were when they
/// were linked, and updates the counts of their values.
pub fn uncorrelate_range(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    write::unlink(conn, first, last)
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

/// Drops and recomputes the whole correlation.
pub fn rebuild(conn: &Connection) -> rusqlite::Result<usize> {
    clear(conn)?;
    correlate_new_range(conn, 0, i64::MAX)
}

/// Counts values, member rows and over-correlating values under `limit`. A value of one
/// attribute has no shared row, so the values are the member rows less the extra members
/// of shared values.
pub fn stats(conn: &Connection, limit: i64) -> rusqlite::Result<CorrelationStats> {
    let members: i64 = conn.query_row("SELECT COUNT(*) FROM correlation_keys", [], |r| r.get(0))?;
    let (extra, over) = conn.query_row(
        "SELECT COALESCE(SUM(attributes - 1), 0), COALESCE(SUM(attributes > ?1), 0)
         FROM correlation_shared",
        [limit],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    Ok(CorrelationStats {
        values: (members - extra).max(0) as u64,
        members: members as u64,
        over_correlating: over as u64,
    })
}

pub use read::{
    over_correlating_ids, over_correlating_values, related_attribute_ids, related_event_ids,
};

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
