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
    let mut builder = DigestIndexBuilder::new();
    for (digest, id) in entries {
        builder.insert(digest, *id);
    }
    builder.build()
}

/// Checks `get` and `get_batch` on every model digest and on `absent` digests.
fn assert_matches_model(entries: &[(Vec<u8>, u32)], absent: &[Vec<u8>]) {
    let index = build(entries);
    let expected = model(entries);
    assert_eq!(index.len(), expected.len());
    assert_eq!(index.is_empty(), expected.is_empty());

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
        let want = expected.get(query).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(index.get(query), want, "get({query:02x?})");
        assert_eq!(*batched, want, "get_batch({query:02x?})");
        assert_eq!(decoded.get(query), want, "decoded get({query:02x?})");
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
    assert!(index.get(&[0u8; 32]).is_empty());
    assert!(index.get(&[]).is_empty());
    assert!(DigestIndex::default().get(&[1u8; 16]).is_empty());
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
fn shared_leading_bytes_use_binary_search() {
    // Every digest starts with the same 12 bytes, so all fall into one bucket, which lookups
    // binary-search.
    let entries: Vec<(Vec<u8>, u32)> = (0..500u32)
        .map(|i| {
            let mut d = vec![0xab; 12];
            d.extend_from_slice(&digest(u64::from(i), 20));
            (d, i)
        })
        .collect();
    let mut absent = vec![0xab; 12];
    absent.extend_from_slice(&digest(10_000, 20));
    assert_matches_model(&entries, &[absent, vec![0; 32], vec![0xff; 32]]);
}

#[test]
fn crowded_buckets_are_walked_both_ways() {
    // 5,000 random digests, plus clusters of 2 to 60 that share their first three bytes, so
    // that interpolation inside a bucket starts far from the record and walks in both
    // directions.
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
    assert_matches_model(&entries, &absent);
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
    assert_matches_model(&entries, &absent);
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
