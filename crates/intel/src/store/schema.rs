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
    // 2: correlation (see `correlation.rs`), the `disable_correlation` flags and the galaxy
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
];

/// The migration that adds correlation; the store correlates existing attributes after it.
pub const CORRELATION_VERSION: usize = 2;
