//! Facts about the running host: boot id, effective uid, kernel limits, random bytes.

use std::fs;
use std::io::{self, Read};

/// Returns the kernel's boot id, a UUID that changes at every boot, or `None` without /proc.
pub fn boot_id() -> Option<String> {
    let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Returns the effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments and is always successful (POSIX).
    unsafe { libc::geteuid() }
}

/// `fs.inotify.max_user_watches`, the per-user inotify watch limit.
pub fn max_user_watches() -> Option<u64> {
    read_sysctl("/proc/sys/fs/inotify/max_user_watches")
}

/// `fs.inotify.max_queued_events`, the per-instance event queue length.
pub fn max_queued_events() -> Option<u64> {
    read_sysctl("/proc/sys/fs/inotify/max_queued_events")
}

fn read_sysctl(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Fills `buf` from the kernel's random source.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Ignores SIGIO for the whole process. The agent takes short file leases to see whether a
/// file is still being written. A writer that breaks such a lease makes the kernel send SIGIO,
/// and its default action would end the process.
pub fn ignore_sigio() {
    // SAFETY: installing SIG_IGN has no handler code to run and no memory to share.
    unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
}

/// Returns memory freed after a scan to the kernel (glibc's `malloc_trim`), so the resident
/// size at rest reflects the baseline rather than the scan's transient buffers.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; 0 keeps no padding.
    unsafe { libc::malloc_trim(0) };
}
