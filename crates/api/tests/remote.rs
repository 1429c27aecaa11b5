//! Pulling from a second API server on loopback acting as the remote MISP: incremental
//! pulls by event timestamp, pages, filters, and sightings pushed back, from the outbox
//! that detections on pulled attributes fill.

use api::remote::{pull, push_sighting, push_sightings, RemoteConfig};
use api::{AppState, Db, Role};
use serde_json::{json, Value};

struct Remote {
    url: String,
    key: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn start_remote() -> Remote {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (_, key) = db.add_user("sync", Role::Sync).unwrap();
    let state = AppState::new(db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::serve(listener, state.clone(), std::future::pending()));
    Remote {
        url,
        key,
        state,
        _dir: dir,
    }
}

fn add_event(remote: &Remote, info: &str, md5: &str) {
    let event: misp::Event = serde_json::from_value(json!({
        "info": info,
        "uuid": uuid::Uuid::new_v4().to_string(),
        "Attribute": [{"type": "md5", "value": md5, "category": "Payload delivery", "to_ids": true}]
    }))
    .unwrap();
    remote.state.db.add_event(&event).unwrap();
}

fn local_values(db: &Db) -> Vec<String> {
    let mut values = Vec::new();
    for meta in db.event_index(&api::Viewer::SITE_ADMIN).unwrap() {
        let event = db
            .event(&meta.id.to_string(), false, &api::Viewer::SITE_ADMIN)
            .unwrap();
        values.extend(event.attributes.into_iter().map(|a| a.value));
    }
    values.sort();
    values
}

async fn run_pull(db: std::sync::Arc<Db>, config: RemoteConfig) -> api::remote::PullSummary {
    tokio::task::spawn_blocking(move || pull(&db, &config).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_is_incremental_and_paged() {
    let remote = start_remote().await;
    for n in 0..5 {
        add_event(&remote, &format!("event {n}"), &format!("{n:032x}"));
    }
    let local_dir = tempfile::tempdir().unwrap();
    let local = std::sync::Arc::new(Db::open(local_dir.path()).unwrap());
    let mut config = RemoteConfig::new(&remote.url, &remote.key);
    config.page_size = 2;

    let first = run_pull(local.clone(), config.clone()).await;
    assert_eq!(first.events_added, 5);
    assert_eq!(first.pages, 3);
    assert_eq!(local_values(&local).len(), 5);

    let again = run_pull(local.clone(), config.clone()).await;
    assert_eq!(again.events_added + again.events_updated, 0);

    // The new event gets a later timestamp than those already pulled.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    add_event(&remote, "event 5", &"a".repeat(32));
    let third = run_pull(local.clone(), config).await;
    assert_eq!(third.events_added, 1);
    assert!(local_values(&local).contains(&"a".repeat(32)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_applies_filters() {
    let remote = start_remote().await;
    add_event(&remote, "wanted", &"b".repeat(32));
    add_event(&remote, "other", &"c".repeat(32));
    let local_dir = tempfile::tempdir().unwrap();
    let local = std::sync::Arc::new(Db::open(local_dir.path()).unwrap());
    let mut config = RemoteConfig::new(&remote.url, &remote.key);
    config
        .filters
        .insert("value".into(), Value::String("b".repeat(32)));
    let summary = run_pull(local.clone(), config).await;
    assert_eq!(summary.events_added, 1);
    assert_eq!(local_values(&local), vec!["b".repeat(32)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_are_pushed_back() {
    let remote = start_remote().await;
    add_event(&remote, "seen", &"d".repeat(32));
    let config = RemoteConfig::new(&remote.url, &remote.key);
    let value = "D".repeat(32);
    tokio::task::spawn_blocking(move || {
        push_sighting(&config, &value, 1_700_000_000, "iocwatch").unwrap()
    })
    .await
    .unwrap();
    let sightings = remote.state.db.sightings(None, None).unwrap();
    assert_eq!(sightings.len(), 1);
    assert_eq!(sightings[0].source, "iocwatch");
    assert_eq!(sightings[0].date_sighting, 1_700_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_fails_the_pull() {
    let remote = start_remote().await;
    let local_dir = tempfile::tempdir().unwrap();
    let local = std::sync::Arc::new(Db::open(local_dir.path()).unwrap());
    let config = RemoteConfig::new(&remote.url, &"x".repeat(40));
    let result = tokio::task::spawn_blocking(move || pull(&local, &config))
        .await
        .unwrap();
    assert!(matches!(
        result,
        Err(api::remote::RemoteError::Status { status: 403, .. })
    ));
}

/// Starts an API server for `state` on `address`; returns the sender that stops it and
/// the task, which ends once the server stopped.
async fn serve_on(
    address: std::net::SocketAddr,
    state: AppState,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// A remote API on a loopback address of its own, served by [`serve_on`] so that a test
/// can stop it and serve something else on the same address.
struct StoppableRemote {
    dir: tempfile::TempDir,
    state: AppState,
    key: String,
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts a remote with one sync user on a free loopback port.
async fn start_stoppable_remote() -> StoppableRemote {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (_, key) = db.add_user("sync", Role::Sync).unwrap();
    let state = AppState::new(db);
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, task) = serve_on(address, state.clone()).await;
    StoppableRemote {
        dir,
        state,
        key,
        address,
        stop,
        task,
    }
}

/// Opens a store in a new folder and pulls into it from the remote on `address` with
/// `key`. Returns the folder, the store and the connection settings used.
async fn pull_into_new_store(
    address: std::net::SocketAddr,
    key: &str,
) -> (tempfile::TempDir, std::sync::Arc<Db>, RemoteConfig) {
    let local_dir = tempfile::tempdir().unwrap();
    let local = std::sync::Arc::new(Db::open(local_dir.path()).unwrap());
    let config = RemoteConfig::new(&format!("http://{address}"), key);
    run_pull(local.clone(), config.clone()).await;
    (local_dir, local, config)
}

/// Records a detection sighting from agent `source` on the attribute with `value`.
fn record_detection(db: &Db, value: &str, source: &str) {
    let attribute = db
        .event_index(&api::Viewer::SITE_ADMIN)
        .unwrap()
        .into_iter()
        .flat_map(|meta| {
            db.event(&meta.id.to_string(), false, &api::Viewer::SITE_ADMIN)
                .unwrap()
                .attributes
        })
        .find(|a| a.value == value)
        .expect("pulled attribute");
    let new = api::db::NewSighting {
        r#type: 0,
        source: source.to_owned(),
        date_sighting: Some(1_700_000_123),
        uuid: None,
    };
    assert_eq!(db.record_sightings(&[(attribute.uuid, new)]).unwrap(), 1);
}

async fn run_push(
    db: std::sync::Arc<Db>,
    config: RemoteConfig,
) -> api::remote::SightingPushSummary {
    tokio::task::spawn_blocking(move || push_sightings(&db, &config).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_sightings_reach_the_remote_once() {
    let StoppableRemote {
        dir: _dir,
        state: remote,
        key,
        address,
        stop,
        task,
    } = start_stoppable_remote().await;
    let event: misp::Event = serde_json::from_value(json!({
        "info": "pushed", "uuid": uuid::Uuid::new_v4().to_string(),
        "Attribute": [{"type": "md5", "value": "e".repeat(32), "category": "Payload delivery", "to_ids": true}]
    }))
    .unwrap();
    remote.db.add_event(&event).unwrap();
    let (_local_dir, local, config) = pull_into_new_store(address, &key).await;

    // The remote is down: the sighting stays queued.
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    record_detection(&local, &"e".repeat(32), "web-01");
    let failed = run_push(local.clone(), config.clone()).await;
    assert!(failed.error.is_some());
    assert_eq!(failed.pushed, 0);
    assert_eq!(failed.pending, 1);

    // Back up: pushed once, and a second run sends nothing.
    let (_stop, _task) = serve_on(address, remote.clone()).await;
    let pushed = run_push(local.clone(), config.clone()).await;
    assert!(pushed.error.is_none(), "{:?}", pushed.error);
    assert_eq!(pushed.pushed, 1);
    assert_eq!(pushed.pending, 0);
    let again = run_push(local.clone(), config).await;
    assert_eq!(again.pushed, 0);
    let sightings = remote.db.sightings(None, None).unwrap();
    assert_eq!(sightings.len(), 1);
    assert_eq!(sightings[0].source, "web-01");
    assert_eq!(sightings[0].date_sighting, 1_700_000_123);
    assert_eq!(sightings[0].r#type, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_on_local_events_are_not_queued() {
    let remote = start_remote().await;
    add_event(&remote, "pulled", &"0".repeat(32));
    let local_dir = tempfile::tempdir().unwrap();
    let local = std::sync::Arc::new(Db::open(local_dir.path()).unwrap());
    let config = RemoteConfig::new(&remote.url, &remote.key);
    run_pull(local.clone(), config.clone()).await;
    let event: misp::Event = serde_json::from_value(json!({
        "info": "local", "uuid": uuid::Uuid::new_v4().to_string(),
        "Attribute": [{"type": "md5", "value": "f".repeat(32), "category": "Payload delivery", "to_ids": true}]
    }))
    .unwrap();
    local.add_event(&event).unwrap();
    record_detection(&local, &"f".repeat(32), "web-01");
    let summary = run_push(local.clone(), config).await;
    assert_eq!(summary.pushed + summary.pending, 0);
    assert!(remote.state.db.sightings(None, None).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_keeps_remote_publish_time() {
    let remote = start_remote().await;
    let uuid = uuid::Uuid::new_v4().to_string();
    let event: misp::Event = serde_json::from_value(json!({
        "info": "published", "uuid": uuid, "published": true,
        "Attribute": [{"type": "md5", "value": "9".repeat(32), "category": "Payload delivery", "to_ids": true}]
    }))
    .unwrap();
    remote.state.db.add_event(&event).unwrap();
    remote
        .state
        .db
        .set_publish_timestamps(&[(uuid.clone(), 1_650_000_000)])
        .unwrap();

    let local_dir = tempfile::tempdir().unwrap();
    let local = std::sync::Arc::new(Db::open(local_dir.path()).unwrap());
    run_pull(local.clone(), RemoteConfig::new(&remote.url, &remote.key)).await;
    let pulled = local.event(&uuid, false, &api::Viewer::SITE_ADMIN).unwrap();
    assert!(pulled.meta.published);
    assert_eq!(pulled.meta.publish_timestamp, 1_650_000_000);
}

/// Serves `status` with `body` for every request on `address`, as a proxy with a wrong
/// path or a server without `sightings/add` would.
async fn serve_fixed(
    address: std::net::SocketAddr,
    status: u16,
    body: &'static str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    let router = axum::Router::new().fallback(move || async move { (status, body) });
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_url_rejection_keeps_queue() {
    let StoppableRemote {
        dir: _dir,
        state: remote,
        key,
        address,
        stop,
        task,
    } = start_stoppable_remote().await;
    let values: Vec<String> = ["1", "2", "3", "4"].map(|c| c.repeat(32)).to_vec();
    for value in &values {
        let event: misp::Event = serde_json::from_value(json!({
            "info": "queued", "uuid": uuid::Uuid::new_v4().to_string(),
            "Attribute": [{"type": "md5", "value": value, "to_ids": true}]
        }))
        .unwrap();
        remote.db.add_event(&event).unwrap();
    }
    let (_local_dir, local, config) = pull_into_new_store(address, &key).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    for value in &values {
        record_detection(&local, value, "web-01");
    }

    // A 404 page that is not MISP's JSON ends the run at the first row.
    let (stop, task) = serve_fixed(address, 404, "<html>not here</html>").await;
    let summary = run_push(local.clone(), config.clone()).await;
    let error = summary.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("HTTP 404"), "{error}");
    assert!(error.contains("add sightings (write access)"), "{error}");
    assert_eq!((summary.rejected, summary.pending), (0, 4));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // MISP's JSON 404 three times in a row ends the run too, and rejects nothing.
    let misp_404 = r#"{"name": "Not Found", "message": "Not Found", "url": "/sightings/add"}"#;
    let (_stop, _task) = serve_fixed(address, 404, misp_404).await;
    let summary = run_push(local.clone(), config).await;
    let error = summary.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("3 sightings in a row"), "{error}");
    assert_eq!((summary.rejected, summary.pending), (0, 4));

    // Rows another run has claimed count as in flight, not as queued.
    let url = format!("http://{address}");
    assert_eq!(local.claim_outbox(&url, "other run", 3).unwrap().len(), 3);
    let stats = local.outbox_stats(&url).unwrap();
    assert_eq!((stats.pending, stats.in_flight), (1, 3));
}
