//! The last reported state of each file per agent, as Wazuh's manager keeps
//! its FIM database: an event that reports a state the manager already has
//! is not a change and raises no second alert.
//!
//! An agent killed between sending an event and recording the file in its own
//! baseline reports the same file again after a restart, under a new event id;
//! the event-id check cannot see that, this one does.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Decision for one file event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The event reports something new: analyse it.
    New,
    /// The manager already has exactly this state, so the event is skipped.
    Unchanged,
}

/// Compares the event with the stored state and stores the new one.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    agent_id: &str,
    event: &Value,
) -> rusqlite::Result<Change> {
    let Some(object) = event.as_object() else {
        return Ok(Change::New);
    };
    if object
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "file")
    {
        return Ok(Change::New);
    }
    let (Some(path), Some(kind)) = (
        object.get("path").and_then(Value::as_str),
        object.get("event").and_then(Value::as_str),
    ) else {
        return Ok(Change::New);
    };

    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT fingerprint FROM file_states WHERE agent_id = ?1 AND path = ?2")?
        .query_row(params![agent_id, path], |r| r.get(0))
        .optional()?;

    if kind == "deleted" {
        if stored.is_none() {
            return Ok(Change::Unchanged);
        }
        tx.prepare_cached("DELETE FROM file_states WHERE agent_id = ?1 AND path = ?2")?
            .execute(params![agent_id, path])?;
        return Ok(Change::New);
    }
    if !matches!(kind, "added" | "modified") {
        return Ok(Change::New);
    }

    let fingerprint = fingerprint(object);
    if stored.as_deref() == Some(fingerprint.as_slice()) {
        return Ok(Change::Unchanged);
    }
    tx.prepare_cached(
        "INSERT INTO file_states (agent_id, path, fingerprint) VALUES (?1, ?2, ?3) \
         ON CONFLICT (agent_id, path) DO UPDATE SET fingerprint = excluded.fingerprint",
    )?
    .execute(params![agent_id, path, fingerprint.as_slice()])?;
    Ok(Change::New)
}

/// SHA-256 over the sorted `*_after` fields: the file's state after the event.
fn fingerprint(object: &serde_json::Map<String, Value>) -> [u8; 32] {
    let mut fields: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(key, _)| key.ends_with("_after"))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (key, value) in fields {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        // The same compact JSON as `Value::to_string`, so stored fingerprints stay valid, but
        // written straight into the hash. Writing to a hasher cannot fail.
        let _ = serde_json::to_writer(&mut hasher, value);
        hasher.update([0]);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decide(conn: &mut rusqlite::Connection, event: Value) -> Change {
        let tx = conn.transaction().unwrap();
        let change = apply(&tx, "001", &event).unwrap();
        tx.commit().unwrap();
        change
    }

    #[test]
    fn repeated_state_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("m.db")).unwrap();
        let added =
            json!({"path": "/a", "event": "added", "sha256_after": "aa", "mtime_after": "1"});

        assert_eq!(decide(&mut conn, added.clone()), Change::New);
        assert_eq!(decide(&mut conn, added.clone()), Change::Unchanged);

        let modified =
            json!({"path": "/a", "event": "modified", "sha256_after": "bb", "mtime_after": "2"});
        assert_eq!(decide(&mut conn, modified.clone()), Change::New);
        assert_eq!(decide(&mut conn, modified), Change::Unchanged);

        let deleted = json!({"path": "/a", "event": "deleted", "sha256_before": "bb"});
        assert_eq!(decide(&mut conn, deleted.clone()), Change::New);
        assert_eq!(decide(&mut conn, deleted), Change::Unchanged);
        assert_eq!(decide(&mut conn, added), Change::New);
    }

    #[test]
    fn fingerprint_is_hash_of_compact_after_fields() {
        let event = json!({
            "path": "/a",
            "size_after": 12,
            "sha256_after": "aa",
            "perm_after": {"mode": "rw\"x"},
            "mtime_before": 1
        });
        let object = event.as_object().unwrap();
        let mut expected = Sha256::new();
        for key in ["perm_after", "sha256_after", "size_after"] {
            expected.update(key.as_bytes());
            expected.update([0]);
            expected.update(object[key].to_string().as_bytes());
            expected.update([0]);
        }
        let expected: [u8; 32] = expected.finalize().into();

        assert_eq!(fingerprint(object), expected);
    }

    #[test]
    fn other_events_always_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("m.db")).unwrap();
        let notice = json!({"type": "notice", "path": "/a", "event": "added"});
        assert_eq!(decide(&mut conn, notice.clone()), Change::New);
        assert_eq!(decide(&mut conn, notice), Change::New);
        assert_eq!(
            decide(&mut conn, json!({"active_response": {}})),
            Change::New
        );
    }
}
