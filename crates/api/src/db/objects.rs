//! Object rows: lookup by id or uuid, field updates, and soft and hard deletion with
//! their attributes.

use intel::store::correlation;
use misp::Object;
use rusqlite::{params, Connection, OptionalExtension};

use super::attributes::{id_or_uuid, touch_event};
use super::events::{read_full, ObjectRow};
use super::{now_secs, Db, DbError};
use crate::access::{self, Viewer};

/// Returns the (object id, event id) of object `key` (id or uuid) among the objects
/// visible to `viewer`.
pub(crate) fn visible_object_ids(
    conn: &Connection,
    key: &str,
    viewer: &Viewer,
) -> Result<(i64, i64), DbError> {
    let (condition, value) = id_or_uuid(key);
    let sql = format!(
        "SELECT o.id, o.event_id FROM objects o JOIN events e ON e.id = o.event_id
         WHERE o.{condition} AND {} ORDER BY o.id LIMIT 1",
        viewer.object_sql("o", "e")
    );
    conn.query_row(&sql, [value], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(DbError::NotFound("object"))
}

/// Returns the object's timestamp as MISP renders it: the newest of its attributes, 0
/// when it has none.
pub(crate) fn object_timestamp(conn: &Connection, object_id: i64) -> Result<i64, DbError> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(timestamp), 0) FROM attributes WHERE object_id = ?1",
        [object_id],
        |r| r.get(0),
    )?)
}

/// Marks an object and its attributes deleted, with the time of the deletion as their
/// timestamp, as MISP does.
pub(crate) fn soft_delete(conn: &Connection, object_id: i64) -> Result<(), DbError> {
    conn.execute("UPDATE objects SET deleted = 1 WHERE id = ?1", [object_id])?;
    conn.execute(
        "UPDATE attributes SET deleted = 1, timestamp = ?2 WHERE object_id = ?1",
        params![object_id, now_secs()],
    )?;
    Ok(())
}

/// Restores a soft-deleted object and its attributes, with the time of the restore as
/// their timestamp. An object not deleted is left as it is.
pub(crate) fn restore(conn: &Connection, object_id: i64) -> Result<(), DbError> {
    let changed = conn.execute(
        "UPDATE objects SET deleted = 0 WHERE id = ?1 AND deleted = 1",
        [object_id],
    )?;
    if changed > 0 {
        conn.execute(
            "UPDATE attributes SET deleted = 0, timestamp = ?2 WHERE object_id = ?1",
            params![object_id, now_secs()],
        )?;
    }
    Ok(())
}

/// Removes an object with its attributes and their sightings.
fn hard_delete(conn: &Connection, object_id: i64) -> Result<(), DbError> {
    conn.execute(
        "DELETE FROM api_sightings WHERE attribute_id IN
             (SELECT id FROM attributes WHERE object_id = ?1)",
        [object_id],
    )?;
    conn.execute("DELETE FROM attributes WHERE object_id = ?1", [object_id])?;
    conn.execute("DELETE FROM objects WHERE id = ?1", [object_id])?;
    Ok(())
}

/// Writes the object-level fields an edit gives: name, meta-category and distribution.
pub(crate) fn update_fields(
    conn: &Connection,
    object_id: i64,
    object: &Object,
) -> Result<(), DbError> {
    if !object.name.is_empty() {
        conn.execute(
            "UPDATE objects SET name = ?2 WHERE id = ?1",
            params![object_id, object.name],
        )?;
    }
    if let Some(category) = &object.meta_category {
        conn.execute(
            "UPDATE objects SET meta_category = ?2 WHERE id = ?1",
            params![object_id, category],
        )?;
    }
    let number = |key: &str| match object.extra.get(key)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    if let Some(level) = number("distribution").filter(|d| (0..=access::DIST_INHERIT).contains(d)) {
        let group =
            number("sharing_group_id").filter(|g| *g > 0 && level == access::DIST_SHARING_GROUP);
        conn.execute(
            "UPDATE objects SET distribution = ?2, sharing_group_id = ?3 WHERE id = ?1",
            params![object_id, level, group],
        )?;
    }
    Ok(())
}

impl Db {
    /// Returns the id of the event that contains object `key` (id or uuid) when the object
    /// is visible to `viewer`.
    pub fn object_event(&self, key: &str, viewer: &Viewer) -> Result<i64, DbError> {
        let conn = self.reader()?;
        Ok(visible_object_ids(&conn, key, viewer)?.1)
    }

    /// Deletes object `key` (id or uuid) with its attributes: marks them deleted, or
    /// removes the rows when `hard`. The object is looked up once, inside the write's
    /// transaction, among those visible to `viewer`, and `viewer` must be allowed to change its
    /// event. Returns the object as it was.
    pub fn delete_object(
        &self,
        key: &str,
        hard: bool,
        viewer: &Viewer,
    ) -> Result<ObjectRow, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let (object_id, event_id) = visible_object_ids(&tx, key, viewer)?;
        access::check_event_owner(&tx, viewer, event_id)?;
        let event = read_full(&tx, event_id, true, &Viewer::SITE_ADMIN)?;
        let old = event
            .objects
            .into_iter()
            .find(|o| o.id == object_id)
            .ok_or(DbError::NotFound("object"))?;
        if hard {
            hard_delete(&tx, object_id)?;
        } else {
            soft_delete(&tx, object_id)?;
        }
        correlation::correlate_event(&tx, event_id)?;
        touch_event(&tx, event_id)?;
        tx.commit()?;
        Ok(old)
    }
}
