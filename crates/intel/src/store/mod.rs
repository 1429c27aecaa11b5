//! The intel store: one SQLite database (`intel.db`, WAL mode) in the data directory.

mod read;
mod schema;
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
        // A 256 MiB page cache lets a large import stay in memory until it commits.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -262144;",
        )
        .map_err(open_err)?;

        let mut store = Store { conn, path };
        store.migrate()?;
        store.seed_default_warninglists()?;
        Ok(store)
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
            tx.execute_batch(script)?;
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

    /// Changes the action of the warninglist named `name`; returns false when there is none.
    pub fn set_warninglist_action(&self, name: &str, action: Action) -> Result<bool, Error> {
        let changed = self.conn.execute(
            "UPDATE warninglists SET action = ?1 WHERE name = ?2",
            (action.as_str(), name),
        )?;
        Ok(changed > 0)
    }
}
