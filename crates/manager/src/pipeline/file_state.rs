//! The last reported state of each file per agent, as Wazuh's manager keeps
//! its FIM database: an event that reports a state the manager already has
//! is not a change and raises no second alert.
//!
//! An agent killed between sending an event and recording the file in its own
//! baseline reports the same file again after a restart, under a new event id;
//! the event-id check cannot see that, this one does.
//!
//! The analysis thread decides from a map in memory, loaded from `file_states` at start,
//! and the store thread writes the changes in the transaction of the events that made
//! them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use rusqlite::{params, Connection, Transaction};
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

/// A change of `file_states` waiting for the store thread. The agent id and path are
/// read from the event again there, so that the change copies neither.
#[derive(Debug)]
pub(crate) struct FileWrite {
    /// Index of the event's batch in its commit.
    pub batch: usize,
    /// Index of the event in its batch.
    pub event: usize,
    /// The new state, or `None` when the file was deleted.
    pub fingerprint: Option<[u8; 32]>,
}

/// SHA-256 of a secret salt, the agent id and the path, cut to 128 bits: the map's key,
/// so that the map contains no copy of the path. The salt, new at every start, keeps agents from
/// choosing paths whose keys collide in the map.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileKey([u8; 16]);

impl Hash for FileKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut word = [0; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// Passes a [`FileKey`]'s first 64 bits through: they are already uniformly distributed.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
}

/// Fingerprints of the files of every agent, as committed plus the changes the analysis
/// thread handed to the store thread.
// NOTE: the map keeps every file of every agent in memory: 48 bytes per entry plus the
// table's spare room, an estimate of 55 to 110 bytes per file, so ten million files take
// about 1 GB.
pub(crate) struct FileStates {
    fingerprints: HashMap<FileKey, [u8; 32], BuildHasherDefault<KeyHasher>>,
    salt: [u8; 16],
    /// Reused buffer for the JSON text of the `*_after` fields.
    scratch: Vec<u8>,
}

impl Default for FileStates {
    fn default() -> FileStates {
        FileStates {
            fingerprints: HashMap::default(),
            salt: *uuid::Uuid::new_v4().as_bytes(),
            scratch: Vec::new(),
        }
    }
}

impl FileStates {
    /// Reads every stored state.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<FileStates> {
        let mut stmt = conn.prepare("SELECT agent_id, path, fingerprint FROM file_states")?;
        let mut rows = stmt.query([])?;
        let mut states = FileStates::default();
        while let Some(row) = rows.next()? {
            let agent_id: String = row.get(0)?;
            let path: String = row.get(1)?;
            let stored: Vec<u8> = row.get(2)?;
            // A fingerprint of another length matches no event, so the next event for
            // that file raises an alert and replaces it.
            let fingerprint = <[u8; 32]>::try_from(stored.as_slice()).unwrap_or([0; 32]);
            let key = states.key(&agent_id, &path);
            states.fingerprints.insert(key, fingerprint);
        }
        Ok(states)
    }

    /// Compares the event with the known state, records the new one, and queues its
    /// write in `writes`. `position` is the event's `(batch, event)` index in its commit.
    pub(crate) fn apply(
        &mut self,
        agent_id: &str,
        event: &Value,
        position: (usize, usize),
        writes: &mut Vec<FileWrite>,
    ) -> Change {
        let Some(object) = event.as_object() else {
            return Change::New;
        };
        if object
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "file")
        {
            return Change::New;
        }
        let (Some(path), Some(kind)) = (
            object.get("path").and_then(Value::as_str),
            object.get("event").and_then(Value::as_str),
        ) else {
            return Change::New;
        };
        let key = self.key(agent_id, path);
        let (batch, event) = position;

        if kind == "deleted" {
            if self.fingerprints.remove(&key).is_none() {
                return Change::Unchanged;
            }
            let fingerprint = None;
            writes.push(FileWrite {
                batch,
                event,
                fingerprint,
            });
            return Change::New;
        }
        if !matches!(kind, "added" | "modified") {
            return Change::New;
        }

        let fingerprint = fingerprint(object, &mut self.scratch);
        if self.fingerprints.insert(key, fingerprint) == Some(fingerprint) {
            return Change::Unchanged;
        }
        let fingerprint = Some(fingerprint);
        writes.push(FileWrite {
            batch,
            event,
            fingerprint,
        });
        Change::New
    }

    fn key(&self, agent_id: &str, path: &str) -> FileKey {
        let mut hasher = Sha256::new();
        hasher.update(self.salt);
        hasher.update(agent_id.as_bytes());
        hasher.update([0]);
        hasher.update(path.as_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        FileKey(key)
    }
}

/// A queued change with the agent id and path it applies to.
pub(crate) struct FileChange<'a> {
    pub agent_id: &'a str,
    pub path: &'a str,
    pub fingerprint: Option<&'a [u8; 32]>,
}

/// Writes queued changes in the store thread's transaction.
pub(crate) fn store<'a>(
    tx: &Transaction<'_>,
    changes: impl Iterator<Item = FileChange<'a>>,
) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO file_states (agent_id, path, fingerprint) VALUES (?1, ?2, ?3) \
         ON CONFLICT (agent_id, path) DO UPDATE SET fingerprint = excluded.fingerprint",
    )?;
    let mut delete =
        tx.prepare_cached("DELETE FROM file_states WHERE agent_id = ?1 AND path = ?2")?;
    for change in changes {
        match change.fingerprint {
            Some(fingerprint) => upsert.execute(params![
                change.agent_id,
                change.path,
                fingerprint.as_slice()
            ])?,
            None => delete.execute(params![change.agent_id, change.path])?,
        };
    }
    Ok(())
}

/// SHA-256 over the sorted `*_after` fields: the file's state after the event. `scratch`
/// is a buffer reused between events.
fn fingerprint(object: &serde_json::Map<String, Value>, scratch: &mut Vec<u8>) -> [u8; 32] {
    let mut fields: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(key, _)| key.ends_with("_after"))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    scratch.clear();
    for (key, value) in fields {
        scratch.extend_from_slice(key.as_bytes());
        scratch.push(0);
        // The same compact JSON as `Value::to_string`, so stored fingerprints stay valid.
        // Writing to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *scratch, value);
        scratch.push(0);
    }
    Sha256::digest(scratch.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Decides like the analysis thread, then commits like the store thread.
    fn decide(states: &mut FileStates, conn: &mut Connection, event: Value) -> Change {
        let mut writes = Vec::new();
        let change = states.apply("001", &event, (0, 0), &mut writes);
        let path = event["path"].as_str().unwrap();
        let changes = writes.iter().map(|write| FileChange {
            agent_id: "001",
            path,
            fingerprint: write.fingerprint.as_ref(),
        });
        let tx = conn.transaction().unwrap();
        store(&tx, changes).unwrap();
        tx.commit().unwrap();
        change
    }

    #[test]
    fn repeated_state_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("m.db")).unwrap();
        let mut states = FileStates::load(&conn).unwrap();
        let added =
            json!({"path": "/a", "event": "added", "sha256_after": "aa", "mtime_after": "1"});

        assert_eq!(decide(&mut states, &mut conn, added.clone()), Change::New);
        assert_eq!(
            decide(&mut states, &mut conn, added.clone()),
            Change::Unchanged
        );

        let modified =
            json!({"path": "/a", "event": "modified", "sha256_after": "bb", "mtime_after": "2"});
        assert_eq!(
            decide(&mut states, &mut conn, modified.clone()),
            Change::New
        );
        assert_eq!(decide(&mut states, &mut conn, modified), Change::Unchanged);

        let deleted = json!({"path": "/a", "event": "deleted", "sha256_before": "bb"});
        assert_eq!(decide(&mut states, &mut conn, deleted.clone()), Change::New);
        assert_eq!(decide(&mut states, &mut conn, deleted), Change::Unchanged);
        assert_eq!(decide(&mut states, &mut conn, added), Change::New);
    }

    #[test]
    fn states_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("m.db")).unwrap();
        let mut states = FileStates::load(&conn).unwrap();
        let kept = json!({"path": "/kept", "event": "added", "sha256_after": "aa"});
        let gone = json!({"path": "/gone", "event": "added", "sha256_after": "bb"});
        decide(&mut states, &mut conn, kept.clone());
        decide(&mut states, &mut conn, gone.clone());
        let deleted = json!({"path": "/gone", "event": "deleted", "sha256_before": "bb"});
        decide(&mut states, &mut conn, deleted.clone());

        let mut reloaded = FileStates::load(&conn).unwrap();
        assert_eq!(decide(&mut reloaded, &mut conn, kept), Change::Unchanged);
        assert_eq!(decide(&mut reloaded, &mut conn, deleted), Change::Unchanged);
        assert_eq!(decide(&mut reloaded, &mut conn, gone), Change::New);
    }

    #[test]
    fn agents_have_separate_states() {
        let mut states = FileStates::default();
        let added = json!({"path": "/a", "event": "added", "sha256_after": "aa"});
        let mut writes = Vec::new();
        assert_eq!(
            states.apply("001", &added, (0, 0), &mut writes),
            Change::New
        );
        assert_eq!(
            states.apply("002", &added, (0, 1), &mut writes),
            Change::New
        );
        assert_eq!(
            states.apply("001", &added, (0, 0), &mut writes),
            Change::Unchanged
        );
        assert_eq!(writes.len(), 2);
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

        assert_eq!(fingerprint(object, &mut Vec::new()), expected);
    }

    #[test]
    fn other_events_always_pass() {
        let mut states = FileStates::default();
        let mut writes = Vec::new();
        let notice = json!({"type": "notice", "path": "/a", "event": "added"});
        assert_eq!(
            states.apply("001", &notice, (0, 0), &mut writes),
            Change::New
        );
        assert_eq!(
            states.apply("001", &notice, (0, 0), &mut writes),
            Change::New
        );
        let result = json!({"active_response": {}});
        assert_eq!(
            states.apply("001", &result, (0, 0), &mut writes),
            Change::New
        );
        assert!(writes.is_empty());
    }
}
