//! Walk and hash behaviour on real temporary trees.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::sync::Mutex;

use super::*;

/// Runs a scan and returns the hashed files by path, the paths skipped for size, the error
/// paths and the summary.
struct Outcome {
    hashed: BTreeMap<PathBuf, Digests>,
    too_large: Vec<PathBuf>,
    errors: Vec<Option<PathBuf>>,
    summary: Summary,
}

fn run(roots: &[PathBuf], options: &ScanOptions) -> Outcome {
    let hashed = Mutex::new(BTreeMap::new());
    let too_large = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let summary = scan(roots, options, |event| match event {
        Event::Hashed(file) => {
            hashed
                .lock()
                .unwrap()
                .insert(file.path.clone(), file.digests.clone());
        }
        Event::TooLarge { path, .. } => too_large.lock().unwrap().push(path.to_path_buf()),
        Event::Error(ScanError::Walk { path, .. }) => errors.lock().unwrap().push(path.clone()),
        Event::Error(ScanError::Read { path, .. } | ScanError::NotRegular { path }) => {
            errors.lock().unwrap().push(Some(path.clone()));
        }
    });
    Outcome {
        hashed: hashed.into_inner().unwrap(),
        too_large: too_large.into_inner().unwrap(),
        errors: errors.into_inner().unwrap(),
        summary,
    }
}

fn write(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// root/a.txt, root/sub/b.bin (300 KiB), root/sub/deep/c.txt, and outside/secret.txt next to
/// the root.
fn sample_tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write(&root.join("a.txt"), b"alpha");
    let big: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 241) as u8).collect();
    write(&root.join("sub/b.bin"), &big);
    write(&root.join("sub/deep/c.txt"), b"gamma");
    write(&dir.path().join("outside/secret.txt"), b"outside the root");
    (dir, root)
}

#[test]
fn hashes_every_regular_file() {
    let (_dir, root) = sample_tree();
    let outcome = run(std::slice::from_ref(&root), &ScanOptions::default());

    assert_eq!(outcome.hashed.len(), 3);
    for (path, digests) in &outcome.hashed {
        let expected = hashing::hash_reader(&fs::read(path).unwrap()[..], Algorithms::ALL).unwrap();
        assert_eq!(digests, &expected, "{}", path.display());
    }
    assert_eq!(outcome.summary.files, 3);
    assert_eq!(outcome.summary.bytes, 5 + 300 * 1024 + 5);
    assert_eq!(outcome.summary.errors, 0);
    assert!(outcome.errors.is_empty());
}

#[test]
fn computes_only_requested_digests() {
    let (_dir, root) = sample_tree();
    let options = ScanOptions {
        algorithms: "sha256".parse().unwrap(),
        ..ScanOptions::default()
    };
    let outcome = run(&[root], &options);
    for digests in outcome.hashed.values() {
        assert!(digests.md5.is_none());
        assert!(digests.sha1.is_none());
        assert!(digests.sha256.is_some());
    }
}

#[test]
fn no_algorithms_counts_without_reading() {
    let (_dir, root) = sample_tree();
    let options = ScanOptions {
        algorithms: Algorithms::NONE,
        ..ScanOptions::default()
    };
    let outcome = run(&[root], &options);
    assert_eq!(outcome.summary.files, 3);
    assert_eq!(outcome.summary.bytes, 0);
}

#[test]
fn symlinks_not_followed_by_default() {
    let (dir, root) = sample_tree();
    symlink(
        dir.path().join("outside/secret.txt"),
        root.join("link-to-file"),
    )
    .unwrap();
    symlink(dir.path().join("outside"), root.join("link-to-dir")).unwrap();

    let outcome = run(&[root], &ScanOptions::default());
    assert_eq!(outcome.hashed.len(), 3);
    assert!(outcome
        .hashed
        .keys()
        .all(|p| !p.to_string_lossy().contains("link-to")));
}

#[test]
fn follow_symlinks_hashes_targets() {
    let (dir, root) = sample_tree();
    symlink(
        dir.path().join("outside/secret.txt"),
        root.join("link-to-file"),
    )
    .unwrap();
    symlink(dir.path().join("outside"), root.join("link-to-dir")).unwrap();

    let options = ScanOptions {
        follow_symlinks: true,
        ..ScanOptions::default()
    };
    let outcome = run(std::slice::from_ref(&root), &options);
    assert_eq!(outcome.hashed.len(), 5);
    assert!(outcome.hashed.contains_key(&root.join("link-to-file")));
    assert!(outcome
        .hashed
        .contains_key(&root.join("link-to-dir/secret.txt")));
}

#[test]
fn symlink_loop_is_an_error_when_following() {
    let (_dir, root) = sample_tree();
    symlink(&root, root.join("sub/loop")).unwrap();

    let options = ScanOptions {
        follow_symlinks: true,
        ..ScanOptions::default()
    };
    let outcome = run(std::slice::from_ref(&root), &options);
    assert_eq!(outcome.hashed.len(), 3);
    assert_eq!(outcome.summary.errors, 1);
    assert_eq!(outcome.errors, [Some(root.join("sub/loop"))]);
}

#[test]
fn dangling_symlink_is_an_error_when_following() {
    let (dir, root) = sample_tree();
    symlink(dir.path().join("missing"), root.join("dangling")).unwrap();

    let options = ScanOptions {
        follow_symlinks: true,
        ..ScanOptions::default()
    };
    let outcome = run(std::slice::from_ref(&root), &options);
    assert_eq!(outcome.hashed.len(), 3);
    assert_eq!(outcome.summary.errors, 1);
    assert_eq!(outcome.errors, [Some(root.join("dangling"))]);
}

#[test]
fn fifo_is_passed_over() {
    let (_dir, root) = sample_tree();
    let mode = rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR;
    rustix::fs::mkfifoat(rustix::fs::CWD, root.join("pipe"), mode).unwrap();

    let outcome = run(&[root], &ScanOptions::default());
    assert_eq!(outcome.hashed.len(), 3);
    assert_eq!(outcome.summary.errors, 0);
    assert_eq!(outcome.summary.not_regular, 1);
}

#[test]
fn special_file_root_is_an_error() {
    let (dir, root) = sample_tree();
    let mode = rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR;
    let fifo = dir.path().join("pipe");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, mode).unwrap();
    let device = PathBuf::from("/dev/zero");

    let outcome = run(
        &[fifo.clone(), device.clone(), root],
        &ScanOptions::default(),
    );

    assert_eq!(outcome.hashed.len(), 3);
    assert_eq!(outcome.summary.errors, 2);
    let mut errors = outcome.errors.clone();
    errors.sort();
    let mut expected = vec![Some(device), Some(fifo)];
    expected.sort();
    assert_eq!(errors, expected);
}

#[test]
fn large_files_skipped_unread() {
    let (_dir, root) = sample_tree();
    let options = ScanOptions {
        max_file_bytes: Some(1024),
        ..ScanOptions::default()
    };
    let outcome = run(std::slice::from_ref(&root), &options);
    assert_eq!(outcome.hashed.len(), 2);
    assert_eq!(outcome.too_large, [root.join("sub/b.bin")]);
    assert_eq!(outcome.summary.too_large, 1);
    assert_eq!(outcome.summary.bytes, 10);
}

#[test]
fn excluded_names_and_dirs_are_left_out() {
    let (_dir, root) = sample_tree();
    let excludes = Excludes::new(&["*.bin", "deep"]).unwrap();
    let options = ScanOptions {
        excludes,
        ..ScanOptions::default()
    };
    let outcome = run(std::slice::from_ref(&root), &options);
    assert_eq!(
        outcome.hashed.keys().collect::<Vec<_>>(),
        [&root.join("a.txt")]
    );
}

#[test]
fn file_root_and_several_roots() {
    let (dir, root) = sample_tree();
    let roots = [root.join("a.txt"), dir.path().join("outside")];
    let outcome = run(&roots, &ScanOptions::default());
    assert_eq!(outcome.hashed.len(), 2);
    assert!(outcome.hashed.contains_key(&root.join("a.txt")));
}

#[test]
fn missing_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let outcome = run(std::slice::from_ref(&missing), &ScanOptions::default());
    assert!(outcome.hashed.is_empty());
    assert_eq!(outcome.summary.errors, 1);
    assert_eq!(outcome.errors, [Some(missing)]);
}

#[test]
fn no_roots_scan_nothing() {
    assert_eq!(
        run(&[], &ScanOptions::default()).summary,
        Summary::default()
    );
}

#[test]
fn single_thread_scan_matches_parallel() {
    let (_dir, root) = sample_tree();
    let one = run(
        std::slice::from_ref(&root),
        &ScanOptions {
            threads: 1,
            ..ScanOptions::default()
        },
    );
    let many = run(
        &[root],
        &ScanOptions {
            threads: 4,
            ..ScanOptions::default()
        },
    );
    assert_eq!(one.hashed, many.hashed);
    assert_eq!(one.summary, many.summary);
}

#[test]
fn symlink_roots_are_followed() {
    // Like `find -H`: a root given on the command line is resolved, entries below it are not.
    let (dir, root) = sample_tree();
    let dir_link = dir.path().join("root-link");
    let file_link = dir.path().join("file-link");
    symlink(&root, &dir_link).unwrap();
    symlink(root.join("a.txt"), &file_link).unwrap();

    let outcome = run(
        &[dir_link.clone(), file_link.clone()],
        &ScanOptions::default(),
    );
    assert_eq!(outcome.summary.errors, 0, "{:?}", outcome.errors);
    assert_eq!(outcome.hashed.len(), 4);
    assert!(outcome
        .hashed
        .contains_key(&dir_link.join("sub/deep/c.txt")));
    assert!(outcome.hashed.contains_key(&file_link));
}
