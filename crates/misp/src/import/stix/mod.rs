//! STIX 2.0 and 2.1 bundles: indicators and observed-data become one MISP event.
//!
//! How a pattern becomes indicators (also described in docs/intel-import.md):
//!
//! 1. Only indicators with `pattern_type` `stix` (or none, as in STIX 2.0) that are not
//!    `revoked` are read. Each `[...]` observation of a pattern is taken on its own;
//!    the AND, OR and FOLLOWEDBY between observations and their qualifiers are ignored.
//! 2. Inside an observation, every `=` comparison (not negated) on a file content hash
//!    becomes a hash attribute with `to_ids` true, whether AND or OR joins it to the
//!    rest: one matching hash identifies the content, so each hash is a detection on
//!    its own, and `file:name` or `file:size` conditions are kept as context only.
//!    Content hashes are `file:hashes.K`, `artifact:hashes.K`, and `hashes.K` reached
//!    through `content_ref`, `body_raw_ref` or `image_ref`. Hash keys are matched without
//!    regard to case, quotes, `-` or `_` (`MD5`, `md5`, `'SHA-256'`, `SHA256`, `ssdeep`).
//! 3. An observation with exactly one hash and one `file:name`, joined by AND only,
//!    becomes one `filename|<hash>` attribute, as MISP exports that type. Any other
//!    observation with two or more file properties becomes a MISP `file` object: the
//!    hashes (`to_ids` true) plus `filename` and `size-in-bytes` (`to_ids` false).
//! 4. `x509-certificate:hashes.K` becomes an `x509-fingerprint-*` attribute, which is
//!    never matched against file digests. An observation made of one comparison on
//!    `ipv4-addr`, `ipv6-addr`, `domain-name`, `url`, `email-addr`, `mutex` or `file:name`
//!    becomes the matching MISP attribute. Other comparisons are skipped and counted.
//! 5. A hash that fails its type's validation (a 128-hex value under `ssdeep`, say) is
//!    rejected with the reason; duplicates within an observation are dropped.
//! 6. `file` objects of observed-data (embedded `objects` in 2.0, `object_refs` to
//!    top-level objects in 2.1) become MISP `file` objects with `to_ids` false: they
//!    record what was seen, as MISP does when it exports non-IDS attributes to STIX.

pub mod pattern;

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use uuid::Uuid;

use super::misp_json::{days_from_civil, epoch_to_date, finalize_event, UUID_NAMESPACE};
use super::{FileMeta, Parsed, Rejected};
use crate::hash::HashAlgo;
use crate::model::{Attribute, Event, Object};
use crate::validate::normalize_hash;
use crate::Error;
use pattern::{parse_pattern, Comparison, Expr, Literal};

/// Parses a STIX 2 bundle into one event.
pub fn parse_stix(text: &str, meta: &FileMeta) -> Result<Parsed, Error> {
    let invalid = |message: &str| Error::Invalid {
        format: "STIX 2 bundle",
        message: message.into(),
    };
    let bundle: Value = serde_json::from_str(text).map_err(|e| Error::json(&e, text, text))?;
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the bundle has no `objects` array"))?;
    if objects.iter().any(|o| !o.is_object()) {
        return Err(invalid("an item of `objects` is not a JSON object"));
    }

    let mut builder = Builder::new(&bundle, objects, meta);
    for object in objects {
        match str_field(object, "type") {
            "indicator" => builder.indicator(object),
            "observed-data" => builder.observed_data(object),
            _ => {}
        }
    }
    Ok(builder.finish())
}

fn str_field<'a>(object: &'a Value, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Returns the uuid part of a STIX id such as `indicator--<uuid>`.
fn id_uuid(id: &str) -> Option<Uuid> {
    id.rsplit_once("--")
        .and_then(|(_, u)| Uuid::parse_str(u).ok())
}

struct Builder<'a> {
    event: Event,
    by_id: HashMap<&'a str, &'a Value>,
    indicates: HashMap<&'a str, Vec<String>>,
    seen_files: HashSet<String>,
    parsed: Parsed,
}

impl<'a> Builder<'a> {
    fn new(bundle: &Value, objects: &'a [Value], meta: &FileMeta) -> Builder<'a> {
        let by_id: HashMap<&str, &Value> = objects
            .iter()
            .map(|o| (str_field(o, "id"), o))
            .filter(|(id, _)| !id.is_empty())
            .collect();
        let mut indicates: HashMap<&str, Vec<String>> = HashMap::new();
        for o in objects
            .iter()
            .filter(|o| str_field(o, "relationship_type") == "indicates")
        {
            if let Some(target) = by_id.get(str_field(o, "target_ref")) {
                let name = str_field(target, "name");
                if !name.is_empty() {
                    indicates
                        .entry(str_field(o, "source_ref"))
                        .or_default()
                        .push(name.to_owned());
                }
            }
        }
        let event = bundle_event(bundle, objects, meta);
        Builder {
            event,
            by_id,
            indicates,
            seen_files: HashSet::new(),
            parsed: Parsed::default(),
        }
    }

    fn indicator(&mut self, object: &Value) {
        let id = str_field(object, "id").to_owned();
        let pattern_type = str_field(object, "pattern_type");
        if object.get("revoked").and_then(Value::as_bool) == Some(true) {
            return self.parsed.skipped.push(format!("{id}: revoked"));
        }
        if !pattern_type.is_empty() && pattern_type != "stix" {
            return self
                .parsed
                .skipped
                .push(format!("{id}: pattern_type `{pattern_type}`"));
        }
        let pattern = str_field(object, "pattern");
        let observations = match parse_pattern(pattern) {
            Ok(o) => o,
            Err(e) => {
                return self.parsed.rejected.push(Rejected {
                    location: id,
                    value: pattern.to_owned(),
                    reason: format!("invalid STIX pattern: {e}"),
                })
            }
        };
        let base =
            id_uuid(&id).unwrap_or_else(|| Uuid::new_v5(&UUID_NAMESPACE, pattern.as_bytes()));
        let context = IndicatorContext {
            id: &id,
            comment: self.comment(object, &id),
            category: misp_label(object, "misp:category"),
        };
        for (index, expr) in observations.iter().enumerate() {
            let uuid = if index == 0 {
                base
            } else {
                Uuid::new_v5(&base, &[index as u8])
            };
            self.observation(expr, uuid, &context);
        }
    }

    fn comment(&self, object: &Value, id: &str) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        let text = [str_field(object, "name"), str_field(object, "description")];
        if let Some(t) = text.into_iter().find(|t| !t.is_empty()) {
            parts.push(t.to_owned());
        }
        if let Some(names) = self.indicates.get(id) {
            parts.push(format!("indicates {}", names.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn observation(&mut self, expr: &Expr, uuid: Uuid, context: &IndicatorContext) {
        let comparisons = expr.comparisons();
        let mut file = FileFacts::default();
        let mut simple = Vec::new();
        for cmp in &comparisons {
            match classify(cmp) {
                Some(Fact::Hash(algo, value)) => {
                    file.add_hash(algo, &value, context.id, &mut self.parsed)
                }
                Some(Fact::Name(name)) => file.names.push(name),
                Some(Fact::Size(size)) => file.sizes.push(size),
                Some(Fact::Simple(t, v)) => simple.push((t, v)),
                None => self.parsed.skipped.push(format!(
                    "{}: `{}:{}` is not a hash or a supported indicator",
                    context.id,
                    cmp.object_type,
                    cmp.path.join(".")
                )),
            }
        }

        let mut attributes = Vec::new();
        if comparisons.len() == 1 && simple.len() == 1 {
            let (t, v) = simple.remove(0);
            attributes.push(new_attribute(t, v, true, uuid, context));
        } else if file.hashes.len() == 1
            && file.names.len() == 1
            && file.sizes.is_empty()
            && expr.is_conjunction()
        {
            let (algo, hash) = &file.hashes[0];
            let t = format!("filename|{}", algo.misp_type());
            let v = format!("{}|{hash}", file.names[0]);
            attributes.push(new_attribute(&t, v, true, uuid, context));
        } else if file.len() >= 2 {
            return self
                .event
                .objects
                .push(file.into_object(uuid, true, context));
        } else if let Some((algo, hash)) = file.hashes.pop() {
            attributes.push(new_attribute(algo.misp_type(), hash, true, uuid, context));
        } else if let (1, Some(name)) = (comparisons.len(), file.names.pop()) {
            attributes.push(new_attribute("filename", name, true, uuid, context));
        }
        self.event.attributes.extend(attributes);
    }

    fn observed_data(&mut self, object: &Value) {
        let id = str_field(object, "id").to_owned();
        let base = id_uuid(&id).unwrap_or(UUID_NAMESPACE);
        let mut files: Vec<(String, Value)> = Vec::new();
        if let Some(Value::Object(embedded)) = object.get("objects") {
            for (key, sco) in embedded {
                files.push((format!("{id}/{key}"), sco.clone()));
            }
        }
        for reference in object
            .get("object_refs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let reference = reference.as_str().unwrap_or("");
            if let Some(sco) = self.by_id.get(reference) {
                files.push((reference.to_owned(), (*sco).clone()));
            }
        }
        let context = IndicatorContext {
            id: &id,
            comment: None,
            category: None,
        };
        for (key, sco) in files {
            if str_field(&sco, "type") != "file" || !self.seen_files.insert(key.clone()) {
                continue;
            }
            let uuid = id_uuid(&key).unwrap_or_else(|| Uuid::new_v5(&base, key.as_bytes()));
            let facts = FileFacts::from_sco(&sco, &id, &mut self.parsed);
            if facts.len() > 0 {
                self.event
                    .objects
                    .push(facts.into_object(uuid, false, &context));
            }
        }
    }

    fn finish(mut self) -> Parsed {
        if self.event.attributes.is_empty() && self.event.objects.is_empty() {
            self.parsed
                .skipped
                .push("bundle: no hashes or supported indicators".into());
            return self.parsed;
        }
        match finalize_event(self.event, None, &mut self.parsed.rejected) {
            Ok(event) => self.parsed.events.push(event),
            Err(reason) => self.parsed.rejected.push(Rejected {
                location: "bundle".into(),
                value: String::new(),
                reason,
            }),
        }
        self.parsed
    }
}

struct IndicatorContext<'a> {
    id: &'a str,
    comment: Option<String>,
    category: Option<String>,
}

/// Reads a MISP label such as `misp:category="Payload delivery"`.
fn misp_label(object: &Value, key: &str) -> Option<String> {
    let labels = object.get("labels").and_then(Value::as_array)?;
    labels.iter().filter_map(Value::as_str).find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(rest.trim_matches('"').to_owned())
    })
}

fn new_attribute(
    t: &str,
    value: String,
    to_ids: bool,
    uuid: Uuid,
    context: &IndicatorContext,
) -> Attribute {
    let category = context.category.clone().filter(|c| {
        crate::types::type_info(t).is_some_and(|i| i.categories.iter().any(|x| x == c))
    });
    Attribute {
        uuid: Some(uuid.to_string()),
        r#type: t.to_owned(),
        category,
        value,
        to_ids: Some(to_ids),
        comment: context.comment.clone(),
        ..Attribute::default()
    }
}

enum Fact {
    Hash(HashAlgo, String),
    Name(String),
    Size(String),
    Simple(&'static str, String),
}

/// Hash key spellings, compared after removing quotes, `-` and `_` and upper-casing.
fn hash_algo(key: &str) -> Option<HashAlgo> {
    let key: String = key
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_uppercase();
    Some(match key.as_str() {
        "MD5" => HashAlgo::Md5,
        "SHA1" => HashAlgo::Sha1,
        "SHA224" => HashAlgo::Sha224,
        "SHA256" => HashAlgo::Sha256,
        "SHA384" => HashAlgo::Sha384,
        "SHA512" => HashAlgo::Sha512,
        "SHA512/224" => HashAlgo::Sha512_224,
        "SHA512/256" => HashAlgo::Sha512_256,
        "SHA3224" => HashAlgo::Sha3_224,
        "SHA3256" => HashAlgo::Sha3_256,
        "SHA3384" => HashAlgo::Sha3_384,
        "SHA3512" => HashAlgo::Sha3_512,
        "SSDEEP" => HashAlgo::Ssdeep,
        "TLSH" => HashAlgo::Tlsh,
        "IMPHASH" => HashAlgo::Imphash,
        "AUTHENTIHASH" => HashAlgo::Authentihash,
        "PEHASH" => HashAlgo::Pehash,
        "VHASH" => HashAlgo::Vhash,
        "IMPFUZZY" => HashAlgo::Impfuzzy,
        "CDHASH" => HashAlgo::Cdhash,
        "TELFHASH" => HashAlgo::Telfhash,
        _ => return None,
    })
}

fn classify(cmp: &Comparison) -> Option<Fact> {
    if cmp.negated || cmp.operator != "=" {
        return None;
    }
    let value = match &cmp.value {
        Literal::Str(s) => s.clone(),
        Literal::Int(i) => i.to_string(),
        _ => return None,
    };
    let path: Vec<&str> = cmp.path.iter().map(String::as_str).collect();
    let object = cmp.object_type.as_str();
    if let [prefix @ .., "hashes", key] = path.as_slice() {
        let algo = hash_algo(key)?;
        let through_content = matches!(
            prefix.last(),
            Some(&("content_ref" | "body_raw_ref" | "image_ref"))
        );
        if (prefix.is_empty() && matches!(object, "file" | "artifact")) || through_content {
            return Some(Fact::Hash(algo, value));
        }
        if prefix.is_empty() && object == "x509-certificate" {
            let t = match algo {
                HashAlgo::Md5 => "x509-fingerprint-md5",
                HashAlgo::Sha1 => "x509-fingerprint-sha1",
                HashAlgo::Sha256 => "x509-fingerprint-sha256",
                _ => return None,
            };
            return Some(Fact::Simple(t, value));
        }
        return None;
    }
    match (object, path.as_slice()) {
        ("file", ["name"]) => Some(Fact::Name(value)),
        ("file", ["size"]) => Some(Fact::Size(value)),
        ("ipv4-addr" | "ipv6-addr", ["value"]) => Some(Fact::Simple("ip-dst", value)),
        ("domain-name", ["value"]) => {
            let t = if value.matches('.').count() > 1 {
                "hostname"
            } else {
                "domain"
            };
            Some(Fact::Simple(t, value))
        }
        ("url", ["value"]) => Some(Fact::Simple("url", value)),
        ("email-addr", ["value"]) => Some(Fact::Simple("email-dst", value)),
        ("mutex", ["name"]) => Some(Fact::Simple("mutex", value)),
        _ => None,
    }
}

/// The file properties found in one observation or file object.
#[derive(Default)]
struct FileFacts {
    hashes: Vec<(HashAlgo, String)>,
    names: Vec<String>,
    sizes: Vec<String>,
}

impl FileFacts {
    fn len(&self) -> usize {
        self.hashes.len() + self.names.len() + self.sizes.len()
    }

    fn add_hash(&mut self, algo: HashAlgo, value: &str, location: &str, parsed: &mut Parsed) {
        match normalize_hash(algo, value) {
            Ok(v) if self.hashes.iter().any(|(a, h)| *a == algo && *h == v) => {}
            Ok(v) => self.hashes.push((algo, v)),
            Err(e) => parsed.rejected.push(Rejected {
                location: location.to_owned(),
                value: value.to_owned(),
                reason: e.0,
            }),
        }
    }

    fn from_sco(sco: &Value, location: &str, parsed: &mut Parsed) -> FileFacts {
        let mut facts = FileFacts::default();
        if let Some(Value::Object(hashes)) = sco.get("hashes") {
            for (key, value) in hashes {
                match (hash_algo(key), value.as_str()) {
                    (Some(algo), Some(v)) => facts.add_hash(algo, v, location, parsed),
                    _ => parsed
                        .skipped
                        .push(format!("{location}: file hash key `{key}`")),
                }
            }
        }
        if let Some(name) = sco.get("name").and_then(Value::as_str) {
            facts.names.push(name.to_owned());
        }
        if let Some(size) = sco.get("size").and_then(Value::as_u64) {
            facts.sizes.push(size.to_string());
        }
        facts
    }

    fn into_object(self, uuid: Uuid, to_ids: bool, context: &IndicatorContext) -> Object {
        let mut attributes = Vec::new();
        let mut push = |t: &str, value: String, ids: bool| {
            let name = format!("{t}|{value}");
            let mut a = new_attribute(t, value, ids, Uuid::new_v5(&uuid, name.as_bytes()), context);
            a.object_relation = Some(t.to_owned());
            attributes.push(a);
        };
        for (algo, hash) in self.hashes {
            push(algo.misp_type(), hash, to_ids);
        }
        for name in self.names {
            push("filename", name, false);
        }
        for size in self.sizes {
            push("size-in-bytes", size, false);
        }
        Object {
            uuid: Some(uuid.to_string()),
            name: "file".into(),
            meta_category: Some("file".into()),
            attributes,
            ..Object::default()
        }
    }
}

fn bundle_event(bundle: &Value, objects: &[Value], meta: &FileMeta) -> Event {
    let report = objects.iter().find(|o| str_field(o, "type") == "report");
    let uuid = id_uuid(str_field(bundle, "id")).unwrap_or_else(|| {
        Uuid::new_v5(
            &UUID_NAMESPACE,
            format!("file:{}", meta.source_key).as_bytes(),
        )
    });
    let info = match report.map(|r| str_field(r, "name")) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => format!("STIX bundle {}", meta.name),
    };
    let times = |key: &'static str| {
        objects
            .iter()
            .filter_map(move |o| o.get(key)?.as_str().and_then(parse_timestamp))
    };
    let timestamp = times("modified")
        .chain(times("created"))
        .max()
        .unwrap_or(meta.mtime);
    let date_secs = report
        .and_then(|r| r.get("published")?.as_str().and_then(parse_timestamp))
        .or_else(|| times("created").min())
        .unwrap_or(meta.mtime);
    let mut extra = Map::new();
    extra.insert(
        "stix_bundle_id".into(),
        Value::String(str_field(bundle, "id").to_owned()),
    );
    Event {
        uuid: uuid.to_string(),
        info,
        threat_level_id: Some(4),
        analysis: Some(2),
        date: Some(epoch_to_date(date_secs)),
        timestamp: Some(timestamp),
        published: Some(false),
        extra,
        ..Event::default()
    }
}

/// Parses an RFC 3339 timestamp (`2016-04-06T20:03:48.000Z`) to seconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let secs = num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let rest = s
        .get(19..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest.as_bytes() {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if rest.len() == 6 => {
            let minutes = num(s.len() - 5..s.len() - 3)? * 60 + num(s.len() - 2..s.len())?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    Some(days * 86_400 + secs - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2016-08-29T00:00:00.000Z"),
            Some(1_472_428_800)
        );
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn hash_key_spellings() {
        for key in [
            "MD5", "md5", "SHA-256", "sha256", "SHA_1", "ssdeep", "SHA3-256", "SHA3256",
        ] {
            assert!(hash_algo(key).is_some(), "{key}");
        }
        assert!(hash_algo("CRC32").is_none());
    }
}
