//! In-memory index of binary digests (md5, sha1, sha256, ...) to entry ids.
//!
//! The index is built once and then only read, so lookups take no lock.

use std::collections::HashMap;

/// Builds a [`DigestIndex`]; the same digest may be inserted with several ids.
#[derive(Default)]
pub struct DigestIndexBuilder {
    entries: HashMap<Vec<u8>, Vec<u32>>,
}

impl DigestIndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id` under `digest`, the raw bytes of a hash (16 bytes for md5, 32 for sha256, ...).
    pub fn insert(&mut self, digest: &[u8], id: u32) {
        self.entries.entry(digest.to_vec()).or_default().push(id);
    }

    pub fn build(self) -> DigestIndex {
        DigestIndex { entries: self.entries }
    }
}

/// Immutable map from a raw digest to the ids inserted under it.
#[derive(Default)]
pub struct DigestIndex {
    // NOTE: placeholder layout; a compact table per digest length replaces it.
    entries: HashMap<Vec<u8>, Vec<u32>>,
}

impl DigestIndex {
    /// Returns the ids stored under `digest`, empty when it is unknown.
    pub fn get(&self, digest: &[u8]) -> &[u32] {
        self.entries.get(digest).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of distinct digests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
