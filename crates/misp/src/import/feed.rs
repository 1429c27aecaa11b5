//! MISP feed folders: `manifest.json` maps each event uuid to its metadata, each event is
//! `<uuid>.json` beside it, and `hashes.csv` (when present) lists `md5(value),event_uuid`
//! for every attribute value, which MISP uses as a lookup cache.

use std::collections::HashSet;

use md5::{Digest, Md5};
use serde_json::Value;
use uuid::Uuid;

use super::misp_json::date_to_epoch;
use crate::lenient;
use crate::Error;

/// One event listed in a feed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub uuid: String,
    pub info: String,
    /// Event timestamp from the manifest, used to skip events that are not newer.
    pub timestamp: Option<i64>,
}

/// Parses a feed `manifest.json`, rejecting anything that is not an object keyed by uuid.
pub fn parse_manifest(text: &str) -> Result<Vec<ManifestEntry>, Error> {
    let invalid = |message: String| Error::Invalid {
        format: "MISP feed manifest",
        message,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| Error::json(&e, text, text))?;
    let map = match value {
        Value::Object(map) => map,
        Value::Array(_) => {
            return Err(invalid(
                "it is a JSON array; a MISP feed manifest is an object keyed by event uuid".into(),
            ))
        }
        _ => {
            return Err(invalid(
                "it is not a JSON object keyed by event uuid".into(),
            ))
        }
    };
    let mut entries = Vec::with_capacity(map.len());
    for (key, meta) in map {
        let uuid = Uuid::parse_str(&key).map_err(|_| {
            invalid(format!(
                "key `{key}` is not an event uuid; a MISP feed manifest maps uuids to events"
            ))
        })?;
        let Value::Object(meta) = meta else {
            return Err(invalid(format!(
                "the entry of event `{key}` is not an object"
            )));
        };
        let field = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
        let timestamp = lenient::opt_i64(field("timestamp"))
            .ok()
            .flatten()
            .or_else(|| field("date").as_str().and_then(date_to_epoch));
        entries.push(ManifestEntry {
            uuid: uuid.hyphenated().to_string(),
            info: field("info").as_str().unwrap_or_default().to_owned(),
            timestamp,
        });
    }
    Ok(entries)
}

/// What a feed's `hashes.csv` holds.
#[derive(Debug, Default)]
pub struct HashesCsv {
    pub rows: usize,
    /// The md5 column, lower-cased.
    pub md5s: HashSet<String>,
    /// True when the columns are `event_uuid,md5` instead of MISP's `md5,event_uuid`.
    pub reversed: bool,
    /// Lines that hold no md5 and uuid pair.
    pub bad_lines: Vec<u64>,
}

/// Parses `hashes.csv`, accepting both column orders.
pub fn parse_hashes_csv(bytes: &[u8]) -> HashesCsv {
    let mut out = HashesCsv::default();
    for (number, line) in super::text::lines(bytes) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let is_md5 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match line.split_once(',') {
            Some((a, b)) if is_md5(a.trim()) && Uuid::parse_str(b.trim()).is_ok() => {
                out.md5s.insert(a.trim().to_ascii_lowercase());
            }
            Some((a, b)) if Uuid::parse_str(a.trim()).is_ok() && is_md5(b.trim()) => {
                out.reversed = true;
                out.md5s.insert(b.trim().to_ascii_lowercase());
            }
            _ => out.bad_lines.push(number),
        }
        out.rows += 1;
    }
    out
}

/// The md5s MISP writes to `hashes.csv` for one attribute value: the whole value, and
/// each half of a composite value.
pub fn value_md5s(type_name: &str, value: &str) -> Vec<String> {
    let md5 = |s: &str| hex::encode(Md5::digest(s.as_bytes()));
    match (type_name.contains('|'), value.split_once('|')) {
        (true, Some((a, b))) => vec![md5(a), md5(b)],
        _ => vec![md5(value)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keyed_by_uuid() {
        let text =
            r#"{"57c4445b-c548-4654-af0b-4be3950d210f":{"info":"x","timestamp":"1472541011"}}"#;
        let entries = parse_manifest(text).unwrap();
        assert_eq!(entries[0].timestamp, Some(1_472_541_011));
    }

    #[test]
    fn non_manifests_rejected() {
        let root = r#"{"version":"1.0","feeds":{"events":"feed/events/manifest.json"}}"#;
        let err = parse_manifest(root).unwrap_err().to_string();
        assert!(err.contains("key `version` is not an event uuid"), "{err}");
        let err = parse_manifest(r#"[{"uuid":"x"}]"#).unwrap_err().to_string();
        assert!(err.contains("JSON array"), "{err}");
    }

    #[test]
    fn hashes_csv_either_order() {
        let csv = parse_hashes_csv(
            b"d177856e-6e46-44ee-8eb5-83ef1c7452c7,d15b9e575525346a5e304ae5b3a35d64\n",
        );
        assert!(csv.reversed);
        assert_eq!(csv.md5s.len(), 1);
        let csv = parse_hashes_csv(
            b"d15b9e575525346a5e304ae5b3a35d64,d177856e-6e46-44ee-8eb5-83ef1c7452c7\nbad\n",
        );
        assert!(!csv.reversed);
        assert_eq!(csv.bad_lines, vec![2]);
    }
}
