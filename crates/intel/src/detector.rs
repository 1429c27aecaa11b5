//! The in-memory detection index: every attribute with `to_ids` that is not deleted (nor
//! in a deleted object), built once from the store.
//!
//! Content digests (md5, sha1, sha224, sha256, sha384, sha512, also the hash half of
//! `filename|<hash>` and `malware-sample`) are keyed by their raw bytes in a
//! [`index::DigestIndex`]. Every other value, including the file name half of a
//! composite and hashes such as ssdeep or sha3-256, is keyed by its normalised text.
//!
//! The index contains only those keys and each indicator's attribute id. A lookup that
//! matches reads the indicator's other fields and its event from the store (see
//! `details.rs`). A lookup that matches nothing never touches the disk. The built index is
//! saved next to the store (see `snapshot.rs`) and read back by the next load while the
//! store is unchanged.

mod build;
mod details;
mod snapshot;
#[cfg(test)]
mod tests;

pub use snapshot::SNAPSHOT_FILE;

use std::sync::Arc;

use hashing::Algorithms;
use index::DigestIndex;
use misp::hash::HashAlgo;
use rusqlite::Row;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::galaxy::{self, GalaxyCluster};
use crate::store::Store;
use crate::warninglist::{Action, Matcher, WarninglistHit};
use crate::Error;

/// One indicator that matched a lookup, with its event and object context.
///
/// It serialises to the JSON line `intel lookup` prints, and the field names follow the
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
    /// Galaxy clusters of the event and the attribute: those of their `Galaxy` blocks, then
    /// those only named by a `misp-galaxy:` tag.
    pub galaxies: Vec<GalaxyCluster>,
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
    galaxies: Option<Box<[GalaxyCluster]>>,
}

struct Indicator {
    attribute_id: i64,
    uuid: Box<str>,
    type_name: Arc<str>,
    category: Arc<str>,
    value: Box<str>,
    object_name: Option<Arc<str>>,
    object_relation: Option<Arc<str>>,
    tags: Option<Box<[Box<str>]>>,
    galaxies: Option<Box<[GalaxyCluster]>>,
}

/// Counts of the entries a detector contains, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DetectorStats {
    pub indicators: usize,
    pub digests: usize,
    pub values: usize,
    pub suppressed: usize,
}

/// The detection index, built from a [`Store`].
pub struct Detector {
    digests: DigestIndex,
    values: FxHashMap<Box<str>, Vec<u32>>,
    /// Attribute id of each indicator, by the id that `digests` and `values` return.
    attribute_ids: Vec<i64>,
    matcher: Matcher,
    details: details::Details,
    algorithms: Algorithms,
    suppressed: usize,
}

impl Detector {
    /// Loads every detection indicator and the warninglists from the store. It reads the
    /// index saved by an earlier load when the store has not changed since, and otherwise
    /// builds the index and saves it for the next load.
    pub fn load(store: &Store) -> Result<Detector, Error> {
        let db_path = store.path();
        // The key is read before the indicators, so that a write during the build leaves
        // the saved index stale rather than wrongly fresh.
        let key = snapshot::StoreKey::of(db_path);
        let matcher = Matcher::new(&store.warninglists()?);
        let saved = db_path.with_file_name(snapshot::SNAPSHOT_FILE);
        let indexed = match &key {
            Ok(key) => load_or_build(store, &matcher, &saved, key)?,
            Err(error) => {
                tracing::debug!(path = %db_path.display(), %error, "failed to read the store's file state, building the index");
                build::build(store.conn(), &matcher)?
            }
        };
        Ok(Detector {
            digests: indexed.digests,
            values: indexed.values,
            attribute_ids: indexed.attribute_ids,
            matcher,
            details: details::Details::open(db_path)?,
            algorithms: indexed.algorithms,
            suppressed: indexed.suppressed,
        })
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
        ids.iter()
            .filter_map(|&id| self.to_match(id, &matched, Some(digest)))
            .collect()
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
        dedup_candidates(&mut ids);
        let matched = if is_hex(query) {
            query.to_ascii_lowercase()
        } else {
            query.to_owned()
        };
        ids.into_iter()
            .filter_map(|(id, digest)| self.to_match(id, &matched, digest.as_deref()))
            .collect()
    }

    /// Returns the indicator ids found under `query`, each id from the digest index with the
    /// digest it must have.
    fn ids_for(&self, query: &str) -> Vec<Candidate> {
        let mut ids = Vec::new();
        if let Some(bytes) = hex_digest(query) {
            let found = self.digests.get(&bytes);
            ids.extend(found.iter().map(|&id| (id, Some(bytes.clone()))));
        }
        if let Some(found) = self.values.get(query) {
            ids.extend(found.iter().map(|&id| (id, None)));
        }
        let lower = query.to_lowercase();
        if lower != query {
            if let Some(found) = self.values.get(lower.as_str()) {
                ids.extend(found.iter().map(|&id| (id, None)));
            }
        }
        ids
    }

    /// Counts of indicators, digest keys and value keys.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            indicators: self.attribute_ids.len(),
            digests: self.digests.len(),
            values: self.values.len(),
            suppressed: self.suppressed,
        }
    }

    /// Reads indicator `id` from the store and returns it as a match of `matched`. Returns
    /// `None` when the store no longer contains it as a detection, or when `digest` is given
    /// and the indicator's digest differs: the digest index compares 92-bit fingerprints, so
    /// it may rarely return the id of another digest.
    fn to_match(&self, id: u32, matched: &str, digest: Option<&[u8]>) -> Option<Match> {
        let attribute_id = *self.attribute_ids.get(id as usize)?;
        let (event, indicator) = match self.details.fetch(attribute_id) {
            Ok(found) => found?,
            Err(error) => {
                // The index matched, so the detection is reported even without its context
                // and without comparing the full digest (fingerprints of unknown digests
                // match with a probability below 10^-27).
                tracing::error!(attribute_id, %error, "failed to read a matched indicator from the intel store");
                return Some(bare_match(attribute_id, matched));
            }
        };
        if digest.is_some_and(|digest| !has_digest(&indicator, digest)) {
            return None;
        }
        let (event, indicator) = (&event, &indicator);
        let mut tags: Vec<String> = event.tags.iter().map(|t| t.to_string()).collect();
        for tag in indicator.tags.iter().flatten() {
            if !tags.iter().any(|t| t.as_str() == &**tag) {
                tags.push(tag.to_string());
            }
        }
        let mut galaxies: Vec<GalaxyCluster> = event.galaxies.iter().flatten().cloned().collect();
        for cluster in indicator.galaxies.iter().flat_map(|g| g.iter()) {
            if !galaxies.iter().any(|c| c.tag_name == cluster.tag_name) {
                galaxies.push(cluster.clone());
            }
        }
        galaxy::add_tag_clusters(&mut galaxies, tags.iter().map(String::as_str));
        let warninglists = self.matcher.check(&indicator.type_name, &indicator.value);
        let suppressed = warninglists.iter().any(|h| h.action == Action::Suppress);
        Some(Match {
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
            galaxies,
            suppressed,
            warninglists,
        })
    }
}

/// Reads the saved index when it is fresh, and otherwise builds the index and saves it.
fn load_or_build(
    store: &Store,
    matcher: &Matcher,
    saved: &std::path::Path,
    key: &snapshot::StoreKey,
) -> Result<build::Indexed, Error> {
    match snapshot::read(saved, key) {
        Ok(indexed) => return Ok(indexed),
        Err(snapshot::Unusable::Damaged(reason)) => {
            tracing::warn!(path = %saved.display(), reason, "saved intel index is damaged, rebuilding it");
        }
        Err(snapshot::Unusable::Unreadable(error)) => {
            tracing::warn!(path = %saved.display(), %error, "failed to read the saved intel index, rebuilding it");
        }
        Err(reason) => {
            tracing::debug!(path = %saved.display(), ?reason, "saved intel index not used, building it");
        }
    }
    let indexed = build::build(store.conn(), matcher)?;
    if let Err(error) = snapshot::write(saved, key, &indexed) {
        tracing::debug!(path = %saved.display(), %error, "failed to save the intel index");
    }
    Ok(indexed)
}

/// Builds a match with only the ids. The event id is the upper half of the attribute id
/// (see the store schema).
fn bare_match(attribute_id: i64, matched: &str) -> Match {
    Match {
        matched: matched.to_owned(),
        event_id: (attribute_id >> 32).to_string(),
        event_uuid: String::new(),
        event_info: String::new(),
        threat_level_id: None,
        event_date: None,
        attribute_id: attribute_id.to_string(),
        attribute_uuid: String::new(),
        r#type: String::new(),
        category: String::new(),
        value: String::new(),
        to_ids: true,
        object_name: None,
        object_relation: None,
        tags: Vec::new(),
        galaxies: Vec::new(),
        suppressed: false,
        warninglists: Vec::new(),
    }
}

/// An indicator id from a lookup, with the digest it must have when it came from the digest
/// index.
type Candidate = (u32, Option<Vec<u8>>);

/// Removes repeated ids, keeping the first position of each. An id also found by its value
/// text needs no digest check, so that copy's `None` wins.
fn dedup_candidates(ids: &mut Vec<Candidate>) {
    let mut exact = std::collections::HashSet::new();
    exact.extend(ids.iter().filter(|(_, d)| d.is_none()).map(|(id, _)| *id));
    let mut seen = std::collections::HashSet::new();
    ids.retain_mut(|(id, digest)| {
        if exact.contains(id) {
            *digest = None;
        }
        seen.insert(*id)
    });
}

/// True when the content digest of `indicator`, read the way the index was built, is
/// `digest`.
fn has_digest(indicator: &Indicator, digest: &[u8]) -> bool {
    let Some((_, hash)) = misp::hash::hash_of(&indicator.type_name, &indicator.value) else {
        return false;
    };
    let mut decoded = [0u8; 64];
    match decoded.get_mut(..digest.len()) {
        Some(decoded) if hash.len() == digest.len() * 2 => {
            hex::decode_to_slice(hash, decoded).is_ok() && decoded == digest
        }
        _ => hex::decode(hash).is_ok_and(|decoded| decoded == digest),
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

/// Reads a `galaxies` column, returning `None` when it has no clusters.
fn boxed_clusters(column: Option<&str>) -> Option<Box<[GalaxyCluster]>> {
    let clusters = galaxy::from_column(column);
    (!clusters.is_empty()).then(|| clusters.into_boxed_slice())
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
