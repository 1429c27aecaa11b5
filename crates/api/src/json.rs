//! MISP's JSON shapes of stored rows: ids and timestamps as strings, `Tag` lists, the
//! `Org`/`Orgc` blocks and the keys PyMISP reads.

use serde_json::{json, Map, Value};

use crate::db::{AttributeRow, EventMeta, FullEvent, ObjectRow, SightingRow};

/// Name and uuid of the organisation that owns the local store.
pub const LOCAL_ORG: &str = "iocwatch";
pub const LOCAL_ORG_UUID: &str = "5f6e7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6";

pub fn tag_json(name: &str, inherited: bool) -> Value {
    let mut tag = json!({
        "name": name,
        "colour": "#ffffff",
        "exportable": true,
        "hide_tag": false,
        "local": false,
    });
    if inherited {
        tag["inherited"] = json!(1);
    }
    tag
}

fn org_json(name: Option<&str>) -> Value {
    json!({"id": "1", "name": name.unwrap_or(LOCAL_ORG), "uuid": LOCAL_ORG_UUID, "local": true})
}

/// Renders an attribute as MISP does inside an event or a search result.
pub fn attribute_json(a: &AttributeRow) -> Map<String, Value> {
    let value = json!({
        "id": a.id.to_string(),
        "event_id": a.event_id.to_string(),
        "object_id": a.object_id.unwrap_or(0).to_string(),
        "object_relation": a.object_relation,
        "category": a.category,
        "type": a.r#type,
        "value": a.value,
        "to_ids": a.to_ids,
        "uuid": a.uuid,
        "timestamp": a.timestamp.unwrap_or(0).to_string(),
        "distribution": "5",
        "sharing_group_id": "0",
        "comment": a.comment.clone().unwrap_or_default(),
        "deleted": a.deleted,
        "disable_correlation": false,
        "first_seen": null,
        "last_seen": null,
        "Tag": a.tags.iter().map(|t| tag_json(t, false)).collect::<Vec<_>>(),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Renders the short `Event` block MISP adds to each attribute of a search result.
pub fn event_brief_json(meta: &EventMeta) -> Value {
    json!({
        "org_id": "1",
        "distribution": "1",
        "id": meta.id.to_string(),
        "info": meta.info,
        "orgc_id": "1",
        "uuid": meta.uuid,
        "publish_timestamp": publish_timestamp(meta).to_string(),
    })
}

fn publish_timestamp(meta: &EventMeta) -> i64 {
    // NOTE: the store keeps no publish time, so a published event reports its last change.
    if meta.published {
        meta.timestamp
    } else {
        0
    }
}

/// Renders the event's own keys, without attributes and objects.
pub fn event_meta_json(meta: &EventMeta) -> Map<String, Value> {
    let value = json!({
        "id": meta.id.to_string(),
        "orgc_id": "1",
        "org_id": "1",
        "date": meta.date.clone().unwrap_or_default(),
        "threat_level_id": meta.threat_level_id.unwrap_or(4).to_string(),
        "info": meta.info,
        "published": meta.published,
        "uuid": meta.uuid,
        "attribute_count": meta.attribute_count.to_string(),
        "analysis": meta.analysis.unwrap_or(0).to_string(),
        "timestamp": meta.timestamp.to_string(),
        "distribution": "1",
        "proposal_email_lock": false,
        "locked": false,
        "publish_timestamp": publish_timestamp(meta).to_string(),
        "sharing_group_id": "0",
        "disable_correlation": false,
        "extends_uuid": "",
        "Org": org_json(None),
        "Orgc": org_json(meta.orgc.as_deref()),
        "Tag": meta.tags.iter().map(|t| tag_json(t, false)).collect::<Vec<_>>(),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn object_json(o: &ObjectRow, sightings: &[SightingRow]) -> Value {
    json!({
        "id": o.id.to_string(),
        "name": o.name,
        "meta-category": o.meta_category,
        "description": "",
        "template_uuid": "",
        "template_version": "",
        "event_id": o.event_id.to_string(),
        "uuid": o.uuid,
        "timestamp": o.attributes.iter().filter_map(|a| a.timestamp).max().unwrap_or(0).to_string(),
        "distribution": "5",
        "sharing_group_id": "0",
        "comment": "",
        "deleted": o.deleted,
        "first_seen": null,
        "last_seen": null,
        "Attribute": o.attributes.iter().map(|a| with_sightings(a, sightings)).collect::<Vec<_>>(),
    })
}

fn with_sightings(a: &AttributeRow, sightings: &[SightingRow]) -> Value {
    let mut map = attribute_json(a);
    let own: Vec<Value> = sightings
        .iter()
        .filter(|s| s.attribute_id == a.id)
        .map(sighting_json)
        .collect();
    if !own.is_empty() {
        map.insert("Sighting".into(), Value::Array(own));
    }
    Value::Object(map)
}

/// Renders a full event wrapped as `{"Event": {...}}`.
pub fn full_event_json(event: &FullEvent, sightings: &[SightingRow]) -> Value {
    let mut map = event_meta_json(&event.meta);
    let attributes: Vec<Value> = event
        .attributes
        .iter()
        .map(|a| with_sightings(a, sightings))
        .collect();
    let objects: Vec<Value> = event
        .objects
        .iter()
        .map(|o| object_json(o, sightings))
        .collect();
    map.insert("Attribute".into(), Value::Array(attributes));
    map.insert("Object".into(), Value::Array(objects));
    for key in ["ShadowAttribute", "RelatedEvent", "Galaxy", "EventReport"] {
        map.insert(key.into(), Value::Array(Vec::new()));
    }
    json!({ "Event": map })
}

/// A sighting without the `{"Sighting": ...}` wrapper.
pub fn sighting_json(s: &SightingRow) -> Value {
    json!({
        "id": s.id.to_string(),
        "uuid": s.uuid,
        "attribute_id": s.attribute_id.to_string(),
        "attribute_uuid": s.attribute_uuid,
        "event_id": s.event_id.to_string(),
        "org_id": "1",
        "date_sighting": s.date_sighting.to_string(),
        "source": s.source,
        "type": s.r#type.to_string(),
        "Organisation": {"id": "1", "uuid": LOCAL_ORG_UUID, "name": LOCAL_ORG},
    })
}
