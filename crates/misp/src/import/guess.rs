//! Guesses the MISP type of a bare value, as MISP's freetext import does: hex hashes by
//! length, ssdeep by shape, then URLs, IP addresses, e-mail addresses, CVE ids, file
//! names and domains. Defanged values (`hxxp`, `[.]`) are refanged first.

use std::borrow::Cow;

use crate::hash::HashAlgo;
use crate::validate::{normalize_value, ValueError};

/// File extensions that make `name.ext` a file name rather than a domain.
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "scr", "bat", "cmd", "ps1", "vbs", "vbe", "js", "jse", "hta", "lnk",
    "msi", "jar", "apk", "elf", "bin", "so", "sh", "py", "pl", "doc", "docx", "docm", "xls",
    "xlsx", "xlsm", "ppt", "pptx", "rtf", "pdf", "zip", "rar", "7z", "gz", "iso", "img", "tmp",
    "dat", "txt", "wsf", "cpl", "ocx", "drv",
];

/// Returns the guessed MISP type of `raw` and its normalised value, or why none fits.
pub fn guess_type(raw: &str) -> Result<(&'static str, String), ValueError> {
    let value = refang(raw.trim());
    let value = value.as_ref();
    if value.is_empty() {
        return Err(ValueError("empty value".into()));
    }
    if let Some(found) = guess_hash(value)? {
        return Ok(found);
    }
    let type_name = guess_other(value).ok_or_else(|| {
        ValueError(format!(
            "`{}` is not a recognised hash or indicator",
            shorten(value)
        ))
    })?;
    normalize_value(type_name, value).map(|v| (type_name, v))
}

fn guess_hash(value: &str) -> Result<Option<(&'static str, String)>, ValueError> {
    if let Some((name, hash)) = value.rsplit_once('|') {
        if let Some(algo) = hex_algo(hash) {
            let type_name = filename_composite(algo);
            return normalize_value(type_name, &format!("{name}|{hash}"))
                .map(|v| Some((type_name, v)));
        }
    }
    if let Some(algo) = hex_algo(value) {
        return Ok(Some((algo.misp_type(), value.to_ascii_lowercase())));
    }
    if value.bytes().all(|b| b.is_ascii_hexdigit()) && value.len() >= 24 {
        return Err(ValueError(format!(
            "hexadecimal value of {} characters matches no hash length \
             (md5 32, sha1 40, sha224 56, sha256 64, sha384 96, sha512 128)",
            value.len()
        )));
    }
    let non_hex: Vec<(usize, char)> = value
        .char_indices()
        .filter(|(_, c)| !c.is_ascii_hexdigit())
        .collect();
    if value.len() >= 30 && non_hex.len() <= 2 && !value.contains(['.', ':', '/', '@']) {
        let (pos, ch) = non_hex[0];
        return Err(ValueError(format!(
            "looks like a damaged hash: {} characters, `{ch}` at position {} is not hexadecimal",
            value.len(),
            pos + 1
        )));
    }
    if normalize_value("ssdeep", value).is_ok() {
        return Ok(Some(("ssdeep", value.to_owned())));
    }
    Ok(None)
}

fn hex_algo(value: &str) -> Option<HashAlgo> {
    if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        HashAlgo::content_digest_for_hex_len(value.len())
    } else {
        None
    }
}

fn filename_composite(algo: HashAlgo) -> &'static str {
    match algo {
        HashAlgo::Md5 => "filename|md5",
        HashAlgo::Sha1 => "filename|sha1",
        HashAlgo::Sha224 => "filename|sha224",
        HashAlgo::Sha256 => "filename|sha256",
        HashAlgo::Sha384 => "filename|sha384",
        _ => "filename|sha512",
    }
}

fn guess_other(value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    if lower.contains("://") && !value.contains(char::is_whitespace) {
        return Some("url");
    }
    if normalize_value("ip-dst", value).is_ok() {
        return Some("ip-dst");
    }
    if normalize_value("email", value).is_ok() && !value.contains('/') {
        return Some("email");
    }
    if lower.starts_with("cve-") && lower[4..].split('-').count() == 2 {
        return Some("vulnerability");
    }
    let last = lower.rsplit('.').next().unwrap_or("");
    if lower.contains('.') && FILE_EXTENSIONS.contains(&last) && !value.contains('/') {
        return Some("filename");
    }
    if normalize_value("domain", value).is_ok() && last.chars().all(|c| c.is_alphabetic()) {
        let labels = lower.split('.').count();
        return Some(if labels > 2 { "hostname" } else { "domain" });
    }
    None
}

/// Undoes the usual defanging: `hxxp://`, `[.]`, `(.)`, `{.}`, `[:]` and `[@]`.
pub fn refang(value: &str) -> Cow<'_, str> {
    let defanged =
        value.contains(['[', '(', '{']) || value.starts_with("hxxp") || value.starts_with("hXXp");
    if !defanged {
        return Cow::Borrowed(value);
    }
    let mut out = value
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("{.}", ".")
        .replace("[:]", ":")
        .replace("[@]", "@");
    for (from, to) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("hXXp", "http"),
    ] {
        if out.starts_with(from) {
            out = format!("{to}{}", &out[from.len()..]);
        }
    }
    Cow::Owned(out)
}

fn shorten(value: &str) -> String {
    match value.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guessed(value: &str) -> &'static str {
        guess_type(value).unwrap().0
    }

    #[test]
    fn hashes_by_length() {
        assert_eq!(guessed("73F31EFE693F8B60DD86EB7E91129EC1"), "md5");
        assert_eq!(guessed("45e617ca0c551f70d2d87313149a302ee4d4ba1b"), "sha1");
        assert_eq!(guessed(&"a".repeat(56)), "sha224");
        assert_eq!(guessed(&"a".repeat(64)), "sha256");
        assert_eq!(guessed(&"a".repeat(96)), "sha384");
        assert_eq!(guessed(&"a".repeat(128)), "sha512");
        assert_eq!(
            guessed("x.exe|0749bae92ca336a02c83d126e04ec628"),
            "filename|md5"
        );
        assert_eq!(guessed("3::"), "ssdeep");
    }

    #[test]
    fn damaged_hashes_explained() {
        let err = guess_type("0f9adb17c942cb692566e6020acca93726a").unwrap_err();
        assert!(
            err.0.contains("35 characters matches no hash length"),
            "{err}"
        );
        let err = guess_type("f0295f2e46cebffaf7892a5b33ba54122781c20bs").unwrap_err();
        assert!(err.0.contains("`s` at position 41"), "{err}");
    }

    #[test]
    fn other_indicators() {
        assert_eq!(guessed("hxxp://evil[.]example/x"), "url");
        assert_eq!(guessed("10.0.0.1"), "ip-dst");
        assert_eq!(guessed("evil[.]example"), "domain");
        assert_eq!(guessed("cdn.evil.example"), "hostname");
        assert_eq!(guessed("a@evil.example"), "email");
        assert_eq!(guessed("payload.exe"), "filename");
        assert_eq!(guessed("CVE-2021-44228"), "vulnerability");
        assert!(guess_type("Dark Caracal").is_err());
    }
}
