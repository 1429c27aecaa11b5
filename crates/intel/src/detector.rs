//! The in-memory detection index: every attribute with `to_ids` that is not deleted (nor
//! in a deleted object), built once from the store. Lookups never touch the disk.
//!
//! Content digests (md5, sha1, sha224, sha256, sha384, sha512, also the hash half of
//! `filename|<hash>` and `malware-sample`) are keyed by their raw bytes in a
//! [`index::DigestIndex`]. Every other value, including the file name half of a
//! composite and hashes such as ssdeep or sha3-256, is keyed by its normalised text.

use std::sync::Arc;

use hashing::Algorithms;
use index::{DigestIndex, DigestIndexBuilder};
use misp::hash::{composite_parts, content_digest, hash_of, HashAlgo};
use rusqlite::Row;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::store::Store;
use crate::warninglist::{Action, Matcher, WarninglistHit};
use crate::Error;

/// One indicator that matched a lookup, with its event and object context.
///
/// It serialises to the JSON line `intel lookup` prints; the field names follow the
/// `misp` object of a Wazuh alert (`event_id`, `attribute_uuid`, ...).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The value that was looked up, normalised (lower-case hex for digests).
    pub matched: String,
    /// Id of the event in this store.
    pub event_id: String,
    pub event_uuid: String,
    pub event_info: String,
    pub threat_level_id: Option<String>,
    pub event_date: Option<String>,
    /// Id of the attribute in this store.
    pub attribute_id: String,
    pub attribute_uuid: String,
    pub r#type: String,
    pub category: String,
    pub value: String,
    pub to_ids: bool,
    pub object_name: Option<String>,
    pub object_relation: Option<String>,
    /// Event tags, then attribute tags not already listed.
    pub tags: Vec<String>,
    /// True when a warninglist with the `suppress` action lists the value.
    pub suppressed: bool,
    pub warninglists: Vec<WarninglistHit>,
}

impl Match {
    /// True when the match should be reported as a detection (it is not suppressed).
    pub fn is_detection(&self) -> bool {
        !self.suppressed
    }
}

struct EventMeta {
    id: i64,
    uuid: Box<str>,
    info: Box<str>,
    threat_level_id: Option<i64>,
    date: Option<Box<str>>,
    tags: Arc<[Box<str>]>,
}

struct Indicator {
    attribute_id: i64,
    event: u32,
    uuid: Box<str>,
    type_name: Arc<str>,
    category: Arc<str>,
    value: Box<str>,
    object_name: Option<Arc<str>>,
    object_relation: Option<Arc<str>>,
    tags: Option<Box<[Box<str>]>>,
    /// Index into `Detector::hit_sets`; 0 is the empty set.
    hits: u32,
}

/// Counts of what a detector holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DetectorStats {
    pub indicators: usize,
    pub digests: usize,
    pub values: usize,
    pub suppressed: usize,
}

/// The detection index, built from a [`Store`].
pub struct Detector {
    events: Vec<EventMeta>,
    indicators: Vec<Indicator>,
    digests: DigestIndex,
    values: FxHashMap<Box<str>, Vec<u32>>,
    hit_sets: Vec<Vec<WarninglistHit>>,
    algorithms: Algorithms,
    suppressed: usize,
}

impl Detector {
    /// Loads every detection indicator and the warninglists from the store.
    pub fn load(store: &Store) -> Result<Detector, Error> {
        let matcher = Matcher::new(&store.warninglists()?);
        let mut loader = Loader::new(matcher);
        loader.load_events(store)?;
        loader.load_indicators(store)?;
        Ok(loader.finish())
    }

    /// Returns the digest algorithms that at least one detection indicator uses.
    pub fn needed_algorithms(&self) -> Algorithms {
        self.algorithms
    }

    /// Looks up a raw digest: 16 bytes md5, 20 sha1, 28 sha224, 32 sha256, 48 sha384,
    /// 64 sha512.
    pub fn lookup_digest(&self, digest: &[u8]) -> Vec<Match> {
        let ids = self.digests.get(digest);
        if ids.is_empty() {
            return Vec::new();
        }
        let matched = hex::encode(digest);
        ids.iter().map(|&id| self.to_match(id, &matched)).collect()
    }

    /// Looks up any value: a hex hash in any case, an ssdeep, `filename|hash` (matched by
    /// its hash), a domain, an address, a file name, ...
    pub fn lookup_value(&self, value: &str) -> Vec<Match> {
        let value = value.trim();
        let query = match value.rsplit_once('|') {
            Some((_, hash)) if is_hex(hash.trim()) && hash.trim().len() >= 32 => hash.trim(),
            _ => value,
        };
        let mut ids = self.ids_for(query);
        if query == value {
            if let Some((left, right)) = value.rsplit_once('|') {
                ids.extend(self.ids_for(left));
                ids.extend(self.ids_for(right));
            }
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(*id));
        let matched = if is_hex(query) {
            query.to_ascii_lowercase()
        } else {
            query.to_owned()
        };
        ids.into_iter()
            .map(|id| self.to_match(id, &matched))
            .collect()
    }

    fn ids_for(&self, query: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        if let Some(bytes) = hex_digest(query) {
            ids.extend_from_slice(self.digests.get(&bytes));
        }
        if let Some(found) = self.values.get(query) {
            ids.extend_from_slice(found);
        }
        let lower = query.to_lowercase();
        if lower != query {
            if let Some(found) = self.values.get(lower.as_str()) {
                ids.extend_from_slice(found);
            }
        }
        ids
    }

    /// Counts of indicators, digest keys and value keys.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            indicators: self.indicators.len(),
            digests: self.digests.len(),
            values: self.values.len(),
            suppressed: self.suppressed,
        }
    }

    fn to_match(&self, id: u32, matched: &str) -> Match {
        let indicator = &self.indicators[id as usize];
        let event = &self.events[indicator.event as usize];
        let mut tags: Vec<String> = event.tags.iter().map(|t| t.to_string()).collect();
        for tag in indicator.tags.iter().flatten() {
            if !tags.iter().any(|t| t.as_str() == &**tag) {
                tags.push(tag.to_string());
            }
        }
        let warninglists = self.hit_sets[indicator.hits as usize].clone();
        let suppressed = warninglists.iter().any(|h| h.action == Action::Suppress);
        Match {
            matched: matched.to_owned(),
            event_id: event.id.to_string(),
            event_uuid: event.uuid.to_string(),
            event_info: event.info.to_string(),
            threat_level_id: event.threat_level_id.map(|t| t.to_string()),
            event_date: event.date.as_deref().map(str::to_owned),
            attribute_id: indicator.attribute_id.to_string(),
            attribute_uuid: indicator.uuid.to_string(),
            r#type: indicator.type_name.to_string(),
            category: indicator.category.to_string(),
            value: indicator.value.to_string(),
            to_ids: true,
            object_name: indicator.object_name.as_deref().map(str::to_owned),
            object_relation: indicator.object_relation.as_deref().map(str::to_owned),
            tags,
            suppressed,
            warninglists,
        }
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Decodes a hex string whose length is that of a content digest.
fn hex_digest(s: &str) -> Option<Vec<u8>> {
    HashAlgo::content_digest_for_hex_len(s.len())?;
    hex::decode(s).ok()
}

/// Builds a detector row by row.
struct Loader {
    matcher: Matcher,
    events: Vec<EventMeta>,
    event_index: FxHashMap<i64, u32>,
    indicators: Vec<Indicator>,
    digests: DigestIndexBuilder,
    values: FxHashMap<Box<str>, Vec<u32>>,
    strings: FxHashMap<Box<str>, Arc<str>>,
    hit_sets: Vec<Vec<WarninglistHit>>,
    hit_index: FxHashMap<Vec<WarninglistHit>, u32>,
    algorithms: Algorithms,
    suppressed: usize,
}

impl Loader {
    fn new(matcher: Matcher) -> Loader {
        Loader {
            matcher,
            events: Vec::new(),
            event_index: FxHashMap::default(),
            indicators: Vec::new(),
            digests: DigestIndexBuilder::new(),
            values: FxHashMap::default(),
            strings: FxHashMap::default(),
            hit_sets: vec![Vec::new()],
            hit_index: FxHashMap::default(),
            algorithms: Algorithms::NONE,
            suppressed: 0,
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.strings.get(s) {
            return found.clone();
        }
        let arc: Arc<str> = Arc::from(s);
        self.strings.insert(s.into(), arc.clone());
        arc
    }

    fn load_events(&mut self, store: &Store) -> Result<(), Error> {
        let mut stmt = store.conn().prepare(
            "SELECT id, uuid, info, threat_level_id, date, tags FROM events ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let tags_json: String = r.get(5)?;
            let tags: Vec<String> = serde_json::from_str(&tags_json).unwrap_or_default();
            let id: i64 = r.get(0)?;
            self.event_index.insert(id, self.events.len() as u32);
            self.events.push(EventMeta {
                id,
                uuid: r.get::<_, String>(1)?.into(),
                info: r.get::<_, String>(2)?.into(),
                threat_level_id: r.get(3)?,
                date: r.get::<_, Option<String>>(4)?.map(Into::into),
                tags: tags.into_iter().map(Into::into).collect(),
            });
        }
        Ok(())
    }

    fn load_indicators(&mut self, store: &Store) -> Result<(), Error> {
        let mut stmt = store.conn().prepare(
            "SELECT a.id, a.event_id, a.uuid, a.type, a.category, a.value, a.tags,
                    a.object_relation, o.name
             FROM attributes a LEFT JOIN objects o ON o.id = a.object_id
             WHERE a.to_ids = 1 AND a.deleted = 0 AND (o.id IS NULL OR o.deleted = 0)
             ORDER BY a.id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let event_id: i64 = r.get(1)?;
            let event = *self
                .event_index
                .get(&event_id)
                .ok_or_else(|| Error::Corrupt(format!("attribute of missing event {event_id}")))?;
            let type_name = self.intern(text(r, 3)?.unwrap_or_default());
            let value: Box<str> = text(r, 5)?.unwrap_or_default().into();
            let hits = self.hits_for(&type_name, &value);
            let indicator = Indicator {
                attribute_id: r.get(0)?,
                event,
                uuid: text(r, 2)?.unwrap_or_default().into(),
                category: self.intern(text(r, 4)?.unwrap_or_default()),
                object_name: text(r, 8)?.map(|o| self.intern(o)),
                object_relation: text(r, 7)?.map(|o| self.intern(o)),
                tags: text(r, 6)?
                    .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.into_iter().map(Into::into).collect()),
                hits,
                type_name,
                value,
            };
            self.add(indicator);
        }
        Ok(())
    }

    fn hits_for(&mut self, type_name: &str, value: &str) -> u32 {
        let hits = self.matcher.check(type_name, value);
        if hits.is_empty() {
            return 0;
        }
        if hits.iter().any(|h| h.action == Action::Suppress) {
            self.suppressed += 1;
        }
        if let Some(&index) = self.hit_index.get(&hits) {
            return index;
        }
        let index = self.hit_sets.len() as u32;
        self.hit_sets.push(hits.clone());
        self.hit_index.insert(hits, index);
        index
    }

    /// Indexes an indicator under its digest or value, and each half of a composite.
    fn add(&mut self, indicator: Indicator) {
        let id = self.indicators.len() as u32;
        let type_name = indicator.type_name.clone();
        let value = indicator.value.clone();
        self.indicators.push(indicator);

        if let Some((algo, bytes)) = content_digest(&type_name, &value) {
            self.digests.insert(&bytes, id);
            match algo {
                HashAlgo::Md5 => self.algorithms.md5 = true,
                HashAlgo::Sha1 => self.algorithms.sha1 = true,
                HashAlgo::Sha256 => self.algorithms.sha256 = true,
                _ => {}
            }
            if let Some((name, _)) = value.rsplit_once('|') {
                self.add_value(name, id);
            }
            return;
        }
        if let Some((_, hash)) = hash_of(&type_name, &value) {
            self.add_value(hash, id);
            if let Some((name, _)) = value.rsplit_once('|') {
                self.add_value(name, id);
            }
            return;
        }
        self.add_value(&value, id);
        if composite_parts(&type_name).is_some() {
            if let Some((a, b)) = split_composite(&type_name, &value) {
                self.add_value(a, id);
                self.add_value(b, id);
            }
        }
    }

    fn add_value(&mut self, value: &str, id: u32) {
        let ids = self.values.entry(value.into()).or_default();
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }

    fn finish(self) -> Detector {
        Detector {
            events: self.events,
            indicators: self.indicators,
            digests: self.digests.build(),
            values: self.values,
            hit_sets: self.hit_sets,
            algorithms: self.algorithms,
            suppressed: self.suppressed,
        }
    }
}

/// Reads a text column without copying it.
fn text<'r>(row: &'r Row, index: usize) -> Result<Option<&'r str>, Error> {
    let value = row.get_ref(index)?;
    value.as_str_or_null().map_err(|e| {
        Error::Sqlite(rusqlite::Error::FromSqlConversionFailure(
            index,
            value.data_type(),
            Box::new(e),
        ))
    })
}

/// Splits a composite value the way its type is written (`regkey|value` at the first `|`).
fn split_composite<'a>(type_name: &str, value: &'a str) -> Option<(&'a str, &'a str)> {
    if type_name.starts_with("regkey") || type_name.starts_with("domain") {
        value.split_once('|')
    } else {
        value.rsplit_once('|')
    }
}
