//! The intel crate's detection index behind [`IntelLookup`]: reloaded in the background
//! when indicators change (signalled in-process or seen in the store), and recording a MISP
//! sighting for each detection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
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
/// How often the reloader checks the store for writes by other processes.
pub const STORE_POLL: Duration = Duration::from_secs(1);
/// After a reload caused by the store check, the next such reload waits this many times
/// as long as the last reload took, so a stream of unrelated writes (sightings) cannot keep
/// the manager reloading a large index.
const POLL_RELOAD_SPACING: u32 = 4;

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

/// Writer that stores a batch of sightings on the writer thread and returns how many were
/// stored.
pub type SightingWriter = Box<dyn FnMut(&[Sighting]) -> Result<usize, String> + Send>;

/// The detection index loaded from the intel store in the data folder.
pub struct DetectorLookup {
    data_dir: PathBuf,
    detector: ArcSwap<intel::Detector>,
    sightings: Option<SyncSender<Sighting>>,
    dropped_sightings: AtomicU64,
    store_watch: Mutex<StoreWatch>,
    reloads: AtomicU64,
}

impl DetectorLookup {
    /// Opens the intel store in `data_dir` and loads its detection index.
    pub fn load(data_dir: &Path) -> Result<DetectorLookup, intel::Error> {
        let store_watch = Mutex::new(StoreWatch::new(data_dir));
        let (detector, version) = load_detector(data_dir, &store_watch)?;
        store_watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .seen = version;
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
            store_watch,
            reloads: AtomicU64::new(0),
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

    /// Reads the store's data version through `source` in place of a connection of its own.
    /// Give it the connection that writes sightings and API changes: SQLite changes the
    /// version only for commits by other connections, so those writes, which the API
    /// already signals, no longer cause a reload.
    pub fn with_store_version(self, source: StoreVersion) -> DetectorLookup {
        {
            let mut watch = self.watch();
            watch.source = Some(source);
            watch.seen = watch.current();
        }
        self
    }

    pub fn into_shared(self) -> Arc<dyn IntelLookup> {
        Arc::new(self)
    }

    /// Loads the index again from the store and swaps it in. Lookups running meanwhile
    /// use the old index. Returns the new index's counts.
    pub fn reload(&self) -> Result<intel::DetectorStats, intel::Error> {
        let started = Instant::now();
        let (detector, version) = load_detector(&self.data_dir, &self.store_watch)?;
        let stats = detector.stats();
        self.detector.store(Arc::new(detector));
        self.watch().seen = version;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            indicators = stats.indicators,
            digests = stats.digests,
            reload_ms = started.elapsed().as_secs_f64() * 1e3,
            "intel index reloaded"
        );
        Ok(stats)
    }

    /// Returns how many reloads succeeded since the index was loaded.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads the index after each change of `changes` (the API's change counter) and,
    /// checking every [`STORE_POLL`], after writes to the store by other processes
    /// (`intel import`, `intel pull`, a separate API), on the current tokio runtime.
    /// Changes that arrive during a reload are coalesced into the next one, so at most one
    /// reload runs at a time. The task ends with the sender.
    pub fn spawn_reloader(
        self: Arc<Self>,
        changes: tokio::sync::watch::Receiver<u64>,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_reloader_polling(changes, STORE_POLL)
    }

    /// [`DetectorLookup::spawn_reloader`] with the store checked every `poll`.
    pub fn spawn_reloader_polling(
        self: Arc<Self>,
        mut changes: tokio::sync::watch::Receiver<u64>,
        poll: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_poll_reload = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        tokio::time::sleep(RELOAD_SETTLE).await;
                        changes.mark_unchanged();
                        self.clone().reload_in_background().await;
                    }
                    _ = ticks.tick() => {
                        if tokio::time::Instant::now() < next_poll_reload
                            || !self.clone().store_changed().await
                        {
                            continue;
                        }
                        tracing::debug!("intel store changed by another process");
                        let took = self.clone().reload_in_background().await;
                        next_poll_reload = tokio::time::Instant::now() + took * POLL_RELOAD_SPACING;
                    }
                }
            }
        })
    }

    /// Reloads on a blocking thread, logs a failure and returns how long the reload took.
    async fn reload_in_background(self: Arc<Self>) -> Duration {
        let started = Instant::now();
        match tokio::task::spawn_blocking(move || self.reload()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::error!(error = %err, "failed to reload the intel index; the previous index stays in use");
            }
            Err(err) => tracing::error!(error = %err, "intel index reload task failed"),
        }
        started.elapsed()
    }

    /// Checks on a blocking thread whether the store changed since the loaded index was
    /// read.
    async fn store_changed(self: Arc<Self>) -> bool {
        tokio::task::spawn_blocking(move || self.watch().changed())
            .await
            .unwrap_or(false)
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, StoreWatch> {
        self.store_watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Source of the store's data version when another connection reads it (see
/// [`DetectorLookup::with_store_version`]).
pub type StoreVersion = Box<dyn Fn() -> Option<i64> + Send>;

/// A read connection to the intel store kept only to ask SQLite whether another connection
/// committed a write (`PRAGMA data_version`), which costs no table read.
struct StoreWatch {
    path: PathBuf,
    conn: Option<rusqlite::Connection>,
    /// Replaces `conn` as the source of the version when set.
    source: Option<StoreVersion>,
    /// Store version the loaded index was read at, or `None` when it could not be read.
    seen: Option<i64>,
}

impl StoreWatch {
    fn new(data_dir: &Path) -> StoreWatch {
        StoreWatch {
            path: data_dir.join(intel::store::DB_FILE),
            conn: None,
            source: None,
            seen: None,
        }
    }

    /// Returns true when a write was committed since [`StoreWatch::seen`]. A version that
    /// cannot be read counts as a change only when one was read before.
    fn changed(&mut self) -> bool {
        match self.current() {
            Some(version) => self.seen != Some(version),
            None => false,
        }
    }

    /// The store's current data version, opening the connection on first use. A failure
    /// is logged and drops the connection, so the next check opens it again.
    fn current(&mut self) -> Option<i64> {
        if let Some(source) = &self.source {
            return source();
        }
        if self.conn.is_none() {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            match rusqlite::Connection::open_with_flags(&self.path, flags) {
                Ok(conn) => self.conn = Some(conn),
                Err(err) => {
                    tracing::warn!(path = %self.path.display(), error = %err, "cannot open the intel store to check for changes");
                    return None;
                }
            }
        }
        let conn = self.conn.as_ref()?;
        match conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)) {
            Ok(version) => Some(version),
            Err(err) => {
                tracing::warn!(path = %self.path.display(), error = %err, "cannot check the intel store for changes");
                self.conn = None;
                None
            }
        }
    }
}

/// Loads the index with the store version it was read at. The version is read before
/// loading: a write committed after it is seen by the next store check, one committed
/// before it is in the loaded index.
fn load_detector(
    data_dir: &Path,
    watch: &Mutex<StoreWatch>,
) -> Result<(intel::Detector, Option<i64>), intel::Error> {
    let store = intel::Store::open(data_dir)?;
    let version = watch
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .current();
    Ok((intel::Detector::load(&store)?, version))
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

/// Collects the ATT&CK techniques named by `mitre-*` clusters, each id once. The rules
/// crate's catalog fills in the names and tactics it contains.
fn mitre_techniques(galaxies: &[intel::galaxy::GalaxyCluster]) -> Vec<rules::MitreTechnique> {
    let mut out: Vec<rules::MitreTechnique> = Vec::new();
    for id in galaxies.iter().flat_map(|g| g.mitre_technique_ids()) {
        if !out.iter().any(|t| t.id == id) {
            out.push(rules::MitreTechnique::from_id(&id));
        }
    }
    out
}
