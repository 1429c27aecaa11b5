//! Reads one file's current state: open, `fstat`, hash in one pass, `fstat` again.
//!
//! When the second `fstat` shows that the file changed during the read, the file is hashed
//! again, so a digest always belongs to one version of the content.

use std::io;
use std::path::Path;

use hashing::{Algorithms, MultiHasher};

use crate::state::{FileState, HashSkip};
use crate::sys::fs::{self, OpenFailure, OpenedFile};

/// Read buffer per hashing thread.
pub(crate) const READ_BUF_BYTES: usize = 256 * 1024;

/// How many times a file that changes during the read is hashed before giving up.
const MAX_ATTEMPTS: usize = 4;

/// Digests and size limit for probing a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProbeOptions {
    pub algorithms: Algorithms,
    pub max_file_bytes: u64,
    pub follow_symlinks: bool,
}

/// Result of probing one path.
#[derive(Debug)]
pub(crate) enum Probe {
    File(FileState),
    /// Gone before it could be opened.
    Missing,
    /// A directory, symlink (with follow off), FIFO, socket or device.
    NotRegular,
    /// Changed during every read attempt; carries the last metadata seen.
    Unstable(FileState),
}

/// Probes `path` with a caller-owned read buffer (kept between calls to avoid allocations).
pub(crate) fn probe(path: &Path, opts: &ProbeOptions, buf: &mut Vec<u8>) -> io::Result<Probe> {
    let mut file = match fs::open_regular(path, opts.follow_symlinks) {
        Ok(f) => f,
        Err(OpenFailure::Missing) => return Ok(Probe::Missing),
        Err(OpenFailure::NotRegular) => return Ok(Probe::NotRegular),
        Err(OpenFailure::Io(e)) => return Err(e),
    };
    if file.stat.size > opts.max_file_bytes {
        let mut state = FileState::from_stat(&file.stat);
        state.hash_skipped = Some(HashSkip::FileTooLarge);
        return Ok(Probe::File(state));
    }
    if opts.algorithms.is_empty() {
        return Ok(Probe::File(FileState::from_stat(&file.stat)));
    }
    if buf.len() < READ_BUF_BYTES {
        buf.resize(READ_BUF_BYTES, 0);
    }

    let mut before = file.stat;
    for _ in 0..MAX_ATTEMPTS {
        let state = hash_open_file(&mut file, before, opts.algorithms, buf)?;
        let after = file.fstat()?;
        if !after.content_may_differ(&before) && state.size == after.size {
            return Ok(Probe::File(state));
        }
        if after.size > opts.max_file_bytes {
            let mut state = FileState::from_stat(&after);
            state.hash_skipped = Some(HashSkip::FileTooLarge);
            return Ok(Probe::File(state));
        }
        before = after;
        file.rewind()?;
    }
    let mut state = FileState::from_stat(&before);
    state.hash_skipped = Some(HashSkip::ChangedDuringRead);
    Ok(Probe::Unstable(state))
}

/// Checks whether some process has the file at `path` open for writing; `None` when unknown
/// (see [`crate::sys::fs::OpenedFile::has_writers`]).
pub(crate) fn has_writers(path: &Path, follow_symlinks: bool) -> Option<bool> {
    fs::open_regular(path, follow_symlinks).ok()?.has_writers()
}

/// Hashes the open file in one read pass, feeding every requested digest from one buffer.
///
/// Stops at the size `fstat` reported; growth past it shows up in the second `fstat`.
fn hash_open_file(
    file: &mut OpenedFile,
    stat: fs::Stat,
    algorithms: Algorithms,
    buf: &mut [u8],
) -> io::Result<FileState> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut left = stat.size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let digests = hasher.finish();
    let mut state = FileState::from_stat(&stat);
    state.size = digests.bytes;
    state.md5 = digests.md5;
    state.sha1 = digests.sha1;
    state.sha256 = digests.sha256;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(max: u64) -> ProbeOptions {
        ProbeOptions {
            algorithms: Algorithms::ALL,
            max_file_bytes: max,
            follow_symlinks: false,
        }
    }

    #[test]
    fn probe_hashes_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        let Probe::File(state) = probe(&path, &opts(1 << 20), &mut Vec::new()).unwrap() else {
            panic!("expected a file");
        };
        assert_eq!(state.size, 3);
        assert_eq!(
            hex::encode(state.sha256.unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(state.md5.unwrap()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(state.hash_skipped, None);
    }

    #[test]
    fn probe_skips_hash_above_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![7u8; 2048]).unwrap();
        let Probe::File(state) = probe(&path, &opts(1024), &mut Vec::new()).unwrap() else {
            panic!("expected a file");
        };
        assert_eq!(state.size, 2048);
        assert_eq!(state.sha256, None);
        assert_eq!(state.hash_skipped, Some(HashSkip::FileTooLarge));
    }

    #[test]
    fn probe_reports_missing_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        assert!(matches!(
            probe(&missing, &opts(1), &mut Vec::new()).unwrap(),
            Probe::Missing
        ));
        assert!(matches!(
            probe(dir.path(), &opts(1), &mut Vec::new()).unwrap(),
            Probe::NotRegular
        ));
    }
}
