//! `iocwatch scan`: hash every file under the given paths and print those whose digest is a
//! detection indicator.
//!
//! Exit status follows clamscan: 0 when nothing matched and every file was read, 1 when at
//! least one file matched a detection indicator, 2 on errors. A file or directory that cannot
//! be read makes the status 2 unless something matched, because "clean" would then claim more
//! than was checked; a match takes precedence, as it is what the caller must act on. For the
//! same reason the status is 2 when files were found but none was read, because each was over
//! `--max-file-bytes`, and when a path given is a FIFO, socket or device.
//!
//! The intel store is opened read-only, so the user that scans needs only read access to it.

use std::borrow::Cow;
use std::error::Error as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hashing::Algorithms;
use intel::{Detector, Match, Store};
use scanner::{Event, Excludes, ScanOptions, ScannedFile, Summary};
use serde::Serialize;

use super::Global;

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files and folders to scan; folders are walked recursively
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Threads that walk and hash, at most 256; 0 means one per CPU
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = parse_threads)]
    pub threads: usize,

    /// Skip files larger than this many bytes (counted in the summary, never read)
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,

    /// Follow symlinks below the given paths (the paths themselves are always resolved)
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Leave out files and folders matching GLOB: a pattern without `/` matches the name
    /// (`*.iso`), one with `/` the whole path (`/proc/**`); repeatable
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Also compute these digests of every file (comma-separated: md5, sha1, sha256), besides
    /// those the intel needs; this measures hashing speed against other tools
    #[arg(long, value_name = "LIST")]
    pub digests: Option<Algorithms>,

    /// Also print matches that a warninglist suppresses; they never change the exit status
    #[arg(long)]
    pub show_suppressed: bool,

    /// Do not print the summary on stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// Maximum value of `--threads`. Each thread keeps a 256 KiB read buffer and a stack, so a
/// count like 100000 exhausts memory. The limit is an estimate of what a disk array can use.
const MAX_THREADS: usize = 256;

/// Parses `--threads`, rejecting counts that would only exhaust memory.
fn parse_threads(value: &str) -> Result<usize, String> {
    let threads: usize = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number of threads"))?;
    if threads > MAX_THREADS {
        return Err(format!(
            "{threads} is more than {MAX_THREADS} threads; use 0 for one per CPU"
        ));
    }
    Ok(threads)
}

/// One JSON line of output: the file, the digest that matched, then the indicator's fields.
#[derive(Serialize)]
struct MatchLine<'a> {
    /// The path as walked; bytes that are not UTF-8 are replaced by U+FFFD.
    path: Cow<'a, str>,
    size: u64,
    algorithm: &'static str,
    #[serde(flatten)]
    indicator: &'a Match,
}

/// Counts and the first output failure, shared by the scanning threads.
#[derive(Default)]
struct Tally {
    matched_files: AtomicU64,
    detections: AtomicU64,
    suppressed: AtomicU64,
    output_error: Mutex<Option<io::Error>>,
}

pub fn run(args: ScanArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let detector = load_detector(global)?;
    let load_time = started.elapsed();

    let needed = detector.needed_algorithms();
    if needed.is_empty() {
        tracing::warn!(data_dir = %global.data_dir.display(), "intel store has no digest indicators");
    }
    let options = ScanOptions {
        algorithms: needed.union(args.digests.unwrap_or(Algorithms::NONE)),
        threads: args.threads,
        follow_symlinks: args.follow_symlinks,
        max_file_bytes: args.max_file_bytes,
        excludes: Excludes::new(&args.exclude)?,
    };

    let tally = Tally::default();
    let summary = scanner::scan(&args.paths, &options, |event| match event {
        Event::Hashed(file) => report_file(file, &detector, &args, &tally),
        Event::TooLarge { path, size } => {
            tracing::debug!(path = %path.display(), size, "skipped file over --max-file-bytes");
        }
        Event::Error(error) => eprintln!("iocwatch: {}", error_chain(error)),
    });

    if let Some(error) = tally
        .output_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(error).context("failed to write the scan results to stdout");
    }
    if !args.quiet {
        print_summary(&detector, &summary, &tally, load_time, started.elapsed());
    }
    if summary.files == 0 && summary.too_large > 0 {
        eprintln!(
            "iocwatch: no file was read: all {} files found are over --max-file-bytes",
            summary.too_large
        );
    }
    Ok(exit_code(&summary, &tally))
}

fn load_detector(global: &Global) -> anyhow::Result<Detector> {
    let store = match Store::open_read_only(&global.data_dir) {
        Ok(store) => store,
        // The message already names the folder and the fix.
        Err(error @ intel::Error::NotFound { .. }) => return Err(error.into()),
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "failed to open the intel store in `{}`",
                    global.data_dir.display()
                )
            })
        }
    };
    Detector::load(&store).context("failed to load the detection indicators")
}

/// Looks up each digest of `file` and prints a line per match.
fn report_file(file: &ScannedFile, detector: &Detector, args: &ScanArgs, tally: &Tally) {
    let mut file_matched = false;
    for (algorithm, digest) in file.digests.iter() {
        for indicator in detector.lookup_digest(digest) {
            if indicator.is_detection() {
                file_matched = true;
                tally.detections.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.suppressed.fetch_add(1, Ordering::Relaxed);
                if !args.show_suppressed {
                    continue;
                }
            }
            let line = MatchLine {
                path: file.path.to_string_lossy(),
                size: file.size,
                algorithm,
                indicator: &indicator,
            };
            print_line(&line, tally);
        }
    }
    if file_matched {
        tally.matched_files.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes one JSON line to stdout; the first failure is kept and later lines are dropped.
fn print_line(line: &MatchLine<'_>, tally: &Tally) {
    let mut output_error = tally.output_error.lock().unwrap_or_else(|e| e.into_inner());
    if output_error.is_some() {
        return;
    }
    let mut stdout = io::stdout().lock();
    let result = serde_json::to_writer(&mut stdout, line)
        .map_err(io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(error) = result {
        *output_error = Some(error);
    }
}

fn exit_code(summary: &Summary, tally: &Tally) -> ExitCode {
    if tally.detections.load(Ordering::Relaxed) > 0 {
        ExitCode::from(1)
    } else if summary.errors > 0 || (summary.files == 0 && summary.too_large > 0) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Formats an error and its causes as `error: cause: cause`.
fn error_chain(error: &scanner::ScanError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn print_summary(
    detector: &Detector,
    summary: &Summary,
    tally: &Tally,
    load: Duration,
    total: Duration,
) {
    let stats = detector.stats();
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    eprintln!("\n----------- SCAN SUMMARY -----------");
    eprintln!("Known digests: {}", stats.digests);
    eprintln!("Scanned files: {}", summary.files);
    eprintln!("Data scanned: {:.2} MB", summary.bytes as f64 / 1e6);
    eprintln!("Matched files: {}", count(&tally.matched_files));
    eprintln!("Matches: {}", count(&tally.detections));
    eprintln!("Suppressed matches: {}", count(&tally.suppressed));
    eprintln!("Skipped (over --max-file-bytes): {}", summary.too_large);
    eprintln!("Skipped (not regular files): {}", summary.not_regular);
    eprintln!("Errors: {}", summary.errors);
    eprintln!("Intel load time: {:.3} sec", load.as_secs_f64());
    eprintln!("Time: {:.3} sec", total.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_accepts_zero_and_the_maximum() {
        assert_eq!(parse_threads("0"), Ok(0));
        assert_eq!(parse_threads("256"), Ok(MAX_THREADS));
    }

    #[test]
    fn threads_rejects_counts_over_the_maximum() {
        let error = parse_threads("100000").unwrap_err();

        assert!(error.contains("more than 256"), "{error}");
    }

    #[test]
    fn threads_rejects_non_numbers() {
        assert!(parse_threads("-1").is_err());
        assert!(parse_threads("many").is_err());
    }
}
