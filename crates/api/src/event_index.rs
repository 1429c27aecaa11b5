//! `events/index` filters, sort and paging as MISP's EventsController index applies them,
//! with the names PyMISP's `search_index` sends (`published`, `eventid`, `eventinfo`,
//! `tags`, `org`, `threatlevel`, `analysis`, `distribution`, `datefrom`, `dateuntil`,
//! `timestamp`, `publish_timestamp`, `minimal`, `sort`, `direction`, `limit`, `page`).
//! The web interface's `search`-prefixed names (`searchpublished`) are read too.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use crate::access::Viewer;
use crate::db::events::{EventMeta, EVENT_COLUMNS};
use crate::db::{Db, DbError};
use crate::search::{bad, flag, number, scalar_text, terms, time_range, Condition, Terms};
use crate::ApiError;

/// Columns `sort` may name, as MISP's index names them.
const SORT_COLUMNS: &[&str] = &[
    "id",
    "timestamp",
    "publish_timestamp",
    "date",
    "info",
    "uuid",
    "published",
    "threat_level_id",
    "analysis",
    "distribution",
    "attribute_count",
    "org_id",
    "orgc_id",
];

/// A parsed `events/index` request.
#[derive(Debug, Default)]
pub struct IndexQuery {
    published: Option<bool>,
    event_ids: Terms,
    info: Terms,
    tags: Terms,
    orgs: Terms,
    threat_levels: Terms,
    analysis: Terms,
    distributions: Terms,
    date_from: Option<String>,
    date_until: Option<String>,
    timestamp: Option<(i64, Option<i64>)>,
    publish_timestamp: Option<(i64, Option<i64>)>,
    /// Whether only ids, timestamps and uuids are returned.
    pub minimal: bool,
    sort: Option<&'static str>,
    descending: bool,
    limit: Option<u64>,
    page: Option<u64>,
}

/// Moves `searchpublished`-style keys to their plain names, unless the plain one is given.
fn plain_names(mut query: Map<String, Value>) -> Map<String, Value> {
    let prefixed: Vec<String> = query
        .keys()
        .filter(|k| k.starts_with("search") && k.len() > "search".len())
        .cloned()
        .collect();
    for key in prefixed {
        let plain = key["search".len()..].to_owned();
        if let Some(value) = query.remove(&key) {
            query.entry(plain).or_insert(value);
        }
    }
    query
}

/// Reads a day bound given as `YYYY-MM-DD` or, as PyMISP sends dates, in seconds since
/// the epoch.
fn date(query: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = query.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = scalar_text(value).unwrap_or_default();
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(Some(misp::import::epoch_to_date(secs)));
    }
    match misp::import::date_to_epoch(text) {
        Some(_) => Ok(Some(text[..10].to_owned())),
        None => Err(bad(key, value)),
    }
}

/// Reads a list filter whose entries must be whole numbers.
fn numeric_terms(query: &Map<String, Value>, key: &str) -> Result<Terms, ApiError> {
    let found = terms(query, key)?;
    for term in found.any.iter().chain(&found.not) {
        if term.trim().parse::<i64>().is_err() {
            return Err(bad(key, &query[key]));
        }
    }
    Ok(found)
}

fn sort_column(query: &Map<String, Value>) -> Result<Option<&'static str>, ApiError> {
    let Some(value) = query.get("sort").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = scalar_text(value).unwrap_or_default();
    let name = text.trim().trim_start_matches("Event.");
    match SORT_COLUMNS.iter().find(|c| **c == name) {
        Some(column) => Ok(Some(column)),
        None => Err(ApiError::bad_request(format!(
            "invalid value {value} for the `sort` filter; use one of {}",
            SORT_COLUMNS.join(", ")
        ))),
    }
}

fn descending(query: &Map<String, Value>) -> Result<bool, ApiError> {
    match query.get("direction").or_else(|| query.get("desc")) {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => match scalar_text(v).unwrap_or_default().trim() {
            "desc" | "DESC" | "1" | "true" => Ok(true),
            "asc" | "ASC" | "0" | "false" => Ok(false),
            _ => Err(bad("direction", v)),
        },
    }
}

impl IndexQuery {
    /// Parses the filters of a JSON body or of named parameters; unknown keys are ignored.
    pub fn parse(query: Map<String, Value>) -> Result<IndexQuery, ApiError> {
        let query = plain_names(query);
        let mut tags = terms(&query, "tags")?;
        let tag = terms(&query, "tag")?;
        tags.any.extend(tag.any);
        tags.not.extend(tag.not);
        Ok(IndexQuery {
            published: flag(&query, "published")?,
            event_ids: terms(&query, "eventid")?,
            info: terms(&query, "eventinfo")?,
            tags,
            orgs: terms(&query, "org")?,
            threat_levels: numeric_terms(&query, "threatlevel")?,
            analysis: numeric_terms(&query, "analysis")?,
            distributions: numeric_terms(&query, "distribution")?,
            date_from: date(&query, "datefrom")?,
            date_until: date(&query, "dateuntil")?,
            timestamp: time_range(&query, "timestamp")?,
            publish_timestamp: time_range(&query, "publish_timestamp")?
                .or(time_range(&query, "publishtimestamp")?),
            minimal: flag(&query, "minimal")?.unwrap_or(false),
            sort: sort_column(&query)?,
            descending: descending(&query)?,
            limit: number(&query, "limit")?,
            page: number(&query, "page")?,
        })
    }

    /// Builds the condition over `events e` for `viewer`.
    fn condition(&self, viewer: &Viewer) -> Condition {
        let mut c = Condition::default();
        c.clauses.push(viewer.event_sql("e"));
        if let Some(published) = self.published {
            let p = c.param(Sql::Integer(published.into()));
            c.clauses.push(format!("e.published = {p}"));
        }
        let event_key = "(CAST(e.id AS TEXT) = {p} OR e.uuid = lower({p}))";
        any_of(&mut c, &self.event_ids, event_key);
        any_of(&mut c, &self.info, "e.info LIKE '%' || {p} || '%'");
        any_of(
            &mut c,
            &self.tags,
            "EXISTS (SELECT 1 FROM json_each(e.tags) WHERE value = {p})",
        );
        let org = "EXISTS (SELECT 1 FROM api_organisations o WHERE o.id = e.orgc_id
             AND (CAST(o.id AS TEXT) = {p} OR o.name = {p} OR o.uuid = lower({p})))";
        any_of(&mut c, &self.orgs, org);
        let threat_level = "CAST(COALESCE(e.threat_level_id, 4) AS TEXT) = trim({p})";
        any_of(&mut c, &self.threat_levels, threat_level);
        let analysis = "CAST(COALESCE(e.analysis, 0) AS TEXT) = trim({p})";
        any_of(&mut c, &self.analysis, analysis);
        let distribution = "CAST(e.distribution AS TEXT) = trim({p})";
        any_of(&mut c, &self.distributions, distribution);
        for (bound, op) in [(&self.date_from, ">="), (&self.date_until, "<=")] {
            if let Some(day) = bound {
                let p = c.param(Sql::Text(day.clone()));
                c.clauses.push(format!("e.date {op} {p}"));
            }
        }
        c.range("e.timestamp", self.timestamp);
        c.range("COALESCE(e.publish_timestamp, 0)", self.publish_timestamp);
        c
    }

    /// `ORDER BY`, `LIMIT` and `OFFSET` of the request. Without `sort`, the newest id comes
    /// first.
    fn order_and_page(&self) -> String {
        let column = match self.sort {
            Some("attribute_count") => "11",
            Some(column) => column,
            None => "id",
        };
        let column = match column {
            "11" => column.to_owned(),
            name => format!("e.{name}"),
        };
        let direction = if self.descending { "DESC" } else { "ASC" };
        let (limit, offset) = match self.limit {
            Some(limit) => {
                let page = self.page.unwrap_or(1).max(1);
                (limit as i64, (page - 1).saturating_mul(limit) as i64)
            }
            None => (-1, 0),
        };
        format!("ORDER BY {column} {direction}, e.id {direction} LIMIT {limit} OFFSET {offset}")
    }
}

/// Adds "any of the terms" and "none of the negated terms" for `template`, an SQL test
/// of one term written as `{p}`.
fn any_of(c: &mut Condition, terms: &Terms, template: &str) {
    for (list, negate) in [(&terms.any, ""), (&terms.not, "NOT ")] {
        if list.is_empty() {
            continue;
        }
        let tests: Vec<String> = list
            .iter()
            .map(|term| {
                let p = c.param(Sql::Text(term.clone()));
                template.replace("{p}", &p)
            })
            .collect();
        c.clauses.push(format!("{negate}({})", tests.join(" OR ")));
    }
}

impl Db {
    /// Lists the events visible to `viewer` (without attributes) that `query` selects.
    pub fn event_index_filtered(
        &self,
        viewer: &Viewer,
        query: &IndexQuery,
    ) -> Result<Vec<EventMeta>, DbError> {
        let conn = self.reader()?;
        let condition = query.condition(viewer);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE {} {}",
            condition.sql(),
            query.order_and_page()
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            rusqlite::params_from_iter(condition.params.iter()),
            EventMeta::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Renders an event of a `minimal` index: ids, times and uuids only, as MISP does.
pub fn minimal_json(meta: &EventMeta) -> Value {
    serde_json::json!({
        "id": meta.id.to_string(),
        "timestamp": meta.timestamp.to_string(),
        "sighting_timestamp": "0",
        "published": meta.published,
        "uuid": meta.uuid,
        "orgc_uuid": meta.orgc_uuid.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<IndexQuery, ApiError> {
        IndexQuery::parse(value.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn bad_values_are_rejected() {
        for body in [
            json!({"publish_timestamp": "banana"}),
            json!({"threatlevel": "high"}),
            json!({"sort": "nope"}),
            json!({"limit": -1}),
            json!({"datefrom": "yesterday"}),
            json!({"direction": "up"}),
        ] {
            assert!(parse(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn prefixed_names_and_pages() {
        let query = parse(json!({"searchpublished": 1, "limit": 2, "page": 3,
            "sort": "Event.timestamp", "direction": "asc"}))
        .unwrap();
        assert_eq!(query.published, Some(true));
        assert_eq!(
            query.order_and_page(),
            "ORDER BY e.timestamp ASC, e.id ASC LIMIT 2 OFFSET 4"
        );
    }
}
