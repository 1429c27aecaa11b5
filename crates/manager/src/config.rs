//! The manager's TOML configuration: types, defaults in one place, and one
//! validation step that reports every problem at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole `iocwatch server` configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// State folder: CA, agent registry, alerts; the `--data-dir` option applies when unset.
    pub data_dir: Option<PathBuf>,
    /// `manager.name` in alerts.
    pub manager_name: String,
    pub listen: ListenConfig,
    pub enrollment: EnrollmentConfig,
    pub agents: AgentsConfig,
    pub rules: RulesConfig,
    pub alerts: AlertsConfig,
    pub integration_log: IntegrationLogConfig,
    pub syslog: Option<SyslogConfig>,
    pub webhook: Option<WebhookConfig>,
    pub active_response: ActiveResponseConfig,
    pub api: ApiConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Address of the enrollment listener (TLS, manager authenticated); port 0 picks a free port.
    pub enrollment: String,
    /// Address of the agent listener (TLS 1.3, mutual authentication); port 0 picks a free port.
    pub agents: String,
    /// DNS names and IP addresses written into the manager's server certificate.
    pub server_names: Vec<String>,
    /// Largest frame accepted from an agent, header included.
    pub max_frame_bytes: usize,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// File holding the enrollment secret; read once at start and kept only as a hash.
    pub secret_file: Option<PathBuf>,
    /// Lowercase hex SHA-256 of the enrollment secret, in place of `secret_file`.
    pub secret_sha256: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// Time without a keepalive or event after which a connected agent is marked disconnected.
    pub disconnect_after_secs: u64,
    /// Time an agent may stay disconnected before the manager raises an alert.
    pub disconnect_alert_secs: u64,
    /// How often the status monitor checks last-seen times.
    pub status_check_secs: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Folders of user rule files (`*.xml`), loaded after the default rules.
    pub dirs: Vec<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Alerts below this level are not written.
    pub min_level: u8,
    /// Path of alerts.json; defaults to `<data_dir>/logs/alerts/alerts.json`.
    pub json_path: Option<PathBuf>,
    /// Size at which alerts.json is rotated; 0 turns size rotation off.
    pub rotate_max_bytes: u64,
    /// Rotate alerts.json when the UTC date changes.
    pub rotate_daily: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationLogConfig {
    pub enabled: bool,
    /// Defaults to `<data_dir>/logs/integrations.json`.
    pub path: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    Udp,
    Tcp,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Collector address, `HOST:PORT`.
    pub address: String,
    pub transport: SyslogTransport,
    #[serde(default = "default_output_min_level")]
    pub min_level: u8,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://HOST:PORT/PATH` receiving one JSON alert per POST.
    pub url: String,
    #[serde(default = "default_output_min_level")]
    pub min_level: u8,
    #[serde(default = "default_webhook_timeout_secs")]
    pub timeout_secs: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveResponseConfig {
    /// Rule ids whose alerts make the agent quarantine the file.
    pub quarantine_rule_ids: Vec<String>,
    /// Alerts at or above this level make the agent quarantine the file; unset turns it off.
    pub quarantine_min_level: Option<u8>,
    /// Maximum seconds a command for an agent that is not connected waits for it in the
    /// manager's database. 0 sends commands to connected agents only.
    pub offline_max_age_secs: u64,
}

/// Default of `active_response.offline_max_age_secs`. A command names a path, and some
/// time later that path may hold another file.
pub const DEFAULT_OFFLINE_MAX_AGE_SECS: u64 = 900;

impl Default for ActiveResponseConfig {
    fn default() -> Self {
        ActiveResponseConfig {
            quarantine_rule_ids: Vec::new(),
            quarantine_min_level: None,
            offline_max_age_secs: DEFAULT_OFFLINE_MAX_AGE_SECS,
        }
    }
}

/// The MISP-compatible API and the dashboard, served by the manager on one listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub enabled: bool,
    /// Address of the HTTP listener; port 0 picks a free port.
    pub listen: String,
    /// PEM certificate chain for HTTPS. Without it, a loopback address gets plain HTTP and
    /// any other address a certificate issued by the manager's CA.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            listen: "127.0.0.1:8443".into(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

fn default_output_min_level() -> u8 {
    7
}

fn default_webhook_timeout_secs() -> u64 {
    5
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: None,
            manager_name: "iocwatch-manager".into(),
            listen: ListenConfig::default(),
            enrollment: EnrollmentConfig::default(),
            agents: AgentsConfig::default(),
            rules: RulesConfig::default(),
            alerts: AlertsConfig::default(),
            integration_log: IntegrationLogConfig::default(),
            syslog: None,
            webhook: None,
            active_response: ActiveResponseConfig::default(),
            api: ApiConfig::default(),
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            enrollment: "0.0.0.0:1515".into(),
            agents: "0.0.0.0:1514".into(),
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            max_frame_bytes: wire::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            disconnect_after_secs: 90,
            disconnect_alert_secs: 600,
            status_check_secs: 10,
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            min_level: 3,
            json_path: None,
            rotate_max_bytes: 512 * 1024 * 1024,
            rotate_daily: true,
        }
    }
}

impl Default for IntegrationLogConfig {
    fn default() -> Self {
        IntegrationLogConfig {
            enabled: true,
            path: None,
        }
    }
}

/// Every problem found in a configuration, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration `{path}`:\n  {}", problems.join("\n  "))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

impl ServerConfig {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let fail = |problem: String| ConfigError {
            path: path.to_path_buf(),
            problems: vec![problem],
        };
        let text =
            std::fs::read_to_string(path).map_err(|err| fail(format!("cannot read: {err}")))?;
        let config: ServerConfig = toml::from_str(&text).map_err(|err| fail(err.to_string()))?;

        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                path: path.to_path_buf(),
                problems,
            })
        }
    }

    /// Checks values that parsing cannot; returns one message per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        check_addr(&mut problems, "listen.enrollment", &self.listen.enrollment);
        check_addr(&mut problems, "listen.agents", &self.listen.agents);
        if self.listen.server_names.is_empty() {
            problems.push("listen.server_names: list at least one name or address".into());
        }
        if self.listen.max_frame_bytes < 64 * 1024 {
            problems.push(format!(
                "listen.max_frame_bytes: {} is below the minimum of 65536",
                self.listen.max_frame_bytes
            ));
        }
        self.check_enrollment(&mut problems);
        self.check_levels(&mut problems);
        self.check_timings(&mut problems);
        self.check_outputs(&mut problems);
        self.check_api(&mut problems);
        problems
    }

    fn check_enrollment(&self, problems: &mut Vec<String>) {
        let e = &self.enrollment;
        match (&e.secret_file, &e.secret_sha256) {
            (None, None) => problems.push(
                "enrollment: set `secret_file` or `secret_sha256` to allow enrollment".into(),
            ),
            (Some(_), Some(_)) => problems
                .push("enrollment: set only one of `secret_file` and `secret_sha256`".into()),
            (None, Some(hash)) => {
                let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
                if !valid {
                    problems.push("enrollment.secret_sha256: expected 64 hex digits".into());
                }
            }
            (Some(_), None) => {}
        }
    }

    fn check_levels(&self, problems: &mut Vec<String>) {
        let mut level = |name: &str, value: u8| {
            if value > 16 {
                problems.push(format!("{name}: level {value} is above the maximum of 16"));
            }
        };
        level("alerts.min_level", self.alerts.min_level);
        if let Some(syslog) = &self.syslog {
            level("syslog.min_level", syslog.min_level);
        }
        if let Some(webhook) = &self.webhook {
            level("webhook.min_level", webhook.min_level);
        }
        if let Some(min) = self.active_response.quarantine_min_level {
            level("active_response.quarantine_min_level", min);
        }
    }

    fn check_timings(&self, problems: &mut Vec<String>) {
        let a = &self.agents;
        for (name, value) in [
            ("agents.disconnect_after_secs", a.disconnect_after_secs),
            ("agents.status_check_secs", a.status_check_secs),
        ] {
            if value == 0 {
                problems.push(format!("{name}: must be at least 1"));
            }
        }
    }

    fn check_outputs(&self, problems: &mut Vec<String>) {
        if self.manager_name.trim().is_empty() {
            problems.push("manager_name: must not be empty".into());
        }
        if let Some(syslog) = &self.syslog {
            check_addr(problems, "syslog.address", &syslog.address);
        }
        if let Some(webhook) = &self.webhook {
            if crate::outputs::webhook::parse_url(&webhook.url).is_none() {
                problems.push(format!(
                    "webhook.url: `{}` is not of the form http://HOST:PORT/PATH",
                    webhook.url
                ));
            }
            if webhook.timeout_secs == 0 {
                problems.push("webhook.timeout_secs: must be at least 1".into());
            }
        }
    }

    fn check_api(&self, problems: &mut Vec<String>) {
        if !self.api.enabled {
            return;
        }
        check_addr(problems, "api.listen", &self.api.listen);
        match (&self.api.tls_cert, &self.api.tls_key) {
            (Some(_), None) => problems.push("api.tls_key: set it together with `tls_cert`".into()),
            (None, Some(_)) => problems.push("api.tls_cert: set it together with `tls_key`".into()),
            _ => {}
        }
    }

    /// Returns the data folder: the file's `data_dir`, else `fallback`.
    pub fn data_dir_or(&self, fallback: &Path) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| fallback.to_path_buf())
    }
}

fn check_addr(problems: &mut Vec<String>, name: &str, value: &str) {
    if value.parse::<SocketAddr>().is_err() {
        problems.push(format!("{name}: `{value}` is not an IP:PORT address"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn minimal_config_is_valid() {
        let config = parse("[enrollment]\nsecret_file = \"/etc/iocwatch/secret\"\n").unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert_eq!(config.alerts.min_level, 3);
    }

    #[test]
    fn shipped_example_is_valid() {
        let config = parse(include_str!("../../../examples/server.toml")).unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = parse("[listen]\nagent = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `agent`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported() {
        let config = parse(
            "[listen]\nagents = \"nowhere\"\n[alerts]\nmin_level = 20\n\
             [webhook]\nurl = \"ftp://x\"\n",
        )
        .unwrap();
        let problems = config.problems();
        let joined = problems.join("\n");
        assert!(joined.contains("listen.agents"), "{joined}");
        assert!(joined.contains("enrollment"), "{joined}");
        assert!(joined.contains("alerts.min_level"), "{joined}");
        assert!(joined.contains("webhook.url"), "{joined}");
        assert_eq!(problems.len(), 4, "{joined}");
    }

    #[test]
    fn api_defaults_to_loopback() {
        let config = parse("[enrollment]\nsecret_sha256 = \"\"\n").unwrap();
        assert!(config.api.enabled);
        assert_eq!(config.api.listen, "127.0.0.1:8443");
        assert!(config.api.tls_cert.is_none());
    }

    #[test]
    fn api_problems_are_reported() {
        let config = parse(
            "[enrollment]\nsecret_file = \"s\"\n[api]\nlisten = \"nowhere\"\n\
             tls_cert = \"cert.pem\"\n",
        )
        .unwrap();
        let joined = config.problems().join("\n");
        assert!(joined.contains("api.listen"), "{joined}");
        assert!(joined.contains("api.tls_key"), "{joined}");
    }
}
