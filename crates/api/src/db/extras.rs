//! Keys of an event's MISP JSON that the rows do not store, such as `extends_uuid`,
//! `EventReport`, an attribute's `first_seen` or an object's `template_uuid` and
//! `ObjectReference`, kept in the event's stored JSON (`event_json`) across API edits.
//!
//! The rows are the truth for every key they render; the stored JSON adds the rest.
//! An edit merges as MISP does: keys given replace the stored ones, absent keys stay,
//! and attributes and objects are matched by uuid.

use std::collections::HashMap;
use std::io::Write;

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

use super::entries::EntryKind;
use super::events::read_full;
use super::DbError;
use crate::access::Viewer;

/// Event keys rendered from the rows (or local to this store); any other key is kept.
const EVENT_ROW_KEYS: &[&str] = &[
    "id",
    "orgc_id",
    "org_id",
    "date",
    "threat_level_id",
    "info",
    "published",
    "uuid",
    "attribute_count",
    "analysis",
    "timestamp",
    "distribution",
    "publish_timestamp",
    "sharing_group_id",
    "disable_correlation",
    "Org",
    "Orgc",
    "Tag",
    "Attribute",
    "Object",
    "Galaxy",
    "RelatedEvent",
    "Sighting",
    "SharingGroup",
];

/// Attribute keys rendered from the rows (or local to this store).
const ATTRIBUTE_ROW_KEYS: &[&str] = &[
    "id",
    "event_id",
    "object_id",
    "object_relation",
    "category",
    "type",
    "value",
    "to_ids",
    "uuid",
    "timestamp",
    "distribution",
    "sharing_group_id",
    "comment",
    "deleted",
    "disable_correlation",
    "Tag",
    "Galaxy",
    "RelatedAttribute",
    "Sighting",
    "over_correlation",
    "SharingGroup",
    "Event",
];

/// Object keys rendered from the rows (or local to this store).
const OBJECT_ROW_KEYS: &[&str] = &[
    "id",
    "name",
    "meta-category",
    "event_id",
    "uuid",
    "timestamp",
    "distribution",
    "sharing_group_id",
    "deleted",
    "Attribute",
    "SharingGroup",
];

/// The kept keys of one event, its attributes and its objects (by lowercase uuid).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Extras {
    event: Map<String, Value>,
    attributes: HashMap<String, Map<String, Value>>,
    objects: HashMap<String, Map<String, Value>>,
}

fn kept(map: &Map<String, Value>, row_keys: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(key, _)| !row_keys.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn uuid_of(map: &Map<String, Value>) -> Option<String> {
    map.get("uuid")?.as_str().map(str::to_lowercase)
}

fn maps<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    map.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn maps_mut<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

impl Extras {
    /// Collects the kept keys of an event in MISP JSON, without its `{"Event": ...}` wrapper.
    pub(crate) fn from_event(event: &Map<String, Value>) -> Extras {
        let mut extras = Extras {
            event: kept(event, EVENT_ROW_KEYS),
            ..Extras::default()
        };
        extras.add_attributes(event);
        for object in maps(event, "Object") {
            extras.add_attributes(object);
            let own = kept(object, OBJECT_ROW_KEYS);
            if let (Some(uuid), false) = (uuid_of(object), own.is_empty()) {
                extras.objects.insert(uuid, own);
            }
        }
        extras
    }

    fn add_attributes(&mut self, parent: &Map<String, Value>) {
        for attribute in maps(parent, "Attribute") {
            let own = kept(attribute, ATTRIBUTE_ROW_KEYS);
            if let (Some(uuid), false) = (uuid_of(attribute), own.is_empty()) {
                self.attributes.insert(uuid, own);
            }
        }
    }

    /// Removes the event reports limited to the owner organisation (distribution 0) or to
    /// a sharing group (4), for a viewer of another organisation.
    // NOTE: reports shared with a sharing group are removed even for its members, because
    // the group is not checked here.
    fn drop_restricted_reports(&mut self) {
        if let Some(Value::Array(reports)) = self.event.get_mut("EventReport") {
            reports.retain(|report| {
                let level = report.get("distribution").and_then(|d| match d {
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    other => other.as_i64(),
                });
                !matches!(level, Some(0) | Some(4))
            });
        }
    }

    /// Returns the lower-case uuids of the kept event reports and object references, the
    /// entries that a later edit may name by uuid to change in part.
    pub(crate) fn entry_uuids(&self) -> impl Iterator<Item = String> + '_ {
        let reports = maps(&self.event, "EventReport");
        let references = self
            .objects
            .values()
            .flat_map(|keys| maps(keys, "ObjectReference"));
        reports.chain(references).filter_map(uuid_of)
    }

    /// Lists the kept event reports and object references as (kind, lower-case uuid,
    /// lower-case uuid of the reference's object).
    pub(crate) fn entries(&self) -> Vec<(EntryKind, String, Option<String>)> {
        let reports = maps(&self.event, "EventReport")
            .filter_map(uuid_of)
            .map(|uuid| (EntryKind::Report, uuid, None));
        let references = self.objects.iter().flat_map(|(object, keys)| {
            maps(keys, "ObjectReference")
                .filter_map(uuid_of)
                .map(|uuid| (EntryKind::Reference, uuid, Some(object.clone())))
        });
        reports.chain(references).collect()
    }

    /// Removes the event report or object reference with uuid `uuid` (lower case).
    pub(crate) fn remove_entry(&mut self, uuid: &str) {
        let lists = std::iter::once(self.event.get_mut("EventReport")).chain(
            self.objects
                .values_mut()
                .map(|keys| keys.get_mut("ObjectReference")),
        );
        for list in lists {
            if let Some(Value::Array(entries)) = list {
                entries.retain(|e| e.as_object().and_then(uuid_of).as_deref() != Some(uuid));
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.event.is_empty() && self.attributes.is_empty() && self.objects.is_empty()
    }

    /// Merges the keys of a later write into these: its keys replace, others stay. The
    /// entries of `EventReport` and `ObjectReference` lists merge by uuid the same way,
    /// so an edit that names one report leaves the others as they are.
    pub(crate) fn merge(&mut self, newer: Extras) {
        merge_keys(&mut self.event, newer.event, "EventReport");
        for (uuid, keys) in newer.attributes {
            self.attributes.entry(uuid).or_default().extend(keys);
        }
        for (uuid, keys) in newer.objects {
            merge_keys(
                self.objects.entry(uuid).or_default(),
                keys,
                "ObjectReference",
            );
        }
    }

    /// Removes the soft-deleted event reports and object references, which views do not
    /// list. The stored JSON keeps them, so a push sends the deletion to the remote.
    fn drop_deleted_entries(&mut self) {
        retain_live(self.event.get_mut("EventReport"));
        for keys in self.objects.values_mut() {
            retain_live(keys.get_mut("ObjectReference"));
        }
    }

    /// Writes the kept keys into an event rendered from the rows, replacing the
    /// placeholders the rendering gives keys the rows do not store.
    pub(crate) fn apply(&self, event: &mut Map<String, Value>) {
        event.extend(self.event.clone());
        self.apply_attributes(event);
        for object in maps_mut(event, "Object") {
            self.apply_attributes(object);
            if let Some(keys) = uuid_of(object).and_then(|u| self.objects.get(&u)) {
                object.extend(keys.clone());
            }
        }
    }

    fn apply_attributes(&self, parent: &mut Map<String, Value>) {
        for attribute in maps_mut(parent, "Attribute") {
            if let Some(keys) = uuid_of(attribute).and_then(|u| self.attributes.get(&u)) {
                attribute.extend(keys.clone());
            }
        }
    }
}

/// Merges `newer` into `keys`: each key replaces the stored one, except the list under
/// `list_key`, whose entries merge by uuid.
fn merge_keys(keys: &mut Map<String, Value>, mut newer: Map<String, Value>, list_key: &str) {
    if let Some(given) = newer.remove(list_key) {
        match (given, keys.get_mut(list_key)) {
            (Value::Array(given), Some(Value::Array(stored))) => merge_entries(stored, given),
            (given, _) => {
                keys.insert(list_key.to_owned(), given);
            }
        }
    }
    keys.extend(newer);
}

/// Merges list entries by uuid: a known entry takes the keys given, a new one is added.
fn merge_entries(stored: &mut Vec<Value>, given: Vec<Value>) {
    for entry in given {
        let known = entry.as_object().and_then(uuid_of).and_then(|uuid| {
            stored
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .find(|old| uuid_of(old).as_deref() == Some(uuid.as_str()))
        });
        match (known, entry) {
            (Some(old), Value::Object(keys)) => old.extend(keys),
            (_, entry) => stored.push(entry),
        }
    }
}

/// Keeps the entries of a list that are not marked `deleted`.
fn retain_live(list: Option<&mut Value>) {
    if let Some(Value::Array(entries)) = list {
        entries.retain(|entry| !entry.get("deleted").is_some_and(is_set));
    }
}

/// Reads a MISP flag given as `true`, `1` or `"1"`.
fn is_set(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.trim(), "1" | "true"),
        _ => false,
    }
}

/// Reads the kept keys of event `id` from its stored JSON; none when it has no stored JSON.
pub(crate) fn read(conn: &Connection, id: i64) -> Result<Extras, DbError> {
    Ok(crate::sync::index::stored_json(conn, id)?
        .map(|event| Extras::from_event(&event))
        .unwrap_or_default())
}

/// Adds the kept keys of event `id`, owned by organisation `owner`, to `wrapped`, its
/// rendering for `viewer` as `{"Event": {...}}`.
pub(crate) fn apply_stored(
    conn: &Connection,
    id: i64,
    owner: i64,
    viewer: &Viewer,
    wrapped: &mut Value,
) -> Result<(), DbError> {
    let mut extras = read(conn, id)?;
    if extras.is_empty() {
        return Ok(());
    }
    extras.drop_deleted_entries();
    if !viewer.site_admin && viewer.org_id != owner {
        extras.drop_restricted_reports();
    }
    if let Some(event) = wrapped.get_mut("Event").and_then(Value::as_object_mut) {
        extras.apply(event);
    }
    Ok(())
}

impl super::Db {
    /// Adds the kept keys of `event` to `wrapped`, its rendering for `viewer` as
    /// `{"Event": {...}}`.
    pub fn add_kept_keys(
        &self,
        event: &super::EventMeta,
        viewer: &Viewer,
        wrapped: &mut Value,
    ) -> Result<(), DbError> {
        let conn = self.reader()?;
        apply_stored(&conn, event.id, event.org_id, viewer, wrapped)
    }
}

/// Stores the JSON of event `id` rendered from its rows with `extras` added, so that
/// exports and pushes keep them. Without extras, it drops the stored JSON, so the rows
/// alone are the event, as for events built from other formats.
pub(crate) fn write(conn: &Connection, id: i64, extras: &Extras) -> Result<(), DbError> {
    if extras.is_empty() {
        conn.execute("DELETE FROM event_json WHERE event_id = ?1", [id])?;
        return Ok(());
    }
    super::entries::register(conn, id, extras)?;
    let full = read_full(conn, id, false, &Viewer::SITE_ADMIN)?;
    let wrapped = crate::json::full_event_json(&full, &[]);
    // The stored JSON is the event without its `{"Event": ...}` wrapper, as imports keep it.
    let Some(Value::Object(mut event)) = wrapped.get("Event").cloned() else {
        return Ok(());
    };
    event.remove("RelatedEvent");
    extras.apply(&mut event);
    let text = serde_json::to_vec(&event).map_err(|e| DbError::Conflict(e.to_string()))?;
    let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(text.len() / 4 + 64));
    let blob = encoder
        .write_all(&text)
        .map_err(lz4_flex::frame::Error::from)
        .and_then(|()| encoder.finish())
        .map_err(|e| DbError::Conflict(format!("failed to compress the event JSON: {e}")))?;
    conn.execute(
        "INSERT OR REPLACE INTO event_json (event_id, json_lz4) VALUES (?1, ?2)",
        params![id, blob],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn extras_skip_row_keys() {
        let event = object(json!({
            "uuid": "E", "info": "x", "extends_uuid": "abc", "x_custom": 1,
            "Attribute": [{"uuid": "A1", "value": "v", "first_seen": "2020-01-01"}],
            "Object": [{"uuid": "O1", "name": "file", "template_uuid": "t",
                "Attribute": [{"uuid": "A2", "value": "w", "x_note": "n"}]}],
        }));
        let extras = Extras::from_event(&event);
        assert_eq!(extras.event.len(), 2);
        assert_eq!(extras.attributes["a1"]["first_seen"], "2020-01-01");
        assert_eq!(extras.attributes["a2"]["x_note"], "n");
        assert_eq!(extras.objects["o1"]["template_uuid"], "t");
        assert!(!extras.attributes["a1"].contains_key("value"));
    }

    #[test]
    fn merge_replaces_given_keys_only() {
        let mut old = Extras::from_event(&object(json!({"a": 1, "b": 2})));
        old.merge(Extras::from_event(&object(json!({"b": 3, "c": 4}))));
        assert_eq!(old.event["a"], 1);
        assert_eq!(old.event["b"], 3);
        assert_eq!(old.event["c"], 4);
    }

    #[test]
    fn reports_and_references_merge_by_uuid() {
        let mut old = Extras::from_event(&object(json!({
            "EventReport": [{"uuid": "R1", "name": "A"}, {"uuid": "r2", "name": "B"}],
            "Object": [{"uuid": "o1", "ObjectReference": [
                {"uuid": "f1", "relationship_type": "communicates-with"}]}],
        })));
        old.merge(Extras::from_event(&object(json!({
            "EventReport": [{"uuid": "r1", "deleted": true}, {"uuid": "r3", "name": "C"}],
            "Object": [{"uuid": "o1", "ObjectReference": [
                {"uuid": "f2", "relationship_type": "drops"}]}],
        }))));
        let reports = old.event["EventReport"].as_array().unwrap();
        let names: Vec<&Value> = reports.iter().map(|r| &r["name"]).collect();
        assert_eq!(names, vec!["A", "B", "C"]);
        assert_eq!(reports[0]["deleted"], true);
        assert_eq!(
            old.objects["o1"]["ObjectReference"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        old.drop_deleted_entries();
        assert_eq!(old.event["EventReport"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn entries_list_and_remove_by_uuid() {
        let mut extras = Extras::from_event(&object(json!({
            "EventReport": [{"uuid": "R1", "name": "A"}],
            "Object": [{"uuid": "O1", "ObjectReference": [{"uuid": "F1"}, {"uuid": "f2"}]}],
        })));
        let mut listed = extras.entries();
        listed.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(listed.len(), 3);
        assert_eq!(
            listed[0],
            (EntryKind::Reference, "f1".into(), Some("o1".into()))
        );
        assert_eq!(listed[2], (EntryKind::Report, "r1".into(), None));

        extras.remove_entry("f1");
        extras.remove_entry("r1");
        let left: Vec<String> = extras.entries().into_iter().map(|e| e.1).collect();
        assert_eq!(left, vec!["f2".to_owned()]);
    }

    #[test]
    fn restricted_reports_are_dropped() {
        let mut extras = Extras::from_event(&object(json!({"EventReport": [
            {"uuid": "r0", "distribution": "0"},
            {"uuid": "r3", "distribution": "3"},
            {"uuid": "r4", "distribution": 4},
            {"uuid": "r5", "distribution": "5"},
        ]})));
        extras.drop_restricted_reports();
        let kept: Vec<&Value> = extras.event["EventReport"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["uuid"])
            .collect();
        assert_eq!(kept, vec!["r3", "r5"]);
    }

    #[test]
    fn apply_overwrites_placeholders() {
        let extras = Extras::from_event(&object(json!({
            "extends_uuid": "abc",
            "Attribute": [{"uuid": "a1", "first_seen": "2020-01-01"}],
        })));
        let mut rendered = object(json!({
            "extends_uuid": "",
            "Attribute": [{"uuid": "A1", "first_seen": null}, {"uuid": "a9"}],
        }));
        extras.apply(&mut rendered);
        assert_eq!(rendered["extends_uuid"], "abc");
        assert_eq!(rendered["Attribute"][0]["first_seen"], "2020-01-01");
        assert!(rendered["Attribute"][1].get("first_seen").is_none());
    }
}
