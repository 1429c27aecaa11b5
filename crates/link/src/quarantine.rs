//! Active response on the agent: moves a file into a quarantine folder that
//! only the agent's user (root in production) can read, and records where it
//! went with its hashes. Paths outside the monitored folders are rejected.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fim::QuarantineError;
use wire::{ActionStatus, ActiveResponseCommand, ActiveResponseResult};

/// Where quarantined files go and which files may be quarantined.
#[derive(Clone, Debug)]
pub struct QuarantineConfig {
    /// The quarantine folder, created with mode 0700.
    pub dir: PathBuf,
    /// Monitored folders. Only files below them may be moved.
    pub allowed_roots: Vec<PathBuf>,
}

/// A configured quarantine.
pub struct Quarantine {
    config: QuarantineConfig,
}

/// Name of the JSON-lines record of every quarantined file, inside the folder.
pub const RECORD_FILE: &str = "quarantine.log";

impl Quarantine {
    pub fn new(config: QuarantineConfig) -> Quarantine {
        Quarantine { config }
    }

    /// Moves the file at `path` into quarantine.
    pub fn quarantine(&self, path: &Path, command_id: &str) -> Result<Moved, Refusal> {
        let source = self.check_path(path)?;
        let dir = self.prepare_dir()?;

        let digests = hashing::hash_file(&source, hashing::Algorithms::ALL)
            .map_err(|e| Refusal::Failed(format!("failed to hash `{}`: {e}", source.display())))?;
        let sha256 = digests.sha256_hex().unwrap_or_default();
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = dir.join(format!("{}-{}-{}", unix_now(), &sha256, name));

        move_file(&source, &target).map_err(|e| {
            Refusal::Failed(format!(
                "failed to move `{}` into quarantine: {e}",
                source.display()
            ))
        })?;
        let moved = Moved {
            original: source,
            target,
            md5: digests.md5_hex(),
            sha1: digests.sha1_hex(),
            sha256: digests.sha256_hex(),
        };
        if let Err(err) = self.record(&moved, command_id) {
            tracing::error!(path = %moved.target.display(), error = %err, "failed to record a quarantined file");
        }
        Ok(moved)
    }

    fn check_path(&self, path: &Path) -> Result<PathBuf, Refusal> {
        if !path.is_absolute() {
            return Err(Refusal::Rejected(format!(
                "`{}` is not an absolute path",
                path.display()
            )));
        }
        let path = &resolve_lossy(path)?;
        let meta = fs::symlink_metadata(path)
            .map_err(|e| Refusal::Failed(format!("cannot stat `{}`: {e}", path.display())))?;
        if !meta.file_type().is_file() {
            return Err(Refusal::Rejected(format!(
                "`{}` is not a regular file",
                path.display()
            )));
        }
        // Canonical paths: `..` and symbolic links in parent folders cannot
        // lead out of a monitored folder.
        let canonical = fs::canonicalize(path)
            .map_err(|e| Refusal::Failed(format!("cannot resolve `{}`: {e}", path.display())))?;
        let inside = self
            .config
            .allowed_roots
            .iter()
            .any(|root| fs::canonicalize(root).is_ok_and(|root| canonical.starts_with(root)));
        if !inside {
            return Err(Refusal::Rejected(format!(
                "`{}` is outside the monitored folders",
                canonical.display()
            )));
        }
        if fs::canonicalize(&self.config.dir).is_ok_and(|q| canonical.starts_with(q)) {
            return Err(Refusal::Rejected(
                "the file is already in quarantine".into(),
            ));
        }
        Ok(canonical)
    }

    fn prepare_dir(&self) -> Result<PathBuf, Refusal> {
        let dir = &self.config.dir;
        let fail = |e: std::io::Error| {
            Refusal::Failed(format!(
                "cannot prepare quarantine folder `{}`: {e}",
                dir.display()
            ))
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
        Ok(dir.clone())
    }

    fn record(&self, moved: &Moved, command_id: &str) -> std::io::Result<()> {
        let line = serde_json::json!({
            "time": unix_now(),
            "command_id": command_id,
            "original_path": moved.original.to_string_lossy(),
            "original_path_hex": hex::encode(moved.original.as_os_str().as_bytes()),
            "quarantine_path": moved.target.to_string_lossy(),
            "md5": moved.md5,
            "sha1": moved.sha1,
            "sha256": moved.sha256,
        });
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.config.dir.join(RECORD_FILE))?;
        writeln!(file, "{line}")?;
        file.sync_all()
    }
}

/// A file moved into quarantine.
#[derive(Clone, Debug)]
pub struct Moved {
    pub original: PathBuf,
    pub target: PathBuf,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

/// Why a quarantine did not happen.
#[derive(Clone, Debug)]
pub enum Refusal {
    /// The request is not allowed, such as a path outside the monitored folders.
    Rejected(String),
    /// The move was attempted and failed.
    Failed(String),
}

/// Carries out `command` and describes the outcome for the manager.
pub fn execute(
    quarantine: Option<&Quarantine>,
    command: &ActiveResponseCommand,
) -> ActiveResponseResult {
    let mut result = ActiveResponseResult {
        command_id: command.command_id.clone(),
        action: command.action.clone(),
        path: command.path.clone(),
        status: ActionStatus::Rejected,
        quarantine_path: None,
        md5: None,
        sha1: None,
        sha256: None,
        message: None,
    };
    let outcome = match (command.action.as_str(), quarantine) {
        ("quarantine", Some(q)) => q.quarantine(Path::new(&command.path), &command.command_id),
        ("quarantine", None) => Err(Refusal::Rejected(
            "quarantine is not configured on this agent".into(),
        )),
        (action, _) => Err(Refusal::Rejected(format!("unknown action `{action}`"))),
    };
    match outcome {
        Ok(moved) => {
            result.status = ActionStatus::Done;
            result.quarantine_path = Some(moved.target.display().to_string());
            (result.md5, result.sha1, result.sha256) = (moved.md5, moved.sha1, moved.sha256);
            tracing::info!(path = %command.path, to = %moved.target.display(), "file quarantined");
        }
        Err(Refusal::Rejected(message)) => {
            tracing::warn!(path = %command.path, reason = %message, "quarantine rejected");
            result.message = Some(message);
        }
        Err(Refusal::Failed(message)) => {
            tracing::error!(path = %command.path, error = %message, "quarantine failed");
            result.status = ActionStatus::Failed;
            result.message = Some(message);
        }
    }
    result
}

/// Finds the real file behind a path whose names were converted lossily, as
/// [`fim::quarantine::resolve_lossy`] does. The caller still checks the monitored folders.
pub fn resolve_lossy(path: &Path) -> Result<PathBuf, Refusal> {
    fim::quarantine::resolve_lossy(path).map_err(|error| match error {
        QuarantineError::Resolve { path, source } => {
            Refusal::Failed(format!("failed to resolve `{}`: {source}", path.display()))
        }
        QuarantineError::Ambiguous { .. } => Refusal::Rejected(error.to_string()),
        other => Refusal::Failed(other.to_string()),
    })
}

/// Renames, or copies then removes when the quarantine is on another file system.
fn move_file(source: &Path, target: &Path) -> std::io::Result<()> {
    match fs::rename(source, target) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(18) => {
            // EXDEV: a rename cannot cross file systems.
            let mut from = fs::File::open(source)?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(target)?;
            std::io::copy(&mut from, &mut to)?;
            to.sync_all()?;
            fs::remove_file(source)?;
        }
        Err(err) => return Err(err),
    }
    fs::set_permissions(target, fs::Permissions::from_mode(0o400))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn command(path: &Path) -> ActiveResponseCommand {
        ActiveResponseCommand {
            command_id: "c1".into(),
            action: "quarantine".into(),
            path: path.display().to_string(),
            rule_id: None,
            alert_id: None,
        }
    }

    fn setup() -> (tempfile::TempDir, Quarantine) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("watched")).unwrap();
        let q = Quarantine::new(QuarantineConfig {
            dir: dir.path().join("quarantine"),
            allowed_roots: vec![dir.path().join("watched")],
        });
        (dir, q)
    }

    #[test]
    fn file_is_moved_hashed_and_recorded() {
        let (dir, q) = setup();
        let file = dir.path().join("watched/bad.bin");
        fs::write(&file, b"abc").unwrap();

        let result = execute(Some(&q), &command(&file));
        assert_eq!(result.status, ActionStatus::Done, "{:?}", result.message);
        assert!(!file.exists());
        let moved = PathBuf::from(result.quarantine_path.unwrap());
        assert_eq!(fs::read(&moved).unwrap(), b"abc");
        assert_eq!(
            result.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let mode = fs::metadata(dir.path().join("quarantine"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let record = fs::read_to_string(dir.path().join("quarantine").join(RECORD_FILE)).unwrap();
        assert!(record.contains("bad.bin"), "{record}");
    }

    #[test]
    fn path_outside_monitored_folders_is_rejected() {
        let (dir, q) = setup();
        let outside = dir.path().join("other.bin");
        fs::write(&outside, b"x").unwrap();
        let result = execute(Some(&q), &command(&outside));
        assert_eq!(result.status, ActionStatus::Rejected);
        assert!(outside.exists());

        let sneaky = dir.path().join("watched/../other.bin");
        assert_eq!(
            execute(Some(&q), &command(&sneaky)).status,
            ActionStatus::Rejected
        );
    }

    #[test]
    fn symlink_out_of_monitored_folder_is_rejected() {
        let (dir, q) = setup();
        let outside = dir.path().join("secret.txt");
        fs::write(&outside, b"x").unwrap();
        let link = dir.path().join("watched/link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert_eq!(
            execute(Some(&q), &command(&link)).status,
            ActionStatus::Rejected
        );
        assert!(outside.exists());
    }

    /// Builds the anti-virus test file content at run time.
    fn test_file_content() -> Vec<u8> {
        let pieces = [
            "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
            "EICAR",
            "-STANDARD-ANTIVIRUS-TEST-",
            "FILE!$H+H*",
        ];
        pieces.concat().into_bytes()
    }

    fn lossy_command(path: &Path) -> ActiveResponseCommand {
        let mut cmd = command(path);
        cmd.path = path.to_string_lossy().into_owned();
        cmd
    }

    #[test]
    fn non_utf8_name_is_quarantined() {
        let (dir, q) = setup();
        let sub = dir.path().join(OsStr::from_bytes(b"watched/sub\xfe"));
        fs::create_dir(&sub).unwrap();
        let file = sub.join(OsStr::from_bytes(b"q\nname\xff.com"));
        fs::write(&file, test_file_content()).unwrap();

        let cmd = lossy_command(&file);
        assert!(cmd.path.contains('\u{FFFD}'));
        let result = execute(Some(&q), &cmd);
        assert_eq!(result.status, ActionStatus::Done, "{:?}", result.message);
        assert!(!file.exists(), "the file is still in place");
        let moved = PathBuf::from(result.quarantine_path.unwrap());
        assert_eq!(fs::read(moved).unwrap(), test_file_content());
        let record = fs::read_to_string(dir.path().join("quarantine").join(RECORD_FILE)).unwrap();
        assert!(
            record.contains(&hex::encode(file.as_os_str().as_bytes())),
            "{record}"
        );
    }

    #[test]
    fn lossy_name_matching_two_files_is_rejected() {
        let (dir, q) = setup();
        let watched = dir.path().join("watched");
        let raw = watched.join(OsStr::from_bytes(b"a\xff.com"));
        let literal = watched.join("a\u{FFFD}.com");
        fs::write(&raw, test_file_content()).unwrap();
        fs::write(&literal, b"harmless").unwrap();

        let result = execute(Some(&q), &lossy_command(&raw));
        assert_eq!(
            result.status,
            ActionStatus::Rejected,
            "{:?}",
            result.message
        );
        assert!(raw.exists());
        assert!(literal.exists());
    }

    #[test]
    fn lossy_name_outside_monitored_folders_is_rejected() {
        let (dir, q) = setup();
        let outside = dir.path().join(OsStr::from_bytes(b"out\xff.com"));
        fs::write(&outside, test_file_content()).unwrap();
        let result = execute(Some(&q), &lossy_command(&outside));
        assert_eq!(
            result.status,
            ActionStatus::Rejected,
            "{:?}",
            result.message
        );
        assert!(outside.exists());
    }

    #[test]
    fn unknown_action_and_missing_config_are_rejected() {
        let (dir, q) = setup();
        let mut cmd = command(&dir.path().join("watched/x"));
        cmd.action = "delete".into();
        assert_eq!(execute(Some(&q), &cmd).status, ActionStatus::Rejected);
        assert_eq!(
            execute(None, &command(Path::new("/x"))).status,
            ActionStatus::Rejected
        );
    }
}
