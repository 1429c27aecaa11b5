//! Opening and reading files for hashing: one reused buffer, no atime updates, no blocking opens.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{Advice, OFlags};

use crate::{Algorithms, Digests, MultiHasher, BUF_BYTES};

/// Opens `path` for reading and returns it with its metadata, or an `InvalidInput` error when
/// it is not a regular file.
///
/// The open never blocks on a FIFO or device, because of `O_NONBLOCK`, which regular-file reads
/// ignore. It leaves the access time alone where the kernel allows that (`O_NOATIME`, granted
/// to the file's owner and to root). Unless `follow_symlinks`, it fails on a symlink
/// (`O_NOFOLLOW`), so a file replaced by a link after a directory walk is not followed.
pub fn open_regular(path: &Path, follow_symlinks: bool) -> io::Result<(File, Metadata)> {
    let mut flags = OFlags::NONBLOCK;
    if !follow_symlinks {
        flags |= OFlags::NOFOLLOW;
    }
    let open = |flags: OFlags| {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
    };
    let file = match open(flags | OFlags::NOATIME) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => open(flags)?,
        result => result?,
    };

    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if metadata.len() > BUF_BYTES as u64 {
        // Read-ahead hint for large files; it only matters when the file is not cached, and
        // a failure changes nothing else.
        let _ = rustix::fs::fadvise(&file, 0, None, Advice::Sequential);
    }
    Ok((file, metadata))
}

/// Hashes one file after another through the same read buffer.
pub struct FileHasher {
    buf: Box<[u8]>,
}

impl Default for FileHasher {
    fn default() -> Self {
        FileHasher {
            buf: vec![0u8; BUF_BYTES].into_boxed_slice(),
        }
    }
}

impl FileHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens `path` with [`open_regular`], following symlinks, and hashes its content.
    pub fn hash_file(&mut self, path: &Path, algorithms: Algorithms) -> io::Result<Digests> {
        let (file, _) = open_regular(path, true)?;
        self.hash_reader(file, algorithms)
    }

    /// Hashes everything `reader` yields, in one pass.
    pub fn hash_reader(
        &mut self,
        mut reader: impl Read,
        algorithms: Algorithms,
    ) -> io::Result<Digests> {
        let mut hasher = MultiHasher::new(algorithms);
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&self.buf[..n]);
        }
        Ok(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn hash_file_reads_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let data: Vec<u8> = (0..(BUF_BYTES * 2 + 5) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();

        let from_file = FileHasher::new().hash_file(&path, Algorithms::ALL).unwrap();
        let from_memory = crate::hash_reader(&data[..], Algorithms::ALL).unwrap();
        assert_eq!(from_file, from_memory);
        assert_eq!(from_file.bytes, data.len() as u64);
    }

    #[test]
    fn directory_is_not_regular() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_regular(dir.path(), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn fifo_is_rejected_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        let err = open_regular(&fifo, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn symlink_followed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.bin");
        let link = dir.path().join("link.bin");
        std::fs::write(&target, b"abc").unwrap();
        symlink(&target, &link).unwrap();

        assert!(open_regular(&link, false).is_err());
        let (_, metadata) = open_regular(&link, true).unwrap();
        assert_eq!(metadata.len(), 3);
    }

    #[test]
    fn missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = crate::hash_file(&dir.path().join("absent"), Algorithms::ALL).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
