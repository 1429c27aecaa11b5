//! API users and their keys; a key is stored as its SHA-256 and shown only when created.

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{now_secs, Db, DbError};
use crate::auth::{Role, User};

/// Length of an API key, as MISP's.
pub const KEY_LEN: usize = 40;

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Generates a random 40-character alphanumeric key from the operating system's RNG.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut key = String::with_capacity(KEY_LEN);
    let mut buf = [0u8; 64];
    while key.len() < KEY_LEN {
        getrandom::fill(&mut buf)?;
        // Bytes at or above 248 (4 * 62) are dropped so that every character is equally likely.
        for b in buf.iter().filter(|&&b| b < 248) {
            if key.len() == KEY_LEN {
                break;
            }
            key.push(KEY_ALPHABET[(*b % 62) as usize] as char);
        }
    }
    Ok(key)
}

fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn role_of(text: &str) -> Role {
    // An unknown role in the table gets the least privilege.
    text.parse().unwrap_or(Role::ReadOnly)
}

impl Db {
    /// Adds a user of the local default organisation with a new key; returns the user and
    /// the key, which is not stored.
    pub fn add_user(&self, name: &str, role: Role) -> Result<(User, String), DbError> {
        self.add_user_to_org(name, role, crate::access::DEFAULT_ORG_ID)
    }

    /// Adds a user of organisation `org_id` with a new key; returns the user and the key.
    pub fn add_user_to_org(
        &self,
        name: &str,
        role: Role,
        org_id: i64,
    ) -> Result<(User, String), DbError> {
        let key = generate_key()
            .map_err(|e| DbError::Conflict(format!("failed to generate a key: {e}")))?;
        let conn = self.writer();
        let exists: bool = conn
            .query_row("SELECT 1 FROM api_users WHERE name = ?1", [name], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(DbError::Conflict(format!(
                "user `{name}` exists already; remove it first or choose another name"
            )));
        }
        let created = now_secs();
        conn.execute(
            "INSERT INTO api_users (name, role, key_sha256, created, org_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                name,
                role.as_str(),
                key_hash(&key).as_slice(),
                created,
                org_id
            ],
        )?;
        let user = User {
            id: conn.last_insert_rowid(),
            name: name.to_owned(),
            role,
            created,
            org_id,
        };
        Ok((user, key))
    }

    /// Lists users in id order.
    pub fn users(&self) -> Result<Vec<User>, DbError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare("SELECT id, name, role, created, org_id FROM api_users ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
                role: role_of(&r.get::<_, String>(2)?),
                created: r.get(3)?,
                org_id: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes the user named `name`; returns false when there is none.
    pub fn remove_user(&self, name: &str) -> Result<bool, DbError> {
        let changed = self
            .writer()
            .execute("DELETE FROM api_users WHERE name = ?1", [name])?;
        Ok(changed > 0)
    }

    /// Finds the user whose key is `key`.
    pub fn user_by_key(&self, key: &str) -> Result<Option<User>, DbError> {
        if key.len() != KEY_LEN {
            return Ok(None);
        }
        let hash = key_hash(key);
        let conn = self.reader()?;
        let row = conn
            .query_row(
                "SELECT id, name, role, created, key_sha256, org_id FROM api_users
                 WHERE key_sha256 = ?1",
                [hash.as_slice()],
                |r| {
                    let user = User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        role: role_of(&r.get::<_, String>(2)?),
                        created: r.get(3)?,
                        org_id: r.get(5)?,
                    };
                    Ok((user, r.get::<_, Vec<u8>>(4)?))
                },
            )
            .optional()?;
        Ok(row.and_then(|(user, stored)| bool::from(stored.ct_eq(&hash)).then_some(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_alphanumeric() {
        let key = generate_key().unwrap();
        assert_eq!(key.len(), KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(key, generate_key().unwrap());
    }
}
