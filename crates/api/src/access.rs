//! Read and write access: MISP's distribution levels and sharing groups as one SQL
//! predicate, which every read of events, objects and attributes applies in its `WHERE`
//! clause (so paging and streaming stay in SQL), and the owner check of every write.
//!
//! An event is visible to a user of organisation O when the user is a site admin, when O
//! owns the event (`org_id`), when its distribution is 1 (this community), 2 (connected
//! communities) or 3 (all communities), or when it is 4 (sharing group) and O is a member of
//! its sharing group. An object or attribute also needs its own distribution to allow it;
//! 5 inherits the event's.

use rusqlite::{Connection, OptionalExtension};

use crate::auth::User;
use crate::db::DbError;

/// Your organisation only.
pub const DIST_ORG: i64 = 0;
/// This community only: every organisation of this instance.
pub const DIST_COMMUNITY: i64 = 1;
/// Connected communities.
pub const DIST_CONNECTED: i64 = 2;
/// All communities.
pub const DIST_ALL: i64 = 3;
/// The members of the sharing group `sharing_group_id`.
pub const DIST_SHARING_GROUP: i64 = 4;
/// Objects and attributes: the event's distribution.
pub const DIST_INHERIT: i64 = 5;

/// Event distribution when a new event gives none (MISP's `default_event_distribution`).
pub const DEFAULT_EVENT_DISTRIBUTION: i64 = DIST_COMMUNITY;
/// Object and attribute distribution when none is given.
pub const DEFAULT_ATTRIBUTE_DISTRIBUTION: i64 = DIST_INHERIT;

/// Id of the local organisation created with the store.
pub const DEFAULT_ORG_ID: i64 = 1;

/// Identity a read is filtered for. A site admin can read everything, other users only what
/// is visible to their organisation, and organisation id 0 can read nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub org_id: i64,
    pub site_admin: bool,
}

impl Viewer {
    /// Viewer that can read every event, for the instance's own work (detector, exports run
    /// by the operator).
    pub const SITE_ADMIN: Viewer = Viewer {
        org_id: DEFAULT_ORG_ID,
        site_admin: true,
    };
    /// Viewer that can read nothing, the default of a query without a viewer.
    pub const NOBODY: Viewer = Viewer {
        org_id: 0,
        site_admin: false,
    };

    /// Returns the viewer of an authenticated user.
    pub fn of(user: &User) -> Viewer {
        Viewer {
            org_id: user.org_id,
            site_admin: user.role.is_admin(),
        }
    }

    /// Returns the SQL condition over `events {e}` that is true when the event is visible to
    /// this viewer.
    pub fn event_sql(&self, e: &str) -> String {
        if self.site_admin {
            return "1".into();
        }
        if self.org_id <= 0 {
            return "0".into();
        }
        format!(
            "({e}.org_id = {org} OR {e}.distribution IN (1, 2, 3)
              OR ({e}.distribution = 4 AND {sg}))",
            org = self.org_id,
            sg = self.sharing_group_sql(&format!("{e}.sharing_group_id")),
        )
    }

    /// Returns the SQL condition over `attributes {a}` joined with `events {e}` that is true
    /// when the attribute is visible to this viewer (its event, its object and its own
    /// distribution allow it).
    pub fn attribute_sql(&self, a: &str, e: &str) -> String {
        if self.site_admin {
            return "1".into();
        }
        if self.org_id <= 0 {
            return "0".into();
        }
        let own = self.item_sql(a);
        let object = self.item_sql("o");
        format!(
            "({event} AND ({e}.org_id = {org} OR ({own}
              AND ({a}.object_id IS NULL OR EXISTS (SELECT 1 FROM objects o
                   WHERE o.id = {a}.object_id AND {object})))))",
            event = self.event_sql(e),
            org = self.org_id,
        )
    }

    /// Returns the SQL condition over `objects {o}` joined with `events {e}` that is true
    /// when the object is visible to this viewer.
    pub fn object_sql(&self, o: &str, e: &str) -> String {
        if self.site_admin {
            return "1".into();
        }
        if self.org_id <= 0 {
            return "0".into();
        }
        format!(
            "({event} AND ({e}.org_id = {org} OR {own}))",
            event = self.event_sql(e),
            org = self.org_id,
            own = self.item_sql(o),
        )
    }

    /// Returns the SQL condition on the own distribution of an object or attribute aliased
    /// `t`.
    fn item_sql(&self, t: &str) -> String {
        format!(
            "({t}.distribution IN (1, 2, 3, 5) OR ({t}.distribution = 4 AND {sg}))",
            sg = self.sharing_group_sql(&format!("{t}.sharing_group_id"))
        )
    }

    /// Returns the SQL condition that is true when this viewer's organisation belongs to the
    /// sharing group in `column`.
    fn sharing_group_sql(&self, column: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM api_sharing_groups sg WHERE sg.id = {column}
              AND (sg.all_orgs = 1 OR sg.org_id = {org} OR EXISTS (
                  SELECT 1 FROM api_sharing_group_orgs sgo
                  WHERE sgo.sharing_group_id = sg.id AND sgo.org_id = {org})))",
            org = self.org_id
        )
    }
}

/// Returns true when event `event_id` is visible to `viewer`.
pub fn event_visible(conn: &Connection, viewer: &Viewer, event_id: i64) -> Result<bool, DbError> {
    let sql = format!(
        "SELECT 1 FROM events e WHERE e.id = ?1 AND {}",
        viewer.event_sql("e")
    );
    Ok(conn
        .query_row(&sql, [event_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Returns true when attribute `attribute_id` is visible to `viewer`.
pub fn attribute_visible(
    conn: &Connection,
    viewer: &Viewer,
    attribute_id: i64,
) -> Result<bool, DbError> {
    let sql = format!(
        "SELECT 1 FROM attributes a JOIN events e ON e.id = a.event_id WHERE a.id = ?1 AND {}",
        viewer.attribute_sql("a", "e")
    );
    Ok(conn
        .query_row(&sql, [attribute_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Checks that `viewer` may change event `event_id`. The event must be visible to the viewer
/// (else "not found"), and the viewer must own it or be a site admin (else "forbidden"),
/// because MISP allows only the owner organisation.
pub fn check_event_owner(conn: &Connection, viewer: &Viewer, event_id: i64) -> Result<(), DbError> {
    if !event_visible(conn, viewer, event_id)? {
        return Err(DbError::NotFound("event"));
    }
    if viewer.site_admin {
        return Ok(());
    }
    let owner: Option<i64> = conn
        .query_row("SELECT org_id FROM events WHERE id = ?1", [event_id], |r| {
            r.get(0)
        })
        .optional()?;
    match owner {
        Some(org) if org == viewer.org_id => Ok(()),
        Some(_) => Err(DbError::Forbidden(
            "only the organisation that owns the event may change it",
        )),
        None => Err(DbError::NotFound("event")),
    }
}

/// Reads a distribution given as a number or a numeric string. Returns `None` when it is
/// absent, not a number or out of range `0..=max`.
pub fn parse_distribution(value: Option<&str>, max: i64) -> Option<i64> {
    let n: i64 = value?.trim().parse().ok()?;
    (0..=max).contains(&n).then_some(n)
}
