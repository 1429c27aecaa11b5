//! Intel reads the API's database layer does not offer: pages of events, attribute search by
//! value and the warninglists, straight from the intel store's tables.

use std::path::Path;

use serde::Serialize;

use super::{like_pattern, open_read_only, StoreError};

/// Events per page.
pub const PAGE_SIZE: u32 = 50;
/// Attributes returned by a search at most.
pub const MAX_SEARCH_ROWS: usize = 200;

/// An event as listed.
#[derive(Clone, Debug, Serialize)]
pub struct EventSummary {
    pub id: i64,
    pub info: String,
    pub date: Option<String>,
    pub threat_level_id: Option<i64>,
    pub tags: Vec<String>,
    pub attributes: i64,
}

/// An attribute found by value, with its event.
#[derive(Clone, Debug, Serialize)]
pub struct AttributeHit {
    pub event_id: i64,
    pub event_info: String,
    pub r#type: String,
    pub category: String,
    pub value: String,
    pub to_ids: bool,
}

/// A warninglist and what a match does.
#[derive(Clone, Debug, Serialize)]
pub struct WarninglistRow {
    pub name: String,
    pub description: String,
    pub r#type: String,
    /// `suppress` or `annotate`.
    pub action: String,
    pub entries: i64,
    pub matching_attributes: Vec<String>,
}

fn tags_of(text: Option<String>) -> Vec<String> {
    let values: Vec<serde_json::Value> = text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    values
        .iter()
        .filter_map(|v| v.as_str().or_else(|| v.get("name")?.as_str()))
        .map(str::to_owned)
        .collect()
}

/// Reads page `page` (from 1) of the events `viewer` sees, newest id first; the flag is true
/// when more follow.
pub fn events(
    db_path: &Path,
    page: u32,
    viewer: &api::Viewer,
) -> Result<(Vec<EventSummary>, bool), StoreError> {
    let Some(conn) = open_read_only(db_path)? else {
        return Ok((Vec::new(), false));
    };
    let offset = i64::from(page.max(1) - 1) * i64::from(PAGE_SIZE);
    // Attribute ids of event `e` run from `e << 32` to `(e << 32) | 0xFFFFFFFF`.
    let sql = format!(
        "SELECT e.id, e.info, e.date, e.threat_level_id, e.tags,
            (SELECT count(*) FROM attributes a
             WHERE a.id BETWEEN (e.id << 32) AND ((e.id << 32) | 4294967295) AND a.deleted = 0)
         FROM events e WHERE {} ORDER BY e.id DESC LIMIT {} OFFSET {offset}",
        viewer.event_sql("e"),
        PAGE_SIZE + 1
    );
    let mut stmt = conn.prepare(&sql).map_err(StoreError::sqlite(db_path))?;
    let mut rows = stmt
        .query_map([], |r| {
            Ok(EventSummary {
                id: r.get(0)?,
                info: r.get(1)?,
                date: r.get(2)?,
                threat_level_id: r.get(3)?,
                tags: tags_of(r.get(4)?),
                attributes: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(db_path))?;
    let has_next = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    Ok((rows, has_next))
}

/// Finds the attributes `viewer` sees whose value contains `text`, exact matches first.
pub fn search(
    db_path: &Path,
    text: &str,
    viewer: &api::Viewer,
) -> Result<Vec<AttributeHit>, StoreError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(Vec::new());
    };
    // NOTE: a substring search reads every attribute; exact values would use the index.
    let sql = format!(
        "SELECT a.event_id, e.info, a.type, a.category, a.value, a.to_ids
         FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE a.deleted = 0 AND a.value LIKE ?1 ESCAPE '\\' AND {}
         ORDER BY a.value = ?2 DESC, a.event_id DESC LIMIT {MAX_SEARCH_ROWS}",
        viewer.attribute_sql("a", "e")
    );
    let mut stmt = conn.prepare(&sql).map_err(StoreError::sqlite(db_path))?;
    let rows = stmt
        .query_map(rusqlite::params![like_pattern(text), text], |r| {
            Ok(AttributeHit {
                event_id: r.get(0)?,
                event_info: r.get(1)?,
                r#type: r.get(2)?,
                category: r.get(3)?,
                value: r.get(4)?,
                to_ids: r.get::<_, i64>(5)? != 0,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(db_path))?;
    Ok(rows)
}

/// Lists the warninglists by name.
pub fn warninglists(db_path: &Path) -> Result<Vec<WarninglistRow>, StoreError> {
    let Some(conn) = open_read_only(db_path)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare(
            "SELECT name, description, type, action, json_array_length(entries),
                matching_attributes FROM warninglists ORDER BY name",
        )
        .map_err(StoreError::sqlite(db_path))?;
    let rows = stmt
        .query_map([], |r| {
            let matching: String = r.get(5)?;
            Ok(WarninglistRow {
                name: r.get(0)?,
                description: r.get(1)?,
                r#type: r.get(2)?,
                action: r.get(3)?,
                entries: r.get(4)?,
                matching_attributes: serde_json::from_str(&matching).unwrap_or_default(),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(db_path))?;
    Ok(rows)
}
