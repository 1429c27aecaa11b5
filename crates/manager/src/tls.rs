//! rustls server configurations: TLS 1.3 for enrollment (manager
//! authenticated) and TLS 1.3 with mutual authentication for agents.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ca::{CertificateAuthority, IssuedCertificate};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("invalid PEM in the {what}")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("failed to build the TLS configuration")]
    Rustls(#[from] rustls::Error),
    #[error("failed to build the client certificate verifier")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Returns the ring provider, the only one this build enables.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server configurations for both listeners, sharing one server certificate.
pub struct ServerTls {
    pub enrollment: Arc<ServerConfig>,
    pub agents: Arc<ServerConfig>,
}

impl ServerTls {
    pub fn new(
        ca: &CertificateAuthority,
        server: &IssuedCertificate,
    ) -> Result<ServerTls, TlsError> {
        let ca_der = CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).map_err(|source| {
            TlsError::Pem {
                what: "CA certificate",
                source,
            }
        })?;
        let chain = || -> Result<Vec<CertificateDer<'static>>, TlsError> {
            let leaf = CertificateDer::from_pem_slice(server.certificate_pem.as_bytes()).map_err(
                |source| TlsError::Pem {
                    what: "server certificate",
                    source,
                },
            )?;
            Ok(vec![leaf, ca_der.clone()])
        };
        let key = || {
            PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).map_err(|source| {
                TlsError::Pem {
                    what: "server key",
                    source,
                }
            })
        };

        let enrollment = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain()?, key()?)?;

        let mut roots = RootCertStore::empty();
        roots.add(ca_der.clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
        let agents = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain()?, key()?)?;

        Ok(ServerTls {
            enrollment: Arc::new(enrollment),
            agents: Arc::new(agents),
        })
    }
}
