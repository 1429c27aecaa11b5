//! Tags: the `api_tags` list, and attaching or removing a tag on an event or attribute.

use rusqlite::{params, Connection, OptionalExtension};

use super::attributes::{tags_json, touch_event};
use super::{Db, DbError};

/// A tag of the tag list.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub id: i64,
    pub name: String,
    pub colour: String,
    pub exportable: bool,
    pub hide_tag: bool,
}

fn read_tag(conn: &Connection, key: &str) -> Result<Option<TagRow>, DbError> {
    let sql = "SELECT id, name, colour, exportable, hide_tag FROM api_tags
               WHERE name = ?1 OR CAST(id AS TEXT) = ?1";
    Ok(conn
        .query_row(sql, [key], |r| {
            Ok(TagRow {
                id: r.get(0)?,
                name: r.get(1)?,
                colour: r.get(2)?,
                exportable: r.get(3)?,
                hide_tag: r.get(4)?,
            })
        })
        .optional()?)
}

fn ensure_tag(conn: &Connection, name: &str) -> Result<TagRow, DbError> {
    conn.execute("INSERT OR IGNORE INTO api_tags (name) VALUES (?1)", [name])?;
    read_tag(conn, name)?.ok_or(DbError::NotFound("tag"))
}

/// Owner of a tag list: an event or an attribute.
enum Target {
    Event(i64),
    Attribute { id: i64, event_id: i64 },
}

fn target(conn: &Connection, uuid: &str) -> Result<Target, DbError> {
    let uuid = uuid.to_lowercase();
    let event: Option<i64> = conn
        .query_row("SELECT id FROM events WHERE uuid = ?1", [&uuid], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(id) = event {
        return Ok(Target::Event(id));
    }
    conn.query_row(
        "SELECT id, event_id FROM attributes WHERE uuid = ?1",
        [&uuid],
        |r| {
            Ok(Target::Attribute {
                id: r.get(0)?,
                event_id: r.get(1)?,
            })
        },
    )
    .optional()?
    .ok_or(DbError::NotFound("target uuid"))
}

/// Reads, changes and writes back the tag names of `target`.
fn change_tags(
    conn: &Connection,
    target: &Target,
    change: impl FnOnce(&mut Vec<String>),
) -> Result<(), DbError> {
    let (sql_read, sql_write, id, event_id) = match target {
        Target::Event(id) => (
            "SELECT tags FROM events WHERE id = ?1",
            "UPDATE events SET tags = ?2 WHERE id = ?1",
            *id,
            *id,
        ),
        Target::Attribute { id, event_id } => (
            "SELECT tags FROM attributes WHERE id = ?1",
            "UPDATE attributes SET tags = ?2 WHERE id = ?1",
            *id,
            *event_id,
        ),
    };
    let current: Option<String> = conn.query_row(sql_read, [id], |r| r.get(0))?;
    let mut names: Vec<String> = current
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    change(&mut names);
    let json = match target {
        Target::Event(_) => Some(serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())),
        Target::Attribute { .. } => tags_json(&names),
    };
    conn.execute(sql_write, params![id, json])?;
    touch_event(conn, event_id)
}

impl Db {
    /// Checks that `viewer` may tag the event or attribute `uuid`: its event must be visible
    /// and owned by the viewer's organisation (or the viewer a site admin).
    pub fn check_tag_target_owner(
        &self,
        uuid: &str,
        viewer: &crate::access::Viewer,
    ) -> Result<(), DbError> {
        let conn = self.reader()?;
        let event_id = match target(&conn, uuid)? {
            Target::Event(id) => id,
            Target::Attribute { event_id, .. } => event_id,
        };
        crate::access::check_event_owner(&conn, viewer, event_id)
    }

    /// Lists tags: those created through the API and those on events.
    pub fn tags(&self) -> Result<Vec<TagRow>, DbError> {
        let conn = self.writer();
        // NOTE: tags that only attributes carry are listed once they are attached through the API.
        conn.execute(
            "INSERT OR IGNORE INTO api_tags (name)
             SELECT DISTINCT j.value FROM events e, json_each(e.tags) j",
            [],
        )?;
        let mut stmt = conn
            .prepare("SELECT id, name, colour, exportable, hide_tag FROM api_tags ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(TagRow {
                id: r.get(0)?,
                name: r.get(1)?,
                colour: r.get(2)?,
                exportable: r.get(3)?,
                hide_tag: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds a tag to the list; an existing tag of that name gets the new colour.
    pub fn add_tag(&self, name: &str, colour: Option<&str>) -> Result<TagRow, DbError> {
        let conn = self.writer();
        ensure_tag(&conn, name)?;
        if let Some(colour) = colour {
            conn.execute(
                "UPDATE api_tags SET colour = ?2 WHERE name = ?1",
                [name, colour],
            )?;
        }
        read_tag(&conn, name)?.ok_or(DbError::NotFound("tag"))
    }

    /// Attaches tag `tag` (a name or a tag id) to the event or attribute with `uuid`.
    pub fn attach_tag(&self, uuid: &str, tag: &str) -> Result<TagRow, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let row = match read_tag(&tx, tag)? {
            Some(row) => row,
            None => ensure_tag(&tx, tag)?,
        };
        let target = target(&tx, uuid)?;
        change_tags(&tx, &target, |names| {
            if !names.contains(&row.name) {
                names.push(row.name.clone());
            }
        })?;
        tx.commit()?;
        Ok(row)
    }

    /// Removes tag `tag` (a name or a tag id) from the event or attribute with `uuid`.
    pub fn remove_tag(&self, uuid: &str, tag: &str) -> Result<(), DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let name = read_tag(&tx, tag)?.map_or_else(|| tag.to_owned(), |t| t.name);
        let target = target(&tx, uuid)?;
        change_tags(&tx, &target, |names| names.retain(|n| *n != name))?;
        tx.commit()?;
        Ok(())
    }
}
