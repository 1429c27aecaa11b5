//! The event pipeline, on two threads.
//!
//! The analysis thread does the work that needs one order of events. It de-duplicates each
//! batch by event id and by file state, from maps in memory, and analyses new events: intel
//! lookup and rules, whose `firedtimes` and `frequency` state depends on the order. The store
//! thread serialises the alerts and commits them, with the stream positions and file
//! states, in one SQLite transaction, then writes the outputs and lets the sessions
//! acknowledge the batches. An acknowledgement therefore always follows the commit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use wire::{Ack, EventBatch};

use crate::connections::Connections;
use crate::outputs::integration_log::LookupRecord;
use crate::outputs::writer::LookupLine;

mod alert_doc;
mod discard;
mod emit;
mod file_state;
mod store;
#[cfg(test)]
mod tests;

pub use alert_doc::AlertDoc;

/// Jobs the analysis thread takes into one commit at most. The store thread merges the
/// commits waiting for it into one transaction.
const MAX_JOBS_PER_COMMIT: usize = 8;
/// Commits analysed and waiting for the store thread.
const COMMIT_QUEUE: usize = 8;
/// Keys the agent adds around the syscheck fields; the alert's `syscheck` leaves them out.
pub(crate) const AGENT_KEYS: [&str; 5] = ["id", "baseline_id", "boot_id", "timestamp", "type"];

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
    pub alerts: Vec<AlertDoc>,
    pub lookups: Vec<LookupRecord>,
}

/// Turns one event into alerts; runs on the analysis thread only.
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

/// Receiver of a batch's acknowledgement, sent once the batch is committed.
pub type BatchReply = oneshot::Receiver<Result<Ack, PipelineError>>;

/// The batches of one connection. Once one of them fails to commit, the pipeline rejects
/// every later one too, even those analysed after the failure. The agent then sends them
/// all again in order, and no event is taken for a duplicate of an event never stored.
#[derive(Clone, Debug, Default)]
pub struct BatchOrder {
    failed: Arc<AtomicBool>,
}

impl BatchOrder {
    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

enum Job {
    Batch {
        agent: AgentRef,
        batch: EventBatch,
        order: BatchOrder,
        reply: oneshot::Sender<Result<Ack, PipelineError>>,
    },
    /// An alert the manager raised itself, such as an agent disconnection.
    Alert(Value),
}

/// Submits work to the pipeline; cheap to clone.
#[derive(Clone)]
pub struct PipelineHandle {
    jobs: mpsc::Sender<Job>,
}

impl PipelineHandle {
    /// Hands a batch over and returns the receiver of its acknowledgement, which arrives
    /// once the batch is committed. Batches are committed in the order they are handed
    /// over; `order` is shared by the batches of one connection.
    pub async fn enqueue(
        &self,
        agent: AgentRef,
        batch: EventBatch,
        order: &BatchOrder,
    ) -> Result<BatchReply, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Batch {
            agent,
            batch,
            order: order.clone(),
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| PipelineError::Stopped)?;
        Ok(answer)
    }

    /// Hands a batch over and waits until it is committed.
    pub async fn submit(&self, agent: AgentRef, batch: EventBatch) -> Result<Ack, PipelineError> {
        let answer = self.enqueue(agent, batch, &BatchOrder::default()).await?;
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

/// Both threads' state, before they start.
pub struct Pipeline {
    analysis: AnalysisThread,
    store: store::Store,
}

/// The analysis thread's state.
struct AnalysisThread {
    /// Reads positions and file states again after a failed commit.
    conn: Connection,
    analyzer: Box<dyn Analyze>,
    min_level: u8,
    /// Highest sequence number per agent id and stream, committed or handed to the store
    /// thread.
    streams: HashMap<String, HashMap<String, u64>>,
    files: file_state::FileStates,
    /// Sequence number of the next alert; the `id` ends with it.
    next_alert_seq: i64,
    /// Generation of the state above; see [`Commit::generation`].
    generation: u64,
    /// Generation the store thread accepts; it moves on when a commit fails.
    accepted_generation: Arc<AtomicU64>,
}

/// A batch's share of a commit.
pub(crate) struct BatchWork {
    pub agent: AgentRef,
    pub ack: Ack,
    pub order: BatchOrder,
    pub reply: oneshot::Sender<Result<Ack, PipelineError>>,
}

impl BatchWork {
    /// Sends an error reply and rejects the later batches of the connection.
    pub(crate) fn reject(self, message: &str) {
        self.order.fail();
        let _ = self
            .reply
            .send(Err(PipelineError::Commit(message.to_string())));
    }
}

/// An alert with its sequence number and `id`, serialised, waiting for the store thread.
pub(crate) struct NewAlert {
    /// Index in [`Commit::batches`] of the batch whose event raised it; `None` for an
    /// alert the manager raised.
    pub batch: Option<usize>,
    pub seq: i64,
    pub doc: AlertDoc,
    /// The alerts.json line, also stored as the alert's body.
    pub line: String,
    /// The alert's `timestamp`.
    pub timestamp: String,
}

/// Everything one group of jobs writes, handed from the analysis thread to the store thread.
pub(crate) struct Commit {
    /// The analysis state's generation. When a commit fails, the analysis thread's maps
    /// are ahead of the database, so the store thread rejects every commit of that
    /// generation and the analysis thread reads its maps again from the database.
    pub generation: u64,
    pub now: SystemTime,
    /// `now` as an alert `timestamp`, once an alert needed it.
    pub timestamp: Option<String>,
    pub batches: Vec<BatchWork>,
    pub alerts: Vec<NewAlert>,
    pub lookups: Vec<LookupLine>,
    /// `(agent id, stream, highest sequence number)` that moved.
    pub positions: Vec<(String, String, u64)>,
    pub files: Vec<file_state::FileWrite>,
    /// The batches themselves, freed after the commit.
    pub inputs: Vec<EventBatch>,
}

impl Commit {
    /// Events in the commit's batches.
    pub(crate) fn events(&self) -> usize {
        self.inputs.iter().map(|batch| batch.events.len()).sum()
    }
}

impl Pipeline {
    /// Opens the database and alerts.json, writing to alerts.json any stored alert it lacks,
    /// and reads the stream positions and file states.
    pub fn open(
        config: PipelineConfig,
        analyzer: Box<dyn Analyze>,
        connections: Arc<Connections>,
        forward: Option<mpsc::Sender<Arc<Value>>>,
    ) -> Result<Pipeline, Box<dyn std::error::Error + Send + Sync>> {
        let accepted_generation = Arc::new(AtomicU64::new(0));
        let min_level = config.min_level;
        let store = store::Store::open(config, connections, forward, accepted_generation.clone())?;
        let conn = crate::db::open_without_checkpoints(store.db_path())?;
        let analysis = AnalysisThread {
            streams: load_streams(&conn)?,
            files: file_state::FileStates::load(&conn)?,
            next_alert_seq: store::max_alert_seq(&conn)? + 1,
            conn,
            analyzer,
            min_level,
            generation: 0,
            accepted_generation,
        };
        Ok(Pipeline { analysis, store })
    }

    /// Starts both threads and returns the handle.
    pub fn spawn(self) -> std::io::Result<PipelineHandle> {
        let (jobs, receiver) = mpsc::channel(256);
        let (commits, pending) = sync_channel(COMMIT_QUEUE);
        let store = self.store;
        std::thread::Builder::new()
            .name("iocwatch-store".into())
            .spawn(move || store.run(pending))?;
        let analysis = self.analysis;
        std::thread::Builder::new()
            .name("iocwatch-pipeline".into())
            .spawn(move || analysis.run(receiver, commits))?;
        Ok(PipelineHandle { jobs })
    }
}

impl AnalysisThread {
    fn run(mut self, mut receiver: mpsc::Receiver<Job>, commits: SyncSender<Commit>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_JOBS_PER_COMMIT {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.catch_up();
            let commit = self.analyse(jobs);
            if commits.send(commit).is_err() {
                tracing::error!("the pipeline's store thread stopped; batches are not committed");
                return;
            }
        }
    }

    /// Reads the positions and file states again when the store thread rejected a
    /// commit, since the maps contain its changes.
    fn catch_up(&mut self) {
        let accepted = self.accepted_generation.load(Ordering::Acquire);
        if accepted == self.generation {
            return;
        }
        let loaded = load_streams(&self.conn).and_then(|streams| {
            let files = file_state::FileStates::load(&self.conn)?;
            Ok((streams, files, store::max_alert_seq(&self.conn)?))
        });
        match loaded {
            Ok((streams, files, max_seq)) => {
                self.streams = streams;
                self.files = files;
                self.next_alert_seq = max_seq + 1;
                self.generation = accepted;
                tracing::info!("event positions and file states read again after a failed commit");
            }
            Err(err) => {
                // The generation stays behind, so the store thread rejects what follows
                // and agents send it again; the next group of jobs tries again.
                tracing::error!(error = %err, "failed to read event positions after a failed commit");
            }
        }
    }

    fn analyse(&mut self, jobs: Vec<Job>) -> Commit {
        let mut commit = Commit {
            generation: self.generation,
            now: SystemTime::now(),
            timestamp: None,
            batches: Vec::with_capacity(jobs.len()),
            alerts: Vec::new(),
            lookups: Vec::new(),
            positions: Vec::new(),
            files: Vec::new(),
            inputs: Vec::with_capacity(jobs.len()),
        };
        let mut analysis = Analysis::default();
        for job in jobs {
            match job {
                Job::Batch { order, reply, .. } if order.has_failed() => {
                    let message = "an earlier batch of this connection failed to commit";
                    let _ = reply.send(Err(PipelineError::Commit(message.into())));
                }
                Job::Batch {
                    agent,
                    batch,
                    order,
                    reply,
                } => {
                    let ack = self.analyse_batch(&agent, &batch, &mut commit, &mut analysis);
                    let work = BatchWork {
                        agent,
                        ack,
                        order,
                        reply,
                    };
                    commit.batches.push(work);
                    commit.inputs.push(batch);
                }
                Job::Alert(alert) => self.keep_alert(&mut commit, None, alert.into()),
            }
        }
        commit
    }

    /// Analyses the new events of one batch into `commit` and returns its acknowledgement.
    fn analyse_batch(
        &mut self,
        agent: &AgentRef,
        batch: &EventBatch,
        commit: &mut Commit,
        analysis: &mut Analysis,
    ) -> Ack {
        let mut ack = Ack {
            batch: batch.batch,
            accepted: 0,
            duplicates: 0,
        };
        let index = commit.batches.len();
        for (position, event) in batch.events.iter().enumerate() {
            if !self.advance(&agent.id, &event.id.stream, event.id.seq, commit) {
                ack.duplicates += 1;
                continue;
            }
            let change = self.files.apply(
                &agent.id,
                &event.event,
                (index, position),
                &mut commit.files,
            );
            if change == file_state::Change::Unchanged {
                ack.duplicates += 1;
                continue;
            }
            ack.accepted += 1;

            self.analyzer
                .analyze(agent, &event.event, commit.now, analysis);
            if !analysis.lookups.is_empty() {
                let path = event
                    .event
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for lookup in analysis.lookups.drain(..) {
                    commit
                        .lookups
                        .push((agent.id.clone(), path.to_string(), lookup));
                }
            }
            for doc in analysis.alerts.drain(..) {
                self.keep_alert(commit, Some(index), doc);
            }
        }
        ack
    }

    /// Moves the stream's position to `seq`; false when the event was already seen.
    fn advance(&mut self, agent_id: &str, stream: &str, seq: u64, commit: &mut Commit) -> bool {
        let known = self
            .streams
            .get(agent_id)
            .and_then(|streams| streams.get(stream))
            .copied()
            .unwrap_or(0);
        if seq <= known {
            return false;
        }
        let streams = match self.streams.get_mut(agent_id) {
            Some(streams) => streams,
            None => self.streams.entry(agent_id.to_string()).or_default(),
        };
        match streams.get_mut(stream) {
            Some(position) => *position = seq,
            None => {
                streams.insert(stream.to_string(), seq);
            }
        }
        let moved = commit
            .positions
            .iter_mut()
            .find(|(agent, name, _)| agent == agent_id && name == stream);
        match moved {
            Some(position) => position.2 = seq,
            None => commit
                .positions
                .push((agent_id.to_string(), stream.to_string(), seq)),
        }
        true
    }

    /// Numbers and serialises an alert at or above the alert level.
    fn keep_alert(&mut self, commit: &mut Commit, batch: Option<usize>, mut doc: AlertDoc) {
        if doc.level() < u64::from(self.min_level) {
            return;
        }
        let seq = self.next_alert_seq;
        self.next_alert_seq += 1;
        let secs = commit
            .now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        doc.set_id(format!("{secs}.{seq}"));
        let line = doc.to_line();
        let timestamp = match &doc {
            // Every alert of the rules engine in this commit has the commit's time.
            AlertDoc::Rules(alert) if alert.time == commit.now => commit
                .timestamp
                .get_or_insert_with(|| alert.timestamp())
                .clone(),
            _ => doc.timestamp().into_owned(),
        };
        commit.alerts.push(NewAlert {
            batch,
            seq,
            doc,
            line,
            timestamp,
        });
    }
}

/// Reads the highest committed sequence number of every agent's streams.
fn load_streams(conn: &Connection) -> rusqlite::Result<HashMap<String, HashMap<String, u64>>> {
    let mut stmt = conn.prepare("SELECT agent_id, stream, last_seq FROM event_streams")?;
    let mut rows = stmt.query([])?;
    let mut streams: HashMap<String, HashMap<String, u64>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let (agent_id, stream, last): (String, String, i64) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        streams
            .entry(agent_id)
            .or_default()
            .insert(stream, last.max(0) as u64);
    }
    Ok(streams)
}
