//! One-pass md5, sha1 and sha256 of files and byte streams.
//!
//! Each digest is computed only when requested, and all requested digests are
//! fed from the same read buffer, so a file is read once whatever the set.
//! `sha1` and `sha2` select the CPU's SHA extensions at run time when present; MD5 has no such
//! extension and is the slowest of the three (see `md5.rs`). [`MultiHasher`] feeds each 64-byte
//! block to all requested algorithms before moving to the next one, so that the CPU runs the
//! SHA instructions while MD5 waits on its dependency chain.

mod file;
mod md5;
mod multi;

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

pub use file::{open_regular, FileHasher};
pub use multi::MultiHasher;

/// Read buffer size: large enough to amortise syscalls, small enough to stay in L2.
const BUF_BYTES: usize = 256 * 1024;

/// A set of digest algorithms to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Algorithms {
    pub md5: bool,
    pub sha1: bool,
    pub sha256: bool,
}

impl Algorithms {
    pub const ALL: Algorithms = Algorithms {
        md5: true,
        sha1: true,
        sha256: true,
    };
    pub const NONE: Algorithms = Algorithms {
        md5: false,
        sha1: false,
        sha256: false,
    };

    pub fn is_empty(self) -> bool {
        !(self.md5 || self.sha1 || self.sha256)
    }

    /// Algorithms in either set.
    pub fn union(self, other: Algorithms) -> Algorithms {
        Algorithms {
            md5: self.md5 || other.md5,
            sha1: self.sha1 || other.sha1,
            sha256: self.sha256 || other.sha256,
        }
    }

    /// Names of the selected algorithms, in the order md5, sha1, sha256.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            ("md5", self.md5),
            ("sha1", self.sha1),
            ("sha256", self.sha256),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
    }
}

/// Prints the names joined by commas, or `none`.
impl fmt::Display for Algorithms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.names().collect();
        f.write_str(&names.join(","))
    }
}

/// A comma-separated list of algorithm names that is not valid.
#[derive(Debug, thiserror::Error)]
#[error("unknown digest algorithm `{0}`: expected md5, sha1 or sha256, separated by commas")]
pub struct ParseAlgorithmsError(String);

/// Parses a comma-separated list such as `md5,sha256`; names are case-insensitive.
impl FromStr for Algorithms {
    type Err = ParseAlgorithmsError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut algorithms = Algorithms::NONE;
        for name in list.split(',').map(str::trim) {
            match name.to_ascii_lowercase().as_str() {
                "md5" => algorithms.md5 = true,
                "sha1" => algorithms.sha1 = true,
                "sha256" => algorithms.sha256 = true,
                _ => return Err(ParseAlgorithmsError(name.to_string())),
            }
        }
        Ok(algorithms)
    }
}

/// Raw digests of one input; a field is `None` when its algorithm was not requested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub md5: Option<[u8; 16]>,
    pub sha1: Option<[u8; 20]>,
    pub sha256: Option<[u8; 32]>,
    /// Number of bytes that were hashed.
    pub bytes: u64,
}

impl Digests {
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.map(hex::encode)
    }

    pub fn sha1_hex(&self) -> Option<String> {
        self.sha1.map(hex::encode)
    }

    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.map(hex::encode)
    }

    /// Returns the computed digests as `(algorithm name, raw bytes)`, in the order md5, sha1,
    /// sha256.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        let md5 = self.md5.as_ref().map(|d| ("md5", &d[..]));
        let sha1 = self.sha1.as_ref().map(|d| ("sha1", &d[..]));
        let sha256 = self.sha256.as_ref().map(|d| ("sha256", &d[..]));
        [md5, sha1, sha256].into_iter().flatten()
    }
}

/// Hashes everything `reader` yields with the requested algorithms.
pub fn hash_reader(reader: impl Read, algorithms: Algorithms) -> io::Result<Digests> {
    FileHasher::new().hash_reader(reader, algorithms)
}

/// Opens `path`, following symlinks, and hashes its whole content in one read pass.
/// Fails with `InvalidInput` when `path` is not a regular file. To hash many files, reuse a
/// [`FileHasher`] instead: it keeps its read buffer.
pub fn hash_file(path: &Path, algorithms: Algorithms) -> io::Result<Digests> {
    FileHasher::new().hash_file(path, algorithms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_digests() {
        let d = hash_reader(&b""[..], Algorithms::ALL).unwrap();
        assert_eq!(d.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            d.sha1_hex().unwrap(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            d.sha256_hex().unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.bytes, 0);
    }

    #[test]
    fn algorithms_parse_and_display() {
        let parsed: Algorithms = "md5, SHA256".parse().unwrap();
        assert_eq!(
            parsed,
            Algorithms {
                md5: true,
                sha1: false,
                sha256: true
            }
        );
        assert_eq!(parsed.to_string(), "md5,sha256");
        assert_eq!(Algorithms::ALL.to_string(), "md5,sha1,sha256");
        assert_eq!(Algorithms::NONE.to_string(), "none");
        let err = "md5,crc32".parse::<Algorithms>().unwrap_err();
        assert!(err.to_string().contains("`crc32`"), "{err}");
    }

    #[test]
    fn digests_iter_lists_computed_only() {
        let algorithms = Algorithms {
            md5: true,
            sha1: false,
            sha256: true,
        };
        let d = hash_reader(&b"abc"[..], algorithms).unwrap();
        let names: Vec<&str> = d.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["md5", "sha256"]);
        assert_eq!(d.iter().next().unwrap().1, &d.md5.unwrap()[..]);
    }

    #[test]
    fn multi_hasher_matches_one_shot_across_buffer_sizes() {
        let data: Vec<u8> = (0..(3 * BUF_BYTES + 17) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        let whole = hash_reader(&data[..], Algorithms::ALL).unwrap();
        let mut hasher = MultiHasher::new(Algorithms::ALL);
        for chunk in data.chunks(1000) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.finish(), whole);
        assert_eq!(whole.bytes, data.len() as u64);
        let expected: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&data).into();
        assert_eq!(whole.sha256, Some(expected));
    }

    #[test]
    fn only_requested_digests() {
        let algorithms = Algorithms {
            md5: false,
            sha1: false,
            sha256: true,
        };
        let d = hash_reader(&b"abc"[..], algorithms).unwrap();
        assert!(d.md5.is_none());
        assert!(d.sha1.is_none());
        assert_eq!(
            d.sha256_hex().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
