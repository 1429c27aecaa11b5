//! The outbox of sightings to push to remote MISP instances (`api_sighting_outbox`).
//!
//! A sighting recorded by the manager on an attribute whose event was pulled by
//! `intel pull` is queued for the URL it was pulled from, in the transaction that stores
//! the sighting. A push run claims a batch, sends each row and marks it pushed, failed
//! (kept for the next run) or rejected (the remote rejected it for good). A claim keeps
//! two concurrent runs from sending the same row. A claim older than
//! [`CLAIM_TIMEOUT_SECS`] is taken to be left by a run that stopped, so another run takes
//! the row over.

use rusqlite::{params, Connection, Row};

use super::{now_secs, Db, DbError};

/// Age after which a claim is taken to be abandoned, in seconds.
pub const CLAIM_TIMEOUT_SECS: i64 = 15 * 60;

/// Age after which pushed and rejected rows are deleted, in seconds.
pub const KEEP_DONE_SECS: i64 = 30 * 86_400;

/// A sighting waiting to be pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub remote_url: String,
    /// Uuid of the local sighting.
    pub sighting_uuid: String,
    /// Uuid of the attribute, the same on the remote it was pulled from.
    pub attribute_uuid: String,
    /// 0 sighting, 1 false positive, 2 expiration.
    pub r#type: i64,
    pub source: String,
    /// Seconds since the epoch.
    pub date_sighting: i64,
    /// Push attempts that failed so far.
    pub attempts: i64,
}

/// Row counts of the outbox for one remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Rows waiting to be sent, not claimed by a run that is still going.
    pub pending: u64,
    /// Rows that a run has claimed within [`CLAIM_TIMEOUT_SECS`] and is sending.
    pub in_flight: u64,
    pub pushed: u64,
    pub rejected: u64,
}

fn from_row(r: &Row) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        remote_url: r.get(1)?,
        sighting_uuid: r.get(2)?,
        attribute_uuid: r.get(3)?,
        r#type: r.get(4)?,
        source: r.get(5)?,
        date_sighting: r.get(6)?,
        attempts: r.get(7)?,
    })
}

/// Queues sighting `sighting_id` for the remote its event was pulled from, if any. The
/// remote is known by the event's source, the URL that `intel pull` recorded.
pub(crate) fn enqueue(conn: &Connection, sighting_id: i64) -> Result<bool, DbError> {
    let queued = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO api_sighting_outbox (remote_url, sighting_uuid,
                 attribute_uuid, type, source, date_sighting, queued_at)
             SELECT e.source, s.uuid, a.uuid, s.type, s.source, s.date_sighting, ?2
             FROM api_sightings s
                 JOIN attributes a ON a.id = s.attribute_id
                 JOIN events e ON e.id = s.event_id
             WHERE s.id = ?1
                 AND EXISTS (SELECT 1 FROM api_remote_state r WHERE r.url = e.source)",
        )?
        .execute(params![sighting_id, now_secs()])?;
    Ok(queued > 0)
}

impl Db {
    /// Claims up to `limit` pending rows for `remote_url`, oldest first, under the new
    /// claim `token`, and returns them.
    pub fn claim_outbox(
        &self,
        remote_url: &str,
        token: &str,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let now = now_secs();
        tx.execute(
            "UPDATE api_sighting_outbox SET claim = ?2, claimed_at = ?3
             WHERE id IN (
                 SELECT id FROM api_sighting_outbox
                 WHERE remote_url = ?1 AND pushed_at IS NULL AND rejected = 0
                     AND (claim IS NULL OR claimed_at < ?4)
                 ORDER BY id LIMIT ?5)",
            params![remote_url, token, now, now - CLAIM_TIMEOUT_SECS, limit],
        )?;
        let rows = tx
            .prepare(
                "SELECT id, remote_url, sighting_uuid, attribute_uuid, type, source,
                     date_sighting, attempts
                 FROM api_sighting_outbox WHERE claim = ?1 ORDER BY id",
            )?
            .query_map([token], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(rows)
    }

    /// Marks row `id` pushed, so that no later run sends it again.
    pub fn mark_outbox_pushed(&self, id: i64) -> Result<(), DbError> {
        self.writer().execute(
            "UPDATE api_sighting_outbox SET pushed_at = ?2, claim = NULL, last_error = NULL
             WHERE id = ?1",
            params![id, now_secs()],
        )?;
        Ok(())
    }

    /// Records a failed attempt on row `id`. The row stays pending.
    pub fn mark_outbox_failed(&self, id: i64, error: &str) -> Result<(), DbError> {
        self.writer().execute(
            "UPDATE api_sighting_outbox SET attempts = attempts + 1, last_error = ?2,
                 claim = NULL
             WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Marks row `id` rejected by the remote: it is not sent again.
    pub fn mark_outbox_rejected(&self, id: i64, error: &str) -> Result<(), DbError> {
        self.writer().execute(
            "UPDATE api_sighting_outbox SET attempts = attempts + 1, last_error = ?2,
                 rejected = 1, claim = NULL
             WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Releases the rows still held under claim `token`, unsent.
    pub fn release_outbox(&self, token: &str) -> Result<(), DbError> {
        self.writer().execute(
            "UPDATE api_sighting_outbox SET claim = NULL WHERE claim = ?1",
            [token],
        )?;
        Ok(())
    }

    /// Deletes pushed and rejected rows older than [`KEEP_DONE_SECS`]; returns how many.
    pub fn prune_outbox(&self) -> Result<usize, DbError> {
        let cutoff = now_secs() - KEEP_DONE_SECS;
        Ok(self.writer().execute(
            "DELETE FROM api_sighting_outbox
             WHERE (pushed_at IS NOT NULL AND pushed_at < ?1)
                 OR (rejected = 1 AND queued_at < ?1)",
            [cutoff],
        )?)
    }

    /// Tells whether `remote_url` was ever pulled from or has sightings queued for it.
    pub fn is_known_remote(&self, remote_url: &str) -> Result<bool, DbError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM api_remote_state WHERE url = ?1)
                 OR EXISTS (SELECT 1 FROM api_sighting_outbox WHERE remote_url = ?1)",
            [remote_url],
            |r| r.get(0),
        )?)
    }

    /// Counts the outbox rows of `remote_url`.
    pub fn outbox_stats(&self, remote_url: &str) -> Result<OutboxStats, DbError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT
                 COUNT(*) FILTER (WHERE pushed_at IS NULL AND rejected = 0
                     AND (claim IS NULL OR claimed_at < ?2)),
                 COUNT(*) FILTER (WHERE pushed_at IS NULL AND rejected = 0
                     AND claim IS NOT NULL AND claimed_at >= ?2),
                 COUNT(*) FILTER (WHERE pushed_at IS NOT NULL),
                 COUNT(*) FILTER (WHERE rejected = 1)
             FROM api_sighting_outbox WHERE remote_url = ?1",
            params![remote_url, now_secs() - CLAIM_TIMEOUT_SECS],
            |r| {
                Ok(OutboxStats {
                    pending: r.get(0)?,
                    in_flight: r.get(1)?,
                    pushed: r.get(2)?,
                    rejected: r.get(3)?,
                })
            },
        )?)
    }
}
