//! The enrollment listener: checks the shared secret, gives the agent an id
//! and signs its CSR with the manager's CA.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use wire::{EnrollRequest, EnrollResponse, Message, Rejection};

use crate::ca::{certificate_fingerprint, CaError, CertificateAuthority};
use crate::registry::{Registry, RegistryError};
use crate::secret::SecretHash;

/// Largest enrollment frame accepted; a CSR is well under 4 KiB.
const MAX_FRAME_BYTES: usize = 64 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Delay before the reply to a wrong secret, to slow down guessing.
const REJECT_DELAY: Duration = Duration::from_secs(1);

/// What the enrollment handler needs; shared by all connections.
pub struct Enroller {
    pub ca: Arc<CertificateAuthority>,
    pub registry: Registry,
    pub secret: SecretHash,
    pub events_port: u16,
}

/// Accepts enrollment connections until the task is dropped.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, enroller: Arc<Enroller>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "failed to accept an enrollment connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let enroller = enroller.clone();
        tokio::spawn(async move {
            if let Err(err) = handle(tcp, peer, acceptor, &enroller).await {
                tracing::warn!(peer = %peer, error = %err, "enrollment failed");
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum EnrollError {
    #[error("TLS handshake failed")]
    Handshake(#[source] std::io::Error),
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("the client closed the connection before sending a request")]
    NoRequest,
    #[error("expected an enrollment request, got {0:?}")]
    Unexpected(wire::Kind),
}

async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    enroller: &Enroller,
) -> Result<(), EnrollError> {
    let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| EnrollError::HandshakeTimeout)?
        .map_err(EnrollError::Handshake)?;
    let request = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        wire::read_message(&mut stream, MAX_FRAME_BYTES),
    )
    .await
    .map_err(|_| EnrollError::HandshakeTimeout)??
    {
        Some(Message::EnrollRequest(request)) => request,
        Some(other) => return Err(EnrollError::Unexpected(other.kind())),
        None => return Err(EnrollError::NoRequest),
    };

    let reply = decide(enroller, &request, peer).await;
    if matches!(reply, Message::Rejection(_)) {
        tokio::time::sleep(REJECT_DELAY).await;
    }
    wire::write_message(&mut stream, &reply, MAX_FRAME_BYTES).await?;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    Ok(())
}

fn reject(code: &str, message: impl Into<String>) -> Message {
    Message::Rejection(Rejection {
        code: code.into(),
        message: message.into(),
    })
}

async fn decide(enroller: &Enroller, request: &EnrollRequest, peer: SocketAddr) -> Message {
    if !enroller.secret.verify(&request.secret) {
        tracing::warn!(peer = %peer, name = %request.name, "enrollment rejected: invalid secret");
        return reject("invalid_secret", "invalid enrollment secret");
    }
    if let Err(problem) = check_name(&request.name) {
        tracing::warn!(peer = %peer, problem, "enrollment rejected: invalid agent name");
        return reject("invalid_name", problem);
    }

    let ca = enroller.ca.clone();
    let registry = enroller.registry.clone();
    let (name, csr) = (request.name.clone(), request.csr_pem.clone());
    let issued = tokio::task::spawn_blocking(move || issue(&ca, &registry, &name, &csr)).await;

    match issued {
        Ok(Ok((agent_id, certificate_pem))) => {
            tracing::info!(peer = %peer, agent_id = %agent_id, name = %request.name, version = %request.version, "agent enrolled");
            Message::EnrollResponse(EnrollResponse {
                agent_id,
                certificate_pem,
                ca_pem: enroller.ca.ca_pem().to_string(),
                events_port: enroller.events_port,
            })
        }
        Ok(Err(IssueError::Registry(RegistryError::DuplicateName { name, id }))) => {
            tracing::warn!(peer = %peer, name = %name, agent_id = %id, "enrollment rejected: name already enrolled");
            reject("duplicate_name", format!("an agent named `{name}` is already enrolled as `{id}`; remove it on the manager first"))
        }
        Ok(Err(IssueError::Ca(err))) => {
            tracing::warn!(peer = %peer, error = %err, "enrollment rejected: invalid CSR");
            reject("invalid_csr", "invalid certificate signing request")
        }
        Ok(Err(IssueError::Registry(err))) => {
            tracing::error!(error = %err, "enrollment failed: agent registry error");
            reject(
                "internal_error",
                "the manager failed to store the enrollment",
            )
        }
        Err(err) => {
            tracing::error!(error = %err, "enrollment task failed");
            reject(
                "internal_error",
                "the manager failed to store the enrollment",
            )
        }
    }
}

enum IssueError {
    Registry(RegistryError),
    Ca(CaError),
}

fn issue(
    ca: &CertificateAuthority,
    registry: &Registry,
    name: &str,
    csr_pem: &str,
) -> Result<(String, String), IssueError> {
    let mut certificate = String::new();
    let enrolled = registry
        .enroll(name, |agent_id| {
            let pem = ca.sign_agent_csr(csr_pem, agent_id)?;
            let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).map(
                |der: rustls_pki_types::CertificateDer<'static>| certificate_fingerprint(&der),
            );
            certificate = pem;
            der.map_err(|_| CaError::Issue(rcgen::Error::CouldNotParseCertificate))
        })
        .map_err(IssueError::Registry)?;
    let agent_id = enrolled.map_err(IssueError::Ca)?;
    Ok((agent_id, certificate))
}

/// Agent names are host names: 1 to 128 letters, digits, `.`, `_` and `-`.
fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if name.is_empty() || name.len() > 128 || !valid_chars {
        return Err(format!(
            "invalid agent name `{}`: use 1 to 128 letters, digits, `.`, `_` or `-`",
            name.chars().take(140).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_are_host_names() {
        assert!(check_name("web-01.example_a").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("../etc").is_err());
        assert!(check_name(&"x".repeat(129)).is_err());
    }
}
