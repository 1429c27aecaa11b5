//! Quarantine (an active response): moves a monitored file into a folder only its owner
//! (root, when the agent runs as root) can read, and records where it went with its digests.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::probe::{probe, Probe, ProbeOptions};
use crate::state::FileState;
use crate::sys;

/// Mode of the quarantine folder.
pub const QUARANTINE_DIR_MODE: u32 = 0o700;
/// Mode of a quarantined file.
pub const QUARANTINE_FILE_MODE: u32 = 0o400;

/// Maximum length, in bytes, of the original name kept in the quarantined file's name.
const MAX_NAME_BYTES: usize = 128;

/// Record of a quarantined file: its new path, and its metadata and digests before the move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// The file's path with symlinks and `..` resolved.
    pub original_path: PathBuf,
    pub quarantine_path: PathBuf,
    /// RFC 3339, UTC.
    pub quarantined_at: String,
    pub size: u64,
    /// Permission bits before quarantine.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

/// Reason a file was not quarantined.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("failed to resolve `{path}`")]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{path}` resolves to `{resolved}`, outside every monitored directory; only monitored files can be quarantined"
    )]
    OutsideMonitored { path: PathBuf, resolved: PathBuf },
    #[error("`{resolved}` is excluded by an ignore rule of its monitored directory")]
    Ignored { resolved: PathBuf },
    #[error(
        "`{path}` names more than one file once bytes that are not UTF-8 are replaced; quarantine it by hand"
    )]
    Ambiguous { path: PathBuf },
    #[error("`{resolved}` is already inside the quarantine folder")]
    InsideQuarantine { resolved: PathBuf },
    #[error("`{resolved}` is not a regular file")]
    NotRegularFile { resolved: PathBuf },
    #[error("failed to {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the agent has stopped")]
    AgentStopped,
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> QuarantineError + 'a {
    move |source| QuarantineError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Resolves `path` (symlinks, `.` and `..`) and checks that it lies inside a monitored
/// directory, outside its ignore rules and outside the quarantine folder.
///
/// Returns the resolved path, the index of its monitored directory, and the same file's
/// path under the monitored directory as configured (they differ when it is a symlink).
pub fn resolve(path: &Path, config: &Config) -> Result<(PathBuf, usize, PathBuf), QuarantineError> {
    let real = resolve_lossy(path)?;
    let resolved = sys::fs::canonicalize(&real).map_err(|source| QuarantineError::Resolve {
        path: path.to_path_buf(),
        source,
    })?;
    if let Ok(qdir) = sys::fs::canonicalize(&config.quarantine_dir) {
        if resolved.starts_with(&qdir) {
            return Err(QuarantineError::InsideQuarantine { resolved });
        }
    }
    let mut best: Option<(usize, PathBuf)> = None;
    for (i, dir) in config.directories.iter().enumerate() {
        let Ok(root) = sys::fs::canonicalize(&dir.path) else {
            continue;
        };
        let longer = best
            .as_ref()
            .is_none_or(|(_, b)| root.as_os_str().len() > b.as_os_str().len());
        if resolved != root && resolved.starts_with(&root) && longer {
            best = Some((i, root));
        }
    }
    let Some((index, root)) = best else {
        return Err(QuarantineError::OutsideMonitored {
            path: path.to_path_buf(),
            resolved,
        });
    };
    let dir = &config.directories[index];
    let relative = resolved.strip_prefix(&root).unwrap_or(&resolved);
    let monitored = dir.path.join(relative);
    if dir.ignore.is_ignored(&dir.path, &monitored) {
        return Err(QuarantineError::Ignored { resolved });
    }
    Ok((resolved, index, monitored))
}

/// Finds the real file behind a path whose names were converted lossily (events carry paths
/// as UTF-8, with U+FFFD in place of bytes that are not): each name holding U+FFFD must
/// match exactly one entry of its folder. A path without U+FFFD is returned as it is.
pub fn resolve_lossy(path: &Path) -> Result<PathBuf, QuarantineError> {
    if !path.to_string_lossy().contains(char::REPLACEMENT_CHARACTER) {
        return Ok(path.to_path_buf());
    }
    let mut real = PathBuf::new();
    for component in path.components() {
        let Component::Normal(name) = component else {
            real.push(component);
            continue;
        };
        let wanted = name.to_string_lossy();
        if !wanted.contains(char::REPLACEMENT_CHARACTER) {
            real.push(name);
            continue;
        }
        let entries = std::fs::read_dir(&real).map_err(|source| QuarantineError::Resolve {
            path: path.to_path_buf(),
            source,
        })?;
        let mut matches = entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .filter(|candidate| candidate.to_string_lossy() == wanted);
        match (matches.next(), matches.next()) {
            (Some(found), None) => real.push(found),
            (None, _) => {
                return Err(QuarantineError::Resolve {
                    path: path.to_path_buf(),
                    source: std::io::ErrorKind::NotFound.into(),
                })
            }
            (Some(_), Some(_)) => {
                return Err(QuarantineError::Ambiguous {
                    path: path.to_path_buf(),
                })
            }
        }
    }
    Ok(real)
}

/// Moves the file at `path` into the quarantine folder (mode 0700, created when missing),
/// sets the file to mode 0400 (and root ownership when running as root), and hashes it there.
///
/// Returns the record, the file's state before the move, and its path under the monitored
/// directory (see [`resolve`]).
pub fn quarantine_file(
    path: &Path,
    config: &Config,
) -> Result<(QuarantineRecord, FileState, PathBuf), QuarantineError> {
    let (resolved, _, monitored) = resolve(path, config)?;
    let stat = sys::fs::lstat(&resolved).map_err(io_err("inspect", &resolved))?;
    if stat.kind != sys::fs::Kind::File {
        return Err(QuarantineError::NotRegularFile { resolved });
    }

    let qdir = &config.quarantine_dir;
    sys::fs::create_private_dir(qdir).map_err(io_err("create the quarantine folder", qdir))?;
    let dest = qdir.join(quarantine_name(&resolved));
    move_file(&resolved, &dest)?;

    let opts = ProbeOptions {
        algorithms: hashing::Algorithms::ALL,
        max_file_bytes: u64::MAX,
        follow_symlinks: false,
    };
    let state = match probe(&dest, &opts, &mut Vec::new()).map_err(io_err("hash", &dest))? {
        Probe::File(state) | Probe::Unstable(state) => state,
        Probe::Missing | Probe::NotRegular => {
            return Err(QuarantineError::NotRegularFile { resolved });
        }
    };
    lock_down(&dest)?;

    let record = QuarantineRecord {
        original_path: resolved,
        quarantine_path: dest,
        quarantined_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        size: state.size,
        perm: state.perm,
        uid: state.uid,
        gid: state.gid,
        md5: state.md5.map(hex::encode),
        sha1: state.sha1.map(hex::encode),
        sha256: state.sha256.map(hex::encode),
    };
    Ok((record, state, monitored))
}

/// Renames without replacing anything; copies and removes across file systems.
fn move_file(from: &Path, to: &Path) -> Result<(), QuarantineError> {
    match sys::fs::rename_noreplace(from, to) {
        Ok(()) => Ok(()),
        Err(e) if sys::fs::is_cross_device(&e) => {
            let mut src = sys::fs::open_regular(from, false).map_err(|f| match f {
                sys::fs::OpenFailure::Io(source) => QuarantineError::Io {
                    op: "open",
                    path: from.to_path_buf(),
                    source,
                },
                _ => QuarantineError::NotRegularFile {
                    resolved: from.to_path_buf(),
                },
            })?;
            src.copy_to_new(to, QUARANTINE_FILE_MODE)
                .map_err(io_err("copy into quarantine", to))?;
            sys::fs::remove_file(from).map_err(io_err("remove", from))
        }
        Err(source) => Err(QuarantineError::Io {
            op: "move into quarantine",
            path: from.to_path_buf(),
            source,
        }),
    }
}

fn lock_down(dest: &Path) -> Result<(), QuarantineError> {
    let file = sys::fs::open_regular(dest, false).map_err(|f| match f {
        sys::fs::OpenFailure::Io(source) => QuarantineError::Io {
            op: "open",
            path: dest.to_path_buf(),
            source,
        },
        _ => QuarantineError::NotRegularFile {
            resolved: dest.to_path_buf(),
        },
    })?;
    if sys::host::effective_uid() == 0 {
        file.chown_root()
            .map_err(io_err("change the owner of", dest))?;
    }
    file.set_mode(QUARANTINE_FILE_MODE)
        .map_err(io_err("change the mode of", dest))
}

/// `<nanoseconds since epoch>-<original name>`, unique per call on one host in practice
/// and never overwriting (the rename refuses to replace).
fn quarantine_name(path: &Path) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or(b"file");
    let mut name = String::from_utf8_lossy(name).into_owned();
    while name.len() > MAX_NAME_BYTES {
        name.pop();
    }
    format!("{nanos:020}-{name}")
}
