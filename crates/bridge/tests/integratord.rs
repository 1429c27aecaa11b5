//! End-to-end runs of `custom-iocwatch` as wazuh-integratord starts it: real Wazuh 4.x
//! alerts in, a lookup on a real `iocwatch api` on loopback, a message on a bound queue
//! socket out.

mod common;

use std::fs;
use std::time::Duration;

use common::{
    attribute, closed_port_url, self_signed, Behaviour, Harness, IntelServer, API_KEY, UNKNOWN_KEY,
};
use serde_json::{json, Value};

/// Digests of the file in `fim-added.json` (an empty file).
const ADDED_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ADDED_SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const ADDED_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
/// New SHA-256 of `/etc/hosts` in `fim-modified.json`, and its old one.
const MODIFIED_SHA256: &str = "48f09f8c313b303ce2ca9365f70ae8d992c5589c56493ac055f0ab129d82c365";
const MODIFIED_SHA256_BEFORE: &str =
    "498f494232085ec83303a2bc6f04bea840c2b210fbbeda31a46a6e5674d4fc0e";
/// SHA-256 of wscript.exe in `sysmon-process.json`, upper-case there.
const SYSMON_SHA256: &str = "CE9F70E104C07D92FC05FBD6000839FD6A87FF010E706396F87DD679244ED97B";

/// Options that let the empty-file digests above match: the server's built-in
/// `empty-hashes` warninglist hides them otherwise.
fn no_warninglist() -> Value {
    json!({"enforce_warninglist": false})
}

fn only_message(harness: &Harness) -> (String, Value) {
    let message = harness.message().expect("a message on the queue socket");
    assert!(harness.message().is_none(), "exactly one message");
    Harness::parse(&message)
}

#[test]
fn added_file_match_is_sent_for_its_agent() {
    let server = IntelServer::start(vec![attribute(
        "sha256",
        ADDED_SHA256,
        true,
        "Dropper campaign",
    )]);
    let harness = Harness::new();
    harness.run(
        "fim-added.json",
        server.key(),
        &server.url(),
        &harness.options(no_warninglist()),
    );

    let (location, body) = only_message(&harness);
    assert_eq!(location, "[010] (Ubuntu) 10.0.2.15->iocwatch");
    assert_eq!(body["integration"], "iocwatch");
    assert_eq!(body["iocwatch"]["status"], "match");
    let source = &body["iocwatch"]["source"];
    assert_eq!(source["file"], "/media/user/software/suspicious-file.exe");
    assert_eq!(source["event"], "added");
    assert_eq!(source["hash_type"], "sha256");
    assert_eq!(source["alert_id"], "1668705462.50453");
    assert_eq!(source["rule_id"], "554");
    assert_eq!(source["agent"]["name"], "Ubuntu");
    assert_eq!(body["misp"]["event_id"], server.event_ids()[0].as_str());
    assert_eq!(body["misp"]["event_info"], "Dropper campaign");
    assert_eq!(body["misp"]["threat_level_id"], "1", "{body}");
    assert_eq!(body["misp"]["type"], "sha256");
    assert_eq!(body["misp"]["tags"], json!(["tlp:amber"]));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].authorization.as_deref(), Some(server.key()));
    assert_eq!(requests[0].body["value"], ADDED_SHA256);
    assert_eq!(requests[0].body["to_ids"], true);
    assert_eq!(requests[0].body["returnFormat"], "json");
    assert!(
        harness.log().contains("known-malicious file"),
        "{}",
        harness.log()
    );
}

#[test]
fn modified_file_is_looked_up_by_new_digest() {
    let server = IntelServer::start(vec![attribute(
        "sha256",
        MODIFIED_SHA256,
        true,
        "Hosts hijack",
    )]);
    let harness = Harness::new();
    harness.run(
        "fim-modified.json",
        server.key(),
        &server.url(),
        &harness.options(json!({})),
    );

    let (location, body) = only_message(&harness);
    assert_eq!(location, "[006] (RHEL7) 10.0.1.214->iocwatch");
    assert_eq!(body["iocwatch"]["source"]["file"], "/etc/hosts");
    assert_eq!(body["iocwatch"]["source"]["event"], "modified");
    assert_eq!(body["misp"]["event_id"], server.event_ids()[0].as_str());
    let requested: Vec<Value> = server
        .requests()
        .into_iter()
        .map(|r| r.body["value"].clone())
        .collect();
    assert!(
        !requested.contains(&json!(MODIFIED_SHA256_BEFORE)),
        "old digest requested: {requested:?}"
    );
}

#[test]
fn sysmon_process_hashes_are_looked_up() {
    let lower = SYSMON_SHA256.to_ascii_lowercase();
    let server = IntelServer::start(vec![attribute("sha256", &lower, true, "Script dropper")]);
    let harness = Harness::new();
    harness.run(
        "sysmon-process.json",
        server.key(),
        &server.url(),
        &harness.options(json!({})),
    );

    let (location, body) = only_message(&harness);
    assert_eq!(location, "[003] (DESKTOP-2QKFOBA) 192.0.2.50->iocwatch");
    let source = &body["iocwatch"]["source"];
    assert_eq!(source["file"], "C:\\\\Windows\\\\System32\\\\wscript.exe");
    assert_eq!(source["event"], "sysmon_event1");
    assert_eq!(source["hash"], lower.as_str());
    assert_eq!(server.requests()[0].body["value"], lower.as_str());
}

#[test]
fn non_file_alert_sends_nothing() {
    let server = IntelServer::start(vec![]);
    let harness = Harness::new();
    harness.run(
        "non-file.json",
        server.key(),
        &server.url(),
        &harness.options(json!({})),
    );

    assert!(harness.message().is_none());
    assert!(server.requests().is_empty());
    let log = harness.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("alert skipped"), "{log}");
    assert!(log.contains("rule_id=87102"), "{log}");
}

#[test]
fn file_without_sha256_uses_sha1_then_md5() {
    let server = IntelServer::start(vec![attribute("md5", ADDED_MD5, true, "Old md5 feed")]);
    let harness = Harness::new();
    harness.run(
        "fim-added-no-sha256.json",
        server.key(),
        &server.url(),
        &harness.options(no_warninglist()),
    );

    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["source"]["hash_type"], "md5");
    assert_eq!(body["misp"]["event_id"], server.event_ids()[0].as_str());
    let requested: Vec<Value> = server
        .requests()
        .into_iter()
        .map(|r| r.body["value"].clone())
        .collect();
    assert_eq!(requested, [json!(ADDED_SHA1), json!(ADDED_MD5)]);
}

#[test]
fn empty_file_digest_is_warninglisted() {
    let server = IntelServer::start(vec![attribute("sha256", ADDED_SHA256, true, "Empty file")]);
    let harness = Harness::new();
    harness.run(
        "fim-added.json",
        server.key(),
        &server.url(),
        &harness.options(json!({})),
    );

    assert!(harness.message().is_none(), "warninglisted value matched");
    assert_eq!(server.requests()[0].body["enforceWarninglist"], true);
}

#[test]
fn miss_sends_nothing_by_default() {
    let server = IntelServer::start(vec![attribute(
        "sha256",
        ADDED_SHA256,
        false,
        "Context only",
    )]);
    let harness = Harness::new();
    harness.run(
        "fim-added.json",
        server.key(),
        &server.url(),
        &harness.options(json!({})),
    );

    assert!(harness.message().is_none(), "to_ids false is no detection");
    assert_eq!(server.requests().len(), 3, "sha256, sha1 and md5 requested");
    assert!(
        harness.log().contains("no intel match"),
        "{}",
        harness.log()
    );
}

#[test]
fn miss_is_sent_when_asked() {
    let server = IntelServer::start(vec![]);
    let harness = Harness::new();
    let options = harness.options(json!({"report_misses": true}));
    harness.run("fim-added.json", server.key(), &server.url(), &options);

    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["status"], "miss");
    assert_eq!(body["iocwatch"]["source"]["hash"], ADDED_SHA256);
    assert!(body.get("misp").is_none());
}

#[test]
fn server_down_is_reported_not_crashed() {
    let harness = Harness::new();
    let options = harness.options(json!({"retries": 1}));
    harness.run("fim-added.json", API_KEY, &closed_port_url(), &options);

    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["status"], "error");
    assert_eq!(body["iocwatch"]["error"], "unreachable");
    let log = harness.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("intel lookup failed"), "{log}");
    assert!(log.contains("after 2 attempt(s)"), "{log}");
}

#[test]
fn slow_server_times_out() {
    let behaviour = Behaviour {
        delay: Duration::from_secs(3),
        ..Default::default()
    };
    let server = IntelServer::start_with(vec![], behaviour);
    let harness = Harness::new();
    let options = harness.options(json!({"timeout_secs": 1, "retries": 0}));
    let started = std::time::Instant::now();
    harness.run("fim-added.json", server.key(), &server.url(), &options);

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited for the slow answer"
    );
    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["error"], "timeout");
    assert!(harness.log().contains("timed out"), "{}", harness.log());
}

#[test]
fn wrong_key_is_reported_without_retry() {
    let server = IntelServer::start(vec![attribute("sha256", ADDED_SHA256, true, "x")]);
    let harness = Harness::new();
    let options = harness.options(json!({"retries": 3}));
    harness.run("fim-added.json", UNKNOWN_KEY, &server.url(), &options);

    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["error"], "unauthorized");
    assert_eq!(body["iocwatch"]["http_status"], 403);
    assert_eq!(server.requests().len(), 1, "a rejected key is not retried");
    let log = harness.log();
    assert!(log.contains("rejected the API key"), "{log}");
    assert!(
        !log.contains(UNKNOWN_KEY),
        "the key must never be logged: {log}"
    );
}

#[test]
fn api_key_is_never_logged() {
    let server = IntelServer::start(vec![]);
    let harness = Harness::new();
    let alert = harness.alert("fim-added.json");
    harness.run_args(&[
        alert.into_os_string(),
        server.key().into(),
        server.url().into(),
        "debug".into(),
        harness.options(json!({})).into_os_string(),
    ]);

    let log = harness.log();
    assert!(
        log.contains("DEBUG"),
        "debug flag turns on debug lines: {log}"
    );
    assert!(!log.contains(server.key()), "{log}");
}

#[test]
fn cached_result_is_not_asked_again() {
    let server = IntelServer::start(vec![attribute("sha256", ADDED_SHA256, true, "x")]);
    let harness = Harness::new();
    let options = harness.options(no_warninglist());
    harness.run("fim-added.json", server.key(), &server.url(), &options);
    harness.run("fim-added.json", server.key(), &server.url(), &options);

    assert_eq!(server.requests().len(), 1);
    for _ in 0..2 {
        let (_, body) = Harness::parse(&harness.message().expect("a match per run"));
        assert_eq!(body["misp"]["event_id"], server.event_ids()[0].as_str());
    }
}

#[test]
fn cached_miss_expires_with_ttl() {
    let server = IntelServer::start(vec![]);
    let harness = Harness::new();
    let options = harness.options(json!({"cache_ttl_secs": 2}));
    harness.run("fim-added.json", server.key(), &server.url(), &options);
    harness.run("fim-added.json", server.key(), &server.url(), &options);
    assert_eq!(
        server.requests().len(),
        3,
        "second run used the cached misses"
    );

    std::thread::sleep(Duration::from_millis(3100));
    harness.run("fim-added.json", server.key(), &server.url(), &options);
    assert_eq!(
        server.requests().len(),
        6,
        "expired misses are requested again"
    );
}

#[test]
fn untrusted_certificate_is_rejected() {
    let behaviour = Behaviour {
        tls: Some(self_signed()),
        ..Default::default()
    };
    let server = IntelServer::start_with(
        vec![attribute("sha256", ADDED_SHA256, true, "x")],
        behaviour,
    );
    let harness = Harness::new();
    harness.run(
        "fim-added.json",
        server.key(),
        &server.url(),
        &harness.options(json!({})),
    );

    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["error"], "tls");
    assert!(harness.log().contains("TLS failure"), "{}", harness.log());
}

#[test]
fn ca_file_makes_certificate_trusted() {
    let behaviour = Behaviour {
        tls: Some(self_signed()),
        ..Default::default()
    };
    let server = IntelServer::start_with(
        vec![attribute("sha256", ADDED_SHA256, true, "x")],
        behaviour,
    );
    let harness = Harness::new();
    let ca_file = harness.path("ca.pem");
    fs::write(&ca_file, server.ca_pem().expect("TLS server")).expect("write CA");
    let options = harness.options(json!({"ca_file": ca_file, "enforce_warninglist": false}));
    harness.run("fim-added.json", server.key(), &server.url(), &options);

    let (_, body) = only_message(&harness);
    assert_eq!(body["iocwatch"]["status"], "match");
}

#[test]
fn broken_alert_files_exit_cleanly() {
    let harness = Harness::new();
    let options = harness.options(json!({}));
    let broken = harness.path("broken.alert");
    fs::write(&broken, "{\"rule\": {\"id\": ").expect("write");
    let missing = harness.path("missing.alert");

    for alert in [broken, missing] {
        harness.run_args(&[
            alert.into_os_string(),
            API_KEY.into(),
            closed_port_url().into(),
            "".into(),
            options.clone().into_os_string(),
        ]);
    }
    assert!(harness.message().is_none());
    let log = harness.log();
    assert_eq!(log.matches("failed to read alert file").count(), 2, "{log}");
}

#[test]
fn invalid_options_stop_the_run() {
    let server = IntelServer::start(vec![]);
    let harness = Harness::new();
    let options = harness.options(json!({"timeout": 5}));
    harness.run("fim-added.json", server.key(), &server.url(), &options);

    assert!(harness.message().is_none());
    assert!(server.requests().is_empty());
    let log = harness.log();
    assert!(log.contains("invalid options"), "{log}");
    assert!(log.contains("unknown field `timeout`"), "{log}");
}

#[test]
fn missing_arguments_exit_cleanly() {
    let harness = Harness::new();
    let output = harness.run_args(&[]);
    assert!(output.stdout.is_empty());
}
