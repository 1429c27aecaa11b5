//! One table of fixed-length digests: 64-byte lines of four fingerprint slots, each line the
//! bucket of a range of leading digest bits, and how it is built.
//!
//! A slot is four 32-bit words. The first two contain the low 64 fingerprint bits. The third
//! contains the 28 high fingerprint bits, the slot's displacement from its home line (3
//! bits, 7 in an empty slot) and a line flag. The fourth is the value word.
//!
//! A digest's home line is `prefix * buckets >> 64`, so homes ascend with the digest. A digest
//! goes to the first line from its home on that has a free slot, at most
//! [`MAX_DISPLACEMENT`] lines on, and to the sorted far list beyond that. Slot 0's flag of a
//! line marks that a digest homed at or before it sits in a later line. Slot 1's flag marks
//! that a digest homed at it is in the far list. A lookup compares the fingerprint and the
//! displacement, so a slot only matches digests of its own home line.

use crate::key::{Fingerprint, Key, FINGERPRINT_HIGH_BITS, FINGERPRINT_HIGH_MASK};

/// Tag bit of a value word: set means "offset into the side table", clear means "the id itself".
pub(crate) const MULTI_TAG: u32 = 1 << 31;
/// Value word of an empty slot. Side-table offsets stay below `!MULTI_TAG`, so no stored value
/// equals it.
pub(crate) const EMPTY: u32 = u32::MAX;
/// Lines a digest may sit after its home line before it goes to the far list.
pub(crate) const MAX_DISPLACEMENT: usize = 6;
/// Displacement of an empty slot. No lookup compares with it, so an empty slot never matches
/// and needs no separate check.
const EMPTY_DISPLACEMENT: u32 = 7;
/// Words of one 64-byte line.
pub(crate) const LINE_WORDS: usize = 16;

const SLOTS: usize = 4;
const SLOT_WORDS: usize = 4;
/// Words of one far-list entry: home line, fingerprint low (2 words), fingerprint high, value.
const FAR_WORDS: usize = 5;
/// Line flag bit, in the fingerprint-high word of a slot.
const FLAG: u32 = 1 << 31;
/// Word of a line whose flag marks "digests homed here or before continue in the next line".
const CONTINUE_WORD: usize = 2;
/// Word of a line whose flag marks "digests homed here are in the far list".
const FAR_WORD: usize = SLOT_WORDS + 2;
/// Digests per line on average, as a fraction: 8 / 5 = 1.6 of the 4 slots (40 % full). At
/// that load about 2 to 3 % of random digests sit outside their home line (simulated).
const DIGESTS_PER_LINE: (usize, usize) = (8, 5);

/// Entries gathered by the builder for one digest length, in insertion order.
pub(crate) struct Pending {
    pub(crate) key_len: usize,
    pub(crate) entries: Vec<Entry>,
}

/// A digest's key with one id, before building.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) id: u32,
}

/// One 64-byte line of four slots, aligned so that it is one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [u32; LINE_WORDS]);

impl Line {
    /// A line of four empty slots and no flags.
    const EMPTY: Line = {
        let mut words = [0u32; LINE_WORDS];
        let mut slot = 0;
        while slot < SLOTS {
            words[slot * SLOT_WORDS + 2] = EMPTY_DISPLACEMENT << FINGERPRINT_HIGH_BITS;
            words[slot * SLOT_WORDS + 3] = EMPTY;
            slot += 1;
        }
        Line(words)
    };
}

/// Immutable table of the digests of one length.
pub(crate) struct Table {
    pub(crate) key_len: usize,
    /// Home lines; the table has [`MAX_DISPLACEMENT`] more lines after them.
    buckets: usize,
    lines: Box<[Line]>,
    /// Far-list entries sorted by home line and fingerprint, [`FAR_WORDS`] words each.
    far: Box<[u32]>,
    len: usize,
}

impl Table {
    /// Sorts the entries, merges those of one home line and fingerprint (their ids go to
    /// `multi`) and places them in lines.
    pub(crate) fn build(pending: Pending, multi: &mut Vec<u32>) -> Table {
        let key_len = pending.key_len;
        let mut entries = pending.entries;
        entries.sort_unstable_by_key(|e| (e.key.prefix, e.key.fingerprint, e.id));
        let buckets = buckets_for(count_distinct(&entries));
        let homed = merge_by_home(entries, buckets, multi);
        let mut table = Table::empty(key_len, buckets);
        let mut far = Vec::new();
        table.place(&homed, &mut far);
        table.far = far.into_boxed_slice();
        table.len = homed.len();
        table
    }

    fn empty(key_len: usize, buckets: usize) -> Table {
        let lines = crate::memory::filled(buckets + MAX_DISPLACEMENT, Line::EMPTY);
        Table {
            key_len,
            buckets,
            lines: lines.into_boxed_slice(),
            far: Box::default(),
            len: 0,
        }
    }

    /// Writes each entry (sorted by home line) to the first line with a free slot.
    fn place(&mut self, homed: &[Homed], far: &mut Vec<u32>) {
        let mut line = 0;
        let mut filled = 0;
        for entry in homed {
            if entry.home > line {
                (line, filled) = (entry.home, 0);
            } else if filled == SLOTS {
                (line, filled) = (line + 1, 0);
            }
            let displacement = line - entry.home;
            if displacement > MAX_DISPLACEMENT {
                self.set_flag(entry.home, FAR_WORD);
                push_far(far, entry);
                continue;
            }
            for before in entry.home..line {
                self.set_flag(before, CONTINUE_WORD);
            }
            let slot = &mut self.lines[line].0[filled * SLOT_WORDS..(filled + 1) * SLOT_WORDS];
            let fingerprint = entry.fingerprint;
            slot[0] = fingerprint.low as u32;
            slot[1] = (fingerprint.low >> 32) as u32;
            let flag = slot[2] & FLAG;
            slot[2] = flag | fingerprint.high | (displacement as u32) << FINGERPRINT_HIGH_BITS;
            slot[3] = entry.value;
            filled += 1;
        }
    }

    fn set_flag(&mut self, line: usize, word: usize) {
        self.lines[line].0[word] |= FLAG;
    }

    /// Rebuilds a table from the parts [`Table::parts`] returned, the lines as native-endian
    /// bytes, checking every bound that a lookup relies on.
    pub(crate) fn from_parts(
        key_len: usize,
        buckets: usize,
        lines: &[u8],
        far: Vec<u32>,
    ) -> Result<Table, &'static str> {
        if buckets == 0 || buckets > u32::MAX as usize {
            return Err("bucket count out of range");
        }
        if lines.len() != (buckets + MAX_DISPLACEMENT) * LINE_WORDS * 4 {
            return Err("line count does not match the bucket count");
        }
        if !far.len().is_multiple_of(FAR_WORDS) {
            return Err("far list is not whole");
        }
        let mut table = Table::empty(key_len, buckets);
        let words = table.lines.iter_mut().flat_map(|line| line.0.iter_mut());
        for (word, bytes) in words.zip(lines.chunks_exact(4)) {
            *word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        table.far = far.into_boxed_slice();
        table.len = table.values().filter(|&value| value != EMPTY).count();
        Ok(table)
    }

    /// Returns the bucket count, the lines and the far list, for encoding.
    pub(crate) fn parts(&self) -> (usize, &[Line], &[u32]) {
        (self.buckets, &self.lines, &self.far)
    }

    /// Value words of every slot, empty ones included, then of the far list.
    pub(crate) fn values(&self) -> impl Iterator<Item = u32> + '_ {
        let slots = self.slots().map(|slot| slot[3]);
        slots.chain(self.far.chunks_exact(FAR_WORDS).map(|entry| entry[4]))
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<Line>() + self.far.len() * 4
    }

    /// Iterates over every slot of every line, as its four words.
    fn slots(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.lines
            .iter()
            .flat_map(|line| line.0.chunks_exact(SLOT_WORDS))
    }

    /// Counts of the digests in their home line, in a later line, and in the far list.
    #[cfg(test)]
    pub(crate) fn placement(&self) -> (usize, usize, usize) {
        let (mut home, mut later) = (0, 0);
        for slot in self.slots() {
            if slot[3] == EMPTY {
                continue;
            }
            match (slot[2] & !FLAG) >> FINGERPRINT_HIGH_BITS {
                0 => home += 1,
                _ => later += 1,
            }
        }
        (home, later, self.far.len() / FAR_WORDS)
    }

    /// Address range of the lines.
    pub(crate) fn line_range(&self) -> std::ops::Range<usize> {
        let lines = self.lines.as_ptr_range();
        lines.start as usize..lines.end as usize
    }

    /// Home line of a digest whose key has `prefix`; always below the bucket count.
    #[inline]
    pub(crate) fn home(&self, prefix: u64) -> usize {
        ((u128::from(prefix) * self.buckets as u128) >> 64) as usize
    }

    /// Address of line `line`, for prefetching.
    #[inline]
    pub(crate) fn line_ptr(&self, line: usize) -> *const Line {
        self.lines.as_ptr().wrapping_add(line)
    }

    /// Reads the home line of `key`, `home`, and compares its four slots at once. It does not
    /// branch on whether a slot matched, because that outcome is as random as the lookups.
    #[inline]
    pub(crate) fn probe_home(&self, key: &Key, home: usize) -> Option<HomeProbe<'_>> {
        let line = &self.lines.get(home)?.0;
        let hits = match_slots(line, key.fingerprint, 0);
        let slot = (hits.trailing_zeros() as usize).min(SLOTS - 1);
        let found = hits != 0;
        let flags = (line[CONTINUE_WORD] | line[FAR_WORD]) & FLAG != 0;
        Some(HomeProbe {
            value: &line[slot * SLOT_WORDS + 3],
            found,
            look_further: !found & flags,
        })
    }

    /// Looks for `key` after its home line `home`: in the next lines while their flags
    /// mark that digests spilled over, then in the far list.
    #[cold]
    #[inline(never)]
    pub(crate) fn find_further(&self, key: &Key, home: usize) -> Option<&u32> {
        let home_line = &self.lines.get(home)?.0;
        let mut line = home_line;
        for displacement in 1..=MAX_DISPLACEMENT {
            if line[CONTINUE_WORD] & FLAG == 0 {
                break;
            }
            line = &self.lines.get(home + displacement)?.0;
            let hits = match_slots(line, key.fingerprint, displacement);
            if hits != 0 {
                return Some(&line[hits.trailing_zeros() as usize * SLOT_WORDS + 3]);
            }
        }
        if home_line[FAR_WORD] & FLAG != 0 {
            return self.find_far(home, key.fingerprint);
        }
        None
    }

    /// Binary search of the far list for `home` and `fingerprint`.
    #[cold]
    fn find_far(&self, home: usize, fingerprint: Fingerprint) -> Option<&u32> {
        let target = (home as u32, fingerprint);
        let entry_key = |i: usize| {
            let entry = &self.far[i * FAR_WORDS..(i + 1) * FAR_WORDS];
            let low = u64::from(entry[1]) | u64::from(entry[2]) << 32;
            (
                entry[0],
                Fingerprint {
                    high: entry[3],
                    low,
                },
            )
        };
        let (mut lo, mut hi) = (0, self.far.len() / FAR_WORDS);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match entry_key(mid).cmp(&target) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return Some(&self.far[mid * FAR_WORDS + 4]),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }
}

/// Result of reading the home line of a lookup.
pub(crate) struct HomeProbe<'a> {
    /// Value word of the matching slot, or of the last slot when none matched.
    pub(crate) value: &'a u32,
    pub(crate) found: bool,
    /// No slot matched, and the line's flags mark that the digest may be in a later line or
    /// in the far list.
    pub(crate) look_further: bool,
}

/// Compares the four slots of a line at once and returns a bit per matching slot. Merging at
/// build time leaves at most one slot per home line and fingerprint.
#[inline(always)]
fn match_slots(line: &[u32; LINE_WORDS], fingerprint: Fingerprint, displacement: usize) -> u32 {
    let high = fingerprint.high | (displacement as u32) << FINGERPRINT_HIGH_BITS;
    let mut hits = 0u32;
    for slot in 0..SLOTS {
        let words = &line[slot * SLOT_WORDS..(slot + 1) * SLOT_WORDS];
        let low = u64::from(words[0]) | u64::from(words[1]) << 32;
        let equal = (low == fingerprint.low) & (words[2] & !FLAG == high);
        hits |= u32::from(equal) << slot;
    }
    hits
}

/// Home lines for `n` distinct digests, at least one.
fn buckets_for(n: usize) -> usize {
    let (digests, lines) = DIGESTS_PER_LINE;
    (n * lines).div_ceil(digests).max(1)
}

/// Number of distinct keys in entries sorted by key.
fn count_distinct(entries: &[Entry]) -> usize {
    let same = |a: &Entry, b: &Entry| {
        a.key.prefix == b.key.prefix && a.key.fingerprint == b.key.fingerprint
    };
    let repeats = entries.windows(2).filter(|w| same(&w[0], &w[1])).count();
    entries.len() - repeats
}

/// One slot's worth: a home line, a fingerprint and its value word.
struct Homed {
    home: usize,
    fingerprint: Fingerprint,
    value: u32,
}

/// Groups entries sorted by key into one per home line and fingerprint, sorted by both.
/// Different digests only share both when their fingerprints collide. Their ids are merged,
/// and the caller tells them apart by the full digest.
fn merge_by_home(entries: Vec<Entry>, buckets: usize, multi: &mut Vec<u32>) -> Vec<Homed> {
    let home = |prefix: u64| ((u128::from(prefix) * buckets as u128) >> 64) as usize;
    let mut keyed: Vec<(usize, Fingerprint, u32)> = entries
        .iter()
        .map(|e| (home(e.key.prefix), e.key.fingerprint, e.id))
        .collect();
    drop(entries);
    // Homes already ascend, so only runs of one home line can be out of fingerprint order.
    let mut run = 0;
    while run < keyed.len() {
        let end = run_end(&keyed, run, |a, b| a.0 == b.0);
        keyed[run..end].sort_unstable();
        run = end;
    }

    let mut homed = Vec::with_capacity(keyed.len());
    let mut ids = Vec::new();
    let mut start = 0;
    while start < keyed.len() {
        let (line, fingerprint, _) = keyed[start];
        let end = run_end(&keyed, start, |a, b| a.0 == b.0 && a.1 == b.1);
        ids.clear();
        ids.extend(keyed[start..end].iter().map(|k| k.2));
        ids.dedup();
        homed.push(Homed {
            home: line,
            fingerprint,
            value: value_word(&ids, multi),
        });
        start = end;
    }
    homed
}

/// End of the run of items equal to `items[start]` under `same`.
fn run_end<T>(items: &[T], start: usize, same: impl Fn(&T, &T) -> bool) -> usize {
    let mut end = start + 1;
    while end < items.len() && same(&items[start], &items[end]) {
        end += 1;
    }
    end
}

/// Returns the value word of sorted, distinct `ids`: a single id with the tag bit clear stays inline,
/// anything else goes to `multi` as `[count, ids...]`.
fn value_word(ids: &[u32], multi: &mut Vec<u32>) -> u32 {
    if let [id] = ids {
        if id & MULTI_TAG == 0 {
            return *id;
        }
    }
    let offset = u32::try_from(multi.len())
        .ok()
        .filter(|offset| offset | MULTI_TAG != EMPTY && offset & MULTI_TAG == 0)
        .expect("digest index side table exceeds 2^31 - 1 words");
    multi.push(ids.len() as u32);
    multi.extend_from_slice(ids);
    offset | MULTI_TAG
}

fn push_far(far: &mut Vec<u32>, entry: &Homed) {
    let fingerprint = entry.fingerprint;
    far.extend_from_slice(&[
        entry.home as u32,
        fingerprint.low as u32,
        (fingerprint.low >> 32) as u32,
        fingerprint.high & FINGERPRINT_HIGH_MASK,
        entry.value,
    ]);
}
