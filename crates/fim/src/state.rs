//! The recorded state of one monitored file: metadata from `stat` plus its digests.

use serde::{Deserialize, Serialize};

use crate::sys::fs::Stat;

/// Reason a file's digests were not computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashSkip {
    /// The file is larger than `max_file_bytes`.
    FileTooLarge,
    /// The file kept changing while it was read, so no consistent digest exists.
    ChangedDuringRead,
}

impl HashSkip {
    pub fn as_str(self) -> &'static str {
        match self {
            HashSkip::FileTooLarge => "file_too_large",
            HashSkip::ChangedDuringRead => "changed_during_read",
        }
    }

    pub fn from_str_opt(text: &str) -> Option<HashSkip> {
        match text {
            "file_too_large" => Some(HashSkip::FileTooLarge),
            "changed_during_read" => Some(HashSkip::ChangedDuringRead),
            _ => None,
        }
    }
}

/// Metadata and digests of a regular file at one point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    pub size: u64,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the Unix epoch; used to skip unchanged files.
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
    pub md5: Option<[u8; 16]>,
    pub sha1: Option<[u8; 20]>,
    pub sha256: Option<[u8; 32]>,
    pub hash_skipped: Option<HashSkip>,
}

impl FileState {
    /// Creates a state with the metadata of `stat` and no digests yet.
    pub fn from_stat(stat: &Stat) -> FileState {
        FileState {
            size: stat.size,
            perm: stat.perm,
            uid: stat.uid,
            gid: stat.gid,
            mtime_ns: stat.mtime_ns,
            ctime_ns: stat.ctime_ns,
            inode: stat.inode,
            dev: stat.dev,
            md5: None,
            sha1: None,
            sha256: None,
            hash_skipped: None,
        }
    }

    /// True when `stat` shows the same content, identity and attributes as this state, so
    /// the digests can be reused without reading the file.
    pub fn matches_stat(&self, stat: &Stat) -> bool {
        self.size == stat.size
            && self.mtime_ns == stat.mtime_ns
            && self.ctime_ns == stat.ctime_ns
            && self.inode == stat.inode
            && self.dev == stat.dev
            && self.perm == stat.perm
            && self.uid == stat.uid
            && self.gid == stat.gid
            && self.hash_skipped != Some(HashSkip::ChangedDuringRead)
    }
}

/// Formats permission bits the way `ls -l` does, without the type letter: `rwxr-xr--`,
/// with `s`/`S` for setuid and setgid and `t`/`T` for the sticky bit.
pub fn format_perm(perm: u32) -> String {
    let mut out = String::with_capacity(9);
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, (bit, set_exec, set_noexec)) in special.iter().enumerate() {
        let shift = 6 - 3 * i as u32;
        let bits = (perm >> shift) & 0o7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        out.push(match (perm & bit != 0, exec) {
            (true, true) => *set_exec,
            (true, false) => *set_noexec,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    out
}

/// Formats nanoseconds since the Unix epoch as RFC 3339 in UTC, to the second.
pub fn format_time_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    if secs < 0 {
        return "1970-01-01T00:00:00Z".to_string();
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perm_plain_and_special_bits() {
        assert_eq!(format_perm(0o644), "rw-r--r--");
        assert_eq!(format_perm(0o755), "rwxr-xr-x");
        assert_eq!(format_perm(0o4755), "rwsr-xr-x");
        assert_eq!(format_perm(0o2644), "rw-r-Sr--");
        assert_eq!(format_perm(0o1777), "rwxrwxrwt");
    }

    #[test]
    fn time_formats_utc_seconds() {
        assert_eq!(
            format_time_ns(1_600_000_000_123_456_789),
            "2020-09-13T12:26:40Z"
        );
    }
}
