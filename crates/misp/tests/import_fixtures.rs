//! Importers against real files: counts in these tests were derived from the fixtures
//! with a separate script (jq/python), not from this parser.

use std::path::{Path, PathBuf};

use misp::{parse_bytes, CsvOptions, Event, FileMeta, Format, Parsed};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn parse(rel: &str) -> Parsed {
    try_parse(rel).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn try_parse(rel: &str) -> Result<Parsed, misp::Error> {
    let path = fixture(rel);
    let bytes = std::fs::read(&path).unwrap();
    let meta = FileMeta {
        name: rel.into(),
        source_key: path.display().to_string(),
        mtime: 1_700_000_000,
    };
    parse_bytes(&bytes, None, &meta, &CsvOptions::default())
}

fn only_event(parsed: &Parsed) -> &Event {
    assert_eq!(parsed.events.len(), 1);
    &parsed.events[0].event
}

fn is_ids(a: &misp::Attribute) -> bool {
    a.to_ids == Some(true)
}

fn hash_attributes(event: &Event) -> Vec<&misp::Attribute> {
    event
        .all_attributes()
        .map(|(_, a)| a)
        .filter(|a| misp::hash::is_hash_type(&a.r#type))
        .collect()
}

fn count_type(event: &Event, t: &str) -> usize {
    event
        .all_attributes()
        .filter(|(_, a)| a.r#type == t)
        .count()
}

#[test]
fn long_event_hash_counts() {
    let parsed = parse("misp/long_event.json");
    assert_eq!(parsed.format, Some(Format::MispJson));
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let event = only_event(&parsed);
    assert_eq!(event.attributes.len(), 370);
    let hashes = hash_attributes(event);
    assert_eq!(hashes.len(), 225);
    assert_eq!(hashes.iter().filter(|a| is_ids(a)).count(), 219);
    assert_eq!(count_type(event, "md5"), 31);
    assert_eq!(count_type(event, "sha1"), 58);
    assert_eq!(count_type(event, "sha256"), 41);
    assert_eq!(count_type(event, "filename|md5"), 46);
    assert_eq!(count_type(event, "filename|sha256"), 46);
    assert_eq!(count_type(event, "imphash"), 1);
    assert_eq!(count_type(event, "pehash"), 1);
    assert_eq!(count_type(event, "ssdeep"), 1);
}

#[test]
fn object_attributes_are_read() {
    let parsed = parse("misp/mainly_objects_1.json");
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let event = only_event(&parsed);
    assert_eq!(event.objects.len(), 17);
    assert_eq!(event.all_attributes().count(), 74);
    let hashes = hash_attributes(event);
    assert_eq!(hashes.len(), 32);
    assert_eq!(hashes.iter().filter(|a| is_ids(a)).count(), 17);
    assert_eq!(count_type(event, "md5"), 14);
    assert_eq!(count_type(event, "sha512"), 3);
    assert!(hashes.iter().all(|a| a.object_relation.is_some()));
}

#[test]
fn instance_export_without_wrapper() {
    let parsed = parse("misp/existing_event.json");
    let event = only_event(&parsed);
    assert_eq!(event.id.as_deref(), Some("9747"));
    assert_eq!(event.objects.len(), 49);
    assert_eq!(event.galaxies.len(), 4);
    assert_eq!(event.tags.len(), 18);
    assert!(event.org.is_some());
    assert!(event.extra.contains_key("RelatedEvent"));
    let sha1: Vec<_> = event
        .all_attributes()
        .filter(|(o, a)| o.is_some() && a.r#type == "sha1")
        .collect();
    assert_eq!(sha1.len(), 37);
    assert!(sha1.iter().all(|(_, a)| is_ids(a)));
}

#[test]
fn feed_event_keeps_raw_json() {
    let parsed = parse("misp/57c4445b-c548-4654-af0b-4be3950d210f.json");
    let event = only_event(&parsed);
    assert_eq!(event.uuid, "57c4445b-c548-4654-af0b-4be3950d210f");
    assert_eq!(event.attributes.len(), 9);
    assert_eq!(event.timestamp, Some(1_472_541_011));
    assert_eq!(event.orgc.as_ref().unwrap().name, "CIRCL");
    let raw: serde_json::Value =
        serde_json::from_str(parsed.events[0].json.as_deref().unwrap()).unwrap();
    let file: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("misp/57c4445b-c548-4654-af0b-4be3950d210f.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(raw, file["Event"]);
}

#[test]
fn malvuln_event_without_uuids_gets_stable_ones() {
    let rel = "misp-feed/malvuln/feed/events/misp_event_00199eb3fd1a0aa6771b7f12fad895a0.json";
    let a = parse(rel);
    let b = parse(rel);
    let event = only_event(&a);
    assert_eq!(event.attributes.len(), 14);
    assert_eq!(event.objects.len(), 4);
    assert!(event.all_attributes().all(|(_, x)| x.uuid.is_some()));
    let uuids = |p: &Parsed| -> Vec<String> {
        only_event(p)
            .all_attributes()
            .map(|(_, x)| x.uuid.clone().unwrap())
            .collect()
    };
    assert_eq!(uuids(&a), uuids(&b));
}

#[test]
fn feed_manifests_are_not_events() {
    for rel in [
        "misp-feed/malvuln/feed/manifest.json",
        "misp-feed/malvuln/feed/events/manifest.json",
    ] {
        let err = try_parse(rel).unwrap_err().to_string();
        assert!(!err.is_empty(), "{rel}");
    }
    let err = try_parse("misp-feed/redblue232-threat-feed-publisher/manifest.json").unwrap_err();
    assert!(err.to_string().contains("feed manifest"), "{err}");
}

#[test]
fn hash_lists_counts() {
    let cases = [
        (
            "feeds/eset-backdoordiplomacy-samples.sha256",
            "sha256",
            22,
            0,
        ),
        ("feeds/eset-ceranakeeper-samples.sha256", "sha256", 9, 0),
        ("feeds/eset-emotet-samples.sha256", "sha256", 9, 0),
        ("feeds/eset-evilnum-samples.md5", "md5", 122, 0),
        ("feeds/eset-modiloader-samples.sha1", "sha1", 12, 1),
        ("feeds/eset-sshdoor-samples.sha1", "sha1", 90, 0),
    ];
    for (rel, t, kept, rejected) in cases {
        let parsed = parse(rel);
        assert_eq!(parsed.format, Some(Format::Freetext), "{rel}");
        let event = only_event(&parsed);
        assert_eq!(event.attributes.len(), kept, "{rel}");
        assert!(
            event.attributes.iter().all(|a| a.r#type == t && is_ids(a)),
            "{rel}"
        );
        assert!(
            event
                .attributes
                .iter()
                .all(|a| a.value == a.value.to_ascii_lowercase()),
            "{rel}"
        );
        assert_eq!(parsed.rejected.len(), rejected, "{rel}");
    }
    let broken = &parse("feeds/eset-modiloader-samples.sha1").rejected[0];
    assert_eq!(broken.location, "line 13");
    assert_eq!(broken.value, "f0295f2e46cebffaf7892a5b33ba54122781c20bs");
}

#[test]
fn loki_hash_list_with_comments() {
    let parsed = parse("feeds/hash-iocs.txt");
    let event = only_event(&parsed);
    assert_eq!(event.attributes.len(), 3053);
    assert_eq!(parsed.duplicates, 171);
    assert!(
        parsed.rejected.is_empty(),
        "{:?}",
        &parsed.rejected[..parsed.rejected.len().min(3)]
    );
    assert_eq!(count_type(event, "md5"), 986);
    assert_eq!(count_type(event, "sha1"), 893);
    assert_eq!(count_type(event, "sha256"), 1174);
    let first = &event.attributes[0];
    assert_eq!(
        first.value,
        "ce583821191345274cd954b2db7da9742c239fe413fc17dcb97ffdd7b51cb072"
    );
    assert_eq!(
        first.comment.as_deref(),
        Some("Dark Caracal - MS Windows HtmlHelp Data")
    );
}

#[test]
fn feed_hashes_csv_is_csv() {
    let parsed = parse("misp-feed/redblue232-threat-feed-publisher/hashes.csv");
    assert_eq!(parsed.format, Some(Format::Csv));
    let event = only_event(&parsed);
    assert!(event.attributes.iter().all(|a| a.r#type == "md5"));
}

#[test]
fn warninglists_parse() {
    for (rel, entries) in [
        ("warninglists/empty-hashes/list.json", 6),
        ("warninglists/eicar.com/list.json", 15),
        ("warninglists/common-ioc-false-positive/list.json", 69),
    ] {
        let parsed = parse(rel);
        assert_eq!(parsed.format, Some(Format::Warninglist));
        assert_eq!(parsed.warninglists[0].entries.len(), entries, "{rel}");
        assert_eq!(parsed.warninglists[0].list_type, "string");
    }
}
