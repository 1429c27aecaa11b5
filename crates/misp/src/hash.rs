//! The hash family of MISP attribute types: names, lengths, and which of them are
//! digests of a file's whole content (the ones a file scan can compute).

/// A hash algorithm that MISP has an attribute type for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    Ssdeep,
    Imphash,
    Tlsh,
    Authentihash,
    Pehash,
    Vhash,
    Impfuzzy,
    Cdhash,
    Telfhash,
}

/// Every hash algorithm, in MISP's order.
pub const ALL_HASHES: [HashAlgo; 21] = [
    HashAlgo::Md5,
    HashAlgo::Sha1,
    HashAlgo::Sha224,
    HashAlgo::Sha256,
    HashAlgo::Sha384,
    HashAlgo::Sha512,
    HashAlgo::Sha512_224,
    HashAlgo::Sha512_256,
    HashAlgo::Sha3_224,
    HashAlgo::Sha3_256,
    HashAlgo::Sha3_384,
    HashAlgo::Sha3_512,
    HashAlgo::Ssdeep,
    HashAlgo::Imphash,
    HashAlgo::Tlsh,
    HashAlgo::Authentihash,
    HashAlgo::Pehash,
    HashAlgo::Vhash,
    HashAlgo::Impfuzzy,
    HashAlgo::Cdhash,
    HashAlgo::Telfhash,
];

impl HashAlgo {
    /// The MISP attribute type of this hash (`md5`, `sha512/256`, `ssdeep`, ...).
    pub fn misp_type(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha224 => "sha224",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
            HashAlgo::Sha512_224 => "sha512/224",
            HashAlgo::Sha512_256 => "sha512/256",
            HashAlgo::Sha3_224 => "sha3-224",
            HashAlgo::Sha3_256 => "sha3-256",
            HashAlgo::Sha3_384 => "sha3-384",
            HashAlgo::Sha3_512 => "sha3-512",
            HashAlgo::Ssdeep => "ssdeep",
            HashAlgo::Imphash => "imphash",
            HashAlgo::Tlsh => "tlsh",
            HashAlgo::Authentihash => "authentihash",
            HashAlgo::Pehash => "pehash",
            HashAlgo::Vhash => "vhash",
            HashAlgo::Impfuzzy => "impfuzzy",
            HashAlgo::Cdhash => "cdhash",
            HashAlgo::Telfhash => "telfhash",
        }
    }

    /// Parses a MISP attribute type name into a hash algorithm.
    pub fn from_misp_type(type_name: &str) -> Option<HashAlgo> {
        ALL_HASHES.into_iter().find(|h| h.misp_type() == type_name)
    }

    /// Number of hexadecimal characters, for hashes written as fixed-length hex.
    pub fn hex_len(self) -> Option<usize> {
        match self {
            HashAlgo::Md5 | HashAlgo::Imphash => Some(32),
            HashAlgo::Sha1 | HashAlgo::Pehash | HashAlgo::Cdhash => Some(40),
            HashAlgo::Sha224 | HashAlgo::Sha512_224 | HashAlgo::Sha3_224 => Some(56),
            HashAlgo::Sha256 | HashAlgo::Sha512_256 | HashAlgo::Sha3_256 => Some(64),
            HashAlgo::Authentihash => Some(64),
            HashAlgo::Sha384 | HashAlgo::Sha3_384 => Some(96),
            HashAlgo::Sha512 | HashAlgo::Sha3_512 => Some(128),
            HashAlgo::Ssdeep
            | HashAlgo::Tlsh
            | HashAlgo::Vhash
            | HashAlgo::Impfuzzy
            | HashAlgo::Telfhash => None,
        }
    }

    /// True for md5, sha1 and SHA-2 (224/256/384/512): digests of a file's whole content,
    /// distinguished by length alone. Only these enter the raw-digest detection index, so a
    /// 32-byte sha256 of a file never matches a sha3-256, sha512/256 or authentihash value.
    pub fn is_content_digest(self) -> bool {
        matches!(
            self,
            HashAlgo::Md5
                | HashAlgo::Sha1
                | HashAlgo::Sha224
                | HashAlgo::Sha256
                | HashAlgo::Sha384
                | HashAlgo::Sha512
        )
    }

    /// The content digest written as `len` hex characters, if one exists (md5 for 32, ...).
    pub fn content_digest_for_hex_len(len: usize) -> Option<HashAlgo> {
        match len {
            32 => Some(HashAlgo::Md5),
            40 => Some(HashAlgo::Sha1),
            56 => Some(HashAlgo::Sha224),
            64 => Some(HashAlgo::Sha256),
            96 => Some(HashAlgo::Sha384),
            128 => Some(HashAlgo::Sha512),
            _ => None,
        }
    }
}

/// Splits a composite type such as `filename|sha256` or `ip-dst|port` into its halves.
pub fn composite_parts(type_name: &str) -> Option<(&str, &str)> {
    if type_name == "malware-sample" {
        return Some(("filename", "md5"));
    }
    type_name.split_once('|')
}

/// Returns the hash algorithm and the hash half of a hash-family value: the whole value
/// for `md5`, the right half for `filename|md5`, the md5 of a `malware-sample`.
pub fn hash_of<'a>(type_name: &str, value: &'a str) -> Option<(HashAlgo, &'a str)> {
    if let Some(algo) = HashAlgo::from_misp_type(type_name) {
        return Some((algo, value));
    }
    let (left, right) = composite_parts(type_name)?;
    if left != "filename" {
        return None;
    }
    let algo = HashAlgo::from_misp_type(right)?;
    let (_, hash) = value.rsplit_once('|')?;
    Some((algo, hash))
}

/// True for the hash family, its `filename|<hash>` composites and `malware-sample`.
pub fn is_hash_type(type_name: &str) -> bool {
    type_name == "malware-sample"
        || HashAlgo::from_misp_type(type_name).is_some()
        || type_name
            .strip_prefix("filename|")
            .is_some_and(|h| HashAlgo::from_misp_type(h).is_some())
}

/// Decodes the raw digest of a content-digest attribute, for the detection index.
/// `value` must already be normalised (lower-case hex of the right length).
pub fn content_digest(type_name: &str, value: &str) -> Option<(HashAlgo, Vec<u8>)> {
    let (algo, hash) = hash_of(type_name, value)?;
    if !algo.is_content_digest() {
        return None;
    }
    hex::decode(hash).ok().map(|bytes| (algo, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_hash_half() {
        let (algo, hash) = hash_of("filename|sha256", "a|b.exe|abcd").unwrap();
        assert_eq!(algo, HashAlgo::Sha256);
        assert_eq!(hash, "abcd");
        assert_eq!(
            hash_of("malware-sample", "x.exe|00").unwrap().0,
            HashAlgo::Md5
        );
        assert!(hash_of("ip-dst|port", "1.2.3.4|80").is_none());
    }

    #[test]
    fn hash_types() {
        for t in [
            "md5",
            "sha512/256",
            "filename|tlsh",
            "malware-sample",
            "telfhash",
        ] {
            assert!(is_hash_type(t), "{t}");
        }
        for t in [
            "filename",
            "x509-fingerprint-md5",
            "ip-src",
            "filename|port",
        ] {
            assert!(!is_hash_type(t), "{t}");
        }
    }

    #[test]
    fn only_content_digests_are_indexed() {
        let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(content_digest("sha256", sha256).unwrap().1.len(), 32);
        assert!(content_digest("sha3-256", sha256).is_none());
        assert!(content_digest("authentihash", sha256).is_none());
    }
}
