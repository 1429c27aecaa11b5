//! `iocwatch intel pull` against a second `iocwatch api` process on loopback: a first
//! pull, incremental ones with their overlap, filters, and key handling. A server with a
//! fixed response, also on loopback, checks rejected values and page limits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};

use serde_json::json;

mod common;

use common::{iocwatch, now, text};

/// A real `iocwatch api` with its own data folder; killed on drop.
struct RemoteApi {
    process: Child,
    dir: tempfile::TempDir,
    url: String,
    key: String,
}

impl RemoteApi {
    fn start() -> RemoteApi {
        RemoteApi::start_with(&[])
    }

    /// Starts the API over HTTPS with a self-signed certificate for 127.0.0.1; returns it
    /// with the certificate's PEM.
    fn start_https() -> (RemoteApi, String) {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("generate certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).expect("write certificate");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
        let remote = RemoteApi::start_with(&[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ]);
        (remote, generated.cert.pem())
    }

    fn start_with(api_args: &[&std::ffi::OsStr]) -> RemoteApi {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = common::add_sync_user(iocwatch(dir.path()));

        let mut process = iocwatch(dir.path())
            .args(["api", "--listen", "127.0.0.1:0"])
            .args(api_args)
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
        RemoteApi {
            process,
            dir,
            url,
            key,
        }
    }

    /// Imports one event with a sha256 detection, `timestamp` and `tags` into the
    /// remote's store, as its operator would.
    fn add_event(&self, name: &str, sha256: &str, timestamp: i64, tags: &[&str]) {
        let tags: Vec<_> = tags.iter().map(|t| json!({"name": t})).collect();
        let event = json!({"Event": {
            "info": name,
            "uuid": uuid_for(sha256),
            "timestamp": timestamp.to_string(),
            "Tag": tags,
            "Attribute": [{
                "type": "sha256",
                "category": "Payload delivery",
                "value": sha256,
                "to_ids": true,
                "timestamp": timestamp.to_string(),
            }],
        }});
        let path = self.dir.path().join(format!("{name}.json"));
        common::import_event(iocwatch(self.dir.path()), &path, &event);
    }
}

impl Drop for RemoteApi {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Builds a stable UUID from the first 32 hex digits of a hash.
fn uuid_for(hex: &str) -> String {
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn sha256(digit: char) -> String {
    digit.to_string().repeat(64)
}

struct Local {
    dir: tempfile::TempDir,
    key_file: PathBuf,
}

impl Local {
    fn new(remote: &RemoteApi) -> Local {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("remote.key");
        std::fs::write(&key_file, format!("{}\n", remote.key)).expect("write key file");
        Local { dir, key_file }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pull(&self, remote: &RemoteApi, extra: &[&str]) -> Output {
        iocwatch(&self.data())
            .args(["intel", "pull", "--url", &remote.url, "--key-file"])
            .arg(&self.key_file)
            .args(extra)
            .output()
            .expect("run iocwatch intel pull")
    }

    fn knows(&self, sha256: &str) -> bool {
        let output = iocwatch(&self.data())
            .args(["intel", "lookup", sha256])
            .output()
            .expect("run iocwatch intel lookup");
        output.status.code() == Some(0)
    }
}

fn assert_pulled(output: &Output, added: usize) -> String {
    assert_pulled_unchanged(output, added, 0)
}

fn assert_pulled_unchanged(output: &Output, added: usize, unchanged: usize) -> String {
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let expected = format!("{added} events added, 0 updated, {unchanged} unchanged");
    assert!(
        stdout.contains(&expected),
        "expected `{expected}` in: {stdout}"
    );
    stdout
}

#[test]
fn second_pull_fetches_only_newer_events() {
    let remote = RemoteApi::start();
    let local = Local::new(&remote);
    let start = now();
    remote.add_event("first", &sha256('1'), start - 600, &[]);
    remote.add_event("second", &sha256('2'), start - 500, &[]);

    let first = local.pull(&remote, &["--page-size", "1"]);
    let stdout = assert_pulled(&first, 2);
    assert!(stdout.contains("3 pages"), "{stdout}");
    assert!(local.knows(&sha256('1')));
    assert!(local.knows(&sha256('2')));

    remote.add_event("third", &sha256('3'), start - 100, &[]);
    let second = local.pull(&remote, &["--overlap", "0s"]);
    assert_pulled(&second, 1);
    assert!(local.knows(&sha256('3')));

    let third = local.pull(&remote, &["--overlap", "0s"]);
    assert_pulled(&third, 0);
    // The default overlap of an hour fetches the three events again, unchanged.
    assert_pulled_unchanged(&local.pull(&remote, &[]), 0, 3);
}

#[test]
fn late_events_need_the_overlap_or_full() {
    let remote = RemoteApi::start();
    let local = Local::new(&remote);
    let start = now();
    remote.add_event("newest", &sha256('a'), start - 60, &[]);
    assert_pulled(&local.pull(&remote, &[]), 1);

    // Events reaching the remote after the pull, with timestamps older than the newest.
    remote.add_event("late", &sha256('b'), start - 1_800, &[]);
    remote.add_event("much later", &sha256('c'), start - 10 * 86_400, &[]);
    assert_pulled_unchanged(&local.pull(&remote, &[]), 1, 1);
    assert!(local.knows(&sha256('b')));
    assert!(!local.knows(&sha256('c')));

    assert_pulled_unchanged(&local.pull(&remote, &["--full"]), 1, 2);
    assert!(local.knows(&sha256('c')));
}

#[test]
fn failed_pull_does_not_keep_since() {
    let remote = RemoteApi::start();
    let local = Local::new(&remote);
    remote.add_event("ten days", &sha256('d'), now() - 10 * 86_400, &[]);

    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let failed = iocwatch(&local.data())
        .args([
            "intel",
            "pull",
            "--url",
            &dead_url,
            "--since",
            "1d",
            "--key-file",
        ])
        .arg(&local.key_file)
        .output()
        .expect("run iocwatch intel pull");
    assert_eq!(failed.status.code(), Some(2), "{}", text(&failed.stderr));

    assert_pulled(&local.pull(&remote, &["--since", "30d"]), 1);
    assert!(local.knows(&sha256('d')));
}

#[test]
fn trace_logs_never_hold_the_key() {
    let remote = RemoteApi::start();
    remote.add_event("traced", &sha256('e'), now() - 60, &[]);
    let local = Local::new(&remote);
    let output = local.pull(&remote, &["--log", "trace,ureq_proto=trace,ureq=trace"]);
    assert_pulled(&output, 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("ureq"), "no HTTP client log in: {stderr}");
    // Dumps split headers across lines, so no piece of the key may appear.
    for piece in remote.key.as_bytes().chunks(8) {
        let piece = std::str::from_utf8(piece).expect("ASCII key");
        assert!(!stderr.contains(piece), "the key leaked into: {stderr}");
    }
}

/// Serves `body` as the answer to every request on a loopback port; returns its URL.
fn serve_fixed(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            skip_request(&mut stream);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// Reads one request's headers and body.
fn skip_request(stream: &mut std::net::TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let _ = reader.take(length).read_to_end(&mut Vec::new());
}

fn pull_from(url: &str, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = iocwatch(&dir.path().join("data"))
        .args(["intel", "pull", "--url", url])
        .args(extra)
        .env("IOCWATCH_REMOTE_KEY", "k".repeat(40))
        .output()
        .expect("run iocwatch intel pull");
    (output, dir)
}

#[test]
fn rejected_values_and_invalid_events_are_reported() {
    let attribute = |uuid: &str, kind: &str, value: &str| {
        json!({"uuid": uuid, "type": kind, "category": "Payload delivery", "to_ids": true,
            "value": value})
    };
    let page = json!({"response": [
        {"Event": {"uuid": "33333333-3333-4333-8333-333333333333", "info": "good",
            "timestamp": "1796000000",
            "Attribute": [attribute("44444444-4444-4444-8444-444444444444", "sha256", &sha256('f'))]}},
        {"Event": {"uuid": "55555555-5555-4555-8555-555555555555", "info": "bad values",
            "timestamp": "1796000001",
            "Attribute": [attribute("66666666-6666-4666-8666-666666666666", "sha256", "zz"),
                attribute("77777777-7777-4777-8777-777777777777", "no-such-type", "x")]}},
        {"Event": {"uuid": "not-a-uuid", "info": "bad event", "timestamp": "1796000002"}},
    ]});
    let url = serve_fixed(page.to_string().into_bytes());
    let (output, _dir) = pull_from(&url, &[]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "2 events added, 0 updated, 0 unchanged, 1 invalid; 1 attributes, 3 rejected"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected page 1 attribute 6666"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unknown attribute type `no-such-type`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`not-a-uuid` is not a valid uuid"),
        "{stdout}"
    );
    assert!(stderr.contains("rejected"), "no warning in: {stderr}");
}

#[test]
fn oversized_page_and_out_of_range_options_are_refused() {
    let url = serve_fixed(vec![b' '; 2 * 1024 * 1024]);
    let (output, _dir) = pull_from(&url, &["--max-page-mib", "1"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));

    for (option, value) in [
        ("--timeout-secs", "18446744073709551615"),
        ("--timeout-secs", "0"),
        ("--page-size", "0"),
        ("--max-page-mib", "0"),
    ] {
        let (output, _dir) = pull_from(&url, &[option, value]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{option} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn since_and_tag_filters_apply() {
    let remote = RemoteApi::start();
    let start = now();
    remote.add_event("old", &sha256('4'), start - 30 * 86_400, &["tlp:green"]);
    remote.add_event("recent", &sha256('5'), start - 3_600, &["tlp:green"]);
    remote.add_event("untagged", &sha256('6'), start - 3_600, &[]);

    let by_age = Local::new(&remote);
    assert_pulled(&by_age.pull(&remote, &["--since", "7d"]), 2);
    assert!(!by_age.knows(&sha256('4')));
    assert!(by_age.knows(&sha256('5')));

    let by_tag = Local::new(&remote);
    assert_pulled(&by_tag.pull(&remote, &["--tag", "tlp:green"]), 2);
    assert!(by_tag.knows(&sha256('4')));
    assert!(!by_tag.knows(&sha256('6')));
}

#[test]
fn key_from_environment_and_wrong_key() {
    let remote = RemoteApi::start();
    remote.add_event("only", &sha256('7'), now() - 60, &[]);
    let local = Local::new(&remote);

    let from_env = iocwatch(&local.data())
        .args(["intel", "pull", "--url", &remote.url])
        .env("IOCWATCH_REMOTE_KEY", &remote.key)
        .output()
        .expect("run iocwatch intel pull");
    assert_pulled(&from_env, 1);

    let wrong = "x".repeat(40);
    let rejected = iocwatch(&local.data())
        .args(["intel", "pull", "--url", &remote.url])
        .env("IOCWATCH_REMOTE_KEY", &wrong)
        .output()
        .expect("run iocwatch intel pull");
    let stderr = text(&rejected.stderr);
    assert_eq!(rejected.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(!stderr.contains(&wrong), "the key leaked into: {stderr}");

    let missing = iocwatch(&local.data())
        .args(["intel", "pull", "--url", &remote.url])
        .env_remove("IOCWATCH_REMOTE_KEY")
        .output()
        .expect("run iocwatch intel pull");
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("--key-file"));
}

#[test]
fn https_pull_trusts_ca_file() {
    let (remote, cert_pem) = RemoteApi::start_https();
    assert!(remote.url.starts_with("https://"), "{}", remote.url);
    remote.add_event("secure", &sha256('8'), now() - 60, &[]);
    let local = Local::new(&remote);

    let untrusted = local.pull(&remote, &[]);
    assert_eq!(
        untrusted.status.code(),
        Some(2),
        "{}",
        text(&untrusted.stderr)
    );

    let ca_file = local.dir.path().join("remote-ca.pem");
    std::fs::write(&ca_file, cert_pem).expect("write CA file");
    let ca_arg = ca_file.to_str().expect("UTF-8 path");
    assert_pulled(&local.pull(&remote, &["--ca-file", ca_arg]), 1);
    assert!(local.knows(&sha256('8')));
}
