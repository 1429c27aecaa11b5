//! Streamed restSearch results: rows are read on a blocking thread and sent to the client
//! in chunks, so a large export is never built whole in memory.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use intel::warninglist::{Matcher, StoredList};
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::db::attributes::ATTRIBUTE_COLUMNS;
use crate::db::correlations;
use crate::db::events::{read_full, read_meta};
use crate::db::sightings::sightings_of;
use crate::db::{now_secs, AttributeRow, DbError, EventMeta};
use crate::json;
use crate::search::{attribute_condition, event_condition, ReturnFormat, SearchQuery};
use crate::{stix, ApiError, AppState};

/// Bytes collected before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// Buffers output and sends it in chunks; stops when the client goes away.
struct Sink {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    open: bool,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> bool {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK_BYTES {
            self.flush();
        }
        self.open
    }

    fn flush(&mut self) {
        if self.open && !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.open = self.tx.blocking_send(Ok(chunk)).is_ok();
        }
    }
}

/// Runs `produce` on a blocking thread and streams what it writes. An error raised before
/// the first byte becomes an error response; a later one ends the stream early.
async fn stream<F>(state: &AppState, content_type: &'static str, produce: F) -> Response
where
    F: FnOnce(&Connection, &mut Sink, &mut dyn FnMut(Result<(), DbError>)) -> Result<(), DbError>
        + Send
        + 'static,
{
    let (tx, rx) = mpsc::channel(8);
    let (started_tx, started_rx) = oneshot::channel();
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut started_tx = Some(started_tx);
        let mut started = |r: Result<(), DbError>| {
            if let Some(s) = started_tx.take() {
                let _ = s.send(r);
            }
        };
        let mut sink = Sink {
            tx,
            buf: Vec::new(),
            open: true,
        };
        let result = db
            .reader()
            .and_then(|conn| produce(&conn, &mut sink, &mut started));
        match result {
            Ok(()) => sink.flush(),
            Err(err) => {
                tracing::error!(error = %err, "restSearch stopped on a database error");
                started(Err(err));
            }
        }
    });
    match started_rx.await {
        Ok(Ok(())) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type)],
            Body::from_stream(ReceiverStream::new(rx)),
        )
            .into_response(),
        Ok(Err(err)) => ApiError::from(err).into_response(),
        Err(_) => ApiError::from(DbError::Conflict("search thread ended".into())).into_response(),
    }
}

/// Loads the warninglists of the store into a matcher.
pub(crate) fn load_matcher(conn: &Connection) -> Result<Matcher, DbError> {
    let mut stmt = conn.prepare(
        "SELECT name, action, type, matching_attributes, entries FROM warninglists ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut lists = Vec::new();
    for row in rows {
        let (name, action, list_type, matching, entries) = row?;
        let Ok(action) = action.parse() else { continue };
        lists.push(StoredList {
            name,
            action,
            list_type,
            matching_attributes: serde_json::from_str(&matching).unwrap_or_default(),
            entries: serde_json::from_str(&entries).unwrap_or_default(),
        });
    }
    Ok(Matcher::new(&lists))
}

/// Per-request caches of event rows and of the correlation limit.
#[derive(Default)]
struct Context {
    events: HashMap<i64, EventMeta>,
    /// Events of related attributes, read without their attribute counts.
    related_events: HashMap<i64, EventMeta>,
    correlation_limit: Option<i64>,
}

impl Context {
    fn event(&mut self, conn: &Connection, id: i64) -> Result<&EventMeta, DbError> {
        match self.events.entry(id) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => Ok(entry.insert(read_meta(conn, id)?)),
        }
    }

    fn correlation_limit(&mut self, conn: &Connection) -> Result<i64, DbError> {
        if let Some(limit) = self.correlation_limit {
            return Ok(limit);
        }
        let limit = intel::store::correlation::limit(conn)?;
        self.correlation_limit = Some(limit);
        Ok(limit)
    }
}

fn render_json(
    conn: &Connection,
    query: &SearchQuery,
    context: &mut Context,
    a: &AttributeRow,
) -> Result<Vec<u8>, DbError> {
    let mut map = json::attribute_json(a);
    let event = context.event(conn, a.event_id)?;
    if query.include_event_tags {
        if let Some(Value::Array(tags)) = map.get_mut("Tag") {
            tags.extend(event.tags.iter().map(|t| json::tag_json(t, true)));
        }
    }
    let event_json = if query.include_context {
        Value::Object(json::event_meta_json(event))
    } else {
        json::event_brief_json(event)
    };
    map.insert("Event".into(), event_json);
    if query.include_sightings {
        let sightings = sightings_of(conn, None, Some(a.id), &query.viewer)?;
        let list = sightings.iter().map(json::sighting_json).collect();
        map.insert("Sighting".into(), Value::Array(list));
    }
    if query.include_correlations {
        let limit = context.correlation_limit(conn)?;
        let over = correlations::is_over_correlating(conn, a.id, limit)?;
        map.insert("over_correlation".into(), Value::Bool(over));
        let related = correlations::related_with_events(
            conn,
            a.id,
            limit,
            &mut context.related_events,
            &query.viewer,
        )?;
        map.insert(
            "RelatedAttribute".into(),
            json::related_attributes_json(&related),
        );
    }
    Ok(serde_json::to_vec(&Value::Object(map)).unwrap_or_default())
}

fn render_csv(conn: &Connection, a: &AttributeRow) -> Result<Vec<u8>, DbError> {
    let object: Option<(String, String, Option<String>)> = match a.object_id {
        Some(oid) => conn
            .prepare_cached("SELECT uuid, name, meta_category FROM objects WHERE id = ?1")?
            .query_row([oid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .ok(),
        None => None,
    };
    let (ouuid, oname, ometa) = object.unwrap_or_default();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let record = [
        a.uuid.clone(),
        a.event_id.to_string(),
        a.category.clone(),
        a.r#type.clone(),
        a.value.clone(),
        a.comment.clone().unwrap_or_default(),
        u8::from(a.to_ids).to_string(),
        a.timestamp.unwrap_or(0).to_string(),
        a.object_relation.clone().unwrap_or_default(),
        a.tags.join(","),
        ouuid,
        oname,
        ometa.unwrap_or_default(),
    ];
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(&record);
    Ok(writer.into_inner().unwrap_or_default())
}

/// Streams the attributes matching `query` in its return format.
pub async fn attributes(state: &AppState, query: SearchQuery) -> Response {
    let content_type = match query.return_format {
        ReturnFormat::Json | ReturnFormat::Stix2 => "application/json",
        ReturnFormat::Csv => "text/csv; charset=utf-8",
        ReturnFormat::Text => "text/plain; charset=utf-8",
    };
    stream(state, content_type, move |conn, sink, started| {
        let condition = attribute_condition(&query);
        let (limit, offset) = query.limit_offset();
        let sql = format!(
            "SELECT {ATTRIBUTE_COLUMNS} FROM attributes a JOIN events e ON e.id = a.event_id
             WHERE {} ORDER BY a.id LIMIT {limit} OFFSET {offset}",
            condition.sql()
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(condition.params.iter()))?;
        let matcher = if query.enforce_warninglist {
            Some(load_matcher(conn)?)
        } else {
            None
        };
        started(Ok(()));

        let mut context = Context::default();
        let mut first = true;
        match query.return_format {
            ReturnFormat::Json => sink.write(b"{\"response\": {\"Attribute\": ["),
            ReturnFormat::Csv => {
                sink.write(format!("{}\n", intel::export::CSV_HEADER.join(",")).as_bytes())
            }
            ReturnFormat::Text => true,
            ReturnFormat::Stix2 => {
                let head = format!(
                    "{{\"type\": \"bundle\", \"id\": \"bundle--{}\", \"objects\": [{}",
                    uuid::Uuid::new_v4(),
                    stix::identity(now_secs())
                );
                first = false;
                sink.write(head.as_bytes())
            }
        };
        while let Some(row) = rows.next()? {
            let a = AttributeRow::from_row(row)?;
            if matcher
                .as_ref()
                .is_some_and(|m| !m.check(&a.r#type, &a.value).is_empty())
            {
                continue;
            }
            let bytes = match query.return_format {
                ReturnFormat::Json => render_json(conn, &query, &mut context, &a)?,
                ReturnFormat::Csv => render_csv(conn, &a)?,
                ReturnFormat::Text => format!("{}\n", a.value).into_bytes(),
                ReturnFormat::Stix2 => match stix::indicator(&a) {
                    Some(indicator) => indicator.to_string().into_bytes(),
                    None => continue,
                },
            };
            let in_list = matches!(
                query.return_format,
                ReturnFormat::Json | ReturnFormat::Stix2
            );
            if in_list && !first {
                sink.write(b",");
            }
            first = false;
            if !sink.write(&bytes) {
                return Ok(());
            }
        }
        match query.return_format {
            ReturnFormat::Json => sink.write(b"]}}"),
            ReturnFormat::Stix2 => sink.write(b"]}"),
            _ => true,
        };
        Ok(())
    })
    .await
}

/// Streams the events that match `query`, each with all of its attributes.
pub async fn events(state: &AppState, mut query: SearchQuery) -> Response {
    // For events, MISP's `timestamp` is the event's; attribute times are `attribute_timestamp`.
    if query.event_timestamp.is_none() {
        query.event_timestamp = query.timestamp.take();
    }
    query.timestamp = query.attribute_timestamp.take();
    if query.return_format != ReturnFormat::Json {
        // CSV, text and STIX list attributes, so an event search gives those of its events.
        return attributes(state, query).await;
    }
    stream(state, "application/json", move |conn, sink, started| {
        let (limit, offset) = query.limit_offset();
        let (condition, sql) =
            if query.has_attribute_filters() || !query.tags.is_empty() || !query.uuids.is_empty() {
                let c = attribute_condition(&query);
                let sql = format!(
                    "SELECT DISTINCT e.id FROM attributes a JOIN events e ON e.id = a.event_id
                 WHERE {} ORDER BY e.id LIMIT {limit} OFFSET {offset}",
                    c.sql()
                );
                (c, sql)
            } else {
                let c = event_condition(&query);
                let sql = format!(
                "SELECT e.id FROM events e WHERE {} ORDER BY e.id LIMIT {limit} OFFSET {offset}",
                c.sql()
            );
                (c, sql)
            };
        let mut stmt = conn.prepare(&sql)?;
        let ids: Vec<i64> = stmt
            .query_map(params_from_iter(condition.params.iter()), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        started(Ok(()));

        sink.write(b"{\"response\": [");
        for (n, id) in ids.into_iter().enumerate() {
            let event = read_full(conn, id, query.deleted.includes_deleted(), &query.viewer)?;
            let sightings = if query.include_sightings {
                sightings_of(conn, Some(id), None, &query.viewer)?
            } else {
                Vec::new()
            };
            let correlations =
                correlations::for_event(conn, &event, query.include_correlations, &query.viewer)?;
            let mut rendered = json::full_event_json_with(&event, &sightings, &correlations);
            // NOTE: each event with stored JSON costs a decompression and a JSON parse here,
            // for the keys its rows do not store.
            crate::db::extras::apply_stored(
                conn,
                id,
                event.meta.org_id,
                &query.viewer,
                &mut rendered,
            )?;
            let bytes = serde_json::to_vec(&rendered).unwrap_or_default();
            if n > 0 {
                sink.write(b",");
            }
            if !sink.write(&bytes) {
                return Ok(());
            }
        }
        sink.write(b"]}");
        Ok(())
    })
    .await
}
