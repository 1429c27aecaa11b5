//! `iocwatch watch` end to end: the real binary on a temporary folder, with and without intel.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

struct Watch {
    child: Child,
    lines: Receiver<serde_json::Value>,
    stderr: Receiver<String>,
}

impl Watch {
    fn start(data_dir: &Path, dir: &Path, extra: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
            .arg("watch")
            .arg(dir)
            .args(extra)
            .env("IOCWATCH_DATA_DIR", data_dir)
            .env("IOCWATCH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).expect("stdout carries JSON lines only");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        Watch {
            child,
            lines,
            stderr: stderr_lines,
        }
    }

    /// Waits for a stdout line satisfying `pred`.
    fn wait_line(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Waits for a stderr line containing `text`.
    fn wait_stderr(&self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for `{text}` on stderr"),
            }
        }
    }

    /// Sends SIGTERM and returns whether the process exited successfully.
    fn stop(mut self) -> bool {
        // The shell's built-in `kill`, so no procps package is needed.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", self.child.id()))
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().success()
    }
}

fn import_hash_list(data_dir: &Path, dir: &Path, sha256: &str) {
    let list = dir.join("iocs.txt");
    std::fs::write(&list, format!("{sha256}\n")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .args(["intel", "import"])
        .arg(&list)
        .env("IOCWATCH_DATA_DIR", data_dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "intel import failed");
}

fn sha256_hex(data: &[u8]) -> String {
    hashing::hash_reader(data, hashing::Algorithms::ALL)
        .unwrap()
        .sha256_hex()
        .unwrap()
}

#[test]
fn watch_without_intel_prints_all_events() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, dir) = (tmp.path().join("data"), tmp.path().join("watched"));
    std::fs::create_dir(&dir).unwrap();
    let watch = Watch::start(&data, &dir, &["--all-events"]);
    watch.wait_stderr("no intel");
    watch.wait_line("scan finished", |l| l["notice"] == "scan_finished");
    assert!(
        !data.join("intel.db").exists(),
        "watch created an intel store it only reads"
    );

    let file = dir.join("new.txt");
    std::fs::write(&file, b"hello").unwrap();
    let line = watch.wait_line("the added event", |l| l["path"] == file.to_str().unwrap());
    assert_eq!(line["type"], "file");
    assert_eq!(line["event"], "added");
    assert_eq!(line["mode"], "realtime");
    assert_eq!(line["sha256_after"], sha256_hex(b"hello"));
    assert!(
        watch.stop(),
        "iocwatch watch did not exit cleanly on SIGTERM"
    );
}

#[test]
fn watch_alerts_on_files_the_intel_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, dir) = (tmp.path().join("data"), tmp.path().join("watched"));
    std::fs::create_dir(&dir).unwrap();
    let bad = b"pretend this is malware".as_slice();
    let sha = sha256_hex(bad);
    import_hash_list(&data, tmp.path(), &sha);
    std::fs::write(dir.join("old.bin"), bad).unwrap();
    std::fs::write(dir.join("clean.txt"), b"clean").unwrap();

    let watch = Watch::start(&data, &dir, &[]);
    let existing = watch.wait_line("alert for the existing file", |l| l["type"] == "alert");
    assert_eq!(existing["path"], dir.join("old.bin").to_str().unwrap());
    assert_eq!(existing["event"]["event"], "added");
    assert_eq!(existing["matches"][0]["value"], sha);

    let copy = dir.join("copy.bin");
    std::fs::write(&copy, bad).unwrap();
    let alert = watch.wait_line("alert for the new file", |l| l["type"] == "alert");
    assert_eq!(alert["path"], copy.to_str().unwrap());
    assert_eq!(alert["event"]["mode"], "realtime");
    assert!(watch.stop());
}
