//! Ids of the event reports and object references that the events' stored JSON keeps:
//! `api_entries` maps each one's uuid to a numeric id and to its event, so the
//! `eventReports/*` and `objectReferences/*` routes can name them by id or uuid.
//!
//! An entry gets its id when its event's stored JSON is next written (see
//! `extras::write`).
// NOTE: entries of events stored before this table have no id, so these routes do not
// find them until their event is written again. A uuid that two events repeat keeps the
// first event's id.

use rusqlite::{params, Connection, OptionalExtension};

use super::attributes::{id_or_uuid, touch_event, uuid_taken};
use super::extras::{self, Extras};
use super::{Db, DbError};
use crate::access::{self, Viewer};

/// The two kinds of entries the table maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Report,
    Reference,
}

impl EntryKind {
    fn column(self) -> &'static str {
        match self {
            EntryKind::Report => "report",
            EntryKind::Reference => "reference",
        }
    }

    fn not_found(self) -> DbError {
        match self {
            EntryKind::Report => DbError::NotFound("event report"),
            EntryKind::Reference => DbError::NotFound("object reference"),
        }
    }
}

/// One event report or object reference: its id, uuid (lower case), event and, for a
/// reference, the uuid of its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub id: i64,
    pub uuid: String,
    pub event_id: i64,
    pub object_uuid: Option<String>,
}

/// Gives an id to each entry of `extras`, the kept keys of event `event_id`, that has
/// none. A uuid already mapped keeps its id and event.
pub(crate) fn register(conn: &Connection, event_id: i64, extras: &Extras) -> Result<(), DbError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO api_entries (uuid, kind, event_id, object_uuid)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (kind, uuid, object_uuid) in extras.entries() {
        insert.execute(params![uuid, kind.column(), event_id, object_uuid])?;
    }
    Ok(())
}

fn find(conn: &Connection, kind: EntryKind, key: &str) -> Result<EntryRow, DbError> {
    let (condition, value) = id_or_uuid(key);
    let sql = format!(
        "SELECT id, uuid, event_id, object_uuid FROM api_entries WHERE {condition} AND kind = ?2"
    );
    conn.query_row(&sql, params![value, kind.column()], |r| {
        Ok(EntryRow {
            id: r.get(0)?,
            uuid: r.get(1)?,
            event_id: r.get(2)?,
            object_uuid: r.get(3)?,
        })
    })
    .optional()?
    .ok_or_else(|| kind.not_found())
}

impl Db {
    /// Returns the event report or object reference `key` (id or uuid). The caller checks
    /// that its event is visible.
    pub fn entry(&self, kind: EntryKind, key: &str) -> Result<EntryRow, DbError> {
        let conn = self.reader()?;
        find(&conn, kind, key)
    }

    /// Returns the ids of the events that contain entries of `kind`, oldest first.
    pub fn events_with_entries(&self, kind: EntryKind) -> Result<Vec<i64>, DbError> {
        let conn = self.reader()?;
        let mut statement = conn.prepare(
            "SELECT DISTINCT event_id FROM api_entries WHERE kind = ?1 ORDER BY event_id",
        )?;
        let ids = statement.query_map([kind.column()], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// Returns true when an attribute, object, event report or object reference of any
    /// event has uuid `uuid`.
    pub fn entry_uuid_in_use(&self, uuid: &str) -> Result<bool, DbError> {
        let conn = self.reader()?;
        Ok(uuid_taken(&conn, "api_entries", uuid)?
            || uuid_taken(&conn, "attributes", uuid)?
            || uuid_taken(&conn, "objects", uuid)?)
    }

    /// Removes event report or object reference `key` (id or uuid) from its event's stored
    /// JSON and moves the event's timestamp. `viewer` must be allowed to change the event.
    /// Returns the entry as it was.
    pub fn hard_delete_entry(
        &self,
        kind: EntryKind,
        key: &str,
        viewer: &Viewer,
    ) -> Result<EntryRow, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let entry = find(&tx, kind, key)?;
        access::check_event_owner(&tx, viewer, entry.event_id)?;

        let mut kept = extras::read(&tx, entry.event_id)?;
        kept.remove_entry(&entry.uuid);
        extras::write(&tx, entry.event_id, &kept)?;
        touch_event(&tx, entry.event_id)?;
        tx.execute("DELETE FROM api_entries WHERE id = ?1", [entry.id])?;
        tx.commit()?;
        Ok(entry)
    }
}
