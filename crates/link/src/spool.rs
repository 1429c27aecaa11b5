//! The durable event spool: events are committed to SQLite before the sink
//! returns, sent in order, and deleted only once the manager acknowledged them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use wire::{EventId, WireEvent};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool database `{path}` failed")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to encode an event for the spool")]
    Encode(#[source] serde_json::Error),
}

/// What happened to one pushed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Committed to disk under this id.
    Stored(EventId),
    /// Dropped because the spool reached its size bound.
    Dropped,
}

/// An SQLite-backed, size-bounded, ordered queue of events.
///
/// The sequence numbers come from an `AUTOINCREMENT` key and are never reused,
/// so together with the spool's stream id they identify an event for the
/// manager's de-duplication across agent restarts.
pub struct Spool {
    path: PathBuf,
    conn: Connection,
    stream: String,
    max_bytes: u64,
    used_bytes: u64,
    events: u64,
    dropped: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
";

impl Spool {
    /// Opens the spool at `path`, creating it with a new stream id when missing.
    ///
    /// Commits use WAL with `synchronous = NORMAL`: a committed event survives
    /// the agent being killed (the data is in the operating system's cache),
    /// but the last commits may be lost if the host itself loses power.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        let db = |source| SpoolError::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;

        let stream = match meta(&conn, "stream").map_err(db)? {
            Some(stream) => stream,
            None => {
                let stream = uuid::Uuid::new_v4().to_string();
                set_meta(&conn, "stream", &stream).map_err(db)?;
                stream
            }
        };
        let dropped = meta(&conn, "dropped")
            .map_err(db)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (events, used_bytes): (i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db)?;

        Ok(Spool {
            path: path.to_path_buf(),
            conn,
            stream,
            max_bytes,
            used_bytes: used_bytes as u64,
            events: events as u64,
            dropped,
        })
    }

    fn db_err(&self, source: rusqlite::Error) -> SpoolError {
        SpoolError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// The stream id of this spool, the first half of every [`EventId`] it issues.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Events waiting to be acknowledged.
    pub fn len(&self) -> u64 {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Events dropped since the spool was created because it was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes of event bodies held.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Commits one event; see [`Spool::push_many`].
    pub fn push(&mut self, event: &Value) -> Result<Pushed, SpoolError> {
        let mut pushed = self.push_many(std::slice::from_ref(event))?;
        Ok(pushed.pop().unwrap_or(Pushed::Dropped))
    }

    /// Commits events in one transaction, in order; events that would take the
    /// spool over its size bound are dropped and counted.
    pub fn push_many(&mut self, events: &[Value]) -> Result<Vec<Pushed>, SpoolError> {
        let mut bodies = Vec::with_capacity(events.len());
        for event in events {
            bodies.push(serde_json::to_vec(event).map_err(SpoolError::Encode)?);
        }

        let tx = self.conn.transaction().map_err(|e| SpoolError::Db {
            path: self.path.clone(),
            source: e,
        })?;
        let mut results = Vec::with_capacity(bodies.len());
        let (mut used, mut count, mut dropped) = (self.used_bytes, self.events, self.dropped);
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO events (body) VALUES (?1)")
                .map_err(|e| SpoolError::Db {
                    path: self.path.clone(),
                    source: e,
                })?;
            for body in &bodies {
                if used + body.len() as u64 > self.max_bytes {
                    dropped += 1;
                    results.push(Pushed::Dropped);
                    continue;
                }
                insert.execute([body]).map_err(|e| SpoolError::Db {
                    path: self.path.clone(),
                    source: e,
                })?;
                let seq = tx.last_insert_rowid() as u64;
                used += body.len() as u64;
                count += 1;
                results.push(Pushed::Stored(EventId {
                    stream: self.stream.clone(),
                    seq,
                }));
            }
        }
        if dropped != self.dropped {
            set_meta(&tx, "dropped", &dropped.to_string()).map_err(|e| SpoolError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        }
        tx.commit().map_err(|e| SpoolError::Db {
            path: self.path.clone(),
            source: e,
        })?;

        if dropped != self.dropped {
            tracing::warn!(
                dropped_total = dropped,
                max_bytes = self.max_bytes,
                "spool full, events dropped; a rescan recovers the file state"
            );
        }
        (self.used_bytes, self.events, self.dropped) = (used, count, dropped);
        Ok(results)
    }

    /// Reads up to `max_events` events after `after_seq`, in order, stopping
    /// before the batch's encoded bodies exceed `max_bytes` (one event is
    /// always returned when there is one).
    pub fn read_after(
        &self,
        after_seq: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<WireEvent>, SpoolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(|e| self.db_err(e))?;
        let mut rows = stmt
            .query(params![after_seq as i64, max_events as i64])
            .map_err(|e| self.db_err(e))?;

        let mut events = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next().map_err(|e| self.db_err(e))? {
            let seq: i64 = row.get(0).map_err(|e| self.db_err(e))?;
            let body: Vec<u8> = row.get(1).map_err(|e| self.db_err(e))?;
            bytes += body.len();
            if bytes > max_bytes && !events.is_empty() {
                break;
            }
            // A body that no longer parses is sent as a JSON string rather
            // than blocking the spool; the manager logs it as undecodable.
            let event = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            events.push(WireEvent {
                id: EventId {
                    stream: self.stream.clone(),
                    seq: seq as u64,
                },
                event,
            });
        }
        Ok(events)
    }

    /// Deletes every event up to and including `seq`, after the manager acknowledged them.
    pub fn ack_through(&mut self, seq: u64) -> Result<(), SpoolError> {
        let tx = self.conn.transaction().map_err(|e| SpoolError::Db {
            path: self.path.clone(),
            source: e,
        })?;
        let (count, bytes): (i64, i64) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM events WHERE seq <= ?1",
                [seq as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| SpoolError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        tx.execute("DELETE FROM events WHERE seq <= ?1", [seq as i64])
            .map_err(|e| SpoolError::Db {
                path: self.path.clone(),
                source: e,
            })?;
        tx.commit().map_err(|e| SpoolError::Db {
            path: self.path.clone(),
            source: e,
        })?;

        self.events = self.events.saturating_sub(count as u64);
        self.used_bytes = self.used_bytes.saturating_sub(bytes as u64);
        Ok(())
    }
}

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open(dir: &Path, max_bytes: u64) -> Spool {
        Spool::open(&dir.join("spool.db"), max_bytes).unwrap()
    }

    #[test]
    fn events_survive_reopen_in_order_with_same_stream() {
        let dir = tempfile::tempdir().unwrap();
        let stream = {
            let mut spool = open(dir.path(), 1 << 20);
            for n in 0..5 {
                spool.push(&json!({"n": n})).unwrap();
            }
            spool.stream().to_string()
        };

        let spool = open(dir.path(), 1 << 20);
        assert_eq!(spool.stream(), stream);
        assert_eq!(spool.len(), 5);
        let events = spool.read_after(0, 100, usize::MAX).unwrap();
        let ns: Vec<i64> = events
            .iter()
            .map(|e| e.event["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, vec![0, 1, 2, 3, 4]);
        assert!(events.windows(2).all(|w| w[0].id.seq < w[1].id.seq));
    }

    #[test]
    fn ack_deletes_and_sequence_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = open(dir.path(), 1 << 20);
        spool.push_many(&[json!(1), json!(2), json!(3)]).unwrap();
        spool.ack_through(3).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.used_bytes(), 0);
        drop(spool);

        let mut spool = open(dir.path(), 1 << 20);
        let Pushed::Stored(id) = spool.push(&json!(4)).unwrap() else {
            panic!("dropped")
        };
        assert_eq!(id.seq, 4);
    }

    #[test]
    fn full_spool_drops_and_counts_persistently() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = open(dir.path(), 10);
        let results = spool
            .push_many(&[json!("abcd"), json!("efgh"), json!("ijkl")])
            .unwrap();
        assert!(matches!(results[0], Pushed::Stored(_)));
        assert!(matches!(results[1], Pushed::Dropped));
        assert!(matches!(results[2], Pushed::Dropped));
        assert_eq!(spool.dropped(), 2);
        drop(spool);
        assert_eq!(open(dir.path(), 10).dropped(), 2);
    }

    #[test]
    fn read_after_respects_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = open(dir.path(), 1 << 20);
        spool
            .push_many(&(0..10).map(|n| json!(n)).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(spool.read_after(0, 4, usize::MAX).unwrap().len(), 4);
        assert_eq!(spool.read_after(8, 4, usize::MAX).unwrap().len(), 2);
        assert_eq!(spool.read_after(0, 100, 1).unwrap().len(), 1);
    }
}
