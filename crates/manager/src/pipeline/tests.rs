//! The pipeline across both threads: de-duplication, alert numbering, and recovery after a
//! failed commit.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};
use wire::{EventBatch, EventId, WireEvent};

use super::*;

/// Raises one alert per event, naming the event's path.
struct Echo;

impl Analyze for Echo {
    fn analyze(&mut self, agent: &AgentRef, event: &Value, _now: SystemTime, out: &mut Analysis) {
        let alert = json!({
            "timestamp": "2024-05-01T10:00:00.000+0000",
            "rule": {"level": 5, "id": "554"},
            "agent": {"id": agent.id, "name": agent.name},
            "syscheck": {"path": event["path"], "event": event["event"]},
        });
        out.alerts.push(alert.into());
    }
}

fn start(dir: &Path) -> PipelineHandle {
    let config = PipelineConfig {
        db_path: dir.join("manager.db"),
        alerts_path: dir.join("alerts.json"),
        alerts_rotate_max_bytes: 0,
        alerts_rotate_daily: false,
        integration_log: None,
        min_level: 3,
        quarantine_rule_ids: Vec::new(),
        quarantine_min_level: None,
    };
    let connections = Arc::new(Connections::default());
    Pipeline::open(config, Box::new(Echo), connections, None)
        .unwrap()
        .spawn()
        .unwrap()
}

fn agent() -> AgentRef {
    AgentRef {
        id: "001".into(),
        name: "web-01".into(),
        ip: "192.0.2.10".into(),
    }
}

/// Builds a batch of `added` events with sequence numbers `seqs`, each for `/data/<seq>`
/// unless `path` names another file.
fn batch(number: u64, seqs: std::ops::RangeInclusive<u64>, path: Option<&str>) -> EventBatch {
    let events = seqs
        .map(|seq| WireEvent {
            id: EventId {
                stream: "stream-a".into(),
                seq,
            },
            event: json!({
                "type": "file",
                "path": path.map_or_else(|| format!("/data/{seq}"), str::to_string),
                "event": "added",
                "sha256_after": format!("{seq:064x}"),
            }),
        })
        .collect();
    EventBatch {
        batch: number,
        events,
    }
}

fn stored_paths(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("manager.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT json_extract(body, '$.syscheck.path') FROM alerts ORDER BY seq")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[tokio::test]
async fn resent_events_are_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = start(dir.path());

    let first = pipeline
        .submit(agent(), batch(1, 1..=3, None))
        .await
        .unwrap();
    assert_eq!(first.accepted, 3);
    let again = pipeline
        .submit(agent(), batch(2, 2..=4, None))
        .await
        .unwrap();
    assert_eq!(again.accepted, 1);
    assert_eq!(again.duplicates, 2);

    assert_eq!(
        stored_paths(dir.path()),
        ["/data/1", "/data/2", "/data/3", "/data/4"]
    );
}

#[tokio::test]
async fn alert_ids_follow_their_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = start(dir.path());
    pipeline
        .submit(agent(), batch(1, 1..=2, None))
        .await
        .unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("manager.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, id, json_extract(body, '$.id') FROM alerts ORDER BY seq")
        .unwrap();
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2);
    for (seq, id, body_id) in rows {
        assert!(id.ends_with(&format!(".{seq}")), "id {id} for seq {seq}");
        assert_eq!(id, body_id);
    }
}

/// Makes the store fail every insert of an alert whose body contains `/refused`, as a
/// failing disk would, until the returned connection runs `DROP TRIGGER fail_alerts`.
fn fail_rejected_alerts(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("manager.db")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_alerts BEFORE INSERT ON alerts \
         WHEN NEW.body LIKE '%/refused%' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();
    conn
}

/// Enqueues batches `first`, `first + 1` and `first + 2` of one connection, with events
/// 1 to 5 and the first of them on `/refused`. Returns the replies in order.
async fn enqueue_three(pipeline: &PipelineHandle, first: u64) -> Vec<BatchReply> {
    let order = BatchOrder::default();
    let mut replies = Vec::new();
    let batches = [
        batch(first, 1..=1, Some("/refused")),
        batch(first + 1, 2..=3, None),
        batch(first + 2, 4..=5, None),
    ];
    for batch in batches {
        replies.push(pipeline.enqueue(agent(), batch, &order).await.unwrap());
    }
    replies
}

#[tokio::test]
async fn failed_commit_rejects_later_batches_until_resent() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = start(dir.path());
    let conn = fail_rejected_alerts(dir.path());

    // Three batches of one connection in flight; the first cannot be stored.
    let replies = enqueue_three(&pipeline, 1).await;
    for reply in replies {
        assert!(reply.await.unwrap().is_err());
    }
    assert!(stored_paths(dir.path()).is_empty());

    // The agent reconnects and sends everything again, in order.
    conn.execute_batch("DROP TRIGGER fail_alerts").unwrap();
    let replies = enqueue_three(&pipeline, 4).await;
    let mut accepted = 0;
    for reply in replies {
        accepted += reply.await.unwrap().unwrap().accepted;
    }
    assert_eq!(accepted, 5);
    assert_eq!(
        stored_paths(dir.path()),
        ["/refused", "/data/2", "/data/3", "/data/4", "/data/5"]
    );
}

#[tokio::test]
async fn failed_commit_keeps_file_states_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = start(dir.path());
    let conn = fail_rejected_alerts(dir.path());

    let failed = pipeline
        .submit(agent(), batch(1, 1..=1, Some("/refused")))
        .await;
    assert!(failed.is_err());
    conn.execute_batch("DROP TRIGGER fail_alerts").unwrap();

    // The same file state under a new id: the failed event left no state behind, so it
    // is new.
    let resent = pipeline
        .submit(agent(), batch(2, 1..=1, Some("/refused")))
        .await
        .unwrap();
    assert_eq!(resent.accepted, 1);
    assert_eq!(stored_paths(dir.path()), ["/refused"]);
}
