//! `iocwatch intel sync pull|push` between real `iocwatch api` processes on loopback: a full
//! pull then one of a changed event only, a push that follows distribution levels, and a
//! pull cut by a dropped connection that a rerun completes without duplicates.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

use common::{iocwatch, now, text};

/// Builds a uuid from two small numbers, so each test event and attribute has a known one.
fn uuid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// Builds a sha256 value from two small numbers.
fn sha256(kind: u32, n: u32) -> String {
    format!("{kind:08x}{n:056x}")
}

/// Builds a MISP event with one sha256 detection per entry of `attributes` (number, level).
fn event(
    n: u32,
    level: &str,
    published: bool,
    timestamp: i64,
    attributes: &[(u32, &str)],
) -> Value {
    let attributes: Vec<Value> = attributes
        .iter()
        .map(|(a, attribute_level)| {
            json!({
                "uuid": uuid(2, *a), "type": "sha256", "category": "Payload delivery",
                "value": sha256(n, *a), "to_ids": true, "distribution": attribute_level,
                "timestamp": timestamp.to_string(),
            })
        })
        .collect();
    json!({"Event": {
        "uuid": uuid(1, n), "info": format!("event {n}"), "distribution": level,
        "published": published, "timestamp": timestamp.to_string(), "date": "2026-12-01",
        "threat_level_id": "2", "analysis": "2",
        "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "Attribute": attributes,
    }})
}

/// Imports events into the store in `data_dir` as its operator would.
fn import(data_dir: &Path, events: &[Value]) {
    let file = data_dir.with_extension("import.json");
    std::fs::write(&file, json!({ "response": events }).to_string()).expect("write events");
    let output = iocwatch(data_dir)
        .args(["intel", "import", "--no-progress"])
        .arg(&file)
        .output()
        .expect("run iocwatch intel import");
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::remove_file(&file).expect("remove events file");
}

/// A real `iocwatch api` with its own data folder and a sync user; killed on drop.
struct Server {
    process: Child,
    dir: tempfile::TempDir,
    url: String,
    key: String,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let added = iocwatch(&data)
            .args(["users", "add", "syncer", "--role", "sync"])
            .output()
            .expect("run iocwatch users add");
        assert!(added.status.success(), "{}", text(&added.stderr));
        let key = text(&added.stdout).trim().to_string();

        let mut process = iocwatch(&data)
            .args(["api", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iocwatch api");
        let mut line = String::new();
        let stdout = process.stdout.take().expect("stdout of iocwatch api");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listen line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("iocwatch api did not start: {line:?}"))
            .to_string();
        Server {
            process,
            dir,
            url,
            key,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn addr(&self) -> SocketAddr {
        let authority = self.url.trim_start_matches("http://");
        authority.parse().expect("listen address")
    }

    /// Sends a request to the server's API; returns the status and the JSON body.
    fn call(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let url = format!("{}/{path}", self.url);
        let response = match body {
            Some(body) => agent
                .post(&url)
                .header("Authorization", &self.key)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
            None => agent
                .get(&url)
                .header("Authorization", &self.key)
                .header("Accept", "application/json")
                .call(),
        };
        let mut response = response.expect("API request");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&body).unwrap_or(Value::Null);
        (status, body)
    }

    /// Runs `iocwatch intel sync ACTION --url URL` on this server's store.
    fn sync(&self, action: &str, url: &str, key: &str, extra: &[&str]) -> Output {
        let key_file = self.dir.path().join("remote.key");
        std::fs::write(&key_file, format!("{key}\n")).expect("write key file");
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&key_file, owner_only).expect("chmod key file");
        iocwatch(&self.data())
            .args(["intel", "sync", action, "--url", url, "--key-file"])
            .arg(&key_file)
            .args(extra)
            .output()
            .expect("run iocwatch intel sync")
    }

    fn pull_from(&self, remote: &Server) -> Output {
        self.sync("pull", &remote.url, &remote.key, &[])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Counts the events and attributes of a store with `intel stats`.
fn counts(data_dir: &Path) -> (u64, u64) {
    let output = iocwatch(data_dir)
        .args(["intel", "stats", "--json"])
        .output()
        .expect("run iocwatch intel stats");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stats: Value = serde_json::from_slice(&output.stdout).expect("stats JSON");
    let count = |key: &str| stats[key].as_u64().expect("count in stats");
    (count("events"), count("attributes"))
}

/// Reads every event of a store with `intel export`.
fn exported_events(data_dir: &Path) -> Vec<Value> {
    let output = iocwatch(data_dir)
        .args(["intel", "export", "--format", "misp-json"])
        .output()
        .expect("run iocwatch intel export");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let export: Value = serde_json::from_slice(&output.stdout).expect("export JSON");
    export["response"]
        .as_array()
        .expect("response list")
        .iter()
        .map(|e| e["Event"].clone())
        .collect()
}

fn knows(data_dir: &Path, value: &str) -> bool {
    let output = iocwatch(data_dir)
        .args(["intel", "lookup", value])
        .output()
        .expect("run iocwatch intel lookup");
    output.status.code() == Some(0)
}

fn assert_reports(output: &Output, expected: &str) {
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains(expected),
        "expected `{expected}` in: {stdout}"
    );
}

#[test]
fn pull_fetches_all_then_only_changes() {
    let remote = Server::start();
    let local = Server::start();
    let start = now() - 600;
    let events = [
        event(1, "1", true, start, &[(11, "5"), (12, "5")]),
        event(2, "2", true, start + 1, &[(21, "5"), (22, "5")]),
        event(3, "3", true, start + 2, &[(31, "5"), (32, "5")]),
        event(4, "3", false, start + 3, &[(41, "5")]),
    ];
    for event in events {
        let (status, body) = remote.call("events/add", Some(event));
        assert_eq!(status, 200, "{body}");
    }

    let first = local.pull_from(&remote);
    assert_reports(
        &first,
        "3 published events in the index, 3 fetched: 3 added",
    );
    assert_eq!(counts(&local.data()), (3, 6));
    assert!(
        !knows(&local.data(), &sha256(4, 41)),
        "unpublished event pulled"
    );
    let pulled = exported_events(&local.data());
    for (n, expected) in [(1, "0"), (2, "1"), (3, "3")] {
        let event = pulled.iter().find(|e| e["uuid"] == uuid(1, n).as_str());
        let level = event.map(|e| e["distribution"].clone());
        assert_eq!(
            level,
            Some(json!(expected)),
            "level of event {n} after the pull"
        );
    }
    for event in &pulled {
        assert_eq!(
            event["Orgc"]["name"], "CIRCL",
            "creator of {}",
            event["uuid"]
        );
        assert_eq!(
            event["Org"]["name"], "iocwatch",
            "owner of {}",
            event["uuid"]
        );
    }
    let (status, row) = local.call(&format!("events/view/{}", uuid(1, 1)), None);
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["Event"]["distribution"], "0", "level in the local rows");
    assert_eq!(
        row["Event"]["Orgc"]["name"], "CIRCL",
        "creator in the local rows"
    );
    assert_eq!(
        row["Event"]["Org"]["name"], "iocwatch",
        "owner in the local rows"
    );

    let added = json!({"Event": {"Attribute": [{
        "uuid": uuid(2, 13), "type": "sha256", "category": "Payload delivery",
        "value": sha256(1, 13), "to_ids": true,
    }]}});
    let (status, body) = remote.call(&format!("events/edit/{}", uuid(1, 1)), Some(added));
    assert_eq!(status, 200, "{body}");

    let second = local.pull_from(&remote);
    assert_reports(
        &second,
        "3 published events in the index, 1 fetched: 0 added, 1 updated",
    );
    assert_eq!(counts(&local.data()), (3, 7));
    assert!(knows(&local.data(), &sha256(1, 13)));

    let third = local.pull_from(&remote);
    assert_reports(&third, "0 fetched");
}

#[test]
fn push_follows_distribution() {
    let local = Server::start();
    let remote = Server::start();
    let start = now() - 600;
    import(
        &local.data(),
        &[
            event(1, "0", true, start, &[(11, "5")]),
            event(2, "1", true, start + 1, &[(21, "5")]),
            event(3, "2", true, start + 2, &[(31, "5")]),
            event(4, "3", true, start + 3, &[(41, "5"), (42, "0"), (43, "1")]),
            event(5, "3", false, start + 4, &[(51, "5")]),
        ],
    );
    // Events written through the API keep their levels in the rows only.
    for event in [
        event(6, "0", true, start, &[(61, "5")]),
        event(7, "3", true, start, &[(71, "5"), (72, "0")]),
    ] {
        let (status, body) = local.call("events/add", Some(event));
        assert_eq!(status, 200, "{body}");
    }

    let first = local.sync("push", &remote.url, &remote.key, &[]);
    assert_reports(
        &first,
        "6 published events to consider: 3 added, 0 edited, 0 unchanged, 3 withheld",
    );
    for (n, expected) in [
        (1, 404),
        (2, 404),
        (3, 200),
        (4, 200),
        (5, 404),
        (6, 404),
        (7, 200),
    ] {
        let (status, body) = remote.call(&format!("events/view/{}", uuid(1, n)), None);
        assert_eq!(status, expected, "event {n} on the remote: {body}");
    }
    let (_, pushed) = remote.call(&format!("events/view/{}", uuid(1, 4)), None);
    let values: Vec<&str> = pushed["Event"]["Attribute"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|a| a["value"].as_str())
        .collect();
    assert_eq!(
        values,
        [sha256(4, 41)],
        "attributes kept on this server were pushed"
    );
    assert_eq!(pushed["Event"]["distribution"], "3");
    let (_, downgraded) = remote.call(&format!("events/view/{}", uuid(1, 3)), None);
    assert_eq!(
        downgraded["Event"]["distribution"], "1",
        "level 2 is sent as 1"
    );
    let (_, rendered) = remote.call(&format!("events/view/{}", uuid(1, 7)), None);
    let rendered = rendered["Event"]["Attribute"].to_string();
    assert!(rendered.contains(&sha256(7, 71)), "{rendered}");
    assert!(!rendered.contains(&sha256(7, 72)), "{rendered}");

    let again = local.sync("push", &remote.url, &remote.key, &[]);
    assert_reports(&again, "0 published events to consider");

    import(
        &local.data(),
        // Later than the remote's copy, which took the time of the first push.
        &[event(4, "3", true, now() + 5, &[(41, "5"), (44, "3")])],
    );
    let changed = local.sync("push", &remote.url, &remote.key, &[]);
    assert_reports(
        &changed,
        "1 published events to consider: 0 added, 1 edited",
    );
    let (_, edited) = remote.call(&format!("events/view/{}", uuid(1, 4)), None);
    let edited = edited["Event"]["Attribute"].to_string();
    assert!(edited.contains(&sha256(4, 44)), "{edited}");
}

/// A TCP proxy on loopback that forwards to `upstream` and closes every connection once
/// `limit` bytes have gone from the server to the client.
struct CuttingProxy {
    addr: SocketAddr,
    passed: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl CuttingProxy {
    fn start(upstream: SocketAddr) -> CuttingProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let passed = Arc::new(AtomicU64::new(0));
        let limit = Arc::new(AtomicU64::new(u64::MAX));
        let (p, l) = (passed.clone(), limit.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, p.clone(), l.clone()));
            }
        });
        CuttingProxy {
            addr,
            passed,
            limit,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn reset(&self, limit: u64) {
        self.passed.store(0, Ordering::SeqCst);
        self.limit.store(limit, Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    passed: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
) {
    if passed.load(Ordering::SeqCst) >= limit.load(Ordering::SeqCst) {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut buffer = vec![0u8; 8192];
    loop {
        let n = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = passed.fetch_add(n as u64, Ordering::SeqCst);
        let allowed = limit.load(Ordering::SeqCst).saturating_sub(before);
        let forward = n.min(usize::try_from(allowed).unwrap_or(usize::MAX));
        if client_write.write_all(&buffer[..forward]).await.is_err() || forward < n {
            break;
        }
    }
    requests.abort();
}

#[test]
fn dropped_connection_pull_resumes_without_duplicates() {
    const EVENTS: u32 = 6;
    const ATTRIBUTES: u32 = 150;
    let remote = Server::start();
    let start = now() - 600;
    let events: Vec<Value> = (1..=EVENTS)
        .map(|n| {
            let attributes: Vec<(u32, &str)> =
                (0..ATTRIBUTES).map(|a| (n * 1000 + a, "5")).collect();
            event(n, "3", true, start + i64::from(n), &attributes)
        })
        .collect();
    import(&remote.data(), &events);
    let proxy = CuttingProxy::start(remote.addr());

    // Measures the bytes of a whole pull, to cut the next one half way.
    let scratch = Server::start();
    assert_reports(
        &scratch.sync("pull", &proxy.url(), &remote.key, &[]),
        "6 fetched",
    );
    let whole = proxy.passed.load(Ordering::SeqCst);
    drop(scratch);

    let local = Server::start();
    proxy.reset(whole / 2);
    let cut = local.sync("pull", &proxy.url(), &remote.key, &[]);
    let stderr = text(&cut.stderr);
    assert_eq!(cut.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pull interrupted after"), "{stderr}");
    assert!(stderr.contains("rerun"), "{stderr}");
    let (stored, attributes) = counts(&local.data());
    assert!(
        stored > 0 && stored < u64::from(EVENTS),
        "{stored} events after the cut"
    );
    assert_eq!(
        attributes,
        stored * u64::from(ATTRIBUTES),
        "a partial event was stored"
    );

    proxy.reset(u64::MAX);
    let rerun = local.sync("pull", &proxy.url(), &remote.key, &[]);
    let fetched = format!("{} fetched", u64::from(EVENTS) - stored);
    assert_reports(&rerun, &fetched);
    assert_eq!(counts(&local.data()), (6, 900));

    let pulled = exported_events(&local.data());
    let event_uuids: HashSet<&str> = pulled.iter().filter_map(|e| e["uuid"].as_str()).collect();
    assert_eq!(event_uuids.len(), pulled.len(), "duplicate events");
    assert_eq!(event_uuids.len(), EVENTS as usize);
    let attribute_uuids: HashSet<&str> = pulled
        .iter()
        .flat_map(|e| e["Attribute"].as_array().into_iter().flatten())
        .filter_map(|a| a["uuid"].as_str())
        .collect();
    assert_eq!(
        attribute_uuids.len(),
        (EVENTS * ATTRIBUTES) as usize,
        "duplicate attributes"
    );
}
