//! Hand-written deserialisation of [`Attribute`]: known keys are matched without
//! allocating and read with the lenient readers; other keys go to `extra`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::lenient::{OptBool, OptI64, OptString};
use crate::model::{Attribute, Galaxy, Sighting, Tag};

enum Key {
    Id,
    Uuid,
    Type,
    Category,
    Value,
    ToIds,
    Deleted,
    Comment,
    Timestamp,
    ObjectRelation,
    EventId,
    ObjectId,
    Distribution,
    SharingGroupId,
    DisableCorrelation,
    FirstSeen,
    LastSeen,
    Data,
    Tag,
    Galaxy,
    Sighting,
    ShadowAttribute,
    Other(String),
}

impl Key {
    fn from_str(s: &str) -> Key {
        match s {
            "id" => Key::Id,
            "uuid" => Key::Uuid,
            "type" => Key::Type,
            "category" => Key::Category,
            "value" => Key::Value,
            "to_ids" => Key::ToIds,
            "deleted" => Key::Deleted,
            "comment" => Key::Comment,
            "timestamp" => Key::Timestamp,
            "object_relation" => Key::ObjectRelation,
            "event_id" => Key::EventId,
            "object_id" => Key::ObjectId,
            "distribution" => Key::Distribution,
            "sharing_group_id" => Key::SharingGroupId,
            "disable_correlation" => Key::DisableCorrelation,
            "first_seen" => Key::FirstSeen,
            "last_seen" => Key::LastSeen,
            "data" => Key::Data,
            "Tag" => Key::Tag,
            "Galaxy" => Key::Galaxy,
            "Sighting" => Key::Sighting,
            "ShadowAttribute" => Key::ShadowAttribute,
            other => Key::Other(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key::from_str(v))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AttributeVisitor)
    }
}

struct AttributeVisitor;

impl<'de> Visitor<'de> for AttributeVisitor {
    type Value = Attribute;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a MISP attribute object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attribute, A::Error> {
        let mut a = Attribute::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => a.id = map.next_value::<OptString>()?.0,
                Key::Uuid => a.uuid = map.next_value::<OptString>()?.0,
                Key::Type => a.r#type = map.next_value::<OptString>()?.0.unwrap_or_default(),
                Key::Category => a.category = map.next_value::<OptString>()?.0,
                Key::Value => a.value = map.next_value::<OptString>()?.0.unwrap_or_default(),
                Key::ToIds => a.to_ids = map.next_value::<OptBool>()?.0,
                Key::Deleted => a.deleted = map.next_value::<OptBool>()?.0.unwrap_or(false),
                Key::Comment => a.comment = map.next_value::<OptString>()?.0,
                Key::Timestamp => a.timestamp = map.next_value::<OptI64>()?.0,
                Key::ObjectRelation => a.object_relation = map.next_value::<OptString>()?.0,
                Key::EventId => a.event_id = map.next_value::<OptString>()?.0,
                Key::ObjectId => a.object_id = map.next_value::<OptString>()?.0,
                Key::Distribution => a.distribution = map.next_value::<OptString>()?.0,
                Key::SharingGroupId => a.sharing_group_id = map.next_value::<OptString>()?.0,
                Key::DisableCorrelation => a.disable_correlation = map.next_value::<OptBool>()?.0,
                Key::FirstSeen => a.first_seen = map.next_value::<OptString>()?.0,
                Key::LastSeen => a.last_seen = map.next_value::<OptString>()?.0,
                Key::Data => a.data = map.next_value::<OptString>()?.0,
                Key::ShadowAttribute => {
                    a.shadow_attributes =
                        map.next_value::<Option<Vec<Value>>>()?.unwrap_or_default()
                }
                Key::Tag => a.tags = map.next_value::<Option<Vec<Tag>>>()?.unwrap_or_default(),
                Key::Galaxy => {
                    a.galaxies = map.next_value::<Option<Vec<Galaxy>>>()?.unwrap_or_default()
                }
                Key::Sighting => {
                    a.sightings = map
                        .next_value::<Option<Vec<Sighting>>>()?
                        .unwrap_or_default()
                }
                Key::Other(name) => {
                    let value: Value = map.next_value()?;
                    a.extra.insert(name, value);
                }
            }
        }
        Ok(a)
    }
}

thread_local! {
    /// Upper bound on the attributes of the event being read, set by the JSON importer.
    static CAPACITY_HINT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Reserves room for up to `bound` attributes in the next attribute list read on this
/// thread. Without it the list grows by doubling, and each step copies a list of a
/// million attributes (several hundred MB) into fresh memory. Reserved but unused room
/// is never touched, so it costs address space only.
pub(crate) fn hint_attribute_capacity(bound: usize) {
    CAPACITY_HINT.with(|h| h.set(bound));
}

/// Reads an attribute list, or `null` as an empty list.
pub(crate) fn attribute_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Attribute>, D::Error> {
    d.deserialize_any(AttributeListVisitor)
}

struct AttributeListVisitor;

impl<'de> Visitor<'de> for AttributeListVisitor {
    type Value = Vec<Attribute>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of MISP attributes")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let bound = CAPACITY_HINT.with(|h| h.replace(0));
        let mut all = Vec::with_capacity(bound);
        while let Some(attribute) = seq.next_element::<Attribute>()? {
            all.push(attribute);
        }
        Ok(all)
    }
}
