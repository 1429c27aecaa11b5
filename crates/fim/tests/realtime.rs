//! Realtime monitoring with real inotify on temporary folders: the cases that widely used
//! file integrity monitors get wrong.

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use common::{events_for, sha256_hex, write, Harness};
use fim::{FileEventKind, Mode, NoticeKind};

#[test]
fn recreated_subdirectory_reports_new_file() {
    let mut h = Harness::start(|root| write(&root.join("sub/old.txt"), b"old"), |_| {});
    let sub = h.root.join("sub");
    std::fs::remove_dir_all(&sub).unwrap();
    h.wait_file(&sub.join("old.txt"), FileEventKind::Deleted);

    std::fs::create_dir(&sub).unwrap();
    write(&sub.join("new.txt"), b"new");
    let added = h.wait_file(&sub.join("new.txt"), FileEventKind::Added);
    assert_eq!(
        added.sha256_after.as_deref(),
        Some(sha256_hex(b"new").as_str())
    );
}

#[test]
fn recreated_monitored_directory_reports_new_file() {
    let mut h = Harness::start(|root| write(&root.join("a/f.txt"), b"one"), |_| {});
    let root = h.root.clone();
    std::fs::remove_dir_all(&root).unwrap();
    h.wait_file(&root.join("a/f.txt"), FileEventKind::Deleted);
    h.wait_notice(NoticeKind::DirectoryMissing);

    std::fs::create_dir(&root).unwrap();
    write(&root.join("g.txt"), b"two");
    let added = h.wait_file(&root.join("g.txt"), FileEventKind::Added);
    assert_eq!(
        added.sha256_after.as_deref(),
        Some(sha256_hex(b"two").as_str())
    );

    // Still watched in real time afterwards.
    write(&root.join("g.txt"), b"three");
    let modified = h.wait_file(&root.join("g.txt"), FileEventKind::Modified);
    assert_eq!(modified.mode, Mode::Realtime);
}

#[test]
fn renamed_directory_gives_five_deletes_and_five_adds() {
    let names = ["1", "2", "3", "4", "5"];
    let mut h = Harness::start(
        |root| {
            for n in names {
                write(&root.join("old").join(n), n.as_bytes());
            }
        },
        |_| {},
    );
    std::fs::rename(h.root.join("old"), h.root.join("new")).unwrap();
    let events = h.barrier();

    for n in names {
        let old = events_for(&events, &h.root.join("old").join(n));
        assert_eq!(old.len(), 1, "events for old/{n}: {old:?}");
        assert_eq!(old[0].event, FileEventKind::Deleted);
        let new = events_for(&events, &h.root.join("new").join(n));
        assert_eq!(new.len(), 1, "events for new/{n}: {new:?}");
        assert_eq!(new[0].event, FileEventKind::Added);
        assert_eq!(
            new[0].sha256_after.as_deref(),
            Some(sha256_hex(n.as_bytes()).as_str())
        );
    }
    assert_eq!(events.len(), 10, "unexpected extra events: {events:?}");

    // The moved directory is watched under its new name.
    write(&h.root.join("new/6"), b"6");
    h.wait_file(&h.root.join("new/6"), FileEventKind::Added);
}

#[test]
fn create_write_delete_rounds_lose_nothing() {
    let mut h = Harness::start(|_| {}, |_| {});
    // Every tenth file is kept; the others are deleted right after being written.
    let script = "for i in $(seq 1 1000); do echo \"content $i\" > f$i; \
                  if [ $((i % 10)) -ne 0 ]; then rm f$i; fi; done";
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&h.root)
        .status()
        .unwrap();
    assert!(status.success());
    let events = h.barrier();
    let overflowed = h.seen.iter().any(|e| {
        e.as_notice()
            .is_some_and(|n| n.notice == NoticeKind::QueueOverflow)
    });
    if overflowed {
        h.wait_notice(NoticeKind::ScanFinished);
    }
    let events: Vec<_> = if overflowed {
        h.seen.iter().filter_map(|e| e.as_file()).cloned().collect()
    } else {
        events
    };

    for i in 1..=1000 {
        let path = h.root.join(format!("f{i}"));
        let kinds: Vec<FileEventKind> =
            events_for(&events, &path).iter().map(|e| e.event).collect();
        if i % 10 == 0 {
            assert_eq!(kinds, vec![FileEventKind::Added], "kept file f{i}");
            let added = events_for(&events, &path)[0];
            let content = format!("content {i}\n");
            assert_eq!(
                added.sha256_after.as_deref(),
                Some(sha256_hex(content.as_bytes()).as_str())
            );
        } else {
            // Either never seen (deleted before it could be read) or added then deleted.
            assert!(
                kinds.is_empty() || kinds == vec![FileEventKind::Added, FileEventKind::Deleted],
                "deleted file f{i}: {kinds:?}"
            );
        }
    }
}

#[test]
fn file_rewritten_during_hashing_gives_consistent_events() {
    const SIZE: usize = 8 << 20;
    let a: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..SIZE).map(|i| (i % 241) as u8).collect();
    let (sha_a, sha_b) = (sha256_hex(&a), sha256_hex(&b));
    let mut h = Harness::start(|_| {}, |_| {});

    for round in 0..3 {
        let path = h.root.join(format!("big{round}"));
        std::fs::write(&path, &a).unwrap();
        // Rewrite in place right away, in 64 KiB writes, while the agent hashes content A.
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        for chunk in b.chunks(64 * 1024) {
            file.write_all(chunk).unwrap();
        }
        drop(file);
        let events = h.barrier();
        let shas: Vec<&str> = events_for(&events, &path)
            .iter()
            .map(|e| e.sha256_after.as_deref().unwrap())
            .collect();
        for sha in &shas {
            assert!(
                *sha == sha_a || *sha == sha_b,
                "round {round}: digest of mixed content {sha}"
            );
        }
        assert_eq!(
            shas.last(),
            Some(&sha_b.as_str()),
            "round {round}: final content not reported"
        );
        assert_eq!(
            shas.iter().filter(|s| **s == sha_b).count(),
            1,
            "round {round}: {shas:?}"
        );
    }
}

#[test]
fn editor_save_gives_one_modified_for_target() {
    let mut h = Harness::start(|root| write(&root.join("config.txt"), b"v1"), |_| {});
    let target = h.root.join("config.txt");
    let temp = h.root.join(".config.txt.tmp");
    write(&temp, b"v2");
    std::fs::rename(&temp, &target).unwrap();
    let events = h.barrier();

    let on_target = events_for(&events, &target);
    assert_eq!(on_target.len(), 1, "{on_target:?}");
    assert_eq!(on_target[0].event, FileEventKind::Modified);
    assert_eq!(
        on_target[0].sha256_before.as_deref(),
        Some(sha256_hex(b"v1").as_str())
    );
    assert_eq!(
        on_target[0].sha256_after.as_deref(),
        Some(sha256_hex(b"v2").as_str())
    );
    assert!(on_target[0]
        .changed_attributes
        .contains(&fim::Attribute::Inode));

    // The target stays monitored after the rename replaced it.
    write(&target, b"v3");
    let again = h.wait_file(&target, FileEventKind::Modified);
    assert_eq!(
        again.sha256_after.as_deref(),
        Some(sha256_hex(b"v3").as_str())
    );
}

#[test]
fn symlinked_directory_is_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("before.txt"), b"x");
    let target = outside.path().to_path_buf();
    let mut h = Harness::start(
        |root| std::os::unix::fs::symlink(&target, root.join("link")).unwrap(),
        |_| {},
    );
    let scanned = h
        .seen
        .iter()
        .filter_map(|e| e.as_notice())
        .find_map(|n| n.scan.clone())
        .unwrap();
    assert_eq!(scanned.files, 0, "the start-up scan followed the symlink");

    write(&outside.path().join("after.txt"), b"y");
    write(&outside.path().join("before.txt"), b"z");
    let events = h.barrier();
    assert!(
        events.is_empty(),
        "events from the symlinked directory: {events:?}"
    );
}

#[test]
fn file_over_size_limit_is_modified_not_deleted() {
    let mut h = Harness::start(
        |root| write(&root.join("big.bin"), &[1u8; 4096]),
        |c| c.max_file_bytes = Some(1024),
    );
    let path = h.root.join("big.bin");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&[2u8; 100]).unwrap();
    drop(file);
    let events = h.barrier();

    let on_path = events_for(&events, &path);
    assert_eq!(on_path.len(), 1, "{on_path:?}");
    let event = on_path[0];
    assert_eq!(event.event, FileEventKind::Modified);
    assert!(event.hash_skipped);
    assert_eq!(event.hash_skipped_reason, Some(fim::HashSkip::FileTooLarge));
    assert_eq!(event.size_after, Some(4196));
    assert_eq!(event.sha256_after, None);
    assert!(event.changed_attributes.contains(&fim::Attribute::Size));
}

#[test]
fn rm_rf_of_ignored_subtree_gives_no_event() {
    let mut h = Harness::start(
        |root| {
            write(&root.join("cache/a/1.tmp"), b"1");
            write(&root.join("cache/b/2.tmp"), b"2");
            write(&root.join("kept.txt"), b"k");
        },
        |c| c.directories[0].ignore_globs = vec!["cache".into()],
    );
    let cache = h.root.join("cache");
    let cache_inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cache).unwrap());
    assert!(
        !watched_inodes().contains(&cache_inode),
        "the ignored subtree has a watch"
    );

    write(&cache.join("a/3.tmp"), b"3");
    let status = Command::new("rm").arg("-rf").arg(&cache).status().unwrap();
    assert!(status.success());
    let events = h.barrier();
    assert!(
        events.is_empty(),
        "events from the ignored subtree: {events:?}"
    );
}

#[test]
fn files_created_during_baseline_scan_are_reported() {
    let mut h = Harness::start_no_wait(
        |root| {
            // Enough data that the start-up scan is still running when the new files land.
            let block = vec![7u8; 8 << 20];
            for i in 0..8 {
                write(&root.join(format!("d{}/big{i}.bin", i % 3)), &block);
            }
        },
        |_| {},
        None,
    );
    h.wait_notice(NoticeKind::ScanStarted);
    let mut created = Vec::new();
    for i in 0..30 {
        let path = h.root.join(format!("d{}/new{i}.txt", i % 4));
        write(&path, format!("new {i}").as_bytes());
        created.push(path);
    }
    let finished = h.wait_notice(NoticeKind::ScanFinished);
    let scan = finished.as_notice().unwrap().scan.clone().unwrap();
    assert_eq!(scan.kind, fim::ScanKind::Baseline);
    let events = h.barrier();
    let all: Vec<_> = h.seen.iter().filter_map(|e| e.as_file()).cloned().collect();
    for path in &created {
        let added: Vec<_> = events_for(&all, path);
        assert_eq!(added.len(), 1, "{}: {added:?}", path.display());
        assert_eq!(added[0].event, FileEventKind::Added);
    }
    let big = all.iter().filter(|e| e.path.contains("/big")).count();
    assert_eq!(
        big, 0,
        "pre-existing files were reported by the silent baseline"
    );
    drop(events);
}

#[test]
fn new_subdirectory_tree_is_watched_then_scanned() {
    let mut h = Harness::start(|_| {}, |_| {});
    let status = Command::new("bash")
        .arg("-c")
        .arg("mkdir -p a/b/c && echo one > a/b/c/f1 && echo two > a/f2")
        .current_dir(&h.root)
        .status()
        .unwrap();
    assert!(status.success());
    let events = h.barrier();
    for (path, content) in [("a/b/c/f1", "one\n"), ("a/f2", "two\n")] {
        let on_path = events_for(&events, &h.root.join(path));
        assert_eq!(on_path.len(), 1, "{path}: all events:\n{}", h.dump());
        assert_eq!(on_path[0].event, FileEventKind::Added);
        assert_eq!(
            on_path[0].sha256_after.as_deref(),
            Some(sha256_hex(content.as_bytes()).as_str())
        );
    }
}

#[test]
fn permission_change_is_reported() {
    let mut h = Harness::start(|root| write(&root.join("p.sh"), b"#!/bin/sh\n"), |_| {});
    let path = h.root.join("p.sh");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let event = h.wait_file(&path, FileEventKind::Modified);
    assert_eq!(event.changed_attributes, vec![fim::Attribute::Permission]);
    assert_eq!(event.perm_after.as_deref(), Some("rwxr-xr-x"));
    assert_eq!(event.sha256_after, event.sha256_before);
}

#[test]
fn file_written_with_exclusive_create_is_one_added() {
    let mut h = Harness::start(|_| {}, |_| {});
    let path = h.root.join("slow.txt");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    for _ in 0..50 {
        file.write_all(b"0123456789").unwrap();
    }
    drop(file);
    let events = h.barrier();
    let on_path = events_for(&events, &path);
    assert_eq!(on_path.len(), 1, "{on_path:?}");
    assert_eq!(on_path[0].size_after, Some(500));
}

#[test]
fn symlinked_monitored_directory_is_watched() {
    let mut link = std::path::PathBuf::new();
    let mut h = Harness::start(
        |_| {},
        |c| {
            let root = c.directories[0].path.clone();
            link = root.with_file_name("link-to-root");
            std::os::unix::fs::symlink(&root, &link).unwrap();
            c.directories[0].path = link.clone();
        },
    );
    write(&h.root.join("f.txt"), b"via link");
    let added = h.wait_file(&link.join("f.txt"), FileEventKind::Added);
    assert_eq!(added.mode, Mode::Realtime);
}

#[test]
fn followed_symlink_directory_is_monitored() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_path_buf();
    let mut h = Harness::start(
        |root| std::os::unix::fs::symlink(&target, root.join("link")).unwrap(),
        |c| c.directories[0].follow_symlinks = Some(true),
    );
    write(&outside.path().join("new.txt"), b"through the link");
    let added = h.wait_file(&h.root.join("link/new.txt"), FileEventKind::Added);
    assert_eq!(
        added.sha256_after.as_deref(),
        Some(sha256_hex(b"through the link").as_str())
    );
}

/// Inode numbers of every directory watched by an inotify descriptor of this process.
fn watched_inodes() -> Vec<u64> {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fdinfo").unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines().filter(|l| l.starts_with("inotify wd:")) {
            let ino = line.split_whitespace().find_map(|f| f.strip_prefix("ino:"));
            if let Some(ino) = ino.and_then(|h| u64::from_str_radix(h, 16).ok()) {
                inodes.push(ino);
            }
        }
    }
    inodes
}

#[allow(dead_code)]
fn unused(_: &Path) {}
