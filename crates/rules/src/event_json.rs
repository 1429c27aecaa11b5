//! Events to and from JSON: Wazuh's `syscheck` object, the agent and the `misp` object.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::event::{Agent, Attr, Event, FileEvent, FileEventKind, MispGalaxy, MispMatch};
use crate::mitre::MitreTechnique;
use crate::time;

/// `syscheck` keys that [`Syscheck`] writes at a fixed place; any other key kept in
/// [`FileEvent::extra`] is written just before `event`.
const KNOWN_KEYS: [&str; 16] = [
    "path",
    "hard_links",
    "mode",
    "symbolic_path",
    "arch",
    "value_name",
    "value_type",
    "win_perm_before",
    "win_perm_after",
    "attrs_before",
    "attrs_after",
    "diff",
    "tags",
    "changed_attributes",
    "event",
    "audit",
];

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(list_item).collect(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a list item: text, or an object with a `name` (MISP tags and warninglists).
fn list_item(value: &Value) -> Option<String> {
    text(value).or_else(|| value.get("name").and_then(text))
}

impl FileEvent {
    /// Reads the `syscheck` object of a Wazuh alert (`path`, `event`, `md5_after`, ...).
    pub fn from_syscheck_json(value: &Value) -> Result<Self, Error> {
        Self::from_syscheck_json_skipping(value, &[])
    }

    /// Reads a `syscheck` object like [`FileEvent::from_syscheck_json`], leaving out the
    /// keys in `skip`, such as the envelope an agent adds around the syscheck fields.
    pub fn from_syscheck_json_skipping(value: &Value, skip: &[&str]) -> Result<Self, Error> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::Event("`syscheck` must be an object".into()))?;
        let path = obj
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Event("`syscheck.path` is missing or not text".into()))?;
        let event = obj
            .get("event")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Event("`syscheck.event` is missing or not text".into()))?;
        let kind = FileEventKind::parse(event).ok_or_else(|| {
            Error::Event(format!(
                "`syscheck.event` is `{event}`: use added, modified or deleted"
            ))
        })?;

        let mut file = FileEvent {
            path: path.to_string(),
            kind: Some(kind),
            ..Default::default()
        };
        for (key, value) in obj {
            if !skip.contains(&key.as_str()) {
                read_key(&mut file, key, value);
            }
        }
        if kind == FileEventKind::Modified {
            fill_unchanged(&mut file);
        }
        Ok(file)
    }

    /// Writes the `syscheck` object of an alert in Wazuh's key order.
    pub fn to_syscheck_json(&self) -> Value {
        serde_json::to_value(Syscheck(self)).unwrap_or(Value::Null)
    }
}

/// A value of the `syscheck` object, borrowed where possible to keep writing cheap.
enum Scalar<'a> {
    Str(&'a str),
    Owned(String),
    Number(u64),
    Json(&'a Value),
}

impl Serialize for Scalar<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Str(s) => serializer.serialize_str(s),
            Scalar::Owned(s) => serializer.serialize_str(s),
            Scalar::Number(n) => serializer.serialize_u64(*n),
            Scalar::Json(v) => v.serialize(serializer),
        }
    }
}

/// Serialises a [`FileEvent`] as the `syscheck` object of an alert.
pub(crate) struct Syscheck<'a>(pub &'a FileEvent);

impl Serialize for Syscheck<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let file = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("path", &file.path)?;
        if !file.hard_links.is_empty() {
            map.serialize_entry("hard_links", &file.hard_links)?;
        }
        if let Some(mode) = &file.mode {
            map.serialize_entry("mode", mode)?;
        }
        if let Some(path) = &file.symbolic_path {
            map.serialize_entry("symbolic_path", path)?;
        }
        for key in ["arch", "value_name", "value_type"] {
            if let Some(value) = file.extra.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in attribute_entries(file) {
            map.serialize_entry(&key, &value)?;
        }
        if let Some(diff) = &file.diff {
            map.serialize_entry("diff", diff)?;
        }
        if !file.tags.is_empty() {
            map.serialize_entry("tags", &file.tags)?;
        }
        if !file.changed_attributes.is_empty() {
            map.serialize_entry("changed_attributes", &file.changed_attributes)?;
        }
        for (key, value) in &file.extra {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        if let Some(kind) = file.kind {
            map.serialize_entry("event", kind.as_str())?;
        }
        if let Some(audit) = file.extra.get("audit") {
            map.serialize_entry("audit", audit)?;
        }
        map.end()
    }
}

fn list_value(items: &[String]) -> Option<Value> {
    (!items.is_empty()).then(|| Value::from(items.to_vec()))
}

fn read_key(file: &mut FileEvent, key: &str, value: &Value) {
    match key {
        "path" | "event" => {}
        "mode" => file.mode = text(value),
        "symbolic_path" => file.symbolic_path = text(value),
        "diff" => file.diff = text(value),
        "hard_links" => file.hard_links = text_list(value),
        "tags" => file.tags = text_list(value),
        "changed_attributes" => file.changed_attributes = text_list(value),
        _ => {
            if !read_attribute(file, key, value) {
                file.extra.insert(key.to_string(), value.clone());
            }
        }
    }
}

/// Wazuh writes a `*_before` key only when the value changed, so a missing one means
/// the old value equals the new one.
fn fill_unchanged(file: &mut FileEvent) {
    for (attr, _) in Attr::ALL {
        if attr.get(&file.before).is_none() {
            let after = attr.get(&file.after).clone();
            *attr.get_mut(&mut file.before) = after;
        }
    }
}

fn read_attribute(file: &mut FileEvent, key: &str, value: &Value) -> bool {
    let (base, before) = match (key.strip_suffix("_before"), key.strip_suffix("_after")) {
        (Some(base), _) => (base, true),
        (_, Some(base)) => (base, false),
        _ => return false,
    };
    let Some((attr, _)) = Attr::ALL.iter().find(|(_, name)| *name == base) else {
        return false;
    };
    let side = if before {
        &mut file.before
    } else {
        &mut file.after
    };
    *attr.get_mut(side) = text(value);
    true
}

/// `*_before`/`*_after` entries in Wazuh's order; a `*_before` value is written only
/// when it is set and differs from the new value.
fn attribute_entries(file: &FileEvent) -> Vec<(String, Scalar<'_>)> {
    let mut out = Vec::with_capacity(16);
    for (attr, name) in Attr::ALL {
        let old = attr.get(&file.before).as_deref().filter(|v| !v.is_empty());
        let new = attr.get(&file.after).as_deref().filter(|v| !v.is_empty());
        if attr == Attr::Perm {
            push_extra(file, &mut out, "win_perm_before");
        }
        if let Some(old) = old.filter(|old| Some(*old) != new) {
            out.push((format!("{name}_before"), attribute_value(attr, old)));
        }
        if attr == Attr::Perm {
            push_extra(file, &mut out, "win_perm_after");
        }
        if let Some(new) = new {
            out.push((format!("{name}_after"), attribute_value(attr, new)));
        }
        if attr == Attr::Sha256 {
            push_extra(file, &mut out, "attrs_before");
            push_extra(file, &mut out, "attrs_after");
        }
    }
    out
}

fn push_extra<'a>(file: &'a FileEvent, out: &mut Vec<(String, Scalar<'a>)>, key: &str) {
    if let Some(value) = file.extra.get(key) {
        out.push((key.to_string(), Scalar::Json(value)));
    }
}

/// Wazuh writes `inode_*` as numbers and an epoch `mtime_*` as a date.
fn attribute_value(attr: Attr, value: &str) -> Scalar<'_> {
    match attr {
        Attr::Inode => match value.parse::<u64>() {
            Ok(n) => Scalar::Number(n),
            Err(_) => Scalar::Str(value),
        },
        Attr::Mtime => match value.parse::<i64>() {
            Ok(secs) => Scalar::Owned(time::mtime(secs)),
            Err(_) => Scalar::Str(value),
        },
        _ => Scalar::Str(value),
    }
}

impl Agent {
    /// Reads `{"id": "001", "name": "web1", "ip": "10.0.0.5"}`; a missing id is `000`.
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        if !value.is_object() {
            return Err(Error::Event("`agent` must be an object".into()));
        }
        Ok(Self {
            id: value
                .get("id")
                .and_then(text)
                .unwrap_or_else(|| "000".into()),
            name: value.get("name").and_then(text).unwrap_or_default(),
            ip: value.get("ip").and_then(text),
        })
    }
}

impl MispMatch {
    /// Reads the enrichment object (`event_id`, `type`, `tags`, `error`, ...).
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::Event("`misp` must be an object".into()))?;
        let get = |key: &str| obj.get(key).and_then(text);
        Ok(Self {
            event_id: get("event_id"),
            event_uuid: get("event_uuid"),
            event_info: get("event_info"),
            threat_level_id: get("threat_level_id"),
            attribute_id: get("attribute_id"),
            attribute_uuid: get("attribute_uuid"),
            attribute_type: get("type"),
            category: get("category"),
            value: get("value"),
            tags: obj.get("tags").map(text_list).unwrap_or_default(),
            warninglists: obj.get("warninglists").map(text_list).unwrap_or_default(),
            galaxies: obj.get("galaxies").map(read_galaxies).unwrap_or_default(),
            mitre_techniques: obj
                .get("mitre_techniques")
                .map(read_techniques)
                .unwrap_or_default(),
            error: get("error"),
        })
    }

    /// Writes the `data.misp` object of an alert; unset fields are left out.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let fields = [
            ("event_id", &self.event_id),
            ("event_uuid", &self.event_uuid),
            ("event_info", &self.event_info),
            ("threat_level_id", &self.threat_level_id),
            ("attribute_id", &self.attribute_id),
            ("attribute_uuid", &self.attribute_uuid),
            ("type", &self.attribute_type),
            ("category", &self.category),
            ("value", &self.value),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                out.insert(key.into(), Value::String(v.clone()));
            }
        }
        if let Some(v) = list_value(&self.tags) {
            out.insert("tags".into(), v);
        }
        if let Some(v) = list_value(&self.warninglists) {
            out.insert("warninglists".into(), v);
        }
        if !self.galaxies.is_empty() {
            let list = self.galaxies.iter().map(galaxy_json).collect();
            out.insert("galaxies".into(), Value::Array(list));
        }
        let ids: Vec<String> = self.mitre_techniques.iter().map(|t| t.id.clone()).collect();
        if let Some(v) = list_value(&ids) {
            out.insert("mitre_techniques".into(), v);
        }
        if let Some(e) = &self.error {
            out.insert("error".into(), Value::String(e.clone()));
        }
        Value::Object(out)
    }
}

/// `{"type", "value", "tag_name"}` of one cluster.
fn galaxy_json(g: &MispGalaxy) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::String(g.galaxy_type.clone()));
    map.insert("value".into(), Value::String(g.value.clone()));
    map.insert("tag_name".into(), Value::String(g.tag_name.clone()));
    Value::Object(map)
}

/// Reads clusters given as objects (`{"type", "value", "tag_name"}`) or as cluster values.
fn read_galaxies(value: &Value) -> Vec<MispGalaxy> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(o) => Some(MispGalaxy {
                galaxy_type: o.get("type").and_then(text).unwrap_or_default(),
                value: o.get("value").and_then(text)?,
                tag_name: o.get("tag_name").and_then(text).unwrap_or_default(),
            }),
            other => text(other).map(|value| MispGalaxy {
                value,
                ..MispGalaxy::default()
            }),
        })
        .collect()
}

/// Reads techniques given as ids (`"T1059"`) or objects (`{"id", "technique", "tactic"}`).
fn read_techniques(value: &Value) -> Vec<MitreTechnique> {
    let Value::Array(items) = value else {
        return text_list(value)
            .iter()
            .map(|id| MitreTechnique::from_id(id))
            .collect();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(o) => {
                let id = o.get("id").and_then(text)?;
                let technique = o.get("technique").and_then(text).unwrap_or_default();
                let tactics = o.get("tactic").map(text_list).unwrap_or_default();
                Some(
                    MitreTechnique {
                        id: id.trim().to_ascii_uppercase(),
                        technique,
                        tactics,
                    }
                    .completed(),
                )
            }
            other => text(other).map(|id| MitreTechnique::from_id(&id)),
        })
        .collect()
}

impl Event {
    /// Reads the document `iocwatch rules test` takes on stdin: a Wazuh alert's
    /// `syscheck` object with `agent` and `location` beside it, and optionally the
    /// intel enrichment as `misp` (or `data.misp`, as in iocwatch's own alerts).
    pub fn from_json(doc: &Value) -> Result<Self, Error> {
        if !doc.is_object() {
            return Err(Error::Event("the event must be a JSON object".into()));
        }
        let syscheck = doc
            .get("syscheck")
            .ok_or_else(|| Error::Event("`syscheck` object is missing".into()))?;
        let file = FileEvent::from_syscheck_json(syscheck)?;
        let agent = match doc.get("agent") {
            Some(a) => Agent::from_json(a)?,
            None => Agent {
                id: "000".into(),
                ..Agent::default()
            },
        };
        let location = doc
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or("syscheck");
        let mut event = Event::new(file, agent, location);
        let misp = doc
            .get("misp")
            .or_else(|| doc.get("data").and_then(|d| d.get("misp")));
        if let Some(m) = misp {
            event = event.with_misp(MispMatch::from_json(m)?);
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syscheck_round_trip_keeps_wazuh_order() {
        let input = json!({
            "path": "/media/user/software/suspicious-file.exe",
            "mode": "realtime",
            "size_after": "0",
            "perm_after": "rw-r--r--",
            "uid_after": "0",
            "gid_after": "0",
            "md5_after": "d41d8cd98f00b204e9800998ecf8427e",
            "sha1_after": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "sha256_after": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "uname_after": "root",
            "gname_after": "root",
            "mtime_after": "2022-11-17T19:17:42",
            "inode_after": 1704505,
            "event": "added"
        });
        let file = FileEvent::from_syscheck_json(&input).unwrap();
        assert_eq!(file.to_syscheck_json().to_string(), input.to_string());
    }

    #[test]
    fn before_values_are_written_only_when_changed() {
        let input = json!({
            "path": "/etc/hosts", "event": "modified",
            "size_before": "10", "size_after": "12",
            "uid_before": "0", "uid_after": "0",
            "mtime_before": 0, "mtime_after": 60,
            "changed_attributes": ["size", "mtime"]
        });
        let out = FileEvent::from_syscheck_json(&input)
            .unwrap()
            .to_syscheck_json();
        assert_eq!(out["size_before"], "10");
        assert!(out.get("uid_before").is_none());
        assert_eq!(out["mtime_after"], "1970-01-01T00:01:00");
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys.last().unwrap().as_str(), "event");
    }

    #[test]
    fn skipped_keys_stay_out_of_syscheck() {
        let input = json!({
            "path": "/etc/hosts", "event": "added", "id": 7, "type": "file",
            "md5_after": "d41d8cd98f00b204e9800998ecf8427e", "tag": "web"
        });
        let file = FileEvent::from_syscheck_json_skipping(&input, &["id", "type"]).unwrap();
        let out = file.to_syscheck_json();
        assert!(out.get("id").is_none());
        assert!(out.get("type").is_none());
        assert_eq!(out["tag"], "web");
        assert_eq!(out["md5_after"], "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn missing_event_is_rejected() {
        let err = FileEvent::from_syscheck_json(&json!({"path": "/x"})).unwrap_err();
        assert!(err.to_string().contains("syscheck.event"));
    }

    #[test]
    fn misp_object_reads_lists_and_techniques() {
        let m = MispMatch::from_json(&json!({
            "event_id": 7,
            "tags": [{"name": "tlp:green"}, "malware"],
            "mitre_techniques": ["t1204.002", {"id": "T9999", "technique": "New"}]
        }))
        .unwrap();
        assert_eq!(m.event_id.as_deref(), Some("7"));
        assert_eq!(m.tags, vec!["tlp:green", "malware"]);
        assert_eq!(m.mitre_techniques[0].technique, "Malicious File");
        assert_eq!(m.mitre_techniques[1].technique, "New");
    }

    #[test]
    fn event_document_reads_agent_location_and_misp() {
        let doc = json!({
            "syscheck": {"path": "/x", "event": "deleted"},
            "agent": {"id": "002", "name": "db", "ip": "10.0.0.2"},
            "location": "syscheck",
            "data": {"misp": {"error": "timeout"}}
        });
        let event = Event::from_json(&doc).unwrap();
        assert_eq!(event.agent.id, "002");
        assert_eq!(event.decoder_name(), "syscheck_deleted");
        assert_eq!(event.field("misp.error").as_deref(), Some("timeout"));
    }
}
