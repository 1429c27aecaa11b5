//! Start-up checks of `iocwatch agent`: one agent per baseline database and per data
//! folder, paths of the wrong kind named with their key, and plain-text logs when stderr is
//! not a terminal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Maximum wait for the first agent to start.
const LOCK_WAIT: Duration = Duration::from_secs(30);

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("watched")).expect("create watched folder");
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an agent config watching `watched/`, with `extra` lines before the section.
    fn config(&self, extra: &str) -> PathBuf {
        let path = self.path("agent.toml");
        let text = format!(
            "scan_on_start = true\n{extra}\n[[directories]]\npath = \"{}\"\n",
            self.path("watched").display()
        );
        std::fs::write(&path, text).expect("write agent config");
        path
    }

    fn agent(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_iocwatch"));
        command
            .arg("--data-dir")
            .arg(self.path("data"))
            .arg("agent")
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `agent --check-config` on `config`, asserts exit code 2 and returns stderr.
    fn rejected_config(&self, config: &Path) -> String {
        let output = self
            .agent(config, &["--check-config"])
            .output()
            .expect("run agent");
        let message = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{message}");
        message
    }
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Kills the agent on drop, so that a failed assert leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an agent on `config` and waits until it holds its locks.
fn start_first_agent(setup: &Setup, config: &Path) -> Running {
    let events = setup.path("first-events.jsonl");
    let log = setup.path("first.log");
    let first = setup
        .agent(config, &[])
        .stdout(std::fs::File::create(&events).expect("create event file"))
        .stderr(std::fs::File::create(&log).expect("create log file"))
        .spawn()
        .expect("start the first agent");
    let first = Running(first);

    // The agent takes its locks before its first scan, so a scan notice means they are
    // held.
    let started = Instant::now();
    while !std::fs::read_to_string(&events)
        .unwrap_or_default()
        .contains("scan_started")
    {
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            started.elapsed() < LOCK_WAIT,
            "first agent did not start within {LOCK_WAIT:?}; its stderr:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first
}

#[test]
fn second_agent_on_same_baseline_fails() {
    let setup = Setup::new();
    let config = setup.config("");
    let first = start_first_agent(&setup, &config);

    let rejected = setup
        .agent(&config, &["--once"])
        .output()
        .expect("run agent");
    let message = stderr_of(&rejected);
    assert_eq!(rejected.status.code(), Some(2), "{message}");
    assert!(message.contains("another agent (pid "), "{message}");
    assert!(message.contains("baseline.sqlite.lock"), "{message}");

    drop(first);
    let after = setup
        .agent(&config, &["--once"])
        .output()
        .expect("run agent");
    assert!(after.status.success(), "{}", stderr_of(&after));
}

#[test]
fn second_agent_on_same_data_folder_fails_with_its_own_baseline() {
    let setup = Setup::new();
    let first = start_first_agent(&setup, &setup.config(""));

    let own_baseline = setup.path("other/baseline.sqlite");
    let second = setup.path("second.toml");
    let text = format!(
        "database_path = \"{}\"\n[[directories]]\npath = \"{}\"\n",
        own_baseline.display(),
        setup.path("watched").display()
    );
    std::fs::write(&second, text).expect("write second config");
    let rejected = setup
        .agent(&second, &["--once"])
        .output()
        .expect("run agent");
    let message = stderr_of(&rejected);
    assert_eq!(rejected.status.code(), Some(2), "{message}");
    assert!(
        message.contains(&format!("(pid {})", first.0.id())),
        "{message}"
    );
    assert!(message.contains("agent.lock"), "{message}");
    assert!(message.contains("its own --data-dir"), "{message}");
}

#[test]
fn regular_file_as_quarantine_dir_is_rejected() {
    let setup = Setup::new();
    let file = setup.path("not-a-folder");
    std::fs::write(&file, "x").expect("write file");
    let config = setup.config(&format!("quarantine_dir = \"{}\"", file.display()));

    let message = setup.rejected_config(&config);
    assert!(message.contains("`quarantine_dir`"), "{message}");
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("expected a directory"), "{message}");
}

#[test]
fn regular_file_as_monitored_path_is_rejected() {
    let setup = Setup::new();
    let file = setup.path("watched/hosts");
    std::fs::write(&file, "x").expect("write file");
    let config = setup.path("file.toml");
    let text = format!("[[directories]]\npath = \"{}\"\n", file.display());
    std::fs::write(&config, text).expect("write agent config");

    let message = setup.rejected_config(&config);
    assert!(message.contains("`directories[0].path`"), "{message}");
    assert!(message.contains("is a regular file"), "{message}");
}

#[test]
fn database_below_a_regular_file_is_rejected() {
    let setup = Setup::new();
    let file = setup.path("plain");
    std::fs::write(&file, "x").expect("write file");
    let database = file.join("baseline.sqlite");
    let config = setup.config(&format!("database_path = \"{}\"", database.display()));

    let message = setup.rejected_config(&config);
    assert!(message.contains("`database_path`"), "{message}");
    assert!(message.contains("which is not a directory"), "{message}");
}

#[test]
fn directory_as_output_file_is_rejected() {
    let setup = Setup::new();
    let folder = setup.path("events");
    std::fs::create_dir(&folder).expect("create folder");
    let config = setup.config(&format!(
        "[output]\nkind = \"file\"\npath = \"{}\"",
        folder.display()
    ));

    let message = setup.rejected_config(&config);
    assert!(message.contains("`output.path`"), "{message}");
    assert!(message.contains("is a directory"), "{message}");
}

#[test]
fn logs_have_no_colour_codes_off_terminal() {
    let setup = Setup::new();
    let config = setup.config("");

    let output = setup
        .agent(&config, &["--once"])
        .env("IOCWATCH_LOG", "debug")
        .output()
        .expect("run agent");

    let message = stderr_of(&output);
    assert!(output.status.success(), "{message}");
    assert!(message.contains(" INFO "), "no log lines: {message}");
    assert!(!message.contains('\u{1b}'), "escape code in: {message:?}");
}
