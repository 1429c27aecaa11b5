//! Recovery paths: inotify queue overflow, restart against an existing baseline, and the
//! watch limit.

mod common;

use std::time::{Duration, Instant};

use common::{events_for, write, Harness};
use fim::{FileEventKind, Mode, NoticeKind, ScanKind};

#[test]
fn queue_overflow_triggers_rescan_and_loses_nothing() {
    let Some(max_queued) = fim::sys::host::max_queued_events() else {
        eprintln!("skipped: /proc/sys/fs/inotify/max_queued_events is not readable");
        return;
    };
    if max_queued > 100_000 {
        eprintln!(
            "skipped: max_queued_events = {max_queued} makes an overflow too slow to provoke"
        );
        return;
    }
    // A one-slot channel: once it is full the agent blocks and stops reading inotify.
    let mut h = Harness::start_no_wait(
        |root| std::fs::create_dir(root.join("burst")).unwrap(),
        |_| {},
        Some(1),
    );
    h.wait_notice(NoticeKind::ScanFinished);
    write(&h.root.join("block-1"), b"1");
    write(&h.root.join("block-2"), b"2");
    let deadline = Instant::now() + common::DEADLINE;
    while h.rx.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the agent never filled the channel"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // Two events per file (create, close): well past the kernel's queue length.
    let files = (max_queued as usize) / 2 + 3000;
    let dir = h.root.join("burst");
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
    }

    h.wait_notice(NoticeKind::QueueOverflow);
    let rescan = h.wait_for("rescan finished", |e| {
        e.as_notice()
            .and_then(|n| n.scan.as_ref())
            .is_some_and(|s| s.kind == ScanKind::Rescan)
    });
    assert!(rescan.as_notice().unwrap().scan.as_ref().unwrap().files as usize >= files);
    h.barrier();
    let all: Vec<_> = h.seen.iter().filter_map(|e| e.as_file()).cloned().collect();
    for i in 0..files {
        let path = dir.join(format!("f{i}"));
        let on_path = events_for(&all, &path);
        assert_eq!(on_path.len(), 1, "f{i}: {on_path:?}");
        assert_eq!(on_path[0].event, FileEventKind::Added);
    }
}

#[test]
fn restart_reports_changes_made_while_stopped() {
    let mut h = Harness::start(
        |root| {
            write(&root.join("a"), b"a1");
            write(&root.join("c"), b"c1");
        },
        |_| {},
    );
    let baseline_id = h.seen[0].baseline_id.clone();
    write(&h.root.join("early"), b"e");
    h.barrier();
    let last_id = h.seen.last().unwrap().id;

    let root = h.root.clone();
    h.stop_agent();
    write(&root.join("a"), b"a2");
    write(&root.join("b"), b"b1");
    std::fs::remove_file(root.join("c")).unwrap();
    h = h.restart(|_| {});
    let finished = h.wait_notice(NoticeKind::ScanFinished);
    assert_eq!(
        finished.as_notice().unwrap().scan.as_ref().unwrap().kind,
        ScanKind::Scheduled
    );
    let files: Vec<_> = h.seen.iter().filter_map(|e| e.as_file()).cloned().collect();

    assert!(
        h.seen.iter().all(|e| e.id > last_id),
        "event ids went back after restart"
    );
    assert!(h.seen.iter().all(|e| e.baseline_id == baseline_id));
    let kinds = |name: &str| -> Vec<FileEventKind> {
        events_for(&files, &root.join(name))
            .iter()
            .map(|e| e.event)
            .collect()
    };
    assert_eq!(kinds("a"), vec![FileEventKind::Modified]);
    assert_eq!(kinds("b"), vec![FileEventKind::Added]);
    assert_eq!(kinds("c"), vec![FileEventKind::Deleted]);
    assert!(
        kinds("early").is_empty(),
        "a file recorded before the restart was reported again"
    );
    assert!(files.iter().all(|e| e.mode == Mode::Scheduled));
}

#[test]
fn watch_limit_warns_and_falls_back_to_scans() {
    let mut h = Harness::start(
        |root| std::fs::create_dir_all(root.join("x/y/z")).unwrap(),
        // One watch for the parent of the monitored directory, one for the directory itself.
        |c| c.max_watches = Some(2),
    );
    let notice = h.seen_or_wait_notice(NoticeKind::WatchLimit);
    let notice = notice.as_notice().unwrap();
    assert_eq!(
        notice.path.as_deref(),
        Some(h.root.join("x").to_str().unwrap())
    );
    assert!(
        notice.message.contains("max_watches = 2"),
        "{}",
        notice.message
    );

    let deep = h.root.join("x/y/z/f.txt");
    write(&deep, b"deep");
    h.handle.scan_now();
    let added = h.wait_file(&deep, FileEventKind::Added);
    assert_eq!(added.mode, Mode::Scheduled);
}

#[test]
fn scheduled_only_directory_reports_on_scan() {
    let mut h = Harness::start(|_| {}, |c| c.directories[0].realtime = Some(false));
    let path = h.root.join("later.txt");
    write(&path, b"x");
    h.handle.scan_now();
    let added = h.wait_file(&path, FileEventKind::Added);
    assert_eq!(added.mode, Mode::Scheduled);
}
