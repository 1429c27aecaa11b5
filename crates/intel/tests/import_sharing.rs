//! Importing a MISP event file keeps who its event, objects and attributes are shared with,
//! as MISP does; other formats and feeds get the defaults. Also checks the stored date
//! added of attributes.

use std::path::Path;

use intel::import::{import_path, FileSummary, ImportOptions};
use intel::Store;
use rusqlite::Connection;

const KNOWN_GROUP: &str = "6a1e7b1c-0d0b-4a7e-9a59-3d1c2b4e5f60";
const UNKNOWN_GROUP: &str = "0f9e8d7c-6b5a-4a3b-8c2d-1e0f9a8b7c6d";
const ORGC: &str = "55f6ea5e-2c60-40e5-964f-47a8950d210f";

fn event_json(uuid: &str, distribution: &str, group: &str) -> String {
    format!(
        r#"{{"Event": {{
            "uuid": "{uuid}", "info": "sharing test", "timestamp": "1700000000",
            "distribution": "{distribution}", "sharing_group_id": "7",
            "SharingGroup": {{"uuid": "{group}", "name": "remote group"}},
            "Orgc": {{"name": "CIRCL", "uuid": "{ORGC}"}},
            "Org": {{"name": "someone else", "uuid": "11111111-2222-4333-8444-555555555555"}},
            "Attribute": [
                {{"type": "md5", "category": "Payload delivery", "to_ids": true,
                  "value": "0800fc577294c34e0b28ad2839435945", "distribution": "0",
                  "timestamp": "1600000000"}},
                {{"type": "domain", "category": "Network activity", "to_ids": true,
                  "value": "bad.example", "distribution": "4", "sharing_group_id": "7",
                  "SharingGroup": {{"uuid": "{group}"}}}},
                {{"type": "ip-dst", "category": "Network activity", "to_ids": true,
                  "value": "192.0.2.1"}}
            ],
            "Object": [{{"name": "file", "uuid": "1d7f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
                "distribution": "2",
                "Attribute": [{{"type": "sha256", "category": "Payload delivery",
                    "object_relation": "sha256", "to_ids": true, "distribution": "5",
                    "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}]
            }}]
        }}}}"#
    )
}

fn store_with_group(dir: &Path) -> Store {
    let store = Store::open(dir).unwrap();
    let conn = Connection::open(store.path()).unwrap();
    conn.execute(
        "INSERT INTO api_sharing_groups (id, uuid, name, org_id, created, modified)
         VALUES (3, ?1, 'local group', 1, 0, 0)",
        [KNOWN_GROUP],
    )
    .unwrap();
    store
}

fn import(store: &mut Store, path: &Path) -> FileSummary {
    let mut reports = import_path(store, path, &ImportOptions::default(), &mut |_| {});
    reports.remove(0).outcome.unwrap()
}

/// Rows of `sql` as strings, for short comparisons.
fn rows(store: &Store, sql: &str) -> Vec<String> {
    let conn = Connection::open(store.path()).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let cells: Vec<String> = (0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "null".to_owned(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                _ => "?".to_owned(),
            })
            .collect();
        Ok(cells.join(" "))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn event_file_keeps_distribution_known_group_and_creator() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_group(&dir.path().join("data"));
    let file = dir.path().join("event.json");
    let uuid = "5c6a7f2e-1b2c-4d3e-9f40-a1b2c3d4e5f6";
    std::fs::write(&file, event_json(uuid, "4", KNOWN_GROUP)).unwrap();
    let summary = import(&mut store, &file);
    assert!(summary.notes.is_empty(), "{:?}", summary.notes);

    let event = rows(
        &store,
        "SELECT e.org_id, o.name, o.uuid, o.local, e.distribution, e.sharing_group_id
         FROM events e JOIN api_organisations o ON o.id = e.orgc_id",
    );
    assert_eq!(event, [format!("1 CIRCL {ORGC} 0 4 3")]);
    let attributes = rows(
        &store,
        "SELECT type, distribution, sharing_group_id FROM attributes ORDER BY id",
    );
    assert_eq!(
        attributes,
        ["md5 0 null", "domain 4 3", "ip-dst 5 null", "sha256 5 null"]
    );
    let objects = rows(&store, "SELECT distribution, sharing_group_id FROM objects");
    assert_eq!(objects, ["2 null"]);

    // A second event of the same creator reuses the organisation.
    let file = dir.path().join("second.json");
    let second = "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a";
    std::fs::write(&file, event_json(second, "3", KNOWN_GROUP)).unwrap();
    import(&mut store, &file);
    let orgs = rows(
        &store,
        "SELECT COUNT(*) FROM api_organisations WHERE name = 'CIRCL'",
    );
    assert_eq!(orgs, ["1"]);
}

#[test]
fn unknown_sharing_group_falls_back_to_your_organisation_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_group(&dir.path().join("data"));
    let file = dir.path().join("event.json");
    let uuid = "5c6a7f2e-1b2c-4d3e-9f40-a1b2c3d4e5f6";
    std::fs::write(&file, event_json(uuid, "4", UNKNOWN_GROUP)).unwrap();
    let summary = import(&mut store, &file);
    assert_eq!(summary.notes.len(), 1, "{:?}", summary.notes);
    assert!(
        summary.notes[0].contains("for 2 of"),
        "{}",
        summary.notes[0]
    );

    let event = rows(&store, "SELECT distribution, sharing_group_id FROM events");
    assert_eq!(event, ["0 null"]);
    let attributes = rows(
        &store,
        "SELECT type, distribution, sharing_group_id FROM attributes ORDER BY id",
    );
    assert_eq!(
        attributes,
        [
            "md5 0 null",
            "domain 0 null",
            "ip-dst 5 null",
            "sha256 5 null"
        ]
    );
}

#[test]
fn feed_events_and_lists_get_the_default_sharing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_group(&dir.path().join("data"));
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let uuid = "5c6a7f2e-1b2c-4d3e-9f40-a1b2c3d4e5f6";
    std::fs::write(
        feed.join("manifest.json"),
        format!(r#"{{"{uuid}": {{"info": "sharing test", "timestamp": "1700000000"}}}}"#),
    )
    .unwrap();
    std::fs::write(
        feed.join(format!("{uuid}.json")),
        event_json(uuid, "0", KNOWN_GROUP),
    )
    .unwrap();
    import_path(&mut store, &feed, &ImportOptions::default(), &mut |_| {});
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "44d88612fea8a8f36de82e1278abb02f\n").unwrap();
    import(&mut store, &list);

    let events = rows(
        &store,
        "SELECT org_id, orgc_id, distribution, sharing_group_id FROM events ORDER BY id",
    );
    assert_eq!(events, ["1 1 1 null", "1 1 1 null"]);
    let items = rows(
        &store,
        "SELECT DISTINCT distribution FROM attributes UNION SELECT distribution FROM objects",
    );
    assert_eq!(items, ["5"]);
}

#[test]
fn date_added_is_the_later_of_timestamp_and_import_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_group(&dir.path().join("data"));
    let file = dir.path().join("event.json");
    let uuid = "5c6a7f2e-1b2c-4d3e-9f40-a1b2c3d4e5f6";
    std::fs::write(&file, event_json(uuid, "1", KNOWN_GROUP)).unwrap();
    import(&mut store, &file);
    let wrong = rows(
        &store,
        "SELECT a.id FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE a.added IS NOT MAX(COALESCE(a.timestamp, 0), e.imported_at)",
    );
    assert!(wrong.is_empty(), "{wrong:?}");

    // An edit that moves the timestamp past the date added moves it forward.
    let conn = Connection::open(store.path()).unwrap();
    conn.execute(
        "UPDATE attributes SET timestamp = 4102444800 WHERE type = 'md5'",
        [],
    )
    .unwrap();
    let added = rows(&store, "SELECT added FROM attributes WHERE type = 'md5'");
    assert_eq!(added, ["4102444800"]);
}

#[test]
fn upgrade_fills_the_date_added_of_stored_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut store = store_with_group(&data);
    let file = dir.path().join("event.json");
    let uuid = "5c6a7f2e-1b2c-4d3e-9f40-a1b2c3d4e5f6";
    std::fs::write(&file, event_json(uuid, "1", KNOWN_GROUP)).unwrap();
    import(&mut store, &file);
    let path = store.path().to_owned();
    drop(store);

    // Take the database back to the version before the column was filled.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("UPDATE attributes SET added = NULL; PRAGMA user_version = 3;")
        .unwrap();
    drop(conn);

    let store = Store::open(&data).unwrap();
    let wrong = rows(
        &store,
        "SELECT a.id FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE a.added IS NOT MAX(COALESCE(a.timestamp, 0), e.imported_at)",
    );
    assert!(wrong.is_empty(), "{wrong:?}");
}
