//! Validation and normalisation of attribute values per type, following MISP's
//! `AttributeValidationTool`: hex hashes are trimmed, lower-cased and length-checked,
//! composites are checked half by half, other types get a basic shape check.

use std::fmt;
use std::net::IpAddr;

use crate::hash::{composite_parts, HashAlgo};
use crate::model::Attribute;
use crate::types::type_info;

/// Reason a value or attribute was rejected. The message names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

fn invalid(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// Checks an attribute's type, fills in the default category and `to_ids` from
/// MISP's type table, and replaces the value with its normalised form.
pub fn prepare_attribute(attribute: &mut Attribute) -> Result<(), ValueError> {
    let info = type_info(&attribute.r#type).ok_or_else(|| {
        invalid(format!(
            "unknown attribute type `{}`; use a type from MISP's describeTypes",
            attribute.r#type
        ))
    })?;

    match attribute.category.as_deref().map(str::trim) {
        None | Some("") => attribute.category = Some(info.default_category.clone()),
        Some(category) if info.categories.iter().any(|c| c == category) => {}
        Some(category) => {
            return Err(invalid(format!(
                "category `{category}` is not allowed for type `{}` (allowed: {})",
                info.name,
                info.categories.join(", ")
            )))
        }
    }
    if attribute.to_ids.is_none() {
        attribute.to_ids = Some(info.default_to_ids);
    }

    // Most hashes arrive in canonical form; skip the copy for them.
    let canonical = HashAlgo::from_misp_type(&attribute.r#type)
        .and_then(HashAlgo::hex_len)
        .is_some_and(|len| attribute.value.len() == len && is_lower_hex(&attribute.value));
    if !canonical {
        attribute.value = normalize_value(&attribute.r#type, &attribute.value)?;
    }
    Ok(())
}

fn is_lower_hex(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Returns the normalised form of `value` for the MISP type `type_name`, or why it is invalid.
pub fn normalize_value(type_name: &str, value: &str) -> Result<String, ValueError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(format!("empty {type_name} value")));
    }
    if let Some(algo) = HashAlgo::from_misp_type(type_name) {
        return normalize_hash(algo, value);
    }
    if let Some((left, right)) = composite_parts(type_name) {
        return normalize_composite(type_name, left, right, value);
    }
    normalize_simple(type_name, value)
}

/// Normalises a value of one of MISP's hash types.
pub fn normalize_hash(algo: HashAlgo, value: &str) -> Result<String, ValueError> {
    let name = algo.misp_type();
    let value = value.trim();
    if let Some(len) = algo.hex_len() {
        return normalize_hex(name, value, &[len]);
    }
    match algo {
        HashAlgo::Ssdeep | HashAlgo::Impfuzzy => {
            if is_fuzzy_hash(value) {
                Ok(value.to_owned())
            } else {
                Err(invalid(format!(
                    "{name} must look like `blocksize:hash:hash` (digits, then base64 characters)"
                )))
            }
        }
        HashAlgo::Tlsh => {
            let lower = value.to_ascii_lowercase();
            let hex = lower.strip_prefix('t').unwrap_or(&lower);
            if hex.len() >= 35 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(lower)
            } else {
                Err(invalid(
                    "tlsh must be at least 35 hexadecimal characters, optionally after `T`",
                ))
            }
        }
        HashAlgo::Telfhash => normalize_hex(name, value, &[70, 72]),
        // MISP accepts any single-line vhash.
        _ if value.contains(['\n', '\r']) => Err(invalid(format!("{name} must be one line"))),
        _ => Ok(value.to_owned()),
    }
}

fn normalize_hex(name: &str, value: &str, lens: &[usize]) -> Result<String, ValueError> {
    if let Some((pos, ch)) = value.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "{name} must be hexadecimal, found `{ch}` at position {}",
            pos + 1
        )));
    }
    if !lens.contains(&value.len()) {
        let expected: Vec<String> = lens.iter().map(usize::to_string).collect();
        return Err(invalid(format!(
            "{name} must be {} hexadecimal characters, found {}",
            expected.join(" or "),
            value.len()
        )));
    }
    Ok(value.to_ascii_lowercase())
}

fn is_fuzzy_hash(value: &str) -> bool {
    let mut parts = value.split(':');
    let (Some(size), Some(a), Some(b), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let base64 = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'/' || c == b'+')
    };
    !size.is_empty() && size.bytes().all(|c| c.is_ascii_digit()) && base64(a) && base64(b)
}

fn normalize_composite(
    type_name: &str,
    left: &str,
    right: &str,
    value: &str,
) -> Result<String, ValueError> {
    // Filenames and registry keys may contain `|`, hashes and ports never do.
    let split = if left == "filename" || right == "port" {
        value.rsplit_once('|')
    } else {
        value.split_once('|')
    };
    let Some((a, b)) = split else {
        return Err(invalid(format!(
            "{type_name} must be two values joined by `|`"
        )));
    };
    let a = normalize_value(left, a).map_err(|e| invalid(format!("{type_name}: {e}")))?;
    let b = if left == "regkey" {
        b.to_owned()
    } else {
        normalize_value(right, b).map_err(|e| invalid(format!("{type_name}: {e}")))?
    };
    Ok(format!("{a}|{b}"))
}

fn normalize_simple(type_name: &str, value: &str) -> Result<String, ValueError> {
    match type_name {
        "ip-src" | "ip-dst" => normalize_ip(value),
        "domain" | "hostname" => normalize_domain(type_name, value),
        "port" => match value.parse::<u16>() {
            Ok(port) => Ok(port.to_string()),
            Err(_) => Err(invalid(format!(
                "port must be a number from 0 to 65535, found `{value}`"
            ))),
        },
        "email"
        | "email-src"
        | "email-dst"
        | "target-email"
        | "whois-registrant-email"
        | "dns-soa-email"
        | "email-reply-to" => match value.split_once('@') {
            Some((user, host))
                if !user.is_empty()
                    && !host.is_empty()
                    && !has_space(value)
                    && !has_control(value) =>
            {
                Ok(value.to_owned())
            }
            _ => Err(invalid(format!(
                "{type_name} must be an address like user@example.org"
            ))),
        },
        "x509-fingerprint-md5" | "ja3-fingerprint-md5" | "hassh-md5" | "hasshserver-md5" => {
            normalize_hex(type_name, value, &[32])
        }
        "x509-fingerprint-sha1" | "git-commit-id" => normalize_hex(type_name, value, &[40]),
        "x509-fingerprint-sha256" => normalize_hex(type_name, value, &[64]),
        "url" | "uri" | "link" | "filename" | "mutex" if value.contains(['\n', '\r']) => {
            Err(invalid(format!("{type_name} must be one line")))
        }
        "url" | "uri" | "link" | "filename" | "mutex" if has_control(value) => Err(invalid(
            format!("{type_name} must not contain control characters (such as NUL)"),
        )),
        "mac-address" => Ok(value.to_ascii_lowercase()),
        "size-in-bytes" | "counter" | "integer" if value.parse::<u64>().is_err() => Err(invalid(
            format!("{type_name} must be a whole number, found `{value}`"),
        )),
        _ => Ok(value.to_owned()),
    }
}

fn has_space(value: &str) -> bool {
    value.chars().any(char::is_whitespace)
}

/// Control characters other than tab: binary junk, never part of these types' values.
fn has_control(value: &str) -> bool {
    value.chars().any(|c| c.is_control() && c != '\t')
}

fn normalize_ip(value: &str) -> Result<String, ValueError> {
    let (addr, prefix) = match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (value, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| invalid(format!("`{value}` is not an IPv4 or IPv6 address")))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix {
        None => Ok(ip.to_string()),
        Some(p) => match p.parse::<u8>() {
            Ok(bits) if bits <= max => Ok(format!("{ip}/{bits}")),
            _ => Err(invalid(format!(
                "`{value}` has an invalid network prefix (0 to {max})"
            ))),
        },
    }
}

fn normalize_domain(type_name: &str, value: &str) -> Result<String, ValueError> {
    let lower = value.trim_end_matches('.').to_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
    };
    if lower.contains('.') && lower.split('.').all(label_ok) {
        Ok(lower)
    } else {
        Err(invalid(format!("`{value}` is not a valid {type_name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_hashes_lower_cased_and_trimmed() {
        let v = normalize_value("md5", " 73F31EFE693F8B60DD86EB7E91129EC1 \r").unwrap();
        assert_eq!(v, "73f31efe693f8b60dd86eb7e91129ec1");
    }

    #[test]
    fn wrong_length_hash_rejected() {
        let err = normalize_value("sha1", "0f9adb17c942cb692566e6020acca93726a").unwrap_err();
        assert_eq!(err.0, "sha1 must be 40 hexadecimal characters, found 35");
        let err = normalize_value("sha1", "f0295f2e46cebffaf7892a5b33ba54122781c20bs").unwrap_err();
        assert_eq!(err.0, "sha1 must be hexadecimal, found `s` at position 41");
    }

    #[test]
    fn every_fixed_length_hash_type() {
        for (t, len) in [
            ("sha224", 56),
            ("sha512/224", 56),
            ("sha3-224", 56),
            ("sha512/256", 64),
            ("sha3-256", 64),
            ("authentihash", 64),
            ("sha384", 96),
            ("sha3-384", 96),
            ("sha512", 128),
            ("sha3-512", 128),
            ("imphash", 32),
            ("pehash", 40),
            ("cdhash", 40),
        ] {
            assert!(normalize_value(t, &"A".repeat(len)).is_ok(), "{t}");
            assert!(normalize_value(t, &"a".repeat(len - 1)).is_err(), "{t}");
        }
    }

    #[test]
    fn fuzzy_hashes() {
        let ssdeep =
            "96:QRWkwoBevsL0JsIQ3pq8dxbuTet7eU/uEzAfue9atn0JbIi:QRWktBe80JsIIq8dxKyPew0JbIi";
        assert_eq!(normalize_value("ssdeep", ssdeep).unwrap(), ssdeep);
        assert_eq!(normalize_value("ssdeep", "3::").unwrap(), "3::");
        assert!(normalize_value("ssdeep", &"a".repeat(128)).is_err());
        let tlsh = "T1C325AF62E2F15CF7C32316389D1B57A46827BE703D3879866BF52C385F396813829297";
        assert_eq!(
            normalize_value("tlsh", tlsh).unwrap(),
            tlsh.to_ascii_lowercase()
        );
        assert!(normalize_value("telfhash", &"b1".repeat(35)).is_ok());
        assert!(normalize_value("vhash", "115056655d15151138z66hz1021z55z66z3").is_ok());
    }

    #[test]
    fn composites_checked_half_by_half() {
        let v =
            normalize_value("filename|md5", "a|b.exe|0749BAE92CA336A02C83D126E04EC628").unwrap();
        assert_eq!(v, "a|b.exe|0749bae92ca336a02c83d126e04ec628");
        let err = normalize_value("filename|sha256", "x.exe|abc").unwrap_err();
        assert!(
            err.0.starts_with("filename|sha256: sha256 must be"),
            "{err}"
        );
        assert!(
            normalize_value("malware-sample", "x.exe|0749bae92ca336a02c83d126e04ec628").is_ok()
        );
        assert_eq!(
            normalize_value("ip-dst|port", "10.0.0.1|443").unwrap(),
            "10.0.0.1|443"
        );
        assert!(normalize_value("ip-dst|port", "10.0.0.1|http").is_err());
    }

    #[test]
    fn other_types_basic_checks() {
        assert_eq!(
            normalize_value("domain", "Example.ORG.").unwrap(),
            "example.org"
        );
        assert!(normalize_value("domain", "not a domain").is_err());
        assert_eq!(
            normalize_value("ip-src", "223.166.0.0/15").unwrap(),
            "223.166.0.0/15"
        );
        assert!(normalize_value("ip-src", "300.1.1.1").is_err());
        assert!(normalize_value("email-src", "a@b.org").is_ok());
        assert!(normalize_value("email-src", "a\u{0}b@c.org").is_err());
        assert!(normalize_value("email-src", "a\u{1b}@c.org").is_err());
        assert!(normalize_value("filename", "a\u{0}.exe").is_err());
        assert!(normalize_value("text", "   ").is_err());
    }

    #[test]
    fn attribute_defaults_and_category() {
        let mut a = Attribute {
            r#type: "sha256".into(),
            value: "E3".repeat(32),
            ..Default::default()
        };
        prepare_attribute(&mut a).unwrap();
        assert_eq!(a.category.as_deref(), Some("Payload delivery"));
        assert_eq!(a.to_ids, Some(true));
        assert_eq!(a.value, "e3".repeat(32));

        let mut bad = Attribute {
            r#type: "md5".into(),
            category: Some("Person".into()),
            value: "0".repeat(32),
            ..Default::default()
        };
        assert!(prepare_attribute(&mut bad)
            .unwrap_err()
            .0
            .contains("not allowed"));
        let mut unknown = Attribute {
            r#type: "md6".into(),
            value: "x".into(),
            ..Default::default()
        };
        assert!(prepare_attribute(&mut unknown).is_err());
    }
}
