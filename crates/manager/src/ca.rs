//! The manager's certificate authority: created on first start, then loaded;
//! issues the manager's server certificate and signs agents' CSRs.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// Validity of the CA certificate.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of issued server and agent certificates.
const LEAF_VALIDITY: Duration = Duration::days(825);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("failed to read or write CA file `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid CA material in `{path}`: remove the `ca` folder to create a new CA")]
    Invalid {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid certificate signing request")]
    InvalidCsr(#[source] rcgen::Error),
    #[error("failed to issue a certificate")]
    Issue(#[source] rcgen::Error),
}

/// The CA's certificate and key, loaded from `<data_dir>/ca`.
pub struct CertificateAuthority {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, both in PEM form.
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    /// Loads the CA from `dir`, creating it there when the folder has no CA yet.
    pub fn load_or_create(dir: &Path) -> Result<CertificateAuthority, CaError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if !cert_path.exists() {
            create(dir, &cert_path, &key_path)?;
            tracing::info!(path = %cert_path.display(), "created the manager certificate authority");
        }

        let ca_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|source| CaError::Invalid {
            path: key_path.clone(),
            source,
        })?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|source| CaError::Invalid {
            path: cert_path.clone(),
            source,
        })?;
        Ok(CertificateAuthority { ca_pem, issuer })
    }

    /// The CA certificate in PEM form, the trust root of manager and agents.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Issues a server certificate for the manager's listeners, valid for `names`
    /// (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[String]) -> Result<IssuedCertificate, CaError> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(CaError::Issue)?;
        params.distinguished_name = common_name("iocwatch manager");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_leaf_validity(&mut params);

        let key = KeyPair::generate().map_err(CaError::Issue)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(CaError::Issue)?;
        Ok(IssuedCertificate {
            certificate_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs an agent's CSR as a client certificate whose common name is `agent_id`.
    ///
    /// Only the CSR's public key is used: subject and extensions come from the
    /// manager, so an agent cannot ask for another identity or for CA rights.
    pub fn sign_agent_csr(&self, csr_pem: &str, agent_id: &str) -> Result<String, CaError> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(CaError::InvalidCsr)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(agent_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_leaf_validity(&mut params);
        csr.params = params;

        let cert = csr.signed_by(&self.issuer).map_err(CaError::Issue)?;
        Ok(cert.pem())
    }
}

/// The lowercase hex SHA-256 of a DER certificate, the key of the agent registry.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), CaError> {
    fs::create_dir_all(dir).map_err(|source| CaError::Io {
        path: dir.to_path_buf(),
        source,
    })?;

    let mut params = CertificateParams::default();
    params.distinguished_name = common_name("iocwatch manager CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = OffsetDateTime::now_utc() + CA_VALIDITY;
    params.serial_number = Some(random_serial());

    let key = KeyPair::generate().map_err(CaError::Issue)?;
    let cert = params.self_signed(&key).map_err(CaError::Issue)?;

    // The key is written first with owner-only permissions: a CA certificate
    // without its key is never left behind by a crash.
    write_private(key_path, &key.serialize_pem())?;
    fs::write(cert_path, cert.pem()).map_err(|source| CaError::Io {
        path: cert_path.to_path_buf(),
        source,
    })
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn set_leaf_validity(params: &mut CertificateParams) {
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = OffsetDateTime::now_utc() + LEAF_VALIDITY;
    params.serial_number = Some(random_serial());
}

fn random_serial() -> SerialNumber {
    // A v4 UUID carries 122 random bits from the OS generator; the top bit is
    // cleared so the DER integer stays positive.
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to a new file readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), CaError> {
    use std::os::unix::fs::OpenOptionsExt;

    let io_err = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let second = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());

        let mode = fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[test]
    fn csr_subject_is_replaced_by_agent_id() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params.distinguished_name = common_name("001");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();

        let pem = ca.sign_agent_csr(&csr, "007").unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, "007");
        assert!(!cert.is_ca());
        assert!(cert.subject_alternative_name().unwrap().is_none());
    }

    #[test]
    fn garbage_csr_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert!(matches!(
            ca.sign_agent_csr("not a csr", "001"),
            Err(CaError::InvalidCsr(_))
        ));
    }
}
