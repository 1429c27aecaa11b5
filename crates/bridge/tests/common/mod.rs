//! Test harness: an intel server on loopback that serves MISP's `attributes/restSearch`,
//! a bound queue socket, and a runner for the `custom-iocwatch` binary.
//!
//! NOTE: `IntelServer` is a stand-in built from the request and response shapes of MISP's
//! OpenAPI description, because the iocwatch server does not serve this API yet. When it
//! does, `IntelServer::start` should launch the real server on 127.0.0.1 with the same
//! attributes imported. The tests only use `start`, `start_with`, `url`, `requests` and
//! `ca_pem`, so the swap stays inside this file.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

pub const API_KEY: &str = "6S8qKqbYWFtWtYkTKrJrL2NFcmDkZ6I0kZS1ZuTq";
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Builds an attribute in the shape of MISP's `AttributeRestSearchListItem`: the
/// attribute fields, its `Event` and its `Tag` list.
pub fn attribute(
    attribute_type: &str,
    value: &str,
    to_ids: bool,
    event_id: &str,
    info: &str,
) -> Value {
    json!({
        "id": format!("{event_id}01"),
        "event_id": event_id,
        "object_id": "0",
        "object_relation": null,
        "category": "Payload delivery",
        "type": attribute_type,
        "value": value,
        "to_ids": to_ids,
        "uuid": "5f2f8a7c-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
        "timestamp": "1700000000",
        "distribution": "5",
        "sharing_group_id": "0",
        "comment": "",
        "deleted": false,
        "disable_correlation": false,
        "first_seen": null,
        "last_seen": null,
        "Event": {
            "org_id": "1",
            "distribution": "1",
            "id": event_id,
            "info": info,
            "orgc_id": "1",
            "uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b",
            "threat_level_id": "1",
        },
        "Tag": [{"id": "3", "name": "tlp:amber", "colour": "#FFC000", "exportable": true}]
    })
}

/// How the server treats requests.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Pause before each response.
    pub delay: Duration,
    /// TLS certificate and key (PEM) to serve HTTPS with.
    pub tls: Option<(String, String)>,
}

/// A request the server received: the `Authorization` header and the JSON body.
#[derive(Debug, Clone)]
pub struct Request {
    pub authorization: Option<String>,
    pub body: Value,
}

/// The intel server on 127.0.0.1, stopped on drop.
pub struct IntelServer {
    port: u16,
    https: bool,
    ca_pem: Option<String>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl IntelServer {
    /// Starts a plain HTTP server that stores `attributes` and accepts [`API_KEY`].
    pub fn start(attributes: Vec<Value>) -> IntelServer {
        IntelServer::start_with(attributes, Behaviour::default())
    }

    pub fn start_with(attributes: Vec<Value>, behaviour: Behaviour) -> IntelServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            attributes,
            delay: behaviour.delay,
            tls: behaviour
                .tls
                .as_ref()
                .map(|(cert, key)| tls_config(cert, key)),
            requests: Arc::clone(&requests),
        });
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                thread::spawn(move || shared.serve(stream));
            }
        });
        IntelServer {
            port,
            https: behaviour.tls.is_some(),
            ca_pem: behaviour.tls.map(|(cert, _)| cert),
            requests,
        }
    }

    /// Returns the base URL, as an administrator puts it in `<hook_url>`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Returns the certificate the server presents, for `ca_file`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
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

struct Shared {
    attributes: Vec<Value>,
    delay: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Shared {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        match &self.tls {
            None => {
                let _ = self.answer(stream);
            }
            Some(config) => {
                let Ok(connection) = rustls::ServerConnection::new(Arc::clone(config)) else {
                    return;
                };
                let _ = self.answer(rustls::StreamOwned::new(connection, stream));
            }
        }
    }

    fn answer<S: Read + Write>(&self, mut stream: S) -> io::Result<()> {
        let (path, authorization, body) = read_request(&mut stream)?;
        thread::sleep(self.delay);

        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.requests.lock().expect("requests lock").push(Request {
            authorization: authorization.clone(),
            body: body.clone(),
        });

        let (status, answer) = if path != "/attributes/restSearch" {
            (404, error_json("Not Found", &path))
        } else if authorization.as_deref() != Some(API_KEY) {
            // MISP's `UnauthorizedApiError`.
            let message = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";
            (
                403,
                json!({"name": message, "message": message, "url": path}),
            )
        } else {
            (200, json!({"response": {"Attribute": self.search(&body)}}))
        };
        write_response(&mut stream, status, &answer)
    }

    /// Filters as MISP does for `value` and `to_ids`.
    fn search(&self, filter: &Value) -> Vec<Value> {
        let value = filter["value"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let detections_only = filter["to_ids"].as_bool().unwrap_or(false);
        self.attributes
            .iter()
            .filter(|a| a["value"].as_str().map(str::to_ascii_lowercase) == Some(value.clone()))
            .filter(|a| !detections_only || a["to_ids"] == true)
            .cloned()
            .collect()
    }
}

fn error_json(name: &str, url: &str) -> Value {
    json!({"name": name, "message": name, "url": url})
}

fn read_request<S: Read>(stream: &mut S) -> io::Result<(String, Option<String>, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();

    let mut authorization = None;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value),
                "content-length" => length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((path, authorization, body))
}

fn write_response<S: Write>(stream: &mut S, status: u16, body: &Value) -> io::Result<()> {
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        403 => "Forbidden",
        _ => "Not Found",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn tls_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
    Arc::new(config)
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
