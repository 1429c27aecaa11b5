//! Enrollment: the agent makes its key pair, sends a CSR with the shared
//! secret, and stores the certificate the manager's CA issued.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wire::{EnrollRequest, Message};

use crate::identity::{EnrollmentInfo, Identity};
use crate::tls::{self, TlsError};

/// Largest enrollment frame either side sends.
const ENROLL_MAX_FRAME_BYTES: usize = 64 * 1024;
const ENROLL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("invalid manager address `{0}`: expected HOST:PORT")]
    Address(String),
    #[error("failed to connect to the manager at `{address}`")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out enrolling with the manager at `{0}`")]
    Timeout(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("failed to create the agent key or CSR")]
    Key(#[source] rcgen::Error),
    #[error("enrollment protocol error")]
    Wire(#[from] wire::WireError),
    #[error("the manager rejected the enrollment ({code}): {message}")]
    Rejected { code: String, message: String },
    #[error("the manager closed the connection without answering")]
    NoAnswer,
    #[error("unexpected {0:?} message from the manager")]
    Unexpected(wire::Kind),
}

/// What to enroll with.
pub struct EnrollOptions<'a> {
    /// `HOST:PORT` of the manager's enrollment listener.
    pub manager: &'a str,
    pub secret: &'a str,
    /// Agent name, usually the host name.
    pub name: &'a str,
    pub version: &'a str,
    /// The manager's CA in PEM form; `None` trusts the certificate shown (trust on first use).
    pub ca_pem: Option<&'a str>,
}

/// Enrolls with the manager and returns the identity to save.
pub async fn enroll(options: &EnrollOptions<'_>) -> Result<Identity, EnrollError> {
    tokio::time::timeout(ENROLL_TIMEOUT, enroll_inner(options))
        .await
        .map_err(|_| EnrollError::Timeout(options.manager.to_string()))?
}

async fn enroll_inner(options: &EnrollOptions<'_>) -> Result<Identity, EnrollError> {
    let host = split_host(options.manager)?;
    let key = KeyPair::generate().map_err(EnrollError::Key)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, options.name);
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(EnrollError::Key)?;

    let config = tls::enrollment_config(options.ca_pem)?;
    let tcp = TcpStream::connect(options.manager)
        .await
        .map_err(|source| EnrollError::Connect {
            address: options.manager.to_string(),
            source,
        })?;
    let connector = TlsConnector::from(Arc::new(config));
    let mut stream = connector
        .connect(tls::server_name(host)?, tcp)
        .await
        .map_err(|source| EnrollError::Connect {
            address: options.manager.to_string(),
            source,
        })?;

    let request = Message::EnrollRequest(EnrollRequest {
        secret: options.secret.to_string(),
        name: options.name.to_string(),
        version: options.version.to_string(),
        csr_pem,
    });
    wire::write_message(&mut stream, &request, ENROLL_MAX_FRAME_BYTES).await?;
    let response = match wire::read_message(&mut stream, ENROLL_MAX_FRAME_BYTES).await? {
        Some(Message::EnrollResponse(response)) => response,
        Some(Message::Rejection(r)) => {
            return Err(EnrollError::Rejected {
                code: r.code,
                message: r.message,
            })
        }
        Some(other) => return Err(EnrollError::Unexpected(other.kind())),
        None => return Err(EnrollError::NoAnswer),
    };

    Ok(Identity {
        info: EnrollmentInfo {
            agent_id: response.agent_id,
            name: options.name.to_string(),
            manager_host: host.to_string(),
            events_port: response.events_port,
        },
        key_pem: key.serialize_pem(),
        cert_pem: response.certificate_pem,
        ca_pem: response.ca_pem,
    })
}

/// The lowercase hex SHA-256 of a PEM certificate's DER form, for operators to compare.
pub fn ca_fingerprint(ca_pem: &str) -> Option<String> {
    let der = tls::certificate_from_pem(ca_pem, "CA certificate").ok()?;
    Some(hex::encode(Sha256::digest(der.as_ref())))
}

fn split_host(address: &str) -> Result<&str, EnrollError> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| EnrollError::Address(address.to_string()))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(EnrollError::Address(address.to_string()));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_address_needs_host_and_port() {
        assert_eq!(split_host("127.0.0.1:1515").unwrap(), "127.0.0.1");
        assert_eq!(split_host("[::1]:1515").unwrap(), "[::1]");
        assert!(split_host("manager").is_err());
        assert!(split_host(":1515").is_err());
        assert!(split_host("host:http").is_err());
    }
}
