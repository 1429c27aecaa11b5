//! The event pipeline: one thread that de-duplicates each batch by event id,
//! analyses new events (intel lookup and rules), commits alerts and stream
//! positions in one SQLite transaction, then writes the outputs and lets the
//! session acknowledge the batch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use wire::{Ack, EventBatch};

use crate::connections::Connections;
use crate::outputs::alerts_file::{self, AlertsFile};
use crate::outputs::integration_log::{IntegrationLog, LookupRecord};
use crate::outputs::writer::{FileWriter, LookupLine};

mod discard;
mod emit;
mod file_state;

/// Jobs merged into one transaction at most.
const MAX_JOBS_PER_COMMIT: usize = 64;
/// Interval between two copies of the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Name of the alerts.json position in `output_cursors`.
const ALERTS_JSON_CURSOR: &str = "alerts_json";

/// The agent an event came from, taken from its certificate, never from the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRef {
    pub id: String,
    pub name: String,
    pub ip: String,
}

/// Alerts and lookups produced by analysing one event.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Alert documents in Wazuh 4.x form; the pipeline sets their `id`.
    pub alerts: Vec<Value>,
    pub lookups: Vec<LookupRecord>,
}

/// Turns one event into alerts; runs on the pipeline thread only.
pub trait Analyze: Send + 'static {
    fn analyze(&mut self, agent: &AgentRef, event: &Value, now: SystemTime, out: &mut Analysis);
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the event pipeline stopped")]
    Stopped,
    #[error("failed to commit the batch: {0}")]
    Commit(String),
}

enum Job {
    Batch {
        agent: AgentRef,
        batch: EventBatch,
        reply: oneshot::Sender<Result<Ack, PipelineError>>,
    },
    /// An alert the manager raised itself, such as an agent disconnection.
    Alert(Value),
}

/// Submits work to the pipeline thread; cheap to clone.
#[derive(Clone)]
pub struct PipelineHandle {
    jobs: mpsc::Sender<Job>,
}

impl PipelineHandle {
    /// Hands a batch over and waits until it is committed.
    pub async fn submit(&self, agent: AgentRef, batch: EventBatch) -> Result<Ack, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Batch {
            agent,
            batch,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| PipelineError::Stopped)?;
        answer.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Stores and writes an alert the manager raised.
    pub async fn raise(&self, alert: Value) -> Result<(), PipelineError> {
        self.jobs
            .send(Job::Alert(alert))
            .await
            .map_err(|_| PipelineError::Stopped)
    }
}

/// Output paths, the alert level and the active-response triggers of the pipeline.
pub struct PipelineConfig {
    pub db_path: PathBuf,
    pub alerts_path: PathBuf,
    pub alerts_rotate_max_bytes: u64,
    pub alerts_rotate_daily: bool,
    pub integration_log: Option<PathBuf>,
    pub min_level: u8,
    pub quarantine_rule_ids: Vec<String>,
    pub quarantine_min_level: Option<u8>,
}

/// The pipeline's state, owned by its thread.
pub struct Pipeline {
    conn: Connection,
    analyzer: Box<dyn Analyze>,
    config: PipelineConfig,
    /// Highest committed sequence number per `(agent id, stream)`.
    streams: HashMap<(String, String), u64>,
    next_alert_seq: i64,
    writer: FileWriter,
    /// Whether lookups go to the integration log.
    integration_log: bool,
    forward: Option<mpsc::Sender<Arc<Value>>>,
    connections: Arc<Connections>,
    /// alerts.json position last stored in the database.
    stored_cursor: i64,
    forward_dropped: u64,
    discard: discard::Discard,
}

/// A batch's share of a commit.
struct BatchWork {
    agent: AgentRef,
    ack: Ack,
    reply: oneshot::Sender<Result<Ack, PipelineError>>,
}

/// One stored alert waiting for the outputs.
pub(crate) struct StoredAlert {
    pub seq: i64,
    pub agent: Option<AgentRef>,
    pub body: Value,
    pub line: String,
}

impl Pipeline {
    /// Opens the database and alerts.json, writing to alerts.json any stored alert it lacks.
    pub fn open(
        config: PipelineConfig,
        analyzer: Box<dyn Analyze>,
        connections: Arc<Connections>,
        forward: Option<mpsc::Sender<Arc<Value>>>,
    ) -> Result<Pipeline, Box<dyn std::error::Error + Send + Sync>> {
        let conn = crate::db::open_without_checkpoints(&config.db_path)?;
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
        let max_seq: Option<i64> =
            conn.query_row("SELECT MAX(seq) FROM alerts", [], |r| r.get(0))?;
        let stored_cursor = recover_alerts_file(&conn, &mut alerts_file)?;

        Ok(Pipeline {
            conn,
            analyzer,
            integration_log: integration.is_some(),
            writer: FileWriter::start(alerts_file, integration)?,
            config,
            streams: HashMap::new(),
            next_alert_seq: max_seq.unwrap_or(0) + 1,
            forward,
            connections,
            stored_cursor,
            forward_dropped: 0,
            discard: discard::Discard::start(),
        })
    }

    /// Starts the pipeline thread and returns its handle.
    pub fn spawn(self) -> std::io::Result<PipelineHandle> {
        let (jobs, receiver) = mpsc::channel(256);
        std::thread::Builder::new()
            .name("iocwatch-pipeline".into())
            .spawn(move || self.run(receiver))?;
        Ok(PipelineHandle { jobs })
    }

    fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_JOBS_PER_COMMIT {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.process(jobs);
        }
        self.store_cursor_now();
    }

    fn process(&mut self, jobs: Vec<Job>) {
        let now = SystemTime::now();
        let mut stored = Vec::new();
        let mut lookups = Vec::new();
        let (mut batches, mut raised) = (Vec::new(), Vec::new());
        let mut inputs = Vec::new();
        for job in jobs {
            match job {
                Job::Batch {
                    agent,
                    batch,
                    reply,
                } => {
                    let ack = Ack {
                        batch: batch.batch,
                        accepted: 0,
                        duplicates: 0,
                    };
                    inputs.push(batch);
                    batches.push(BatchWork { agent, ack, reply });
                }
                Job::Alert(alert) => raised.push(alert),
            }
        }

        let committed = self.commit(
            &inputs,
            &mut batches,
            raised,
            now,
            &mut stored,
            &mut lookups,
        );
        match committed {
            Ok(()) => {
                self.emit(stored, lookups, now);
                for work in batches {
                    let _ = work.reply.send(Ok(work.ack));
                }
                self.discard.release(inputs);
            }
            Err(err) => {
                tracing::error!(error = %err, "failed to commit events; agents will resend them");
                self.streams.clear();
                self.next_alert_seq = self.max_alert_seq() + 1;
                for work in batches {
                    let _ = work.reply.send(Err(PipelineError::Commit(err.to_string())));
                }
            }
        }
    }

    fn commit(
        &mut self,
        inputs: &[EventBatch],
        batches: &mut [BatchWork],
        raised: Vec<Value>,
        now: SystemTime,
        stored: &mut Vec<StoredAlert>,
        lookups: &mut Vec<LookupLine>,
    ) -> rusqlite::Result<()> {
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

        let mut positions: HashMap<(String, String), u64> = HashMap::new();
        let mut analysis = Analysis::default();
        for (batch, work) in inputs.iter().zip(batches.iter_mut()) {
            for event in &batch.events {
                let key = (work.agent.id.clone(), event.id.stream.clone());
                let last = match positions.get(&key).or_else(|| self.streams.get(&key)) {
                    Some(last) => *last,
                    None => stream_position(&tx, &key)?,
                };
                if event.id.seq <= last {
                    work.ack.duplicates += 1;
                    continue;
                }
                positions.insert(key, event.id.seq);
                if file_state::apply(&tx, &work.agent.id, &event.event)?
                    == file_state::Change::Unchanged
                {
                    work.ack.duplicates += 1;
                    continue;
                }
                work.ack.accepted += 1;

                self.analyzer
                    .analyze(&work.agent, &event.event, now, &mut analysis);
                let path = event
                    .event
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for lookup in analysis.lookups.drain(..) {
                    lookups.push((work.agent.id.clone(), path.to_string(), lookup));
                }
                for alert in analysis.alerts.drain(..) {
                    insert_alert(
                        &tx,
                        &mut self.next_alert_seq,
                        self.config.min_level,
                        Some(&work.agent),
                        alert,
                        now,
                        stored,
                    )?;
                }
            }
        }
        for alert in raised {
            insert_alert(
                &tx,
                &mut self.next_alert_seq,
                self.config.min_level,
                None,
                alert,
                now,
                stored,
            )?;
        }
        for ((agent_id, stream), seq) in &positions {
            tx.execute(
                "INSERT INTO event_streams (agent_id, stream, last_seq) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (agent_id, stream) DO UPDATE SET last_seq = excluded.last_seq",
                params![agent_id, stream, *seq as i64],
            )?;
        }
        tx.commit()?;
        self.stored_cursor = self.stored_cursor.max(written);
        self.streams.extend(positions);
        Ok(())
    }

    fn max_alert_seq(&self) -> i64 {
        self.conn
            .query_row("SELECT MAX(seq) FROM alerts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .ok()
            .flatten()
            .unwrap_or(0)
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
}

/// Stores an alert at or above `min_level` under the next sequence number and id.
#[allow(clippy::too_many_arguments)]
fn insert_alert(
    tx: &rusqlite::Transaction<'_>,
    next_seq: &mut i64,
    min_level: u8,
    agent: Option<&AgentRef>,
    mut alert: Value,
    now: SystemTime,
    stored: &mut Vec<StoredAlert>,
) -> rusqlite::Result<()> {
    let level = field(&alert, "rule", "level")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if level < u64::from(min_level) {
        return Ok(());
    }
    let seq = *next_seq;
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id = format!("{secs}.{seq}");
    if let Some(object) = alert.as_object_mut() {
        object.insert("id".into(), Value::String(id.clone()));
    }
    // Serialising a `Value` cannot fail: its map keys are strings.
    let line = serde_json::to_string(&alert).unwrap_or_default();

    tx.prepare_cached(
        "INSERT INTO alerts (seq, id, timestamp, agent_id, rule_id, level, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        seq,
        id,
        alert
            .get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        field(&alert, "agent", "id").and_then(Value::as_str),
        rule_id(&alert),
        level as i64,
        line,
    ])?;
    *next_seq += 1;
    stored.push(StoredAlert {
        seq,
        agent: agent.cloned(),
        body: alert,
        line,
    });
    Ok(())
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

fn stream_position(
    tx: &rusqlite::Transaction<'_>,
    key: &(String, String),
) -> rusqlite::Result<u64> {
    let last: Option<i64> = tx
        .prepare_cached("SELECT last_seq FROM event_streams WHERE agent_id = ?1 AND stream = ?2")?
        .query_row(params![key.0, key.1], |r| r.get(0))
        .optional()?;
    Ok(last.unwrap_or(0) as u64)
}

fn store_cursor(conn: &Connection, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO output_cursors (name, seq) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        params![ALERTS_JSON_CURSOR, seq],
    )
    .map(drop)
}

/// Returns `alert[outer][inner]`. It is what `Value::pointer` does for two plain keys,
/// without allocating a string for each key.
pub(crate) fn field<'a>(alert: &'a Value, outer: &str, inner: &str) -> Option<&'a Value> {
    alert.get(outer)?.get(inner)
}

/// Returns `rule.id` as text, whether the document contains a string (Wazuh) or a number.
pub(crate) fn rule_id(alert: &Value) -> Option<String> {
    match field(alert, "rule", "id")? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}
