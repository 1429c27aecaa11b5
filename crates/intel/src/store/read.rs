//! Read queries: statistics, warninglists, events for export.

use misp::{Attribute, Event, Object, Org, Tag};
use rusqlite::params;
use serde::Serialize;

use super::Store;
use crate::warninglist::{Action, StoredList};
use crate::Error;

/// Totals of one attribute type.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TypeCount {
    pub r#type: String,
    pub attributes: u64,
    /// Of those, detection indicators (`to_ids`, not deleted).
    pub detections: u64,
}

/// A warninglist as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WarninglistInfo {
    pub name: String,
    pub action: Action,
    pub r#type: String,
    pub entries: u64,
    pub source: String,
}

/// Counts of the store's contents.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub events: u64,
    pub objects: u64,
    pub attributes: u64,
    /// Attributes with `to_ids` that are not deleted: what lookups can match.
    pub detections: u64,
    /// Hash-family attributes per type, most common first.
    pub hash_types: Vec<TypeCount>,
    pub warninglists: Vec<WarninglistInfo>,
    pub imports: u64,
    pub database_bytes: u64,
    /// Over-correlation limit: values shared by more attributes link nothing.
    pub correlation_limit: i64,
    pub correlation: super::correlation::CorrelationStats,
}

/// One stored event, for exports.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub uuid: String,
    pub date: Option<String>,
    /// The event JSON as it was imported (without the `{"Event": ...}` wrapper).
    pub json: String,
}

impl Store {
    /// Counts events, attributes, detections per hash type and lists warninglists.
    pub fn stats(&self) -> Result<Stats, Error> {
        let count = |sql: &str| -> Result<u64, Error> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let mut hash_types = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT type, COUNT(*), SUM(to_ids = 1 AND deleted = 0) FROM attributes
             GROUP BY type ORDER BY COUNT(*) DESC, type",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TypeCount {
                r#type: r.get(0)?,
                attributes: r.get::<_, i64>(1)? as u64,
                detections: r.get::<_, i64>(2)? as u64,
            })
        })?;
        for row in rows {
            let row = row?;
            if misp::hash::is_hash_type(&row.r#type) {
                hash_types.push(row);
            }
        }
        let correlation_limit = super::correlation::limit(&self.conn)?;
        let correlation = super::correlation::stats(&self.conn, correlation_limit)?;
        let file_bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let wal = self.path.with_extension("db-wal");
        let wal_bytes = std::fs::metadata(wal).map_or(0, |m| m.len());
        Ok(Stats {
            events: count("SELECT COUNT(*) FROM events")?,
            objects: count("SELECT COUNT(*) FROM objects")?,
            attributes: count("SELECT COUNT(*) FROM attributes")?,
            detections: count("SELECT COUNT(*) FROM attributes WHERE to_ids = 1 AND deleted = 0")?,
            hash_types,
            warninglists: self.warninglist_infos()?,
            imports: count("SELECT COUNT(*) FROM imports")?,
            database_bytes: file_bytes + wal_bytes,
            correlation_limit,
            correlation,
        })
    }

    fn warninglist_infos(&self) -> Result<Vec<WarninglistInfo>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT name, action, type, json_array_length(entries), source FROM warninglists ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get::<_, i64>(3)?,
                r.get(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, action, list_type, entries, source) = row?;
            out.push(WarninglistInfo {
                action: parse_action(&name, &action)?,
                name,
                r#type: list_type,
                entries: entries as u64,
                source,
            });
        }
        Ok(out)
    }

    /// Loads every warninglist with its entries, for matching.
    pub fn warninglists(&self) -> Result<Vec<StoredList>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, action, type, matching_attributes, entries FROM warninglists ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, action, list_type, matching, entries) = row?;
            let parse = |json: &str| {
                serde_json::from_str::<Vec<String>>(json)
                    .map_err(|e| Error::Corrupt(format!("warninglist `{name}`: {e}")))
            };
            out.push(StoredList {
                action: parse_action(&name, &action)?,
                list_type,
                matching_attributes: parse(&matching)?,
                entries: parse(&entries)?,
                name,
            });
        }
        Ok(out)
    }

    /// Calls `f` with each stored event, in id order.
    pub fn for_each_event(
        &self,
        mut f: impl FnMut(EventRow) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut stmt = self.conn.prepare(
            "SELECT e.id, e.uuid, e.date, j.json_lz4 FROM events e
             LEFT JOIN event_json j ON j.event_id = e.id ORDER BY e.id",
        )?;
        let mut rows = stmt.query(params![])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let compressed: Option<Vec<u8>> = r.get(3)?;
            let json = match compressed.as_deref() {
                Some(compressed) => decompress(id, compressed)?,
                None => self.event_json_from_rows(id)?,
            };
            f(EventRow {
                id,
                uuid: r.get(1)?,
                date: r.get(2)?,
                json,
            })?;
        }
        Ok(())
    }

    /// Rebuilds the JSON of an event that was not imported as MISP JSON from its rows.
    fn event_json_from_rows(&self, id: i64) -> Result<String, Error> {
        let mut event = self.conn.query_row(
            "SELECT uuid, info, threat_level_id, analysis, date, timestamp, published, orgc, tags
             FROM events WHERE id = ?1",
            [id],
            |r| {
                let tags: Vec<String> =
                    serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default();
                Ok(Event {
                    uuid: r.get(0)?,
                    info: r.get(1)?,
                    threat_level_id: r.get(2)?,
                    analysis: r.get(3)?,
                    date: r.get(4)?,
                    timestamp: r.get(5)?,
                    published: Some(r.get(6)?),
                    orgc: r.get::<_, Option<String>>(7)?.map(|name| Org {
                        name,
                        ..Org::default()
                    }),
                    tags: tags
                        .into_iter()
                        .map(|name| Tag {
                            name,
                            ..Tag::default()
                        })
                        .collect(),
                    ..Event::default()
                })
            },
        )?;
        let mut objects: Vec<(i64, Object)> = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, uuid, name, meta_category, deleted FROM objects WHERE id BETWEEN ?1 AND ?2 ORDER BY id")?;
        let (first, last) = super::write::row_id_range(id);
        let mut rows = stmt.query([first, last])?;
        while let Some(r) = rows.next()? {
            let object = Object {
                uuid: r.get(1)?,
                name: r.get(2)?,
                meta_category: r.get(3)?,
                deleted: r.get(4)?,
                ..Object::default()
            };
            objects.push((r.get(0)?, object));
        }
        let mut stmt = self.conn.prepare(
            "SELECT object_id, uuid, type, category, value, to_ids, deleted, object_relation, comment,
                    timestamp, tags
             FROM attributes WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query([first, last])?;
        while let Some(r) = rows.next()? {
            let tags: Vec<String> = r
                .get::<_, Option<String>>(10)?
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let attribute = Attribute {
                uuid: r.get(1)?,
                r#type: r.get(2)?,
                category: r.get(3)?,
                value: r.get(4)?,
                to_ids: Some(r.get(5)?),
                deleted: r.get(6)?,
                object_relation: r.get(7)?,
                comment: r.get(8)?,
                timestamp: r.get(9)?,
                tags: tags
                    .into_iter()
                    .map(|name| Tag {
                        name,
                        ..Tag::default()
                    })
                    .collect(),
                ..Attribute::default()
            };
            let object_id: Option<i64> = r.get(0)?;
            match object_id.and_then(|oid| objects.iter_mut().find(|(i, _)| *i == oid)) {
                Some((_, object)) => object.attributes.push(attribute),
                None => event.attributes.push(attribute),
            }
        }
        event.objects = objects.into_iter().map(|(_, o)| o).collect();
        serde_json::to_string(&event).map_err(|e| Error::Corrupt(format!("event {id}: {e}")))
    }
}

fn decompress(id: i64, compressed: &[u8]) -> Result<String, Error> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(compressed.len() * 4);
    lz4_flex::frame::FrameDecoder::new(compressed)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Corrupt(format!("event {id}: stored JSON: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Corrupt(format!("event {id}: stored JSON: {e}")))
}

fn parse_action(name: &str, action: &str) -> Result<Action, Error> {
    action
        .parse()
        .map_err(|e| Error::Corrupt(format!("warninglist `{name}`: {e}")))
}
