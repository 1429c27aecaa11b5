//! Reads the fields of a matched indicator and its event from the store, on demand.
//!
//! The in-memory index keeps only digests, values and attribute ids, so a match reads its
//! attribute, object and event rows here. Matches are rare next to lookups, so the read costs
//! nothing measurable, and the index loads without touching any other column.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use super::{boxed_clusters, text, EventMeta, Indicator};
use crate::Error;

/// The attribute, its object and its event, by attribute id. An attribute that was deleted,
/// lost `to_ids` or lost its event since the index was built is not returned.
const DETAILS_SQL: &str = "SELECT a.id, a.uuid, a.type, a.category, a.value, a.tags,
        a.object_relation, o.name, a.galaxies,
        e.id, e.uuid, e.info, e.threat_level_id, e.date, e.tags, e.galaxies
    FROM attributes a
    JOIN events e ON e.id = a.event_id
    LEFT JOIN objects o ON o.id = a.object_id
    WHERE a.id = ?1 AND a.to_ids = 1 AND a.deleted = 0 AND (o.id IS NULL OR o.deleted = 0)";

/// A read-only connection to the store, shared by the threads that look up.
pub(super) struct Details {
    conn: Mutex<Connection>,
}

impl Details {
    /// Opens the database at `db_path` for reading only.
    pub(super) fn open(db_path: &Path) -> Result<Details, Error> {
        let open_err = |source| Error::Open {
            path: db_path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(db_path, flags).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        Ok(Details {
            conn: Mutex::new(conn),
        })
    }

    /// Reads the indicator stored under `attribute_id` and its event.
    pub(super) fn fetch(&self, attribute_id: i64) -> Result<Option<(EventMeta, Indicator)>, Error> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare_cached(DETAILS_SQL)?;
        let row = stmt
            .query_row([attribute_id], |r| Ok(from_row(r)))
            .optional()?;
        row.transpose()
    }
}

fn from_row(r: &Row) -> Result<(EventMeta, Indicator), Error> {
    let event_tags: Vec<String> = text(r, 14)?
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let event = EventMeta {
        id: r.get(9)?,
        uuid: text(r, 10)?.unwrap_or_default().into(),
        info: text(r, 11)?.unwrap_or_default().into(),
        threat_level_id: r.get(12)?,
        date: text(r, 13)?.map(Into::into),
        tags: event_tags.into_iter().map(Into::into).collect(),
        galaxies: boxed_clusters(text(r, 15)?),
    };
    let indicator = Indicator {
        attribute_id: r.get(0)?,
        uuid: text(r, 1)?.unwrap_or_default().into(),
        type_name: Arc::from(text(r, 2)?.unwrap_or_default()),
        category: Arc::from(text(r, 3)?.unwrap_or_default()),
        value: text(r, 4)?.unwrap_or_default().into(),
        tags: text(r, 5)?
            .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
            .filter(|t| !t.is_empty())
            .map(|t| t.into_iter().map(Into::into).collect()),
        object_relation: text(r, 6)?.map(Arc::from),
        object_name: text(r, 7)?.map(Arc::from),
        galaxies: boxed_clusters(text(r, 8)?),
    };
    Ok((event, indicator))
}
