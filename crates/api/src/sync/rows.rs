//! Distribution levels and creator organisations of pulled events, in the rows that the
//! access checks and the API's JSON read.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::distribution::{level, INHERIT};
use crate::access::{DEFAULT_ORG_ID, DIST_SHARING_GROUP};
use crate::Db;

/// True when the local server has a sharing group with `uuid`.
pub(super) fn sharing_group_known(db: &Db, uuid: &str) -> bool {
    let Ok(conn) = db.reader() else {
        return false;
    };
    conn.query_row(
        "SELECT 1 FROM api_sharing_groups WHERE lower(uuid) = lower(?1)",
        [uuid],
        |_| Ok(()),
    )
    .optional()
    .is_ok_and(|found| found.is_some())
}

/// Writes the (already downgraded) levels of a pulled event to its rows: the event's
/// level, owner, creator and sharing group, and the level of each attribute and object.
pub(super) fn record_levels(db: &Db, event: &Value) -> Result<(), crate::DbError> {
    let Some(uuid) = event.get("uuid").and_then(Value::as_str) else {
        return Ok(());
    };
    let mut conn = db.writer();
    let tx = conn.transaction()?;
    let Some(event_id) = tx
        .query_row(
            "SELECT id FROM events WHERE uuid = ?1 OR uuid = ?2",
            [uuid, &uuid.to_lowercase()],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    else {
        return Ok(());
    };
    let event_level = level(event.get("distribution")).unwrap_or(0);
    if let Some(creator) = creator_org_id(&tx, event)? {
        tx.execute(
            "UPDATE events SET orgc_id = ?2 WHERE id = ?1",
            params![event_id, creator],
        )?;
    }
    tx.execute(
        "UPDATE events SET distribution = ?2, org_id = ?3, sharing_group_id = ?4 WHERE id = ?1",
        params![
            event_id,
            event_level,
            DEFAULT_ORG_ID,
            sharing_group_id(&tx, event)?
        ],
    )?;
    for attribute in list(event, "Attribute") {
        record_item(&tx, "attributes", event_id, attribute)?;
    }
    for object in list(event, "Object") {
        record_item(&tx, "objects", event_id, object)?;
        for attribute in list(object, "Attribute") {
            record_item(&tx, "attributes", event_id, attribute)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Id of the event's creator organisation (`Orgc`), added as a remote organisation when
/// the store does not have it. Organisations match by uuid, then by name.
fn creator_org_id(conn: &Connection, event: &Value) -> rusqlite::Result<Option<i64>> {
    let Some(name) = event.pointer("/Orgc/name").and_then(Value::as_str) else {
        return Ok(None);
    };
    let uuid = event
        .pointer("/Orgc/uuid")
        .and_then(Value::as_str)
        .filter(|u| uuid::Uuid::parse_str(u).is_ok())
        .map(str::to_lowercase);
    let find = "SELECT id FROM api_organisations WHERE uuid = ?1 OR name = ?2
                ORDER BY uuid = ?1 DESC, id LIMIT 1";
    let lookup = uuid.clone().unwrap_or_default();
    if let Some(id) = conn
        .query_row(find, params![lookup, name.trim()], |r| r.get(0))
        .optional()?
    {
        return Ok(Some(id));
    }
    if name.trim().is_empty() {
        return Ok(None);
    }
    let uuid = uuid.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    conn.execute(
        "INSERT INTO api_organisations (uuid, name, local, created) VALUES (?1, ?2, 0, ?3)",
        params![uuid, name.trim(), crate::db::now_secs()],
    )?;
    Ok(Some(conn.last_insert_rowid()))
}

fn list<'a>(element: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    element
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Local id of the sharing group attached to `element`, when it has level 4.
fn sharing_group_id(conn: &Connection, element: &Value) -> rusqlite::Result<Option<i64>> {
    if level(element.get("distribution")) != Some(DIST_SHARING_GROUP as u8) {
        return Ok(None);
    }
    let Some(uuid) = element
        .pointer("/SharingGroup/uuid")
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    conn.query_row(
        "SELECT id FROM api_sharing_groups WHERE lower(uuid) = lower(?1)",
        [uuid],
        |r| r.get(0),
    )
    .optional()
}

fn record_item(
    conn: &Connection,
    table: &str,
    event_id: i64,
    item: &Value,
) -> rusqlite::Result<()> {
    let Some(uuid) = item.get("uuid").and_then(Value::as_str) else {
        return Ok(());
    };
    let item_level = level(item.get("distribution")).unwrap_or(INHERIT);
    conn.execute(
        &format!(
            "UPDATE {table} SET distribution = ?3, sharing_group_id = ?4
             WHERE event_id = ?1 AND lower(uuid) = ?2"
        ),
        params![
            event_id,
            uuid.to_lowercase(),
            item_level,
            sharing_group_id(conn, item)?
        ],
    )?;
    Ok(())
}
