//! Event rows: index, full reads with objects and attributes, and writes from MISP JSON.

use intel::galaxy;
use intel::store::correlation;
use misp::{Event, Object};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::attributes::{
    check_similar, event_attributes, id_or_uuid, insert_attribute, touch_event_with,
    write_attribute_fields, AttributeRow,
};
use super::{now_secs, orgs, row_id_range, Db, DbError};
use crate::access::{self, Viewer};

/// The event columns read into an [`EventMeta`] for a query over `events e`, with `$count`
/// as the attribute count.
macro_rules! event_columns {
    ($count:literal) => {
        concat!(
            "e.id, e.uuid, e.info, e.threat_level_id, e.analysis, e.date,
             e.timestamp, e.published, e.orgc, e.tags, ",
            $count,
            ", e.disable_correlation, e.org_id, e.orgc_id, e.distribution, e.sharing_group_id,
             (SELECT name FROM api_organisations WHERE id = e.org_id),
             (SELECT uuid FROM api_organisations WHERE id = e.org_id),
             (SELECT uuid FROM api_organisations WHERE id = e.orgc_id), e.galaxies,
             COALESCE(e.publish_timestamp, 0)"
        )
    };
}

/// The event columns read into an [`EventMeta`], for a query over `events e`.
pub const EVENT_COLUMNS: &str = event_columns!(
    "(SELECT COUNT(*) FROM attributes a WHERE a.id BETWEEN e.id << 32 AND (e.id << 32) | 4294967295 AND a.deleted = 0)"
);

/// [`EVENT_COLUMNS`] without counting attributes (`attribute_count` is 0).
pub const EVENT_BRIEF_COLUMNS: &str = event_columns!("0");

/// An event without its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    pub id: i64,
    pub uuid: String,
    pub info: String,
    pub threat_level_id: Option<i64>,
    pub analysis: Option<i64>,
    pub date: Option<String>,
    pub timestamp: i64,
    pub published: bool,
    pub orgc: Option<String>,
    pub tags: Vec<String>,
    pub attribute_count: i64,
    pub disable_correlation: bool,
    /// Owner organisation of the local copy.
    pub org_id: i64,
    /// Creator organisation.
    pub orgc_id: i64,
    /// MISP distribution level, 0 to 4 (see `access.rs`).
    pub distribution: i64,
    pub sharing_group_id: Option<i64>,
    pub org_name: Option<String>,
    pub org_uuid: Option<String>,
    pub orgc_uuid: Option<String>,
    /// Galaxy clusters of the event: those stored with it, then those its tags name.
    pub galaxies: Vec<galaxy::GalaxyCluster>,
    /// When the event was last published, in seconds since the epoch; 0 when never. An
    /// unpublished event keeps the time of its last publishing, as in MISP.
    pub publish_timestamp: i64,
}

impl EventMeta {
    pub fn from_row(r: &Row) -> rusqlite::Result<EventMeta> {
        let tags: Vec<String> = serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default();
        let mut galaxies =
            super::attributes::galaxies_column(r.get::<_, Option<String>>(19)?.as_deref());
        galaxy::add_tag_clusters(&mut galaxies, tags.iter().map(String::as_str));
        Ok(EventMeta {
            id: r.get(0)?,
            uuid: r.get(1)?,
            info: r.get(2)?,
            threat_level_id: r.get(3)?,
            analysis: r.get(4)?,
            date: r.get(5)?,
            timestamp: r.get(6)?,
            published: r.get(7)?,
            orgc: r.get(8)?,
            tags,
            attribute_count: r.get(10)?,
            disable_correlation: r.get(11)?,
            org_id: r.get(12)?,
            orgc_id: r.get(13)?,
            distribution: r.get(14)?,
            sharing_group_id: r.get(15)?,
            org_name: r.get(16)?,
            org_uuid: r.get(17)?,
            orgc_uuid: r.get(18)?,
            galaxies,
            publish_timestamp: r.get(20)?,
        })
    }
}

/// An object of an event, with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRow {
    pub id: i64,
    pub event_id: i64,
    pub uuid: String,
    pub name: String,
    pub meta_category: Option<String>,
    pub deleted: bool,
    pub distribution: i64,
    pub sharing_group_id: Option<i64>,
    pub attributes: Vec<AttributeRow>,
}

/// An event with its attributes (those outside objects) and objects.
#[derive(Debug, Clone, PartialEq)]
pub struct FullEvent {
    pub meta: EventMeta,
    pub attributes: Vec<AttributeRow>,
    pub objects: Vec<ObjectRow>,
}

/// Resolves an event id or uuid to the stored id.
pub(crate) fn event_id(conn: &Connection, key: &str) -> Result<i64, DbError> {
    let (condition, value) = id_or_uuid(key);
    conn.query_row(
        &format!("SELECT id FROM events WHERE {condition}"),
        [value],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(DbError::NotFound("event"))
}

pub(crate) fn read_meta(conn: &Connection, id: i64) -> Result<EventMeta, DbError> {
    conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"
    ))?
    .query_row([id], EventMeta::from_row)
    .optional()?
    .ok_or(DbError::NotFound("event"))
}

/// Reads an event with the attributes and objects visible to `viewer`. Fails with "not found"
/// when the event is not visible to the viewer.
pub(crate) fn read_full(
    conn: &Connection,
    id: i64,
    include_deleted: bool,
    viewer: &Viewer,
) -> Result<FullEvent, DbError> {
    if !access::event_visible(conn, viewer, id)? {
        return Err(DbError::NotFound("event"));
    }
    let meta = read_meta(conn, id)?;
    let (first, last) = row_id_range(id);
    let sql = format!(
        "SELECT o.id, o.event_id, o.uuid, o.name, o.meta_category, o.deleted, o.distribution,
                o.sharing_group_id
         FROM objects o JOIN events e ON e.id = o.event_id
         WHERE o.id BETWEEN ?1 AND ?2 AND {} ORDER BY o.id",
        viewer.object_sql("o", "e")
    );
    let mut objects: Vec<ObjectRow> = conn
        .prepare_cached(&sql)?
        .query_map([first, last], |r| {
            Ok(ObjectRow {
                id: r.get(0)?,
                event_id: r.get(1)?,
                uuid: r.get(2)?,
                name: r.get(3)?,
                meta_category: r.get(4)?,
                deleted: r.get(5)?,
                distribution: r.get(6)?,
                sharing_group_id: r.get(7)?,
                attributes: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    if !include_deleted {
        objects.retain(|o| !o.deleted);
    }
    let mut attributes = Vec::new();
    for a in event_attributes(conn, id, include_deleted, viewer)? {
        match a.object_id {
            Some(oid) => {
                if let Some(o) = objects.iter_mut().find(|o| o.id == oid) {
                    o.attributes.push(a);
                }
            }
            None => attributes.push(a),
        }
    }
    Ok(FullEvent {
        meta,
        attributes,
        objects,
    })
}

fn insert_object(conn: &Connection, event_id: i64, object: &Object) -> Result<i64, DbError> {
    let (first, last) = row_id_range(event_id);
    let max: Option<i64> = conn.query_row(
        "SELECT MAX(id) FROM objects WHERE id BETWEEN ?1 AND ?2",
        [first, last],
        |r| r.get(0),
    )?;
    let id = max.unwrap_or(first) + 1;
    let uuid = match &object.uuid {
        Some(given) => {
            if super::attributes::uuid_taken(conn, "objects", given)? {
                return Err(DbError::uuid_in_use("Object", given));
            }
            given.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let number = |key: &str| match object.extra.get(key)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let distribution = number("distribution")
        .filter(|d| (0..=access::DIST_INHERIT).contains(d))
        .unwrap_or(access::DEFAULT_ATTRIBUTE_DISTRIBUTION);
    let group =
        number("sharing_group_id").filter(|g| *g > 0 && distribution == access::DIST_SHARING_GROUP);
    conn.execute(
        "INSERT INTO objects (id, event_id, uuid, name, meta_category, deleted, distribution,
             sharing_group_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            event_id,
            uuid.to_lowercase(),
            object.name,
            object.meta_category,
            object.deleted,
            distribution,
            group,
        ],
    )?;
    for a in &object.attributes {
        insert_attribute(conn, event_id, Some(id), a)?;
    }
    Ok(id)
}

/// Reads the event's `disable_correlation` flag (`true`, `1` or `"1"`), when it has one.
fn disable_correlation(event: &Event) -> Option<bool> {
    match event.extra.get("disable_correlation")? {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => Some(n.as_i64() == Some(1)),
        serde_json::Value::String(s) => Some(matches!(s.trim(), "1" | "true")),
        _ => None,
    }
}

/// Returns extra field `key` (a distribution level or sharing group id) as a string when it
/// is a number or a string.
fn extra_number(event: &Event, key: &str) -> Option<String> {
    match event.extra.get(key)? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Returns the distribution and sharing group an event requests: MISP's default when
/// absent or invalid, and no group unless the distribution is "sharing group".
fn event_distribution(event: &Event) -> (i64, Option<i64>) {
    let distribution = access::parse_distribution(
        extra_number(event, "distribution").as_deref(),
        access::DIST_SHARING_GROUP,
    )
    .unwrap_or(access::DEFAULT_EVENT_DISTRIBUTION);
    let group = extra_number(event, "sharing_group_id")
        .and_then(|g| g.trim().parse::<i64>().ok())
        .filter(|g| *g > 0 && distribution == access::DIST_SHARING_GROUP);
    (distribution, group)
}

fn tag_names_json(event: &Event) -> String {
    serde_json::to_string(&event.tag_names()).unwrap_or_else(|_| "[]".into())
}

impl Db {
    /// Lists the events visible to `viewer` (without attributes), newest id first.
    pub fn event_index(&self, viewer: &Viewer) -> Result<Vec<EventMeta>, DbError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE {} ORDER BY e.id DESC",
            viewer.event_sql("e")
        ))?;
        let rows = stmt.query_map([], EventMeta::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Reads the event with id or uuid `key`, with the attributes and objects visible to
    /// `viewer`. Fails with "not found" when the event is not visible to the viewer.
    pub fn event(
        &self,
        key: &str,
        include_deleted: bool,
        viewer: &Viewer,
    ) -> Result<FullEvent, DbError> {
        let conn = self.reader()?;
        let id = event_id(&conn, key)?;
        read_full(&conn, id, include_deleted, viewer)
    }

    /// Checks that `viewer` may change event `key`. Fails with "not found" when the event is
    /// not visible to the viewer, and "forbidden" when its organisation does not own it.
    pub fn check_event_owner(&self, key: &str, viewer: &Viewer) -> Result<(), DbError> {
        let conn = self.reader()?;
        let id = event_id(&conn, key)?;
        access::check_event_owner(&conn, viewer, id)
    }

    /// Stores a new event as an import: owned by the local default organisation, keeping
    /// the creator organisation (`Orgc`) the event names.
    pub fn add_event(&self, event: &Event) -> Result<FullEvent, DbError> {
        self.add_event_for(event, access::DEFAULT_ORG_ID, true)
    }

    /// Stores a new event whose attributes are validated, owned by organisation `org_id`.
    /// Its creator organisation is the one it names when `keep_orgc` (imports and sync),
    /// else `org_id`. Returns it as stored.
    pub fn add_event_for(
        &self,
        event: &Event,
        org_id: i64,
        keep_orgc: bool,
    ) -> Result<FullEvent, DbError> {
        self.add_event_json(event, None, org_id, keep_orgc)
    }

    /// Stores a new event as [`Db::add_event_for`] does, keeping the keys of `json` (the
    /// request's event, unwrapped) that the rows do not store.
    pub fn add_event_json(
        &self,
        event: &Event,
        json: Option<&serde_json::Map<String, serde_json::Value>>,
        org_id: i64,
        keep_orgc: bool,
    ) -> Result<FullEvent, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let uuid = event.uuid.to_lowercase();
        if event_id(&tx, &uuid).is_ok() {
            return Err(DbError::Conflict(format!(
                "an event with uuid {uuid} exists already"
            )));
        }
        let orgc = match event
            .orgc
            .as_ref()
            .filter(|o| keep_orgc && !o.name.is_empty())
        {
            Some(o) => orgs::ensure_org(&tx, &o.name, o.uuid.as_deref(), false)?,
            None => orgs::find_org(&tx, &org_id.to_string())?
                .ok_or(DbError::NotFound("organisation"))?,
        };
        let (distribution, group) = event_distribution(event);
        tx.execute(
            "INSERT INTO events (uuid, info, threat_level_id, analysis, date, timestamp, published,
                 orgc, tags, source, format, imported_at, disable_correlation, galaxies,
                 org_id, orgc_id, distribution, sharing_group_id, publish_timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'api', 'misp-json', ?10, ?11, ?12,
                 ?13, ?14, ?15, ?16, ?17)",
            params![
                uuid,
                event.info,
                event.threat_level_id,
                event.analysis,
                event.date,
                event.timestamp.unwrap_or_else(now_secs),
                event.published.unwrap_or(false),
                orgc.name,
                tag_names_json(event),
                now_secs(),
                disable_correlation(event).unwrap_or(false),
                galaxy::to_column(&galaxy::clusters_of(&event.galaxies)),
                org_id,
                orgc.id,
                distribution,
                group,
                event.published.unwrap_or(false).then(now_secs),
            ],
        )?;
        let id = tx.last_insert_rowid();
        for (position, a) in event.attributes.iter().enumerate() {
            // As MISP's validation, a repeat of an attribute of the request is dropped.
            match check_similar(&tx, id, a, None, position) {
                Err(DbError::SimilarAttribute(_)) => continue,
                other => other?,
            }
            insert_attribute(&tx, id, None, a)?;
        }
        for object in &event.objects {
            insert_object(&tx, id, object)?;
        }
        correlation::correlate_event(&tx, id)?;
        if let Some(json) = json {
            super::extras::write(&tx, id, &super::extras::Extras::from_event(json))?;
        }
        let full = read_full(&tx, id, false, &Viewer::SITE_ADMIN)?;
        tx.commit()?;
        Ok(full)
    }

    /// Applies an edit as MISP does: metadata given replaces the stored one, attributes
    /// and objects with a known uuid are updated, new ones are added, others are kept.
    pub fn edit_event(&self, key: &str, event: &Event) -> Result<FullEvent, DbError> {
        self.edit_event_json(key, event, None)
    }

    /// Applies an edit as [`Db::edit_event`] does, merging the keys of `json` (the
    /// request's event, unwrapped) that the rows do not store into those kept: keys given
    /// replace, others stay.
    pub fn edit_event_json(
        &self,
        key: &str,
        event: &Event,
        json: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<FullEvent, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let id = event_id(&tx, key)?;
        let full = apply_edit(&tx, id, event, json)?;
        tx.commit()?;
        Ok(full)
    }

    /// Applies the edit that `build` makes of event `key` (id or uuid) as it is stored,
    /// deleted entries included, as [`Db::edit_event_json`] does. The event is looked up
    /// once, inside the write's transaction, and `viewer` must be allowed to change it.
    pub fn edit_event_with<E>(
        &self,
        key: &str,
        viewer: &Viewer,
        build: impl FnOnce(&StoredEvent) -> Result<EventEdit, E>,
    ) -> Result<FullEvent, EditError<E>> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(DbError::from)?;
        let id = event_id(&tx, key)?;
        access::check_event_owner(&tx, viewer, id)?;
        let before = StoredEvent::read(&tx, id)?;
        let edit = build(&before).map_err(EditError::Request)?;
        let full = apply_edit(&tx, id, &edit.event, Some(&edit.json))?;
        tx.commit().map_err(DbError::from)?;
        Ok(full)
    }

    /// Applies the edit that `build` makes of the event that contains object `key` (id
    /// or uuid), as [`Db::edit_event_with`] does. The object is looked up once, inside the
    /// write's transaction, among those visible to `viewer`, and `build` gets it with its
    /// event.
    pub fn edit_object_with<E>(
        &self,
        key: &str,
        viewer: &Viewer,
        build: impl FnOnce(&StoredEvent, &ObjectRow) -> Result<EventEdit, E>,
    ) -> Result<FullEvent, EditError<E>> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(DbError::from)?;
        let (object_id, id) = super::objects::visible_object_ids(&tx, key, viewer)?;
        access::check_event_owner(&tx, viewer, id)?;
        let before = StoredEvent::read(&tx, id)?;
        let object = before
            .event
            .objects
            .iter()
            .find(|o| o.id == object_id)
            .ok_or(DbError::NotFound("object"))?;
        let edit = build(&before, object).map_err(EditError::Request)?;
        let full = apply_edit(&tx, id, &edit.event, Some(&edit.json))?;
        tx.commit().map_err(DbError::from)?;
        Ok(full)
    }

    /// Deletes an event with its objects, attributes and sightings, and returns its id.
    pub fn delete_event(&self, key: &str) -> Result<i64, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let id = event_id(&tx, key)?;
        correlation::uncorrelate_event(&tx, id)?;
        let (first, last) = row_id_range(id);
        tx.execute(
            "DELETE FROM attributes WHERE id BETWEEN ?1 AND ?2",
            [first, last],
        )?;
        tx.execute(
            "DELETE FROM objects WHERE id BETWEEN ?1 AND ?2",
            [first, last],
        )?;
        tx.execute("DELETE FROM api_sightings WHERE event_id = ?1", [id])?;
        tx.execute("DELETE FROM event_json WHERE event_id = ?1", [id])?;
        tx.execute("DELETE FROM api_entries WHERE event_id = ?1", [id])?;
        tx.execute("DELETE FROM events WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(id)
    }

    /// Sets the published flag of event `key` and returns its id. Publishing records the
    /// time in `publish_timestamp`; unpublishing keeps the time of the last publishing.
    pub fn publish_event(&self, key: &str, published: bool) -> Result<i64, DbError> {
        let conn = self.writer();
        let id = event_id(&conn, key)?;
        conn.execute(
            "UPDATE events SET published = ?2, timestamp = MAX(timestamp, ?3),
                 publish_timestamp = CASE WHEN ?2 THEN ?3 ELSE publish_timestamp END
             WHERE id = ?1",
            params![id, published, now_secs()],
        )?;
        Ok(id)
    }

    /// Records the publish times that pulled events carry, as (uuid, seconds since the
    /// epoch), for the stored events that are published.
    pub fn set_publish_timestamps(&self, times: &[(String, i64)]) -> Result<(), DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE events SET publish_timestamp = ?3
                 WHERE uuid IN (?1, ?2) AND published = 1",
            )?;
            for (uuid, time) in times {
                stmt.execute(params![uuid, uuid.to_lowercase(), time])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// An edit of an event: the parsed event and its JSON object (unwrapped), whose keys the
/// rows do not store are kept with the event.
#[derive(Debug, Clone)]
pub struct EventEdit {
    pub event: Event,
    pub json: serde_json::Map<String, serde_json::Value>,
}

/// An event as an edit finds it: its rows, deleted ones included, and the uuids of the
/// entries an edit may name to change in part.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event: FullEvent,
    /// Lower-case uuids of the event's objects, event reports and object references.
    pub entry_uuids: std::collections::HashSet<String>,
}

impl StoredEvent {
    fn read(conn: &Connection, id: i64) -> Result<StoredEvent, DbError> {
        let event = read_full(conn, id, true, &Viewer::SITE_ADMIN)?;
        let mut entry_uuids: std::collections::HashSet<String> =
            super::extras::read(conn, id)?.entry_uuids().collect();
        entry_uuids.extend(event.objects.iter().map(|o| o.uuid.to_lowercase()));
        Ok(StoredEvent { event, entry_uuids })
    }
}

/// A failed edit: the store's error, or the one `build` returned for the request.
#[derive(Debug)]
pub enum EditError<E> {
    Store(DbError),
    Request(E),
}

impl<E> From<DbError> for EditError<E> {
    fn from(err: DbError) -> Self {
        EditError::Store(err)
    }
}

/// Applies an edit to event `id` inside transaction `tx` and returns the event as stored.
fn apply_edit(
    tx: &Connection,
    id: i64,
    event: &Event,
    json: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<FullEvent, DbError> {
    let old = read_meta(tx, id)?;
    // A partial edit without a `Tag` list keeps the event's tags.
    let tags = match json.is_none_or(|j| j.contains_key("Tag")) {
        true => tag_names_json(event),
        false => serde_json::to_string(&old.tags).unwrap_or_else(|_| "[]".into()),
    };
    tx.execute(
        "UPDATE events SET info = ?2, threat_level_id = ?3, analysis = ?4, date = ?5,
             published = ?6, tags = ?7 WHERE id = ?1",
        params![
            id,
            if event.info.is_empty() {
                &old.info
            } else {
                &event.info
            },
            event.threat_level_id.or(old.threat_level_id),
            event.analysis.or(old.analysis),
            event.date.clone().or(old.date),
            event.published.unwrap_or(old.published),
            tags,
        ],
    )?;
    apply_event_flags(tx, id, event)?;
    merge_attributes(tx, id, None, &event.attributes)?;
    let restored = restored_objects(json);
    for object in &event.objects {
        let restore = object
            .uuid
            .as_ref()
            .is_some_and(|u| restored.contains(&u.to_lowercase()));
        merge_object(tx, id, object, restore)?;
    }
    correlation::correlate_event(tx, id)?;
    touch_event_with(tx, id, json.map(super::extras::Extras::from_event))?;
    read_full(tx, id, false, &Viewer::SITE_ADMIN)
}

/// Writes the distribution, publish time and correlation flag an edit gives.
fn apply_event_flags(tx: &Connection, id: i64, event: &Event) -> Result<(), DbError> {
    if event.extra.contains_key("distribution") {
        let (distribution, group) = event_distribution(event);
        tx.execute(
            "UPDATE events SET distribution = ?2, sharing_group_id = ?3 WHERE id = ?1",
            params![id, distribution, group],
        )?;
    }
    if event.published == Some(true) {
        tx.execute(
            "UPDATE events SET publish_timestamp = ?2 WHERE id = ?1",
            params![id, now_secs()],
        )?;
    }
    if let Some(disabled) = disable_correlation(event) {
        tx.execute(
            "UPDATE events SET disable_correlation = ?2 WHERE id = ?1",
            params![id, disabled],
        )?;
    }
    Ok(())
}

/// Returns the lower-case uuids of the objects of an edit's JSON that give `deleted` as
/// false, which MISP takes as a request to restore a soft-deleted object. An object
/// without the key keeps its state.
fn restored_objects(
    json: Option<&serde_json::Map<String, serde_json::Value>>,
) -> std::collections::HashSet<String> {
    use serde_json::Value;
    let Some(Value::Array(objects)) = json.and_then(|j| j.get("Object")) else {
        return Default::default();
    };
    objects
        .iter()
        .filter(|o| match o.get("deleted") {
            Some(Value::Bool(b)) => !b,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => matches!(s.trim(), "0" | "false"),
            _ => false,
        })
        .filter_map(|o| o.get("uuid")?.as_str().map(str::to_lowercase))
        .collect()
}

/// Applies an edit's object. A new one is added. As MISP does, a known one is skipped when
/// its timestamp is given and not newer than the stored one. A known one marked `deleted`
/// is soft-deleted with its attributes, and any other gets its fields and attributes merged,
/// after being restored with its attributes when `restore` is set.
fn merge_object(
    conn: &Connection,
    event_id: i64,
    object: &Object,
    restore: bool,
) -> Result<(), DbError> {
    let known = match &object.uuid {
        Some(u) => conn
            .query_row(
                "SELECT id FROM objects WHERE uuid = ?1 AND event_id = ?2",
                params![u.to_lowercase(), event_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?,
        None => None,
    };
    let Some(object_id) = known else {
        // A new object's attributes get the time of the write.
        let mut object = object.clone();
        for a in &mut object.attributes {
            a.timestamp = None;
        }
        insert_object(conn, event_id, &object)?;
        return Ok(());
    };
    if let Some(given) = object.timestamp {
        if given <= super::objects::object_timestamp(conn, object_id)? {
            return Ok(());
        }
    }
    if object.deleted {
        return super::objects::soft_delete(conn, object_id);
    }
    if restore {
        super::objects::restore(conn, object_id)?;
    }
    super::objects::update_fields(conn, object_id, object)?;
    merge_attributes(conn, event_id, Some(object_id), &object.attributes)
}

/// Applies an edit's attributes. A new one is added, and a known one is replaced. As MISP
/// does, a known one is skipped when its timestamp is given and not newer than the stored
/// one, so a stale copy of an event cannot bring back a deleted attribute. Attributes
/// outside objects must not repeat a value, type and category (see [`check_similar`]).
fn merge_attributes(
    conn: &Connection,
    event_id: i64,
    object_id: Option<i64>,
    attributes: &[misp::Attribute],
) -> Result<(), DbError> {
    let (first, last) = row_id_range(event_id);
    for (position, a) in attributes.iter().enumerate() {
        let known: Option<(i64, Option<i64>, Option<i64>)> = match &a.uuid {
            Some(u) => conn
                .query_row(
                    "SELECT id, timestamp, object_id FROM attributes
                     WHERE uuid = ?1 AND id BETWEEN ?2 AND ?3",
                    params![u.to_lowercase(), first, last],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?,
            None => None,
        };
        // As MISP, an attribute is edited only in its own place: an object's attribute
        // inside that object, any other outside objects.
        if let Some((_, _, stored_object)) = known {
            if stored_object != object_id {
                return Err(DbError::Rejected {
                    kind: "Attribute",
                    field: "uuid",
                    message: format!(
                        "attribute {} belongs to {}; edit it there",
                        a.uuid.as_deref().unwrap_or_default(),
                        match stored_object {
                            Some(_) => "an object of this event",
                            None => "this event outside objects",
                        }
                    ),
                });
            }
        }
        if let (Some((_, Some(stored), _)), Some(given)) = (known, a.timestamp) {
            if given <= stored {
                continue;
            }
        }
        // The write gets its own time, whatever timestamp the request gave.
        let a = misp::Attribute {
            timestamp: None,
            ..a.clone()
        };
        if object_id.is_none() {
            check_similar(conn, event_id, &a, known.map(|(id, _, _)| id), position)?;
        }
        match known {
            Some((id, _, _)) => write_attribute_fields(conn, id, &a)?,
            None => {
                insert_attribute(conn, event_id, object_id, &a)?;
            }
        }
    }
    Ok(())
}
