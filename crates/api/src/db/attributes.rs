//! Attribute rows: reading, inserting, changing and deleting single attributes.

use intel::galaxy::GalaxyCluster;
use intel::store::correlation;
use misp::Attribute;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_secs, row_id_range, Db, DbError};
use crate::access::{self, Viewer};

/// Columns read into an [`AttributeRow`], in order, for a query over `attributes a`.
pub const ATTRIBUTE_COLUMNS: &str = "a.id, a.event_id, a.object_id, a.uuid, a.type, a.category,
    a.value, a.to_ids, a.deleted, a.object_relation, a.comment, a.timestamp, a.tags,
    a.disable_correlation, a.distribution, a.sharing_group_id, a.galaxies";

/// Number of columns in [`ATTRIBUTE_COLUMNS`], which is also the index of a query's next
/// column.
pub const ATTRIBUTE_COLUMN_COUNT: usize = 17;

/// One stored attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeRow {
    pub id: i64,
    pub event_id: i64,
    pub object_id: Option<i64>,
    pub uuid: String,
    pub r#type: String,
    pub category: String,
    pub value: String,
    pub to_ids: bool,
    pub deleted: bool,
    pub object_relation: Option<String>,
    pub comment: Option<String>,
    pub timestamp: Option<i64>,
    pub tags: Vec<String>,
    pub disable_correlation: bool,
    /// MISP distribution level, 0 to 5 (see `access.rs`).
    pub distribution: i64,
    pub sharing_group_id: Option<i64>,
    /// Galaxy clusters of the attribute: those stored with it, then those its tags name.
    pub galaxies: Vec<GalaxyCluster>,
}

impl AttributeRow {
    /// Reads a row selected with [`ATTRIBUTE_COLUMNS`].
    pub fn from_row(r: &Row) -> rusqlite::Result<AttributeRow> {
        let tags: Vec<String> = r
            .get::<_, Option<String>>(12)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let mut galaxies = galaxies_column(r.get::<_, Option<String>>(16)?.as_deref());
        intel::galaxy::add_tag_clusters(&mut galaxies, tags.iter().map(String::as_str));
        Ok(AttributeRow {
            id: r.get(0)?,
            event_id: r.get(1)?,
            object_id: r.get(2)?,
            uuid: r.get(3)?,
            r#type: r.get(4)?,
            category: r.get(5)?,
            value: r.get(6)?,
            to_ids: r.get(7)?,
            deleted: r.get(8)?,
            object_relation: r.get(9)?,
            comment: r.get(10)?,
            timestamp: r.get(11)?,
            tags,
            disable_correlation: r.get(13)?,
            distribution: r.get(14)?,
            sharing_group_id: r.get(15)?,
            galaxies,
        })
    }
}

/// Reads a `galaxies` column (compact JSON clusters). NULL or invalid JSON gives no
/// clusters.
pub(crate) fn galaxies_column(text: Option<&str>) -> Vec<GalaxyCluster> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// Returns the SQL condition and parameter that select a row by numeric id or by uuid.
pub(crate) fn id_or_uuid(key: &str) -> (&'static str, rusqlite::types::Value) {
    match key.parse::<i64>() {
        Ok(id) => ("id = ?1", rusqlite::types::Value::Integer(id)),
        Err(_) => (
            "uuid = ?1",
            rusqlite::types::Value::Text(key.to_lowercase()),
        ),
    }
}

pub(crate) fn tags_json(tags: &[String]) -> Option<String> {
    if tags.is_empty() {
        None
    } else {
        serde_json::to_string(tags).ok()
    }
}

/// Inserts `a` (already validated) into event `event_id` and returns its id.
pub(crate) fn insert_attribute(
    conn: &Connection,
    event_id: i64,
    object_id: Option<i64>,
    a: &Attribute,
) -> Result<i64, DbError> {
    let (first, last) = row_id_range(event_id);
    let max: Option<i64> = conn.query_row(
        "SELECT MAX(id) FROM attributes WHERE id BETWEEN ?1 AND ?2",
        [first, last],
        |r| r.get(0),
    )?;
    let id = max.unwrap_or(first) + 1;
    if id > last {
        return Err(DbError::Conflict(format!(
            "event {event_id} already has the maximum number of attributes (2^32 - 1)"
        )));
    }
    let tags: Vec<String> = a.tags.iter().map(|t| t.name.clone()).collect();
    let distribution = attribute_distribution(a);
    let uuid = match &a.uuid {
        Some(given) => {
            if uuid_taken(conn, "attributes", given)? {
                return Err(DbError::uuid_in_use("Attribute", given));
            }
            given.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    conn.execute(
        "INSERT INTO attributes (id, event_id, object_id, uuid, type, category, value, to_ids,
             deleted, object_relation, comment, timestamp, tags, disable_correlation, galaxies,
             distribution, sharing_group_id, added)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             MAX(?12, COALESCE((SELECT imported_at FROM events WHERE id = ?2), 0)))",
        params![
            id,
            event_id,
            object_id,
            uuid.to_lowercase(),
            a.r#type,
            a.category.as_deref().unwrap_or_default(),
            a.value,
            a.to_ids.unwrap_or(false),
            a.deleted,
            a.object_relation,
            a.comment.as_deref().unwrap_or_default(),
            a.timestamp.unwrap_or_else(now_secs),
            tags_json(&tags),
            a.disable_correlation.unwrap_or(false),
            intel::galaxy::to_column(&intel::galaxy::clusters_of(&a.galaxies)),
            distribution.0,
            distribution.1,
        ],
    )?;
    Ok(id)
}

/// Returns true when a row of `table` (`attributes` or `objects`), in any event, has
/// uuid `uuid`. MISP keeps attribute and object uuids unique across the store.
// NOTE: the uniqueness is checked here, on every insert of the API, and not by a unique
// index, because the intel store's bulk imports write rows with an empty uuid and
// feeds may repeat a uuid across their events.
pub(crate) fn uuid_taken(conn: &Connection, table: &str, uuid: &str) -> Result<bool, DbError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT 1 FROM {table} WHERE uuid IN (?1, ?2) LIMIT 1"
        ))?
        .query_row(params![uuid.to_lowercase(), uuid], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

/// Checks MISP's rule that an event contains one attribute per value, type and category,
/// among those not deleted and not in an object. `except` is the attribute being changed.
pub(crate) fn check_similar(
    conn: &Connection,
    event_id: i64,
    a: &Attribute,
    except: Option<i64>,
    position: usize,
) -> Result<(), DbError> {
    if a.deleted {
        return Ok(());
    }
    let (first, last) = row_id_range(event_id);
    let found = conn
        .prepare_cached(
            "SELECT 1 FROM attributes WHERE id BETWEEN ?1 AND ?2 AND value = ?3 AND type = ?4
                 AND category = ?5 AND deleted = 0 AND object_id IS NULL AND id != ?6
             LIMIT 1",
        )?
        .query_row(
            params![
                first,
                last,
                a.value,
                a.r#type,
                a.category.as_deref().unwrap_or_default(),
                except.unwrap_or(0),
            ],
            |_| Ok(()),
        )
        .optional()?;
    match found {
        Some(()) => Err(DbError::SimilarAttribute(position)),
        None => Ok(()),
    }
}

/// Returns the distribution and sharing group an attribute requests: MISP's default
/// (inherit) when absent or invalid, and no group unless the distribution is "sharing group".
pub(crate) fn attribute_distribution(a: &Attribute) -> (i64, Option<i64>) {
    let distribution = access::parse_distribution(a.distribution.as_deref(), access::DIST_INHERIT)
        .unwrap_or(access::DEFAULT_ATTRIBUTE_DISTRIBUTION);
    let group = a
        .sharing_group_id
        .as_deref()
        .and_then(|g| g.trim().parse::<i64>().ok())
        .filter(|g| *g > 0 && distribution == access::DIST_SHARING_GROUP);
    (distribution, group)
}

/// Marks the event changed: a new timestamp, and its stored JSON rebuilt from the rows,
/// which now differ, keeping the keys the rows do not store (see `extras.rs`). Call it
/// after the last change of the rows.
pub(crate) fn touch_event(conn: &Connection, event_id: i64) -> Result<(), DbError> {
    touch_event_with(conn, event_id, None)
}

/// Marks the event changed as [`touch_event`] does, merging `newer`, the kept keys of
/// the JSON that changed it, into those stored.
pub(crate) fn touch_event_with(
    conn: &Connection,
    event_id: i64,
    newer: Option<super::extras::Extras>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE events SET timestamp = MAX(timestamp + 1, ?2) WHERE id = ?1",
        params![event_id, now_secs()],
    )?;
    let mut extras = super::extras::read(conn, event_id)?;
    if let Some(newer) = newer {
        extras.merge(newer);
    }
    super::extras::write(conn, event_id, &extras)
}

impl Db {
    /// Returns true when an attribute or object of any event has uuid `uuid`.
    pub fn uuid_in_use(&self, uuid: &str) -> Result<bool, DbError> {
        let conn = self.reader()?;
        Ok(uuid_taken(&conn, "attributes", uuid)? || uuid_taken(&conn, "objects", uuid)?)
    }

    /// Reads the attribute with id or uuid `key` when it is visible to `viewer`.
    pub fn attribute(&self, key: &str, viewer: &Viewer) -> Result<AttributeRow, DbError> {
        let conn = self.reader()?;
        read_visible_attribute(&conn, key, viewer)
    }

    /// Adds a validated attribute to the event with id or uuid `event_key`, which `viewer`
    /// must be allowed to change (checked inside the write's transaction).
    pub fn add_attribute(
        &self,
        event_key: &str,
        a: &Attribute,
        viewer: &Viewer,
    ) -> Result<AttributeRow, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let event_id = super::events::event_id(&tx, event_key)?;
        access::check_event_owner(&tx, viewer, event_id)?;
        check_similar(&tx, event_id, a, None, 0)?;
        let id = insert_attribute(&tx, event_id, None, a)?;
        correlation::correlate_range(&tx, id, id)?;
        touch_event(&tx, event_id)?;
        let row = read_attribute(&tx, &id.to_string())?;
        tx.commit()?;
        Ok(row)
    }

    /// Replaces attribute `key` (id or uuid) by what `build` makes of the stored row. The
    /// row is looked up once, inside the write's transaction, among those visible to
    /// `viewer`, and `viewer` must be allowed to change its event (owner organisation or site admin).
    pub fn edit_attribute<E>(
        &self,
        key: &str,
        viewer: &Viewer,
        build: impl FnOnce(&AttributeRow) -> Result<Attribute, E>,
    ) -> Result<AttributeRow, super::EditError<E>> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(DbError::from)?;
        let old = read_visible_attribute(&tx, key, viewer)?;
        access::check_event_owner(&tx, viewer, old.event_id)?;
        let a = build(&old).map_err(super::EditError::Request)?;
        if old.object_id.is_none() {
            check_similar(&tx, old.event_id, &a, Some(old.id), 0)?;
        }
        write_attribute_fields(&tx, old.id, &a)?;
        correlation::correlate_range(&tx, old.id, old.id).map_err(DbError::from)?;
        touch_event(&tx, old.event_id)?;
        let row = read_attribute(&tx, &old.id.to_string())?;
        tx.commit().map_err(DbError::from)?;
        Ok(row)
    }

    /// Deletes attribute `key` (id or uuid): marks it deleted, or removes the row when
    /// `hard`. The row is looked up and checked as in [`Db::edit_attribute`].
    pub fn delete_attribute(
        &self,
        key: &str,
        hard: bool,
        viewer: &Viewer,
    ) -> Result<AttributeRow, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let old = read_visible_attribute(&tx, key, viewer)?;
        access::check_event_owner(&tx, viewer, old.event_id)?;
        correlation::uncorrelate_range(&tx, old.id, old.id)?;
        if hard {
            tx.execute("DELETE FROM attributes WHERE id = ?1", [old.id])?;
            tx.execute(
                "DELETE FROM api_sightings WHERE attribute_id = ?1",
                [old.id],
            )?;
        } else {
            tx.execute(
                "UPDATE attributes SET deleted = 1, timestamp = ?2 WHERE id = ?1",
                params![old.id, now_secs()],
            )?;
        }
        touch_event(&tx, old.event_id)?;
        tx.commit()?;
        Ok(old)
    }
}

pub(crate) fn write_attribute_fields(
    conn: &Connection,
    id: i64,
    a: &Attribute,
) -> Result<(), DbError> {
    let tags: Vec<String> = a.tags.iter().map(|t| t.name.clone()).collect();
    // An edit without a distribution keeps the stored one.
    let distribution = match a.distribution {
        Some(_) => {
            let (level, group) = attribute_distribution(a);
            (Some(level), group)
        }
        None => (None, None),
    };
    conn.execute(
        "UPDATE attributes SET type = ?2, category = ?3, value = ?4, to_ids = ?5, deleted = ?6,
             object_relation = ?7, comment = ?8, timestamp = ?9, tags = ?10,
             disable_correlation = ?11, distribution = COALESCE(?12, distribution),
             sharing_group_id = CASE WHEN ?12 IS NULL THEN sharing_group_id ELSE ?13 END
         WHERE id = ?1",
        params![
            id,
            a.r#type,
            a.category.as_deref().unwrap_or_default(),
            a.value,
            a.to_ids.unwrap_or(false),
            a.deleted,
            a.object_relation,
            a.comment.as_deref().unwrap_or_default(),
            a.timestamp.unwrap_or_else(now_secs),
            tags_json(&tags),
            a.disable_correlation.unwrap_or(false),
            distribution.0,
            distribution.1,
        ],
    )?;
    Ok(())
}

pub(crate) fn read_attribute(conn: &Connection, key: &str) -> Result<AttributeRow, DbError> {
    read_visible_attribute(conn, key, &Viewer::SITE_ADMIN)
}

/// Reads attribute `key` (id or uuid) when it is visible to `viewer`: of the rows with a
/// uuid, the visible one with the lowest id, because stores written before the API checked
/// uniqueness may repeat a uuid.
pub(crate) fn read_visible_attribute(
    conn: &Connection,
    key: &str,
    viewer: &Viewer,
) -> Result<AttributeRow, DbError> {
    let (condition, value) = id_or_uuid(key);
    let sql = format!(
        "SELECT {ATTRIBUTE_COLUMNS} FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE a.{condition} AND {} ORDER BY a.id LIMIT 1",
        viewer.attribute_sql("a", "e")
    );
    conn.query_row(&sql, [value], AttributeRow::from_row)
        .optional()?
        .ok_or(DbError::NotFound("attribute"))
}

/// Reads every attribute of an event, in id order.
pub(crate) fn event_attributes(
    conn: &Connection,
    event_id: i64,
    include_deleted: bool,
    viewer: &Viewer,
) -> Result<Vec<AttributeRow>, DbError> {
    let (first, last) = row_id_range(event_id);
    let sql = format!(
        "SELECT {ATTRIBUTE_COLUMNS} FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE a.id BETWEEN ?1 AND ?2 {} AND {} ORDER BY a.id",
        if include_deleted {
            ""
        } else {
            "AND a.deleted = 0"
        },
        viewer.attribute_sql("a", "e")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([first, last], AttributeRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
