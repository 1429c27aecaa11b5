//! restSearch filters: parsed from a JSON body or from CakePHP-style named parameters
//! (`/value:abc/type:md5`), and turned into an SQL condition over `attributes a` joined
//! with `events e`. Unknown keys are ignored, as MISP does.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use crate::access::Viewer;
use crate::db::now_secs;
use crate::ApiError;

/// Output format of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnFormat {
    Json,
    Csv,
    Text,
    /// A STIX 2.1 bundle of indicators.
    Stix2,
}

/// Values of one filter: those to match and those to exclude (`!value` or `NOT`).
#[derive(Debug, Clone, Default)]
pub struct Terms {
    pub any: Vec<String>,
    pub not: Vec<String>,
}

impl Terms {
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.not.is_empty()
    }
}

/// The parsed filters of one search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub values: Terms,
    pub types: Terms,
    pub categories: Terms,
    pub tags: Terms,
    pub uuids: Terms,
    pub event_ids: Terms,
    pub to_ids: Option<bool>,
    pub published: Option<bool>,
    pub deleted: Deleted,
    pub publish_timestamp: Option<(i64, Option<i64>)>,
    pub timestamp: Option<(i64, Option<i64>)>,
    pub event_timestamp: Option<(i64, Option<i64>)>,
    /// `attribute_timestamp`, which event searches apply to attributes.
    pub attribute_timestamp: Option<(i64, Option<i64>)>,
    pub limit: Option<u64>,
    pub page: Option<u64>,
    pub include_event_tags: bool,
    pub include_context: bool,
    pub include_sightings: bool,
    /// `includeCorrelations`: each attribute gets its `RelatedAttribute` list.
    pub include_correlations: bool,
    pub enforce_warninglist: bool,
    pub return_format: ReturnFormat,
    /// Whose view the search takes; [`Viewer::NOBODY`] until the handler sets the user's.
    pub viewer: Viewer,
}

/// Selection of attributes by their `deleted` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deleted {
    #[default]
    Exclude,
    Include,
    Only,
}

impl Deleted {
    /// True when deleted attributes may be returned.
    pub fn includes_deleted(self) -> bool {
        self != Deleted::Exclude
    }
}

/// Reads MISP's `deleted` filter: `0` (the default) excludes deleted attributes, `1`
/// includes them, and `"only"` returns only them. A list gives the requested flags, so
/// `[0, 1]` is both and `[1]` only the deleted ones.
fn deleted_filter(query: &Map<String, Value>) -> Result<Deleted, ApiError> {
    let value = match query.get("deleted") {
        None | Some(Value::Null) => return Ok(Deleted::Exclude),
        Some(value) => value,
    };
    if let Value::Array(items) = value {
        let mut wanted = (false, false);
        for item in items {
            match scalar_text(item).as_deref().map(str::trim) {
                Some("0") | Some("false") => wanted.0 = true,
                Some("1") | Some("true") => wanted.1 = true,
                _ => return Err(bad("deleted", value)),
            }
        }
        return Ok(match wanted {
            (_, false) => Deleted::Exclude,
            (false, true) => Deleted::Only,
            (true, true) => Deleted::Include,
        });
    }
    if scalar_text(value).is_some_and(|t| t.trim().eq_ignore_ascii_case("only")) {
        return Ok(Deleted::Only);
    }
    let mut single = Map::new();
    single.insert("deleted".into(), value.clone());
    Ok(match flag(&single, "deleted")? {
        Some(true) => Deleted::Include,
        _ => Deleted::Exclude,
    })
}

/// Parses named parameters of a GET search (`value:abc/type:md5`) into a JSON object.
pub fn named_params(path: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if let Some((key, value)) = segment.split_once(':') {
            let value = value.replace('+', " ");
            map.insert(key.to_owned(), Value::String(value));
        }
    }
    map
}

pub(crate) fn bad(key: &str, value: &Value) -> ApiError {
    ApiError::bad_request(format!("invalid value {value} for the `{key}` filter"))
}

pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

/// Reads a filter given as a string, a number, a list, or `{"OR": [...], "NOT": [...]}`.
pub(crate) fn terms(query: &Map<String, Value>, key: &str) -> Result<Terms, ApiError> {
    let mut terms = Terms::default();
    let Some(value) = query.get(key) else {
        return Ok(terms);
    };
    let mut push = |item: &Value, negated: bool| -> Result<(), ApiError> {
        let text = scalar_text(item).ok_or_else(|| bad(key, item))?;
        match text.strip_prefix('!') {
            Some(rest) => terms.not.push(rest.to_owned()),
            None if negated => terms.not.push(text),
            None => terms.any.push(text),
        }
        Ok(())
    };
    match value {
        Value::Null => {}
        Value::Array(items) => items.iter().try_for_each(|i| push(i, false))?,
        Value::Object(map) => {
            for (op, items) in map {
                let negated = op.eq_ignore_ascii_case("NOT");
                match items {
                    Value::Array(items) => items.iter().try_for_each(|i| push(i, negated))?,
                    item => push(item, negated)?,
                }
            }
        }
        item => push(item, false)?,
    }
    Ok(terms)
}

pub(crate) fn flag(query: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match query.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => match scalar_text(v).as_deref().map(str::trim) {
            Some("1") | Some("true") => Ok(Some(true)),
            Some("0") | Some("false") | Some("") => Ok(Some(false)),
            _ => Err(bad(key, v)),
        },
    }
}

/// Parses a time: seconds since the epoch, a date `YYYY-MM-DD`, or a relative time such
/// as `7d`, `12h`, `30m`, `2w` or `45s` counted back from now.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    if let Some(secs) = misp::import::date_to_epoch(text) {
        return Some(secs);
    }
    let unit = text.chars().last()?;
    let count: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    Some(now_secs() - count.checked_mul(seconds)?)
}

/// Reads a time filter: one value (from then on) or a `[from, to]` pair.
pub(crate) fn time_range(
    query: &Map<String, Value>,
    key: &str,
) -> Result<Option<(i64, Option<i64>)>, ApiError> {
    let Some(value) = query.get(key) else {
        return Ok(None);
    };
    let one = |v: &Value| {
        scalar_text(v)
            .and_then(|t| parse_time(&t))
            .ok_or_else(|| bad(key, v))
    };
    match value {
        Value::Null => Ok(None),
        Value::Array(items) if items.len() == 2 => {
            Ok(Some((one(&items[0])?, Some(one(&items[1])?))))
        }
        Value::Array(_) => Err(bad(key, value)),
        v => Ok(Some((one(v)?, None))),
    }
}

pub(crate) fn number(query: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match query.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_text(v)
            .and_then(|t| t.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| bad(key, v)),
    }
}

impl SearchQuery {
    /// Parses a restSearch body; unknown keys are ignored.
    pub fn parse(query: &Map<String, Value>) -> Result<SearchQuery, ApiError> {
        let return_format = match query.get("returnFormat").and_then(scalar_text).as_deref() {
            None | Some("json") => ReturnFormat::Json,
            Some("csv") => ReturnFormat::Csv,
            Some("text") => ReturnFormat::Text,
            Some("stix2") => ReturnFormat::Stix2,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported returnFormat `{other}`; use json, csv, text or stix2"
                )))
            }
        };
        let last = time_range(query, "last")?;
        Ok(SearchQuery {
            values: terms(query, "value")?,
            types: terms(query, "type")?,
            categories: terms(query, "category")?,
            tags: terms(query, "tags")?,
            uuids: terms(query, "uuid")?,
            event_ids: terms(query, "eventid")?,
            to_ids: flag(query, "to_ids")?,
            published: flag(query, "published")?,
            deleted: deleted_filter(query)?,
            publish_timestamp: time_range(query, "publish_timestamp")?.or(last),
            timestamp: time_range(query, "timestamp")?,
            event_timestamp: time_range(query, "event_timestamp")?,
            attribute_timestamp: time_range(query, "attribute_timestamp")?,
            limit: number(query, "limit")?,
            page: number(query, "page")?,
            include_event_tags: flag(query, "includeEventTags")?.unwrap_or(false),
            include_context: flag(query, "includeContext")?.unwrap_or(false),
            include_sightings: flag(query, "includeSightings")?.unwrap_or(false),
            include_correlations: flag(query, "includeCorrelations")?.unwrap_or(false),
            enforce_warninglist: flag(query, "enforceWarninglist")?.unwrap_or(false),
            return_format,
            viewer: Viewer::NOBODY,
        })
    }

    /// True when a filter applies to attributes rather than to events only.
    pub fn has_attribute_filters(&self) -> bool {
        !self.values.is_empty()
            || !self.types.is_empty()
            || !self.categories.is_empty()
            || self.to_ids.is_some()
            || self.timestamp.is_some()
    }

    /// Takes the view of `user`.
    pub fn for_user(mut self, user: &crate::User) -> SearchQuery {
        self.viewer = Viewer::of(user);
        self
    }

    /// `LIMIT` and `OFFSET` of the page asked for.
    pub fn limit_offset(&self) -> (i64, i64) {
        match self.limit {
            Some(limit) => {
                let page = self.page.unwrap_or(1).max(1);
                (limit as i64, ((page - 1) * limit) as i64)
            }
            None => (-1, 0),
        }
    }
}

/// An SQL condition under construction, with its parameters.
#[derive(Default)]
pub struct Condition {
    pub clauses: Vec<String>,
    pub params: Vec<Sql>,
}

impl Condition {
    pub(crate) fn param(&mut self, value: Sql) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }

    fn text_in(&mut self, column: &str, terms: &Terms) {
        for (list, op) in [(&terms.any, "IN"), (&terms.not, "NOT IN")] {
            if list.is_empty() {
                continue;
            }
            let marks: Vec<String> = list
                .iter()
                .map(|t| self.param(Sql::Text(t.clone())))
                .collect();
            self.clauses
                .push(format!("{column} {op} ({})", marks.join(", ")));
        }
    }

    pub(crate) fn range(&mut self, column: &str, range: Option<(i64, Option<i64>)>) {
        if let Some((from, to)) = range {
            let from = self.param(Sql::Integer(from));
            self.clauses.push(format!("{column} >= {from}"));
            if let Some(to) = to {
                let to = self.param(Sql::Integer(to));
                self.clauses.push(format!("{column} <= {to}"));
            }
        }
    }

    /// Matches a value whole or either half of a composite (`filename|sha256`); `%` is a
    /// wildcard. Hex values are compared in lower case, as hashes are stored.
    fn value_match(&mut self, value: &str) -> String {
        let value = lower_hex(value);
        if value.contains('%') {
            let p = self.param(Sql::Text(value));
            return format!("a.value LIKE {p}");
        }
        let p = self.param(Sql::Text(value));
        format!(
            "(a.value = {p}
              OR (instr(a.value, '|') > 0 AND substr(a.value, instr(a.value, '|') + 1) = {p})
              OR (instr(a.value, '|') > 0 AND substr(a.value, 1, instr(a.value, '|') - 1) = {p}))"
        )
    }

    fn tags(&mut self, terms: &Terms) {
        for (list, negate) in [(&terms.any, ""), (&terms.not, "NOT ")] {
            if list.is_empty() {
                continue;
            }
            let marks: Vec<String> = list
                .iter()
                .map(|t| self.param(Sql::Text(t.clone())))
                .collect();
            let marks = marks.join(", ");
            self.clauses.push(format!(
                "{negate}(EXISTS (SELECT 1 FROM json_each(COALESCE(a.tags, '[]')) WHERE value IN ({marks}))
                  OR EXISTS (SELECT 1 FROM json_each(e.tags) WHERE value IN ({marks})))"
            ));
        }
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

/// Lower-cases the parts of `value` (split at `|`) that are hexadecimal.
fn lower_hex(value: &str) -> String {
    value
        .split('|')
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                part.to_ascii_lowercase()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Builds the condition over `attributes a JOIN events e` for `query`, with the viewer's
/// visibility of each attribute.
pub fn attribute_condition(query: &SearchQuery) -> Condition {
    let mut c = event_condition(query);
    c.clauses.push(query.viewer.attribute_sql("a", "e"));
    match query.deleted {
        Deleted::Exclude => c.clauses.push("a.deleted = 0".into()),
        Deleted::Only => c.clauses.push("a.deleted = 1".into()),
        Deleted::Include => {}
    }
    if !query.values.any.is_empty() {
        let ors: Vec<String> = query.values.any.iter().map(|v| c.value_match(v)).collect();
        c.clauses.push(format!("({})", ors.join(" OR ")));
    }
    for v in &query.values.not {
        let m = c.value_match(v);
        c.clauses.push(format!("NOT {m}"));
    }
    c.text_in("a.type", &query.types);
    c.text_in("a.category", &query.categories);
    let uuids = Terms {
        any: query.uuids.any.iter().map(|u| u.to_lowercase()).collect(),
        not: query.uuids.not.iter().map(|u| u.to_lowercase()).collect(),
    };
    if !uuids.any.is_empty() {
        let marks: Vec<String> = uuids
            .any
            .iter()
            .map(|u| c.param(Sql::Text(u.clone())))
            .collect();
        let marks = marks.join(", ");
        c.clauses
            .push(format!("(a.uuid IN ({marks}) OR e.uuid IN ({marks}))"));
    }
    if let Some(to_ids) = query.to_ids {
        let p = c.param(Sql::Integer(to_ids.into()));
        c.clauses.push(format!("a.to_ids = {p}"));
    }
    c.range("a.timestamp", query.timestamp);
    c.tags(&query.tags);
    c
}

/// Builds the event-level part of the condition (visibility, event ids, publication, event
/// times).
pub fn event_condition(query: &SearchQuery) -> Condition {
    let mut c = Condition::default();
    c.clauses.push(query.viewer.event_sql("e"));
    let ids = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|i| i.parse::<i64>().is_ok())
            .cloned()
            .collect()
    };
    let event_ids = &query.event_ids;
    for (list, op) in [(ids(&event_ids.any), "IN"), (ids(&event_ids.not), "NOT IN")] {
        if !list.is_empty() {
            let marks: Vec<String> = list
                .iter()
                .map(|i| c.param(Sql::Integer(i.parse().unwrap_or(0))))
                .collect();
            c.clauses.push(format!("e.id {op} ({})", marks.join(", ")));
        }
    }
    // Event uuids given as `eventid` are accepted too.
    let uuid_ids: Vec<String> = event_ids
        .any
        .iter()
        .filter(|i| i.parse::<i64>().is_err())
        .map(|u| u.to_lowercase())
        .collect();
    if !uuid_ids.is_empty() {
        let marks: Vec<String> = uuid_ids
            .iter()
            .map(|u| c.param(Sql::Text(u.clone())))
            .collect();
        c.clauses.push(format!("e.uuid IN ({})", marks.join(", ")));
    }
    if let Some(published) = query.published {
        let p = c.param(Sql::Integer(published.into()));
        c.clauses.push(format!("e.published = {p}"));
    }
    // As in MISP, the filter reads the time of the last publishing, which an event
    // unpublished since keeps.
    c.range("COALESCE(e.publish_timestamp, 0)", query.publish_timestamp);
    c.range("e.timestamp", query.event_timestamp);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_params_split_on_colons() {
        let map = named_params("value:ABC/type:md5/");
        assert_eq!(map["value"], "ABC");
        assert_eq!(map["type"], "md5");
    }

    #[test]
    fn relative_times_count_back() {
        let now = now_secs();
        let week = parse_time("7d").unwrap();
        assert!((now - 7 * 86_400 - week).abs() <= 1);
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("soon"), None);
    }

    #[test]
    fn terms_accept_lists_and_negation() {
        let body = json!({"type": ["md5", "!sha1"], "tags": {"OR": ["a"], "NOT": ["b"]}});
        let map = body.as_object().unwrap();
        let types = terms(map, "type").unwrap();
        assert_eq!(types.any, vec!["md5"]);
        assert_eq!(types.not, vec!["sha1"]);
        let tags = terms(map, "tags").unwrap();
        assert_eq!(tags.not, vec!["b"]);
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let body = json!({"value": "x", "no_such_filter": 1});
        assert!(SearchQuery::parse(body.as_object().unwrap()).is_ok());
    }

    #[test]
    fn hex_is_lowered_per_part() {
        assert_eq!(lower_hex("Evil.EXE|ABCDEF"), "Evil.EXE|abcdef");
    }
}
