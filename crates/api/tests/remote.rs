//! Pulling from a second API server on loopback acting as the remote MISP: incremental
//! pulls by event timestamp, pages, filters, and sightings pushed back.

use api::remote::{pull, push_sighting, RemoteConfig};
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
