//! The mount table (`/proc/self/mountinfo`), to find the file system type of a directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Mounted file systems, looked up by device number or, failing that, by longest mount point.
#[derive(Debug, Default, Clone)]
pub struct MountTable {
    by_dev: HashMap<(u64, u64), String>,
    /// (mount point, type), longest mount point first.
    by_path: Vec<(PathBuf, String)>,
}

impl MountTable {
    /// Reads the current process's mount table.
    pub fn read() -> io::Result<MountTable> {
        Ok(MountTable::parse(&fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }

    /// Parses mountinfo text (see proc(5)): field 3 is `major:minor`, field 5 the mount
    /// point, and the first field after the `-` separator the file system type.
    pub fn parse(text: &str) -> MountTable {
        let mut table = MountTable::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(dev), Some(point), Some(fstype)) =
                (fields.get(2), fields.get(4), fields.get(sep + 1))
            else {
                continue;
            };
            if let Some((major, minor)) = dev.split_once(':') {
                if let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) {
                    table.by_dev.insert((major, minor), fstype.to_string());
                }
            }
            table.by_path.push((unescape(point), fstype.to_string()));
        }
        table
            .by_path
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
        table
    }

    /// Returns the file system type of `path`, whose `st_dev` is `dev`.
    pub fn fs_type(&self, path: &Path, dev: u64) -> Option<&str> {
        if let Some(t) = self.by_dev.get(&split_dev(dev)) {
            return Some(t);
        }
        self.by_path
            .iter()
            .find(|(point, _)| path.starts_with(point))
            .map(|(_, t)| t.as_str())
    }
}

/// Splits a Linux `dev_t` into (major, minor), as glibc's `gnu_dev_major/minor` encode it.
fn split_dev(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Decodes the octal escapes (`\040` for a space) that mountinfo uses in paths.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            let parsed = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(v) = parsed {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
24 22 0:5 / /dev rw shared:3 - devtmpfs udev rw
30 22 0:40 / /mnt/my\\040share rw - nfs4 srv:/x rw
";

    #[test]
    fn type_by_device_number() {
        let table = MountTable::parse(SAMPLE);
        // 0:21 encoded as glibc dev_t
        assert_eq!(table.fs_type(Path::new("/proc/1"), 21), Some("proc"));
    }

    #[test]
    fn type_by_longest_mount_point() {
        let table = MountTable::parse(SAMPLE);
        let unknown_dev = 0xdead_beef_0000;
        assert_eq!(
            table.fs_type(Path::new("/mnt/my share/a"), unknown_dev),
            Some("nfs4")
        );
        assert_eq!(
            table.fs_type(Path::new("/dev/pts"), unknown_dev),
            Some("devtmpfs")
        );
        assert_eq!(table.fs_type(Path::new("/etc"), unknown_dev), Some("ext4"));
    }

    #[test]
    fn split_dev_matches_glibc_encoding() {
        // makedev(253, 1) with glibc's encoding
        assert_eq!(split_dev(0xfd01), (253, 1));
    }
}
