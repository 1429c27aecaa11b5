//! Exclusive locks that keep a second agent off the files and folders of a running one: the
//! baseline database and the agent's state folder (spool, enrollment, quarantine).
//!
//! A lock is a `flock` on a small file containing the owner's process id, so the error can
//! name the running agent. The kernel drops the lock when its owner exits, even on a crash;
//! a file left behind is harmless.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::DatabaseLocation;

/// Name of the lock file in the agent's state folder.
pub const STATE_LOCK_FILE: &str = "agent.lock";
/// Suffix of the lock file beside the baseline database.
pub const BASELINE_LOCK_SUFFIX: &str = ".lock";

/// Error returned when a lock cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "`{path}` is locked: another agent{} is running on {what}. Stop it or give this agent \
         its own --data-dir{}",
        pid_text(*pid),
        if *baseline { " or database_path" } else { "" }
    )]
    Held {
        path: PathBuf,
        /// The other agent's process id, when its lock file names one.
        pid: Option<u32>,
        /// Description of the locked files, used in the message.
        what: String,
        baseline: bool,
    },
    #[error("failed to lock `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

/// Acquired lock, released when dropped or when the process exits.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
    path: PathBuf,
}

impl AgentLock {
    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Locks the agent's state folder `dir` (its spool, enrollment and quarantine live there),
/// creating it with mode 0700 when missing.
pub fn lock_state_dir(dir: &Path) -> Result<AgentLock, LockError> {
    let what = format!("the data folder `{}`", dir.display());
    lock(&dir.join(STATE_LOCK_FILE), what, false)
}

/// Locks `<database>.lock` beside a baseline database file. An in-memory baseline needs no
/// lock, so it returns `None`.
pub fn lock_baseline(database: &DatabaseLocation) -> Result<Option<AgentLock>, LockError> {
    let DatabaseLocation::File(path) = database else {
        return Ok(None);
    };
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(BASELINE_LOCK_SUFFIX);
    let what = format!("the baseline database `{}`", path.display());
    lock(Path::new(&lock_path), what, true).map(Some)
}

/// Takes an exclusive lock on `path` and writes this process's id into it.
fn lock(path: &Path, what: String, baseline: bool) -> Result<AgentLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(LockError::Held {
                path: path.to_path_buf(),
                pid: read_pid(&mut file),
                what,
                baseline,
            })
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(io_err(source)),
    }
    write_pid(&mut file).map_err(io_err)?;
    Ok(AgentLock {
        _file: file,
        path: path.to_path_buf(),
    })
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// Reads the process id in a lock file, when it contains one.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_state_lock_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("data");
        let held = lock_state_dir(&state).unwrap();
        assert_eq!(held.path(), state.join(STATE_LOCK_FILE));

        let err = lock_state_dir(&state).unwrap_err();
        let LockError::Held { pid, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*pid, Some(std::process::id()));
        let message = err.to_string();
        assert!(message.contains("agent.lock"), "{message}");
        assert!(message.contains("another agent (pid "), "{message}");
        assert!(message.contains("its own --data-dir"), "{message}");

        drop(held);
        lock_state_dir(&state).expect("free again once the holder is gone");
    }

    #[test]
    fn baseline_lock_beside_database() {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseLocation::File(dir.path().join("fim/baseline.sqlite"));
        let held = lock_baseline(&database).unwrap().unwrap();
        assert_eq!(held.path(), dir.path().join("fim/baseline.sqlite.lock"));
        let message = lock_baseline(&database).unwrap_err().to_string();
        assert!(message.contains("baseline database"), "{message}");
        assert!(message.contains("database_path"), "{message}");
        assert!(lock_baseline(&DatabaseLocation::Memory).unwrap().is_none());
    }
}
