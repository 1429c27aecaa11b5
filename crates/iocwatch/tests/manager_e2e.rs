//! End-to-end tests of the manager: the real `iocwatch` binary as manager and
//! as agents (`iocwatch agent --config` with a `[manager]` section), over TLS
//! on loopback, real inotify, real files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &str = "e2e-enrollment-secret";

fn iocwatch() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iocwatch"));
    command
        .env_remove("IOCWATCH_DATA_DIR")
        .env_remove("IOCWATCH_ENROLLMENT_SECRET");
    command
}

/// A child process killed when the test ends.
struct Process(Child);

impl Process {
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A manager started from a config in `root`, with its data in `root/manager`.
struct Manager {
    root: PathBuf,
    process: Option<Process>,
    enrollment: String,
}

impl Manager {
    fn start(root: &Path) -> Manager {
        std::fs::write(root.join("secret"), SECRET).unwrap();
        let mut manager = Manager {
            root: root.to_path_buf(),
            process: None,
            enrollment: String::new(),
        };
        manager.write_config("127.0.0.1:0", "127.0.0.1:0");
        manager.restart();
        manager
    }

    fn write_config(&self, enrollment: &str, agents: &str) {
        let config = format!(
            "data_dir = \"{data}\"\n\
             [listen]\nenrollment = \"{enrollment}\"\nagents = \"{agents}\"\n\
             [enrollment]\nsecret_file = \"{secret}\"\n\
             [agents]\ndisconnect_after_secs = 30\n\
             [api]\nlisten = \"127.0.0.1:0\"\n",
            data = self.data().display(),
            secret = self.root.join("secret").display(),
        );
        std::fs::write(self.root.join("server.toml"), config).unwrap();
    }

    fn data(&self) -> PathBuf {
        self.root.join("manager")
    }

    fn restart(&mut self) {
        let listen = self.data().join("listen.json");
        let _ = std::fs::remove_file(&listen);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("manager.log"))
            .unwrap();
        let child = iocwatch()
            .args(["--log", "info", "server", "--config"])
            .arg(self.root.join("server.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(Process(child));
        wait_until("the manager to listen", Duration::from_secs(20), || {
            listen.exists()
        });
        let addresses: Value =
            serde_json::from_str(&std::fs::read_to_string(&listen).unwrap()).unwrap();
        self.enrollment = addresses["enrollment"].as_str().unwrap().to_string();
        // A restart must listen where the agents already connect.
        self.write_config(&self.enrollment, addresses["agents"].as_str().unwrap());
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("manager.log")).unwrap_or_default()
    }

    fn alerts(&self) -> Vec<Value> {
        let path = self.data().join("logs/alerts/alerts.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Enrolls an agent named `name`; its identity goes to `root/<name>/enrollment`.
    fn enroll(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name).join("enrollment");
        let output = iocwatch()
            .args([
                "agent",
                "enroll",
                "--manager",
                &self.enrollment,
                "--name",
                name,
                "--secret-file",
            ])
            .arg(self.root.join("secret"))
            .arg("--dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "enroll failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    }

    fn agents(&self) -> Vec<Value> {
        let output = iocwatch()
            .args(["agents", "list", "--all", "--json", "--data-dir"])
            .arg(self.data())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Writes the agent configuration of `root/<name>`: `watch` monitored, events
/// sent to the manager with the enrollment in `root/<name>/enrollment`.
fn write_agent_config(root: &Path, name: &str, watch: &Path) -> PathBuf {
    let state = root.join(name);
    std::fs::create_dir_all(&state).unwrap();
    let config = format!(
        "[manager]\n\
         enrollment_dir = \"{enrollment}\"\n\
         keepalive_secs = 1\n\
         reconnect_max_secs = 1\n\
         [[directories]]\n\
         path = \"{watch}\"\n",
        enrollment = state.join("enrollment").display(),
        watch = watch.display(),
    );
    let path = state.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Starts `iocwatch agent --config` watching `watch`, with its state under `root/<name>`.
fn start_agent(root: &Path, name: &str, watch: &Path) -> Process {
    let config = write_agent_config(root, name, watch);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(format!("{name}.log")))
        .unwrap();
    let child = iocwatch()
        .args(["--log", "info", "--data-dir"])
        .arg(root.join(name))
        .args(["agent", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process(child)
}

/// Returns the spool path of the agent whose state is in `root/<name>`.
fn spool_path(root: &Path, name: &str) -> PathBuf {
    root.join(name).join("link/spool.sqlite")
}

/// Waits until the agent is connected and past its first baseline scan: a
/// probe file written in `watch` has raised its alert.
fn wait_ready(manager: &Manager, watch: &Path) {
    wait_until("the agent to connect", Duration::from_secs(20), || {
        manager
            .agents()
            .first()
            .is_some_and(|a| a["status"] == "active")
    });
    let probe = watch.join("ready.probe");
    let mut n = 0u32;
    wait_until("the probe alert", Duration::from_secs(30), || {
        n += 1;
        std::fs::write(&probe, format!("probe {n}")).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let path = probe.display().to_string();
        manager
            .alerts()
            .iter()
            .any(|a| a.pointer("/syscheck/path").and_then(Value::as_str) == Some(path.as_str()))
    });
}

/// Counts alerts per `syscheck.path` for files under `dir`.
fn alerts_by_path(alerts: &[Value], dir: &Path) -> HashMap<String, usize> {
    let prefix = dir.display().to_string();
    let mut counts = HashMap::new();
    for alert in alerts {
        let Some(path) = alert.pointer("/syscheck/path").and_then(Value::as_str) else {
            continue;
        };
        if path.starts_with(&prefix) && !path.ends_with(".probe") {
            *counts.entry(path.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn write_files(dir: &Path, prefix: &str, count: usize) {
    for n in 0..count {
        std::fs::write(
            dir.join(format!("{prefix}-{n:05}.txt")),
            format!("{prefix} {n}\n"),
        )
        .unwrap();
    }
}

/// Imports a MISP event with one sha256 detection attribute into the manager's intel store.
fn import_indicator(manager: &Manager, sha256: &str) {
    let event = serde_json::json!({"Event": {
        "info": "iocwatch end-to-end sample",
        "uuid": "5f0e1a62-8d1c-4d5e-9c57-3b1f6f0e2a11",
        "threat_level_id": "1",
        "analysis": "2",
        "date": "2024-05-01",
        "Attribute": [{
            "type": "sha256",
            "category": "Payload delivery",
            "value": sha256,
            "to_ids": true,
            "uuid": "0b3d8a57-2c9e-4f0a-b6e1-7d4c2f9a8e33",
        }],
    }});
    let file = manager.root.join("event.json");
    std::fs::write(&file, event.to_string()).unwrap();
    std::fs::create_dir_all(manager.data()).unwrap();
    let output = iocwatch()
        .args(["intel", "import", "--no-progress", "--data-dir"])
        .arg(manager.data())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    hashing::hash_reader(bytes, hashing::Algorithms::ALL)
        .unwrap()
        .sha256_hex()
        .unwrap()
}

#[test]
fn known_hash_gives_alert_with_misp_fields() {
    let root = tempfile::tempdir().unwrap();
    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let sample = b"iocwatch e2e: a file the intel knows\n".to_vec();

    let mut manager = Manager::start(root.path());
    manager.stop();
    import_indicator(&manager, &sha256_hex(&sample));
    manager.restart();
    manager.enroll("web-01");
    let _agent = start_agent(root.path(), "web-01", &watch);
    wait_ready(&manager, &watch);

    std::fs::write(watch.join("dropper.bin"), &sample).unwrap();
    wait_until("the intel alert", Duration::from_secs(20), || {
        manager.alerts().iter().any(|a| a["rule"]["level"] == 12)
    });
    let alert = manager
        .alerts()
        .into_iter()
        .find(|a| a["rule"]["level"] == 12)
        .unwrap();
    assert_eq!(alert["agent"]["id"], "001");
    assert_eq!(alert["agent"]["name"], "web-01");
    assert_eq!(
        alert["data"]["misp"]["event_info"],
        "iocwatch end-to-end sample"
    );
    assert_eq!(alert["data"]["misp"]["value"], sha256_hex(&sample));
    assert!(alert["syscheck"]["path"]
        .as_str()
        .unwrap()
        .ends_with("dropper.bin"));

    let log = std::fs::read_to_string(manager.data().join("logs/integrations.json")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"result\":\"match\"")),
        "{log}"
    );
}

#[test]
fn manager_section_sends_file_events() {
    let root = tempfile::tempdir().unwrap();
    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let manager = Manager::start(root.path());
    manager.enroll("web-01");
    let _agent = start_agent(root.path(), "web-01", &watch);
    wait_ready(&manager, &watch);

    let file = watch.join("report.txt");
    std::fs::write(&file, "quarterly figures\n").unwrap();
    let path = file.display().to_string();
    wait_until("the file alert", Duration::from_secs(20), || {
        manager
            .alerts()
            .iter()
            .any(|a| a.pointer("/syscheck/path").and_then(Value::as_str) == Some(path.as_str()))
    });
    let alert = manager
        .alerts()
        .into_iter()
        .find(|a| a.pointer("/syscheck/path").and_then(Value::as_str) == Some(path.as_str()))
        .unwrap();
    assert_eq!(alert["agent"]["name"], "web-01");
    assert_eq!(alert["syscheck"]["event"], "added");
    assert!(spool_path(root.path(), "web-01").exists());
}

#[test]
fn manager_problems_reported_with_others() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("agent.toml");
    std::fs::write(
        &config,
        "scan_interval_secs = 0\n[manager]\nkeepalive_secs = 0\n\
         [[directories]]\npath = \"/etc\"\n",
    )
    .unwrap();
    let output = iocwatch()
        .args(["agent", "--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`scan_interval_secs`"), "{stderr}");
    assert!(stderr.contains("`manager.keepalive_secs`"), "{stderr}");

    std::fs::write(&config, "[manager]\nadress = \"127.0.0.1:1\"\n").unwrap();
    let output = iocwatch()
        .args(["agent", "--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `adress`"), "{stderr}");
    assert!(stderr.contains("`directories`"), "{stderr}");
}

#[test]
fn missing_enrollment_names_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let config = write_agent_config(root.path(), "web-09", &watch);
    let output = iocwatch()
        .arg("--data-dir")
        .arg(root.path().join("web-09"))
        .args(["agent", "--once", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("iocwatch agent enroll"), "{stderr}");
}

#[test]
fn events_spooled_while_manager_down_arrive_once() {
    let root = tempfile::tempdir().unwrap();

    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let mut manager = Manager::start(root.path());
    manager.enroll("web-01");
    let _agent = start_agent(root.path(), "web-01", &watch);
    wait_ready(&manager, &watch);

    manager.stop();
    write_files(&watch, "down", 5000);
    let spool = spool_path(root.path(), "web-01");
    wait_until("5000 spooled events", Duration::from_secs(120), || {
        spooled(&spool) >= 5000
    });

    manager.restart();
    wait_until("5000 alerts", Duration::from_secs(120), || {
        alerts_by_path(&manager.alerts(), &watch).len() >= 5000
    });
    std::thread::sleep(Duration::from_secs(2));
    let counts = alerts_by_path(&manager.alerts(), &watch);
    assert_eq!(counts.len(), 5000);
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "duplicate alerts: {:?}",
        &doubled[..doubled.len().min(5)]
    );
}

#[test]
fn agent_killed_midway_loses_and_doubles_nothing() {
    let root = tempfile::tempdir().unwrap();

    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let manager = Manager::start(root.path());
    manager.enroll("web-01");
    let mut agent = start_agent(root.path(), "web-01", &watch);
    wait_ready(&manager, &watch);

    let writer = {
        let watch = watch.clone();
        std::thread::spawn(move || write_files(&watch, "kill", 5000))
    };
    wait_until("the first alerts", Duration::from_secs(60), || {
        alerts_by_path(&manager.alerts(), &watch).len() >= 500
    });
    agent.kill();
    writer.join().unwrap();
    let _agent = start_agent(root.path(), "web-01", &watch);

    wait_until("5000 alerts", Duration::from_secs(120), || {
        alerts_by_path(&manager.alerts(), &watch).len() >= 5000
    });
    std::thread::sleep(Duration::from_secs(2));
    let counts = alerts_by_path(&manager.alerts(), &watch);
    assert_eq!(counts.len(), 5000);
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "duplicate alerts: {:?}",
        &doubled[..doubled.len().min(5)]
    );
}

/// Events waiting in an agent's spool, read while the agent runs.
fn spooled(spool: &Path) -> u64 {
    if !spool.exists() {
        return 0;
    }
    link::Spool::open(spool, u64::MAX)
        .map(|s| s.len())
        .unwrap_or(0)
}

#[test]
fn removed_and_foreign_agents_are_refused_and_logged() {
    let root = tempfile::tempdir().unwrap();
    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let manager = Manager::start(root.path());
    manager.enroll("web-01");
    manager.enroll("web-02");

    let output = iocwatch()
        .args(["agents", "remove", "002", "--data-dir"])
        .arg(manager.data())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let agents = manager.agents();
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[1]["removed"], true);
    assert_eq!(agents[0]["status"], "never_connected");

    // A certificate issued by another manager's CA, pointed at this manager.
    let other_root = root.path().join("other");
    std::fs::create_dir_all(&other_root).unwrap();
    let other = Manager::start(&other_root);
    let foreign = other.enroll("web-03");
    let own = root.path().join("web-01/enrollment");
    std::fs::copy(own.join("ca.pem"), foreign.join("ca.pem")).unwrap();
    std::fs::copy(own.join("enrollment.json"), foreign.join("enrollment.json")).unwrap();
    let foreign_state = root.path().join("web-03");
    std::fs::create_dir_all(&foreign_state).unwrap();
    copy_dir(&foreign, &foreign_state.join("enrollment"));

    let _removed = start_agent(root.path(), "web-02", &watch);
    let _foreign = start_agent(root.path(), "web-03", &watch);
    std::fs::write(watch.join("a.txt"), "a").unwrap();
    wait_until("both refusals in the log", Duration::from_secs(20), || {
        let log = manager.log();
        log.contains("agent_removed") && log.contains("TLS handshake failed")
    });
    assert!(
        manager.alerts().is_empty(),
        "a refused agent's event was alerted"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Benchmark, not a test: detection latency from a file's close on the agent
/// to its line in alerts.json, for files written one at a time. Run with
/// `cargo test --release -p iocwatch --test manager_e2e -- --ignored --nocapture detection_latency`.
#[test]
#[ignore = "benchmark; prints measurements"]
fn detection_latency() {
    use std::io::{Read, Seek, SeekFrom};

    let root = tempfile::tempdir().unwrap();
    let watch = root.path().join("watched");
    std::fs::create_dir_all(&watch).unwrap();
    let manager = Manager::start(root.path());
    manager.enroll("web-01");
    let _agent = start_agent(root.path(), "web-01", &watch);
    wait_ready(&manager, &watch);

    let alerts_path = manager.data().join("logs/alerts/alerts.json");
    let mut alerts = std::fs::File::open(&alerts_path).unwrap();
    let mut offset = alerts.seek(SeekFrom::End(0)).unwrap();
    let mut latencies = Vec::new();
    for n in 0..300 {
        let path = watch.join(format!("latency-{n}.bin"));
        let needle = format!("\"path\":\"{}\"", path.display());
        std::fs::write(&path, format!("latency sample {n}")).unwrap();
        let closed = Instant::now();

        let mut seen = String::new();
        loop {
            alerts.seek(SeekFrom::Start(offset)).unwrap();
            let mut fresh = String::new();
            offset += alerts.read_to_string(&mut fresh).unwrap() as u64;
            seen.push_str(&fresh);
            if seen.contains(&needle) {
                latencies.push(closed.elapsed());
                break;
            }
            assert!(
                closed.elapsed() < Duration::from_secs(10),
                "no alert for {}",
                path.display()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "detection latency over {} files: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pick(0.50),
        pick(0.99),
        latencies[latencies.len() - 1]
    );
}
