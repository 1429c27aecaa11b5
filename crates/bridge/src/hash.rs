//! File digests found in alerts: algorithm, normalisation, and Sysmon's packed `ALG=value` lists.

use serde::{Deserialize, Serialize};

/// A digest algorithm that MISP stores as an attribute type of the same name.
///
/// The order of the variants is the lookup order: the strongest digest first, because a
/// match on it is the least likely to be a collision or a truncated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Sha256,
    Sha1,
    Md5,
}

impl HashAlgorithm {
    /// Returns the MISP attribute type, which is also the name used in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Md5 => "md5",
        }
    }

    /// Returns the length of the digest in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Md5 => 32,
        }
    }

    /// Reads a Sysmon algorithm name (`SHA256`, `SHA1`, `MD5`, any case). `IMPHASH` and
    /// other names return `None`: they do not identify a file's content.
    fn from_sysmon_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "SHA256" => Some(HashAlgorithm::Sha256),
            "SHA1" => Some(HashAlgorithm::Sha1),
            "MD5" => Some(HashAlgorithm::Md5),
            _ => None,
        }
    }

    fn from_hex_len(len: usize) -> Option<Self> {
        [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha1,
            HashAlgorithm::Md5,
        ]
        .into_iter()
        .find(|algorithm| algorithm.hex_len() == len)
    }
}

/// A digest in canonical form: lower-case hex of the algorithm's length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Digest {
    pub algorithm: HashAlgorithm,
    pub hex: String,
}

impl Digest {
    /// Parses `value` as a digest of `algorithm`: surrounding space is trimmed and upper-case
    /// hex (as Sysmon writes it) is lowered. Returns `None` for a wrong length, a non-hex
    /// character, or all zeros (what Sysmon writes when it could not compute the digest).
    pub fn parse(algorithm: HashAlgorithm, value: &str) -> Option<Self> {
        let value = value.trim();
        if value.len() != algorithm.hex_len() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if value.bytes().all(|b| b == b'0') {
            return None;
        }
        Some(Digest {
            algorithm,
            hex: value.to_ascii_lowercase(),
        })
    }
}

/// Parses the `hashes` field of a Sysmon event, such as
/// `SHA1=…,MD5=…,SHA256=…,IMPHASH=…`. Pairs with other algorithms and invalid values are
/// skipped. A bare value without `ALG=` is classified by its length.
pub fn parse_sysmon_hashes(text: &str) -> Vec<Digest> {
    let mut digests = Vec::new();
    for item in text.split(',') {
        let digest = match item.split_once('=') {
            Some((name, value)) => {
                HashAlgorithm::from_sysmon_name(name).and_then(|a| Digest::parse(a, value))
            }
            None => {
                HashAlgorithm::from_hex_len(item.trim().len()).and_then(|a| Digest::parse(a, item))
            }
        };
        digests.extend(digest);
    }
    strongest_first(digests)
}

/// Sorts digests into lookup order (strongest algorithm first) and drops repeats.
pub fn strongest_first(mut digests: Vec<Digest>) -> Vec<Digest> {
    digests.sort_by_key(|d| d.algorithm);
    digests.dedup();
    digests
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "545EC11DEE642DE633EB2C6F6FFC90CCE4DECF8D";
    const MD5: &str = "0639B0A6F69B3265C1E42227D650B7D1";
    const SHA256: &str = "CE9F70E104C07D92FC05FBD6000839FD6A87FF010E706396F87DD679244ED97B";

    #[test]
    fn sysmon_hashes_are_split_and_ordered() {
        let text = format!(
            "SHA1={SHA1},MD5={MD5},SHA256={SHA256},IMPHASH=0F71D5F6F4CBB935CE1B09754102419C"
        );
        let digests = parse_sysmon_hashes(&text);
        let algorithms: Vec<_> = digests.iter().map(|d| d.algorithm).collect();
        assert_eq!(
            algorithms,
            [
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha1,
                HashAlgorithm::Md5
            ]
        );
        assert_eq!(digests[0].hex, SHA256.to_ascii_lowercase());
    }

    #[test]
    fn sysmon_hashes_skip_bad_values() {
        let zeros = "0".repeat(64);
        let text = format!("SHA256={zeros},MD5=xyz,SHA1={SHA1}x,MD5={MD5}");
        let digests = parse_sysmon_hashes(&text);
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].algorithm, HashAlgorithm::Md5);
    }

    #[test]
    fn sysmon_bare_value_is_classified_by_length() {
        let digests = parse_sysmon_hashes(SHA256);
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].algorithm, HashAlgorithm::Sha256);
    }

    #[test]
    fn digest_rejects_zeros_and_wrong_length() {
        assert!(Digest::parse(HashAlgorithm::Md5, &"0".repeat(32)).is_none());
        assert!(Digest::parse(HashAlgorithm::Md5, SHA1).is_none());
        assert!(Digest::parse(HashAlgorithm::Md5, "").is_none());
        let digest = Digest::parse(HashAlgorithm::Md5, &format!(" {MD5} ")).expect("valid md5");
        assert_eq!(digest.hex, MD5.to_ascii_lowercase());
    }

    #[test]
    fn repeated_digests_are_dropped() {
        let text = format!("MD5={MD5},MD5={}", MD5.to_ascii_lowercase());
        assert_eq!(parse_sysmon_hashes(&text).len(), 1);
    }
}
