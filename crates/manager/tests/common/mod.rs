//! Helpers shared by the manager's integration tests: a manager with a
//! trivial analyser, enrollment and agent links over loopback.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use manager::{AgentRef, Analysis, Analyze, RunningServer, ServerConfig};
use serde_json::{json, Value};

pub const SECRET: &str = "test-enrollment-secret";

pub struct EchoAnalyzer;

impl Analyze for EchoAnalyzer {
    fn analyze(&mut self, agent: &AgentRef, event: &Value, _now: SystemTime, out: &mut Analysis) {
        let alert = json!({
            "timestamp": "2024-05-01T10:00:00.000+0000",
            "rule": {"level": 5, "id": "554"},
            "agent": {"id": agent.id, "name": agent.name},
            "id": "",
            "syscheck": event,
        });
        out.alerts.push(alert.into());
    }
}

pub fn config(dir: &Path) -> ServerConfig {
    config_with(dir, "")
}

/// Builds the test configuration with `extra` TOML appended.
pub fn config_with(dir: &Path, extra: &str) -> ServerConfig {
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let text = format!(
        "[listen]\nenrollment = \"127.0.0.1:0\"\nagents = \"127.0.0.1:0\"\n\
         [enrollment]\nsecret_file = \"{}\"\n{extra}",
        secret_file.display()
    );
    let config: ServerConfig = toml::from_str(&text).unwrap();
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    config
}

pub async fn start(dir: &Path) -> RunningServer {
    start_with(dir, config(dir)).await
}

pub async fn start_with(dir: &Path, config: ServerConfig) -> RunningServer {
    RunningServer::start(config, &dir.join("manager"), Box::new(EchoAnalyzer))
        .await
        .unwrap()
}

pub async fn enroll(
    server: &RunningServer,
    name: &str,
    secret: &str,
) -> Result<link::Identity, link::EnrollError> {
    let manager = server.enrollment_addr.to_string();
    let options = link::EnrollOptions {
        manager: &manager,
        secret,
        name,
        version: "0.1.0",
        ca_pem: None,
    };
    link::enroll(&options).await
}

pub fn start_link(dir: &Path, identity: link::Identity) -> link::Link {
    start_link_with(dir, identity, None)
}

pub fn start_link_with(
    dir: &Path,
    identity: link::Identity,
    quarantine: Option<link::QuarantineConfig>,
) -> link::Link {
    let section = link::ManagerSection {
        reconnect_max_secs: 1,
        ..Default::default()
    };
    link::Link::start(link::LinkConfig {
        identity,
        spool_path: dir.join("spool.db"),
        section,
        version: "0.1.0".into(),
        quarantine,
    })
    .unwrap()
}

pub fn alert_lines(dir: &Path) -> Vec<Value> {
    let path = dir.join("manager/logs/alerts/alerts.json");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub async fn wait_for(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
