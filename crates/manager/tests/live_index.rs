//! The live intel index: a reload picks up indicators stored after the manager started,
//! a change signal or a write seen in the store reloads in the background, and each detection queues a sighting that
//! the writer thread stores in batches.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use manager::analysis::intel::{DetectorLookup, Sighting};
use manager::analysis::IntelLookup;
use serde_json::json;

const SHA256: &str = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c";

fn digest() -> Vec<u8> {
    hex::decode(SHA256).unwrap()
}

fn import_indicator(data_dir: &Path) {
    let event = json!({"Event": {
        "uuid": "0c7a9f0e-52d4-4f43-9d0a-5f1d1f3f2a10",
        "info": "live index test",
        "date": "2024-03-01",
        "timestamp": "1709251200",
        "Attribute": [{"type": "sha256", "category": "Payload delivery", "value": SHA256,
            "to_ids": true}]
    }});
    let file = data_dir.join("event.json");
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    let mut store = intel::Store::open(data_dir).unwrap();
    let options = intel::import::ImportOptions::default();
    let reports = intel::import::import_path(&mut store, &file, &options, &mut |_| {});
    assert!(reports.iter().all(|r| r.outcome.is_ok()), "{reports:?}");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn reload_finds_indicator_stored_later() {
    let dir = tempfile::tempdir().unwrap();
    let lookup = DetectorLookup::load(dir.path()).unwrap();
    assert!(lookup.lookup_digest(&digest()).is_empty());

    import_indicator(dir.path());
    assert!(lookup.lookup_digest(&digest()).is_empty(), "no reload yet");
    let stats = lookup.reload().unwrap();
    assert_eq!(stats.indicators, 1);
    assert_eq!(lookup.lookup_digest(&digest()).len(), 1);
}

#[test]
fn change_signal_reloads_in_background() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lookup = Arc::new(DetectorLookup::load(dir.path()).unwrap());
    let (changes, receiver) = tokio::sync::watch::channel(0u64);
    let _guard = runtime.enter();
    let task = lookup.clone().spawn_reloader(receiver);

    import_indicator(dir.path());
    // A burst of signals costs one reload or a few, never a queue of them.
    for _ in 0..50 {
        changes.send_modify(|n| *n += 1);
    }
    wait_until("the reload", || !lookup.lookup_digest(&digest()).is_empty());

    drop(changes);
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the reloader ends when the sender is dropped")
            .unwrap();
    });
}

#[test]
fn write_by_another_connection_reloads_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lookup = Arc::new(DetectorLookup::load(dir.path()).unwrap());
    let (_changes, receiver) = tokio::sync::watch::channel(0u64);
    let _guard = runtime.enter();
    let _task = lookup
        .clone()
        .spawn_reloader_polling(receiver, Duration::from_millis(20));

    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lookup.reloads(), 0, "an unchanged store is not reloaded");

    import_indicator(dir.path());
    wait_until("the store check to reload", || {
        !lookup.lookup_digest(&digest()).is_empty()
    });
    let after_import = lookup.reloads();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        lookup.reloads(),
        after_import,
        "a reload does not trigger another"
    );
}

#[test]
fn writes_by_version_connection_skip_reload() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The connection that reads the version also writes, as the API's writer does.
    let writer = Arc::new(Mutex::new(
        rusqlite::Connection::open(dir.path().join(intel::store::DB_FILE)).unwrap(),
    ));
    let source = writer.clone();
    let lookup = Arc::new(
        DetectorLookup::load(dir.path())
            .unwrap()
            .with_store_version(Box::new(move || {
                let conn = source.lock().unwrap();
                conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
            })),
    );
    let (_changes, receiver) = tokio::sync::watch::channel(0u64);
    let _guard = runtime.enter();
    let _task = lookup
        .clone()
        .spawn_reloader_polling(receiver, Duration::from_millis(20));

    writer
        .lock()
        .unwrap()
        .execute_batch("CREATE TABLE scratch (n INTEGER); INSERT INTO scratch VALUES (1);")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        lookup.reloads(),
        0,
        "its own connection's writes do not reload"
    );

    import_indicator(dir.path());
    wait_until("the store check to reload", || {
        !lookup.lookup_digest(&digest()).is_empty()
    });
}

#[test]
fn detection_queues_a_sighting() {
    let dir = tempfile::tempdir().unwrap();
    import_indicator(dir.path());
    let stored: Arc<Mutex<Vec<Sighting>>> = Arc::default();
    let sink = stored.clone();
    let lookup = DetectorLookup::load(dir.path())
        .unwrap()
        .with_sightings(Box::new(move |batch: &[Sighting]| {
            sink.lock().unwrap().extend_from_slice(batch);
            Ok(batch.len())
        }))
        .unwrap();

    let hits = lookup.lookup_digest(&digest());
    assert_eq!(hits.len(), 1);
    lookup.record_sighting(&hits[0], "web-01").unwrap();
    lookup.record_sighting(&hits[0], "web-02").unwrap();

    wait_until("both sightings", || stored.lock().unwrap().len() == 2);
    let stored = stored.lock().unwrap();
    assert_eq!(
        Some(stored[0].attribute_id.as_str()),
        hits[0].misp.attribute_id.as_deref()
    );
    assert_eq!(stored[0].source, "web-01");
    assert_eq!(stored[1].source, "web-02");
    assert!(stored[0].date_sighting > 1_700_000_000);
}
