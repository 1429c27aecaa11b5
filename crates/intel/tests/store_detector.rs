//! The store and detector on real fixtures: imports, re-imports, warninglists and
//! lookups. Expected counts come from reading the fixtures with a separate script.

use std::path::{Path, PathBuf};

use intel::import::{import_path, FileReport, ImportOptions};
use intel::{Action, Detector, Store};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../misp/tests/fixtures")
        .join(rel)
}

fn import(store: &mut Store, path: &Path) -> Vec<FileReport> {
    import_path(store, path, &ImportOptions::default(), &mut |_| {})
}

fn import_ok(store: &mut Store, rel: &str) -> intel::import::FileSummary {
    let mut reports = import(store, &fixture(rel));
    assert_eq!(reports.len(), 1, "{rel}");
    reports
        .remove(0)
        .outcome
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    (dir, store)
}

#[test]
fn new_store_has_default_warninglists() {
    let (_dir, store) = new_store();
    let lists = store.stats().unwrap().warninglists;
    assert_eq!(lists.len(), 3);
    let action = |needle: &str| {
        lists
            .iter()
            .find(|l| l.name.contains(needle))
            .unwrap()
            .action
    };
    assert_eq!(action("empty files"), Action::Suppress);
    assert_eq!(action("common false-positives"), Action::Suppress);
    assert_eq!(action("EICAR"), Action::Annotate);
    assert_eq!(lists.iter().map(|l| l.entries).sum::<u64>(), 6 + 15 + 69);
}

#[test]
fn store_reopens_without_migrating_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import_ok(&mut store, "misp/57c4445b-c548-4654-af0b-4be3950d210f.json");
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().unwrap().events, 1);
    assert_eq!(store.stats().unwrap().warninglists.len(), 3);
}

#[test]
fn long_event_counts_and_lookups() {
    let (_dir, mut store) = new_store();
    let summary = import_ok(&mut store, "misp/long_event.json");
    assert_eq!(summary.write.events_added, 1);
    assert_eq!(summary.write.attributes, 370);
    assert_eq!(summary.write.hashes_indexed, 219);
    assert_eq!(store.stats().unwrap().detections, 258);

    let detector = Detector::load(&store).unwrap();
    // A bare sha256 finds the filename|sha256 attribute.
    let sha256 = "7a200c4df99887991c638fe625d07a4a3fc2bdc887112437752b3df5c8da79b6";
    let found = detector.lookup_value(sha256);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].r#type, "filename|sha256");
    assert_eq!(
        found[0].attribute_uuid,
        "5715f3b4-c4f0-4b6b-8661-494f950d210f"
    );
    assert_eq!(
        found[0].event_info,
        "OSINT - ASERT Threat Intelligence Report 2016-03 The Four-Element Sword Engagement"
    );
    assert!(found[0].is_detection());
    // The same hash, upper-case, and as raw digest bytes.
    assert_eq!(detector.lookup_value(&sha256.to_ascii_uppercase()).len(), 1);
    assert_eq!(
        detector.lookup_digest(&hex::decode(sha256).unwrap()).len(),
        1
    );
    // The file name half alone, and the composite as written.
    assert_eq!(
        detector.lookup_value("IEChecker.exe")[0].attribute_uuid,
        found[0].attribute_uuid
    );
    assert_eq!(
        detector
            .lookup_value(&format!("IEChecker.exe|{sha256}"))
            .len(),
        1
    );
}

#[test]
fn to_ids_false_hashes_are_not_detections() {
    let (_dir, mut store) = new_store();
    import_ok(&mut store, "misp/long_event.json");
    import_ok(&mut store, "misp-feed/eset-sshdoor-events/crait.json");
    let detector = Detector::load(&store).unwrap();
    for value in [
        "af2cc5bb8d97bf019280c80e2891103a8a1d5e5f8c6305b6f6c4dd83ec245a7d",
        "26f1e48f5e05f6d1f923e3a74219ca7bfa7c0995",
    ] {
        assert!(detector.lookup_value(value).is_empty(), "{value}");
    }
    // All 6 sha1 of the ESET export are to_ids false.
    let stats = store.stats().unwrap();
    let sha1 = stats
        .hash_types
        .iter()
        .find(|t| t.r#type == "sha1")
        .unwrap();
    assert_eq!(sha1.attributes, 58 + 6);
    assert_eq!(sha1.detections, 58 - 1);
}

#[test]
fn hashes_inside_objects_found() {
    let (_dir, mut store) = new_store();
    let summary = import_ok(&mut store, "misp/mainly_objects_1.json");
    assert_eq!(summary.write.hashes_indexed, 17);
    let detector = Detector::load(&store).unwrap();
    let found = detector.lookup_value("76BD79F774AE892FD6A30B6463050A91");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].object_name.as_deref(), Some("file"));
    assert_eq!(found[0].object_relation.as_deref(), Some("md5"));
    let tags = [
        "tlp:white",
        "misp-galaxy:malpedia=\"SamSam\"",
        "misp-galaxy:ransomware=\"Samas-Samsam\"",
    ];
    assert_eq!(found[0].tags, tags);
    let algorithms = detector.needed_algorithms();
    assert!(algorithms.md5);
    assert!(algorithms.sha1);
    assert!(algorithms.sha256);
}

#[test]
fn empty_file_md5_suppressed_but_visible() {
    let (_dir, mut store) = new_store();
    import_ok(&mut store, "stix/taxii-regression-test-14.json");
    let detector = Detector::load(&store).unwrap();
    let found = detector.lookup_value("d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(found.len(), 2);
    for m in &found {
        assert!(m.suppressed);
        assert!(!m.is_detection());
        // The empty-file md5 is on both the empty-file and the common false-positive list.
        let names: Vec<&str> = m.warninglists.iter().map(|h| h.name.as_str()).collect();
        assert!(
            names.contains(&"List of known hashes for empty files"),
            "{names:?}"
        );
        assert_eq!(m.warninglists.len(), 2);
        assert!(m.warninglists.iter().all(|h| h.action == Action::Suppress));
    }
    assert_eq!(detector.stats().suppressed, 6);
}

#[test]
fn eicar_hash_annotated_not_suppressed() {
    let (dir, mut store) = new_store();
    let list = dir.path().join("eicar.md5");
    std::fs::write(&list, "44D88612FEA8A8F36DE82E1278ABB02F;test file\n").unwrap();
    import(&mut store, &list).remove(0).outcome.unwrap();
    let detector = Detector::load(&store).unwrap();
    let found = detector.lookup_value("44d88612fea8a8f36de82e1278abb02f");
    assert_eq!(found.len(), 1);
    assert!(found[0].is_detection());
    assert_eq!(found[0].warninglists[0].action, Action::Annotate);
    assert!(found[0].warninglists[0].name.contains("EICAR"));
}

#[test]
fn reimport_updates_only_when_newer() {
    let (dir, mut store) = new_store();
    let rel = "misp/57c4445b-c548-4654-af0b-4be3950d210f.json";
    assert_eq!(import_ok(&mut store, rel).write.events_added, 1);
    assert_eq!(import_ok(&mut store, rel).write.events_unchanged, 1);

    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    let newer = text
        .replacen(
            "\"timestamp\": \"1472541011\", \"analysis\"",
            "\"timestamp\": \"1472541012\", \"analysis\"",
            1,
        )
        .replace(
            "0749bae92ca336a02c83d126e04ec628",
            "0749bae92ca336a02c83d126e04ec629",
        );
    let path = dir.path().join("newer.json");
    std::fs::write(&path, newer).unwrap();
    let summary = import(&mut store, &path).remove(0).outcome.unwrap();
    assert_eq!(summary.write.events_updated, 1);
    assert_eq!(store.stats().unwrap().events, 1);
    assert_eq!(store.stats().unwrap().attributes, 9);
    let detector = Detector::load(&store).unwrap();
    assert!(detector
        .lookup_value("0749bae92ca336a02c83d126e04ec628")
        .is_empty());
    assert_eq!(
        detector
            .lookup_value("0749bae92ca336a02c83d126e04ec629")
            .len(),
        1
    );
}

#[test]
fn broken_files_store_nothing() {
    let (dir, mut store) = new_store();
    let text = std::fs::read_to_string(fixture("misp/long_event.json")).unwrap();
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, r#"{"hello": "world"}"#).unwrap();
    let binary = dir.path().join("binary.json");
    std::fs::write(&binary, b"{\"Event\": {\"info\": \"\xff\xfe\"}}").unwrap();

    for path in [&truncated, &unknown, &binary] {
        let err = import(&mut store, path)
            .remove(0)
            .outcome
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
    let err = import(&mut store, &truncated)
        .remove(0)
        .outcome
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    let stats = store.stats().unwrap();
    assert_eq!(stats.events, 0);
    assert_eq!(stats.attributes, 0);
}

#[test]
fn oversized_and_strict_rejections() {
    let (_dir, mut store) = new_store();
    let options = ImportOptions {
        max_file_bytes: 1000,
        ..ImportOptions::default()
    };
    let reports = import_path(
        &mut store,
        &fixture("misp/long_event.json"),
        &options,
        &mut |_| {},
    );
    let err = reports[0].outcome.as_ref().unwrap_err().to_string();
    assert!(err.contains("over the 1000-byte limit"), "{err}");

    let strict = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    let path = fixture("feeds/eset-modiloader-samples.sha1");
    let reports = import_path(&mut store, &path, &strict, &mut |_| {});
    let err = reports[0].outcome.as_ref().unwrap_err().to_string();
    assert!(err.contains("line 13"), "{err}");
    assert_eq!(store.stats().unwrap().attributes, 0);
}

#[test]
fn misp_feed_folder() {
    let (_dir, mut store) = new_store();
    let reports = import(
        &mut store,
        &fixture("misp-feed/redblue232-threat-feed-publisher"),
    );
    // Three events and the hashes.csv cross-check.
    assert_eq!(reports.len(), 4);
    let attributes: usize = reports
        .iter()
        .map(|r| r.outcome.as_ref().unwrap().write.attributes)
        .sum();
    assert_eq!(attributes, 58 + 142 + 359);
    let notes = &reports[3].outcome.as_ref().unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("event_uuid,md5")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.starts_with("9 of 359")), "{notes:?}");
    let detector = Detector::load(&store).unwrap();
    assert_eq!(detector.lookup_value("104.28.235.59")[0].r#type, "ip-src");

    // Importing again skips every event from the manifest timestamps.
    let again = import(
        &mut store,
        &fixture("misp-feed/redblue232-threat-feed-publisher"),
    );
    let unchanged: usize = again
        .iter()
        .map(|r| r.outcome.as_ref().unwrap().write.events_unchanged)
        .sum();
    assert_eq!(unchanged, 3);
}

#[test]
fn fake_feed_rejected_cleanly() {
    let (_dir, mut store) = new_store();
    for rel in ["misp-feed/malvuln/feed", "misp-feed/malvuln/feed/events"] {
        let reports = import(&mut store, &fixture(rel));
        assert_eq!(reports.len(), 1, "{rel}");
        let err = reports[0].outcome.as_ref().unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
        assert!(err.contains("not a valid MISP feed manifest"), "{err}");
    }
    assert_eq!(store.stats().unwrap().events, 0);
}

#[test]
fn folder_of_events() {
    let (_dir, mut store) = new_store();
    let reports = import(&mut store, &fixture("misp-feed/eset-sshdoor-events"));
    assert_eq!(reports.len(), 2);
    assert_eq!(store.stats().unwrap().attributes, 9 + 31);
    assert_eq!(store.stats().unwrap().detections, 0);
}

#[test]
fn export_gives_back_what_came_in() {
    let (_dir, mut store) = new_store();
    import_ok(&mut store, "misp/existing_event.json");
    import_ok(&mut store, "misp/57c4445b-c548-4654-af0b-4be3950d210f.json");
    let mut out = Vec::new();
    intel::export::export(
        &store,
        intel::export::ExportFormat::MispJson,
        &Default::default(),
        &mut out,
    )
    .unwrap();
    let exported: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let events = exported["response"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("misp/existing_event.json")).unwrap())
            .unwrap();
    assert_eq!(events[0]["Event"], original);

    let mut text = Vec::new();
    let filter = intel::export::ExportFilter {
        types: vec!["sha256".into()],
        include_non_ids: false,
    };
    intel::export::export(
        &store,
        intel::export::ExportFormat::Text,
        &filter,
        &mut text,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n"
    );

    let mut csv = Vec::new();
    intel::export::export(
        &store,
        intel::export::ExportFormat::Csv,
        &Default::default(),
        &mut csv,
    )
    .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("uuid,event_id,category,type,value,comment,to_ids,date,"));
    // 83 detections in the Sednit export and 5 in the Xorist feed event, plus the header.
    assert_eq!(csv.lines().count(), 83 + 5 + 1);
}

#[test]
fn deleted_attributes_are_not_indexed() {
    let (dir, mut store) = new_store();
    let path = dir.path().join("deleted.json");
    std::fs::write(
        &path,
        r#"{"Event": {"uuid": "0f3b6e0c-8a0e-4c4c-9d9f-6c1b2a3d4e5f", "info": "d", "timestamp": "1",
            "Attribute": [
              {"type": "md5", "value": "00000000000000000000000000000001", "to_ids": true, "deleted": true},
              {"type": "md5", "value": "00000000000000000000000000000002", "to_ids": true}],
            "Object": [{"name": "file", "deleted": "1", "Attribute": [
              {"type": "md5", "value": "00000000000000000000000000000003", "to_ids": true}]}]}}"#,
    )
    .unwrap();
    import(&mut store, &path).remove(0).outcome.unwrap();
    let detector = Detector::load(&store).unwrap();
    assert!(detector
        .lookup_value("00000000000000000000000000000001")
        .is_empty());
    assert_eq!(
        detector
            .lookup_value("00000000000000000000000000000002")
            .len(),
        1
    );
    assert!(detector
        .lookup_value("00000000000000000000000000000003")
        .is_empty());
    assert_eq!(detector.stats().indicators, 1);
}

#[test]
fn warninglist_import_and_action_override() {
    let (_dir, mut store) = new_store();
    let options = ImportOptions {
        warninglist_action: Some(Action::Annotate),
        ..ImportOptions::default()
    };
    let path = fixture("warninglists/empty-hashes/list.json");
    let reports = import_path(&mut store, &path, &options, &mut |_| {});
    assert_eq!(reports[0].outcome.as_ref().unwrap().write.warninglists, 1);
    let lists = store.stats().unwrap().warninglists;
    assert_eq!(lists.len(), 3);
    let empty = lists
        .iter()
        .find(|l| l.name.contains("empty files"))
        .unwrap();
    assert_eq!(empty.action, Action::Annotate);
}
