//! `iocwatch up` at the edges of its run: a SIGTERM that arrives during the start stops it
//! cleanly, and a watched folder on a pseudo file system (such as /proc) gets a warning.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Maximum wait for each step of a test.
const DEADLINE: Duration = Duration::from_secs(20);

fn spawn_up(data_dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .env_remove("IOCWATCH_DATA_DIR")
        .env_remove("IOCWATCH_LOG")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["up", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to start iocwatch up")
}

fn terminate(child: &Child) {
    // SAFETY: kill only sends a signal to the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`up` did not stop in time after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_during_start_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut child = spawn_up(&data_dir, &[]);
    // `up` creates its folder right after installing its signal handlers: the signal
    // then arrives while the first start imports the sample intel and starts the manager.
    let deadline = Instant::now() + DEADLINE;
    while !data_dir.join("up").exists() {
        assert!(Instant::now() < deadline, "`up` created no data folder");
        std::thread::sleep(Duration::from_millis(1));
    }
    terminate(&child);
    let status = wait_exit(&mut child);
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(
        status.success(),
        "{status}; stdout: {stdout}; stderr: {stderr}"
    );

    // The interrupted first start left a data folder that the next start completes.
    let mut again = spawn_up(&data_dir, &[]);
    let lines = BufReader::new(again.stdout.take().unwrap()).lines();
    let ready = lines
        .map_while(Result::ok)
        .any(|line| line.starts_with("ready in "));
    terminate(&again);
    assert!(ready, "the second start did not get ready");
    assert!(wait_exit(&mut again).success());
}

#[test]
fn watching_proc_warns_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_up(&dir.path().join("data"), &["--watch", "/proc/self"]);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let warned = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = receiver.recv_timeout(left) else {
            break false;
        };
        if line.contains("proc file system") && line.contains("no alerts") {
            break true;
        }
        seen.push(line);
    };
    terminate(&child);
    assert!(warned, "no warning about /proc; stderr: {seen:?}");
    assert!(wait_exit(&mut child).success());
}
