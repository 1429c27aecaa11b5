//! The intel store: one SQLite database (`intel.db`, WAL mode) in the data directory.

pub mod correlation;
mod read;
mod schema;
pub mod sharing;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::warninglist::{default_action, Action, DEFAULT_LISTS};
use crate::Error;

pub use read::{EventRow, Stats, TypeCount, WarninglistInfo};
pub use write::{EventOutcome, WriteSummary};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "intel.db";

/// The threat-intel store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the store in `data_dir`, creating the directory and database when missing,
    /// applying pending migrations and loading the default warninglists into a new store.
    pub fn open(data_dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        // A new store gets 16 KiB pages, because they cut the CPU time of a large import by
        // about 15 % against 4 KiB: fewer pages to balance, log and copy. An existing store
        // keeps its page size. The page cache is 64 MiB: a 1,000,000-attribute import writes
        // about 300 MB of pages to the WAL either way, and a 256 MiB cache only made it
        // touch more fresh memory (about 10 % more CPU for its write).
        conn.execute_batch(
            "PRAGMA page_size = 16384;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;",
        )
        .map_err(open_err)?;

        let mut store = Store { conn, path };
        store.migrate()?;
        store.seed_default_warninglists()?;
        Ok(store)
    }

    /// Opens the existing store in `data_dir` for reading only: nothing is created, migrated
    /// or seeded, so a user without write access to `data_dir` can read it. Fails with
    /// [`Error::NotFound`] when `data_dir` holds no store.
    pub fn open_read_only(data_dir: &Path) -> Result<Store, Error> {
        let path = data_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(Error::NotFound {
                dir: data_dir.to_owned(),
            });
        }
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        let supported = schema::MIGRATIONS.len() as i64;
        if found > supported {
            return Err(Error::SchemaTooNew {
                path,
                found,
                supported,
            });
        }
        if found < supported {
            return Err(Error::SchemaTooOld {
                path,
                found,
                supported,
            });
        }
        Ok(Store { conn, path })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let supported = schema::MIGRATIONS.len() as i64;
        if version > supported {
            return Err(Error::SchemaTooNew {
                path: self.path.clone(),
                found: version,
                supported,
            });
        }
        for (index, script) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            schema::add_missing_columns(&tx, schema::columns_before(index + 1))?;
            tx.execute_batch(script)?;
            if index + 1 == schema::CORRELATION_VERSION {
                correlation::rebuild(&tx)?;
            }
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
            tracing::info!(path = %self.path.display(), version = index + 1, "intel store migrated");
        }
        Ok(())
    }

    /// Loads the shipped warninglists once; a list removed later is not added back.
    fn seed_default_warninglists(&mut self) -> Result<(), Error> {
        let done: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'default_warninglists'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_some() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for (name, text) in DEFAULT_LISTS {
            let list = misp::import::warninglist::parse_warninglist(text)
                .map_err(|e| Error::Corrupt(format!("shipped warninglist `{name}`: {e}")))?;
            let action = default_action(&list);
            write::upsert_warninglist(&tx, &list, action, &format!("builtin:{name}"))?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('default_warninglists', '1')",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Over-correlation limit: values shared by more attributes are not linked.
    pub fn correlation_limit(&self) -> Result<i64, Error> {
        Ok(correlation::limit(&self.conn)?)
    }

    /// Sets the over-correlation limit (at least 1); it applies to reads at once.
    pub fn set_correlation_limit(&self, limit: i64) -> Result<(), Error> {
        Ok(correlation::set_limit(&self.conn, limit)?)
    }

    /// Turns correlation on (recomputing it) or off (emptying its tables) in one
    /// transaction; returns the member rows written.
    pub fn set_correlation_enabled(&mut self, enabled: bool) -> Result<usize, Error> {
        let tx = self.conn.transaction()?;
        let written = correlation::set_enabled(&tx, enabled)?;
        tx.commit()?;
        Ok(written)
    }

    /// Counts of the correlation tables under the current limit.
    pub fn correlation_stats(&self) -> Result<correlation::CorrelationStats, Error> {
        let limit = correlation::limit(&self.conn)?;
        Ok(correlation::stats(&self.conn, limit)?)
    }

    /// Returns up to `max` ids of other events sharing a value with event `event_id`.
    pub fn related_event_ids(&self, event_id: i64, max: i64) -> Result<Vec<i64>, Error> {
        let limit = correlation::limit(&self.conn)?;
        Ok(correlation::related_event_ids(
            &self.conn, event_id, limit, max,
        )?)
    }

    /// Returns up to `max` ids of attributes of other events sharing a value with
    /// attribute `attribute_id`.
    pub fn related_attribute_ids(&self, attribute_id: i64, max: i64) -> Result<Vec<i64>, Error> {
        let limit = correlation::limit(&self.conn)?;
        Ok(correlation::related_attribute_ids(
            &self.conn,
            attribute_id,
            limit,
            max,
        )?)
    }

    /// Drops and recomputes the correlation of every attribute in one transaction.
    pub fn rebuild_correlation(&mut self) -> Result<usize, Error> {
        let tx = self.conn.transaction()?;
        let written = correlation::rebuild(&tx)?;
        tx.commit()?;
        Ok(written)
    }

    /// Changes the action of the warninglist named `name`; returns false when there is none.
    pub fn set_warninglist_action(&self, name: &str, action: Action) -> Result<bool, Error> {
        let changed = self.conn.execute(
            "UPDATE warninglists SET action = ?1 WHERE name = ?2",
            (action.as_str(), name),
        )?;
        Ok(changed > 0)
    }
}
