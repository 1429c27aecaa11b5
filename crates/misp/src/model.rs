//! The MISP core format: Event, Attribute, Object, Tag, Galaxy, Sighting and Org.
//!
//! Fields follow MISP's JSON names. Numbers may arrive as strings or numbers and are
//! written back as strings, as MISP does. Keys that are not modelled land in `extra`
//! and are written back unchanged, so an event read and exported again loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lenient;

/// A MISP event with its attributes, objects, tags and galaxies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub uuid: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub info: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub threat_level_id: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub analysis: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub date: Option<String>,
    /// Last change, in seconds since the Unix epoch; decides whether a re-import replaces.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub timestamp: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub published: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub publish_timestamp: Option<i64>,
    #[serde(rename = "Orgc", default, skip_serializing_if = "Option::is_none")]
    pub orgc: Option<Org>,
    #[serde(rename = "Org", default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Org>,
    #[serde(rename = "Tag", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(
        rename = "Attribute",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::model_de::attribute_list"
    )]
    pub attributes: Vec<Attribute>,
    #[serde(rename = "Object", default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Object>,
    #[serde(rename = "Galaxy", default, skip_serializing_if = "Vec::is_empty")]
    pub galaxies: Vec<Galaxy>,
    #[serde(rename = "Sighting", default, skip_serializing_if = "Vec::is_empty")]
    pub sightings: Vec<Sighting>,
    /// Keys not modelled above (`RelatedEvent`, `EventReport`, `distribution`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One indicator or piece of context inside an event or object.
///
/// Deserialisation is written out by hand in `model_de.rs`: attributes are most of what
/// an import reads, and the derived form with a flattened `extra` map is several times
/// slower.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attribute {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub r#type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub value: String,
    /// Whether the attribute is an indicator for detection; `None` takes the type's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ids: Option<bool>,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_relation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Sharing level, `0` (organisation only) to `5` (inherit the event's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_correlation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Base64 content of a `malware-sample` or `attachment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(rename = "Tag", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(rename = "Galaxy", skip_serializing_if = "Vec::is_empty")]
    pub galaxies: Vec<Galaxy>,
    #[serde(rename = "Sighting", skip_serializing_if = "Vec::is_empty")]
    pub sightings: Vec<Sighting>,
    /// Proposed changes to the attribute, kept as MISP wrote them.
    #[serde(rename = "ShadowAttribute", skip_serializing_if = "Vec::is_empty")]
    pub shadow_attributes: Vec<Value>,
    /// Keys not modelled above. MISP exports carry the fields above on every attribute,
    /// so they are modelled to keep this map (one allocation each) empty.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A MISP object: attributes grouped by a template such as `file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Object {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(
        rename = "meta-category",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub meta_category: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool_flag")]
    pub deleted: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub timestamp: Option<i64>,
    #[serde(
        rename = "Attribute",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::model_de::attribute_list"
    )]
    pub attributes: Vec<Attribute>,
    /// Keys not modelled above (`template_uuid`, `ObjectReference`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tag such as `tlp:white` or `misp-galaxy:...`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    /// Keys not modelled above (`colour`, `exportable`, `id`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A galaxy with its clusters, kept as MISP wrote them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Galaxy {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub r#type: Option<String>,
    #[serde(
        rename = "GalaxyCluster",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub clusters: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A sighting of an attribute (type 0 sighting, 1 false positive, 2 expiration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub uuid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub r#type: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64",
        serialize_with = "lenient::ser_opt_i64_str"
    )]
    pub date_sighting: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub source: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An organisation: `Orgc` created the event, `Org` owns the local copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Org {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The creating organisation is an [`Org`] under the `Orgc` key.
pub type Orgc = Org;

impl Event {
    /// Iterates over every attribute: the event's own, then those inside objects.
    pub fn all_attributes(&self) -> impl Iterator<Item = (Option<&Object>, &Attribute)> {
        let own = self.attributes.iter().map(|a| (None, a));
        let in_objects = self
            .objects
            .iter()
            .flat_map(|o| o.attributes.iter().map(move |a| (Some(o), a)));
        own.chain(in_objects)
    }

    /// Returns the tag names of the event, in order.
    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.name.clone()).collect()
    }

    /// Wraps the event in `{"Event": ...}`, the form MISP feeds and exports use.
    pub fn to_wrapped_json(&self) -> Result<String, serde_json::Error> {
        #[derive(Serialize)]
        struct Wrapped<'a> {
            #[serde(rename = "Event")]
            event: &'a Event,
        }
        serde_json::to_string(&Wrapped { event: self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let json = r#"{"uuid":"5a3c2fda-78f4-44b7-8366-46da02de0b81","info":"x",
            "distribution":"3","RelatedEvent":[{"Event":{"id":"1"}}],
            "Attribute":[{"type":"md5","value":"0749bae92ca336a02c83d126e04ec628",
                "to_ids":"1","first_seen":null,"sharing_group_id":"0","x_custom":[1]}]}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(event.extra["distribution"], "3");
        assert!(event.extra.contains_key("RelatedEvent"));
        assert_eq!(event.attributes[0].to_ids, Some(true));
        assert_eq!(event.attributes[0].sharing_group_id.as_deref(), Some("0"));
        assert_eq!(
            event.attributes[0].extra["x_custom"],
            serde_json::json!([1])
        );

        let again: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn numbers_written_back_as_strings() {
        let event: Event =
            serde_json::from_str(r#"{"threat_level_id": 2, "timestamp": 7}"#).unwrap();
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["threat_level_id"], "2");
        assert_eq!(value["timestamp"], "7");
    }
}
