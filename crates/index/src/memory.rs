//! Allocation of the large lookup arrays, backed by huge pages where the kernel allows it.
//!
//! A lookup in a large index touches one random cache line. With 4 KiB pages it also misses
//! the TLB, which about doubles its cost; 2 MiB pages keep far more of the index in the TLB.

/// Arrays below this size stay on ordinary pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Allocates `len` copies of `value`. Large arrays are advised to use huge pages before the
/// first write, so that the page faults of that write map 2 MiB pages.
pub(crate) fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut items: Vec<T> = Vec::with_capacity(len);
    let bytes = len * std::mem::size_of::<T>();
    if bytes >= HUGE_PAGE_MIN_BYTES {
        advise_huge_pages(items.as_mut_ptr() as usize, bytes);
    }
    items.resize(len, value);
    items
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: usize, len: usize) {
    const PAGE: usize = 4096;
    let end = start + len;
    let aligned = start.next_multiple_of(PAGE);
    if aligned >= end {
        return;
    }
    // SAFETY: the range lies inside an allocation of the caller that nothing else uses yet,
    // starts on a page boundary as madvise requires, and MADV_HUGEPAGE changes only how pages
    // are backed, never their content. A failure (THP disabled) leaves ordinary pages, so its
    // result is ignored.
    unsafe {
        libc::madvise(
            aligned as *mut libc::c_void,
            end - aligned,
            libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: usize, _len: usize) {}
