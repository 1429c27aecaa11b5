//! Unit and property tests of the digest index against a `HashMap` model.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;

/// What `get` must return: the distinct ids of each digest, ascending.
fn model(entries: &[(Vec<u8>, u32)]) -> HashMap<Vec<u8>, Vec<u32>> {
    let mut sets: HashMap<Vec<u8>, BTreeSet<u32>> = HashMap::new();
    for (digest, id) in entries {
        sets.entry(digest.clone()).or_default().insert(*id);
    }
    sets.into_iter()
        .map(|(digest, ids)| (digest, ids.into_iter().collect()))
        .collect()
}

fn build(entries: &[(Vec<u8>, u32)]) -> DigestIndex {
    build_with(DigestIndexBuilder::new(), entries)
}

fn build_with(mut builder: DigestIndexBuilder, entries: &[(Vec<u8>, u32)]) -> DigestIndex {
    for (digest, id) in entries {
        builder.insert(digest, *id);
    }
    builder.build()
}

/// Returns the key of the slot of `digest` in `index`: the digest length, the home line and
/// the fingerprint.
fn slot_key(index: &DigestIndex, digest: &[u8]) -> Option<SlotKey> {
    let table = index.table_for(digest.len())?;
    let key = Key::new(digest, index.mask);
    Some((digest.len(), table.home(key.prefix), key.fingerprint))
}

type SlotKey = (usize, usize, Fingerprint);

/// The ids `get` returns for each slot key: those of every inserted digest with that key,
/// which is one digest unless fingerprints collide.
fn ids_by_slot(
    index: &DigestIndex,
    model: &HashMap<Vec<u8>, Vec<u32>>,
) -> HashMap<SlotKey, Vec<u32>> {
    let mut sets: HashMap<SlotKey, BTreeSet<u32>> = HashMap::new();
    for (digest, ids) in model {
        if let Some(key) = slot_key(index, digest) {
            sets.entry(key).or_default().extend(ids);
        }
    }
    sets.into_iter()
        .map(|(key, ids)| (key, ids.into_iter().collect()))
        .collect()
}

/// Checks `get` and `get_batch` on every model digest and on `absent` digests, for an index
/// built by `builder`.
fn assert_matches_model_with(
    builder: DigestIndexBuilder,
    entries: &[(Vec<u8>, u32)],
    absent: &[Vec<u8>],
) -> DigestIndex {
    let index = build_with(builder, entries);
    let expected = model(entries);
    let by_slot = ids_by_slot(&index, &expected);
    assert_eq!(index.len(), by_slot.len());
    assert_eq!(index.is_empty(), expected.is_empty());
    let max_id = expected.values().flatten().copied().max();
    assert_eq!(index.max_id(), max_id);

    let mut queries: Vec<Vec<u8>> = expected.keys().cloned().collect();
    queries.extend(
        absent
            .iter()
            .filter(|d| !expected.contains_key(*d))
            .cloned(),
    );
    let mut batch = Vec::new();
    index.get_batch(&queries, &mut batch);
    assert_eq!(batch.len(), queries.len());
    let decoded = DigestIndex::from_bytes(&encoded(&index)).unwrap();
    assert_eq!(decoded.len(), index.len());

    for (query, batched) in queries.iter().zip(&batch) {
        let want = slot_key(&index, query)
            .and_then(|key| by_slot.get(&key))
            .cloned()
            .unwrap_or_default();
        assert_eq!(index.get(query), want, "get({query:02x?})");
        assert_eq!(*batched, want, "get_batch({query:02x?})");
        assert_eq!(decoded.get(query), want, "decoded get({query:02x?})");
        let own = expected.get(query).map(Vec::as_slice).unwrap_or(&[]);
        assert!(
            own.iter().all(|id| want.contains(id)),
            "get({query:02x?}) misses ids"
        );
    }
    index
}

fn assert_matches_model(entries: &[(Vec<u8>, u32)], absent: &[Vec<u8>]) -> DigestIndex {
    assert_matches_model_with(DigestIndexBuilder::new(), entries, absent)
}

/// Checks that `get` returns exactly each digest's own ids, with no false candidates.
fn assert_exact(index: &DigestIndex, entries: &[(Vec<u8>, u32)], absent: &[Vec<u8>]) {
    let expected = model(entries);
    for (digest, ids) in &expected {
        assert_eq!(index.get(digest), ids.as_slice(), "get({digest:02x?})");
    }
    for digest in absent.iter().filter(|d| !expected.contains_key(*d)) {
        assert!(index.get(digest).is_empty(), "get({digest:02x?})");
    }
}

fn encoded(index: &DigestIndex) -> Vec<u8> {
    let mut bytes = Vec::new();
    index.encode(&mut bytes);
    bytes
}

/// Deterministic pseudo-random digest bytes (splitmix64).
fn digest(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn empty_index_finds_nothing() {
    let index = DigestIndexBuilder::new().build();
    assert!(index.is_empty());
    assert_eq!(index.len(), 0);
    assert_eq!(index.max_id(), None);
    assert!(index.get(&[0u8; 32]).is_empty());
    assert!(index.get(&[]).is_empty());
    assert!(DigestIndex::default().get(&[1u8; 16]).is_empty());
    let mut out = Vec::new();
    index.get_batch(&[[0u8; 32], [1u8; 32]], &mut out);
    assert_eq!(out, [&[] as &[u32], &[]]);
    let decoded = DigestIndex::from_bytes(&encoded(&index)).unwrap();
    assert!(decoded.is_empty());
    assert!(decoded.get(&[0u8; 16]).is_empty());
}

#[test]
fn single_digest_roundtrip() {
    let sha256 = digest(1, 32);
    let index = build(&[(sha256.clone(), 7)]);
    assert_eq!(index.get(&sha256), &[7]);
    assert!(index.get(&digest(2, 32)).is_empty());
    assert!(
        index.get(&sha256[..16]).is_empty(),
        "a prefix of a known digest is a different key"
    );
}

#[test]
fn duplicate_ids_are_merged_and_sorted() {
    let md5 = digest(3, 16);
    let entries = [
        (md5.clone(), 9),
        (md5.clone(), 2),
        (md5.clone(), 9),
        (md5.clone(), 5),
    ];
    let index = build(&entries);
    assert_eq!(index.len(), 1);
    assert_eq!(index.get(&md5), &[2, 5, 9]);
}

#[test]
fn ids_with_top_bit_set_roundtrip() {
    let a = digest(4, 20);
    let b = digest(5, 20);
    let index = build(&[
        (a.clone(), u32::MAX),
        (b.clone(), MULTI_TAG),
        (b.clone(), 1),
    ]);
    assert_eq!(index.get(&a), &[u32::MAX]);
    assert_eq!(index.get(&b), &[1, MULTI_TAG]);
}

#[test]
fn lengths_are_separate_keys() {
    let long = digest(6, 64);
    let entries: Vec<(Vec<u8>, u32)> = [16, 20, 28, 32, 48, 64]
        .iter()
        .map(|&len| (long[..len].to_vec(), len as u32))
        .collect();
    assert_matches_model(&entries, &[long[..24].to_vec(), long[..33].to_vec()]);
}

#[test]
fn unusual_lengths_work() {
    let entries: Vec<(Vec<u8>, u32)> = [0, 1, 3, 5, 7, 9, 65, 100, 129]
        .iter()
        .enumerate()
        .map(|(i, &len)| (digest(i as u64, len), i as u32))
        .collect();
    assert_matches_model(&entries, &[vec![0xff; 100], vec![1], vec![0; 9]]);
}

#[test]
fn shared_leading_bytes_go_to_far_list() {
    // Every digest starts with the same 12 bytes, so all have one home line: 4 fit there, 24
    // in the next six lines, and the rest go to the far list.
    let entries: Vec<(Vec<u8>, u32)> = (0..500u32)
        .map(|i| {
            let mut d = vec![0xab; 12];
            d.extend_from_slice(&digest(u64::from(i), 20));
            (d, i)
        })
        .collect();
    let mut absent = vec![0xab; 12];
    absent.extend_from_slice(&digest(10_000, 20));
    let absent = [absent, vec![0; 32], vec![0xff; 32]];
    let index = assert_matches_model(&entries, &absent);
    assert_exact(&index, &entries, &absent);
    let (home, later, far) = index.tables[0].placement();
    assert_eq!(home, 4);
    assert_eq!(later, 24);
    assert_eq!(far, 472);
}

#[test]
fn crowded_home_lines_spill_over() {
    // 5,000 random digests, plus clusters of 2 to 60 that share their first three bytes, so
    // that home lines overflow into the following lines and the far list.
    let mut entries: Vec<(Vec<u8>, u32)> =
        (0..5_000u64).map(|i| (digest(i, 32), i as u32)).collect();
    let mut absent = Vec::new();
    for cluster in 0..30u64 {
        let lead = digest(100_000 + cluster, 3);
        for i in 0..(2 + cluster * 2) {
            let mut d = lead.clone();
            d.extend_from_slice(&digest(200_000 + cluster * 100 + i, 29));
            entries.push((d, (10_000 + cluster * 100 + i) as u32));
        }
        let mut missing = lead.clone();
        missing.extend_from_slice(&digest(900_000 + cluster, 29));
        absent.push(missing);
    }
    let index = assert_matches_model(&entries, &absent);
    assert_exact(&index, &entries, &absent);
    let (_, later, far) = index.tables[0].placement();
    assert!(later > 0, "no digest left its home line");
    assert!(far > 0, "no digest went to the far list");
}

#[test]
fn random_digests_mostly_stay_home() {
    let entries: Vec<(Vec<u8>, u32)> = (0..50_000u64).map(|i| (digest(i, 32), i as u32)).collect();
    let index = build(&entries);
    let (home, later, far) = index.tables[0].placement();
    assert_eq!(home + later + far, entries.len());
    assert!(
        later * 100 < entries.len() * 5,
        "{later} of {} displaced",
        entries.len()
    );
    assert_eq!(far, 0);
}

#[test]
fn every_digest_length_roundtrips() {
    let lengths = (0..=72).chain([100, 129, 1000]);
    let mut entries = Vec::new();
    let mut absent = Vec::new();
    for len in lengths {
        for i in 0..20u64 {
            let seed = len as u64 * 1_000 + i;
            entries.push((digest(seed, len), seed as u32));
            absent.push(digest(seed + 500, len));
        }
    }
    let index = assert_matches_model(&entries, &absent);
    assert_exact(&index, &entries, &absent);
}

#[test]
fn zero_fingerprint_bits_merge_home_line() {
    let entries: Vec<(Vec<u8>, u32)> = (0..2_000u64).map(|i| (digest(i, 32), i as u32)).collect();
    let absent: Vec<Vec<u8>> = (5_000..5_500).map(|i| digest(i, 32)).collect();
    let builder = DigestIndexBuilder::with_fingerprint_bits(0);
    let index = assert_matches_model_with(builder, &entries, &absent);
    let merged = entries
        .iter()
        .filter(|(d, _)| index.get(d).len() > 1)
        .count();
    assert!(merged > 0, "no two digests share a home line");
    let false_candidates = absent.iter().filter(|d| !index.get(d).is_empty()).count();
    assert!(
        false_candidates > 0,
        "no absent digest returned a candidate"
    );
}

#[test]
fn short_fingerprints_collide_without_misses() {
    let entries: Vec<(Vec<u8>, u32)> = (0..3_000u64)
        .map(|i| (digest(i, if i % 2 == 0 { 32 } else { 16 }), i as u32))
        .collect();
    let absent: Vec<Vec<u8>> = (9_000..9_300).map(|i| digest(i, 32)).collect();
    for bits in [1, 3, 8] {
        let builder = DigestIndexBuilder::with_fingerprint_bits(bits);
        let index = assert_matches_model_with(builder, &entries, &absent);
        let decoded = DigestIndex::from_bytes(&encoded(&index)).unwrap();
        assert_eq!(decoded.mask, index.mask, "{bits} bits");
    }
}

#[test]
fn fingerprint_mask_keeps_asked_bits() {
    for bits in [0, 1, 31, 63, 64, 65, 91, 92] {
        assert_eq!(Fingerprint::mask(bits).mask_bits(), bits);
    }
    assert_eq!(Fingerprint::mask(200).mask_bits(), MAX_FINGERPRINT_BITS);
}

#[test]
fn first_and_last_buckets_work() {
    // Digests starting with 0xff all fall into the last bucket, all-zero ones into the first.
    let mut entries: Vec<(Vec<u8>, u32)> = (0..100u32)
        .map(|i| {
            let mut d = vec![0xff; 4];
            d.extend_from_slice(&digest(u64::from(i), 12));
            (d, i)
        })
        .collect();
    entries.push((vec![0; 16], 1000));
    entries.push((vec![0xff; 16], 1001));
    let mut absent = vec![0xff; 4];
    absent.extend_from_slice(&digest(5_000, 12));
    assert_matches_model(&entries, &[absent, vec![0xfe; 16], vec![0x01; 16]]);
}

#[test]
fn many_random_digests_roundtrip() {
    let mut entries = Vec::new();
    for i in 0..20_000u64 {
        let len = if i % 2 == 0 { 32 } else { 16 };
        entries.push((digest(i, len), i as u32));
    }
    let absent: Vec<Vec<u8>> = (1_000_000..1_001_000).map(|i| digest(i, 32)).collect();
    let index = assert_matches_model(&entries, &absent);
    assert_exact(&index, &entries, &absent);
}

#[test]
fn heap_bytes_per_sha256_is_small() {
    let entries: Vec<(Vec<u8>, u32)> = (0..100_000u64).map(|i| (digest(i, 32), i as u32)).collect();
    let index = build(&entries);
    let per_digest = index.heap_bytes() as f64 / index.len() as f64;
    assert!(per_digest <= 42.0, "{per_digest} bytes per sha256");
}

#[test]
fn reserve_then_insert() {
    let mut builder = DigestIndexBuilder::new();
    builder.reserve(32, 10);
    builder.reserve(16, 0);
    builder.insert(&digest(1, 32), 1);
    let index = builder.build();
    assert_eq!(index.len(), 1);
    assert_eq!(index.get(&digest(1, 32)), &[1]);
}

#[test]
fn decode_rejects_every_truncation() {
    let entries: Vec<(Vec<u8>, u32)> = (0..40u64).map(|i| (digest(i % 30, 16), i as u32)).collect();
    let bytes = encoded(&build(&entries));
    for len in 0..bytes.len() {
        assert!(
            DigestIndex::from_bytes(&bytes[..len]).is_err(),
            "decoded the first {len} of {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn decode_survives_damaged_bytes() {
    let entries: Vec<(Vec<u8>, u32)> = (0..60u64).map(|i| (digest(i % 45, 20), i as u32)).collect();
    let bytes = encoded(&build(&entries));
    let queries: Vec<Vec<u8>> = (0..50u64).map(|i| digest(i, 20)).collect();
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            // Decoding may succeed with wrong ids, but lookups on the result must not panic.
            if let Ok(index) = DigestIndex::from_bytes(&damaged) {
                for query in &queries {
                    let _ = index.get(query);
                }
                let mut out = Vec::new();
                index.get_batch(&queries, &mut out);
            }
        }
    }
}

#[test]
fn decode_rejects_long_fingerprints() {
    let mut bytes = encoded(&build(&[(digest(1, 32), 1)]));
    bytes[8..12].copy_from_slice(&(MAX_FINGERPRINT_BITS + 1).to_ne_bytes());
    assert!(DigestIndex::from_bytes(&bytes).is_err());
}

#[test]
fn decode_rejects_foreign_bytes() {
    assert!(DigestIndex::from_bytes(b"").is_err());
    assert!(DigestIndex::from_bytes(b"not an index at all").is_err());
    let mut bytes = encoded(&build(&[(digest(1, 32), 1)]));
    bytes.push(0);
    let Err(error) = DigestIndex::from_bytes(&bytes) else {
        panic!("decoded an index with a trailing byte");
    };
    assert!(error.to_string().contains("trailing bytes"), "{error}");
}

/// Digests drawn from a small alphabet and few lengths, so that duplicates, shared prefixes
/// and empty digests are common.
fn entry_strategy() -> impl Strategy<Value = (Vec<u8>, u32)> {
    let len = prop_oneof![Just(0usize), Just(1), Just(4), Just(9), Just(16), Just(32)];
    let id = prop_oneof![0u32..8, any::<u32>()];
    (len, id).prop_flat_map(|(len, id)| {
        (
            prop::collection::vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], len),
            Just(id),
        )
    })
}

proptest! {
    #[test]
    fn matches_hashmap_model(
        entries in prop::collection::vec(entry_strategy(), 0..300),
        absent in prop::collection::vec(entry_strategy(), 0..50),
    ) {
        let absent: Vec<Vec<u8>> = absent.into_iter().map(|(digest, _)| digest).collect();
        assert_matches_model(&entries, &absent);
    }
}
