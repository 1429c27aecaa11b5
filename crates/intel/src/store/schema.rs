//! Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
//!
//! Each event keeps the JSON it arrived with (`events.json`), so an export gives back
//! keys this schema does not model. The other columns index what lookups and exports need.

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
        imported_at INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    CREATE TABLE objects (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id),
        uuid TEXT NOT NULL,
        name TEXT NOT NULL,
        meta_category TEXT,
        deleted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX objects_event ON objects(event_id);
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
    CREATE INDEX attributes_event ON attributes(event_id);
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
];
