//! The intel crate's detection index behind [`IntelLookup`]: reloaded in the background
//! when indicators change, and recording a MISP sighting for each detection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use super::{IntelHit, IntelLookup};

/// Wait after a change signal before reloading, so that a burst of writes costs one reload.
const RELOAD_SETTLE: Duration = Duration::from_millis(25);
/// Sightings waiting for the writer. `record_sighting` drops and counts the ones that do
/// not fit, because the pipeline must not wait on the database.
const SIGHTING_QUEUE: usize = 10_000;
/// Most sightings the writer stores in one transaction.
const SIGHTING_BATCH: usize = 1_000;

/// A sighting of type 0 ("seen") on a matched attribute, waiting to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Id of the matched attribute in the intel store.
    pub attribute_id: String,
    /// The agent that saw the value.
    pub source: String,
    /// Seconds since the Unix epoch.
    pub date_sighting: i64,
}

/// Stores a batch of sightings; returns how many were stored. It runs on the writer thread.
pub type SightingWriter = Box<dyn FnMut(&[Sighting]) -> Result<usize, String> + Send>;

/// The detection index loaded from the intel store in the data folder.
pub struct DetectorLookup {
    data_dir: PathBuf,
    detector: ArcSwap<intel::Detector>,
    sightings: Option<SyncSender<Sighting>>,
    dropped_sightings: AtomicU64,
}

impl DetectorLookup {
    /// Opens the intel store in `data_dir` and loads its detection index.
    pub fn load(data_dir: &Path) -> Result<DetectorLookup, intel::Error> {
        let detector = load_detector(data_dir)?;
        let stats = detector.stats();
        tracing::info!(
            indicators = stats.indicators,
            digests = stats.digests,
            "intel index loaded"
        );
        Ok(DetectorLookup {
            data_dir: data_dir.to_path_buf(),
            detector: ArcSwap::from_pointee(detector),
            sightings: None,
            dropped_sightings: AtomicU64::new(0),
        })
    }

    /// Records sightings through `writer`, on a thread of its own that stores them in
    /// batches.
    pub fn with_sightings(mut self, writer: SightingWriter) -> std::io::Result<DetectorLookup> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(SIGHTING_QUEUE);
        std::thread::Builder::new()
            .name("iocwatch-sightings".into())
            .spawn(move || write_sightings(receiver, writer))?;
        self.sightings = Some(sender);
        Ok(self)
    }

    pub fn into_shared(self) -> Arc<dyn IntelLookup> {
        Arc::new(self)
    }

    /// Loads the index again from the store and swaps it in; lookups running meanwhile
    /// use the old index. Returns the new index's counts.
    pub fn reload(&self) -> Result<intel::DetectorStats, intel::Error> {
        let started = Instant::now();
        let detector = load_detector(&self.data_dir)?;
        let stats = detector.stats();
        self.detector.store(Arc::new(detector));
        tracing::info!(
            indicators = stats.indicators,
            digests = stats.digests,
            reload_ms = started.elapsed().as_secs_f64() * 1e3,
            "intel index reloaded"
        );
        Ok(stats)
    }

    /// Reloads the index after each change of `changes` (the API's change counter), on the
    /// current tokio runtime. Changes that arrive during a reload are coalesced into the
    /// next one, so at most one reload runs at a time. The task ends with the sender.
    pub fn spawn_reloader(
        self: Arc<Self>,
        mut changes: tokio::sync::watch::Receiver<u64>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                tokio::time::sleep(RELOAD_SETTLE).await;
                changes.mark_unchanged();
                let lookup = self.clone();
                match tokio::task::spawn_blocking(move || lookup.reload()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => {
                        tracing::error!(error = %err, "failed to reload the intel index; the previous index stays in use");
                    }
                    Err(err) => tracing::error!(error = %err, "intel index reload task failed"),
                }
            }
        })
    }
}

fn load_detector(data_dir: &Path) -> Result<intel::Detector, intel::Error> {
    let store = intel::Store::open(data_dir)?;
    intel::Detector::load(&store)
}

impl IntelLookup for DetectorLookup {
    fn lookup_digest(&self, digest: &[u8]) -> Vec<IntelHit> {
        self.detector
            .load()
            .lookup_digest(digest)
            .into_iter()
            .map(to_hit)
            .collect()
    }

    fn record_sighting(&self, hit: &IntelHit, agent_name: &str) -> Result<(), String> {
        let (Some(sender), Some(attribute_id)) = (&self.sightings, &hit.misp.attribute_id) else {
            return Ok(());
        };
        let sighting = Sighting {
            attribute_id: attribute_id.clone(),
            source: agent_name.to_string(),
            date_sighting: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        };
        match sender.try_send(sighting) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                let dropped = self.dropped_sightings.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    return Err(format!(
                        "sighting queue full ({SIGHTING_QUEUE}); {dropped} sightings dropped so far"
                    ));
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err("the sighting writer stopped".into()),
        }
    }
}

/// Stores queued sightings in batches until every sender is gone.
fn write_sightings(receiver: Receiver<Sighting>, mut writer: SightingWriter) {
    let mut batch = Vec::with_capacity(SIGHTING_BATCH);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < SIGHTING_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match writer(&batch) {
            Ok(stored) => tracing::debug!(stored, queued = batch.len(), "sightings recorded"),
            Err(err) => {
                tracing::error!(error = %err, lost = batch.len(), "failed to record sightings");
            }
        }
        batch.clear();
    }
}

fn to_hit(m: intel::Match) -> IntelHit {
    let detection = m.is_detection();
    IntelHit {
        misp: rules::MispMatch {
            event_id: Some(m.event_id),
            event_uuid: Some(m.event_uuid),
            event_info: Some(m.event_info),
            threat_level_id: m.threat_level_id,
            attribute_id: Some(m.attribute_id),
            attribute_uuid: Some(m.attribute_uuid),
            attribute_type: Some(m.r#type),
            category: Some(m.category),
            value: Some(m.value),
            tags: m.tags,
            warninglists: m.warninglists.into_iter().map(|w| w.name).collect(),
            mitre_techniques: mitre_techniques(&m.galaxies),
            galaxies: m
                .galaxies
                .into_iter()
                .map(|g| rules::MispGalaxy {
                    galaxy_type: g.r#type,
                    value: g.value,
                    tag_name: g.tag_name,
                })
                .collect(),
            error: None,
        },
        detection,
    }
}

/// ATT&CK techniques named by `mitre-*` clusters, each id once; the rules crate's catalog
/// fills in names and tactics it knows.
fn mitre_techniques(galaxies: &[intel::galaxy::GalaxyCluster]) -> Vec<rules::MitreTechnique> {
    let mut out: Vec<rules::MitreTechnique> = Vec::new();
    for id in galaxies.iter().flat_map(|g| g.mitre_technique_ids()) {
        if !out.iter().any(|t| t.id == id) {
            out.push(rules::MitreTechnique::from_id(&id));
        }
    }
    out
}
