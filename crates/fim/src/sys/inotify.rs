//! A non-blocking inotify instance: add and remove watches, read raw events.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use libc::{
    IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_DONT_FOLLOW, IN_IGNORED,
    IN_ISDIR, IN_MASK_ADD, IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE_SELF, IN_ONLYDIR, IN_Q_OVERFLOW,
    IN_UNMOUNT,
};

/// Size of the fixed part of `struct inotify_event` (wd, mask, cookie, len).
const HEADER_BYTES: usize = 16;

/// Read buffer: room for about 2,000 events with short names per `read`.
const READ_BUF_BYTES: usize = 64 * 1024;

/// One event as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Watch descriptor, or -1 for `IN_Q_OVERFLOW`.
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    /// Entry name inside the watched directory; `None` for events on the directory itself.
    pub name: Option<OsString>,
}

impl RawEvent {
    pub fn has(&self, bits: u32) -> bool {
        self.mask & bits != 0
    }
}

/// An inotify file descriptor opened with `IN_NONBLOCK | IN_CLOEXEC`.
pub struct Inotify {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Inotify {
    pub fn new() -> io::Result<Inotify> {
        // SAFETY: inotify_init1 takes no pointers; a negative return is an error reported via errno.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Inotify {
            fd,
            buf: vec![0; READ_BUF_BYTES],
        })
    }

    /// Adds or extends a watch on `path`; returns its watch descriptor.
    ///
    /// Fails with `ENOSPC` when `fs.inotify.max_user_watches` is reached.
    pub fn add_watch(&self, path: &Path, mask: u32) -> io::Result<i32> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c_path.as_ptr(), mask) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(wd)
    }

    /// Removes a watch. The kernel then queues an `IN_IGNORED` event for it.
    pub fn rm_watch(&self, wd: i32) -> io::Result<()> {
        // SAFETY: plain integer arguments; errors come back through errno.
        let rc = unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads every queued event into `out` without blocking; returns how many were read.
    pub fn read_into(&mut self, out: &mut VecDeque<RawEvent>) -> io::Result<usize> {
        let mut total = 0;
        loop {
            // SAFETY: the pointer and length describe `self.buf`, which is valid for writes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => return Ok(total),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            }
            if n == 0 {
                return Ok(total);
            }
            total += parse_events(&self.buf[..n as usize], out);
        }
    }
}

impl AsRawFd for Inotify {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Splits a buffer filled by `read(2)` into events; returns how many it appended.
fn parse_events(buf: &[u8], out: &mut VecDeque<RawEvent>) -> usize {
    let mut count = 0;
    let mut pos = 0;
    while pos + HEADER_BYTES <= buf.len() {
        let word = |i: usize| {
            let start = pos + 4 * i;
            u32::from_ne_bytes([buf[start], buf[start + 1], buf[start + 2], buf[start + 3]])
        };
        let (wd, mask, cookie, len) = (word(0) as i32, word(1), word(2), word(3) as usize);
        let name_start = pos + HEADER_BYTES;
        let name_end = (name_start + len).min(buf.len());
        let raw_name = &buf[name_start..name_end];
        let trimmed = match raw_name.iter().position(|&b| b == 0) {
            Some(nul) => &raw_name[..nul],
            None => raw_name,
        };
        let name = (!trimmed.is_empty()).then(|| OsStr::from_bytes(trimmed).to_os_string());
        out.push_back(RawEvent {
            wd,
            mask,
            cookie,
            name,
        });
        count += 1;
        pos = name_start + len;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(wd: i32, mask: u32, name: &[u8], padded: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&wd.to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&(padded as u32).to_ne_bytes());
        let mut n = name.to_vec();
        n.resize(padded, 0);
        v.extend_from_slice(&n);
        v
    }

    #[test]
    fn parse_two_events() {
        let mut buf = encode(3, IN_CLOSE_WRITE, b"a.txt", 16);
        buf.extend(encode(-1, IN_Q_OVERFLOW, b"", 0));
        let mut out = VecDeque::new();
        assert_eq!(parse_events(&buf, &mut out), 2);
        assert_eq!(out[0].wd, 3);
        assert_eq!(out[0].name.as_deref(), Some(OsStr::new("a.txt")));
        assert!(out[1].has(IN_Q_OVERFLOW));
        assert_eq!(out[1].name, None);
    }

    #[test]
    fn watch_reports_close_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut inotify = Inotify::new().unwrap();
        let wd = inotify.add_watch(dir.path(), IN_CLOSE_WRITE).unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let mut out = VecDeque::new();
        inotify.read_into(&mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].wd, wd);
        assert_eq!(out[0].name.as_deref(), Some(OsStr::new("f")));
    }
}
