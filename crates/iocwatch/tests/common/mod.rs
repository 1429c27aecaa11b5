//! Helpers shared by the end-to-end tests that run the `iocwatch` binary: reading a
//! process's start-up lines, adding a sync user to a data folder and importing an event.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_iocwatch");

/// Returns an `iocwatch` command on the data folder `data_dir`, with stdin closed.
pub fn iocwatch(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.arg("--data-dir").arg(data_dir).stdin(Stdio::null());
    command
}

/// Returns the current Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Decodes process output as text, replacing invalid UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads `stdout` line by line on a thread until a line starts with `ready`, and returns
/// the lines up to and including it. Returns `Err` with the lines read so far when
/// `timeout` passes first or the output ends. Later lines are read and dropped.
pub fn lines_until(
    stdout: impl Read + Send + 'static,
    ready: &str,
    timeout: Duration,
) -> Result<Vec<String>, Vec<String>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = receiver.recv_timeout(left) else {
            return Err(lines);
        };
        let done = line.starts_with(ready);
        lines.push(line);
        if done {
            std::thread::spawn(move || receiver.iter().for_each(drop));
            return Ok(lines);
        }
    }
}

/// Runs `iocwatch users add puller --role sync` with `command`, an `iocwatch` command on
/// the data folder of the new user, and returns the printed API key.
pub fn add_sync_user(mut command: Command) -> String {
    let added = command
        .args(["users", "add", "puller", "--role", "sync"])
        .output()
        .expect("run iocwatch users add");
    let stderr = String::from_utf8_lossy(&added.stderr);
    assert!(added.status.success(), "{stderr}");
    String::from_utf8_lossy(&added.stdout).trim().to_string()
}

/// Writes `event` to `path` and imports it with `intel import`, run by `command`, an
/// `iocwatch` command on the data folder to import into.
pub fn import_event(mut command: Command, path: &Path, event: &serde_json::Value) {
    std::fs::write(path, event.to_string()).expect("write event");
    let output = command
        .args(["intel", "import", "--no-progress"])
        .arg(path)
        .output()
        .expect("run iocwatch intel import");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}
