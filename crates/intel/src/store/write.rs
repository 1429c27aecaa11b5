//! Writes one parsed file in one transaction: all of its events and warninglists, or
//! nothing. An event whose uuid is stored already replaces it only when its timestamp
//! is newer, as MISP does when it pulls an event again.

use std::time::{SystemTime, UNIX_EPOCH};

use misp::import::Warninglist;
use misp::{Attribute, Event, Parsed, ParsedEvent};
use rusqlite::{params, CachedStatement, OptionalExtension, Transaction, TransactionBehavior};

use super::correlation::{self, NewValues};
use super::sharing::Resolver;
use super::Store;
use crate::galaxy;
use crate::warninglist::{default_action, Action};
use crate::Error;

/// Outcome of writing one event of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Added,
    /// A stored event with the same uuid and an older timestamp was replaced.
    Updated,
    /// The stored event is as new or newer, so it was kept.
    Unchanged,
}

/// Counts of what one transaction stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub events_added: usize,
    pub events_updated: usize,
    pub events_unchanged: usize,
    /// Attributes written (event and object attributes).
    pub attributes: usize,
    /// Hash attributes written that are detection indicators (`to_ids`, not deleted).
    pub hashes_indexed: usize,
    pub warninglists: usize,
    /// Remarks worth showing, such as a sharing group not known here.
    pub notes: Vec<String>,
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store {
    /// Stores everything `parsed` contains in one transaction, recording `source` (the file
    /// path) and the import in the log. Warninglists get `action`, or their default. Events
    /// get the default sharing (see [`super::sharing::EventSharing::DEFAULT`]).
    pub fn write_parsed(
        &mut self,
        parsed: &Parsed,
        source: &str,
        action: Option<Action>,
    ) -> Result<WriteSummary, Error> {
        self.write_parsed_with(parsed, source, action, false)
    }

    /// [`Store::write_parsed`], keeping the distribution, sharing groups and creator
    /// organisation of MISP JSON events when `keep_sharing` is set, as MISP does when it
    /// imports an event file (see `sharing.rs`). Other formats get the defaults.
    pub fn write_parsed_with(
        &mut self,
        parsed: &Parsed,
        source: &str,
        action: Option<Action>,
        keep_sharing: bool,
    ) -> Result<WriteSummary, Error> {
        let format = parsed.format.map_or("unknown", |f| f.as_str());
        let keep = keep_sharing && parsed.format == Some(misp::Format::MispJson);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut summary = WriteSummary::default();
        let mut resolver = Resolver::new(&tx, keep);
        // The correlating values of the new rows, linked in one pass at the end.
        let mut values = correlation::is_enabled(&tx)?.then(NewValues::default);
        for event in &parsed.events {
            match write_event(&tx, (&mut resolver, values.as_mut()), event, source, format)? {
                (EventOutcome::Added, counts) => {
                    summary.events_added += 1;
                    summary.add(counts);
                }
                (EventOutcome::Updated, counts) => {
                    summary.events_updated += 1;
                    summary.add(counts);
                }
                (EventOutcome::Unchanged, _) => summary.events_unchanged += 1,
            }
        }
        summary.notes = std::mem::take(&mut resolver.notes);
        drop(resolver);
        // One pass over the new rows, inside the same transaction. A replaced event was
        // uncorrelated when it was deleted, and its new rows have a new event id.
        if let Some(values) = values {
            correlation::link_new(&tx, values)?;
        }
        for list in &parsed.warninglists {
            upsert_warninglist(
                &tx,
                list,
                action.unwrap_or_else(|| default_action(list)),
                source,
            )?;
            summary.warninglists += 1;
        }
        tx.execute(
            "INSERT INTO imports (path, format, imported_at, events, attributes, rejected)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                source,
                format,
                now_secs(),
                (summary.events_added + summary.events_updated) as i64,
                summary.attributes as i64,
                parsed.rejected.len() as i64
            ],
        )?;
        tx.commit()?;
        Ok(summary)
    }

    /// Returns the timestamp of the stored event with `uuid`, if there is one.
    pub fn event_timestamp(&self, uuid: &str) -> Result<Option<i64>, Error> {
        let ts = self
            .conn
            .query_row(
                "SELECT timestamp FROM events WHERE uuid = ?1",
                [uuid],
                |r| r.get(0),
            )
            .optional()?;
        Ok(ts)
    }
}

impl WriteSummary {
    fn add(&mut self, (attributes, hashes): (usize, usize)) {
        self.attributes += attributes;
        self.hashes_indexed += hashes;
    }
}

fn write_event<'p>(
    tx: &Transaction,
    (resolver, values): (&mut Resolver, Option<&mut NewValues<'p>>),
    parsed: &'p ParsedEvent,
    source: &str,
    format: &str,
) -> Result<(EventOutcome, (usize, usize)), Error> {
    let event = &parsed.event;
    let timestamp = event.timestamp.unwrap_or(0);
    let stored: Option<(i64, i64)> = tx
        .query_row(
            "SELECT id, timestamp FROM events WHERE uuid = ?1",
            [&event.uuid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let outcome = match stored {
        Some((_, stored_ts)) if stored_ts >= timestamp => {
            return Ok((EventOutcome::Unchanged, (0, 0)))
        }
        Some((id, _)) => {
            delete_event(tx, id)?;
            EventOutcome::Updated
        }
        None => EventOutcome::Added,
    };
    let sharing = resolver.event(event)?;
    let imported_at = now_secs();

    let tags = serde_json::to_string(&event.tag_names()).unwrap_or_else(|_| "[]".into());
    let disable_correlation = event
        .extra
        .get("disable_correlation")
        .is_some_and(flag_is_set);
    tx.prepare_cached(
        "INSERT INTO events (uuid, source_id, info, threat_level_id, analysis, date, timestamp,
             published, orgc, tags, source, format, imported_at, disable_correlation, galaxies,
             org_id, orgc_id, distribution, sharing_group_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19)",
    )?
    .execute(params![
        event.uuid,
        event.id,
        event.info,
        event.threat_level_id,
        event.analysis,
        event.date,
        timestamp,
        event.published.unwrap_or(false),
        event.orgc.as_ref().map(|o| o.name.as_str()),
        tags,
        source,
        format,
        imported_at,
        disable_correlation,
        galaxy::to_column(&galaxy::clusters_of(&event.galaxies)),
        sharing.org_id,
        sharing.orgc_id,
        sharing.distribution,
        sharing.sharing_group_id,
    ])?;
    let event_id = tx.last_insert_rowid();

    // The JSON is compressed on a second thread while the attribute rows are written.
    let counts = std::thread::scope(|scope| {
        let compressed = parsed.json.as_ref().map(|j| scope.spawn(|| compress(j)));
        let values = values.filter(|_| !disable_correlation);
        let counts = write_attributes(tx, (resolver, values), event, (event_id, imported_at))?;
        if let Some(handle) = compressed {
            let blob = handle
                .join()
                .map_err(|_| Error::Corrupt("JSON compression thread panicked".into()))??;
            tx.execute(
                "INSERT INTO event_json (event_id, json_lz4) VALUES (?1, ?2)",
                params![event_id, blob],
            )?;
        }
        Ok::<_, Error>(counts)
    })?;
    resolver.finish_event(&event.uuid);
    Ok((outcome, counts))
}

/// Compresses event JSON in the LZ4 frame format. The output starts at a quarter of the
/// input, about what JSON compresses to, so it rarely grows and is never copied to shrink.
fn compress(json: &str) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    let failed = |e: std::io::Error| Error::Corrupt(format!("LZ4 compression failed: {e}"));
    let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(json.len() / 4 + 64));
    encoder.write_all(json.as_bytes()).map_err(failed)?;
    encoder
        .finish()
        .map_err(|e| Error::Corrupt(format!("LZ4 compression failed: {e}")))
}

fn delete_event(tx: &Transaction, id: i64) -> Result<(), Error> {
    correlation::uncorrelate_event(tx, id)?;
    let (first, last) = row_id_range(id);
    tx.execute(
        "DELETE FROM attributes WHERE id BETWEEN ?1 AND ?2",
        [first, last],
    )?;
    tx.execute(
        "DELETE FROM objects WHERE id BETWEEN ?1 AND ?2",
        [first, last],
    )?;
    tx.execute("DELETE FROM event_json WHERE event_id = ?1", [id])?;
    tx.execute("DELETE FROM events WHERE id = ?1", [id])?;
    Ok(())
}

/// Returns the first and last object or attribute id an event can have (see the schema notes).
pub(crate) fn row_id_range(event_id: i64) -> (i64, i64) {
    (event_id << 32, (event_id << 32) | 0xFFFF_FFFF)
}

/// Inserts the attributes and objects of event `event_id`, imported at `imported_at`;
/// returns (attributes, hash detections).
fn write_attributes<'p>(
    tx: &Transaction,
    (resolver, values): (&mut Resolver, Option<&mut NewValues<'p>>),
    event: &'p Event,
    (event_id, imported_at): (i64, i64),
) -> Result<(usize, usize), Error> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO attributes (id, event_id, object_id, uuid, type, category, value, to_ids,
             deleted, object_relation, comment, timestamp, tags, disable_correlation, galaxies,
             distribution, sharing_group_id, added)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18)",
    )?;
    let (base, last) = row_id_range(event_id);
    let attribute_count = event.attributes.len()
        + event
            .objects
            .iter()
            .map(|o| o.attributes.len())
            .sum::<usize>();
    if attribute_count as i64 > last - base || event.objects.len() as i64 > last - base {
        return Err(Error::Corrupt(format!(
            "event {} has more attributes than one event can hold",
            event.uuid
        )));
    }
    let mut next = Ids {
        event_id,
        imported_at,
        next: base + 1,
        counts: (0, 0),
        values,
    };
    for attribute in &event.attributes {
        let sharing = resolver.attribute(attribute)?;
        insert_attribute(&mut insert, None, false, (attribute, sharing), &mut next)?;
    }
    let mut insert_object = tx.prepare_cached(
        "INSERT INTO objects (id, event_id, uuid, name, meta_category, deleted, distribution,
             sharing_group_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (index, object) in event.objects.iter().enumerate() {
        let object_id = base + 1 + index as i64;
        let (distribution, group) = resolver.object(object)?;
        insert_object.execute(params![
            object_id,
            event_id,
            object.uuid.as_deref().unwrap_or_default(),
            object.name,
            object.meta_category,
            object.deleted,
            distribution,
            group,
        ])?;
        for attribute in &object.attributes {
            let sharing = resolver.attribute(attribute)?;
            insert_attribute(
                &mut insert,
                Some(object_id),
                object.deleted,
                (attribute, sharing),
                &mut next,
            )?;
        }
    }
    Ok(next.counts)
}

/// The event and import time of the attributes written, the next attribute id, the
/// (attributes, hash detections) written, and the correlating values of the attributes
/// when they may correlate.
struct Ids<'v, 'p> {
    event_id: i64,
    imported_at: i64,
    next: i64,
    counts: (usize, usize),
    values: Option<&'v mut NewValues<'p>>,
}

/// Inserts attribute `a` with its (distribution, sharing group).
fn insert_attribute<'p>(
    insert: &mut CachedStatement,
    object_id: Option<i64>,
    object_deleted: bool,
    (a, (distribution, group)): (&'p Attribute, (i64, Option<i64>)),
    ids: &mut Ids<'_, 'p>,
) -> Result<(), Error> {
    let disable_correlation = a.disable_correlation.unwrap_or(false);
    let tags = if a.tags.is_empty() {
        None
    } else {
        serde_json::to_string(&a.tags.iter().map(|t| &t.name).collect::<Vec<_>>()).ok()
    };
    let to_ids = a.to_ids.unwrap_or(false);
    insert.execute(params![
        ids.next,
        ids.event_id,
        object_id,
        a.uuid.as_deref().unwrap_or_default(),
        a.r#type,
        a.category.as_deref().unwrap_or_default(),
        a.value,
        to_ids,
        a.deleted,
        a.object_relation,
        a.comment,
        a.timestamp,
        tags,
        disable_correlation,
        galaxy::to_column(&galaxy::clusters_of(&a.galaxies)),
        distribution,
        group,
        a.timestamp.unwrap_or(0).max(ids.imported_at),
    ])?;
    if let Some(values) = ids.values.as_deref_mut() {
        if !a.deleted && !object_deleted && !disable_correlation {
            values.push(ids.next, &a.r#type, &a.value);
        }
    }
    ids.next += 1;
    ids.counts.0 += 1;
    if to_ids && !a.deleted && !object_deleted && misp::hash::is_hash_type(&a.r#type) {
        ids.counts.1 += 1;
    }
    Ok(())
}

/// Reads a MISP flag given as `true`, `1` or `"1"`.
fn flag_is_set(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_i64() == Some(1),
        serde_json::Value::String(s) => matches!(s.trim(), "1" | "true"),
        _ => false,
    }
}

/// Inserts or replaces the warninglist with the same name.
pub(crate) fn upsert_warninglist(
    tx: &Transaction,
    list: &Warninglist,
    action: Action,
    source: &str,
) -> Result<(), Error> {
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    tx.execute(
        "INSERT INTO warninglists (name, description, version, type, action, matching_attributes,
             entries, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description,
             version = excluded.version, type = excluded.type, action = excluded.action,
             matching_attributes = excluded.matching_attributes, entries = excluded.entries,
             source = excluded.source, updated_at = excluded.updated_at",
        params![
            list.name,
            list.description,
            list.version,
            list.list_type,
            action.as_str(),
            json(&list.matching_attributes),
            json(&list.entries),
            source,
            now_secs()
        ],
    )?;
    Ok(())
}
