//! Organisations and sharing groups: the tables `api_organisations`, `api_sharing_groups`
//! and `api_sharing_group_orgs`, read and written as MISP shapes them.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_secs, Db, DbError};
use crate::access::Viewer;

/// One organisation; `local` ones have users here, others are known from imported events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub local: bool,
    pub created: i64,
}

impl Org {
    fn from_row(r: &Row) -> rusqlite::Result<Org> {
        Ok(Org {
            id: r.get(0)?,
            uuid: r.get(1)?,
            name: r.get(2)?,
            local: r.get(3)?,
            created: r.get(4)?,
        })
    }
}

const ORG_COLUMNS: &str = "id, uuid, name, local, created";

/// A sharing group with its member organisations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharingGroup {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub releasability: String,
    /// The organisation that created the group.
    pub org_id: i64,
    pub all_orgs: bool,
    pub active: bool,
    pub created: i64,
    pub modified: i64,
    /// Members and their `extend` flag.
    pub members: Vec<(Org, bool)>,
}

/// The fields of a new sharing group.
#[derive(Debug, Clone, Default)]
pub struct NewSharingGroup {
    pub name: String,
    pub uuid: Option<String>,
    pub description: String,
    pub releasability: String,
    pub all_orgs: bool,
    pub active: bool,
}

/// Finds an organisation by id, uuid or name.
pub(crate) fn find_org(conn: &Connection, key: &str) -> Result<Option<Org>, DbError> {
    let sql = format!(
        "SELECT {ORG_COLUMNS} FROM api_organisations
         WHERE CAST(id AS TEXT) = ?1 OR uuid = lower(?1) OR name = ?1 ORDER BY id LIMIT 1"
    );
    Ok(conn
        .query_row(&sql, [key.trim()], Org::from_row)
        .optional()?)
}

/// Returns the organisation named `name` (or with `uuid`), adding it when missing.
pub(crate) fn ensure_org(
    conn: &Connection,
    name: &str,
    uuid: Option<&str>,
    local: bool,
) -> Result<Org, DbError> {
    if let Some(found) = uuid.map(|u| find_org(conn, u)).transpose()?.flatten() {
        return Ok(found);
    }
    if let Some(found) = find_org(conn, name)? {
        return Ok(found);
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(DbError::Conflict(
            "an organisation needs a name; give one with `--org NAME`".into(),
        ));
    }
    let uuid = uuid
        .filter(|u| uuid::Uuid::parse_str(u).is_ok())
        .map(str::to_lowercase)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    conn.execute(
        "INSERT INTO api_organisations (uuid, name, local, created) VALUES (?1, ?2, ?3, ?4)",
        params![uuid, name, local, now_secs()],
    )?;
    find_org(conn, &conn.last_insert_rowid().to_string())?.ok_or(DbError::NotFound("organisation"))
}

fn read_group(conn: &Connection, id: i64) -> Result<SharingGroup, DbError> {
    let mut group = conn
        .query_row(
            "SELECT id, uuid, name, description, releasability, org_id, all_orgs, active,
                    created, modified
             FROM api_sharing_groups WHERE id = ?1",
            [id],
            |r| {
                Ok(SharingGroup {
                    id: r.get(0)?,
                    uuid: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                    releasability: r.get(4)?,
                    org_id: r.get(5)?,
                    all_orgs: r.get(6)?,
                    active: r.get(7)?,
                    created: r.get(8)?,
                    modified: r.get(9)?,
                    members: Vec::new(),
                })
            },
        )
        .optional()?
        .ok_or(DbError::NotFound("sharing group"))?;
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.uuid, o.name, o.local, o.created, m.extend
         FROM api_sharing_group_orgs m JOIN api_organisations o ON o.id = m.org_id
         WHERE m.sharing_group_id = ?1 ORDER BY o.id",
    )?;
    group.members = stmt
        .query_map([id], |r| Ok((Org::from_row(r)?, r.get(5)?)))?
        .collect::<Result<_, _>>()?;
    Ok(group)
}

/// Resolves a sharing group id or uuid.
fn group_id(conn: &Connection, key: &str) -> Result<i64, DbError> {
    conn.query_row(
        "SELECT id FROM api_sharing_groups WHERE CAST(id AS TEXT) = ?1 OR uuid = lower(?1)",
        [key.trim()],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(DbError::NotFound("sharing group"))
}

/// True when `viewer` may see sharing group `group` (site admin, creator or member).
fn group_visible(viewer: &Viewer, group: &SharingGroup) -> bool {
    viewer.site_admin
        || group.all_orgs
        || group.org_id == viewer.org_id
        || group.members.iter().any(|(o, _)| o.id == viewer.org_id)
}

impl Db {
    /// Lists organisations in id order; `local_only` keeps those with users here.
    pub fn orgs(&self, local_only: bool) -> Result<Vec<Org>, DbError> {
        let conn = self.reader()?;
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM api_organisations {} ORDER BY id",
            if local_only { "WHERE local = 1" } else { "" }
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], Org::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Finds an organisation by id, uuid or name.
    pub fn org(&self, key: &str) -> Result<Org, DbError> {
        let conn = self.reader()?;
        find_org(&conn, key)?.ok_or(DbError::NotFound("organisation"))
    }

    /// Returns the organisation named `name`, adding it (local, with a new uuid) when missing.
    pub fn ensure_local_org(&self, name: &str) -> Result<Org, DbError> {
        let conn = self.writer();
        ensure_org(&conn, name, None, true)
    }

    /// Adds a sharing group created by organisation `org_id`, which becomes its first member.
    pub fn add_sharing_group(
        &self,
        org_id: i64,
        group: &NewSharingGroup,
    ) -> Result<SharingGroup, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM api_sharing_groups WHERE name = ?1",
                [&group.name],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(DbError::Conflict(format!(
                "a sharing group named `{}` exists already",
                group.name
            )));
        }
        let uuid = group
            .uuid
            .as_deref()
            .filter(|u| uuid::Uuid::parse_str(u).is_ok())
            .map(str::to_lowercase)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let now = now_secs();
        tx.execute(
            "INSERT INTO api_sharing_groups (uuid, name, description, releasability, org_id,
                 all_orgs, active, created, modified)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                uuid,
                group.name,
                group.description,
                group.releasability,
                org_id,
                group.all_orgs,
                group.active,
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO api_sharing_group_orgs (sharing_group_id, org_id, extend)
             VALUES (?1, ?2, 1)",
            params![id, org_id],
        )?;
        let stored = read_group(&tx, id)?;
        tx.commit()?;
        Ok(stored)
    }

    /// Adds organisation `org` (id, uuid or name) to sharing group `group` (id or uuid).
    pub fn add_org_to_sharing_group(
        &self,
        group: &str,
        org: &str,
        extend: bool,
    ) -> Result<SharingGroup, DbError> {
        let conn = self.writer();
        let id = group_id(&conn, group)?;
        let org = find_org(&conn, org)?.ok_or(DbError::NotFound("organisation"))?;
        conn.execute(
            "INSERT INTO api_sharing_group_orgs (sharing_group_id, org_id, extend)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (sharing_group_id, org_id) DO UPDATE SET extend = excluded.extend",
            params![id, org.id, extend],
        )?;
        conn.execute(
            "UPDATE api_sharing_groups SET modified = ?2 WHERE id = ?1",
            params![id, now_secs()],
        )?;
        read_group(&conn, id)
    }

    /// Removes organisation `org` from sharing group `group`.
    pub fn remove_org_from_sharing_group(
        &self,
        group: &str,
        org: &str,
    ) -> Result<SharingGroup, DbError> {
        let conn = self.writer();
        let id = group_id(&conn, group)?;
        let org = find_org(&conn, org)?.ok_or(DbError::NotFound("organisation"))?;
        conn.execute(
            "DELETE FROM api_sharing_group_orgs WHERE sharing_group_id = ?1 AND org_id = ?2",
            params![id, org.id],
        )?;
        read_group(&conn, id)
    }

    /// Lists the sharing groups `viewer` may see, in id order.
    pub fn sharing_groups(&self, viewer: &Viewer) -> Result<Vec<SharingGroup>, DbError> {
        let conn = self.reader()?;
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM api_sharing_groups ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            let group = read_group(&conn, id)?;
            if group_visible(viewer, &group) {
                out.push(group);
            }
        }
        Ok(out)
    }

    /// Reads sharing group `key` (id or uuid) when `viewer` may see it.
    pub fn sharing_group(&self, key: &str, viewer: &Viewer) -> Result<SharingGroup, DbError> {
        let conn = self.reader()?;
        let group = read_group(&conn, group_id(&conn, key)?)?;
        if group_visible(viewer, &group) {
            Ok(group)
        } else {
            Err(DbError::NotFound("sharing group"))
        }
    }
}
