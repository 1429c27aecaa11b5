//! Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
//!
//! An event imported from MISP JSON keeps that JSON, LZ4-compressed, in `event_json`, so an
//! export gives back keys this schema does not model. Events built from other formats
//! (lists, STIX) have no such copy: their rows hold all they have.
//!
//! Object and attribute ids are `event_id << 32 | n`, with `n` counting from 1 within the
//! event, so the rows of one event form one id range: deleting or reading an event's
//! attributes needs no secondary index, and a new event's rows append to the table.

/// Migration scripts; index `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: events, objects, attributes, warninglists and the import log.
    "CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        source_id TEXT,
        info TEXT NOT NULL,
        threat_level_id INTEGER,
        analysis INTEGER,
        date TEXT,
        timestamp INTEGER NOT NULL,
        published INTEGER NOT NULL DEFAULT 0,
        orgc TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL,
        format TEXT NOT NULL,
        imported_at INTEGER NOT NULL
    );
    CREATE TABLE event_json (
        event_id INTEGER PRIMARY KEY REFERENCES events(id),
        json_lz4 BLOB NOT NULL
    );
    CREATE TABLE objects (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id),
        uuid TEXT NOT NULL,
        name TEXT NOT NULL,
        meta_category TEXT,
        deleted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE attributes (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id),
        object_id INTEGER REFERENCES objects(id),
        uuid TEXT NOT NULL,
        type TEXT NOT NULL,
        category TEXT NOT NULL,
        value TEXT NOT NULL,
        to_ids INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        object_relation TEXT,
        comment TEXT,
        timestamp INTEGER,
        tags TEXT
    );
    CREATE TABLE warninglists (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL,
        version INTEGER,
        type TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('suppress', 'annotate')),
        matching_attributes TEXT NOT NULL,
        entries TEXT NOT NULL,
        source TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        format TEXT NOT NULL,
        imported_at INTEGER NOT NULL,
        events INTEGER NOT NULL,
        attributes INTEGER NOT NULL,
        rejected INTEGER NOT NULL
    );",
    // 2: correlation (replaced by 5), the `disable_correlation` flags and the galaxy
    // clusters of events and attributes as compact JSON (`[{"type", "value", "tag_name",
    // "external_id"}]`).
    "ALTER TABLE events ADD COLUMN disable_correlation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN galaxies TEXT;
    ALTER TABLE attributes ADD COLUMN disable_correlation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attributes ADD COLUMN galaxies TEXT;
    CREATE TABLE correlation_values (
        id INTEGER PRIMARY KEY,
        value TEXT NOT NULL UNIQUE,
        attributes INTEGER NOT NULL
    );
    CREATE TABLE correlation_members (
        value_id INTEGER NOT NULL,
        attribute_id INTEGER NOT NULL,
        PRIMARY KEY (value_id, attribute_id)
    ) WITHOUT ROWID;
    CREATE INDEX correlation_members_attribute ON correlation_members(attribute_id);",
    // 3: MISP's sharing model: organisations (the local one first), sharing groups and
    // their members, and the owner, creator, distribution and sharing group of events,
    // objects and attributes. The API reads and manages them; an import of MISP JSON
    // fills them. The columns are added before this script runs, by [`SHARING_COLUMNS`],
    // each only when missing, because stores of earlier versions got them from the API.
    "CREATE TABLE IF NOT EXISTS api_organisations (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        local INTEGER NOT NULL DEFAULT 1,
        created INTEGER NOT NULL DEFAULT 0
    );
    INSERT OR IGNORE INTO api_organisations (id, uuid, name, local)
        VALUES (1, '5f6e7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6', 'iocwatch', 1);
    CREATE TABLE IF NOT EXISTS api_sharing_groups (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        releasability TEXT NOT NULL DEFAULT '',
        org_id INTEGER NOT NULL,
        all_orgs INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL DEFAULT 1,
        created INTEGER NOT NULL,
        modified INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS api_sharing_group_orgs (
        sharing_group_id INTEGER NOT NULL,
        org_id INTEGER NOT NULL,
        extend INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sharing_group_id, org_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS api_events_org ON events(org_id);",
    // 4: the time each attribute was added, for TAXII's `added_after` and paging: the later
    // of its timestamp and its event's import time. Writers set it when they insert (a
    // trigger would cost a third of a plain import), and the trigger moves it forward when
    // an edit moves the timestamp past it. The partial index holds the indicators in the
    // order TAXII pages them. The column is added before this script runs, by
    // [`ADDED_COLUMNS`].
    // NOTE: an insert that leaves `added` NULL is missing from TAXII pages.
    "UPDATE attributes SET added = MAX(COALESCE(timestamp, 0),
        COALESCE((SELECT imported_at FROM events e WHERE e.id = attributes.event_id), 0));
    CREATE INDEX IF NOT EXISTS attributes_added ON attributes(added, id) WHERE to_ids = 1 AND deleted = 0;
    CREATE TRIGGER IF NOT EXISTS attributes_added_update AFTER UPDATE OF timestamp ON attributes
        WHEN NEW.timestamp > COALESCE(NEW.added, 0)
    BEGIN
        UPDATE attributes SET added = NEW.timestamp WHERE id = NEW.id;
    END;",
    // 5: correlation keyed by value hashes (see `correlation/mod.rs`), with a row per value
    // only when two or more attributes share it. The store recomputes the rows from the
    // attributes after this script, so the old tables are dropped. The trigger keeps the
    // type and value an edit replaces, so the edit's recorrelation removes the old keys.
    "DROP TABLE IF EXISTS correlation_members;
    DROP TABLE IF EXISTS correlation_values;
    CREATE TABLE IF NOT EXISTS correlation_keys (
        key INTEGER NOT NULL,
        attribute_id INTEGER NOT NULL,
        PRIMARY KEY (key, attribute_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS correlation_shared (
        key INTEGER PRIMARY KEY,
        value TEXT NOT NULL,
        attributes INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS correlation_stale (
        attribute_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS correlation_stale_attribute ON correlation_stale(attribute_id);
    CREATE TRIGGER IF NOT EXISTS correlation_stale_update AFTER UPDATE OF type, value ON attributes
        WHEN OLD.type IS NOT NEW.type OR OLD.value IS NOT NEW.value
    BEGIN
        INSERT INTO correlation_stale (attribute_id, type, value)
            VALUES (OLD.id, OLD.type, OLD.value);
    END;",
];

/// The migration that brings the current correlation tables; the store correlates existing
/// attributes after it.
pub const CORRELATION_VERSION: usize = 5;

/// Columns added, each only when missing, before the migration to `version` runs.
pub fn columns_before(version: usize) -> &'static [(&'static str, &'static str, &'static str)] {
    match version {
        3 => SHARING_COLUMNS,
        4 => ADDED_COLUMNS,
        _ => &[],
    }
}

/// The column of migration 4.
pub const ADDED_COLUMNS: &[(&str, &str, &str)] = &[("attributes", "added", "INTEGER")];

/// Columns of the sharing model, migration 3: (table, column, declaration).
pub const SHARING_COLUMNS: &[(&str, &str, &str)] = &[
    ("events", "org_id", "INTEGER NOT NULL DEFAULT 1"),
    ("events", "orgc_id", "INTEGER NOT NULL DEFAULT 1"),
    ("events", "distribution", "INTEGER NOT NULL DEFAULT 1"),
    ("events", "sharing_group_id", "INTEGER"),
    ("objects", "distribution", "INTEGER NOT NULL DEFAULT 5"),
    ("objects", "sharing_group_id", "INTEGER"),
    ("attributes", "distribution", "INTEGER NOT NULL DEFAULT 5"),
    ("attributes", "sharing_group_id", "INTEGER"),
];

/// Adds each column of `columns` its table lacks.
pub fn add_missing_columns(
    conn: &rusqlite::Connection,
    columns: &[(&str, &str, &str)],
) -> rusqlite::Result<()> {
    for (table, column, declaration) in columns {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
        }
    }
    Ok(())
}
