//! One sorted table of fixed-length digests with its bucket directory, and how it is built.
//!
//! A record is the digest zero-padded to whole 32-bit words, then one value word. Records are
//! sorted by [`cmp_keys`], and bucket `b` of the directory contains the records
//! `directory[b]..directory[b + 1]`, where `b` is the top `bits` bits of the digest's first
//! eight bytes read big-endian.

use std::cmp::Ordering;

/// Tag bit of a value word: set means "offset into the side table", clear means "the id itself".
pub(crate) const MULTI_TAG: u32 = 1 << 31;

/// Buckets up to this size are scanned linearly, larger ones binary-searched.
const LINEAR_SCAN_MAX: usize = 16;

/// Records gathered by the builder for one digest length, in insertion order.
pub(crate) struct Pending {
    pub(crate) key_len: usize,
    pub(crate) key_words: usize,
    pub(crate) records: Vec<u32>,
}

impl Pending {
    pub(crate) fn new(key_len: usize) -> Self {
        Pending {
            key_len,
            key_words: key_len.div_ceil(4),
            records: Vec::new(),
        }
    }

    pub(crate) fn stride(&self) -> usize {
        self.key_words + 1
    }

    pub(crate) fn push(&mut self, digest: &[u8], id: u32) {
        push_key_words(&mut self.records, digest);
        self.records.push(id);
    }
}

/// Appends `digest` as native-endian 32-bit words, the last one zero-padded.
pub(crate) fn push_key_words(out: &mut Vec<u32>, digest: &[u8]) {
    let mut chunks = digest.chunks_exact(4);
    for chunk in &mut chunks {
        out.push(u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 4];
        word[..rest.len()].copy_from_slice(rest);
        out.push(u32::from_ne_bytes(word));
    }
}

/// Returns the first eight bytes of a key as a big-endian number, so that prefixes sort like the
/// digest bytes.
#[inline]
pub(crate) fn prefix(key: &[u32]) -> u64 {
    let word = |i: usize| {
        key.get(i)
            .map_or(0, |w| u32::from_be_bytes(w.to_ne_bytes()))
    };
    (u64::from(word(0)) << 32) | u64::from(word(1))
}

/// Total order of keys: the prefix first, then the remaining words.
pub(crate) fn cmp_keys(a: &[u32], b: &[u32]) -> Ordering {
    let rest = 2.min(a.len());
    prefix(a)
        .cmp(&prefix(b))
        .then_with(|| a[rest..].cmp(&b[rest..]))
}

#[inline]
pub(crate) fn bucket_of(prefix: u64, bits: u32) -> usize {
    prefix.checked_shr(64 - bits).unwrap_or(0) as usize
}

/// Directory size for `n` records: about one record per bucket, at most 2^31 buckets.
fn directory_bits(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        n.ilog2().min(31)
    }
}

/// Immutable table of the distinct digests of one length.
pub(crate) struct Table {
    pub(crate) key_len: usize,
    key_words: usize,
    stride: usize,
    bits: u32,
    directory: Box<[u32]>,
    records: Box<[u32]>,
}

impl Table {
    /// Sorts the pending records, merges duplicate digests (their ids go to `multi`) and
    /// builds the directory.
    pub(crate) fn build(pending: Pending, multi: &mut Vec<u32>) -> Table {
        let key_len = pending.key_len;
        let key_words = pending.key_words;
        let stride = pending.stride();
        let mut records = bucket_sort(pending);
        let n = merge_duplicates(&mut records, key_words, multi);
        records.truncate(n * stride);
        records.shrink_to_fit();
        assert!(
            u32::try_from(n).is_ok(),
            "digest index holds at most 2^32 - 1 digests per length"
        );
        let bits = directory_bits(n);
        let directory = build_directory(&records, stride, key_words, bits);
        Table {
            key_len,
            key_words,
            stride,
            bits,
            directory,
            records: records.into_boxed_slice(),
        }
    }

    /// Rebuilds a table from the parts [`Table::parts`] returned, checking every bound that a
    /// lookup relies on.
    pub(crate) fn from_parts(
        key_len: usize,
        bits: u32,
        directory: Vec<u32>,
        records: Vec<u32>,
    ) -> Result<Table, &'static str> {
        let key_words = key_len.div_ceil(4);
        let stride = key_words + 1;
        if bits > 31 || directory.len() != (1usize << bits) + 1 {
            return Err("directory size does not match its bits");
        }
        if !records.len().is_multiple_of(stride) {
            return Err("records are not whole");
        }
        let n = records.len() / stride;
        if directory[0] != 0 || directory.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err("directory is not ascending");
        }
        if directory[directory.len() - 1] as usize != n {
            return Err("directory does not end at the record count");
        }
        Ok(Table {
            key_len,
            key_words,
            stride,
            bits,
            directory: directory.into_boxed_slice(),
            records: records.into_boxed_slice(),
        })
    }

    /// The directory and the records, for encoding.
    pub(crate) fn parts(&self) -> (&[u32], &[u32]) {
        (&self.directory, &self.records)
    }

    pub(crate) fn bits(&self) -> u32 {
        self.bits
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len() / self.stride
    }

    pub(crate) fn key_words(&self) -> usize {
        self.key_words
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.directory.len() + self.records.len()) * 4
    }

    #[inline]
    fn key_at(&self, i: usize) -> &[u32] {
        let start = i * self.stride;
        &self.records[start..start + self.key_words]
    }

    #[inline]
    pub(crate) fn value_at(&self, i: usize) -> &u32 {
        &self.records[i * self.stride + self.key_words]
    }

    #[inline]
    pub(crate) fn bucket(&self, prefix: u64) -> usize {
        bucket_of(prefix, self.bits)
    }

    /// Address of bucket `b`'s directory entry, for prefetching.
    #[inline]
    pub(crate) fn directory_ptr(&self, b: usize) -> *const u32 {
        self.directory[b..].as_ptr()
    }

    /// Record range of bucket `b`, and the address of its first record, for prefetching.
    #[inline]
    pub(crate) fn bucket_range(&self, b: usize) -> (usize, usize, *const u32) {
        let lo = self.directory[b] as usize;
        let hi = self.directory[b + 1] as usize;
        (
            lo,
            hi,
            self.records[(lo * self.stride).min(self.records.len())..].as_ptr(),
        )
    }

    /// Returns the record index of `key`, whose prefix is `prefix`.
    #[inline]
    pub(crate) fn find(&self, key: &[u32], prefix: u64) -> Option<usize> {
        let (lo, hi, _) = self.bucket_range(self.bucket(prefix));
        self.find_in(key, prefix, lo, hi)
    }

    #[inline]
    pub(crate) fn find_in(
        &self,
        key: &[u32],
        key_prefix: u64,
        lo: usize,
        hi: usize,
    ) -> Option<usize> {
        if hi - lo > LINEAR_SCAN_MAX {
            return self.find_binary(key, lo, hi);
        }
        for i in lo..hi {
            let record = self.key_at(i);
            match prefix(record).cmp(&key_prefix) {
                Ordering::Less => {}
                Ordering::Equal if record == key => return Some(i),
                Ordering::Equal => {}
                Ordering::Greater => return None,
            }
        }
        None
    }

    fn find_binary(&self, key: &[u32], lo: usize, hi: usize) -> Option<usize> {
        let mut lo = lo;
        let mut hi = hi;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match cmp_keys(self.key_at(mid), key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Equal => return Some(mid),
                Ordering::Greater => hi = mid,
            }
        }
        None
    }
}

/// Sorts records by key: a counting sort on the leading bits, then a sort inside each bucket.
/// Records with equal keys keep their insertion order.
fn bucket_sort(pending: Pending) -> Vec<u32> {
    let stride = pending.stride();
    let key_words = pending.key_words;
    let n = pending.records.len() / stride;
    let bits = directory_bits(n);

    let mut starts = vec![0usize; (1usize << bits) + 1];
    for record in pending.records.chunks_exact(stride) {
        starts[bucket_of(prefix(&record[..key_words]), bits) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }

    let mut sorted = crate::memory::zeroed_words(pending.records.len());
    let mut cursor = starts.clone();
    for record in pending.records.chunks_exact(stride) {
        let b = bucket_of(prefix(&record[..key_words]), bits);
        let at = cursor[b] * stride;
        sorted[at..at + stride].copy_from_slice(record);
        cursor[b] += 1;
    }
    drop(pending);

    let mut scratch = Vec::new();
    for b in 0..starts.len() - 1 {
        let (lo, hi) = (starts[b], starts[b + 1]);
        if hi - lo > 1 {
            sort_records(
                &mut sorted[lo * stride..hi * stride],
                stride,
                key_words,
                &mut scratch,
            );
        }
    }
    sorted
}

/// Stable sort of the records in `block` by key.
fn sort_records(block: &mut [u32], stride: usize, key_words: usize, scratch: &mut Vec<u32>) {
    let n = block.len() / stride;
    if n <= LINEAR_SCAN_MAX {
        // Insertion sort: buckets hold one or two records on average.
        for i in 1..n {
            scratch.clear();
            scratch.extend_from_slice(&block[i * stride..(i + 1) * stride]);
            let mut j = i;
            while j > 0
                && cmp_keys(
                    &block[(j - 1) * stride..][..key_words],
                    &scratch[..key_words],
                )
                .is_gt()
            {
                block.copy_within((j - 1) * stride..j * stride, j * stride);
                j -= 1;
            }
            block[j * stride..(j + 1) * stride].copy_from_slice(scratch);
        }
        return;
    }
    let mut order: Vec<usize> = (0..n).collect();
    let key = |i: usize| &block[i * stride..i * stride + key_words];
    order.sort_by(|&a, &b| cmp_keys(key(a), key(b)));
    scratch.clear();
    for &i in &order {
        scratch.extend_from_slice(&block[i * stride..(i + 1) * stride]);
    }
    block.copy_from_slice(scratch);
}

/// Collapses runs of equal keys into one record each, in place, and returns the record count.
/// A run's ids are sorted and deduplicated; a single id with the tag bit clear stays inline,
/// anything else goes to `multi` as `[count, ids...]`.
fn merge_duplicates(records: &mut [u32], key_words: usize, multi: &mut Vec<u32>) -> usize {
    let stride = key_words + 1;
    let n = records.len() / stride;
    let mut ids = Vec::new();
    let mut written = 0;
    let mut run_start = 0;
    while run_start < n {
        let key = run_start * stride..run_start * stride + key_words;
        let mut run_end = run_start + 1;
        while run_end < n && records[run_end * stride..][..key_words] == records[key.clone()] {
            run_end += 1;
        }

        ids.clear();
        ids.extend((run_start..run_end).map(|i| records[i * stride + key_words]));
        ids.sort_unstable();
        ids.dedup();
        let value = if ids.len() == 1 && ids[0] & MULTI_TAG == 0 {
            ids[0]
        } else {
            let offset = u32::try_from(multi.len())
                .ok()
                .filter(|offset| offset & MULTI_TAG == 0)
                .expect("digest index side table exceeds 2^31 words");
            multi.push(ids.len() as u32);
            multi.extend_from_slice(&ids);
            offset | MULTI_TAG
        };

        records.copy_within(key, written * stride);
        records[written * stride + key_words] = value;
        written += 1;
        run_start = run_end;
    }
    written
}

fn build_directory(records: &[u32], stride: usize, key_words: usize, bits: u32) -> Box<[u32]> {
    let mut directory = crate::memory::zeroed_words((1usize << bits) + 1);
    for record in records.chunks_exact(stride) {
        directory[bucket_of(prefix(&record[..key_words]), bits) + 1] += 1;
    }
    for b in 1..directory.len() {
        directory[b] += directory[b - 1];
    }
    directory.into_boxed_slice()
}
