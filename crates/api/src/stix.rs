//! STIX 2.1 output of search results: each attribute whose type has a STIX pattern
//! becomes an `indicator`, created by one `identity` for the local organisation.

use serde_json::{json, Value};

use crate::db::AttributeRow;
use crate::json::{LOCAL_ORG, LOCAL_ORG_UUID};

/// Formats seconds since the Unix epoch as a STIX timestamp (`2024-01-31T12:00:00.000Z`).
pub fn timestamp(secs: i64) -> String {
    let date = misp::import::epoch_to_date(secs);
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}.000Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn identity_id() -> String {
    format!("identity--{LOCAL_ORG_UUID}")
}

/// Returns the `identity` that creates every indicator.
pub fn identity(now: i64) -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(),
        "created": timestamp(now),
        "modified": timestamp(now),
        "name": LOCAL_ORG,
        "identity_class": "organization",
    })
}

/// Returns the STIX 2.1 name of a MISP hash type, from STIX's hash-algorithm vocabulary where
/// it has one.
fn hash_key(type_name: &str) -> Option<&'static str> {
    Some(match type_name {
        "md5" => "MD5",
        "sha1" => "SHA-1",
        "sha224" => "SHA-224",
        "sha256" => "SHA-256",
        "sha384" => "SHA-384",
        "sha512" => "SHA-512",
        "sha512/224" => "SHA-512/224",
        "sha512/256" => "SHA-512/256",
        "sha3-224" => "SHA3-224",
        "sha3-256" => "SHA3-256",
        "sha3-384" => "SHA3-384",
        "sha3-512" => "SHA3-512",
        "ssdeep" => "SSDEEP",
        "tlsh" => "TLSH",
        _ => return None,
    })
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Returns the STIX pattern of an attribute, or `None` for types without one.
pub fn pattern(type_name: &str, value: &str) -> Option<String> {
    if let Some(key) = hash_key(type_name) {
        return Some(format!("[file:hashes.'{key}' = {}]", quote(value)));
    }
    if let Some(hash_type) = type_name.strip_prefix("filename|") {
        let key = hash_key(hash_type)?;
        let (name, hash) = value.rsplit_once('|')?;
        return Some(format!(
            "[file:name = {} AND file:hashes.'{key}' = {}]",
            quote(name),
            quote(hash)
        ));
    }
    let object = match type_name {
        "ip-src" | "ip-dst" if value.contains(':') => "ipv6-addr:value",
        "ip-src" | "ip-dst" => "ipv4-addr:value",
        "domain" | "hostname" => "domain-name:value",
        "url" => "url:value",
        "email-src" | "email-dst" | "email" => "email-addr:value",
        "filename" => "file:name",
        "mutex" => "mutex:name",
        _ => return None,
    };
    Some(format!("[{object} = {}]", quote(value)))
}

/// Returns the indicator for `a`, or `None` when its type has no STIX pattern.
pub fn indicator(a: &AttributeRow) -> Option<Value> {
    let pattern = pattern(&a.r#type, &a.value)?;
    let ts = timestamp(a.timestamp.unwrap_or(0));
    let mut indicator = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{}", a.uuid),
        "created_by_ref": identity_id(),
        "created": ts,
        "modified": ts,
        "name": format!("{}: {}", a.r#type, a.value),
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": ts,
        "labels": [format!("misp:type=\"{}\"", a.r#type), format!("misp:category=\"{}\"", a.category)],
    });
    if a.to_ids {
        indicator["indicator_types"] = json!(["malicious-activity"]);
    }
    if let Some(comment) = a.comment.as_deref().filter(|c| !c.is_empty()) {
        indicator["description"] = json!(comment);
    }
    Some(indicator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn composite_hash_pattern() {
        let p = pattern("filename|sha256", "a'b.exe|abc").unwrap();
        assert_eq!(
            p,
            "[file:name = 'a\\'b.exe' AND file:hashes.'SHA-256' = 'abc']"
        );
        assert!(pattern("comment", "x").is_none());
    }
}
