//! Lookups through a digest index whose fingerprints collide: the detector returns only the
//! indicators whose full digest is the one looked up.

use std::path::Path;

use index::DigestIndexBuilder;

use super::*;
use crate::import::{import_path, ImportOptions};

/// Random-looking sha256 values, as a free-text hash list would hold them.
fn sha256_hex(seed: u64) -> String {
    (0..4u64)
        .map(|i| {
            let mut z = seed.wrapping_mul(4).wrapping_add(i).wrapping_add(1);
            z = z.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z ^= z >> 31;
            z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            format!("{:016x}", z ^ (z >> 29))
        })
        .collect()
}

fn store_with(dir: &Path, hashes: &[String]) -> Store {
    let mut store = Store::open(&dir.join("data")).unwrap();
    let list = dir.join("hashes.txt");
    std::fs::write(&list, hashes.join("\n")).unwrap();
    for report in import_path(&mut store, &list, &ImportOptions::default(), &mut |_| {}) {
        report.outcome.unwrap();
    }
    store
}

/// Rebuilds the detector's digest index with fingerprints of zero bits, so that every lookup
/// returns the ids of all the digests of its home line.
fn collide_fingerprints(detector: &mut Detector, hashes: &[String]) {
    let mut builder = DigestIndexBuilder::with_fingerprint_bits(0);
    for hash in hashes {
        let digest = hex::decode(hash).unwrap();
        for &id in detector.digests.get(&digest) {
            builder.insert(&digest, id);
        }
    }
    detector.digests = builder.build();
}

#[test]
fn colliding_fingerprints_match_only_full_digest() {
    let dir = tempfile::tempdir().unwrap();
    let hashes: Vec<String> = (0..3).map(sha256_hex).collect();
    let store = store_with(dir.path(), &hashes);
    let mut detector = Detector::load(&store).unwrap();
    collide_fingerprints(&mut detector, &hashes);
    let absent = hex::decode(sha256_hex(1_000)).unwrap();
    assert_eq!(
        detector.digests.get(&absent).len(),
        hashes.len(),
        "the index should return every indicator as a candidate"
    );

    for hash in &hashes {
        let by_digest = detector.lookup_digest(&hex::decode(hash).unwrap());
        assert_eq!(by_digest.len(), 1, "lookup_digest({hash})");
        assert_eq!(&by_digest[0].value, hash);
        let by_value = detector.lookup_value(&hash.to_uppercase());
        assert_eq!(by_value.len(), 1, "lookup_value({hash})");
        assert_eq!(&by_value[0].value, hash);
    }
    assert!(detector.lookup_digest(&absent).is_empty());
    assert!(detector.lookup_value(&hex::encode(&absent)).is_empty());
}

#[test]
fn digest_check_reads_composites() {
    let digest = hex::decode(sha256_hex(7)).unwrap();
    let indicator = |type_name: &str, value: String| Indicator {
        attribute_id: 1,
        uuid: "".into(),
        type_name: Arc::from(type_name),
        category: Arc::from("Payload delivery"),
        value: value.into(),
        object_name: None,
        object_relation: None,
        tags: None,
        galaxies: None,
    };
    let hash = sha256_hex(7);
    assert!(has_digest(&indicator("sha256", hash.clone()), &digest));
    assert!(has_digest(
        &indicator("sha256", hash.to_uppercase()),
        &digest
    ));
    assert!(has_digest(
        &indicator("filename|sha256", format!("a.exe|{hash}")),
        &digest
    ));
    assert!(!has_digest(&indicator("sha256", sha256_hex(8)), &digest));
    assert!(!has_digest(
        &indicator("domain", "example.org".into()),
        &digest
    ));
    assert!(!has_digest(&indicator("sha256", "not hex".into()), &digest));
}
