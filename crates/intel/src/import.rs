//! Imports files and folders into the store: each file is parsed and written in its own
//! transaction, so a file either lands whole or not at all.
//!
//! A folder with `manifest.json` is a MISP feed; any other folder is walked for `*.json`
//! files (every file when `--format` names a text format).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use misp::import::feed::{parse_hashes_csv, parse_manifest, value_md5s, ManifestEntry};
use misp::{CsvOptions, FileMeta, Format, Parsed, Rejected};

use crate::store::{Store, WriteSummary};
use crate::warninglist::Action;
use crate::Error;

/// Largest file read by default, in bytes; `--max-file-bytes` changes it.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Forces a format instead of detecting it from content.
    pub format: Option<Format>,
    pub csv: CsvOptions,
    /// Action for imported warninglists instead of their default.
    pub warninglist_action: Option<Action>,
    /// Fails a file, storing nothing from it, when any value in it is rejected.
    pub strict: bool,
    pub max_file_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: None,
            csv: CsvOptions::default(),
            warninglist_action: None,
            strict: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Contribution of one imported file.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    pub format: Option<Format>,
    pub write: WriteSummary,
    pub rejected: Vec<Rejected>,
    pub duplicates: usize,
    pub skipped: usize,
    /// Remarks worth showing, such as a stale feed `hashes.csv`.
    pub notes: Vec<String>,
}

/// The result of importing one file.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub outcome: Result<FileSummary, Error>,
}

/// Progress of an import, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The number of files about to be imported.
    Files(usize),
    /// A file is starting, with its size in bytes.
    Start(&'a Path, u64),
    /// A file is done.
    Done(&'a Path),
}

/// Imports a file or folder; returns one report per file.
pub fn import_path(
    store: &mut Store,
    path: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Vec<FileReport> {
    if path.is_dir() {
        let manifest = path.join("manifest.json");
        if manifest.is_file() || options.format == Some(Format::MispFeed) {
            return import_feed(store, path, options, progress);
        }
        let files = match list_files(path, options.format) {
            Ok(files) => files,
            Err(e) => {
                return vec![FileReport {
                    path: path.to_owned(),
                    outcome: Err(e),
                }]
            }
        };
        progress(Progress::Files(files.len()));
        return files
            .iter()
            .map(|f| import_file(store, f, options.format, options, progress))
            .collect();
    }
    progress(Progress::Files(1));
    vec![import_file(store, path, options.format, options, progress)]
}

fn import_file(
    store: &mut Store,
    path: &Path,
    format: Option<Format>,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> FileReport {
    let outcome =
        import_file_inner(store, path, format, options, progress, true).map(|(summary, parsed)| {
            drop_in_background(parsed);
            summary
        });
    FileReport {
        path: path.to_owned(),
        outcome,
    }
}

/// Frees a parsed file on a second thread. A million-attribute event is millions of
/// allocations, and freeing them one by one takes a noticeable part of an import.
fn drop_in_background(parsed: Parsed) {
    let spawned = std::thread::Builder::new()
        .name("intel-import-free".into())
        .spawn(move || drop(parsed));
    // When no thread can be started, the closure and `parsed` with it are dropped here.
    if let Err(error) = spawned {
        tracing::debug!(%error, "freeing the parsed file on this thread");
    }
}

/// Imports one file; `keep_sharing` keeps the sharing of MISP JSON events (event files),
/// unset for feeds.
fn import_file_inner(
    store: &mut Store,
    path: &Path,
    format: Option<Format>,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
    keep_sharing: bool,
) -> Result<(FileSummary, Parsed), Error> {
    let (bytes, meta) = read_limited(path, options.max_file_bytes)?;
    progress(Progress::Start(path, bytes.len() as u64));
    // The parser takes the buffer, so a MISP JSON event keeps it as its JSON, not a copy.
    let parsed = misp::import::parse_vec(bytes, format, &meta, &options.csv).map_err(|error| {
        Error::Parse {
            path: path.to_owned(),
            error,
        }
    })?;

    if options.strict && !parsed.rejected.is_empty() {
        let first = &parsed.rejected[0];
        return Err(Error::Invalid {
            path: path.to_owned(),
            message: format!(
                "{} values rejected (first: {}: `{}`: {}); nothing was stored because of \
                 --strict; fix them or import without --strict",
                parsed.rejected.len(),
                first.location,
                first.value,
                first.reason
            ),
        });
    }

    let mut write = store.write_parsed_with(
        &parsed,
        &path.display().to_string(),
        options.warninglist_action,
        keep_sharing,
    )?;
    progress(Progress::Done(path));
    tracing::info!(
        path = %path.display(),
        events = write.events_added + write.events_updated,
        attributes = write.attributes,
        rejected = parsed.rejected.len(),
        "intel file imported"
    );
    let notes = std::mem::take(&mut write.notes);
    let summary = FileSummary {
        format: parsed.format,
        write,
        rejected: parsed.rejected.clone(),
        duplicates: parsed.duplicates,
        skipped: parsed.skipped.len(),
        notes,
    };
    Ok((summary, parsed))
}

/// Reads a file after checking its size, and describes it for the list importers.
fn read_limited(path: &Path, limit: u64) -> Result<(Vec<u8>, FileMeta), Error> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_err)?;
    if metadata.len() > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            size: metadata.len(),
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let meta = FileMeta {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        source_key: absolute.display().to_string(),
        mtime,
    };
    Ok((bytes, meta))
}

/// Lists the files of a folder to import, sorted, skipping hidden entries.
fn list_files(dir: &Path, format: Option<Format>) -> Result<Vec<PathBuf>, Error> {
    let json_only = matches!(
        format,
        None | Some(Format::MispJson | Format::Stix2 | Format::Warninglist)
    );
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| Error::Read {
            path: current.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: current.clone(),
                source,
            })?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // Symbolic links to folders are not followed, so a link cycle cannot loop.
            let file_type = entry.file_type().map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            if file_type.is_dir() {
                pending.push(path);
            } else if !path.is_file() {
                continue;
            } else if !json_only
                || path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Imports a MISP feed folder: the events its manifest lists, skipping those not newer
/// than the stored copy, then checks `hashes.csv` against the imported values.
fn import_feed(
    store: &mut Store,
    dir: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Vec<FileReport> {
    let manifest_path = dir.join("manifest.json");
    let entries = match read_manifest(&manifest_path, options.max_file_bytes) {
        Ok(entries) => entries,
        Err(e) => {
            return vec![FileReport {
                path: manifest_path,
                outcome: Err(e),
            }]
        }
    };
    progress(Progress::Files(entries.len()));

    let mut reports = Vec::new();
    let mut md5s = HashSet::new();
    for entry in &entries {
        let path = dir.join(format!("{}.json", entry.uuid));
        reports.push(import_feed_event(
            store, &path, entry, options, progress, &mut md5s,
        ));
    }

    let hashes_path = dir.join("hashes.csv");
    if hashes_path.is_file() {
        let outcome = check_hashes_csv(&hashes_path, &md5s, options.max_file_bytes);
        reports.push(FileReport {
            path: hashes_path,
            outcome,
        });
    }
    reports
}

fn read_manifest(path: &Path, limit: u64) -> Result<Vec<ManifestEntry>, Error> {
    let (bytes, _) = read_limited(path, limit)?;
    let text = String::from_utf8_lossy(&bytes);
    parse_manifest(&text).map_err(|error| Error::Parse {
        path: path.to_owned(),
        error,
    })
}

fn import_feed_event(
    store: &mut Store,
    path: &Path,
    entry: &ManifestEntry,
    options: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
    md5s: &mut HashSet<String>,
) -> FileReport {
    if !path.is_file() {
        let message = format!(
            "manifest.json lists event {} but this file is missing",
            entry.uuid
        );
        return FileReport {
            path: path.to_owned(),
            outcome: Err(Error::Invalid {
                path: path.to_owned(),
                message,
            }),
        };
    }
    let stored = store.event_timestamp(&entry.uuid);
    if let (Ok(Some(stored)), Some(listed)) = (&stored, entry.timestamp) {
        if *stored >= listed {
            progress(Progress::Done(path));
            let write = WriteSummary {
                events_unchanged: 1,
                ..WriteSummary::default()
            };
            let summary = FileSummary {
                format: Some(Format::MispJson),
                write,
                ..FileSummary::default()
            };
            return FileReport {
                path: path.to_owned(),
                outcome: Ok(summary),
            };
        }
    }
    let outcome = import_file_inner(
        store,
        path,
        Some(Format::MispJson),
        options,
        progress,
        false,
    )
    .map(|(mut summary, parsed)| {
        for event in &parsed.events {
            if event.event.uuid != entry.uuid {
                summary.notes.push(format!(
                    "the file holds event {} but manifest.json names it {}",
                    event.event.uuid, entry.uuid
                ));
            }
            for (_, a) in event.event.all_attributes() {
                md5s.extend(value_md5s(&a.r#type, &a.value));
            }
        }
        summary
    });
    FileReport {
        path: path.to_owned(),
        outcome,
    }
}

fn check_hashes_csv(path: &Path, md5s: &HashSet<String>, limit: u64) -> Result<FileSummary, Error> {
    let (bytes, _) = read_limited(path, limit)?;
    let csv = parse_hashes_csv(&bytes);
    let mut notes = Vec::new();
    if csv.reversed {
        notes.push("columns are event_uuid,md5; MISP writes md5,event_uuid".to_owned());
    }
    if !csv.bad_lines.is_empty() {
        notes.push(format!(
            "{} lines are not an md5 and event uuid pair",
            csv.bad_lines.len()
        ));
    }
    let missing = md5s.iter().filter(|m| !csv.md5s.contains(*m)).count();
    if missing > 0 {
        notes.push(format!(
            "{missing} of {} imported attribute values are not listed (the file is stale); \
             the events were imported from their JSON files",
            md5s.len()
        ));
    }
    notes.insert(
        0,
        format!(
            "hashes.csv: {} rows checked, used only as a cross-check",
            csv.rows
        ),
    );
    Ok(FileSummary {
        notes,
        ..FileSummary::default()
    })
}
