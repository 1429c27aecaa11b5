//! The store thread: serialises the analysed alerts once, commits them with stream
//! positions and file states in one SQLite transaction (`synchronous = FULL`), then hands
//! the outputs on and sends each batch's reply to its session.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{discard, file_state, AgentRef, Commit, NewAlert, PipelineConfig};
use crate::connections::Connections;
use crate::outputs::alerts_file::{self, AlertsFile};
use crate::outputs::integration_log::IntegrationLog;
use crate::outputs::writer::FileWriter;

/// Commits merged into one transaction at most.
const MAX_COMMITS_PER_TRANSACTION: usize = 16;
/// Events after which no further commit joins the transaction: about 40 MiB of alerts.
const MAX_EVENTS_PER_TRANSACTION: usize = 32_000;
/// Page cache of the store connection, in KiB.
const CACHE_KIB: i64 = 96 * 1024;
/// Interval between two copies of the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Name of the alerts.json position in `output_cursors`.
const ALERTS_JSON_CURSOR: &str = "alerts_json";

/// The store thread's state.
pub(crate) struct Store {
    conn: Connection,
    pub(super) config: PipelineConfig,
    pub(super) writer: FileWriter,
    /// Whether lookups go to the integration log.
    pub(super) integration_log: bool,
    pub(super) forward: Option<mpsc::Sender<Arc<Value>>>,
    pub(super) connections: Arc<Connections>,
    /// alerts.json position last stored in the database.
    stored_cursor: i64,
    pub(super) forward_dropped: u64,
    pub(super) discard: discard::Discard,
    /// Generation of the commits this thread accepts (see `Commit::generation`).
    accepted_generation: Arc<AtomicU64>,
}

impl Store {
    /// Opens the database and alerts.json, writing to alerts.json any stored alert it lacks.
    pub(super) fn open(
        config: PipelineConfig,
        connections: Arc<Connections>,
        forward: Option<mpsc::Sender<Arc<Value>>>,
        accepted_generation: Arc<AtomicU64>,
    ) -> Result<Store, Box<dyn std::error::Error + Send + Sync>> {
        let conn = crate::db::open_without_checkpoints(&config.db_path)?;
        // Room for every page a transaction changes, so that SQLite never writes a page to
        // the WAL before the commit and then again when the transaction changes it again.
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        crate::db::spawn_checkpointer(&config.db_path, CHECKPOINT_EVERY)?;
        let mut alerts_file = AlertsFile::open(
            &config.alerts_path,
            config.alerts_rotate_max_bytes,
            config.alerts_rotate_daily,
        )?;
        let integration = match &config.integration_log {
            Some(path) => Some(IntegrationLog::open(path)?),
            None => None,
        };
        let stored_cursor = recover_alerts_file(&conn, &mut alerts_file)?;

        Ok(Store {
            conn,
            integration_log: integration.is_some(),
            writer: FileWriter::start(alerts_file, integration)?,
            config,
            forward,
            connections,
            stored_cursor,
            forward_dropped: 0,
            discard: discard::Discard::start(),
            accepted_generation,
        })
    }

    pub(super) fn db_path(&self) -> &Path {
        &self.config.db_path
    }

    /// Commits what the analysis thread sends until it stops.
    pub(super) fn run(mut self, pending: Receiver<Commit>) {
        while let Ok(first) = pending.recv() {
            let mut events = first.events();
            let mut commits = vec![first];
            while commits.len() < MAX_COMMITS_PER_TRANSACTION && events < MAX_EVENTS_PER_TRANSACTION
            {
                match pending.try_recv() {
                    Ok(commit) => {
                        events += commit.events();
                        commits.push(commit);
                    }
                    Err(_) => break,
                }
            }
            self.process(commits);
        }
        self.store_cursor_now();
    }

    fn process(&mut self, commits: Vec<Commit>) {
        let accepted = self.accepted_generation.load(Ordering::Acquire);
        let (current, stale): (Vec<Commit>, Vec<Commit>) = commits
            .into_iter()
            .partition(|commit| commit.generation == accepted);
        for commit in stale {
            let message = "an earlier batch failed to commit; send it again".to_string();
            reject(commit, &message);
        }
        if current.is_empty() {
            return;
        }

        match self.commit(&current) {
            Ok(()) => self.finish(current),
            Err(err) => {
                tracing::error!(error = %err, "failed to commit events; agents will resend them");
                self.accepted_generation
                    .store(accepted + 1, Ordering::Release);
                for commit in current {
                    reject(commit, &err.to_string());
                }
            }
        }
    }

    /// Writes the outputs of committed `commits` and replies to each of their batches.
    fn finish(&mut self, commits: Vec<Commit>) {
        for mut commit in commits {
            let alerts = std::mem::take(&mut commit.alerts);
            let lookups = std::mem::take(&mut commit.lookups);
            self.emit(alerts, lookups, commit.now, &commit.batches);
            for work in commit.batches {
                let _ = work.reply.send(Ok(work.ack));
            }
            self.discard.release(commit.inputs);
        }
    }

    fn commit(&mut self, commits: &[Commit]) -> rusqlite::Result<()> {
        // IMMEDIATE takes the write lock first: a deferred transaction that
        // reads and then writes fails at once with SQLITE_BUSY when another
        // connection (the registry) committed in between.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let written = self.writer.written_seq();
        if written > self.stored_cursor {
            store_cursor(&tx, written)?;
        }

        for commit in commits {
            for alert in &commit.alerts {
                insert_alert(&tx, alert)?;
            }
            file_state::store(&tx, file_changes(commit))?;
        }
        store_positions(&tx, commits)?;
        tx.commit()?;

        self.stored_cursor = self.stored_cursor.max(written);
        Ok(())
    }

    /// Stores the alerts.json position the writer reached, when it moved.
    fn store_cursor_now(&mut self) {
        let written = self.writer.written_seq();
        if written > self.stored_cursor {
            match store_cursor(&self.conn, written) {
                Ok(()) => self.stored_cursor = written,
                Err(err) => {
                    tracing::warn!(error = %err, "failed to store the alerts.json position")
                }
            }
        }
    }

    /// Returns the agent of a stored alert's batch.
    pub(super) fn agent_of<'a>(
        batches: &'a [super::BatchWork],
        alert: &NewAlert,
    ) -> Option<&'a AgentRef> {
        alert
            .batch
            .and_then(|index| batches.get(index))
            .map(|work| &work.agent)
    }
}

/// Rejects every batch of `commit`, so that its agent sends it again.
fn reject(commit: Commit, message: &str) {
    for work in commit.batches {
        work.reject(message);
    }
}

fn insert_alert(tx: &rusqlite::Transaction<'_>, alert: &NewAlert) -> rusqlite::Result<()> {
    let doc = &alert.doc;
    tx.prepare_cached(
        "INSERT INTO alerts (seq, id, timestamp, agent_id, rule_id, level, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        alert.seq,
        doc.id().unwrap_or_default(),
        alert.timestamp,
        doc.agent_id(),
        doc.rule_id(),
        doc.level() as i64,
        alert.line,
    ])?;
    Ok(())
}

/// Lists the file-state changes of `commit` with the agent id and path of their events.
fn file_changes(commit: &Commit) -> impl Iterator<Item = file_state::FileChange<'_>> {
    commit.files.iter().filter_map(|write| {
        let agent_id = &commit.batches.get(write.batch)?.agent.id;
        let event = &commit
            .inputs
            .get(write.batch)?
            .events
            .get(write.event)?
            .event;
        Some(file_state::FileChange {
            agent_id,
            path: event.get("path")?.as_str()?,
            fingerprint: write.fingerprint.as_ref(),
        })
    })
}

fn store_positions(tx: &rusqlite::Transaction<'_>, commits: &[Commit]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO event_streams (agent_id, stream, last_seq) VALUES (?1, ?2, ?3) \
         ON CONFLICT (agent_id, stream) DO UPDATE SET last_seq = excluded.last_seq",
    )?;
    for (agent_id, stream, seq) in commits.iter().flat_map(|c| c.positions.iter()) {
        upsert.execute(params![agent_id, stream, *seq as i64])?;
    }
    Ok(())
}

pub(super) fn max_alert_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT MAX(seq) FROM alerts", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .map(|max| max.unwrap_or(0))
}

/// Appends to alerts.json the stored alerts written after its last recorded
/// position, skipping those already at the end of the file; returns the new position.
fn recover_alerts_file(
    conn: &Connection,
    alerts_file: &mut AlertsFile,
) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    let cursor: i64 = conn
        .query_row(
            "SELECT seq FROM output_cursors WHERE name = ?1",
            [ALERTS_JSON_CURSOR],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let present = alerts_file::ids_in_tail(alerts_file.path())?;
    let mut stmt = conn.prepare("SELECT seq, id, body FROM alerts WHERE seq > ?1 ORDER BY seq")?;
    let rows = stmt.query_map([cursor], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;

    let now = time::OffsetDateTime::now_utc();
    let (mut last, mut written) = (cursor, 0usize);
    for row in rows {
        let (seq, id, body) = row?;
        if !present.contains(&id) {
            alerts_file.write_line(&body, now)?;
            written += 1;
        }
        last = seq;
    }
    alerts_file.flush()?;
    if last != cursor {
        store_cursor(conn, last)?;
    }
    if written > 0 {
        tracing::warn!(
            alerts = written,
            "wrote stored alerts missing from alerts.json"
        );
    }
    Ok(last)
}

fn store_cursor(conn: &Connection, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO output_cursors (name, seq) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        params![ALERTS_JSON_CURSOR, seq],
    )
    .map(drop)
}
