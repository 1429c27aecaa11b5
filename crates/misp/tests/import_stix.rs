//! STIX 2.0/2.1 bundles from OASIS, MISP and a public report: which patterns and
//! observed-data objects become attributes. Counts were derived by reading the files.

use std::path::{Path, PathBuf};

use misp::{parse_bytes, Attribute, CsvOptions, Event, FileMeta, Format, Parsed};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stix")
        .join(rel)
}

fn parse_text(text: &str) -> Parsed {
    let meta = FileMeta {
        name: "bundle.json".into(),
        source_key: "bundle.json".into(),
        mtime: 0,
    };
    parse_bytes(text.as_bytes(), None, &meta, &CsvOptions::default()).unwrap()
}

fn parse(rel: &str) -> Parsed {
    let parsed = parse_text(&std::fs::read_to_string(fixture(rel)).unwrap());
    assert_eq!(parsed.format, Some(Format::Stix2), "{rel}");
    parsed
}

fn event(parsed: &Parsed) -> &Event {
    assert_eq!(parsed.events.len(), 1);
    &parsed.events[0].event
}

fn detections(event: &Event) -> Vec<&Attribute> {
    event
        .all_attributes()
        .map(|(_, a)| a)
        .filter(|a| a.to_ids == Some(true))
        .collect()
}

#[test]
fn single_sha256_indicator() {
    let parsed = parse("malware-indicator-for-file-hash.json");
    let e = event(&parsed);
    assert_eq!(e.attributes.len(), 1);
    let a = &e.attributes[0];
    assert_eq!(a.r#type, "sha256");
    assert_eq!(
        a.value,
        "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
    );
    assert_eq!(
        a.uuid.as_deref(),
        Some("a932fcc6-e032-476c-826f-cb970a5a1ade")
    );
    let comment = a.comment.as_deref().unwrap();
    assert!(comment.contains("indicates Poison Ivy"), "{comment}");
}

#[test]
fn stix20_and_21_give_the_same_attributes() {
    let v21 = parse("indicators-for-C2-with-COA.json");
    let v20 = parse("stix20-indicators-for-C2-with-COA.json");
    let pairs = |p: &Parsed| -> Vec<(String, String)> {
        event(p)
            .attributes
            .iter()
            .map(|a| (a.r#type.clone(), a.value.clone()))
            .collect()
    };
    assert_eq!(pairs(&v21).len(), 2);
    assert_eq!(pairs(&v21), pairs(&v20));
    assert!(pairs(&v21).contains(&("ip-dst".into(), "10.0.0.0".into())));
}

#[test]
fn apt1_lower_case_md5_key() {
    let parsed = parse("apt1.json");
    let e = event(&parsed);
    assert_eq!(
        e.info,
        "APT1: Exposing One of China's Cyber Espionage Units"
    );
    // 12 indicators: 4 ipv4 networks, 3 domains, 3 md5 and 2 x509 issuer/serial pairs.
    assert_eq!(e.attributes.len(), 10);
    let md5: Vec<_> = e.attributes.iter().filter(|a| a.r#type == "md5").collect();
    assert_eq!(md5.len(), 3);
    assert_eq!(
        e.attributes.iter().filter(|a| a.r#type == "ip-dst").count(),
        4
    );
    assert!(
        parsed
            .skipped
            .iter()
            .filter(|s| s.contains("x509-certificate"))
            .count()
            >= 2
    );
}

#[test]
fn or_of_hashes_and_name_becomes_file_object() {
    let parsed = parse("issue-271.json");
    let e = event(&parsed);
    // 7 file indicators: 6 `(MD5 OR SHA-1 OR SHA-256) AND file:name`, 1 without a name.
    assert_eq!(e.objects.len(), 7);
    let hashes: Vec<_> = e
        .objects
        .iter()
        .flat_map(|o| &o.attributes)
        .filter(|a| ["md5", "sha1", "sha256"].contains(&a.r#type.as_str()))
        .collect();
    assert_eq!(hashes.len(), 21);
    assert!(hashes.iter().all(|a| a.to_ids == Some(true)));
    assert!(hashes
        .iter()
        .all(|a| a.value == a.value.to_ascii_lowercase()));
    let names: Vec<_> = e
        .all_attributes()
        .filter(|(_, a)| a.r#type == "filename")
        .collect();
    assert_eq!(names.len(), 6);
    assert!(names.iter().all(|(_, a)| a.to_ids == Some(false)));
    // 2 urls, 6 domains, 2 ipv4 addresses.
    assert_eq!(e.attributes.len(), 10);
    let first = &e.objects[0].attributes[0];
    assert_eq!(first.value, "ebe2f8df39b4a94fb408580a728d351f");
}

#[test]
fn mislabelled_ssdeep_rejected_other_hashes_kept() {
    let parsed = parse("taxii-regression-test-14.json");
    let e = event(&parsed);
    assert_eq!(e.objects.len(), 2);
    // Each indicator labels a 128-hex value as ssdeep; both are rejected.
    assert_eq!(parsed.rejected.len(), 2);
    assert!(parsed
        .rejected
        .iter()
        .all(|r| r.reason.starts_with("ssdeep must look like")));
    let ids = detections(e);
    // md5 (listed twice), sha1 and sha256 of the empty file, in each of the two patterns.
    assert_eq!(ids.len(), 6);
    assert!(ids
        .iter()
        .any(|a| a.value == "d41d8cd98f00b204e9800998ecf8427e"));
    let sizes = e
        .all_attributes()
        .filter(|(_, a)| a.r#type == "size-in-bytes")
        .count();
    assert_eq!(sizes, 1);
}

#[test]
fn misp_object_collections_both_versions() {
    for rel in [
        "test_objects_collection_stix20.json",
        "test_objects_collection_stix21.json",
    ] {
        let parsed = parse(rel);
        let e = event(&parsed);
        // The indicator's file object (3 hashes and a name) and the observed file.
        assert_eq!(e.objects.len(), 2, "{rel}");
        let ids = detections(e);
        assert_eq!(ids.len(), 3, "{rel}");
        let observed: Vec<_> = e
            .objects
            .iter()
            .filter(|o| o.attributes.iter().all(|a| a.to_ids == Some(false)))
            .collect();
        assert_eq!(observed.len(), 1, "{rel}");
        let observed = observed[0];
        assert_eq!(observed.attributes.len(), 5, "{rel}");
    }
}

#[test]
fn observed_data_file_is_context_only() {
    let parsed = parse("sighting-of-observed-data.json");
    let e = event(&parsed);
    assert_eq!(e.objects.len(), 1);
    assert_eq!(
        e.objects[0].uuid.as_deref(),
        Some("364fe3e5-b1f4-5ba3-b951-ee5983b3538d")
    );
    assert_eq!(e.objects[0].attributes.len(), 4);
    assert!(detections(e).is_empty());
}

#[test]
fn misp_stix_mapping_round_trip() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("misp_attributes_to_stix21.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for (misp_type, entry) in doc.as_object().unwrap() {
        // sha512/224 and sha512/256 are exported under the SHA-224/SHA-256 keys, and a
        // malware-sample pattern is read back as filename|md5; both mappings lose the type.
        let lossy = misp_type.contains("sha512/") || misp_type == "malware-sample";
        if !misp::hash::is_hash_type(misp_type) || lossy {
            continue;
        }
        let bundle = serde_json::json!({"type": "bundle", "id": "bundle--5d1f7a2c-9e0b-4c61-8a3f-2b6e1c9d4e70",
            "objects": entry["STIX"]});
        let parsed = parse_text(&bundle.to_string());
        let e = event(&parsed);
        let attribute = e
            .attributes
            .iter()
            .find(|a| a.to_ids == Some(true))
            .unwrap_or_else(|| {
                panic!(
                    "{misp_type}: no indicator attribute; rejected {:?}",
                    parsed.rejected
                )
            });
        assert_eq!(&attribute.r#type, misp_type);
        let expected = entry["MISP"]["value"].as_str().unwrap();
        assert_eq!(
            attribute.value.to_ascii_lowercase(),
            expected.to_ascii_lowercase(),
            "{misp_type}"
        );
        checked += 1;
    }
    assert_eq!(checked, 33);
}

#[test]
fn malformed_bundles_fail_cleanly() {
    let meta = FileMeta::default();
    let bad = [
        r#"{"type": "bundle", "id": "bundle--1"}"#,
        r#"{"type": "bundle", "id": "bundle--1", "objects": [1]}"#,
        r#"{"type": "bundle", "id": "bundle--1", "objects": [{"type": "indicator"#,
    ];
    for text in bad {
        assert!(
            parse_bytes(text.as_bytes(), None, &meta, &CsvOptions::default()).is_err(),
            "{text}"
        );
    }
    let broken_pattern = r#"{"type":"bundle","id":"bundle--1","objects":[
        {"type":"indicator","id":"indicator--1","pattern":"[file:hashes.MD5 = 'x'"}]}"#;
    let parsed = parse_text(broken_pattern);
    assert_eq!(parsed.rejected.len(), 1);
    assert!(parsed.rejected[0]
        .reason
        .starts_with("invalid STIX pattern"));
}
