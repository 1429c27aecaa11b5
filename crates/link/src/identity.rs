//! The agent's identity on disk: its id, key, certificate, the manager's CA
//! and address, written at enrollment and read on every start.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const KEY_FILE: &str = "agent.key";
const CERT_FILE: &str = "agent.pem";
const CA_FILE: &str = "ca.pem";
const INFO_FILE: &str = "enrollment.json";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "failed to read or write `{path}`: run `iocwatch agent enroll` first if it is missing"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid enrollment record `{path}`")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What the agent learnt at enrollment, stored as `enrollment.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentInfo {
    pub agent_id: String,
    pub name: String,
    /// Host name or IP of the manager, as given to `enroll`.
    pub manager_host: String,
    /// Port of the manager's agent listener.
    pub events_port: u16,
}

/// Everything needed to open an authenticated connection to the manager.
#[derive(Clone)]
pub struct Identity {
    pub info: EnrollmentInfo,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads the identity stored in `dir`.
    pub fn load(dir: &Path) -> Result<Identity, IdentityError> {
        let info_path = dir.join(INFO_FILE);
        let info_text = read(&info_path)?;
        let info = serde_json::from_str(&info_text).map_err(|source| IdentityError::Json {
            path: info_path,
            source,
        })?;
        Ok(Identity {
            info,
            key_pem: read(&dir.join(KEY_FILE))?,
            cert_pem: read(&dir.join(CERT_FILE))?,
            ca_pem: read(&dir.join(CA_FILE))?,
        })
    }

    /// Writes the identity into `dir`; the private key is readable by its owner only.
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
            path: dir.into(),
            source,
        })?;
        write(&dir.join(KEY_FILE), &self.key_pem, 0o600)?;
        write(&dir.join(CERT_FILE), &self.cert_pem, 0o644)?;
        write(&dir.join(CA_FILE), &self.ca_pem, 0o644)?;
        let info = serde_json::to_string_pretty(&self.info).unwrap_or_default();
        // The record is written last: its presence means the enrollment is complete.
        write(&dir.join(INFO_FILE), &info, 0o644)
    }

    /// `HOST:PORT` of the manager's agent listener.
    pub fn events_address(&self) -> String {
        join_host_port(&self.info.manager_host, self.info.events_port)
    }
}

/// Joins a host and a port, bracketing IPv6 addresses.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn read(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), IdentityError> {
    let io_err = |source| IdentityError::Io {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity {
            info: EnrollmentInfo {
                agent_id: "001".into(),
                name: "web".into(),
                manager_host: "::1".into(),
                events_port: 1514,
            },
            key_pem: "k".into(),
            cert_pem: "c".into(),
            ca_pem: "a".into(),
        };
        identity.save(dir.path()).unwrap();
        let loaded = Identity::load(dir.path()).unwrap();
        assert_eq!(loaded.info, identity.info);
        assert_eq!(loaded.events_address(), "[::1]:1514");
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
