//! File system calls of the agent: stat, directory listing, opening for hashing, rename.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Type of a directory entry, without following a final symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn of(file_type: fs::FileType) -> Kind {
        if file_type.is_file() {
            Kind::File
        } else if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        }
    }
}

/// The `stat(2)` fields the agent records; times in nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub size: u64,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
}

impl Stat {
    fn from_metadata(m: &fs::Metadata) -> Stat {
        Stat {
            kind: Kind::of(m.file_type()),
            size: m.size(),
            perm: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
            inode: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
        }
    }

    /// True when content may differ: size, mtime, ctime or identity moved.
    pub fn content_may_differ(&self, other: &Stat) -> bool {
        self.size != other.size
            || self.mtime_ns != other.mtime_ns
            || self.ctime_ns != other.ctime_ns
            || self.inode != other.inode
            || self.dev != other.dev
    }
}

/// `lstat(2)`: does not follow a final symlink.
pub fn lstat(path: &Path) -> io::Result<Stat> {
    fs::symlink_metadata(path).map(|m| Stat::from_metadata(&m))
}

/// `stat(2)`: follows symlinks.
pub fn stat(path: &Path) -> io::Result<Stat> {
    fs::metadata(path).map(|m| Stat::from_metadata(&m))
}

/// One entry of a directory listing, typed from `d_type` where the file system provides it.
pub struct DirEntry {
    pub path: PathBuf,
    pub name: OsString,
    pub kind: Kind,
}

/// Lists a directory. Entries that vanish while listing are skipped.
pub fn read_dir(dir: &Path) -> io::Result<Vec<DirEntry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let kind = match entry.file_type() {
            Ok(t) => Kind::of(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        entries.push(DirEntry {
            path: entry.path(),
            name: entry.file_name(),
            kind,
        });
    }
    Ok(entries)
}

/// Resolves symlinks, `.` and `..` (`realpath(3)`).
pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    fs::canonicalize(path)
}

/// Reason a path could not be opened for hashing.
#[derive(Debug)]
pub enum OpenFailure {
    /// The path no longer exists.
    Missing,
    /// A symlink (with follow off), directory, FIFO, socket or device.
    NotRegular,
    Io(io::Error),
}

/// A regular file opened read-only for hashing, with the `fstat` taken right after opening.
pub struct OpenedFile {
    file: File,
    pub stat: Stat,
}

/// Opens `path` for reading without blocking on FIFOs and, when `follow` is false, without
/// following a final symlink. Uses `O_NOATIME` where the caller may, so hashing leaves atime alone.
pub fn open_regular(path: &Path, follow: bool) -> Result<OpenedFile, OpenFailure> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOATIME;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // O_NOATIME is only allowed to the file's owner or CAP_FOWNER.
            OpenOptions::new()
                .read(true)
                .custom_flags(flags & !libc::O_NOATIME)
                .open(path)
        }
        other => other,
    };
    let file = file.map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => OpenFailure::Missing,
        Some(libc::ELOOP) | Some(libc::ENXIO) | Some(libc::EISDIR) => OpenFailure::NotRegular,
        _ => OpenFailure::Io(e),
    })?;
    let stat = file
        .metadata()
        .map_err(OpenFailure::Io)
        .map(|m| Stat::from_metadata(&m))?;
    if stat.kind != Kind::File {
        return Err(OpenFailure::NotRegular);
    }
    Ok(OpenedFile { file, stat })
}

impl OpenedFile {
    /// Takes a fresh `fstat` of the open file.
    pub fn fstat(&self) -> io::Result<Stat> {
        self.file.metadata().map(|m| Stat::from_metadata(&m))
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    pub fn rewind(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0)).map(|_| ())
    }

    /// Checks whether any process has this file open for writing, by trying to take a read
    /// lease (`F_SETLEASE`), which the kernel rejects while a writer exists. Returns `None`
    /// when this process may not take leases on the file (it needs ownership or `CAP_LEASE`).
    ///
    /// The lease is released at once. A writer opening the file in that window waits
    /// microseconds and makes the kernel send SIGIO, which [`crate::sys::host::ignore_sigio`]
    /// turns off.
    pub fn has_writers(&self) -> Option<bool> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.file);
        // SAFETY: F_SETLEASE takes an integer argument; `fd` is open for the whole call.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
        if rc == 0 {
            // SAFETY: as above; releases the lease taken just before.
            unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
            return Some(false);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => Some(true),
            _ => None,
        }
    }

    /// Sets the permission bits of the open file (`fchmod`).
    pub fn set_mode(&self, mode: u32) -> io::Result<()> {
        self.file.set_permissions(Permissions::from_mode(mode))
    }

    /// Gives the open file to root:root (`fchown`); needs privileges.
    pub fn chown_root(&self) -> io::Result<()> {
        std::os::unix::fs::fchown(&self.file, Some(0), Some(0))
    }

    /// Copies the whole file into a new file `dest` created with `mode` (fails if it exists).
    pub fn copy_to_new(&mut self, dest: &Path, mode: u32) -> io::Result<()> {
        self.rewind()?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(dest)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
        out.sync_all()
    }
}

/// Creates `dir` and its missing parents with mode 0700 (before the umask); existing
/// directories are left as they are.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` (and missing parents) and forces its mode to 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing `to`.
///
/// Uses `renameat2(RENAME_NOREPLACE)`; on file systems without it, falls back to
/// `link` + `unlink`, which also never replaces.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c_from = c_path(from)?;
    let c_to = c_path(to)?;
    // SAFETY: both strings are valid and NUL-terminated for the duration of the call;
    // AT_FDCWD makes relative paths resolve against the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            c_from.as_ptr(),
            libc::AT_FDCWD,
            c_to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EINVAL) {
        return Err(err);
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

pub fn remove_file(path: &Path) -> io::Result<()> {
    fs::remove_file(path)
}

/// True when `err` is `EXDEV` (rename across file systems).
pub fn is_cross_device(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EXDEV)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_regular_rejects_symlink_without_follow() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            open_regular(&link, false),
            Err(OpenFailure::NotRegular)
        ));
        assert!(open_regular(&link, true).is_ok());
    }

    #[test]
    fn open_regular_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            open_regular(&missing, false),
            Err(OpenFailure::Missing)
        ));
    }

    #[test]
    fn open_regular_rejects_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !status.map(|s| s.success()).unwrap_or(false) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        assert!(matches!(
            open_regular(&fifo, false),
            Err(OpenFailure::NotRegular)
        ));
    }
}
