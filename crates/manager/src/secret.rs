//! The enrollment secret, kept only as its SHA-256 and compared in constant time.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of the enrollment secret; the secret itself is never stored.
#[derive(Clone)]
pub struct SecretHash([u8; 32]);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

impl SecretHash {
    /// Hashes a secret, ignoring surrounding whitespace such as a file's final newline.
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(Sha256::digest(secret.trim().as_bytes()).into())
    }

    /// Parses 64 hex digits, as in `enrollment.secret_sha256`.
    pub fn from_hex(hex_digest: &str) -> Option<SecretHash> {
        let bytes = hex::decode(hex_digest).ok()?;
        Some(SecretHash(bytes.try_into().ok()?))
    }

    /// Reads a secret file and keeps only its hash.
    pub fn from_file(path: &Path) -> std::io::Result<SecretHash> {
        let secret = std::fs::read_to_string(path)?;
        if secret.trim().is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the enrollment secret file is empty",
            ));
        }
        Ok(SecretHash::of(&secret))
    }

    /// Compares `presented` with the stored hash in time independent of where they differ.
    pub fn verify(&self, presented: &str) -> bool {
        let candidate = SecretHash::of(presented);
        self.0.ct_eq(&candidate.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_only_the_secret() {
        let hash = SecretHash::of("correct horse\n");
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horsf"));
        assert!(!hash.verify(""));
    }

    #[test]
    fn hex_form_matches_hash_of_secret() {
        let hex_digest = hex::encode(Sha256::digest(b"s3cret"));
        let hash = SecretHash::from_hex(&hex_digest).unwrap();
        assert!(hash.verify("s3cret"));
        assert!(SecretHash::from_hex("abc").is_none());
    }
}
