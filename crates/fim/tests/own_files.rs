//! The agent's own files: the baseline database and the files SQLite keeps next to it are
//! never reported, and the folder around them stays monitored.

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use common::{sha256_hex, write, Harness};
use fim::FileEventKind;

#[test]
fn database_beside_monitored_directory_leaves_it_monitored() {
    let parent = RefCell::new(PathBuf::new());
    let mut h = Harness::start(
        |root| *parent.borrow_mut() = root.parent().unwrap().to_path_buf(),
        |file| file.database_path = Some(parent.borrow().join("baseline.sqlite")),
    );
    let path = h.root.join("new.txt");
    write(&path, b"new");
    let added = h.wait_file(&path, FileEventKind::Added);
    assert_eq!(
        added.sha256_after.as_deref(),
        Some(sha256_hex(b"new").as_str())
    );
}

#[test]
fn database_inside_monitored_directory_is_not_reported() {
    let root_dir = RefCell::new(PathBuf::new());
    let mut h = Harness::start(
        |root| *root_dir.borrow_mut() = root.to_path_buf(),
        |file| file.database_path = Some(root_dir.borrow().join("baseline.sqlite")),
    );
    let neighbour = h.root.join("neighbour.txt");
    write(&neighbour, b"beside the database");
    let events = h.barrier();

    let own = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("baseline.sqlite"))
    };
    let reported_own: Vec<_> = events.iter().filter(|e| own(Path::new(&e.path))).collect();
    assert!(
        reported_own.is_empty(),
        "database files reported: {reported_own:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| Path::new(&e.path) == neighbour && e.event == FileEventKind::Added),
        "the file beside the database was not reported: {events:?}"
    );
}
