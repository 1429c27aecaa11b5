//! Who an imported event is shared with, read from its MISP JSON as MISP reads an event
//! file. The distribution of the event, its objects and attributes is kept. A sharing group
//! is kept when its uuid names a group of this store. Otherwise the item falls back to
//! "your organisation only" (0), with a note. The creator organisation (`Orgc`) is kept,
//! and added when new. The owner is the local organisation.
//!
//! Events of other formats (feeds, lists, STIX) get the defaults: owned and created by the
//! local organisation, shared with this community.

use std::collections::HashMap;

use misp::{Attribute, Event, Object};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use super::write::now_secs;
use crate::Error;

/// Id of the local organisation, the owner of every imported event.
pub const LOCAL_ORG_ID: i64 = 1;
/// MISP's "your organisation only".
pub const DIST_ORG: i64 = 0;
/// MISP's "this community only", the distribution of an event that gives none.
pub const DIST_COMMUNITY: i64 = 1;
/// MISP's "sharing group".
pub const DIST_SHARING_GROUP: i64 = 4;
/// Objects and attributes: the event's distribution.
pub const DIST_INHERIT: i64 = 5;

/// Owner, creator, distribution and sharing group of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSharing {
    pub org_id: i64,
    pub orgc_id: i64,
    pub distribution: i64,
    pub sharing_group_id: Option<i64>,
}

impl EventSharing {
    /// Sharing of an event whose format has no sharing model.
    pub const DEFAULT: EventSharing = EventSharing {
        org_id: LOCAL_ORG_ID,
        orgc_id: LOCAL_ORG_ID,
        distribution: DIST_COMMUNITY,
        sharing_group_id: None,
    };
}

/// Reads the sharing of events, objects and attributes in one transaction, remembering
/// the sharing groups and organisations looked up, and the items whose group is unknown.
pub struct Resolver<'a> {
    tx: &'a Transaction<'a>,
    /// False for formats without a sharing model: everything gets the defaults.
    keep: bool,
    groups: HashMap<String, Option<i64>>,
    /// Items of the current event whose sharing group is unknown here.
    unknown_groups: usize,
    pub notes: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(tx: &'a Transaction<'a>, keep: bool) -> Resolver<'a> {
        Resolver {
            tx,
            keep,
            groups: HashMap::new(),
            unknown_groups: 0,
            notes: Vec::new(),
        }
    }

    /// Reads the sharing of `event`, adding its creator organisation when new.
    pub fn event(&mut self, event: &Event) -> Result<EventSharing, Error> {
        self.unknown_groups = 0;
        if !self.keep {
            return Ok(EventSharing::DEFAULT);
        }
        let orgc_id = match event.orgc.as_ref().filter(|o| !o.name.trim().is_empty()) {
            Some(orgc) => self.ensure_org(orgc.name.trim(), orgc.uuid.as_deref())?,
            None => LOCAL_ORG_ID,
        };
        let level = number(event.extra.get("distribution"))
            .filter(|d| (DIST_ORG..=DIST_SHARING_GROUP).contains(d))
            .unwrap_or(DIST_COMMUNITY);
        let (distribution, sharing_group_id) = self.group(level, &event.extra)?;
        Ok(EventSharing {
            org_id: LOCAL_ORG_ID,
            orgc_id,
            distribution,
            sharing_group_id,
        })
    }

    /// Reads the distribution and sharing group of an object.
    pub fn object(&mut self, object: &Object) -> Result<(i64, Option<i64>), Error> {
        if !self.keep {
            return Ok((DIST_INHERIT, None));
        }
        let level = item_level(number(object.extra.get("distribution")));
        self.group(level, &object.extra)
    }

    /// Reads the distribution and sharing group of an attribute.
    pub fn attribute(&mut self, attribute: &Attribute) -> Result<(i64, Option<i64>), Error> {
        if !self.keep {
            return Ok((DIST_INHERIT, None));
        }
        let level = item_level(attribute.distribution.as_deref().and_then(parse_i64));
        if level != DIST_SHARING_GROUP {
            return Ok((level, None));
        }
        self.group(level, &attribute.extra)
    }

    /// Adds a note when items of event `uuid` named a sharing group unknown here.
    pub fn finish_event(&mut self, uuid: &str) {
        if self.unknown_groups > 0 {
            tracing::warn!(
                event = uuid,
                items = self.unknown_groups,
                "sharing group unknown here; stored as your organisation only"
            );
            self.notes.push(format!(
                "event {uuid}: sharing group not known here (by uuid) for {} of the event, \
                 its objects and attributes, stored with distribution 0 (your organisation \
                 only); add the group and import the file again to share them",
                self.unknown_groups
            ));
        }
        self.unknown_groups = 0;
    }

    /// Keeps `level` unless it is "sharing group" and the item's group is unknown here.
    fn group(
        &mut self,
        level: i64,
        extra: &Map<String, Value>,
    ) -> Result<(i64, Option<i64>), Error> {
        if level != DIST_SHARING_GROUP {
            return Ok((level, None));
        }
        let uuid = extra
            .get("SharingGroup")
            .and_then(|g| g.get("uuid"))
            .and_then(Value::as_str)
            .map(|u| u.trim().to_ascii_lowercase());
        let local = match uuid {
            Some(uuid) => self.group_id(&uuid)?,
            None => None,
        };
        match local {
            Some(id) => Ok((DIST_SHARING_GROUP, Some(id))),
            None => {
                self.unknown_groups += 1;
                Ok((DIST_ORG, None))
            }
        }
    }

    fn group_id(&mut self, uuid: &str) -> Result<Option<i64>, Error> {
        if let Some(found) = self.groups.get(uuid) {
            return Ok(*found);
        }
        let found = self
            .tx
            .prepare_cached("SELECT id FROM api_sharing_groups WHERE uuid = ?1")?
            .query_row([uuid], |r| r.get(0))
            .optional()?;
        self.groups.insert(uuid.to_owned(), found);
        Ok(found)
    }

    /// Returns the id of the organisation with `uuid` or `name`, adding it when missing.
    fn ensure_org(&mut self, name: &str, uuid: Option<&str>) -> Result<i64, Error> {
        let uuid = uuid
            .map(|u| u.trim().to_ascii_lowercase())
            .filter(|u| uuid::Uuid::parse_str(u).is_ok());
        let found: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT id FROM api_organisations WHERE uuid = ?1 OR name = ?2
                 ORDER BY uuid = ?1 DESC, id LIMIT 1",
            )?
            .query_row(params![uuid.as_deref().unwrap_or(""), name], |r| r.get(0))
            .optional()?;
        if let Some(id) = found {
            return Ok(id);
        }
        let uuid = uuid.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.tx
            .prepare_cached(
                "INSERT INTO api_organisations (uuid, name, local, created)
                 VALUES (?1, ?2, 0, ?3)",
            )?
            .execute(params![uuid, name, now_secs()])?;
        Ok(self.tx.last_insert_rowid())
    }
}

/// Checks an object or attribute distribution: 0 to 5, else inherit.
fn item_level(value: Option<i64>) -> i64 {
    value
        .filter(|d| (DIST_ORG..=DIST_INHERIT).contains(d))
        .unwrap_or(DIST_INHERIT)
}

/// Reads a number given as JSON number or numeric string.
fn number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_i64(s),
        _ => None,
    }
}

fn parse_i64(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}
