//! Reads the indicator collection from the store one page at a time, in the order TAXII
//! pages by: date added, then row id.
//!
//! The collection contains every attribute that is not deleted, has `to_ids` set and has a
//! type with a STIX pattern, as a STIX 2.1 `indicator` built as restSearch's `stix2` output
//! builds it, plus the `identity` that creates them. Each object has one version, its
//! `modified` time (the attribute timestamp). Its date added is the later of the attribute
//! timestamp and the time its event was imported, so that an event imported today with old
//! timestamps is still after yesterday's `added_after`. The store keeps it in
//! `attributes.added`, with an index over the indicators by (added, id), so a page is one
//! index seek however large the collection.

use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;

use super::query::{Cursor, ObjectQuery, VersionFilter};
use crate::access::Viewer;
use crate::db::attributes::{ATTRIBUTE_COLUMNS, ATTRIBUTE_COLUMN_COUNT};
use crate::db::{AttributeRow, DbError};
use crate::json::LOCAL_ORG_UUID;
use crate::stix;

/// Date added and version of the organisation's identity: a fixed time, so that the
/// identity is the same object in every response and comes first in a full download.
pub const IDENTITY_ADDED: i64 = 0;

/// Date added of an attribute, in seconds since the Unix epoch.
const ADDED: &str = "a.added";

/// One object of the collection with the TAXII metadata of its only version.
#[derive(Debug, Clone)]
pub struct Entry {
    pub object: Value,
    pub id: String,
    /// Date added, in seconds since the Unix epoch.
    pub added: i64,
    /// Version (`modified`), in seconds since the Unix epoch.
    pub version: i64,
    pub cursor: Cursor,
}

/// One page of objects; `more` is true when objects follow the last one.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub more: bool,
}

pub fn identity_id() -> String {
    format!("identity--{LOCAL_ORG_UUID}")
}

fn identity_entry() -> Entry {
    Entry {
        object: stix::identity(IDENTITY_ADDED),
        id: identity_id(),
        added: IDENTITY_ADDED,
        version: IDENTITY_ADDED,
        cursor: Cursor {
            added: IDENTITY_ADDED,
            row: 0,
        },
    }
}

fn indicator_entry(row: &AttributeRow, added: i64) -> Option<Entry> {
    let object = stix::indicator(row)?;
    Some(Entry {
        id: format!("indicator--{}", row.uuid),
        object,
        added,
        version: row.timestamp.unwrap_or(0),
        cursor: Cursor { added, row: row.id },
    })
}

/// True when the identity passes the filters of `query`, paging included.
fn identity_matches(query: &ObjectQuery) -> bool {
    let start = Cursor {
        added: IDENTITY_ADDED,
        row: 0,
    };
    query.spec_version_matches
        && query.wants_type("identity")
        && (query.ids.is_empty() || query.ids.contains(&identity_id()))
        && query.version.matches(IDENTITY_ADDED)
        && query.added_after.is_none_or(|t| IDENTITY_ADDED > t.secs)
        && query
            .next
            .is_none_or(|c| (start.added, start.row) > (c.added, c.row))
}

/// SQL condition and parameters that select the attributes `query` requests, or `None` when
/// its filters exclude every indicator.
fn indicator_condition(query: &ObjectQuery) -> Option<(String, Vec<Sql>)> {
    if !query.spec_version_matches || !query.wants_type("indicator") {
        return None;
    }
    let mut sql = String::from("a.to_ids = 1 AND a.deleted = 0");
    let mut params = Vec::new();

    if !query.ids.is_empty() {
        let uuids: Vec<&str> = query
            .ids
            .iter()
            .filter_map(|id| id.strip_prefix("indicator--"))
            .collect();
        if uuids.is_empty() {
            return None;
        }
        sql.push_str(&format!(" AND a.uuid IN ({})", placeholders(uuids.len())));
        params.extend(uuids.iter().map(|u| Sql::Text((*u).to_owned())));
    }
    if let VersionFilter::At(times) = &query.version {
        let secs: Vec<i64> = times
            .iter()
            .filter(|t| t.nanos == 0)
            .map(|t| t.secs)
            .collect();
        if secs.is_empty() {
            return None;
        }
        sql.push_str(&format!(
            " AND COALESCE(a.timestamp, 0) IN ({})",
            placeholders(secs.len())
        ));
        params.extend(secs.into_iter().map(Sql::Integer));
    }
    if let Some(after) = query.added_after {
        // A whole-second date added is after `secs.nanos` exactly when it is after `secs`.
        sql.push_str(&format!(" AND {ADDED} > ?"));
        params.push(Sql::Integer(after.secs));
    }
    if let Some(cursor) = query.next {
        sql.push_str(&format!(" AND ({ADDED}, a.id) > (?, ?)"));
        params.push(Sql::Integer(cursor.added));
        params.push(Sql::Integer(cursor.row));
    }
    Some((sql, params))
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Reads at most `limit` matching attribute rows after `after`, with their date added.
fn read_rows(
    conn: &Connection,
    (condition, params): (&str, &[Sql]),
    viewer: &Viewer,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<(AttributeRow, i64)>, DbError> {
    let mut params = params.to_vec();
    let mut sql = format!(
        "SELECT {ATTRIBUTE_COLUMNS}, {ADDED}
         FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE {condition} AND {}",
        viewer.attribute_sql("a", "e")
    );
    if let Some(cursor) = after {
        sql.push_str(&format!(" AND ({ADDED}, a.id) > (?, ?)"));
        params.push(Sql::Integer(cursor.added));
        params.push(Sql::Integer(cursor.row));
    }
    sql.push_str(&format!(" ORDER BY {ADDED}, a.id LIMIT {limit}"));

    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params.iter()), |r| {
        Ok((
            AttributeRow::from_row(r)?,
            r.get::<_, i64>(ATTRIBUTE_COLUMN_COUNT)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reads the page of objects that `query` requests, of the indicators `viewer` sees.
pub fn read_page(conn: &Connection, query: &ObjectQuery, viewer: &Viewer) -> Result<Page, DbError> {
    let size = query.page_size();
    let mut entries = Vec::with_capacity(size + 1);
    if identity_matches(query) {
        entries.push(identity_entry());
    }

    // One row more than the page is read to learn whether more follow. Rows whose type has
    // no STIX pattern are skipped, so reading repeats until the page is full or rows run out.
    if let Some((condition, params)) = indicator_condition(query) {
        let mut after = None;
        while entries.len() <= size {
            let requested = size + 1 - entries.len();
            let rows = read_rows(conn, (&condition, &params), viewer, after, requested)?;
            let exhausted = rows.len() < requested;
            for (row, added) in &rows {
                after = Some(Cursor {
                    added: *added,
                    row: row.id,
                });
                entries.extend(indicator_entry(row, *added));
            }
            if exhausted {
                break;
            }
        }
    }

    let more = entries.len() > size;
    entries.truncate(size);
    Ok(Page { entries, more })
}

/// Reads the object with STIX id `id`, whatever its version, or `None` when the collection
/// has no such object or `viewer` does not see it.
pub fn read_object(conn: &Connection, id: &str, viewer: &Viewer) -> Result<Option<Entry>, DbError> {
    let id = id.to_ascii_lowercase();
    if id == identity_id() {
        return Ok(Some(identity_entry()));
    }
    let Some(uuid) = id.strip_prefix("indicator--") else {
        return Ok(None);
    };
    let condition = "a.to_ids = 1 AND a.deleted = 0 AND a.uuid = ?";
    let uuid = [Sql::Text(uuid.to_owned())];
    let rows = read_rows(conn, (condition, &uuid), viewer, None, 1)?;
    Ok(rows
        .first()
        .and_then(|(row, added)| indicator_entry(row, *added)))
}
