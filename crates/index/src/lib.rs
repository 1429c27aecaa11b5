//! In-memory index of binary digests (md5, sha1, sha256, ...) to entry ids.
//!
//! The index is built once and then only read, so lookups take no lock. Each digest length has
//! its own table: a flat array of fixed-size records sorted by digest, and a bucket directory
//! indexed by the digest's leading bits with about one record per bucket. Digests of real files
//! are uniformly distributed, so a lookup reads one directory entry and then one or two adjacent
//! records, which is two cache misses on a large index. [`DigestIndex::get_batch`] overlaps
//! those misses across many lookups with prefetches. Digests that share their leading bytes
//! only make their bucket larger, and large buckets are binary-searched.
//!
//! A sha256 record takes 36 bytes and its directory share 2 to 4 bytes. A digest with several
//! ids keeps them in a side table. [`DigestIndex::encode`] turns a built index into bytes that
//! load again without sorting.

mod encode;
mod memory;
mod table;

pub use encode::DecodeError;
use table::{Pending, Table, MULTI_TAG};

/// Digests up to this many bytes are converted to key words on the stack.
const INLINE_KEY_BYTES: usize = 64;

/// Lookups that [`DigestIndex::get_batch`] keeps in flight at once.
const BATCH: usize = 16;

/// Builds a [`DigestIndex`]; the same digest may be inserted with several ids.
#[derive(Default)]
pub struct DigestIndexBuilder {
    pending: Vec<Pending>,
}

impl DigestIndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves room for `additional` more digests of `digest_len` bytes.
    pub fn reserve(&mut self, digest_len: usize, additional: usize) {
        let pending = self.pending_for(digest_len);
        let stride = pending.stride();
        pending.records.reserve(additional.saturating_mul(stride));
    }

    /// Adds `id` under `digest`, the raw bytes of a hash (16 bytes for md5, 32 for sha256, ...).
    pub fn insert(&mut self, digest: &[u8], id: u32) {
        self.pending_for(digest.len()).push(digest, id);
    }

    /// Sorts what was inserted into the read-only index. This takes about a second per ten
    /// million digests and, while it runs, about twice the memory of the finished index.
    pub fn build(self) -> DigestIndex {
        let mut multi = Vec::new();
        let mut tables: Vec<Table> = self
            .pending
            .into_iter()
            .filter(|pending| !pending.records.is_empty())
            .map(|pending| Table::build(pending, &mut multi))
            .collect();
        tables.sort_by_key(|table| table.key_len);
        multi.shrink_to_fit();
        DigestIndex::from_tables(tables, multi.into_boxed_slice())
    }

    fn pending_for(&mut self, digest_len: usize) -> &mut Pending {
        let i = match self.pending.iter().position(|p| p.key_len == digest_len) {
            Some(i) => i,
            None => {
                self.pending.push(Pending::new(digest_len));
                self.pending.len() - 1
            }
        };
        &mut self.pending[i]
    }
}

/// Immutable map from a raw digest to the ids inserted under it.
pub struct DigestIndex {
    /// Tables sorted by digest length.
    tables: Vec<Table>,
    /// Table position plus one for each digest length up to 64 bytes, zero when there is none.
    by_len: [u8; INLINE_KEY_BYTES + 1],
    /// Id lists of digests with several ids, each stored as `[count, ids...]`.
    multi: Box<[u32]>,
}

impl Default for DigestIndex {
    fn default() -> Self {
        DigestIndexBuilder::new().build()
    }
}

impl DigestIndex {
    /// Assembles an index from tables sorted by digest length and their side table.
    fn from_tables(tables: Vec<Table>, multi: Box<[u32]>) -> DigestIndex {
        let mut by_len = [0u8; INLINE_KEY_BYTES + 1];
        for (i, table) in tables.iter().enumerate() {
            if table.key_len <= INLINE_KEY_BYTES && i < usize::from(u8::MAX) {
                by_len[table.key_len] = i as u8 + 1;
            }
        }
        DigestIndex {
            tables,
            by_len,
            multi,
        }
    }

    /// Returns the ids stored under `digest`, ascending and without repeats, or an empty slice
    /// when the digest is unknown.
    pub fn get(&self, digest: &[u8]) -> &[u32] {
        let Some(table) = self.table_for(digest.len()) else {
            return &[];
        };
        let key = KeyWords::new(digest, table.key_words());
        let key = key.as_slice();
        match table.find(key, table::prefix(key)) {
            Some(i) => self.ids_of(table.value_at(i)),
            None => &[],
        }
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

    /// Number of distinct digests.
    pub fn len(&self) -> usize {
        self.tables.iter().map(Table::len).sum()
    }

    /// Returns the largest id stored, or `None` when the index is empty.
    pub fn max_id(&self) -> Option<u32> {
        let mut max = None;
        for table in &self.tables {
            for i in 0..table.len() {
                let ids = self.ids_of(table.value_at(i));
                max = max.max(ids.iter().copied().max());
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

    fn table_for(&self, digest_len: usize) -> Option<&Table> {
        match self.by_len.get(digest_len) {
            Some(0) => None,
            Some(&i) => Some(&self.tables[usize::from(i) - 1]),
            None => self.tables.iter().find(|table| table.key_len == digest_len),
        }
    }

    fn ids_of<'a>(&'a self, value: &'a u32) -> &'a [u32] {
        if value & MULTI_TAG == 0 {
            return std::slice::from_ref(value);
        }
        let offset = (value & !MULTI_TAG) as usize;
        let count = self.multi[offset] as usize;
        &self.multi[offset + 1..offset + 1 + count]
    }

    /// Runs up to [`BATCH`] lookups in three passes so that their cache misses overlap:
    /// prefetch the directory entries, then the first records, then compare.
    fn get_chunk<'a, D: AsRef<[u8]>>(&'a self, digests: &[D], out: &mut Vec<&'a [u32]>) {
        let mut probes: [Option<Probe<'a>>; BATCH] = Default::default();
        for (probe, digest) in probes.iter_mut().zip(digests) {
            let digest = digest.as_ref();
            let Some(table) = self.table_for(digest.len()) else {
                continue;
            };
            let key = KeyWords::new(digest, table.key_words());
            let prefix = table::prefix(key.as_slice());
            let bucket = table.bucket(prefix);
            prefetch(table.directory_ptr(bucket));
            *probe = Some(Probe {
                table,
                key,
                prefix,
                bucket,
                lo: 0,
                hi: 0,
            });
        }

        for probe in probes.iter_mut().flatten() {
            let (lo, hi, first) = probe.table.bucket_range(probe.bucket);
            prefetch(first);
            (probe.lo, probe.hi) = (lo, hi);
        }

        for probe in probes.iter().take(digests.len()) {
            let ids = probe.as_ref().and_then(|p| {
                let found = p.table.find_in(p.key.as_slice(), p.prefix, p.lo, p.hi)?;
                Some(self.ids_of(p.table.value_at(found)))
            });
            out.push(ids.unwrap_or(&[]));
        }
    }
}

/// One lookup of a batch in progress.
struct Probe<'a> {
    table: &'a Table,
    key: KeyWords,
    prefix: u64,
    bucket: usize,
    lo: usize,
    hi: usize,
}

/// A digest as the zero-padded 32-bit words a table compares.
enum KeyWords {
    Inline {
        words: [u32; INLINE_KEY_BYTES / 4],
        len: usize,
    },
    Heap(Vec<u32>),
}

impl KeyWords {
    #[inline]
    fn new(digest: &[u8], key_words: usize) -> Self {
        if digest.len() > INLINE_KEY_BYTES {
            let mut words = Vec::with_capacity(key_words);
            table::push_key_words(&mut words, digest);
            return KeyWords::Heap(words);
        }
        let mut words = [0u32; INLINE_KEY_BYTES / 4];
        let mut chunks = digest.chunks_exact(4);
        for (word, chunk) in words.iter_mut().zip(&mut chunks) {
            *word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 4];
            last[..rest.len()].copy_from_slice(rest);
            words[digest.len() / 4] = u32::from_ne_bytes(last);
        }
        KeyWords::Inline {
            words,
            len: key_words,
        }
    }

    #[inline]
    fn as_slice(&self) -> &[u32] {
        match self {
            KeyWords::Inline { words, len } => &words[..*len],
            KeyWords::Heap(words) => words,
        }
    }
}

/// Asks the CPU to start loading the cache line at `address`.
#[inline(always)]
fn prefetch(address: *const u32) {
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
