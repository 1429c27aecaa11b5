//! Sightings of attributes, kept in the API's `api_sightings` table.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::attributes::read_visible_attribute;
use super::{now_secs, Db, DbError};
use crate::access::Viewer;

/// One sighting.
#[derive(Debug, Clone, PartialEq)]
pub struct SightingRow {
    pub id: i64,
    pub uuid: String,
    pub attribute_id: i64,
    pub attribute_uuid: String,
    pub event_id: i64,
    /// 0 sighting, 1 false positive, 2 expiration.
    pub r#type: i64,
    pub source: String,
    pub date_sighting: i64,
    /// Organisation that recorded the sighting: the user's, or the local one for the
    /// detector's sightings and those stored before organisations were recorded.
    pub org_id: i64,
    pub org_name: Option<String>,
    pub org_uuid: Option<String>,
}

const SIGHTING_COLUMNS: &str = "s.id, s.uuid, s.attribute_id, COALESCE(a.uuid, ''), s.event_id,
    s.type, s.source, s.date_sighting, s.org_id,
    (SELECT name FROM api_organisations WHERE id = s.org_id),
    (SELECT uuid FROM api_organisations WHERE id = s.org_id)";

fn from_row(r: &Row) -> rusqlite::Result<SightingRow> {
    Ok(SightingRow {
        id: r.get(0)?,
        uuid: r.get(1)?,
        attribute_id: r.get(2)?,
        attribute_uuid: r.get(3)?,
        event_id: r.get(4)?,
        r#type: r.get(5)?,
        source: r.get(6)?,
        date_sighting: r.get(7)?,
        org_id: r.get(8)?,
        org_name: r.get(9)?,
        org_uuid: r.get(10)?,
    })
}

/// Fields of a new sighting.
#[derive(Debug, Clone, Default)]
pub struct NewSighting {
    pub r#type: i64,
    pub source: String,
    pub date_sighting: Option<i64>,
    pub uuid: Option<String>,
}

fn insert(
    conn: &Connection,
    attribute_key: &str,
    new: &NewSighting,
    (user_id, org_id): (Option<i64>, i64),
    viewer: &Viewer,
) -> Result<i64, DbError> {
    let attribute = read_visible_attribute(conn, attribute_key, viewer)?;
    // As MISP, a soft-deleted attribute takes no sightings.
    if attribute.deleted {
        return Err(DbError::NotFound("attribute"));
    }
    let uuid = new
        .uuid
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    conn.execute(
        "INSERT INTO api_sightings (uuid, attribute_id, event_id, type, source, date_sighting,
             user_id, org_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            uuid.to_lowercase(),
            attribute.id,
            attribute.event_id,
            new.r#type,
            new.source,
            new.date_sighting.unwrap_or_else(now_secs),
            user_id,
            org_id,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

impl Db {
    /// Adds a sighting to each attribute in `attribute_keys` (ids or uuids), recorded by
    /// user `user_id` of the viewer's organisation. An attribute that `viewer` does not see
    /// is "not found".
    pub fn add_sightings(
        &self,
        attribute_keys: &[String],
        new: &NewSighting,
        user_id: i64,
        viewer: &Viewer,
    ) -> Result<Vec<SightingRow>, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut ids = Vec::new();
        for (n, key) in attribute_keys.iter().enumerate() {
            // A client-chosen uuid can name only one sighting.
            let new = if n == 0 {
                new.clone()
            } else {
                NewSighting {
                    uuid: None,
                    ..new.clone()
                }
            };
            ids.push(insert(
                &tx,
                key,
                &new,
                (Some(user_id), viewer.org_id),
                viewer,
            )?);
        }
        let mut rows = Vec::new();
        for id in ids {
            rows.push(read_sighting(&tx, id)?);
        }
        tx.commit()?;
        Ok(rows)
    }

    /// Adds sightings recorded by the manager, each on its own attribute (id or uuid), in
    /// one transaction, with no user and the local organisation. An attribute deleted since it matched is skipped.
    /// A sighting on an event pulled by `intel pull` is queued in the same transaction for
    /// a push to the remote it came from. Returns the number of sightings stored.
    pub fn record_sightings(&self, sightings: &[(String, NewSighting)]) -> Result<usize, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut stored = 0;
        for (key, new) in sightings {
            let recorder = (None, crate::access::DEFAULT_ORG_ID);
            match insert(&tx, key, new, recorder, &Viewer::SITE_ADMIN) {
                Ok(id) => {
                    super::outbox::enqueue(&tx, id)?;
                    stored += 1;
                }
                Err(DbError::NotFound(_)) => {
                    tracing::debug!(attribute = %key, "sighting skipped: attribute not found");
                }
                Err(err) => return Err(err),
            }
        }
        tx.commit()?;
        Ok(stored)
    }

    /// Lists sightings of one attribute (`context` = attribute) or of a whole event, all of
    /// them: the operator's view. Requests use [`Db::visible_sightings`].
    pub fn sightings(
        &self,
        event_id: Option<i64>,
        attribute_id: Option<i64>,
    ) -> Result<Vec<SightingRow>, DbError> {
        self.visible_sightings(event_id, attribute_id, &Viewer::SITE_ADMIN)
    }

    /// Lists the sightings of attributes `viewer` sees, of one attribute or event or all.
    pub fn visible_sightings(
        &self,
        event_id: Option<i64>,
        attribute_id: Option<i64>,
        viewer: &Viewer,
    ) -> Result<Vec<SightingRow>, DbError> {
        let conn = self.reader()?;
        sightings_of(&conn, event_id, attribute_id, viewer)
    }

    /// Deletes the sighting with id or uuid `key` when `viewer` sees its event and, unless a
    /// site admin, a user of its organisation added it; returns false when there is none.
    pub fn delete_sighting(&self, key: &str, viewer: &Viewer) -> Result<bool, DbError> {
        let (condition, value) = super::attributes::id_or_uuid(key);
        let own = if viewer.site_admin {
            "1".to_owned()
        } else {
            format!(
                "user_id IN (SELECT id FROM api_users WHERE org_id = {})",
                viewer.org_id
            )
        };
        let changed = self.writer().execute(
            &format!(
                "DELETE FROM api_sightings WHERE {condition} AND {own} AND EXISTS (
                     SELECT 1 FROM events e WHERE e.id = api_sightings.event_id AND {})",
                viewer.event_sql("e")
            ),
            [value],
        )?;
        Ok(changed > 0)
    }
}

pub(crate) fn sightings_of(
    conn: &Connection,
    event_id: Option<i64>,
    attribute_id: Option<i64>,
    viewer: &Viewer,
) -> Result<Vec<SightingRow>, DbError> {
    let sql = format!(
        "SELECT {SIGHTING_COLUMNS} FROM api_sightings s
             LEFT JOIN attributes a ON a.id = s.attribute_id
             JOIN events e ON e.id = s.event_id
         WHERE (?1 IS NULL OR s.event_id = ?1) AND (?2 IS NULL OR s.attribute_id = ?2)
             AND {} AND (a.id IS NULL OR {})
         ORDER BY s.id",
        viewer.event_sql("e"),
        viewer.attribute_sql("a", "e")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![event_id, attribute_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_sighting(conn: &Connection, id: i64) -> Result<SightingRow, DbError> {
    let sql = format!(
        "SELECT {SIGHTING_COLUMNS} FROM api_sightings s LEFT JOIN attributes a ON a.id = s.attribute_id
         WHERE s.id = ?1"
    );
    conn.query_row(&sql, [id], from_row)
        .optional()?
        .ok_or(DbError::NotFound("sighting"))
}
