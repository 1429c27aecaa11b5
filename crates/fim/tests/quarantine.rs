//! Quarantine as the manager triggers it through the agent handle.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{sha256_hex, write, Harness};
use fim::{BaselineDb, DatabaseLocation, FileEventKind, Mode, QuarantineError};

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn quarantine_moves_file_and_records_it() {
    let content = b"pretend malware";
    let mut h = Harness::start(|root| write(&root.join("sub/evil.bin"), content), |_| {});
    let path = h.root.join("sub/evil.bin");

    let event = h.handle.quarantine(&path).unwrap();
    let file = event.as_file().unwrap();
    assert_eq!(file.event, FileEventKind::Quarantined);
    assert_eq!(file.mode, Mode::ActiveResponse);
    assert_eq!(
        file.sha256_before.as_deref(),
        Some(sha256_hex(content).as_str())
    );
    let moved = Path::new(file.quarantine_path.as_deref().unwrap()).to_path_buf();

    assert!(!path.exists());
    assert_eq!(std::fs::read(&moved).unwrap(), content);
    assert_eq!(mode_of(&moved), 0o400);
    assert_eq!(mode_of(moved.parent().unwrap()), 0o700);
    let events = h.barrier();
    assert!(
        events
            .iter()
            .all(|e| e.path != path.to_string_lossy() || e.event == FileEventKind::Quarantined),
        "the quarantine was also reported as another event: {events:?}"
    );

    let db_path = h.data_dir.join(fim::config::defaults::DATABASE_FILE);
    h.stop_agent();
    let db = BaselineDb::open(&DatabaseLocation::File(db_path)).unwrap();
    let records = db.quarantine_records().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].quarantine_path, moved);
    assert_eq!(
        records[0].sha256.as_deref(),
        Some(sha256_hex(content).as_str())
    );
    assert_eq!(records[0].size, content.len() as u64);
    assert_eq!(db.file(&path).unwrap(), None);
}

#[test]
fn quarantine_rejects_paths_outside_monitored_directories() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    write(&secret, b"not monitored");
    let secret_for_setup = secret.clone();
    let h = Harness::start(
        |root| {
            write(&root.join("skip.log"), b"ignored");
            std::fs::create_dir(root.join("dir")).unwrap();
            std::os::unix::fs::symlink(&secret_for_setup, root.join("link")).unwrap();
        },
        |c| c.directories[0].ignore_globs = vec!["*.log".into()],
    );
    let root = h.root.clone();
    let base = root.parent().unwrap().parent().unwrap();
    let escape = root
        .join("..")
        .join("..")
        .join(secret.strip_prefix(base).unwrap());

    let outside_cases = [secret.clone(), escape, root.join("link"), root.clone()];
    for case in &outside_cases {
        let err = h.handle.quarantine(case).unwrap_err();
        assert!(
            matches!(err, QuarantineError::OutsideMonitored { .. }),
            "{}: {err}",
            case.display()
        );
    }
    let err = h.handle.quarantine(&root.join("skip.log")).unwrap_err();
    assert!(matches!(err, QuarantineError::Ignored { .. }), "{err}");
    let err = h.handle.quarantine(&root.join("dir")).unwrap_err();
    assert!(
        matches!(err, QuarantineError::NotRegularFile { .. }),
        "{err}"
    );
    let err = h.handle.quarantine(&root.join("missing")).unwrap_err();
    assert!(matches!(err, QuarantineError::Resolve { .. }), "{err}");

    assert!(secret.exists());
    assert!(root.join("skip.log").exists());
}

/// The anti-virus test file, put together at run time.
fn test_file_content() -> Vec<u8> {
    let pieces = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR",
        "-STANDARD-ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ];
    pieces.concat().into_bytes()
}

#[test]
fn quarantine_finds_non_utf8_name() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"q\nname\xff.com");
    let mut h = Harness::start(|root| write(&root.join(name), &test_file_content()), |_| {});
    let path = h.root.join(name);
    // Events, and so the manager's command, carry the path with U+FFFD in place of 0xFF.
    let lossy = path.to_string_lossy().into_owned();

    let event = h.handle.quarantine(Path::new(&lossy)).unwrap();
    let file = event.as_file().unwrap();
    assert_eq!(file.event, FileEventKind::Quarantined);
    assert_eq!(file.path, lossy);
    let moved = Path::new(file.quarantine_path.as_deref().unwrap()).to_path_buf();
    assert!(!path.exists(), "the file is still in place");
    assert_eq!(std::fs::read(&moved).unwrap(), test_file_content());
    h.barrier();
}

#[test]
fn quarantine_rejects_ambiguous_lossy_path() {
    use std::os::unix::ffi::OsStrExt;
    let raw = std::ffi::OsStr::from_bytes(b"a\xff.com");
    let h = Harness::start(
        |root| {
            write(&root.join(raw), &test_file_content());
            write(&root.join("a\u{FFFD}.com"), b"harmless");
        },
        |_| {},
    );
    let lossy = h.root.join(raw).to_string_lossy().into_owned();
    let err = h.handle.quarantine(Path::new(&lossy)).unwrap_err();
    assert!(matches!(err, QuarantineError::Ambiguous { .. }), "{err}");
    assert!(h.root.join(raw).exists() && h.root.join("a\u{FFFD}.com").exists());
}
