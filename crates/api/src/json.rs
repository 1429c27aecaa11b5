//! MISP's JSON shapes of stored rows: ids and timestamps as strings, `Tag` lists, the
//! `Org`/`Orgc` blocks and the keys PyMISP reads.

use intel::galaxy::GalaxyCluster;
use serde_json::{json, Map, Value};

use crate::db::{
    AttributeRow, EventCorrelations, EventMeta, FullEvent, ObjectRow, RelatedAttribute, SightingRow,
};

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

/// Builds the `Org` block of an event: the organisation that owns the local copy.
fn owner_json(meta: &EventMeta) -> Value {
    json!({
        "id": meta.org_id.to_string(),
        "name": meta.org_name.as_deref().unwrap_or(LOCAL_ORG),
        "uuid": meta.org_uuid.as_deref().unwrap_or(LOCAL_ORG_UUID),
        "local": true,
    })
}

/// Builds the `Orgc` block of an event: the organisation that created it.
fn creator_json(meta: &EventMeta) -> Value {
    json!({
        "id": meta.orgc_id.to_string(),
        "name": meta.orgc.as_deref().or(meta.org_name.as_deref()).unwrap_or(LOCAL_ORG),
        "uuid": meta.orgc_uuid.as_deref().unwrap_or(LOCAL_ORG_UUID),
        "local": meta.orgc_id == meta.org_id,
    })
}

fn group_text(id: Option<i64>) -> String {
    id.unwrap_or(0).to_string()
}

/// Renders clusters as MISP's `Galaxy` list: one galaxy per cluster type, in order of first
/// appearance, each with its `GalaxyCluster` list. The store keeps no galaxy or cluster
/// uuid, so they are derived (UUID v5) from the type and the tag name: stable across reads.
pub fn galaxies_json(clusters: &[GalaxyCluster]) -> Value {
    let mut galaxies: Vec<(&str, Vec<Value>)> = Vec::new();
    for cluster in clusters {
        let index = match galaxies.iter().position(|(t, _)| *t == cluster.r#type) {
            Some(index) => index,
            None => {
                galaxies.push((&cluster.r#type, Vec::new()));
                galaxies.len() - 1
            }
        };
        galaxies[index].1.push(cluster_json(cluster));
    }
    let list = galaxies
        .into_iter()
        .map(|(galaxy_type, clusters)| {
            json!({
                "uuid": derived_uuid(&format!("galaxy:{galaxy_type}")),
                "name": galaxy_type,
                "type": galaxy_type,
                "description": "",
                "namespace": "misp",
                "GalaxyCluster": clusters,
            })
        })
        .collect();
    Value::Array(list)
}

fn cluster_json(cluster: &GalaxyCluster) -> Value {
    let mut value = json!({
        "uuid": derived_uuid(&cluster.tag_name),
        "type": cluster.r#type,
        "value": cluster.value,
        "tag_name": cluster.tag_name,
        "description": "",
        "source": "",
        "authors": [],
        "distribution": "3",
        "sharing_group_id": null,
        "default": false,
        "local": false,
    });
    if !cluster.external_id.is_empty() {
        value["meta"] = json!({ "external_id": cluster.external_id });
    }
    value
}

fn derived_uuid(name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("iocwatch:{name}").as_bytes(),
    )
    .to_string()
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
        "distribution": a.distribution.to_string(),
        "sharing_group_id": group_text(a.sharing_group_id),
        "comment": a.comment.clone().unwrap_or_default(),
        "deleted": a.deleted,
        "disable_correlation": a.disable_correlation,
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
        "org_id": meta.org_id.to_string(),
        "distribution": meta.distribution.to_string(),
        "id": meta.id.to_string(),
        "info": meta.info,
        "orgc_id": meta.orgc_id.to_string(),
        "uuid": meta.uuid,
        "publish_timestamp": publish_timestamp(meta).to_string(),
    })
}

fn publish_timestamp(meta: &EventMeta) -> i64 {
    meta.publish_timestamp
}

/// Renders the event's own keys, without attributes and objects.
pub fn event_meta_json(meta: &EventMeta) -> Map<String, Value> {
    let value = json!({
        "id": meta.id.to_string(),
        "orgc_id": meta.orgc_id.to_string(),
        "org_id": meta.org_id.to_string(),
        "date": meta.date.clone().unwrap_or_default(),
        "threat_level_id": meta.threat_level_id.unwrap_or(4).to_string(),
        "info": meta.info,
        "published": meta.published,
        "uuid": meta.uuid,
        "attribute_count": meta.attribute_count.to_string(),
        "analysis": meta.analysis.unwrap_or(0).to_string(),
        "timestamp": meta.timestamp.to_string(),
        "distribution": meta.distribution.to_string(),
        "proposal_email_lock": false,
        "locked": false,
        "publish_timestamp": publish_timestamp(meta).to_string(),
        "sharing_group_id": group_text(meta.sharing_group_id),
        "disable_correlation": meta.disable_correlation,
        "extends_uuid": "",
        "Org": owner_json(meta),
        "Orgc": creator_json(meta),
        "Tag": meta.tags.iter().map(|t| tag_json(t, false)).collect::<Vec<_>>(),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn object_json(
    o: &ObjectRow,
    sightings: &[SightingRow],
    correlations: &EventCorrelations,
) -> Value {
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
        "distribution": o.distribution.to_string(),
        "sharing_group_id": group_text(o.sharing_group_id),
        "comment": "",
        "deleted": o.deleted,
        "first_seen": null,
        "last_seen": null,
        "Attribute": o.attributes.iter().map(|a| event_attribute_json(a, sightings, correlations)).collect::<Vec<_>>(),
    })
}

/// Builds an attribute inside an event with its sightings, its over-correlation flag and, when they
/// were read, its related attributes.
fn event_attribute_json(
    a: &AttributeRow,
    sightings: &[SightingRow],
    correlations: &EventCorrelations,
) -> Value {
    let mut map = attribute_json(a);
    map.insert(
        "over_correlation".into(),
        Value::Bool(correlations.over_correlating.contains(&a.id)),
    );
    if !a.galaxies.is_empty() {
        map.insert("Galaxy".into(), galaxies_json(&a.galaxies));
    }
    if let Some(related) = correlations.related_attributes.get(&a.id) {
        map.insert("RelatedAttribute".into(), related_attributes_json(related));
    }
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

/// Renders a full event wrapped as `{"Event": {...}}`, without correlations.
pub fn full_event_json(event: &FullEvent, sightings: &[SightingRow]) -> Value {
    full_event_json_with(event, sightings, &EventCorrelations::default())
}

/// Renders a full event wrapped as `{"Event": {...}}` with its `RelatedEvent` list and
/// the correlations of its attributes.
pub fn full_event_json_with(
    event: &FullEvent,
    sightings: &[SightingRow],
    correlations: &EventCorrelations,
) -> Value {
    let mut map = event_meta_json(&event.meta);
    let attributes: Vec<Value> = event
        .attributes
        .iter()
        .map(|a| event_attribute_json(a, sightings, correlations))
        .collect();
    let objects: Vec<Value> = event
        .objects
        .iter()
        .map(|o| object_json(o, sightings, correlations))
        .collect();
    map.insert("Attribute".into(), Value::Array(attributes));
    map.insert("Object".into(), Value::Array(objects));
    map.insert("Galaxy".into(), galaxies_json(&event.meta.galaxies));
    for key in ["ShadowAttribute", "EventReport"] {
        map.insert(key.into(), Value::Array(Vec::new()));
    }
    let related: Vec<Value> = correlations
        .related_events
        .iter()
        .map(related_event_json)
        .collect();
    map.insert("RelatedEvent".into(), Value::Array(related));
    json!({ "Event": map })
}

/// Builds one entry of `RelatedEvent`: `{"Event": {...}}` with the keys MISP lists there.
pub fn related_event_json(meta: &EventMeta) -> Value {
    json!({"Event": {
        "id": meta.id.to_string(),
        "date": meta.date.clone().unwrap_or_default(),
        "threat_level_id": meta.threat_level_id.unwrap_or(4).to_string(),
        "info": meta.info,
        "published": meta.published,
        "uuid": meta.uuid,
        "analysis": meta.analysis.unwrap_or(0).to_string(),
        "timestamp": meta.timestamp.to_string(),
        "distribution": meta.distribution.to_string(),
        "org_id": meta.org_id.to_string(),
        "orgc_id": meta.orgc_id.to_string(),
        "Org": owner_json(meta),
        "Orgc": creator_json(meta),
    }})
}

/// A `RelatedAttribute` list: the fields MISP's correlation lookup returns for each
/// attribute, with the short block of its event.
pub fn related_attributes_json(related: &[RelatedAttribute]) -> Value {
    const KEYS: [&str; 13] = [
        "id",
        "event_id",
        "object_id",
        "object_relation",
        "category",
        "type",
        "value",
        "uuid",
        "timestamp",
        "distribution",
        "sharing_group_id",
        "to_ids",
        "comment",
    ];
    let list = related
        .iter()
        .map(|r| {
            let mut full = attribute_json(&r.attribute);
            let mut map = Map::new();
            for key in KEYS {
                if let Some(value) = full.remove(key) {
                    map.insert(key.into(), value);
                }
            }
            map.insert("Event".into(), event_brief_json(&r.event));
            Value::Object(map)
        })
        .collect();
    Value::Array(list)
}

/// A sighting without the `{"Sighting": ...}` wrapper.
pub fn sighting_json(s: &SightingRow) -> Value {
    json!({
        "id": s.id.to_string(),
        "uuid": s.uuid,
        "attribute_id": s.attribute_id.to_string(),
        "attribute_uuid": s.attribute_uuid,
        "event_id": s.event_id.to_string(),
        "org_id": s.org_id.to_string(),
        "date_sighting": s.date_sighting.to_string(),
        "source": s.source,
        "type": s.r#type.to_string(),
        "Organisation": {
            "id": s.org_id.to_string(),
            "uuid": s.org_uuid.as_deref().unwrap_or(LOCAL_ORG_UUID),
            "name": s.org_name.as_deref().unwrap_or(LOCAL_ORG),
        },
    })
}
