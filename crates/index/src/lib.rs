//! In-memory index of binary digests (md5, sha1, sha256, ...) to entry ids.
//!
//! The index is built once and then only read, so lookups take no lock. Each digest length has
//! its own table of 64-byte lines, one cache line each, with four slots per line. A digest's
//! leading bits pick its home line, and its slot contains a 92-bit fingerprint taken from the
//! digest's last 12 bytes plus the id. A lookup reads the home line and compares the four
//! fingerprints at once, so hits and misses alike cost one cache miss on a large index. About
//! 2 to 3 % of the lookups also read the next line, where a crowded home line spilled over
//! (an estimate from simulating random digests at the table's load).
//! A digest that would sit more than six lines from its home goes to a sorted far list,
//! which keeps lookups short when many digests share their leading bytes.
//! [`DigestIndex::get_batch`] overlaps the cache misses of many lookups with prefetches.
//!
//! # Fingerprints
//!
//! The index does not keep whole digests, so [`DigestIndex::get`] may return the ids of
//! another digest of the same length. Callers that need certainty compare the full digest of
//! what an id names, and drop the ids whose digest differs. A false candidate needs another
//! digest with the same home line and the same 92-bit fingerprint. For digests that behave
//! like random bits (md5, sha1 and the sha2 family on real files), the fingerprint bits are
//! independent of the leading bits. So a lookup of an unknown digest returns a false
//! candidate with a probability of at most `m / 2^92`, where `m` is the number of digests
//! homed at its line (1.6 on average). For `m` up to 4 that is below 10^-27.
//! Forcing one on purpose takes a second preimage of 92 bits of the hash. Digests of 11 bytes
//! or fewer fit in the fingerprint and are compared whole.
//!
//! A slot matches only digests of its own home line, and digests that share the home line
//! and the fingerprint share one slot with all their ids, so a lookup never misses an
//! inserted digest.
//!
//! A sha256 takes 40 bytes: 64-byte lines at 40 % occupancy. A digest with several ids keeps
//! them in a side table. [`DigestIndex::encode`] turns a built index into bytes that load
//! again without sorting.

mod encode;
mod key;
mod memory;
mod table;

pub use encode::DecodeError;
pub use key::MAX_FINGERPRINT_BITS;
use key::{Fingerprint, Key};
use table::{Entry, Pending, Table, MULTI_TAG};

/// Digest lengths up to this many bytes find their table through a lookup array.
const DIRECT_LEN_MAX: usize = 64;

/// Lookups that [`DigestIndex::get_batch`] keeps in flight at once.
const BATCH: usize = 16;

/// Builds a [`DigestIndex`]; the same digest may be inserted with several ids.
pub struct DigestIndexBuilder {
    pending: Vec<Pending>,
    mask: Fingerprint,
}

impl Default for DigestIndexBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestIndexBuilder {
    pub fn new() -> Self {
        Self::with_fingerprint_bits(MAX_FINGERPRINT_BITS)
    }

    /// Creates a builder whose index keeps only `bits` bits of each fingerprint (at most
    /// [`MAX_FINGERPRINT_BITS`]). Fewer bits make false candidates likely, so tests of
    /// callers use them to check that they compare full digests. With 0 bits, a lookup
    /// returns the ids of every digest of its home line.
    pub fn with_fingerprint_bits(bits: u32) -> Self {
        DigestIndexBuilder {
            pending: Vec::new(),
            mask: Fingerprint::mask(bits),
        }
    }

    /// Reserves room for `additional` more digests of `digest_len` bytes.
    pub fn reserve(&mut self, digest_len: usize, additional: usize) {
        self.pending_for(digest_len).entries.reserve(additional);
    }

    /// Adds `id` under `digest`, the raw bytes of a hash (16 bytes for md5, 32 for sha256, ...).
    pub fn insert(&mut self, digest: &[u8], id: u32) {
        let key = Key::new(digest, self.mask);
        self.pending_for(digest.len())
            .entries
            .push(Entry { key, id });
    }

    /// Sorts what was inserted into the read-only index. This takes about a second per ten
    /// million digests and, while it runs, about three times the memory of the finished index.
    pub fn build(self) -> DigestIndex {
        let mut multi = Vec::new();
        let mut tables: Vec<Table> = self
            .pending
            .into_iter()
            .filter(|pending| !pending.entries.is_empty())
            .map(|pending| Table::build(pending, &mut multi))
            .collect();
        tables.sort_by_key(|table| table.key_len);
        multi.shrink_to_fit();
        DigestIndex::from_tables(tables, multi.into_boxed_slice(), self.mask)
    }

    fn pending_for(&mut self, digest_len: usize) -> &mut Pending {
        let i = match self.pending.iter().position(|p| p.key_len == digest_len) {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    key_len: digest_len,
                    entries: Vec::new(),
                });
                self.pending.len() - 1
            }
        };
        &mut self.pending[i]
    }
}

/// Immutable map from a raw digest to the ids inserted under it, or rarely under another
/// digest of the same length with the same fingerprint (see the crate documentation).
pub struct DigestIndex {
    /// Tables sorted by digest length.
    tables: Vec<Table>,
    /// Table position plus one for each digest length up to 64 bytes, zero when there is none.
    by_len: [u8; DIRECT_LEN_MAX + 1],
    /// Id lists of digests with several ids, each stored as `[count, ids...]`.
    multi: Box<[u32]>,
    /// Fingerprint bits kept, as a mask.
    mask: Fingerprint,
}

impl Default for DigestIndex {
    fn default() -> Self {
        DigestIndexBuilder::new().build()
    }
}

impl DigestIndex {
    /// Assembles an index from tables sorted by digest length and their side table.
    fn from_tables(tables: Vec<Table>, multi: Box<[u32]>, mask: Fingerprint) -> DigestIndex {
        let mut by_len = [0u8; DIRECT_LEN_MAX + 1];
        for (i, table) in tables.iter().enumerate() {
            if table.key_len <= DIRECT_LEN_MAX && i < usize::from(u8::MAX) {
                by_len[table.key_len] = i as u8 + 1;
            }
        }
        DigestIndex {
            tables,
            by_len,
            multi,
            mask,
        }
    }

    /// Returns the ids stored under `digest`, ascending and without repeats, or an empty slice
    /// when the digest is unknown. Digests longer than 11 bytes are compared by fingerprint,
    /// so the ids may rarely belong to another digest: callers compare the full digest.
    #[inline]
    pub fn get(&self, digest: &[u8]) -> &[u32] {
        let Some(table) = self.table_for(digest.len()) else {
            return &[];
        };
        let key = Key::new(digest, self.mask);
        self.find(table, &key, table.home(key.prefix))
    }

    /// Looks up every digest of `digests` and appends the result of each to `out`, in order.
    /// Same results as calling [`DigestIndex::get`] on each, but faster on a large index
    /// because it prefetches the memory of several lookups before reading it.
    pub fn get_batch<'a, D: AsRef<[u8]>>(&'a self, digests: &[D], out: &mut Vec<&'a [u32]>) {
        out.reserve(digests.len());
        for chunk in digests.chunks(BATCH) {
            self.get_chunk(chunk, out);
        }
    }

    /// Number of distinct digests, counting digests that share a slot once.
    pub fn len(&self) -> usize {
        self.tables.iter().map(Table::len).sum()
    }

    /// Returns the largest id stored, or `None` when the index is empty.
    pub fn max_id(&self) -> Option<u32> {
        let mut max = None;
        for table in &self.tables {
            for value in table.values().filter(|&value| value != table::EMPTY) {
                max = max.max(self.ids_of(&value).iter().copied().max());
            }
        }
        max
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap memory held by the index, in bytes.
    pub fn heap_bytes(&self) -> usize {
        let tables: usize = self.tables.iter().map(Table::heap_bytes).sum();
        tables + self.tables.capacity() * std::mem::size_of::<Table>() + self.multi.len() * 4
    }

    /// Address ranges of the tables' line arrays, so that a benchmark can check which pages
    /// back them.
    #[doc(hidden)]
    pub fn line_ranges(&self) -> Vec<std::ops::Range<usize>> {
        self.tables.iter().map(Table::line_range).collect()
    }

    #[inline]
    fn table_for(&self, digest_len: usize) -> Option<&Table> {
        match self.by_len.get(digest_len) {
            Some(0) => None,
            Some(&i) => self.tables.get(usize::from(i) - 1),
            None => self.tables.iter().find(|table| table.key_len == digest_len),
        }
    }

    /// Returns the ids of `key`, whose home line in `table` is `home`.
    #[inline]
    fn find<'a>(&'a self, table: &'a Table, key: &Key, home: usize) -> &'a [u32] {
        let Some(probe) = table.probe_home(key, home) else {
            return &[];
        };
        if probe.found {
            return self.ids_of(probe.value);
        }
        if probe.look_further {
            return table
                .find_further(key, home)
                .map_or(&[], |v| self.ids_of(v));
        }
        &[]
    }

    #[inline]
    fn ids_of<'a>(&'a self, value: &'a u32) -> &'a [u32] {
        if value & MULTI_TAG == 0 {
            return std::slice::from_ref(value);
        }
        let offset = (value & !MULTI_TAG) as usize;
        let count = self.multi.get(offset).map_or(0, |&count| count as usize);
        self.multi
            .get(offset + 1..offset + 1 + count)
            .unwrap_or(&[])
    }

    /// Runs up to [`BATCH`] lookups in two passes so that their cache misses overlap:
    /// prefetch the home lines, then compare.
    fn get_chunk<'a, D: AsRef<[u8]>>(&'a self, digests: &[D], out: &mut Vec<&'a [u32]>) {
        let mut probes: [Option<Probe<'a>>; BATCH] = Default::default();
        for (probe, digest) in probes.iter_mut().zip(digests) {
            let digest = digest.as_ref();
            let Some(table) = self.table_for(digest.len()) else {
                continue;
            };
            let key = Key::new(digest, self.mask);
            let home = table.home(key.prefix);
            prefetch(table.line_ptr(home));
            *probe = Some(Probe { table, key, home });
        }

        for probe in probes.iter().take(digests.len()) {
            let ids = match probe {
                Some(p) => self.find(p.table, &p.key, p.home),
                None => &[],
            };
            out.push(ids);
        }
    }
}

/// One lookup of a batch in progress.
struct Probe<'a> {
    table: &'a Table,
    key: Key,
    home: usize,
}

/// Asks the CPU to start loading the cache line at `address`.
#[inline(always)]
fn prefetch<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and reads no value, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

#[cfg(test)]
mod tests;
