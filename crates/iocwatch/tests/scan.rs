//! `iocwatch scan` end to end: the real binary, a real intel store and real files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A scratch folder with a data directory, a tree to scan and an imported hash list.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// Builds `tree/` with one file whose sha256 and one whose md5 are in the intel store.
    fn new() -> Setup {
        let setup = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        let tree = setup.tree();
        write(&tree.join("clean.txt"), b"nothing to see");
        write(&tree.join("sub/deep/malware.bin"), b"not really malware\n");
        write(&tree.join("sub/dropper.exe"), b"dropper stand-in");

        let malware =
            hashing::hash_file(&tree.join("sub/deep/malware.bin"), hashing::Algorithms::ALL);
        let dropper = hashing::hash_file(&tree.join("sub/dropper.exe"), hashing::Algorithms::ALL);
        let list = format!(
            "{}\n{}\n",
            malware.unwrap().sha256_hex().unwrap(),
            dropper.unwrap().md5_hex().unwrap()
        );
        let list_path = setup.dir.path().join("iocs.txt");
        fs::write(&list_path, list).unwrap();
        let import = setup.iocwatch(&[
            "intel",
            "import",
            "--no-progress",
            list_path.to_str().unwrap(),
        ]);
        assert!(
            import.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&import.stderr)
        );
        setup
    }

    fn tree(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    fn iocwatch(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_iocwatch"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .unwrap()
    }

    fn scan(&self, extra: &[&str]) -> Output {
        let tree = self.tree();
        let mut args = vec!["scan"];
        args.extend_from_slice(extra);
        args.push(tree.to_str().unwrap());
        self.iocwatch(&args)
    }
}

fn write(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn matches_print_json_and_exit_1() {
    let setup = Setup::new();
    let output = setup.scan(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let mut lines = json_lines(&output);
    lines.sort_by_key(|line| line["path"].as_str().unwrap().to_string());
    assert_eq!(lines.len(), 2, "{lines:?}");

    let tree = setup.tree();
    assert_eq!(
        lines[0]["path"],
        tree.join("sub/deep/malware.bin").to_str().unwrap()
    );
    assert_eq!(lines[0]["size"], 19);
    assert_eq!(lines[0]["algorithm"], "sha256");
    assert_eq!(lines[0]["type"], "sha256");
    assert_eq!(lines[0]["to_ids"], true);
    assert_eq!(lines[0]["matched"].as_str().unwrap().len(), 64);
    assert_eq!(
        lines[1]["path"],
        tree.join("sub/dropper.exe").to_str().unwrap()
    );
    assert_eq!(lines[1]["algorithm"], "md5");
    assert_eq!(lines[1]["type"], "md5");
}

#[test]
fn summary_on_stderr_unless_quiet() {
    let setup = Setup::new();
    let loud = setup.scan(&[]);
    let summary = stderr(&loud);
    assert!(summary.contains("SCAN SUMMARY"), "{summary}");
    assert!(summary.contains("Scanned files: 3"), "{summary}");
    assert!(summary.contains("Matched files: 2"), "{summary}");
    assert!(summary.contains("Errors: 0"), "{summary}");

    let quiet = setup.scan(&["--quiet"]);
    assert_eq!(quiet.status.code(), Some(1));
    assert!(
        !stderr(&quiet).contains("SCAN SUMMARY"),
        "{}",
        stderr(&quiet)
    );
}

#[test]
fn clean_tree_exits_0() {
    let setup = Setup::new();
    let output = setup.scan(&["--exclude", "sub"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
}

#[test]
fn unreadable_path_exits_2_unless_matched() {
    let setup = Setup::new();
    let missing = setup.dir.path().join("missing");
    let clean = setup.tree().join("clean.txt");

    let error_only = setup.iocwatch(&["scan", clean.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(error_only.status.code(), Some(2));
    let message = stderr(&error_only);
    assert!(message.contains(missing.to_str().unwrap()), "{message}");
    assert!(message.contains("Errors: 1"), "{message}");

    let with_match = setup.iocwatch(&[
        "scan",
        setup.tree().to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(
        with_match.status.code(),
        Some(1),
        "a match takes precedence over errors"
    );
}

#[test]
fn max_file_bytes_skips_large_files() {
    let setup = Setup::new();
    let output = setup.scan(&["--max-file-bytes", "18"]);
    assert_eq!(output.status.code(), Some(1));
    let lines = json_lines(&output);
    assert_eq!(
        lines.len(),
        1,
        "the 19-byte file must be skipped: {lines:?}"
    );
    assert!(stderr(&output).contains("Skipped (over --max-file-bytes): 1"));
}

#[test]
fn extra_digests_keep_results() {
    let setup = Setup::new();
    let output = setup.scan(&["--digests", "md5,sha1,sha256", "--threads", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_lines(&output).len(), 2);

    let invalid = setup.scan(&["--digests", "crc32"]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(stderr(&invalid).contains("crc32"), "{}", stderr(&invalid));
}

#[test]
fn missing_store_fails_with_import_hint() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("tree/a.txt"), b"a");
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .arg("--data-dir")
        .arg(&data)
        .args(["scan", dir.path().join("tree").to_str().unwrap()])
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("no intel store in"), "{message}");
    assert!(message.contains("iocwatch intel import"), "{message}");
    assert!(!data.exists(), "scan created the data folder");
}

#[test]
fn special_file_path_exits_2() {
    let setup = Setup::new();
    let output = setup.iocwatch(&["scan", "/dev/zero"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("`/dev/zero` is not a regular file or folder"),
        "{message}"
    );
    assert!(message.contains("Errors: 1"), "{message}");
}

#[test]
fn nothing_read_for_size_exits_2() {
    let setup = Setup::new();
    let output = setup.scan(&["--max-file-bytes", "1"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("no file was read"), "{message}");
    assert!(
        message.contains("Skipped (over --max-file-bytes): 3"),
        "{message}"
    );
}

#[test]
fn second_scan_reuses_saved_index() {
    let setup = Setup::new();
    let first = setup.scan(&[]);
    let saved = setup
        .dir
        .path()
        .join("data")
        .join(intel::detector::SNAPSHOT_FILE);
    let modified = fs::metadata(&saved).unwrap().modified().unwrap();

    let second = setup.scan(&[]);

    assert_eq!(first.status.code(), Some(1));
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(json_lines(&first), json_lines(&second));
    assert_eq!(fs::metadata(&saved).unwrap().modified().unwrap(), modified);
}
