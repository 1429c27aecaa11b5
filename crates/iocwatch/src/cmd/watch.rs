//! `iocwatch watch DIR...`: the agent on this host with the local intel store, printing an
//! alert line for every file whose digest the intel lists.
//!
//! Existing files are checked at start, then every file added or modified. The baseline
//! lives in memory only; stop with Ctrl-C.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use fim::{
    Agent, ChannelSink, Config, DatabaseLocation, Event, EventBody, FileEvent, FileEventKind,
};
use intel::{Detector, Match, Store};
use serde::Serialize;

use super::Global;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Folders to watch, with everything below them
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Also print every file event and notice as a JSON line, not only alerts
    #[arg(long)]
    pub all_events: bool,

    /// Report files larger than this many bytes without hashing them
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
}

/// One alert line: the file event and the indicators its digests matched.
#[derive(Serialize)]
struct Alert<'a> {
    r#type: &'static str,
    timestamp: &'a str,
    path: &'a str,
    event: &'a Event,
    matches: Vec<Match>,
}

pub fn run(args: WatchArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let detector = load_detector(global)?;
    let dirs = resolve_dirs(&args.dirs)?;
    let mut config = Config::for_directories(&dirs, &global.data_dir)?;
    config.database = DatabaseLocation::Memory;
    config.silent_first_scan = false;
    if let Some(max) = args.max_file_bytes {
        config.max_file_bytes = max;
    }
    if let (Some(detector), false) = (&detector, args.all_events) {
        // Hash only what the intel can match.
        let needed = detector.needed_algorithms();
        if !needed.is_empty() {
            for dir in &mut config.directories {
                (dir.check.md5, dir.check.sha1, dir.check.sha256) =
                    (needed.md5, needed.sha1, needed.sha256);
            }
        }
    }

    let (tx, rx) = fim::crossbeam_channel::unbounded();
    let mut agent =
        Agent::new(config, Box::new(ChannelSink::new(tx))).context("failed to start watching")?;
    agent.set_memory_release(super::agent::release_allocator_memory);
    let (handle, thread) = agent.spawn();
    super::agent::stop_on_signal(handle)?;
    eprintln!(
        "iocwatch: watching {} folder(s); stop with Ctrl-C",
        dirs.len()
    );

    let mut out = io::stdout().lock();
    for event in rx {
        print_event(&mut out, &event, detector.as_ref(), args.all_events)?;
        // Flushed per event so that each alert shows up at once.
        out.flush()?;
    }
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the watcher thread panicked"))??;
    Ok(ExitCode::SUCCESS)
}

/// Resolves each folder to its canonical path. A path that is missing or not a folder is
/// an error, because the agent would otherwise wait for a folder to appear there.
fn resolve_dirs(dirs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut resolved = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let path = std::fs::canonicalize(dir).with_context(|| {
            format!(
                "failed to open the folder `{}`; check the path",
                dir.display()
            )
        })?;
        if !path.is_dir() {
            anyhow::bail!(
                "`{}` is not a folder; give the folder that contains it (`iocwatch scan` checks single files)",
                dir.display()
            );
        }
        resolved.push(path);
    }
    Ok(resolved)
}

/// Loads the intel index, or returns `None` (saying so on stderr) when the store is empty.
fn load_detector(global: &Global) -> anyhow::Result<Option<Detector>> {
    // Read-only: watching never creates, migrates or writes the store.
    let store = match Store::open_read_only(&global.data_dir) {
        Ok(store) => store,
        Err(error @ intel::Error::NotFound { .. }) => {
            eprintln!("iocwatch: {error}; no alerts can match");
            return Ok(None);
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "failed to open the intel store in `{}`",
                    global.data_dir.display()
                )
            })
        }
    };
    let detector = Detector::load(&store).context("failed to load the intel index")?;
    if detector.stats().indicators == 0 {
        eprintln!(
            "iocwatch: no intel in `{}`; no alerts can match (import some with `iocwatch intel import`)",
            global.data_dir.display()
        );
        return Ok(None);
    }
    Ok(Some(detector))
}

fn print_event(
    out: &mut impl Write,
    event: &Event,
    detector: Option<&Detector>,
    all_events: bool,
) -> anyhow::Result<()> {
    if all_events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    match &event.body {
        EventBody::File(file) => {
            let Some(detector) = detector else {
                return Ok(());
            };
            let matches = lookup(detector, file);
            if matches.iter().any(Match::is_detection) {
                let alert = Alert {
                    r#type: "alert",
                    timestamp: &event.timestamp,
                    path: &file.path,
                    event,
                    matches,
                };
                serde_json::to_writer(&mut *out, &alert)?;
                out.write_all(b"\n")?;
            }
        }
        EventBody::Notice(notice) => {
            if let Some(scan) = &notice.scan {
                eprintln!(
                    "iocwatch: {} scan: {} files, {} hashed, {} ms",
                    scan.kind.as_str(),
                    scan.files,
                    scan.hashed,
                    scan.duration_ms
                );
            } else if !all_events {
                eprintln!("iocwatch: {}", notice.message);
            }
        }
    }
    Ok(())
}

/// Matches for the file's current digests; deletions match nothing.
fn lookup(detector: &Detector, file: &FileEvent) -> Vec<Match> {
    if file.event == FileEventKind::Deleted {
        return Vec::new();
    }
    let mut matches: Vec<Match> = Vec::new();
    let digests = [&file.md5_after, &file.sha1_after, &file.sha256_after];
    for digest in digests.into_iter().flatten() {
        let Some(raw) = decode_hex(digest) else {
            continue;
        };
        for m in detector.lookup_digest(&raw) {
            if !matches
                .iter()
                .any(|seen| seen.attribute_uuid == m.attribute_uuid)
            {
                matches.push(m);
            }
        }
    }
    matches
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_dirs_rejects_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file.txt");
        std::fs::write(&file, b"x").unwrap();

        let error = resolve_dirs(&[file]).unwrap_err().to_string();

        assert!(error.contains("is not a folder"), "{error}");
    }

    #[test]
    fn resolve_dirs_rejects_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();

        let error = resolve_dirs(&[dir.path().join("missing")]).unwrap_err();

        assert!(
            error.to_string().contains("failed to open the folder"),
            "{error}"
        );
    }

    #[test]
    fn resolve_dirs_accepts_folders() {
        let dir = tempfile::tempdir().unwrap();

        let resolved = resolve_dirs(&[dir.path().to_path_buf()]).unwrap();

        assert_eq!(resolved, vec![dir.path().canonicalize().unwrap()]);
    }
}
