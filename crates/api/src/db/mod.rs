//! The API's access to the intel database: a writer connection, a small pool of reader
//! connections, and the API's own tables (`api_*`) with their migrations.

pub(crate) mod attributes;
pub(crate) mod correlations;
pub(crate) mod entries;
pub(crate) mod events;
pub(crate) mod extras;
pub(crate) mod feeds;
pub(crate) mod objects;
mod orgs;
pub(crate) mod outbox;
pub(crate) mod sightings;
pub(crate) mod tags;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension};

pub use attributes::AttributeRow;
pub use correlations::{EventCorrelations, RelatedAttribute};
pub use entries::{EntryKind, EntryRow};
pub use events::EventMeta;
pub use events::{EditError, EventEdit, FullEvent, ObjectRow, StoredEvent};
pub use feeds::{FeedRow, NewFeed};
pub use orgs::{NewSharingGroup, Org, SharingGroup};
pub use outbox::{OutboxRow, OutboxStats};
pub use sightings::{NewSighting, SightingRow};
pub use tags::TagRow;

/// Errors of the API's database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("failed to open the intel store")]
    Store(#[from] intel::Error),
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(&'static str),
    /// An attribute with the same value, type and category, not deleted and not in an
    /// object, is in the event already. The number is the attribute's position in the
    /// request's list (0 for a single attribute).
    #[error("A similar attribute already exists for this event.")]
    SimilarAttribute(usize),
    /// An entry of a request was rejected: `kind` is its list in MISP's JSON (`Attribute`,
    /// `Object`) and `field` the key at fault, as MISP's per-field validation errors name
    /// them.
    #[error("{message}")]
    Rejected {
        kind: &'static str,
        field: &'static str,
        message: String,
    },
}

impl DbError {
    /// Returns the error for an attribute or object whose uuid is stored already, in
    /// another event or elsewhere in the same one.
    pub(crate) fn uuid_in_use(kind: &'static str, uuid: &str) -> DbError {
        DbError::Rejected {
            kind,
            field: "uuid",
            message: format!(
                "The UUID provided is not unique: {uuid} belongs to another {}; \
                 leave `uuid` out to get a new one",
                if kind == "Object" {
                    "object"
                } else {
                    "attribute"
                }
            ),
        }
    }
}

/// Migrations of the API's own tables, recorded in `api_meta` under `schema_version`.
const MIGRATIONS: &[&str] = &[
    // 1: users and keys, sightings, and indexes for searches by value: the whole value, and
    // each half of composite values (`filename|sha256`), so either half is found by index.
    "CREATE TABLE api_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE api_users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        key_sha256 BLOB NOT NULL UNIQUE,
        created INTEGER NOT NULL
    );
    CREATE TABLE api_sightings (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        attribute_id INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        type INTEGER NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        date_sighting INTEGER NOT NULL,
        user_id INTEGER
    );
    CREATE INDEX api_sightings_attribute ON api_sightings(attribute_id);
    CREATE INDEX api_attributes_value ON attributes(value);
    CREATE INDEX api_attributes_value_tail ON attributes(substr(value, instr(value, '|') + 1))
        WHERE instr(value, '|') > 0;
    CREATE INDEX api_attributes_value_head ON attributes(substr(value, 1, instr(value, '|') - 1))
        WHERE instr(value, '|') > 0;
    CREATE INDEX api_attributes_uuid ON attributes(uuid);",
    // 2: the tag list of `tags/index`.
    "CREATE TABLE api_tags (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        colour TEXT NOT NULL DEFAULT '#ffffff',
        exportable INTEGER NOT NULL DEFAULT 1,
        hide_tag INTEGER NOT NULL DEFAULT 0
    );",
    // 3: feeds that `feeds/fetchFromFeed` imports from a local folder or an HTTP URL.
    "CREATE TABLE api_feeds (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        provider TEXT NOT NULL DEFAULT '',
        url TEXT NOT NULL,
        source_format TEXT NOT NULL,
        input_source TEXT NOT NULL CHECK (input_source IN ('local', 'network')),
        enabled INTEGER NOT NULL DEFAULT 1,
        last_fetched INTEGER
    );",
    // 4: how far each remote MISP instance has been pulled.
    "CREATE TABLE api_remote_state (
        url TEXT PRIMARY KEY,
        last_timestamp INTEGER NOT NULL
    );",
    // 5: the organisation of each user. The intel store's migration 3, which runs first,
    // creates the organisations, sharing groups and the sharing columns of events, objects
    // and attributes (see `access.rs`); stores migrated before it got them here.
    "ALTER TABLE api_users ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;",
    // 6: the time each event was last published, and the outbox of sightings to push to
    // the remote MISP instance their event was pulled from (see `outbox.rs`). Events
    // published before this migration, and published events written by an import, get
    // their timestamp as publish time, the best guess the store has.
    "ALTER TABLE events ADD COLUMN publish_timestamp INTEGER;
    UPDATE events SET publish_timestamp = timestamp WHERE published = 1;
    CREATE TRIGGER api_events_publish_timestamp AFTER INSERT ON events
        WHEN NEW.published = 1 AND NEW.publish_timestamp IS NULL
    BEGIN
        UPDATE events SET publish_timestamp = NEW.timestamp WHERE id = NEW.id;
    END;
    CREATE TABLE api_sighting_outbox (
        id INTEGER PRIMARY KEY,
        remote_url TEXT NOT NULL,
        sighting_uuid TEXT NOT NULL,
        attribute_uuid TEXT NOT NULL,
        type INTEGER NOT NULL,
        source TEXT NOT NULL,
        date_sighting INTEGER NOT NULL,
        queued_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        claim TEXT,
        claimed_at INTEGER,
        pushed_at INTEGER,
        rejected INTEGER NOT NULL DEFAULT 0,
        UNIQUE (remote_url, sighting_uuid)
    );
    CREATE INDEX api_sighting_outbox_pending ON api_sighting_outbox(remote_url, id)
        WHERE pushed_at IS NULL AND rejected = 0;",
    // 7: the organisation that recorded each sighting. Sightings stored before it keep the
    // local organisation, which recorded most of them (the detector's).
    "ALTER TABLE api_sightings ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;",
    // 8: an index for the uuid checks of object writes (attributes have one from 1). The
    // API's checks keep uuids unique, not the index (see `uuid_taken`). Stores that already
    // repeat a uuid are reported once, after this migration.
    "CREATE INDEX IF NOT EXISTS api_objects_uuid ON objects(uuid);",
    // 9: ids of the event reports and object references kept in the events' stored JSON
    // (see `entries.rs`).
    "CREATE TABLE api_entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('report', 'reference')),
        event_id INTEGER NOT NULL,
        object_uuid TEXT
    );
    CREATE INDEX api_entries_event ON api_entries(event_id);",
];

/// Migration after which the store is checked once for repeated attribute and object
/// uuids.
const UUID_REPORT_MIGRATION: usize = 8;

/// Reader connections kept open between requests.
const MAX_IDLE_READERS: usize = 8;

/// Handles on the intel database.
pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// A reader connection borrowed from the pool; it goes back when dropped.
pub struct Reader<'a> {
    db: &'a Db,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("reader connection present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.db.readers.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl Db {
    /// Opens the intel store in `data_dir` (creating and migrating it), then the API's
    /// tables in the same database file.
    pub fn open(data_dir: &Path) -> Result<Db, DbError> {
        let store = intel::Store::open(data_dir)?;
        let path = store.path().to_owned();
        drop(store);
        let mut writer = connect(&path)?;
        migrate(&mut writer)?;
        Ok(Db {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Event timestamp up to which `url` has been pulled.
    pub fn remote_watermark(&self, url: &str) -> Result<Option<i64>, DbError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT last_timestamp FROM api_remote_state WHERE url = ?1",
                [url],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records that `url` has been pulled up to event timestamp `last_timestamp`.
    pub fn set_remote_watermark(&self, url: &str, last_timestamp: i64) -> Result<(), DbError> {
        self.writer().execute(
            "INSERT INTO api_remote_state (url, last_timestamp) VALUES (?1, ?2)
             ON CONFLICT (url) DO UPDATE SET last_timestamp = excluded.last_timestamp",
            rusqlite::params![url, last_timestamp],
        )?;
        Ok(())
    }

    /// Reads the correlations shown with `event` to `viewer`; related attributes only when
    /// `with_attributes` is set.
    pub fn event_correlations(
        &self,
        event: &FullEvent,
        with_attributes: bool,
        viewer: &crate::access::Viewer,
    ) -> Result<EventCorrelations, DbError> {
        let conn = self.reader()?;
        correlations::for_event(&conn, event, with_attributes, viewer)
    }

    /// Returns SQLite's data version as the writer connection reads it. It changes only when
    /// another connection commits, so writes through this API (sightings included) leave
    /// it as it is.
    pub fn data_version(&self) -> Result<i64, DbError> {
        let conn = self.writer();
        Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reader(&self) -> Result<Reader<'_>, DbError> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        Ok(Reader {
            db: self,
            conn: Some(conn),
        })
    }
}

fn connect(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let has_meta: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_meta'",
            [],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    let version: usize = if has_meta {
        conn.query_row(
            "SELECT value FROM api_meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
    } else {
        0
    };
    let report_uuids = version < UUID_REPORT_MIGRATION;
    for (index, script) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(script)?;
        tx.execute(
            "INSERT OR REPLACE INTO api_meta (key, value) VALUES ('schema_version', ?1)",
            [(index + 1).to_string()],
        )?;
        tx.commit()?;
        tracing::info!(version = index + 1, "API tables migrated");
    }
    if report_uuids {
        report_repeated_uuids(conn)?;
    }
    Ok(())
}

/// Logs the attribute and object uuids that more than one row has, which stores written
/// before the API checked uniqueness may contain. The rows are kept, and a by-uuid
/// request acts on the visible row with the lowest id, with the access checks of that row.
fn report_repeated_uuids(conn: &Connection) -> Result<(), DbError> {
    for table in ["attributes", "objects"] {
        let repeated: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE uuid != ''
                 GROUP BY lower(uuid) HAVING COUNT(*) > 1)"
            ),
            [],
            |r| r.get(0),
        )?;
        if repeated > 0 {
            tracing::warn!(
                table,
                repeated,
                "uuids used by more than one row; requests by such a uuid act on the visible \
                 row with the lowest id"
            );
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// First and last attribute or object id of an event: `event_id << 32` plus 1 to 2^32 - 1,
/// the layout the intel store uses.
pub(crate) fn row_id_range(event_id: i64) -> (i64, i64) {
    (event_id << 32, (event_id << 32) | 0xFFFF_FFFF)
}
