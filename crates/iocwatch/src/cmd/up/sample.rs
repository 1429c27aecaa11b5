//! The intel `iocwatch up` imports on a first start: ESET's SSHDoor events and sample
//! hashes (embedded in the binary, see sample-intel/README.md) and an EICAR test event
//! whose hashes are computed at run time.

use anyhow::Context;
use serde_json::json;

/// Bundled files: name and content. Their origin and licence are in sample-intel/README.md.
const BUNDLED: [(&str, &[u8]); 3] = [
    (
        "crait.json",
        include_bytes!("../../../sample-intel/crait.json"),
    ),
    (
        "endor.json",
        include_bytes!("../../../sample-intel/endor.json"),
    ),
    (
        "eset-sshdoor-samples.sha1",
        include_bytes!("../../../sample-intel/eset-sshdoor-samples.sha1"),
    ),
];

/// Timestamp of the hash-list event: the list's last change upstream (2019-02-11).
const HASH_LIST_MTIME: i64 = 1_549_843_200;

/// Fixed uuids and timestamp of the EICAR test event, so that importing it again changes
/// nothing.
const EICAR_EVENT_UUID: &str = "125d8bf5-be71-451e-a45d-4ed84945660e";
const EICAR_ATTRIBUTE_UUIDS: [&str; 3] = [
    "faffd044-3d4c-4c81-8448-f05a9e5b4f25",
    "a7195359-7a87-4067-b13b-4684929b61ad",
    "ae5186d2-298a-4cbb-be79-6718aa719aec",
];
const EICAR_EVENT_TIMESTAMP: i64 = 1_767_225_600;

/// Tag that marks test indicators.
pub const TEST_TAG: &str = "iocwatch:test";

/// Returns the EICAR anti-malware test file (68 bytes, no trailing newline). It is
/// assembled from pieces so that the test string never appears whole in the source.
pub fn eicar_test_file() -> Vec<u8> {
    let pieces = [
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ];
    pieces.concat().into_bytes()
}

/// Counts of one import, for the start-up message.
#[derive(Debug, Default)]
pub struct Imported {
    pub events: usize,
    pub indicators: usize,
}

/// Imports the bundled files and the EICAR test event into the intel store in `data_dir`.
pub fn import(data_dir: &std::path::Path) -> anyhow::Result<Imported> {
    let mut store = intel::Store::open(data_dir)
        .with_context(|| format!("failed to open the intel store in `{}`", data_dir.display()))?;
    let mut imported = Imported::default();
    for (name, bytes) in BUNDLED {
        write(&mut store, name, bytes, &mut imported)?;
    }
    let eicar = serde_json::to_vec(&eicar_event()?).context("failed to build the EICAR event")?;
    write(&mut store, "eicar-test-event.json", &eicar, &mut imported)?;
    Ok(imported)
}

fn write(
    store: &mut intel::Store,
    name: &str,
    bytes: &[u8],
    imported: &mut Imported,
) -> anyhow::Result<()> {
    let meta = misp::FileMeta {
        name: name.to_string(),
        source_key: format!("iocwatch-sample-intel/{name}"),
        mtime: HASH_LIST_MTIME,
    };
    let parsed = misp::parse_bytes(bytes, None, &meta, &misp::CsvOptions::default())
        .with_context(|| format!("failed to parse the bundled intel file `{name}`"))?;
    let summary = store
        .write_parsed(&parsed, &format!("bundled sample intel: {name}"), None)
        .with_context(|| format!("failed to store the bundled intel file `{name}`"))?;
    imported.events += summary.events_added + summary.events_updated;
    imported.indicators += summary.hashes_indexed;
    Ok(())
}

/// Builds the EICAR test event: its md5, sha1 and sha256 as detection indicators of low
/// threat level, tagged as a test.
fn eicar_event() -> anyhow::Result<serde_json::Value> {
    let digests = hashing::hash_reader(&eicar_test_file()[..], hashing::Algorithms::ALL)
        .context("failed to hash the EICAR test file")?;
    let values = [
        ("md5", digests.md5_hex()),
        ("sha1", digests.sha1_hex()),
        ("sha256", digests.sha256_hex()),
    ];
    let attributes: Vec<serde_json::Value> = values
        .into_iter()
        .zip(EICAR_ATTRIBUTE_UUIDS)
        .map(|((kind, value), uuid)| {
            json!({
                "uuid": uuid,
                "type": kind,
                "category": "Payload delivery",
                "value": value.unwrap_or_default(),
                "to_ids": true,
                "comment": "EICAR anti-malware test file, harmless",
                "timestamp": EICAR_EVENT_TIMESTAMP.to_string(),
            })
        })
        .collect();
    Ok(json!({
        "Event": {
            "uuid": EICAR_EVENT_UUID,
            "info": "TEST: EICAR anti-malware test file (harmless; made by iocwatch up to try detection)",
            "date": "2026-01-01",
            "timestamp": EICAR_EVENT_TIMESTAMP.to_string(),
            "threat_level_id": "3",
            "analysis": "2",
            "distribution": "0",
            "published": false,
            "Tag": [{"name": TEST_TAG}],
            "Attribute": attributes,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eicar_file_has_the_standard_digest() {
        let file = eicar_test_file();
        assert_eq!(file.len(), 68);
        let digests = hashing::hash_reader(&file[..], hashing::Algorithms::ALL).unwrap();
        assert_eq!(
            digests.sha256_hex().as_deref(),
            Some("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f")
        );
        assert_eq!(
            digests.md5_hex().as_deref(),
            Some("44d88612fea8a8f36de82e1278abb02f")
        );
    }

    #[test]
    fn eicar_event_is_a_tagged_low_threat_test() {
        let event = eicar_event().unwrap();
        let event = &event["Event"];
        assert!(event["info"].as_str().unwrap().starts_with("TEST:"));
        assert_eq!(event["threat_level_id"], "3");
        assert_eq!(event["Tag"][0]["name"], TEST_TAG);
        let attributes = event["Attribute"].as_array().unwrap();
        assert_eq!(attributes.len(), 3);
        assert!(attributes.iter().all(|a| a["to_ids"] == true));
    }

    #[test]
    fn sample_import_stores_detections() {
        let dir = tempfile::tempdir().unwrap();
        let imported = import(dir.path()).unwrap();
        assert_eq!(imported.events, 4);
        // 90 sample SHA-1 and the 3 EICAR digests; the ESET events have no `to_ids`.
        assert_eq!(imported.indicators, 93);
        let again = import(dir.path()).unwrap();
        assert_eq!(again.events, 0);
    }
}
