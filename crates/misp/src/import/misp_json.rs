//! MISP event JSON in every shape MISP writes: `{"Event": {...}}` (feeds), a bare event
//! object, a list of either, and `{"response": [...]}` from the REST API.

use serde_json::value::RawValue;
use uuid::Uuid;

use super::{read_top, Parsed, ParsedEvent, Rejected, Top};
use crate::model::{Attribute, Event};
use crate::validate::prepare_attribute;
use crate::Error;

/// Namespace of the uuids this crate derives for events and attributes that lack one.
pub const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x5d1f_7a2c_9e0b_4c61_8a3f_2b6e_1c9d_4e70);

/// Splits a MISP JSON document into its events and validates each.
pub(crate) fn parse_misp_json(text: &str, top: &Top<'_>) -> Result<Parsed, Error> {
    parse_events(text, split_events(text, top)?)
}

/// Validates the raw events `split_events` returned for `text`, each kept as a copy.
pub(crate) fn parse_events(text: &str, raw_events: Vec<&RawValue>) -> Result<Parsed, Error> {
    let mut parsed = Parsed::default();
    for (index, raw) in raw_events.into_iter().enumerate() {
        let event = deserialize_event(text, raw)?;
        push_event(&mut parsed, index, event, raw.get().to_owned());
    }
    Ok(parsed)
}

/// Returns the raw event objects of a MISP JSON document, in document order.
pub(crate) fn split_events<'a>(text: &'a str, top: &Top<'a>) -> Result<Vec<&'a RawValue>, Error> {
    let mut raw_events = Vec::new();
    collect_events(text, top, &mut raw_events, 0)?;
    Ok(raw_events)
}

/// Deserializes one raw event object of `text`, for error positions in the whole document.
pub(crate) fn deserialize_event(text: &str, raw: &RawValue) -> Result<Event, Error> {
    // Every attribute is a JSON object, so the count of `{` bounds the list size.
    let bound = raw.get().bytes().filter(|&b| b == b'{').count();
    crate::model_de::hint_attribute_capacity(bound);
    let event: Result<Event, _> = serde_json::from_str(raw.get());
    crate::model_de::hint_attribute_capacity(0);
    event.map_err(|e| Error::json(&e, text, raw.get()))
}

/// Validates event number `index` (from 0) of a document with its kept `json`, and adds it
/// to `parsed`, or adds why it was rejected.
pub(crate) fn push_event(parsed: &mut Parsed, index: usize, event: Event, json: String) {
    match finalize_event(event, Some(json), &mut parsed.rejected) {
        Ok(event) => parsed.events.push(event),
        Err(reason) => parsed.rejected.push(Rejected {
            location: format!("event {}", index + 1),
            value: String::new(),
            reason,
        }),
    }
}

fn collect_events<'a>(
    text: &'a str,
    top: &Top<'a>,
    out: &mut Vec<&'a RawValue>,
    depth: usize,
) -> Result<(), Error> {
    let invalid = |message: &str| Error::Invalid {
        format: "MISP event",
        message: message.into(),
    };
    if depth > 2 {
        return Err(invalid("events are nested deeper than MISP writes them"));
    }
    match top {
        Top::Array(items) => {
            for item in items {
                let inner = read_top_at(text, item)?;
                match inner.get("Event") {
                    Some(event) => out.push(event),
                    None if matches!(inner, Top::Object(..)) => out.push(item),
                    None => return Err(invalid("an array item is not an event object")),
                }
            }
        }
        Top::Object(..) => {
            if let Some(event) = top.get("Event") {
                out.push(event);
            } else if let Some(response) = top.get("response") {
                let inner = read_top_at(text, response)?;
                collect_events(text, &inner, out, depth + 1)?;
            } else {
                out.push(whole_object(text)?);
            }
        }
    }
    Ok(())
}

fn read_top_at<'a>(text: &'a str, raw: &'a RawValue) -> Result<Top<'a>, Error> {
    read_top(raw.get()).map_err(|_| {
        let e = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get()).err();
        match e {
            Some(e) => Error::json(&e, text, raw.get()),
            None => Error::Invalid {
                format: "MISP event",
                message: "an item of the event list is neither an event nor an event wrapper"
                    .into(),
            },
        }
    })
}

fn whole_object(text: &str) -> Result<&RawValue, Error> {
    serde_json::from_str::<&RawValue>(text).map_err(|e| Error::json(&e, text, text))
}

/// Validates an event in place: checks its uuid, fills missing attribute uuids, defaults
/// and timestamps, and moves invalid attributes to `rejected`. `json` is the event as it
/// came in, if it came as JSON. Returns why the whole event is unusable when its uuid is
/// malformed.
pub fn finalize_event(
    mut event: Event,
    json: Option<String>,
    rejected: &mut Vec<Rejected>,
) -> Result<ParsedEvent, String> {
    let mut filled = event.uuid.trim().is_empty() || event.timestamp.is_none();
    event.uuid = match event.uuid.trim() {
        "" => {
            let seed = json.as_deref().unwrap_or(&event.info);
            Uuid::new_v5(&UUID_NAMESPACE, seed.as_bytes()).to_string()
        }
        given => match Uuid::parse_str(given) {
            Ok(u) => u.hyphenated().to_string(),
            Err(_) => return Err(format!("event uuid `{given}` is not a valid uuid")),
        },
    };
    if event.timestamp.is_none() {
        event.timestamp = event.date.as_deref().and_then(date_to_epoch);
    }

    let event_uuid = Uuid::parse_str(&event.uuid).unwrap_or(UUID_NAMESPACE);
    filled |= fill_uuids(&mut event.attributes, &event_uuid, "");
    for (index, object) in event.objects.iter_mut().enumerate() {
        if object
            .uuid
            .as_deref()
            .is_none_or(|u| Uuid::parse_str(u).is_err())
        {
            let name = format!("object|{index}|{}", object.name);
            object.uuid = Some(Uuid::new_v5(&event_uuid, name.as_bytes()).to_string());
            filled = true;
        }
        let prefix = format!("object {} ", object.name);
        filled |= fill_uuids(&mut object.attributes, &event_uuid, &prefix);
    }
    // The kept JSON must name every event, object and attribute by the uuid its rows get,
    // or the keys the rows do not store (such as `first_seen`) cannot be matched to them.
    let json = match json {
        Some(text) if filled => Some(with_uuids(&text, &event).unwrap_or(text)),
        other => other,
    };
    prepare_all(&mut event.attributes, "", rejected);
    for object in &mut event.objects {
        let prefix = format!("object {} ", object.name);
        prepare_all(&mut object.attributes, &prefix, rejected);
    }
    Ok(ParsedEvent { event, json })
}

/// Gives each attribute without a valid uuid one derived from the event uuid, its position
/// and its value. Returns whether any was given.
fn fill_uuids(attributes: &mut [Attribute], event_uuid: &Uuid, prefix: &str) -> bool {
    let mut filled = false;
    for (index, attribute) in attributes.iter_mut().enumerate() {
        if attribute
            .uuid
            .as_deref()
            .is_none_or(|u| Uuid::parse_str(u).is_err())
        {
            let name = format!("{prefix}{index}|{}|{}", attribute.r#type, attribute.value);
            attribute.uuid = Some(Uuid::new_v5(event_uuid, name.as_bytes()).to_string());
            filled = true;
        }
    }
    filled
}

/// Rewrites the event JSON `text` with the uuids of `event` (same lists, same order) and
/// its timestamp when the JSON has none. Returns `None` when the lists do not line up.
fn with_uuids(text: &str, event: &Event) -> Option<String> {
    use serde_json::Value;
    let mut json: serde_json::Map<String, Value> = serde_json::from_str(text).ok()?;
    json.insert("uuid".into(), Value::String(event.uuid.clone()));
    if let (None, Some(ts)) = (json.get("timestamp"), event.timestamp) {
        json.insert("timestamp".into(), Value::String(ts.to_string()));
    }
    set_list_uuids(&mut json, event.attributes.iter().map(|a| &a.uuid))?;
    if event.objects.is_empty() {
        return serde_json::to_string(&json).ok();
    }
    let objects = json.get_mut("Object")?.as_array_mut()?;
    if objects.len() != event.objects.len() {
        return None;
    }
    for (value, object) in objects.iter_mut().zip(&event.objects) {
        let map = value.as_object_mut()?;
        set_uuid(map, object.uuid.as_ref());
        set_list_uuids(map, object.attributes.iter().map(|a| &a.uuid))?;
    }
    serde_json::to_string(&json).ok()
}

fn set_uuid(map: &mut serde_json::Map<String, serde_json::Value>, uuid: Option<&String>) {
    if let Some(uuid) = uuid {
        map.insert("uuid".into(), serde_json::Value::String(uuid.clone()));
    }
}

/// Sets the uuids of the `Attribute` list of `parent` by position; `None` when the list
/// length differs.
fn set_list_uuids<'a>(
    parent: &mut serde_json::Map<String, serde_json::Value>,
    uuids: impl ExactSizeIterator<Item = &'a Option<String>>,
) -> Option<()> {
    let Some(list) = parent.get_mut("Attribute").and_then(|l| l.as_array_mut()) else {
        return (uuids.len() == 0).then_some(());
    };
    if list.len() != uuids.len() {
        return None;
    }
    for (value, uuid) in list.iter_mut().zip(uuids) {
        set_uuid(value.as_object_mut()?, uuid.as_ref());
    }
    Some(())
}

/// Prepares attributes in place, removing (and reporting) those that fail validation.
fn prepare_all(attributes: &mut Vec<Attribute>, prefix: &str, rejected: &mut Vec<Rejected>) {
    attributes.retain_mut(|attribute| {
        // prepare_attribute leaves the value unchanged when it fails.
        match prepare_attribute(attribute) {
            Ok(()) => true,
            Err(e) => {
                rejected.push(Rejected {
                    location: format!(
                        "{prefix}attribute {}",
                        attribute.uuid.as_deref().unwrap_or_default()
                    ),
                    value: std::mem::take(&mut attribute.value),
                    reason: e.0,
                });
                false
            }
        }
    });
}

/// Converts `YYYY-MM-DD` to seconds since the Unix epoch at midnight UTC.
pub fn date_to_epoch(date: &str) -> Option<i64> {
    let date = date.get(..10)?;
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD` (UTC).
pub fn epoch_to_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Parsed, Error> {
        parse_misp_json(json, &read_top(json)?)
    }

    #[test]
    fn every_wrapper_shape() {
        let event = r#"{"uuid":"57c4445b-c548-4654-af0b-4be3950d210f","info":"x"}"#;
        for doc in [
            format!(r#"{{"Event":{event}}}"#),
            event.to_string(),
            format!(r#"[{{"Event":{event}}},{event}]"#),
            format!(r#"{{"response":[{{"Event":{event}}}]}}"#),
        ] {
            let parsed = parse(&doc).unwrap();
            assert!(!parsed.events.is_empty(), "{doc}");
            assert_eq!(parsed.events[0].json.as_deref(), Some(event), "{doc}");
        }
    }

    #[test]
    fn truncated_json_reports_position() {
        let err = parse(r#"{"Event": {"info": "x", "Attribute": [{"type": "md5""#).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("invalid JSON at line 1, column "),
            "{message}"
        );
        assert!(message.contains("truncated"), "{message}");
    }

    #[test]
    fn type_error_position_is_absolute() {
        let doc = "{\"Event\":\n {\"info\": \"x\",\n  \"Attribute\": \"oops\"}}";
        let Error::Json { line, .. } = parse(doc).unwrap_err() else {
            panic!("not a JSON error")
        };
        assert_eq!(line, 3);
    }

    #[test]
    fn invalid_attributes_rejected_rest_kept() {
        let doc = r#"{"Event":{"uuid":"57c4445b-c548-4654-af0b-4be3950d210f","Attribute":[
            {"type":"md5","value":"0749BAE92CA336A02C83D126E04EC628"},
            {"type":"md5","value":"0749bae92ca336a02c83d126e04ec62"}]}}"#;
        let parsed = parse(doc).unwrap();
        let event = &parsed.events[0].event;
        assert_eq!(event.attributes.len(), 1);
        assert_eq!(
            event.attributes[0].value,
            "0749bae92ca336a02c83d126e04ec628"
        );
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(
            parsed.rejected[0].reason,
            "md5 must be 32 hexadecimal characters, found 31"
        );
    }

    #[test]
    fn kept_json_gets_the_filled_uuids() {
        let doc = r#"{"Event":{"info":"x","date":"2026-01-01","Attribute":[
            {"type":"domain","value":"a.example","first_seen":"2026-01-01T00:00:00+00:00"}],
            "Object":[{"name":"file","template_uuid":"t","Attribute":[
            {"type":"filename","object_relation":"filename","value":"q.exe"}]}]}}"#;
        let parsed = parse(doc).unwrap();
        let event = &parsed.events[0].event;
        let json: serde_json::Value =
            serde_json::from_str(parsed.events[0].json.as_deref().unwrap()).unwrap();
        assert_eq!(json["uuid"], event.uuid.as_str());
        assert_eq!(json["timestamp"], "1767225600");
        let attribute = &json["Attribute"][0];
        assert_eq!(
            attribute["uuid"],
            event.attributes[0].uuid.as_deref().unwrap()
        );
        assert_eq!(attribute["first_seen"], "2026-01-01T00:00:00+00:00");
        let object = &json["Object"][0];
        assert_eq!(object["uuid"], event.objects[0].uuid.as_deref().unwrap());
        assert_eq!(object["template_uuid"], "t");
        let inner = event.objects[0].attributes[0].uuid.as_deref().unwrap();
        assert_eq!(object["Attribute"][0]["uuid"], inner);
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(date_to_epoch("2016-08-29"), Some(1_472_428_800));
        assert_eq!(epoch_to_date(1_472_428_800), "2016-08-29");
        assert_eq!(epoch_to_date(0), "1970-01-01");
        assert_eq!(date_to_epoch("2016-13-01"), None);
    }
}
