//! The file writer thread: appends committed alerts to alerts.json and
//! lookups to the integration log, off the pipeline's threads.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::SystemTime;

use super::alerts_file::AlertsFile;
use super::integration_log::{IntegrationLog, LookupRecord};

/// Jobs queued before the pipeline waits for the writer.
const QUEUE_JOBS: usize = 256;

/// One lookup for the integration log: agent id, file path and the record.
pub type LookupLine = (String, String, LookupRecord);

/// What one commit produced for the files.
pub struct WriteJob {
    pub now: SystemTime,
    /// `(alert sequence number, alerts.json line)` in commit order.
    pub alerts: Vec<(i64, String)>,
    pub lookups: Vec<LookupLine>,
}

/// The pipeline's handle on the writer thread.
pub struct FileWriter {
    jobs: SyncSender<WriteJob>,
    written_seq: Arc<AtomicI64>,
}

impl FileWriter {
    pub fn start(
        alerts: AlertsFile,
        integration: Option<IntegrationLog>,
    ) -> std::io::Result<FileWriter> {
        let (jobs, receiver) = sync_channel(QUEUE_JOBS);
        let written_seq = Arc::new(AtomicI64::new(0));
        let written = written_seq.clone();
        std::thread::Builder::new()
            .name("iocwatch-writer".into())
            .spawn(move || write_all(receiver, alerts, integration, &written))?;
        Ok(FileWriter { jobs, written_seq })
    }

    /// Queues a job, waiting while the queue is full.
    pub fn send(&self, job: WriteJob) {
        if self.jobs.send(job).is_err() {
            tracing::error!("the alerts.json writer stopped; alerts are kept in the database only");
        }
    }

    /// Sequence number of the last alert flushed to alerts.json, 0 before the first.
    pub fn written_seq(&self) -> i64 {
        self.written_seq.load(Ordering::Acquire)
    }
}

fn write_all(
    receiver: Receiver<WriteJob>,
    mut alerts: AlertsFile,
    mut integration: Option<IntegrationLog>,
    written_seq: &AtomicI64,
) {
    while let Ok(job) = receiver.recv() {
        let now = time::OffsetDateTime::from(job.now);
        for (_, line) in &job.alerts {
            if let Err(err) = alerts.write_line(line, now) {
                tracing::error!(error = %err, "failed to write alerts.json; the alert is kept in the database");
            }
        }
        match alerts.flush() {
            Ok(()) => {
                if let Some((seq, _)) = job.alerts.last() {
                    written_seq.store(*seq, Ordering::Release);
                }
            }
            Err(err) => tracing::error!(error = %err, "failed to flush alerts.json"),
        }

        if let Some(log) = integration.as_mut().filter(|_| !job.lookups.is_empty()) {
            let timestamp = now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            for (agent_id, path, lookup) in &job.lookups {
                if let Err(err) = log.write(&timestamp, agent_id, path, lookup) {
                    tracing::warn!(error = %err, "failed to write the integration log");
                }
            }
            if let Err(err) = log.flush() {
                tracing::warn!(error = %err, "failed to flush the integration log");
            }
        }
    }
}
