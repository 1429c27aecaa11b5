//! Parallel directory walk that hashes every regular file in one read pass.
//!
//! [`scan`] walks the given roots on several threads with the `ignore` crate's parallel walker,
//! all of its ignore-file filters turned off. It opens each regular file, hashes it with the
//! requested algorithms and hands the result to a callback on the walking thread. Symlinks are
//! not followed unless asked (the roots themselves are always resolved, like `find -H`), and FIFOs, sockets and devices are passed over.

mod exclude;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hashing::{Algorithms, Digests, FileHasher};
use ignore::{WalkBuilder, WalkState};

pub use exclude::{ExcludeError, Excludes};

/// Settings of a scan: the digests to compute and the entries to walk.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Digests to compute for each file; when empty, files are counted but not read.
    pub algorithms: Algorithms,
    /// Walking and hashing threads; 0 means one per available CPU.
    pub threads: usize,
    /// Follow symlinks to files and directories; symlink loops are then reported as errors.
    pub follow_symlinks: bool,
    /// Files larger than this are skipped without being read.
    pub max_file_bytes: Option<u64>,
    /// Files and directories to leave out; excluded directories are not descended into.
    pub excludes: Excludes,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            algorithms: Algorithms::ALL,
            threads: 0,
            follow_symlinks: false,
            max_file_bytes: None,
            excludes: Excludes::default(),
        }
    }
}

/// A regular file that was read and hashed.
#[derive(Debug)]
pub struct ScannedFile {
    pub path: PathBuf,
    /// Size from `fstat` when the file was opened.
    pub size: u64,
    pub digests: Digests,
}

/// Notification passed to the callback of [`scan`], once per file or error.
#[derive(Debug)]
pub enum Event<'a> {
    Hashed(&'a ScannedFile),
    /// A file larger than [`ScanOptions::max_file_bytes`], left unread.
    TooLarge {
        path: &'a Path,
        size: u64,
    },
    Error(&'a ScanError),
}

/// A file or directory that could not be walked or read; the scan goes on without it.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("failed to walk {}", describe(.path.as_deref()))]
    Walk {
        path: Option<PathBuf>,
        source: ignore::Error,
    },
    #[error("failed to read `{}`", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A path given to [`scan`] that is a FIFO, socket or device, which a scan never reads.
    #[error("`{}` is not a regular file or folder: not scanned", .path.display())]
    NotRegular { path: PathBuf },
}

fn describe(path: Option<&Path>) -> String {
    path.map_or_else(|| "the tree".to_string(), |p| format!("`{}`", p.display()))
}

/// Counts of one scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Regular files that were read and hashed.
    pub files: u64,
    /// Bytes read from those files.
    pub bytes: u64,
    /// Files skipped for their size.
    pub too_large: u64,
    /// Entries below the roots passed over because they are neither regular files nor
    /// folders: FIFOs, sockets, devices, and symlinks when they are not followed.
    pub not_regular: u64,
    /// Entries that could not be walked or read.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
    too_large: AtomicU64,
    not_regular: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn summary(&self) -> Summary {
        Summary {
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
            not_regular: self.not_regular.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Walks `roots` in parallel and calls `on_event` for every regular file hashed, every file
/// skipped for its size and every error. `on_event` runs on the walking threads, concurrently.
/// Returns the counts once every thread is done. A root that is a file is hashed itself.
pub fn scan<F>(roots: &[PathBuf], options: &ScanOptions, on_event: F) -> Summary
where
    F: Fn(Event<'_>) + Sync,
{
    let Some((first, rest)) = roots.split_first() else {
        return Summary::default();
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    builder
        .standard_filters(false)
        .follow_links(options.follow_symlinks)
        .threads(threads);
    if !options.excludes.is_empty() {
        let excludes = options.excludes.clone();
        builder.filter_entry(move |entry| !excludes.is_match(entry.path()));
    }

    let counters = Counters::default();
    builder.build_parallel().run(|| {
        let mut hasher = FileHasher::new();
        let (counters, on_event) = (&counters, &on_event);
        Box::new(move |entry| {
            visit(entry, options, &mut hasher, counters, on_event);
            WalkState::Continue
        })
    });
    counters.summary()
}

fn visit<F>(
    entry: Result<ignore::DirEntry, ignore::Error>,
    options: &ScanOptions,
    hasher: &mut FileHasher,
    counters: &Counters,
    on_event: &F,
) where
    F: Fn(Event<'_>),
{
    let entry = match entry {
        Ok(entry) => entry,
        Err(source) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            let (path, source) = split_walk_error(source);
            on_event(Event::Error(&ScanError::Walk { path, source }));
            return;
        }
    };
    // Without following, symlinks report their own type and are passed over here.
    let file_type = entry.file_type();
    if !file_type.is_some_and(|t| t.is_file()) {
        if file_type.is_some_and(|t| t.is_dir()) {
            return;
        }
        if entry.depth() > 0 {
            counters.not_regular.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // The caller named this path, so passing it over in silence would claim a scan.
        counters.errors.fetch_add(1, Ordering::Relaxed);
        let path = entry.into_path();
        on_event(Event::Error(&ScanError::NotRegular { path }));
        return;
    }
    // Roots named by the caller are resolved even when symlinks are not followed below them.
    let follow = options.follow_symlinks || entry.depth() == 0;
    match hash_entry(entry.path(), follow, options, hasher) {
        Ok(Hashed::File(file)) => {
            counters.files.fetch_add(1, Ordering::Relaxed);
            counters
                .bytes
                .fetch_add(file.digests.bytes, Ordering::Relaxed);
            on_event(Event::Hashed(&file));
        }
        Ok(Hashed::TooLarge(size)) => {
            counters.too_large.fetch_add(1, Ordering::Relaxed);
            on_event(Event::TooLarge {
                path: entry.path(),
                size,
            });
        }
        Err(source) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            let path = entry.into_path();
            on_event(Event::Error(&ScanError::Read { path, source }));
        }
    }
}

enum Hashed {
    File(ScannedFile),
    TooLarge(u64),
}

fn hash_entry(
    path: &Path,
    follow_symlinks: bool,
    options: &ScanOptions,
    hasher: &mut FileHasher,
) -> io::Result<Hashed> {
    let (file, metadata) = hashing::open_regular(path, follow_symlinks)?;
    let size = metadata.len();
    if options.max_file_bytes.is_some_and(|max| size > max) {
        return Ok(Hashed::TooLarge(size));
    }
    let digests = if options.algorithms.is_empty() {
        Digests {
            bytes: 0,
            ..Digests::default()
        }
    } else {
        hasher.hash_reader(file, options.algorithms)?
    };
    Ok(Hashed::File(ScannedFile {
        path: path.to_path_buf(),
        size,
        digests,
    }))
}

/// Splits an `ignore` error into the path it is about and the bare cause, so that the path is
/// not printed twice.
fn split_walk_error(error: ignore::Error) -> (Option<PathBuf>, ignore::Error) {
    match error {
        ignore::Error::WithPath { path, err } => (Some(path), *err),
        ignore::Error::WithDepth { err, .. } => split_walk_error(*err),
        ignore::Error::Loop { ref child, .. } => (Some(child.clone()), error),
        other => (None, other),
    }
}

#[cfg(test)]
mod tests;
