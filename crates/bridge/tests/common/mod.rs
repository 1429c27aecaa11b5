//! Test harness: a real `iocwatch api` on loopback with intel added through `events/add`,
//! a recording relay in front of it, a bound queue socket, and a runner for the
//! `custom-iocwatch` binary.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// A well-formed key for runs that never reach a server.
pub const API_KEY: &str = "6S8qKqbYWFtWtYkTKrJrL2NFcmDkZ6I0kZS1ZuTq";
/// A well-formed key that no user of the server has.
pub const UNKNOWN_KEY: &str = "0000000000000000000000000000000000000000";
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Builds a MISP `events/add` body with one attribute: threat level high, the event
/// tagged `tlp:amber`.
pub fn attribute(attribute_type: &str, value: &str, to_ids: bool, info: &str) -> Value {
    json!({"Event": {
        "info": info,
        "threat_level_id": "1",
        "analysis": "2",
        "distribution": "1",
        "Tag": [{"name": "tlp:amber"}],
        "Attribute": [{
            "category": "Payload delivery",
            "type": attribute_type,
            "value": value,
            "to_ids": to_ids,
        }],
    }})
}

/// How the server is reached.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Pause of the relay before it forwards each request.
    pub delay: Duration,
    /// TLS certificate and key (PEM) for the server to serve HTTPS with.
    pub tls: Option<(String, String)>,
}

/// A request the relay forwarded: the `Authorization` header and the JSON body.
#[derive(Debug, Clone)]
pub struct Request {
    pub authorization: Option<String>,
    pub body: Value,
}

/// A real `iocwatch api` process on 127.0.0.1 with its own data folder, killed on drop.
///
/// Over plain HTTP the bridge talks to a relay that records each request and then passes
/// its bytes to the server unchanged, so tests can count lookups and read their bodies. The
/// relay also delays requests when asked, because the server itself replies at once.
/// Over HTTPS the bridge talks to the server directly and no requests are recorded.
pub struct IntelServer {
    process: Child,
    _data_dir: tempfile::TempDir,
    key: String,
    url: String,
    ca_pem: Option<String>,
    event_ids: Vec<String>,
    requests: Option<Arc<Mutex<Vec<Request>>>>,
}

impl IntelServer {
    /// Starts a plain HTTP server that contains `events` (from [`attribute`]).
    pub fn start(events: Vec<Value>) -> IntelServer {
        IntelServer::start_with(events, Behaviour::default())
    }

    pub fn start_with(events: Vec<Value>, behaviour: Behaviour) -> IntelServer {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let key = add_user(data_dir.path());
        let (process, server_url) = spawn_api(data_dir.path(), behaviour.tls.as_ref());
        let mut server = IntelServer {
            process,
            _data_dir: data_dir,
            key,
            url: server_url.clone(),
            ca_pem: behaviour.tls.as_ref().map(|(cert, _)| cert.clone()),
            event_ids: Vec::new(),
            requests: None,
        };
        let agent = http_agent(server.ca_pem.as_deref());
        for event in events {
            let id = add_event(&agent, &server_url, &server.key, &event);
            server.event_ids.push(id);
        }
        if behaviour.tls.is_none() {
            let (url, requests) = start_relay(&server_url, behaviour.delay);
            server.url = url;
            server.requests = Some(requests);
        }
        server
    }

    /// Returns the base URL, as an administrator puts it in `<hook_url>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Returns the API key of the server's user, role `user`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns the ids the server gave the events, in the order they were passed.
    pub fn event_ids(&self) -> &[String] {
        &self.event_ids
    }

    /// Returns the requests recorded so far; only a plain HTTP server records them.
    pub fn requests(&self) -> Vec<Request> {
        let requests = self
            .requests
            .as_ref()
            .expect("requests are recorded over plain HTTP only");
        requests.lock().expect("requests lock").clone()
    }

    /// Returns the certificate the server presents, for `ca_file`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
}

impl Drop for IntelServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Returns the `iocwatch` binary of the build profile the tests run in. Cargo does not
/// build it for this package's tests, so it is built once here when it is missing.
fn iocwatch_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // The test executable is `<target>/<profile>/deps/<name>`.
        let exe = std::env::current_exe().expect("path of the test executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable inside <target>/<profile>/deps");
        let binary = profile_dir.join("iocwatch");
        if !binary.exists() {
            build_iocwatch(profile_dir);
        }
        assert!(
            binary.exists(),
            "iocwatch binary missing at {}",
            binary.display()
        );
        binary
    })
}

fn build_iocwatch(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("target folder");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "iocwatch",
            "--bin",
            "iocwatch",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for iocwatch");
    assert!(status.success(), "cargo build of iocwatch failed: {status}");
}

/// Adds a user with role `user` and returns its API key.
fn add_user(data_dir: &Path) -> String {
    let output = Command::new(iocwatch_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["users", "add", "bridge", "--role", "user"])
        .output()
        .expect("run iocwatch users add");
    assert!(
        output.status.success(),
        "iocwatch users add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(
        key.len(),
        40,
        "iocwatch users add printed no 40-character key"
    );
    key
}

/// Starts `iocwatch api` on a free loopback port and returns it with its base URL.
fn spawn_api(data_dir: &Path, tls: Option<&(String, String)>) -> (Child, String) {
    let mut command = Command::new(iocwatch_binary());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["api", "--listen", "127.0.0.1:0"]);
    if let Some((cert, key)) = tls {
        let cert_path = data_dir.join("api-cert.pem");
        let key_path = data_dir.join("api-key.pem");
        fs::write(&cert_path, cert).expect("write certificate");
        fs::write(&key_path, key).expect("write key");
        command
            .arg("--tls-cert")
            .arg(cert_path)
            .arg("--tls-key")
            .arg(key_path);
    }
    let mut process = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start iocwatch api");
    let stdout = process.stdout.take().expect("stdout of iocwatch api");
    let url = read_listen_url(stdout);
    (process, url)
}

/// Reads `listening on URL`, the first stdout line of `iocwatch api`.
fn read_listen_url(stdout: ChildStdout) -> String {
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout of iocwatch api");
    let url = line.trim().strip_prefix("listening on ");
    url.unwrap_or_else(|| panic!("iocwatch api did not start: {line:?}"))
        .to_string()
}

fn http_agent(ca_pem: Option<&str>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};

    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some(pem) = ca_pem {
        let certificate = Certificate::from_pem(pem.as_bytes())
            .expect("certificate PEM")
            .to_owned();
        let roots = RootCerts::Specific(Arc::new(vec![certificate]));
        config = config.tls_config(TlsConfig::builder().root_certs(roots).build());
    }
    config.build().new_agent()
}

/// Sends one `events/add` and returns the id of the stored event.
fn add_event(agent: &ureq::Agent, url: &str, key: &str, event: &Value) -> String {
    let mut response = agent
        .post(format!("{url}/events/add"))
        .header("Authorization", key)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .send(event.to_string())
        .expect("send events/add");
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .expect("events/add response");
    let body: Value = serde_json::from_str(&text).expect("events/add JSON");
    assert_eq!(status, 200, "events/add rejected: {body}");
    body["Event"]["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body["Event"]["id"].to_string())
}

/// Returns a URL on loopback where nothing listens.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Generates a self-signed certificate for 127.0.0.1, as (certificate PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("generate certificate");
    (generated.cert.pem(), generated.signing_key.serialize_pem())
}

/// Starts the recording relay on a free loopback port in front of `upstream_url`.
fn start_relay(upstream_url: &str, delay: Duration) -> (String, Arc<Mutex<Vec<Request>>>) {
    let upstream = upstream_url
        .strip_prefix("http://")
        .expect("relay forwards plain HTTP")
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let relay = Arc::new(Relay {
        upstream,
        delay,
        requests: Arc::clone(&requests),
    });
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let relay = Arc::clone(&relay);
            thread::spawn(move || relay.serve(stream));
        }
    });
    (format!("http://127.0.0.1:{port}"), requests)
}

struct Relay {
    upstream: String,
    delay: Duration,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Relay {
    /// Forwards one request per connection. Both heads get `Connection: close`, so the
    /// client opens a new connection for its next request.
    fn serve(&self, client: TcpStream) {
        let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = self.forward(client);
    }

    fn forward(&self, client: TcpStream) -> io::Result<()> {
        let mut client_reader = BufReader::new(client.try_clone()?);
        let Some(head) = read_head(&mut client_reader)? else {
            return Ok(());
        };
        let length = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0usize);
        let mut body = vec![0; length];
        client_reader.read_exact(&mut body)?;
        self.requests.lock().expect("requests lock").push(Request {
            authorization: header(&head, "authorization"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        thread::sleep(self.delay);

        let mut upstream = TcpStream::connect(&self.upstream)?;
        upstream.write_all(close_connection(&head).as_bytes())?;
        upstream.write_all(&body)?;
        let mut upstream_reader = BufReader::new(upstream);
        let response_head = read_head(&mut upstream_reader)?.unwrap_or_default();
        let mut client = client;
        client.write_all(close_connection(&response_head).as_bytes())?;
        io::copy(&mut upstream_reader, &mut client)?;
        client.flush()?;
        client.shutdown(Shutdown::Both)
    }
}

/// Reads an HTTP head up to and without its blank line, or `None` at end of stream.
fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok((!lines.is_empty()).then_some(lines));
        }
        if line == "\r\n" {
            return Ok(Some(lines));
        }
        lines.push(line.trim_end_matches("\r\n").to_string());
    }
}

fn header(head: &[String], name: &str) -> Option<String> {
    head.iter().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// Rebuilds a head with `Connection: close` in place of any `Connection` header.
fn close_connection(head: &[String]) -> String {
    let mut text = String::new();
    for line in head {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(key, _)| key.eq_ignore_ascii_case("connection"));
        if !is_connection {
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
    text.push_str("Connection: close\r\n\r\n");
    text
}

/// A temporary Wazuh-like layout: the queue socket, the log file, the cache folder.
pub struct Harness {
    dir: tempfile::TempDir,
    queue: UnixDatagram,
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = UnixDatagram::bind(dir.path().join("queue")).expect("bind queue socket");
        queue.set_nonblocking(true).expect("nonblocking");
        Harness { dir, queue }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an options file that points the socket, log and cache into the temporary
    /// folder, with `extra` settings added. Named as integratord names them.
    pub fn options(&self, extra: Value) -> PathBuf {
        let mut options = json!({
            "socket_path": self.path("queue"),
            "log_path": self.path("integrations.log"),
            "cache_path": self.path("cache"),
        });
        if let (Some(options), Some(extra)) = (options.as_object_mut(), extra.as_object()) {
            options.extend(extra.clone());
        }
        let path = self.path("custom-iocwatch-1715000000-4242.options");
        fs::write(&path, options.to_string()).expect("write options");
        path
    }

    /// Copies an alert fixture where integratord would write it.
    pub fn alert(&self, fixture: &str) -> PathBuf {
        let path = self.path("custom-iocwatch-1715000000-1234.alert");
        fs::copy(Path::new(FIXTURES).join("alerts").join(fixture), &path).expect("copy alert");
        path
    }

    /// Runs the binary as wazuh-integratord 4.14 does: alert, key, hook URL, debug flag,
    /// options file, timeout, retries.
    pub fn run(&self, fixture: &str, key: &str, url: &str, options: &Path) -> Output {
        let alert = self.alert(fixture);
        self.run_args(&[
            alert.into_os_string(),
            key.into(),
            url.into(),
            "".into(),
            options.as_os_str().to_owned(),
            "2".into(),
            "0".into(),
        ])
    }

    pub fn run_args(&self, args: &[OsString]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_custom-iocwatch"))
            .args(args)
            .output()
            .expect("run custom-iocwatch");
        assert!(output.status.success(), "exit status {:?}", output.status);
        output
    }

    /// Returns the next message on the queue socket, if one was sent.
    pub fn message(&self) -> Option<String> {
        let mut buffer = vec![0u8; 70_000];
        match self.queue.recv(&mut buffer) {
            Ok(size) => Some(String::from_utf8_lossy(&buffer[..size]).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("queue socket: {e}"),
        }
    }

    /// Splits a message into location and JSON body.
    pub fn parse(message: &str) -> (String, Value) {
        let rest = message.strip_prefix("1:").expect("queue prefix `1:`");
        let split = rest.find(":{").expect("location ends before the JSON body");
        let body = serde_json::from_str(&rest[split + 1..]).expect("JSON body");
        (rest[..split].to_string(), body)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("integrations.log")).unwrap_or_default()
    }
}
