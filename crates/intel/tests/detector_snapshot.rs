//! The saved detection index: reused while the store is unchanged, rebuilt after any write,
//! and rebuilt (never trusted, never a panic) when the file is damaged.

use std::path::{Path, PathBuf};

use intel::detector::SNAPSHOT_FILE;
use intel::import::{import_path, ImportOptions};
use intel::{Detector, Store};

const FIRST: &str = "5d41402abc4b2a76b9719d911017c592aaf8b8b2b1c0b4f1a3dcd4b1d0e1f2a3";
const SECOND: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Imports a free-text list of `hashes` into `store`.
fn import_hashes(store: &mut Store, dir: &Path, name: &str, hashes: &[&str]) {
    let list = dir.join(name);
    std::fs::write(&list, hashes.join("\n")).unwrap();
    let reports = import_path(store, &list, &ImportOptions::default(), &mut |_| {});
    for report in reports {
        report.outcome.unwrap();
    }
}

fn store_with(hashes: &[&str]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("data")).unwrap();
    import_hashes(&mut store, dir.path(), "first.txt", hashes);
    (dir, store)
}

fn snapshot_path(store: &Store) -> PathBuf {
    store.path().with_file_name(SNAPSHOT_FILE)
}

fn finds(detector: &Detector, hash: &str) -> bool {
    let bytes = hex::decode(hash).unwrap();
    !detector.lookup_digest(&bytes).is_empty()
}

#[test]
fn load_saves_index_and_reuses_it() {
    let (_dir, store) = store_with(&[FIRST]);
    let first = Detector::load(&store).unwrap();
    let saved = std::fs::read(snapshot_path(&store)).unwrap();
    let modified = std::fs::metadata(snapshot_path(&store))
        .unwrap()
        .modified()
        .unwrap();

    let second = Detector::load(&store).unwrap();

    assert!(finds(&first, FIRST));
    assert!(finds(&second, FIRST));
    assert_eq!(first.stats(), second.stats());
    assert_eq!(std::fs::read(snapshot_path(&store)).unwrap(), saved);
    let reused = std::fs::metadata(snapshot_path(&store))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, reused, "the saved index was written again");
}

#[test]
fn import_makes_saved_index_stale() {
    let (dir, mut store) = store_with(&[FIRST]);
    let before = Detector::load(&store).unwrap();
    assert!(!finds(&before, SECOND));

    import_hashes(&mut store, dir.path(), "second.txt", &[SECOND]);
    let after = Detector::load(&store).unwrap();

    assert!(finds(&after, FIRST));
    assert!(finds(&after, SECOND));
    assert_eq!(after.stats().digests, 2);
}

#[test]
fn write_from_another_connection_makes_saved_index_stale() {
    let (_dir, store) = store_with(&[FIRST, SECOND]);
    assert_eq!(Detector::load(&store).unwrap().stats().digests, 2);

    let other = rusqlite::Connection::open(store.path()).unwrap();
    let changed = other
        .execute(
            "UPDATE attributes SET to_ids = 0 WHERE value = ?1",
            [SECOND],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let after = Detector::load(&store).unwrap();

    assert!(finds(&after, FIRST));
    assert!(!finds(&after, SECOND));
    assert_eq!(after.stats().digests, 1);
}

#[test]
fn damaged_saved_index_is_rebuilt() {
    let (_dir, store) = store_with(&[FIRST, SECOND]);
    Detector::load(&store).unwrap();
    let path = snapshot_path(&store);
    let intact = std::fs::read(&path).unwrap();

    let mut damages: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec()];
    damages.push(intact[..intact.len() / 2].to_vec());
    for at in [0, 8, 120, intact.len() / 2, intact.len() - 1] {
        let mut flipped = intact.clone();
        flipped[at] ^= 0x55;
        damages.push(flipped);
    }
    for (i, damaged) in damages.iter().enumerate() {
        std::fs::write(&path, damaged).unwrap();

        let detector = Detector::load(&store).unwrap();

        assert!(finds(&detector, FIRST), "damage {i}");
        assert!(finds(&detector, SECOND), "damage {i}");
        assert_eq!(detector.stats().digests, 2, "damage {i}");
    }
}

#[test]
fn snapshot_of_another_version_is_replaced() {
    let (_dir, store) = store_with(&[FIRST, SECOND]);
    Detector::load(&store).unwrap();
    let path = snapshot_path(&store);
    let intact = std::fs::read(&path).unwrap();
    let mut older = intact.clone();
    older[7] = older[7].wrapping_sub(1);
    std::fs::write(&path, &older).unwrap();

    let detector = Detector::load(&store).unwrap();

    assert!(finds(&detector, FIRST));
    assert_eq!(std::fs::read(&path).unwrap(), intact);
}

#[test]
fn unwritable_snapshot_path_still_loads() {
    let (_dir, store) = store_with(&[FIRST]);
    // A folder where the file should be makes both the read and the write fail.
    std::fs::create_dir(snapshot_path(&store)).unwrap();

    let detector = Detector::load(&store).unwrap();

    assert!(finds(&detector, FIRST));
}

#[test]
fn match_reads_indicator_fields_from_store() {
    let (_dir, store) = store_with(&[FIRST]);
    Detector::load(&store).unwrap();
    let detector = Detector::load(&store).unwrap();

    let found = detector.lookup_value(FIRST);

    assert_eq!(found.len(), 1);
    assert_eq!(found[0].r#type, "sha256");
    assert_eq!(found[0].value, FIRST);
    assert!(!found[0].event_uuid.is_empty());
    assert!(!found[0].attribute_uuid.is_empty());
}
