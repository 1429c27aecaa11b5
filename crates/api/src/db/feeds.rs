//! Feeds kept in `api_feeds`: where to fetch indicators from and in which format.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_secs, Db, DbError};

/// A configured feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRow {
    pub id: i64,
    pub name: String,
    pub provider: String,
    /// A local folder or file, or an `http`/`https` URL.
    pub url: String,
    /// `misp`, `freetext` or `csv`, as MISP names feed formats.
    pub source_format: String,
    /// `local` or `network`.
    pub input_source: String,
    pub enabled: bool,
    pub last_fetched: Option<i64>,
}

/// Fields of a new feed.
#[derive(Debug, Clone)]
pub struct NewFeed {
    pub name: String,
    pub provider: String,
    pub url: String,
    pub source_format: String,
    pub input_source: String,
    pub enabled: bool,
}

const FEED_COLUMNS: &str =
    "id, name, provider, url, source_format, input_source, enabled, last_fetched";

fn from_row(r: &Row) -> rusqlite::Result<FeedRow> {
    Ok(FeedRow {
        id: r.get(0)?,
        name: r.get(1)?,
        provider: r.get(2)?,
        url: r.get(3)?,
        source_format: r.get(4)?,
        input_source: r.get(5)?,
        enabled: r.get(6)?,
        last_fetched: r.get(7)?,
    })
}

impl Db {
    /// Lists feeds in id order.
    pub fn feeds(&self) -> Result<Vec<FeedRow>, DbError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare(&format!("SELECT {FEED_COLUMNS} FROM api_feeds ORDER BY id"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Reads feed `id`.
    pub fn feed(&self, id: i64) -> Result<FeedRow, DbError> {
        let conn = self.reader()?;
        conn.query_row(
            &format!("SELECT {FEED_COLUMNS} FROM api_feeds WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
        .ok_or(DbError::NotFound("feed"))
    }

    /// Adds a feed; returns it as stored.
    pub fn add_feed(&self, feed: &NewFeed) -> Result<FeedRow, DbError> {
        let id = {
            let conn = self.writer();
            conn.execute(
                "INSERT INTO api_feeds (name, provider, url, source_format, input_source, enabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    feed.name,
                    feed.provider,
                    feed.url,
                    feed.source_format,
                    feed.input_source,
                    feed.enabled
                ],
            )?;
            conn.last_insert_rowid()
        };
        self.feed(id)
    }

    /// Records that feed `id` was fetched now.
    pub fn mark_fetched(&self, id: i64) -> Result<(), DbError> {
        self.writer().execute(
            "UPDATE api_feeds SET last_fetched = ?2 WHERE id = ?1",
            params![id, now_secs()],
        )?;
        Ok(())
    }
}
