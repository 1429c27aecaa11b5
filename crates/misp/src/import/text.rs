//! Builds one MISP event from a list of values (freetext, CSV): one event per file,
//! with a uuid derived from the file's identity so a re-import updates it.

use rustc_hash::FxHashSet;
use uuid::Uuid;

use super::misp_json::{epoch_to_date, UUID_NAMESPACE};
use super::{FileMeta, Parsed, ParsedEvent, Rejected};
use crate::model::{Attribute, Event};
use crate::types::type_info;
use crate::Error;

/// Accumulates the attributes of a list file and turns them into an event.
pub(crate) struct ListEvent {
    event: Event,
    event_uuid: Uuid,
    /// Uuids of the attributes added: each is derived from `type|value`, so a repeated
    /// value has the uuid of its first occurrence and is dropped.
    seen: FxHashSet<Uuid>,
    /// Scratch buffer for `type|value`.
    key: String,
    /// Default category and `to_ids` of the types seen so far.
    defaults: Vec<(String, Option<String>, bool)>,
    pub parsed: Parsed,
}

impl ListEvent {
    /// Starts the event of a list of about `lines` values.
    pub fn new(meta: &FileMeta, lines: usize) -> ListEvent {
        let event_uuid = Uuid::new_v5(
            &UUID_NAMESPACE,
            format!("file:{}", meta.source_key).as_bytes(),
        );
        let event = Event {
            uuid: event_uuid.to_string(),
            info: format!("Imported from {}", meta.name),
            threat_level_id: Some(4),
            analysis: Some(2),
            date: Some(epoch_to_date(meta.mtime)),
            timestamp: Some(meta.mtime),
            published: Some(false),
            ..Event::default()
        };
        let mut list = ListEvent {
            event,
            event_uuid,
            seen: FxHashSet::default(),
            key: String::new(),
            defaults: Vec::new(),
            parsed: Parsed::default(),
        };
        list.event.attributes.reserve(lines);
        list.seen.reserve(lines);
        list
    }

    /// Adds a normalised value of a known type; returns false when it repeats an earlier one.
    pub fn add(&mut self, type_name: &str, value: String, comment: Option<String>) -> bool {
        self.key.clear();
        self.key.push_str(type_name);
        self.key.push('|');
        self.key.push_str(&value);
        let uuid = Uuid::new_v5(&self.event_uuid, self.key.as_bytes());
        if !self.seen.insert(uuid) {
            self.parsed.duplicates += 1;
            return false;
        }
        let (category, to_ids) = self.defaults_of(type_name);
        self.event.attributes.push(Attribute {
            uuid: Some(uuid.to_string()),
            r#type: type_name.to_owned(),
            category,
            to_ids: Some(to_ids),
            comment: comment.filter(|c| !c.is_empty()),
            timestamp: self.event.timestamp,
            value,
            ..Attribute::default()
        });
        true
    }

    fn defaults_of(&mut self, type_name: &str) -> (Option<String>, bool) {
        if let Some((_, category, to_ids)) = self.defaults.iter().find(|(t, _, _)| t == type_name) {
            return (category.clone(), *to_ids);
        }
        let info = type_info(type_name);
        let category = info.map(|i| i.default_category.clone());
        let to_ids = info.is_some_and(|i| i.default_to_ids);
        self.defaults
            .push((type_name.to_owned(), category.clone(), to_ids));
        (category, to_ids)
    }

    /// Returns the attribute added last, so a list format can adjust its fields.
    pub fn last_attribute(&mut self) -> Option<&mut Attribute> {
        self.event.attributes.last_mut()
    }

    pub fn reject(&mut self, line: u64, value: &str, reason: String) {
        self.parsed.rejected.push(Rejected {
            location: format!("line {line}"),
            value: value.to_owned(),
            reason,
        });
    }

    /// Returns the parse result, with the event when it has at least one attribute. A list
    /// in which every value was rejected is most likely another format, so it fails whole.
    pub fn finish(mut self, format: &'static str) -> Result<Parsed, Error> {
        if self.event.attributes.is_empty() && self.parsed.duplicates == 0 {
            if let Some(first) = self.parsed.rejected.first() {
                return Err(Error::Invalid {
                    format,
                    message: format!(
                        "none of its {} values is a hash or indicator ({}: {}); check that \
                         the file is a {format}, or pass --format",
                        self.parsed.rejected.len(),
                        first.location,
                        first.reason
                    ),
                });
            }
        }
        if !self.event.attributes.is_empty() {
            self.parsed.events.push(ParsedEvent {
                event: self.event,
                json: None,
            });
        }
        Ok(self.parsed)
    }
}

/// Iterates over the lines of `bytes` with 1-based numbers, without `\r` line ends.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.strip_suffix(b"\r").unwrap_or(l)))
}
