//! Builds the in-memory index from the store with one narrow query: attribute id, type and
//! value of every detection indicator, read without copying and decoded on the stack.

use hashing::Algorithms;
use index::{DigestIndex, DigestIndexBuilder};
use misp::hash::{composite_parts, hash_of, HashAlgo};
use rusqlite::Connection;
use rustc_hash::FxHashMap;

use super::{split_composite, text};
use crate::warninglist::{Action, Matcher};
use crate::Error;

/// Every attribute with `to_ids` that is not deleted, nor in a deleted object.
const INDICATORS_SQL: &str = "SELECT a.id, a.type, a.value
    FROM attributes a LEFT JOIN objects o ON o.id = a.object_id
    WHERE a.to_ids = 1 AND a.deleted = 0 AND (o.id IS NULL OR o.deleted = 0)
    ORDER BY a.id";

/// Longest content digest in bytes (sha512), decoded without allocating.
const MAX_DIGEST_BYTES: usize = 64;

/// What the detector keeps in memory. An indicator's index in `attribute_ids` is the id that
/// `digests` and `values` return.
pub(super) struct Indexed {
    pub(super) digests: DigestIndex,
    /// Indicators by normalised value: every value that is not a content digest, and the file
    /// name half of composites.
    pub(super) values: FxHashMap<Box<str>, Vec<u32>>,
    pub(super) attribute_ids: Vec<i64>,
    pub(super) algorithms: Algorithms,
    /// Indicators that a warninglist with the `suppress` action lists.
    pub(super) suppressed: usize,
}

/// Reads every detection indicator of the store and indexes it.
pub(super) fn build(conn: &Connection, matcher: &Matcher) -> Result<Indexed, Error> {
    let mut builder = Builder {
        digests: DigestIndexBuilder::new(),
        values: FxHashMap::default(),
        attribute_ids: Vec::new(),
        algorithms: Algorithms::NONE,
        suppressed: 0,
    };
    let mut stmt = conn.prepare(INDICATORS_SQL)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let attribute_id: i64 = r.get(0)?;
        let type_name = text(r, 1)?.unwrap_or_default();
        let value = text(r, 2)?.unwrap_or_default();
        let hits = matcher.check(type_name, value);
        if hits.iter().any(|h| h.action == Action::Suppress) {
            builder.suppressed += 1;
        }
        builder.add(attribute_id, type_name, value);
    }
    Ok(Indexed {
        digests: builder.digests.build(),
        values: builder.values,
        attribute_ids: builder.attribute_ids,
        algorithms: builder.algorithms,
        suppressed: builder.suppressed,
    })
}

struct Builder {
    digests: DigestIndexBuilder,
    values: FxHashMap<Box<str>, Vec<u32>>,
    attribute_ids: Vec<i64>,
    algorithms: Algorithms,
    suppressed: usize,
}

impl Builder {
    /// Indexes an indicator under its digest or value, and each half of a composite.
    fn add(&mut self, attribute_id: i64, type_name: &str, value: &str) {
        let id = self.attribute_ids.len() as u32;
        self.attribute_ids.push(attribute_id);

        if let Some((algo, hash)) = hash_of(type_name, value) {
            if algo.is_content_digest() && self.add_digest(algo, hash, id) {
                if let Some((name, _)) = value.rsplit_once('|') {
                    self.add_value(name, id);
                }
                return;
            }
            self.add_value(hash, id);
            if let Some((name, _)) = value.rsplit_once('|') {
                self.add_value(name, id);
            }
            return;
        }
        self.add_value(value, id);
        if composite_parts(type_name).is_some() {
            if let Some((a, b)) = split_composite(type_name, value) {
                self.add_value(a, id);
                self.add_value(b, id);
            }
        }
    }

    /// Indexes the raw bytes of a hex digest; returns false when `hex` is not valid hex.
    fn add_digest(&mut self, algo: HashAlgo, hex: &str, id: u32) -> bool {
        let mut stack = [0u8; MAX_DIGEST_BYTES];
        if hex.len().is_multiple_of(2) && hex.len() / 2 <= MAX_DIGEST_BYTES {
            let bytes = &mut stack[..hex.len() / 2];
            if hex::decode_to_slice(hex, bytes).is_err() {
                return false;
            }
            self.digests.insert(bytes, id);
        } else {
            let Ok(bytes) = hex::decode(hex) else {
                return false;
            };
            self.digests.insert(&bytes, id);
        }
        match algo {
            HashAlgo::Md5 => self.algorithms.md5 = true,
            HashAlgo::Sha1 => self.algorithms.sha1 = true,
            HashAlgo::Sha256 => self.algorithms.sha256 = true,
            _ => {}
        }
        true
    }

    fn add_value(&mut self, value: &str, id: u32) {
        let ids = self.values.entry(value.into()).or_default();
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
}
