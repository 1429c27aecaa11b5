//! Allocation of the large lookup arrays, backed by huge pages where the kernel allows it.
//!
//! A lookup in a large index touches two random addresses. With 4 KiB pages each one also
//! misses the TLB, which about doubles its cost; 2 MiB pages keep the whole index in the TLB.

/// Arrays below this size stay on ordinary pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Allocates `len` zeroed words. Large arrays are allocated untouched by the kernel, so
/// advising huge pages before the first write lets the page faults map 2 MiB pages.
pub(crate) fn zeroed_words(len: usize) -> Vec<u32> {
    let mut words = vec![0u32; len];
    if len * 4 >= HUGE_PAGE_MIN_BYTES {
        advise_huge_pages(&mut words);
    }
    words
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(words: &mut [u32]) {
    const PAGE: usize = 4096;
    let start = words.as_mut_ptr() as usize;
    let end = start + words.len() * 4;
    let aligned = start.next_multiple_of(PAGE);
    if aligned >= end {
        return;
    }
    // SAFETY: the range lies inside the live allocation `words`, starts on a page boundary as
    // madvise requires, and MADV_HUGEPAGE changes only how pages are backed, never their
    // content. A failure (THP disabled) leaves ordinary pages, so its result is ignored.
    unsafe {
        libc::madvise(
            aligned as *mut libc::c_void,
            end - aligned,
            libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_words: &mut [u32]) {}
