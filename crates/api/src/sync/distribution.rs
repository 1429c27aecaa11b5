//! MISP's distribution levels and how an event's JSON changes when it crosses to another
//! server: the downgrade on pull and the filtering and downgrade on push.
//!
//! The rules follow MISP 2.4 and 2.5 (`Server::__updatePulledEventBeforeInsert` on pull,
//! `Event::__updateEventForSync` and `checkDistributionForPush` on push) for servers that
//! are not marked internal.

use serde_json::{Map, Value};

/// Distribution level 0: the creator's organisation only.
pub const ORG_ONLY: u8 = 0;
/// Distribution level 1: this community (the organisations of this server).
pub const THIS_COMMUNITY: u8 = 1;
/// Distribution level 2: connected communities (this server and the servers it syncs with).
pub const CONNECTED: u8 = 2;
/// Distribution level 3: all communities.
pub const ALL: u8 = 3;
/// Distribution level 4: the members of a sharing group.
pub const SHARING_GROUP: u8 = 4;
/// Distribution level 5 (attributes and objects): the level of the event.
pub const INHERIT: u8 = 5;

/// Level of an event whose JSON has none. MISP reads such events (from MISP 1.x) as 1 on
/// pull, which is also the default level of a new event.
pub const DEFAULT_EVENT_LEVEL: u8 = THIS_COMMUNITY;

/// Keys of the local server's database that mean nothing on another server.
const LOCAL_EVENT_KEYS: [&str; 7] = [
    "id",
    "org_id",
    "orgc_id",
    "Org",
    "RelatedEvent",
    "ShadowAttribute",
    "attribute_count",
];
const LOCAL_ATTRIBUTE_KEYS: [&str; 7] = [
    "id",
    "event_id",
    "object_id",
    "Sighting",
    "RelatedAttribute",
    "ShadowAttribute",
    "over_correlation",
];

/// Reads a distribution level given as a number or a numeric string.
pub fn level(value: Option<&Value>) -> Option<u8> {
    match value? {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|level| *level <= INHERIT)
}

/// Reads the `distribution` of an event object, or [`DEFAULT_EVENT_LEVEL`] without one.
pub fn event_level(event: &Map<String, Value>) -> u8 {
    level(event.get("distribution")).unwrap_or(DEFAULT_EVENT_LEVEL)
}

/// Reads MISP's boolean forms: `true`, `1` and `"1"`.
pub fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true"),
        _ => false,
    }
}

fn set_level(element: &mut Map<String, Value>, level: u8) {
    element.insert("distribution".into(), Value::String(level.to_string()));
}

/// Uuid of the sharing group attached to an element, from its `SharingGroup` block.
fn sharing_group_uuid(element: &Map<String, Value>) -> Option<&str> {
    element.get("SharingGroup")?.get("uuid")?.as_str()
}

fn list_mut<'a>(element: &'a mut Map<String, Value>, key: &str) -> Vec<&'a mut Map<String, Value>> {
    match element.get_mut(key) {
        Some(Value::Array(list)) => list.iter_mut().filter_map(Value::as_object_mut).collect(),
        _ => Vec::new(),
    }
}

/// Rewrites an event fetched from a remote server before it is stored, as MISP does on
/// pull: 1 (this community) becomes 0 (organisation only) and 2 (connected communities)
/// becomes 1, on the event, its attributes, objects, object attributes and reports. A
/// sharing group stays only when `known_group` returns true for its uuid; otherwise the
/// element becomes organisation only. Local tags are dropped, the event is marked locked
/// (it came from a sync), and the remote's row ids are removed. `Orgc` (the creator) stays.
pub fn downgrade_pulled(event: &mut Map<String, Value>, known_group: &dyn Fn(&str) -> bool) {
    if level(event.get("distribution")).is_none() {
        set_level(event, DEFAULT_EVENT_LEVEL);
    }
    downgrade_element(event, known_group);
    drop_local_tags(event);
    event.insert("locked".into(), Value::Bool(true));
    for key in LOCAL_EVENT_KEYS {
        event.remove(key);
    }
    for attribute in list_mut(event, "Attribute") {
        downgrade_attribute(attribute, known_group);
    }
    for object in list_mut(event, "Object") {
        downgrade_element(object, known_group);
        object.remove("id");
        object.remove("event_id");
        for attribute in list_mut(object, "Attribute") {
            downgrade_attribute(attribute, known_group);
        }
    }
    for report in list_mut(event, "EventReport") {
        downgrade_element(report, known_group);
    }
}

fn downgrade_attribute(attribute: &mut Map<String, Value>, known_group: &dyn Fn(&str) -> bool) {
    downgrade_element(attribute, known_group);
    drop_local_tags(attribute);
    for key in LOCAL_ATTRIBUTE_KEYS {
        attribute.remove(key);
    }
}

fn downgrade_element(element: &mut Map<String, Value>, known_group: &dyn Fn(&str) -> bool) {
    match level(element.get("distribution")) {
        Some(THIS_COMMUNITY) => set_level(element, ORG_ONLY),
        Some(CONNECTED) => set_level(element, THIS_COMMUNITY),
        Some(SHARING_GROUP) if !sharing_group_uuid(element).is_some_and(known_group) => {
            set_level(element, ORG_ONLY);
            element.insert("sharing_group_id".into(), Value::String("0".into()));
            element.remove("SharingGroup");
        }
        _ => {}
    }
}

/// Removes tags marked `local`, which MISP never sends to or accepts from another server.
fn drop_local_tags(element: &mut Map<String, Value>) {
    if let Some(Value::Array(tags)) = element.get_mut("Tag") {
        tags.retain(|tag| !flag(tag.get("local")));
    }
}

/// Prepares a local event for a push to the server at `remote_url`, as MISP does. Returns
/// false, leaving the event unchanged, when the event may not go there: it is unpublished,
/// or its level is 0 or 1, or its sharing group does not include the remote. Otherwise
/// level 2 becomes 1 (3 and 4 stay), attributes and objects whose own level keeps them
/// on this server are removed, and the local row ids and `Org` (the owner) are dropped.
pub fn prepare_for_push(event: &mut Map<String, Value>, remote_url: &str) -> bool {
    if !flag(event.get("published")) || !may_push(event, event_level(event), remote_url) {
        return false;
    }
    if event_level(event) == CONNECTED {
        set_level(event, THIS_COMMUNITY);
    }
    drop_local_tags(event);
    for key in LOCAL_EVENT_KEYS {
        event.remove(key);
    }
    retain_shareable(event, "Attribute", remote_url);
    retain_shareable(event, "Object", remote_url);
    retain_shareable(event, "EventReport", remote_url);
    for object in list_mut(event, "Object") {
        object.remove("id");
        object.remove("event_id");
        retain_shareable(object, "Attribute", remote_url);
    }
    true
}

/// Keeps the elements of list `key` that may go to the remote, downgraded for it.
fn retain_shareable(parent: &mut Map<String, Value>, key: &str, remote_url: &str) {
    let Some(Value::Array(list)) = parent.get_mut(key) else {
        return;
    };
    list.retain_mut(|element| {
        let Some(element) = element.as_object_mut() else {
            return false;
        };
        // Attributes and objects without a level inherit the event's.
        let level = level(element.get("distribution")).unwrap_or(INHERIT);
        if level != INHERIT && !may_push(element, level, remote_url) {
            return false;
        }
        if level == CONNECTED {
            set_level(element, THIS_COMMUNITY);
        }
        drop_local_tags(element);
        for key in LOCAL_ATTRIBUTE_KEYS {
            element.remove(key);
        }
        true
    });
}

fn may_push(element: &Map<String, Value>, level: u8, remote_url: &str) -> bool {
    match level {
        CONNECTED | ALL => true,
        SHARING_GROUP => group_includes(element, remote_url),
        _ => false,
    }
}

/// True when the element's sharing group may travel to `remote_url`: the group is roaming
/// (it goes to any server), or it lists a server with that URL.
fn group_includes(element: &Map<String, Value>, remote_url: &str) -> bool {
    let Some(group) = element.get("SharingGroup") else {
        return false;
    };
    if flag(group.get("roaming")) {
        return true;
    }
    let expected = remote_url.trim_end_matches('/');
    group
        .get("SharingGroupServer")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|member| member.get("Server")?.get("url")?.as_str())
        .any(|url| url.trim_end_matches('/').eq_ignore_ascii_case(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REMOTE: &str = "https://misp.example.org";

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn attribute(uuid: &str, level: &str) -> Value {
        json!({"uuid": uuid, "type": "md5", "value": "0".repeat(32), "distribution": level,
               "id": "7", "event_id": "3"})
    }

    fn uuids(event: &Map<String, Value>) -> Vec<&str> {
        event["Attribute"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["uuid"].as_str())
            .collect()
    }

    fn no_group(_: &str) -> bool {
        false
    }

    #[test]
    fn pull_downgrades_each_level() {
        for (before, after) in [("0", "0"), ("1", "0"), ("2", "1"), ("3", "3"), ("4", "0")] {
            let mut event = object(json!({"distribution": before, "Attribute": []}));
            downgrade_pulled(&mut event, &no_group);
            assert_eq!(event["distribution"], after, "event level {before}");
        }
    }

    #[test]
    fn pull_reads_missing_level_as_community() {
        let mut event = object(json!({"info": "old"}));
        downgrade_pulled(&mut event, &no_group);
        assert_eq!(event["distribution"], "0");
    }

    #[test]
    fn pull_downgrades_attributes_and_objects() {
        let mut event = object(json!({
            "distribution": "3",
            "Attribute": [attribute("a", "2"), attribute("b", "5")],
            "Object": [{"distribution": "1", "Attribute": [attribute("c", "2")]}],
        }));
        downgrade_pulled(&mut event, &no_group);
        assert_eq!(event["Attribute"][0]["distribution"], "1");
        assert_eq!(event["Attribute"][1]["distribution"], "5");
        assert_eq!(event["Object"][0]["distribution"], "0");
        assert_eq!(event["Object"][0]["Attribute"][0]["distribution"], "1");
        assert!(event["Attribute"][0].get("id").is_none());
    }

    #[test]
    fn pull_keeps_known_sharing_group() {
        let group = json!({"uuid": "g-1", "name": "partners"});
        let mut event = object(json!({"distribution": "4", "SharingGroup": group}));
        downgrade_pulled(&mut event, &|uuid| uuid == "g-1");
        assert_eq!(event["distribution"], "4");
        assert_eq!(event["SharingGroup"]["uuid"], "g-1");
    }

    #[test]
    fn pull_keeps_creator_and_drops_owner() {
        let mut event = object(json!({
            "distribution": "3", "id": "12", "org_id": "4", "orgc_id": "5",
            "Org": {"name": "remote owner"}, "Orgc": {"name": "CIRCL"},
            "Tag": [{"name": "tlp:green"}, {"name": "workflow:todo", "local": true}],
        }));
        downgrade_pulled(&mut event, &no_group);
        assert_eq!(event["Orgc"]["name"], "CIRCL");
        assert!(event.get("Org").is_none());
        assert!(event.get("id").is_none());
        assert_eq!(event["Tag"].as_array().map(Vec::len), Some(1));
        assert_eq!(event["locked"], true);
    }

    #[test]
    fn push_takes_levels_two_and_three() {
        for (before, after) in [("0", None), ("1", None), ("2", Some("1")), ("3", Some("3"))] {
            let mut event = object(json!({"distribution": before, "published": true}));
            let pushed = prepare_for_push(&mut event, REMOTE);
            assert_eq!(pushed, after.is_some(), "event level {before}");
            if let Some(after) = after {
                assert_eq!(event["distribution"], after, "event level {before}");
            }
        }
    }

    #[test]
    fn push_skips_unpublished_events() {
        let mut event = object(json!({"distribution": "3", "published": false}));
        assert!(!prepare_for_push(&mut event, REMOTE));
    }

    #[test]
    fn push_strips_local_attributes() {
        let mut event = object(json!({
            "distribution": "3", "published": "1",
            "Attribute": [attribute("org", "0"), attribute("community", "1"),
                          attribute("connected", "2"), attribute("inherit", "5")],
        }));
        assert!(prepare_for_push(&mut event, REMOTE));
        assert_eq!(uuids(&event), ["connected", "inherit"]);
        assert_eq!(event["Attribute"][0]["distribution"], "1");
        assert!(event["Attribute"][0].get("id").is_none());
    }

    #[test]
    fn push_follows_sharing_group_members() {
        let group = |url: &str| {
            json!({"uuid": "g-1", "roaming": false,
                   "SharingGroupServer": [{"Server": {"url": url}}]})
        };
        let mut member = object(json!({"distribution": "4", "published": true,
                                        "SharingGroup": group("https://misp.example.org/")}));
        assert!(prepare_for_push(&mut member, REMOTE));
        assert_eq!(member["distribution"], "4");

        let mut outsider = object(json!({"distribution": "4", "published": true,
                                          "SharingGroup": group("https://other.example.org")}));
        assert!(!prepare_for_push(&mut outsider, REMOTE));

        let mut roaming = object(json!({"distribution": "4", "published": true,
                                         "SharingGroup": {"uuid": "g-2", "roaming": true}}));
        assert!(prepare_for_push(&mut roaming, REMOTE));
    }

    #[test]
    fn levels_parse_from_strings_and_numbers() {
        assert_eq!(level(Some(&json!("3"))), Some(3));
        assert_eq!(level(Some(&json!(2))), Some(2));
        assert_eq!(level(Some(&json!("9"))), None);
        assert_eq!(level(Some(&json!("high"))), None);
        assert_eq!(level(None), None);
    }
}
