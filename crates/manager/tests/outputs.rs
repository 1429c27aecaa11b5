//! Outputs and agent status through a real manager: syslog over UDP, the
//! webhook, quarantine requested by a rule, and the disconnection alert.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use manager::analysis::Engine;
use manager::RunningServer;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_receives_rfc5424_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let extra = format!(
        "[syslog]\naddress = \"{}\"\ntransport = \"udp\"\nmin_level = 3\n",
        collector.local_addr().unwrap()
    );
    let server = start_with(dir.path(), config_with(dir.path(), &extra)).await;
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();
    let link = start_link(dir.path(), identity);
    link.sink()
        .send(&json!({"path": "/srv/a", "event": "added"}))
        .unwrap();

    let message = tokio::task::spawn_blocking(move || {
        let mut buffer = vec![0u8; 65536];
        let read = collector.recv(&mut buffer).unwrap();
        String::from_utf8_lossy(&buffer[..read]).into_owned()
    })
    .await
    .unwrap();
    // Facility local0 (16) and severity notice (5) for level 5: PRI 133.
    assert!(message.starts_with("<133>1 "), "{message}");
    let json_start = message.find('{').unwrap();
    let alert: Value = serde_json::from_str(&message[json_start..]).unwrap();
    assert_eq!(alert["syscheck"]["path"], "/srv/a");
}

/// Accepts one HTTP request, replies 200 and returns the request body.
fn receive_one_post(listener: std::net::TcpListener) -> String {
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    String::from_utf8(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receives_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        "[webhook]\nurl = \"http://{}/alerts\"\nmin_level = 5\n",
        listener.local_addr().unwrap()
    );
    let receiver = std::thread::spawn(move || receive_one_post(listener));
    let server = start_with(dir.path(), config_with(dir.path(), &extra)).await;
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();
    let link = start_link(dir.path(), identity);
    link.sink()
        .send(&json!({"path": "/srv/b", "event": "added"}))
        .unwrap();

    let body = tokio::task::spawn_blocking(move || receiver.join().unwrap())
        .await
        .unwrap();
    let alert: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alert["syscheck"]["path"], "/srv/b");
    assert_eq!(alert["agent"]["id"], "001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_requests_quarantine_and_result_is_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        "[active_response]\nquarantine_rule_ids = [\"111001\"]\n",
    );
    let ruleset = Arc::new(rules::Ruleset::load(true, &[]).unwrap());
    let engine = Engine::new(ruleset, None, "test-manager");
    let server = RunningServer::start(config, &dir.path().join("manager"), Box::new(engine))
        .await
        .unwrap();
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();

    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let file = watched.join("dropper.sh");
    std::fs::write(&file, b"#!/bin/sh\n").unwrap();
    let quarantine = link::QuarantineConfig {
        dir: dir.path().join("quarantine"),
        allowed_roots: vec![watched.clone()],
    };
    let link = start_link_with(dir.path(), identity, Some(quarantine));
    let path = file.display().to_string();
    link.sink()
        .send(&json!({"path": path, "event": "added", "mode": "realtime"}))
        .unwrap();

    assert!(
        wait_for(|| alert_lines(dir.path())
            .iter()
            .any(|a| a["rule"]["id"] == "111201"))
        .await
    );
    assert!(!file.exists(), "the file is still in place");
    let alerts = alert_lines(dir.path());
    let result = alerts.iter().find(|a| a["rule"]["id"] == "111201").unwrap();
    assert_eq!(result["agent"]["id"], "001");
    assert_eq!(result["data"]["active_response"]["status"], "done");
    let moved = result["data"]["active_response"]["quarantine_path"]
        .as_str()
        .unwrap();
    assert!(std::path::Path::new(moved).exists());
}

/// The anti-virus test file, put together at run time.
fn test_file_content() -> Vec<u8> {
    let pieces = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR",
        "-STANDARD-ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ];
    pieces.concat().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_name_that_is_not_utf8_is_quarantined() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "[active_response]\nquarantine_min_level = 5\n");
    let ruleset = Arc::new(rules::Ruleset::load(true, &[]).unwrap());
    let engine = Engine::new(ruleset, None, "test-manager");
    let server = RunningServer::start(config, &dir.path().join("manager"), Box::new(engine))
        .await
        .unwrap();
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();

    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let file = watched.join(std::ffi::OsStr::from_bytes(b"q\nname\xff.com"));
    std::fs::write(&file, test_file_content()).unwrap();
    let quarantine = link::QuarantineConfig {
        dir: dir.path().join("quarantine"),
        allowed_roots: vec![watched.clone()],
    };
    let link = start_link_with(dir.path(), identity, Some(quarantine));
    // The agent's events carry paths as UTF-8, with U+FFFD in place of the 0xFF byte.
    let path = file.to_string_lossy().into_owned();
    link.sink()
        .send(&json!({"path": path, "event": "added", "mode": "realtime"}))
        .unwrap();

    assert!(
        wait_for(|| alert_lines(dir.path())
            .iter()
            .any(|a| a["rule"]["id"] == "111201" || a["rule"]["id"] == "111202"))
        .await
    );
    let alerts = alert_lines(dir.path());
    assert!(
        alerts.iter().any(|a| a["rule"]["id"] == "111201"),
        "quarantine not done: {alerts:?}"
    );
    assert!(!file.exists(), "the file is still in place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_outside_monitored_folders_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "[active_response]\nquarantine_min_level = 5\n");
    let ruleset = Arc::new(rules::Ruleset::load(true, &[]).unwrap());
    let engine = Engine::new(ruleset, None, "test-manager");
    let server = RunningServer::start(config, &dir.path().join("manager"), Box::new(engine))
        .await
        .unwrap();
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();

    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, b"x").unwrap();
    let quarantine = link::QuarantineConfig {
        dir: dir.path().join("quarantine"),
        allowed_roots: vec![dir.path().join("watched")],
    };
    let link = start_link_with(dir.path(), identity, Some(quarantine));
    let path = outside.display().to_string();
    link.sink()
        .send(&json!({"path": path, "event": "added"}))
        .unwrap();

    assert!(
        wait_for(|| alert_lines(dir.path())
            .iter()
            .any(|a| a["rule"]["id"] == "111202"))
        .await
    );
    assert!(outside.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_disconnection_raises_alert() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[agents]\ndisconnect_alert_secs = 1\nstatus_check_secs = 1\n";
    let server = start_with(dir.path(), config_with(dir.path(), extra)).await;
    let identity = enroll(&server, "web-01", SECRET).await.unwrap();
    let link = start_link(dir.path(), identity);
    link.sink()
        .send(&json!({"path": "/srv/c", "event": "added"}))
        .unwrap();
    assert!(link.wait_drained(Duration::from_secs(10)));
    link.shutdown();

    let found = wait_for(|| {
        alert_lines(dir.path())
            .iter()
            .any(|a| a["rule"]["id"] == "504")
    })
    .await;
    assert!(found, "no disconnection alert");
    let alerts = alert_lines(dir.path());
    let alert = alerts.iter().find(|a| a["rule"]["id"] == "504").unwrap();
    assert_eq!(alert["data"]["agent_id"], "001");
    assert_eq!(
        alerts.iter().filter(|a| a["rule"]["id"] == "504").count(),
        1
    );

    let registry = manager::Registry::open(&dir.path().join("manager/manager.db")).unwrap();
    let agent = registry.get("001").unwrap().unwrap();
    assert_eq!(agent.status, manager::AgentStatus::Disconnected);
}
