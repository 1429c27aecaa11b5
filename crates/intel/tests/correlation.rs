//! Correlation of attributes across events: which values link, the over-correlation limit,
//! and exact counts after replaced events.

use std::path::PathBuf;

use intel::Store;
use serde_json::{json, Value};

const SHA256: &str = "a4f1e2b7c3d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718";

fn event(uuid: &str, timestamp: i64, attributes: Value) -> Value {
    json!({"Event": {"uuid": uuid, "info": uuid, "timestamp": timestamp.to_string(),
        "date": "2024-01-01", "Attribute": attributes}})
}

fn import(store: &mut Store, events: &[Value]) {
    let text = serde_json::to_vec(&json!({"response": events})).unwrap();
    let meta = misp::FileMeta {
        name: "test.json".into(),
        source_key: "test.json".into(),
        mtime: 0,
    };
    let parsed = misp::parse_bytes(&text, None, &meta, &Default::default()).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    store.write_parsed(&parsed, "test.json", None).unwrap();
}

fn event_id(store: &Store, uuid: &str) -> i64 {
    let mut found = None;
    store
        .for_each_event(|row| {
            if row.uuid == uuid {
                found = Some(row.id);
            }
            Ok(())
        })
        .unwrap();
    found.unwrap_or_else(|| panic!("event {uuid} not stored"))
}

fn attr(kind: &str, value: &str) -> Value {
    json!({"type": kind, "value": value})
}

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Closes `store`, drops the correlation tables and trigger of the current schema from
/// its database and runs `sql` there, as an older version would have left the file.
/// Returns the database's path.
fn downgrade(store: Store, sql: &str) -> PathBuf {
    let path = store.path().to_owned();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER correlation_stale_update;
         DROP TABLE correlation_keys;
         DROP TABLE correlation_shared;
         DROP TABLE correlation_stale;
         {sql}"
    ))
    .unwrap();
    path
}

#[test]
fn shared_values_link_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(
        &mut store,
        &[
            event(
                &uuid(1),
                10,
                json!([attr("sha256", SHA256), attr("sha256", SHA256)]),
            ),
            event(
                &uuid(2),
                10,
                json!([attr("filename|sha256", &format!("a.exe|{SHA256}"))]),
            ),
            event(&uuid(3), 10, json!([attr("filename", "a.exe")])),
            event(&uuid(4), 10, json!([attr("domain", "Example.ORG")])),
            event(&uuid(5), 10, json!([attr("domain", "example.org")])),
        ],
    );
    let ids: Vec<i64> = (1..=5).map(|n| event_id(&store, &uuid(n))).collect();

    assert_eq!(store.related_event_ids(ids[0], 10).unwrap(), [ids[1]]);
    assert_eq!(
        store.related_event_ids(ids[1], 10).unwrap(),
        [ids[2], ids[0]]
    );
    assert_eq!(store.related_event_ids(ids[2], 10).unwrap(), [ids[1]]);
    assert_eq!(store.related_event_ids(ids[3], 10).unwrap(), [ids[4]]);

    let first_attribute = (ids[0] << 32) | 1;
    let related = store.related_attribute_ids(first_attribute, 10).unwrap();
    assert_eq!(related, [(ids[1] << 32) | 1]);

    let stats = store.correlation_stats().unwrap();
    assert_eq!(stats.members, 7, "one row per attribute and value half");
    assert_eq!(stats.values, 3);
}

#[test]
fn excluded_types_and_flags_do_not_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let no_corr = json!({"type": "md5", "value": "0123456789abcdef0123456789abcdef",
        "disable_correlation": true});
    let mut quiet = event(&uuid(7), 10, json!([attr("ip-dst", "192.0.2.7")]));
    quiet["Event"]["disable_correlation"] = json!(true);
    import(
        &mut store,
        &[
            event(
                &uuid(1),
                10,
                json!([attr("comment", "same words"), attr("text", "x")]),
            ),
            event(
                &uuid(2),
                10,
                json!([attr("comment", "same words"), attr("text", "x")]),
            ),
            event(&uuid(3), 10, json!([no_corr])),
            event(
                &uuid(4),
                10,
                json!([attr("md5", "0123456789abcdef0123456789abcdef")]),
            ),
            event(&uuid(5), 10, json!([attr("ip-dst|port", "192.0.2.1|443")])),
            event(&uuid(6), 10, json!([attr("ip-dst|port", "192.0.2.2|443")])),
            quiet,
            event(&uuid(8), 10, json!([attr("ip-dst", "192.0.2.7")])),
        ],
    );
    for n in 1..=8 {
        let id = event_id(&store, &uuid(n));
        assert!(
            store.related_event_ids(id, 10).unwrap().is_empty(),
            "event {n} should have no related event"
        );
    }
}

#[test]
fn over_correlating_values_link_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.set_correlation_limit(2).unwrap();
    let events: Vec<Value> = (1..=3)
        .map(|n| event(&uuid(n), 10, json!([attr("ip-dst", "198.51.100.1")])))
        .collect();
    import(&mut store, &events);
    let first = event_id(&store, &uuid(1));

    assert!(store.related_event_ids(first, 10).unwrap().is_empty());
    let stats = store.correlation_stats().unwrap();
    assert_eq!(stats.over_correlating, 1);
    assert_eq!(stats.members, 3, "counts stay exact above the limit");

    store.set_correlation_limit(3).unwrap();
    assert_eq!(store.related_event_ids(first, 10).unwrap().len(), 2);
}

#[test]
fn replaced_event_keeps_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(
        &mut store,
        &[
            event(&uuid(1), 10, json!([attr("domain", "old.example")])),
            event(&uuid(2), 10, json!([attr("domain", "old.example")])),
        ],
    );
    import(
        &mut store,
        &[event(&uuid(1), 20, json!([attr("domain", "new.example")]))],
    );
    let second = event_id(&store, &uuid(2));

    assert!(store.related_event_ids(second, 10).unwrap().is_empty());
    let stats = store.correlation_stats().unwrap();
    assert_eq!(stats.members, 2);
    assert_eq!(stats.values, 2);

    let written = store.rebuild_correlation().unwrap();
    assert_eq!(written, 2);
    assert_eq!(store.correlation_stats().unwrap(), stats);
}

#[test]
fn upgraded_store_correlates_existing_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(
        &mut store,
        &[
            event(&uuid(1), 10, json!([attr("domain", "kept.example")])),
            event(&uuid(2), 10, json!([attr("domain", "kept.example")])),
        ],
    );

    // Take the database back to the schema before correlation existed.
    downgrade(
        store,
        "ALTER TABLE events DROP COLUMN disable_correlation;
         ALTER TABLE events DROP COLUMN galaxies;
         ALTER TABLE attributes DROP COLUMN disable_correlation;
         ALTER TABLE attributes DROP COLUMN galaxies;
         PRAGMA user_version = 1;",
    );

    let store = Store::open(dir.path()).unwrap();
    let first = event_id(&store, &uuid(1));
    let second = event_id(&store, &uuid(2));
    assert_eq!(store.related_event_ids(first, 10).unwrap(), [second]);
}

#[test]
fn store_with_value_tables_moves_to_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(
        &mut store,
        &[
            event(&uuid(1), 10, json!([attr("domain", "moved.example")])),
            event(&uuid(2), 10, json!([attr("domain", "Moved.Example")])),
            event(&uuid(3), 10, json!([attr("domain", "alone.example")])),
        ],
    );
    let stats = store.correlation_stats().unwrap();

    // Give the database the correlation tables of schema version 4, filled as that
    // version filled them.
    let path = downgrade(
        store,
        "CREATE TABLE correlation_values (
             id INTEGER PRIMARY KEY,
             value TEXT NOT NULL UNIQUE,
             attributes INTEGER NOT NULL
         );
         CREATE TABLE correlation_members (
             value_id INTEGER NOT NULL,
             attribute_id INTEGER NOT NULL,
             PRIMARY KEY (value_id, attribute_id)
         ) WITHOUT ROWID;
         CREATE INDEX correlation_members_attribute ON correlation_members(attribute_id);
         INSERT INTO correlation_values (id, value, attributes)
             VALUES (1, 'moved.example', 2), (2, 'alone.example', 1);
         INSERT INTO correlation_members (value_id, attribute_id)
             SELECT CASE WHEN lower(value) = 'moved.example' THEN 1 ELSE 2 END, id
             FROM attributes;
         PRAGMA user_version = 4;",
    );

    let store = Store::open(dir.path()).unwrap();
    let first = event_id(&store, &uuid(1));
    let second = event_id(&store, &uuid(2));
    assert_eq!(store.related_event_ids(first, 10).unwrap(), [second]);
    assert_eq!(store.correlation_stats().unwrap(), stats);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let old_tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'correlation_values%'
                 OR name LIKE 'correlation_members%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_tables, 0, "the version 4 tables are dropped");
}

#[test]
fn colliding_value_takes_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(
        &mut store,
        &[event(
            &uuid(1),
            10,
            json!([attr("domain", "other.example")]),
        )],
    );
    let first = event_id(&store, &uuid(1));
    // Give the stored value the key `wanted.example` hashes to, as a hash collision would.
    let key = intel::store::correlation::value_key("wanted.example");
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute("UPDATE correlation_keys SET key = ?1", [key])
        .unwrap();
    drop(conn);

    import(
        &mut store,
        &[
            event(&uuid(2), 10, json!([attr("domain", "wanted.example")])),
            event(&uuid(3), 10, json!([attr("domain", "Wanted.Example")])),
        ],
    );
    let second = event_id(&store, &uuid(2));
    let third = event_id(&store, &uuid(3));
    assert_eq!(store.related_event_ids(second, 10).unwrap(), [third]);
    assert!(store.related_event_ids(first, 10).unwrap().is_empty());
    let stats = store.correlation_stats().unwrap();
    assert_eq!((stats.values, stats.members), (2, 3));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let shared_key: i64 = conn
        .query_row("SELECT key FROM correlation_shared", [], |r| r.get(0))
        .unwrap();
    assert_eq!(shared_key, key + 1);
}

#[test]
fn edited_value_leaves_its_old_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    import(
        &mut store,
        &[
            event(&uuid(1), 10, json!([attr("domain", "before.example")])),
            event(&uuid(2), 10, json!([attr("domain", "before.example")])),
            event(&uuid(3), 10, json!([attr("domain", "after.example")])),
        ],
    );
    let ids: Vec<i64> = (1..=3).map(|n| event_id(&store, &uuid(n))).collect();
    let edited = (ids[0] << 32) | 1;

    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute(
        "UPDATE attributes SET value = 'after.example' WHERE id = ?1",
        [edited],
    )
    .unwrap();
    intel::store::correlation::correlate_range(&conn, edited, edited).unwrap();
    drop(conn);

    assert_eq!(store.related_event_ids(ids[0], 10).unwrap(), [ids[2]]);
    assert!(store.related_event_ids(ids[1], 10).unwrap().is_empty());
    let stats = store.correlation_stats().unwrap();
    assert_eq!((stats.values, stats.members), (2, 3));
    let written = store.rebuild_correlation().unwrap();
    assert_eq!(written, 3);
    assert_eq!(store.correlation_stats().unwrap(), stats);
}
