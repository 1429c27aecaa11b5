//! Sightings pushed back to the remote MISP, end to end with real binaries on loopback: a
//! second `iocwatch api` acts as the remote, `iocwatch intel pull` takes its indicator,
//! `iocwatch up` detects a matching file in its watched folder and records a sighting,
//! and `intel push-sightings` and the next `intel pull` send it to the remote exactly
//! once, after the remote was down.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;

use common::text;

/// Maximum wait for a process to start and for each expected record.
const DEADLINE: Duration = Duration::from_secs(30);

const BIN: &str = env!("CARGO_BIN_EXE_iocwatch");

fn iocwatch(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("IOCWATCH_DATA_DIR")
        .env_remove("IOCWATCH_LOG")
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null());
    command
}

/// Spawns `command` with piped stdout and returns the child once it printed a line that
/// starts with `ready`, with the lines printed up to it. Later lines are read and dropped.
fn spawn_until(mut command: Command, ready: &str) -> (Child, Vec<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start iocwatch");
    let stdout = child.stdout.take().expect("stdout is piped");
    match common::lines_until(stdout, ready, DEADLINE) {
        Ok(lines) => (child, lines),
        Err(lines) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no `{ready}` line in time; printed: {lines:?}");
        }
    }
}

/// The remote: a real `iocwatch api` with its own data folder, stopped and started again
/// on the same address.
struct Remote {
    dir: tempfile::TempDir,
    process: Option<Child>,
    address: String,
    key: String,
}

impl Remote {
    fn start() -> Remote {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = common::add_sync_user(iocwatch(dir.path()));
        let mut remote = Remote {
            dir,
            process: None,
            address: "127.0.0.1:0".into(),
            key,
        };
        remote.resume();
        remote
    }

    /// Starts the API on the address of the first start.
    fn resume(&mut self) {
        let mut command = iocwatch(self.dir.path());
        command.args(["api", "--listen", &self.address]);
        let (process, lines) = spawn_until(command, "listening on ");
        let url = lines.last().expect("a listen line");
        self.address = url
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected listen line: {url}"))
            .to_string();
        self.process = Some(process);
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Imports an event with one sha256 detection, as the remote's operator would.
    fn add_event(&self, sha256: &str) {
        let event = json!({"Event": {
            "info": "pushed sightings",
            "uuid": "3f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "published": true,
            "Attribute": [{"type": "sha256", "category": "Payload delivery",
                "value": sha256, "to_ids": true}],
        }});
        let path = self.dir.path().join("event.json");
        common::import_event(iocwatch(self.dir.path()), &path, &event);
    }

    /// Lists the sightings the remote's `sightings/restSearch` returns.
    fn sightings(&self) -> Vec<Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = agent
            .post(format!("{}/sightings/restSearch", self.url()))
            .header("Authorization", &self.key)
            .header("Accept", "application/json")
            .content_type("application/json")
            .send(json!({"returnFormat": "json"}).to_string())
            .expect("POST sightings/restSearch");
        assert_eq!(response.status().as_u16(), 200);
        let text = response.body_mut().read_to_string().expect("read response");
        let body: Value = serde_json::from_str(&text).expect("JSON response");
        body["response"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Local {
    dir: tempfile::TempDir,
    key_file: PathBuf,
}

impl Local {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn intel(&self, remote: &Remote, command: &str) -> Output {
        iocwatch(&self.data())
            .args(["intel", command, "--url", &remote.url(), "--key-file"])
            .arg(&self.key_file)
            .output()
            .expect("run iocwatch intel")
    }
}

fn wait_for(what: &str, mut probe: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn detection_sighting_reaches_remote_once() {
    let payload = b"iocwatch sighting push test payload\n";
    let sha256 = format!("{:x}", Sha256::digest(payload));
    let mut remote = Remote::start();
    remote.add_event(&sha256);
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("remote.key");
    std::fs::write(&key_file, format!("{}\n", remote.key)).expect("write key file");
    let local = Local { dir, key_file };

    let pulled = local.intel(&remote, "pull");
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    assert!(
        text(&pulled.stdout).contains("1 events added"),
        "{}",
        text(&pulled.stdout)
    );

    // The remote goes down before the detection.
    remote.stop();
    let watched = local.dir.path().join("watched");
    std::fs::create_dir_all(&watched).expect("create watched folder");
    let mut up_command = iocwatch(&local.data());
    up_command.args(["up", "--listen", "127.0.0.1:0", "--watch"]);
    up_command.arg(&watched);
    let (mut up, _) = spawn_until(up_command, "ready in ");
    std::fs::write(watched.join("dropped.bin"), payload).expect("drop the file");

    let queued = wait_for("the sighting to be queued", || {
        let output = local.intel(&remote, "push-sightings");
        let stdout = text(&output.stdout);
        stdout.contains("1 queued").then(|| {
            assert_eq!(output.status.code(), Some(2), "{stdout}");
            stdout
        })
    });
    assert!(queued.contains("0 pushed"), "{queued}");
    let _ = up.kill();
    let _ = up.wait();

    // Back up: the next pull pushes the sighting, and nothing is pushed twice.
    remote.resume();
    let pulled = local.intel(&remote, "pull");
    let stdout = text(&pulled.stdout);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    assert!(
        stdout.contains("sightings: 1 pushed, 0 rejected, 0 queued"),
        "{stdout}"
    );
    let again = local.intel(&remote, "push-sightings");
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        stdout.contains("sightings: 0 pushed, 0 rejected, 0 queued"),
        "{stdout}"
    );

    let sightings = remote.sightings();
    assert_eq!(sightings.len(), 1, "{sightings:?}");
    let sighting = &sightings[0]["Sighting"];
    assert_eq!(sighting["type"], "0");
    assert!(
        sighting["source"].as_str().is_some_and(|s| !s.is_empty()),
        "{sighting}"
    );
}

/// Runs `intel push-sightings` to a closed loopback port on a new data folder in `dir`,
/// with `key` written to a key file; returns the output and the key file's path.
fn push_with_key_file(dir: &Path, key: &str) -> (Output, PathBuf) {
    let key_file = dir.join("key");
    std::fs::write(&key_file, key).unwrap();
    let output = iocwatch(&dir.join("data"))
        .args([
            "intel",
            "push-sightings",
            "--url",
            "http://127.0.0.1:9",
            "--key-file",
        ])
        .arg(&key_file)
        .output()
        .expect("run iocwatch intel push-sightings");
    (output, key_file)
}

#[test]
fn push_to_a_url_never_pulled_from_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = push_with_key_file(dir.path(), &"k".repeat(40));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nothing is queued for http://127.0.0.1:9"),
        "{stderr}"
    );
}

#[test]
fn control_byte_in_key_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (output, key_file) = push_with_key_file(dir.path(), "abc\u{7}def\n");
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("control character"), "{stderr}");
    assert!(stderr.contains(&key_file.display().to_string()), "{stderr}");
}
