//! Validation of a request's event before it is stored. Attribute values are checked per
//! type, and the fields MISP checks before a save by their shape: uuids, the event date,
//! first and last seen times, tag names, object names, object references and event
//! reports. Every problem is reported at once, per field, in MISP's `errors` shape.

use std::collections::HashSet;

use misp::fields::{check_seen, is_date, is_uuid};
use misp::{Attribute, Event, Object, Tag};
use serde_json::{json, Map, Value};

/// Validates `event` in place (attribute values are normalised) and returns MISP's
/// per-field errors, empty when it may be stored. A new event (`creating`) needs an `info`
/// and its attributes get the time of the write. An object, event report or object
/// reference whose uuid is not in `known` (the lower-case uuids of the stored event's
/// entries) is new, so it needs its required fields. A known one may be changed in part.
pub fn validate_event(
    event: &mut Event,
    creating: bool,
    known: &HashSet<String>,
) -> Map<String, Value> {
    let mut errors = Map::new();
    if creating && event.info.trim().is_empty() {
        errors.insert("info".into(), json!(["Info cannot be empty."]));
    }
    if !event.uuid.is_empty() && !is_uuid(&event.uuid) {
        errors.insert("uuid".into(), json!([invalid_uuid(&event.uuid)]));
    }
    if let Some(date) = event.date.as_deref().filter(|d| !d.is_empty()) {
        if !is_date(date) {
            let message = format!("invalid date `{date}`; use a calendar date as YYYY-MM-DD");
            errors.insert("date".into(), json!([message]));
        }
    }
    insert_nonempty(&mut errors, "Tag", tag_errors(&event.tags));
    let reports = report_errors(event.extra.get("EventReport"), known);
    insert_nonempty(&mut errors, "EventReport", reports);

    let mut attribute_errors = Map::new();
    for (n, a) in event.attributes.iter_mut().enumerate() {
        insert_nonempty(
            &mut attribute_errors,
            &n.to_string(),
            attribute_errors_of(a, creating),
        );
    }
    let mut object_errors = Map::new();
    for (n, o) in event.objects.iter_mut().enumerate() {
        insert_nonempty(
            &mut object_errors,
            &n.to_string(),
            object_errors_of(o, known),
        );
        for (m, a) in o.attributes.iter_mut().enumerate() {
            let key = format!("Object {n} Attribute {m}");
            insert_nonempty(
                &mut attribute_errors,
                &key,
                attribute_errors_of(a, creating),
            );
        }
    }
    insert_nonempty(&mut errors, "Attribute", attribute_errors);
    insert_nonempty(&mut errors, "Object", object_errors);
    errors
}

/// Validates and normalises one attribute; returns its errors per field. A new attribute
/// (`creating`) gets the time of the write, and an edited one keeps the timestamp given,
/// which the store compares with its own.
pub fn attribute_errors_of(a: &mut Attribute, creating: bool) -> Map<String, Value> {
    let mut errors = Map::new();
    if a.uuid.as_deref().is_some_and(|u| u.trim().is_empty()) {
        a.uuid = None;
    }
    let prepared = match creating {
        true => super::events::prepare_for_write(a),
        false => misp::validate::prepare_attribute(a),
    };
    if let Err(e) = prepared {
        errors.insert("value".into(), json!([e.0]));
    }
    if let Some(uuid) = a.uuid.as_deref().filter(|u| !is_uuid(u)) {
        errors.insert("uuid".into(), json!([invalid_uuid(uuid)]));
    }
    if let Err((field, e)) = check_seen(a) {
        errors.insert(field.into(), json!([e.0]));
    }
    insert_nonempty(&mut errors, "Tag", tag_errors(&a.tags));
    errors
}

/// Returns the errors of an object's own fields: its uuid, its name when it is new (its
/// uuid not in `known`), and its `ObjectReference` list.
pub fn object_errors_of(o: &Object, known: &HashSet<String>) -> Map<String, Value> {
    let mut errors = Map::new();
    if let Some(uuid) = o.uuid.as_deref().filter(|u| !is_uuid(u)) {
        errors.insert("uuid".into(), json!([invalid_uuid(uuid)]));
    }
    let stored = o
        .uuid
        .as_ref()
        .is_some_and(|u| known.contains(&u.to_lowercase()));
    if !stored && o.name.trim().is_empty() {
        errors.insert("name".into(), json!(["The object name is required."]));
    }
    let mut references = Map::new();
    match o.extra.get("ObjectReference") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (n, item) in list.iter().enumerate() {
                let found = reference_errors(item, is_known(item.get("uuid"), known));
                insert_nonempty(&mut references, &n.to_string(), found);
            }
        }
        Some(_) => {
            references.insert(
                "ObjectReference".into(),
                json!(["ObjectReference must be a list of references"]),
            );
        }
    }
    insert_nonempty(&mut errors, "ObjectReference", references);
    errors
}

/// Returns the errors of one object reference: a new one (`known` false) needs the uuid of
/// the entry it points to and the relationship's type, as MISP requires.
pub(super) fn reference_errors(item: &Value, known: bool) -> Map<String, Value> {
    let mut errors = Map::new();
    let Some(reference) = item.as_object() else {
        errors.insert("uuid".into(), json!(["a reference must be a JSON object"]));
        return errors;
    };
    check_optional_uuid(&mut errors, reference.get("uuid"));
    match reference.get("referenced_uuid").and_then(Value::as_str) {
        Some(u) if is_uuid(u) => {}
        Some(u) => {
            errors.insert("referenced_uuid".into(), json!([invalid_uuid(u)]));
        }
        None if known => {}
        None => {
            let message = "referenced_uuid is required: the uuid of the attribute or object \
                           the reference points to";
            errors.insert("referenced_uuid".into(), json!([message]));
        }
    }
    let relationship = reference.get("relationship_type");
    let missing = match relationship.and_then(Value::as_str) {
        Some(r) => r.trim().is_empty(),
        None => !known || relationship.is_some(),
    };
    if missing {
        let message = "relationship_type is required, such as `related-to`";
        errors.insert("relationship_type".into(), json!([message]));
    }
    errors
}

/// Returns the errors of an event's `EventReport` list: each new report (its uuid not in
/// `known`) needs a `name` and a `content`, as MISP (and PyMISP's reader) require, and a
/// known one may not set them empty.
pub(super) fn report_errors(
    reports: Option<&Value>,
    known: &HashSet<String>,
) -> Map<String, Value> {
    let mut errors = Map::new();
    let list = match reports {
        None | Some(Value::Null) => return errors,
        Some(Value::Array(list)) => list,
        Some(_) => {
            errors.insert(
                "EventReport".into(),
                json!(["EventReport must be a list of reports"]),
            );
            return errors;
        }
    };
    for (n, item) in list.iter().enumerate() {
        let mut own = Map::new();
        let report = item.as_object();
        check_optional_uuid(&mut own, report.and_then(|r| r.get("uuid")));
        let stored = is_known(report.and_then(|r| r.get("uuid")), known);
        let name = report.and_then(|r| r.get("name"));
        let name_missing = match name.and_then(Value::as_str) {
            Some(n) => n.trim().is_empty(),
            None => !stored || name.is_some(),
        };
        if name_missing {
            own.insert("name".into(), json!(["The report name is required."]));
        }
        let content = report.and_then(|r| r.get("content"));
        if !content.map_or(stored, Value::is_string) {
            own.insert("content".into(), json!(["The report content is required."]));
        }
        insert_nonempty(&mut errors, &n.to_string(), own);
    }
    errors
}

/// Returns the errors of a tag list: every tag needs a name.
fn tag_errors(tags: &[Tag]) -> Map<String, Value> {
    let mut errors = Map::new();
    for (n, tag) in tags.iter().enumerate() {
        if tag.name.trim().is_empty() {
            errors.insert(
                n.to_string(),
                json!({"name": ["The tag name is required."]}),
            );
        }
    }
    errors
}

/// Returns true when `uuid`, a JSON value that may be absent, names a stored entry.
fn is_known(uuid: Option<&Value>, known: &HashSet<String>) -> bool {
    uuid.and_then(Value::as_str)
        .is_some_and(|u| known.contains(&u.to_lowercase()))
}

/// Adds an error to `errors` when `value`, a uuid that may be absent, is not one.
fn check_optional_uuid(errors: &mut Map<String, Value>, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if is_uuid(u) => {}
        Some(other) => {
            let text = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            errors.insert("uuid".into(), json!([invalid_uuid(&text)]));
        }
    }
}

fn invalid_uuid(value: &str) -> String {
    format!(
        "invalid uuid `{value}`; use the RFC 4122 form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, \
         or leave it out to get a new one"
    )
}

fn insert_nonempty(errors: &mut Map<String, Value>, key: &str, found: Map<String, Value>) {
    if !found.is_empty() {
        errors.insert(key.into(), Value::Object(found));
    }
}
