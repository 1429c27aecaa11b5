//! The baseline database (SQLite, keyed by path) and the thread that writes to it behind the
//! event path, in batched transactions.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{params, Connection, OptionalExtension};

use crate::config::DatabaseLocation;
use crate::quarantine::QuarantineRecord;
use crate::state::{FileState, HashSkip};

/// How long the writer collects operations before committing them. A flush waits at most
/// this long.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// Maximum operations in one transaction.
const BATCH_MAX_OPS: usize = 20_000;

/// Meta keys.
pub(crate) const META_BASELINE_ID: &str = "baseline_id";
pub(crate) const META_NEXT_EVENT_ID: &str = "next_event_id";
pub(crate) const META_BASELINE_COMPLETE: &str = "baseline_complete";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path         BLOB PRIMARY KEY,
    size         INTEGER NOT NULL,
    perm         INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    gid          INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    ctime_ns     INTEGER NOT NULL,
    inode        INTEGER NOT NULL,
    dev          INTEGER NOT NULL,
    md5          BLOB,
    sha1         BLOB,
    sha256       BLOB,
    hash_skipped TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id              INTEGER PRIMARY KEY,
    original_path   BLOB NOT NULL,
    quarantine_path BLOB NOT NULL,
    quarantined_at  TEXT NOT NULL,
    size            INTEGER NOT NULL,
    perm            INTEGER NOT NULL,
    uid             INTEGER NOT NULL,
    gid             INTEGER NOT NULL,
    md5             TEXT,
    sha1            TEXT,
    sha256          TEXT
);
";

/// A database failure, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("failed to create the baseline directory `{path}`")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to {op} the baseline database `{path}`")]
    Sqlite {
        op: &'static str,
        path: String,
        source: rusqlite::Error,
    },
}

/// An open baseline database.
pub struct BaselineDb {
    conn: Connection,
    label: String,
}

impl BaselineDb {
    /// Opens (creating when missing) the database and its schema.
    pub fn open(location: &DatabaseLocation) -> Result<BaselineDb, DbError> {
        let (conn, label) = match location {
            DatabaseLocation::Memory => (Connection::open_in_memory(), ":memory:".to_string()),
            DatabaseLocation::File(path) => {
                if let Some(parent) = path.parent() {
                    crate::sys::fs::create_dirs(parent).map_err(|source| DbError::CreateDir {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
                (Connection::open(path), path.display().to_string())
            }
        };
        let err = |op, source| DbError::Sqlite {
            op,
            path: label.clone(),
            source,
        };
        let conn = conn.map_err(|e| err("open", e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err("configure", e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err("configure", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| err("create the schema of", e))?;
        Ok(BaselineDb { conn, label })
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        move |source| DbError::Sqlite {
            op,
            path: self.label.clone(),
            source,
        }
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err("read"))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [key, value],
            )
            .map(|_| ())
            .map_err(self.err("write"))
    }

    /// Returns the recorded state of `path`, if it is in the baseline.
    pub fn file(&self, path: &Path) -> Result<Option<FileState>, DbError> {
        self.conn
            .query_row(
                "SELECT size, perm, uid, gid, mtime_ns, ctime_ns, inode, dev, md5, sha1, sha256,
                        hash_skipped FROM files WHERE path = ?1",
                [path.as_os_str().as_bytes()],
                |r| row_to_state(r, 0),
            )
            .optional()
            .map_err(self.err("read"))
    }

    /// Calls `each` for every file in the baseline, in path order.
    pub fn for_each_file(
        &self,
        mut each: impl FnMut(Box<[u8]>, FileState),
    ) -> Result<usize, DbError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, size, perm, uid, gid, mtime_ns, ctime_ns, inode, dev, md5, sha1,
                        sha256, hash_skipped FROM files",
            )
            .map_err(self.err("read"))?;
        let mut rows = stmt.query([]).map_err(self.err("read"))?;
        let mut count = 0;
        while let Some(row) = rows.next().map_err(self.err("read"))? {
            let path: Vec<u8> = row.get(0).map_err(self.err("read"))?;
            let state = row_to_state(row, 1).map_err(self.err("read"))?;
            each(path.into_boxed_slice(), state);
            count += 1;
        }
        Ok(count)
    }

    /// Returns every quarantined file, oldest first.
    pub fn quarantine_records(&self) -> Result<Vec<QuarantineRecord>, DbError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT original_path, quarantine_path, quarantined_at, size, perm, uid, gid,
                        md5, sha1, sha256 FROM quarantine ORDER BY id",
            )
            .map_err(self.err("read"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(QuarantineRecord {
                    original_path: path_from_blob(r.get(0)?),
                    quarantine_path: path_from_blob(r.get(1)?),
                    quarantined_at: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    perm: r.get(4)?,
                    uid: r.get(5)?,
                    gid: r.get(6)?,
                    md5: r.get(7)?,
                    sha1: r.get(8)?,
                    sha256: r.get(9)?,
                })
            })
            .map_err(self.err("read"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read"))
    }

    fn apply(&mut self, ops: &[DbOp]) -> Result<(), DbError> {
        let label = self.label.clone();
        let err = |source| DbError::Sqlite {
            op: "write",
            path: label.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for op in ops.iter() {
            apply_op(&tx, op).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

fn path_from_blob(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

fn row_to_state(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<FileState> {
    fn digest<const N: usize>(v: Option<Vec<u8>>) -> Option<[u8; N]> {
        v.and_then(|b| b.try_into().ok())
    }
    let skipped: Option<String> = r.get(first + 11)?;
    Ok(FileState {
        size: r.get::<_, i64>(first)? as u64,
        perm: r.get(first + 1)?,
        uid: r.get(first + 2)?,
        gid: r.get(first + 3)?,
        mtime_ns: r.get(first + 4)?,
        ctime_ns: r.get(first + 5)?,
        inode: r.get::<_, i64>(first + 6)? as u64,
        dev: r.get::<_, i64>(first + 7)? as u64,
        md5: digest(r.get(first + 8)?),
        sha1: digest(r.get(first + 9)?),
        sha256: digest(r.get(first + 10)?),
        hash_skipped: skipped.as_deref().and_then(HashSkip::from_str_opt),
    })
}

/// A write queued for the writer thread.
pub(crate) enum DbOp {
    Upsert(Box<[u8]>, Box<FileState>),
    Remove(Box<[u8]>),
    Meta(&'static str, String),
    Quarantine(Box<QuarantineRecord>),
    /// Commits everything queued so far, then replies on the channel.
    Flush(Sender<()>),
}

fn apply_op(tx: &rusqlite::Transaction<'_>, op: &DbOp) -> rusqlite::Result<()> {
    match op {
        DbOp::Upsert(path, s) => {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO files (path, size, perm, uid, gid, mtime_ns, ctime_ns,
                 inode, dev, md5, sha1, sha256, hash_skipped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            stmt.execute(params![
                &path[..],
                s.size as i64,
                s.perm,
                s.uid,
                s.gid,
                s.mtime_ns,
                s.ctime_ns,
                s.inode as i64,
                s.dev as i64,
                s.md5.as_ref().map(|d| &d[..]),
                s.sha1.as_ref().map(|d| &d[..]),
                s.sha256.as_ref().map(|d| &d[..]),
                s.hash_skipped.map(HashSkip::as_str),
            ])?;
        }
        DbOp::Remove(path) => {
            tx.prepare_cached("DELETE FROM files WHERE path = ?1")?
                .execute([&path[..]])?;
        }
        DbOp::Meta(key, value) => {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                .execute([key, value.as_str()])?;
        }
        DbOp::Quarantine(q) => {
            tx.prepare_cached(
                "INSERT INTO quarantine (original_path, quarantine_path, quarantined_at, size,
                 perm, uid, gid, md5, sha1, sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                q.original_path.as_os_str().as_bytes(),
                q.quarantine_path.as_os_str().as_bytes(),
                q.quarantined_at,
                q.size as i64,
                q.perm,
                q.uid,
                q.gid,
                q.md5,
                q.sha1,
                q.sha256,
            ])?;
        }
        DbOp::Flush(_) => {}
    }
    Ok(())
}

/// Sends writes to the writer thread, which commits them in batches.
pub(crate) struct DbWriter {
    tx: Option<Sender<DbOp>>,
    thread: Option<JoinHandle<()>>,
    /// Highest `next_event_id` reservation known to be committed.
    committed_id_reservation: Arc<AtomicU64>,
}

impl DbWriter {
    pub fn start(db: BaselineDb, committed_id_reservation: u64) -> DbWriter {
        let (tx, rx) = crossbeam_channel::unbounded();
        let committed = Arc::new(AtomicU64::new(committed_id_reservation));
        let committed_in_thread = Arc::clone(&committed);
        let thread = std::thread::Builder::new()
            .name("fim-baseline-writer".into())
            .spawn(move || writer_loop(db, rx, &committed_in_thread))
            .expect("spawning a thread only fails when the process is out of resources");
        DbWriter {
            tx: Some(tx),
            thread: Some(thread),
            committed_id_reservation: committed,
        }
    }

    pub fn send(&self, op: DbOp) {
        if let Some(tx) = &self.tx {
            // The thread exits only after `tx` is dropped (in `close`), so the send cannot fail.
            let _ = tx.send(op);
        }
    }

    /// Waits until everything sent so far is committed.
    pub fn flush(&self) {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        self.send(DbOp::Flush(done_tx));
        let _ = done_rx.recv();
    }

    pub fn committed_id_reservation(&self) -> u64 {
        self.committed_id_reservation.load(Ordering::Acquire)
    }

    /// Commits what is queued and stops the thread.
    pub fn close(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DbWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(mut db: BaselineDb, rx: Receiver<DbOp>, committed: &AtomicU64) {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        // Sleeping through the window, rather than waiting on the channel, keeps senders
        // from waking this thread once per write while events are being handled.
        if !matches!(first, DbOp::Flush(_)) {
            std::thread::sleep(BATCH_WINDOW);
        }
        batch.push(first);
        while batch.len() < BATCH_MAX_OPS {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&mut db, &mut batch, committed);
    }
}

fn commit_batch(db: &mut BaselineDb, batch: &mut Vec<DbOp>, committed: &AtomicU64) {
    let reservation = batch
        .iter()
        .filter_map(|op| match op {
            DbOp::Meta(key, value) if *key == META_NEXT_EVENT_ID => value.parse::<u64>().ok(),
            _ => None,
        })
        .max();
    match db.apply(batch.as_slice()) {
        Ok(()) => {
            if let Some(r) = reservation {
                committed.fetch_max(r, Ordering::AcqRel);
            }
        }
        Err(error) => {
            tracing::error!(%error, ops = batch.len(), "baseline updates lost; the next scan will report these files again");
        }
    }
    for op in batch.drain(..) {
        if let DbOp::Flush(done) = op {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> FileState {
        FileState {
            size: 3,
            perm: 0o600,
            uid: 1,
            gid: 2,
            mtime_ns: 10,
            ctime_ns: 11,
            inode: 12,
            dev: 13,
            md5: Some([1; 16]),
            sha1: None,
            sha256: Some([3; 32]),
            hash_skipped: Some(HashSkip::FileTooLarge),
        }
    }

    #[test]
    fn writer_persists_upserts_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let location = DatabaseLocation::File(dir.path().join("db/baseline.sqlite"));
        let mut writer = DbWriter::start(BaselineDb::open(&location).unwrap(), 0);
        writer.send(DbOp::Upsert(b"/a".to_vec().into(), Box::new(state())));
        writer.send(DbOp::Upsert(b"/b".to_vec().into(), Box::new(state())));
        writer.send(DbOp::Remove(b"/b".to_vec().into()));
        writer.send(DbOp::Meta(META_NEXT_EVENT_ID, "77".into()));
        writer.flush();
        assert_eq!(writer.committed_id_reservation(), 77);
        writer.close();

        let db = BaselineDb::open(&location).unwrap();
        assert_eq!(db.file(Path::new("/a")).unwrap(), Some(state()));
        assert_eq!(db.file(Path::new("/b")).unwrap(), None);
        assert_eq!(db.meta(META_NEXT_EVENT_ID).unwrap().as_deref(), Some("77"));
    }
}
