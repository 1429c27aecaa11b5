//! End-to-end test of `iocwatch up`: the real binary on a new data folder, real inotify
//! and real files. The EICAR test file raises an alert in alerts.json, the integration log,
//! the dashboard feed and a MISP sighting. An indicator added through the API, or imported
//! by another process, while `up` runs matches the next file. A second `up` on the same
//! folder is rejected while the first runs, and a later start reuses the data folder. The test also
//! prints the write-to-alert latency of 100 drops (measured, never asserted).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;

/// Maximum wait for `up` to report ready, and for each expected alert or record.
const DEADLINE: Duration = Duration::from_secs(20);
/// Files dropped for the latency measurement.
const LATENCY_DROPS: usize = 100;

/// Returns the EICAR anti-malware test file, assembled from pieces so that the test string
/// never appears whole in this source.
fn eicar() -> Vec<u8> {
    [
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ]
    .concat()
    .into_bytes()
}

/// A running `iocwatch up`, with what it printed at start; killed on drop.
struct Up {
    child: Child,
    lines: Vec<String>,
}

impl Up {
    fn start(data_dir: &Path, extra: &[&str]) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
            .env_remove("IOCWATCH_DATA_DIR")
            .env_remove("IOCWATCH_LOG")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["up", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("failed to start iocwatch up");
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = read_until_ready(stdout);
        Up { child, lines }
    }

    /// Returns the rest of the start-up line that begins with `prefix`.
    fn line(&self, prefix: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| l.strip_prefix(prefix))
    }

    fn url(&self) -> String {
        let first = self.lines.first().expect("a first line");
        first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line is not `listening on URL`: {first}"))
            .to_string()
    }

    /// Stops with SIGTERM and returns true when the process exited with success in time.
    fn terminate(mut self) -> bool {
        // SAFETY: kill only sends a signal to the child this test started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads stdout lines up to `ready in ...` on a thread, so that a hung start fails the
/// test at the deadline. Later lines are read and dropped.
fn read_until_ready(stdout: ChildStdout) -> Vec<String> {
    common::lines_until(stdout, "ready in ", DEADLINE)
        .unwrap_or_else(|lines| panic!("`up` not ready in time; printed: {lines:?}"))
}

/// A MISP API client with the admin key.
struct Api {
    agent: ureq::Agent,
    url: String,
    key: String,
}

impl Api {
    fn new(url: String, key: String) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Api { agent, url, key }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.url))
            .header("Authorization", &self.key)
            .header("Accept", "application/json")
            .call()
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    fn post(&self, path: &str, body: &Value) -> (u16, String) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", &self.key)
            .header("Accept", "application/json")
            .content_type("application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path} failed: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// Adds an event whose sha256 attributes are `hashes`, as detection indicators.
    fn add_event(&self, info: &str, hashes: &[String]) {
        let attributes: Vec<Value> = hashes
            .iter()
            .map(|h| json!({"type": "sha256", "category": "Payload delivery", "value": h, "to_ids": true}))
            .collect();
        let body =
            json!({"Event": {"info": info, "threat_level_id": "2", "Attribute": attributes}});
        let (status, text) = self.post("/events/add", &body);
        assert_eq!(status, 200, "events/add: {text}");
    }
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Returns the JSON lines of `path` that satisfy `keep`.
fn json_lines(path: &Path, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| keep(v))
        .collect()
}

/// Returns the detection alert (`data.misp` set, level 12 or more) for `file`.
fn detection_alert(alerts_json: &Path, file: &Path) -> Option<Value> {
    let file = file.to_str().expect("UTF-8 path");
    json_lines(alerts_json, |a| {
        a["syscheck"]["path"] == file
            && a["syscheck"]["event"] == "added"
            && a["data"]["misp"]["event_id"].is_string()
            && a["rule"]["level"].as_u64().unwrap_or(0) >= 12
    })
    .into_iter()
    .next()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn eicar_drop_raises_alert_and_sighting() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    let up = Up::start(&data_dir, &[]);
    let key = up
        .line("api key: ")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an api key line at first start")
        .to_string();
    let drop_dir = PathBuf::from(up.line("watching: ").expect("a watching line"));
    let alerts_json = PathBuf::from(up.line("alerts: ").expect("an alerts line"));
    let integration_log = PathBuf::from(up.line("integration log: ").expect("a log line"));
    let api = Api::new(up.url(), key);

    // The EICAR file: an alert with the rule level and data.misp.
    let eicar_path = drop_dir.join("eicar.com");
    std::fs::write(&eicar_path, eicar()).expect("write the EICAR file");
    let alert = wait_for("the EICAR alert", || {
        detection_alert(&alerts_json, &eicar_path)
    });
    let misp = &alert["data"]["misp"];
    assert!(misp["event_info"].as_str().unwrap_or("").contains("TEST"));
    assert_eq!(misp["value"], sha256_hex(&eicar()));
    assert!(misp["tags"].to_string().contains("iocwatch:test"));

    // The integration log records the lookup as a match.
    let path_text = eicar_path.to_str().unwrap().to_string();
    wait_for("the integration log line", || {
        let lines = json_lines(&integration_log, |l| {
            l["path"] == path_text.as_str() && l["result"] == "match"
        });
        (!lines.is_empty()).then_some(())
    });

    // A sighting of type 0 on the matched attribute, with the agent as source.
    let event_id = misp["event_id"].as_str().unwrap().to_string();
    let attribute_id = misp["attribute_id"].as_str().unwrap().to_string();
    let sightings = wait_for("the sighting", || {
        let (status, text) = api.get(&format!("/sightings/index/{event_id}"));
        assert_eq!(status, 200, "sightings/index: {text}");
        let list: Vec<Value> = serde_json::from_str(&text).ok()?;
        (!list.is_empty()).then_some(list)
    });
    let sighting = &sightings[0]["Sighting"];
    assert_eq!(sighting["attribute_id"], attribute_id.as_str());
    assert_eq!(sighting["type"], "0");
    assert_eq!(sighting["source"], alert["agent"]["name"]);

    // The dashboard's alert feed, once the dashboard serves it.
    let (status, _) = api.get("/iocwatch/alerts");
    if status == 404 {
        eprintln!("GET /iocwatch/alerts returned 404: the dashboard has no alert feed yet");
    } else {
        wait_for("the alert in the dashboard feed", || {
            let (status, text) = api.get("/iocwatch/alerts");
            (status == 200 && text.contains("eicar.com")).then_some(())
        });
    }

    // An indicator added through the API matches a file dropped a second later.
    let sample = b"iocwatch end-to-end sample added through the API\n";
    api.add_event(
        "end-to-end test: added while running",
        &[sha256_hex(sample)],
    );
    std::thread::sleep(Duration::from_secs(1));
    let sample_path = drop_dir.join("added-through-api.bin");
    std::fs::write(&sample_path, sample).expect("write the sample");
    wait_for("the alert on the new indicator", || {
        detection_alert(&alerts_json, &sample_path)
    });

    // An indicator imported by another process matches too: `up` sees the store change.
    let imported = b"iocwatch end-to-end sample imported by another process\n";
    let list = root.path().join("imported.txt");
    std::fs::write(&list, format!("{}\n", sha256_hex(imported))).expect("write the list");
    run_cli(&data_dir, &["intel", "import", list.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(2));
    let imported_path = drop_dir.join("imported-by-cli.bin");
    std::fs::write(&imported_path, imported).expect("write the imported sample");
    wait_for("the alert on the imported indicator", || {
        detection_alert(&alerts_json, &imported_path)
    });

    // A second `up` on the same data folder stops at the local agent's lock.
    let second = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .env_remove("IOCWATCH_DATA_DIR")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["up", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run a second iocwatch up");
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{message}");
    assert!(message.contains("agent.lock"), "{message}");
    assert!(
        message.contains(&format!("(pid {})", up.child.id())),
        "{message}"
    );

    measure_latency(&api, &drop_dir, &alerts_json);
    assert!(up.terminate(), "`up` did not stop cleanly on SIGTERM");

    // A second start reuses the data folder: no new key, no second import.
    let (events_before, _) = count_events(&data_dir);
    let again = Up::start(&data_dir, &[]);
    assert!(again.line("sample intel: ").is_none(), "{:?}", again.lines);
    assert!(
        again
            .line("api key: ")
            .is_some_and(|l| l.starts_with("shown at the first start")),
        "{:?}",
        again.lines
    );
    let (events_after, users) = count_events(&data_dir);
    assert_eq!(events_before, events_after);
    assert_eq!(users, 1);
    assert!(again.terminate(), "second start did not stop cleanly");
}

/// Runs `iocwatch --data-dir DATA_DIR ARGS`, asserts success and returns its stdout.
fn run_cli(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .env_remove("IOCWATCH_DATA_DIR")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run iocwatch");
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Returns the numbers of events and API users, read through the CLI.
fn count_events(data_dir: &Path) -> (usize, usize) {
    let run = |args: &[&str]| run_cli(data_dir, args);
    let stats: Value =
        serde_json::from_str(&run(&["intel", "stats", "--json"])).unwrap_or_default();
    let events = stats["events"].as_u64().unwrap_or(0) as usize;
    let users = run(&["users", "list"]).lines().count();
    (events, users)
}

/// Drops files whose sha256 the intel lists, one at a time, and prints p50 and p99 of
/// the time from the write to the alert line in alerts.json.
fn measure_latency(api: &Api, drop_dir: &Path, alerts_json: &Path) {
    let contents: Vec<Vec<u8>> = (0..LATENCY_DROPS)
        .map(|i| format!("iocwatch latency sample {i}\n").into_bytes())
        .collect();
    let hashes: Vec<String> = contents.iter().map(|c| sha256_hex(c)).collect();
    api.add_event("end-to-end test: latency samples", &hashes);
    std::thread::sleep(Duration::from_secs(1));

    let mut tail = Tail::open(alerts_json);
    let mut latencies = Vec::with_capacity(LATENCY_DROPS);
    for (i, content) in contents.iter().enumerate() {
        let path = drop_dir.join(format!("latency-{i}.bin"));
        let needle = format!("\"path\":\"{}\"", path.display());
        let started = Instant::now();
        std::fs::write(&path, content).expect("write a latency sample");
        tail.wait_for(&needle, started + DEADLINE);
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "write to alert line, {} drops (debug build): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// Reads lines appended to a file, polling every 200 µs.
struct Tail {
    file: std::fs::File,
    pending: String,
}

impl Tail {
    fn open(path: &Path) -> Tail {
        let mut file = std::fs::File::open(path).expect("open alerts.json");
        file.seek(SeekFrom::End(0)).expect("seek to the end");
        Tail {
            file,
            pending: String::new(),
        }
    }

    fn wait_for(&mut self, needle: &str, deadline: Instant) {
        loop {
            let mut chunk = String::new();
            self.file
                .read_to_string(&mut chunk)
                .expect("read alerts.json");
            self.pending.push_str(&chunk);
            while let Some(end) = self.pending.find('\n') {
                let line: String = self.pending.drain(..=end).collect();
                if line.contains(needle) && line.contains("\"misp\"") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no alert line with {needle}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
