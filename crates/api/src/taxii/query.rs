//! URL parameters of the TAXII object endpoints (`added_after`, `limit`, `next` and the
//! `match[...]` filters) and the STIX timestamps they carry.

use axum::extract::Query;
use axum::http::Uri;

use super::error::TaxiiError;

/// Objects per page when the client sends no `limit`, and the most a page returns.
pub const MAX_PAGE: usize = 1000;

/// A STIX timestamp: whole seconds since the Unix epoch and the nanoseconds past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// Parses a STIX timestamp (`2024-01-31T12:00:00Z`, with up to nine fraction digits).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let (date, time) = text.split_once('T')?;
    let time = time.strip_suffix('Z')?;
    let day = misp::import::date_to_epoch(date).filter(|_| date.len() == 10)?;
    // `date_to_epoch` accepts day 31 of every month; the round trip rejects 2024-02-30.
    if misp::import::epoch_to_date(day) != date {
        return None;
    }

    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let fields: Vec<&str> = clock.split(':').collect();
    let [hours, minutes, seconds] = fields.as_slice() else {
        return None;
    };
    let number = |field: &str, max: i64| {
        let value: i64 = field.parse().ok()?;
        (field.len() == 2 && (0..=max).contains(&value)).then_some(value)
    };
    // Second 60 is a leap second, which STIX timestamps allow.
    let secs = day + number(hours, 23)? * 3600 + number(minutes, 59)? * 60 + number(seconds, 60)?;

    let nanos = match fraction {
        None => 0,
        Some(digits)
            if (1..=9).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let padded = format!("{digits:0<9}");
            padded.parse().ok()?
        }
        Some(_) => return None,
    };
    Some(Timestamp { secs, nanos })
}

/// Position after the last object of a page: its date added and its row id. It travels to
/// the client as the opaque `next` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub added: i64,
    pub row: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        format!("{}.{}", self.added, self.row)
    }

    fn decode(text: &str) -> Option<Cursor> {
        let (added, row) = text.split_once('.')?;
        Some(Cursor {
            added: added.parse().ok()?,
            row: row.parse().ok()?,
        })
    }
}

/// Filter on object versions. Each object is stored in one version, the one after its last
/// change, so `first`, `last` and `all` all select it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionFilter {
    #[default]
    Any,
    /// Versions given as `modified` timestamps.
    At(Vec<Timestamp>),
}

impl VersionFilter {
    pub fn matches(&self, modified_secs: i64) -> bool {
        match self {
            VersionFilter::Any => true,
            VersionFilter::At(times) => times
                .iter()
                .any(|t| t.nanos == 0 && t.secs == modified_secs),
        }
    }
}

/// The parsed parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct ObjectQuery {
    pub added_after: Option<Timestamp>,
    pub limit: Option<usize>,
    pub next: Option<Cursor>,
    /// `match[id]`: STIX ids; empty matches every id.
    pub ids: Vec<String>,
    /// `match[type]`: STIX types; empty matches every type.
    pub types: Vec<String>,
    pub version: VersionFilter,
    /// False when `match[spec_version]` names no version that the objects have (2.1).
    pub spec_version_matches: bool,
}

impl ObjectQuery {
    /// Parses the query string of `uri`; unknown parameters are ignored.
    pub fn from_uri(uri: &Uri) -> Result<ObjectQuery, TaxiiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| TaxiiError::bad_request(format!("invalid query string: {e}")))?;
        let mut query = ObjectQuery {
            spec_version_matches: true,
            ..ObjectQuery::default()
        };
        for (name, value) in &pairs {
            query.set(name, value)?;
        }
        Ok(query)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), TaxiiError> {
        let list = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
        match name {
            "added_after" => {
                let time = parse_timestamp(value).ok_or_else(|| {
                    TaxiiError::bad_request(format!(
                        "invalid added_after `{value}`; use a STIX timestamp such as 2024-01-31T12:00:00.000Z"
                    ))
                })?;
                self.added_after = Some(time);
            }
            "limit" => {
                let limit = value.parse::<usize>().ok().filter(|n| *n > 0);
                let limit = limit.ok_or_else(|| {
                    TaxiiError::bad_request(format!(
                        "invalid limit `{value}`; use a positive integer"
                    ))
                })?;
                self.limit = Some(limit);
            }
            "next" => {
                let cursor = Cursor::decode(value).ok_or_else(|| {
                    TaxiiError::bad_request(format!(
                        "invalid next `{value}`; send the value of `next` from the previous page"
                    ))
                })?;
                self.next = Some(cursor);
            }
            "match[id]" => self.ids.extend(list().map(str::to_ascii_lowercase)),
            "match[type]" => self.types.extend(list().map(str::to_owned)),
            "match[version]" => self.version = version_filter(list())?,
            "match[spec_version]" => self.spec_version_matches = list().any(|v| v == "2.1"),
            _ => {}
        }
        Ok(())
    }

    /// Objects on this page: the client's `limit`, capped at [`MAX_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE)
    }

    /// True when `match[type]` lets objects of `stix_type` through.
    pub fn wants_type(&self, stix_type: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == stix_type)
    }
}

fn version_filter<'a>(values: impl Iterator<Item = &'a str>) -> Result<VersionFilter, TaxiiError> {
    let mut times = Vec::new();
    for value in values {
        match value {
            "first" | "last" | "all" => return Ok(VersionFilter::Any),
            _ => {
                let time = parse_timestamp(value).ok_or_else(|| {
                    TaxiiError::bad_request(format!(
                        "invalid match[version] `{value}`; use first, last, all or a STIX timestamp"
                    ))
                })?;
                times.push(time);
            }
        }
    }
    if times.is_empty() {
        return Ok(VersionFilter::Any);
    }
    Ok(VersionFilter::At(times))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_with_fractions() {
        let t = parse_timestamp("2023-11-14T22:13:20.000Z").unwrap();
        assert_eq!(
            t,
            Timestamp {
                secs: 1_700_000_000,
                nanos: 0
            }
        );
        let t = parse_timestamp("2023-11-14T22:13:20.5Z").unwrap();
        assert_eq!(t.nanos, 500_000_000);
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z").unwrap().secs, 0);
    }

    #[test]
    fn invalid_timestamps_are_rejected() {
        for text in [
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-02-30T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20.1234567890Z",
            "2023-11-14T2:13:20Z",
            "yesterday",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn cursor_round_trip() {
        let cursor = Cursor {
            added: 1_700_000_000,
            row: 4_294_967_297,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("abc"), None);
    }

    #[test]
    fn match_filters() {
        let uri: Uri =
            "/x/?match[type]=indicator,identity&match[version]=2023-11-14T22:13:20.000Z&limit=5"
                .parse()
                .unwrap();
        let query = ObjectQuery::from_uri(&uri).unwrap();
        assert_eq!(query.types, ["indicator", "identity"]);
        assert!(query.version.matches(1_700_000_000));
        assert!(!query.version.matches(1_700_000_001));
        assert_eq!(query.page_size(), 5);
        assert!(query.spec_version_matches);
    }

    #[test]
    fn invalid_limit_is_rejected() {
        for uri in [
            "/x/?limit=0",
            "/x/?limit=-1",
            "/x/?limit=many",
            "/x/?next=zz",
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert!(ObjectQuery::from_uri(&uri).is_err(), "{uri}");
        }
    }
}
