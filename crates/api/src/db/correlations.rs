//! Correlations read for the API: the related events of an event, the related attributes
//! of an attribute and the over-correlation flags, derived from the intel store's
//! correlation tables at read time.

use std::collections::{HashMap, HashSet};

use intel::store::correlation;
use rusqlite::{Connection, OptionalExtension};

use super::attributes::{read_attribute, AttributeRow};
use super::events::{EventMeta, FullEvent, EVENT_BRIEF_COLUMNS};
use super::{row_id_range, DbError};
use crate::access::{self, Viewer};

/// Most related events listed for one event.
pub const MAX_RELATED_EVENTS: i64 = 500;
/// Most related attributes listed for one attribute. The over-correlation limit bounds
/// the list too, since a value shared by more attributes links nothing.
pub const MAX_RELATED_ATTRIBUTES: i64 = 1_000;

/// An attribute of another event that shares a value, with that event.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedAttribute {
    pub attribute: AttributeRow,
    pub event: EventMeta,
}

/// The correlations shown with one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventCorrelations {
    /// Other events sharing a value, newest id first.
    pub related_events: Vec<EventMeta>,
    /// Related attributes by attribute id; filled only when they were requested.
    pub related_attributes: HashMap<i64, Vec<RelatedAttribute>>,
    /// Attributes of the event whose value is over the correlation limit.
    pub over_correlating: HashSet<i64>,
}

/// Reads the related events and over-correlation flags of `event`, and the related
/// attributes of each of its attributes when `with_attributes` is set.
pub(crate) fn for_event(
    conn: &Connection,
    event: &FullEvent,
    with_attributes: bool,
    viewer: &Viewer,
) -> Result<EventCorrelations, DbError> {
    let limit = correlation::limit(conn)?;
    let id = event.meta.id;
    let mut out = EventCorrelations::default();
    // NOTE: events the viewer does not see are dropped after the lookup's limit, so a
    // viewer may get fewer than the maximum even when more visible ones exist.
    for related in correlation::related_event_ids(conn, id, limit, MAX_RELATED_EVENTS)? {
        if access::event_visible(conn, viewer, related)? {
            out.related_events.push(read_event_brief(conn, related)?);
        }
    }
    let (first, last) = row_id_range(id);
    out.over_correlating = correlation::over_correlating_ids(conn, first, last, limit)?
        .into_iter()
        .collect();
    if with_attributes {
        let mut events = HashMap::new();
        let all = event
            .attributes
            .iter()
            .chain(event.objects.iter().flat_map(|o| o.attributes.iter()));
        for a in all {
            let related = related_with_events(conn, a.id, limit, &mut events, viewer)?;
            if !related.is_empty() {
                out.related_attributes.insert(a.id, related);
            }
        }
    }
    Ok(out)
}

/// Reads the attributes related to `attribute_id`, caching the events they belong to.
pub(crate) fn related_with_events(
    conn: &Connection,
    attribute_id: i64,
    limit: i64,
    events: &mut HashMap<i64, EventMeta>,
    viewer: &Viewer,
) -> Result<Vec<RelatedAttribute>, DbError> {
    let ids =
        correlation::related_attribute_ids(conn, attribute_id, limit, MAX_RELATED_ATTRIBUTES)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !access::attribute_visible(conn, viewer, id)? {
            continue;
        }
        let attribute = read_attribute(conn, &id.to_string())?;
        let event = match events.get(&attribute.event_id) {
            Some(event) => event.clone(),
            None => {
                let event = read_event_brief(conn, attribute.event_id)?;
                events.insert(attribute.event_id, event.clone());
                event
            }
        };
        out.push(RelatedAttribute { attribute, event });
    }
    Ok(out)
}

/// Reads an event's own columns without counting its attributes (`attribute_count` is 0):
/// the related-event and related-attribute blocks do not show the count, and counting
/// would scan every attribute of every related event.
fn read_event_brief(conn: &Connection, id: i64) -> Result<EventMeta, DbError> {
    conn.prepare_cached(&format!(
        "SELECT {EVENT_BRIEF_COLUMNS} FROM events e WHERE e.id = ?1"
    ))?
    .query_row([id], EventMeta::from_row)
    .optional()?
    .ok_or(DbError::NotFound("event"))
}

/// True when attribute `attribute_id` has a value over the correlation limit.
pub(crate) fn is_over_correlating(
    conn: &Connection,
    attribute_id: i64,
    limit: i64,
) -> Result<bool, DbError> {
    let found = correlation::over_correlating_ids(conn, attribute_id, attribute_id, limit)?;
    Ok(!found.is_empty())
}
