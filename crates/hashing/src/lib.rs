//! One-pass md5, sha1 and sha256 of files and byte streams.
//!
//! Each digest is computed only when requested, and all requested digests are
//! fed from the same read buffer, so a file is read once whatever the set.
//! `sha1` and `sha2` select the CPU's SHA extensions at run time when present.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use md5::Digest as _;

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
    pub const ALL: Algorithms = Algorithms { md5: true, sha1: true, sha256: true };
    pub const NONE: Algorithms = Algorithms { md5: false, sha1: false, sha256: false };

    pub fn is_empty(self) -> bool {
        !(self.md5 || self.sha1 || self.sha256)
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
}

/// Incremental hasher for a chosen set of algorithms.
pub struct MultiHasher {
    md5: Option<md5::Md5>,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    bytes: u64,
}

impl MultiHasher {
    pub fn new(algorithms: Algorithms) -> Self {
        MultiHasher {
            md5: algorithms.md5.then(md5::Md5::new),
            sha1: algorithms.sha1.then(sha1::Sha1::new),
            sha256: algorithms.sha256.then(sha2::Sha256::new),
            bytes: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        self.bytes += data.len() as u64;
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: self.md5.map(|h| h.finalize().into()),
            sha1: self.sha1.map(|h| h.finalize().into()),
            sha256: self.sha256.map(|h| h.finalize().into()),
            bytes: self.bytes,
        }
    }
}

/// Hashes everything `reader` yields with the requested algorithms.
pub fn hash_reader(mut reader: impl Read, algorithms: Algorithms) -> io::Result<Digests> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut buf = vec![0u8; BUF_BYTES];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// Opens `path` and hashes its whole content in one read pass.
pub fn hash_file(path: &Path, algorithms: Algorithms) -> io::Result<Digests> {
    hash_reader(File::open(path)?, algorithms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_digests() {
        let d = hash_reader(&b""[..], Algorithms::ALL).unwrap();
        assert_eq!(d.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1_hex().unwrap(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            d.sha256_hex().unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.bytes, 0);
    }

    #[test]
    fn only_requested_digests() {
        let algorithms = Algorithms { md5: false, sha1: false, sha256: true };
        let d = hash_reader(&b"abc"[..], algorithms).unwrap();
        assert!(d.md5.is_none());
        assert!(d.sha1.is_none());
        assert_eq!(
            d.sha256_hex().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
