//! Shape checks of MISP fields other than attribute values: uuids, event dates and the
//! `first_seen`/`last_seen` times of attributes, as MISP validates them before a save.

use time::format_description::well_known::Iso8601;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::model::Attribute;
use crate::validate::ValueError;

/// Returns true when `text` is a uuid in the hyphenated 8-4-4-4-12 form of RFC 4122, the
/// only form MISP accepts. Upper and lower case hex digits are both accepted.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Returns true when `text` is a calendar date in the form `YYYY-MM-DD`, as an event's
/// `date` must be.
pub fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i32> {
        let part = &text[range];
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let Ok(month) = time::Month::try_from(month as u8) else {
        return false;
    };
    Date::from_calendar_date(year, month, day as u8).is_ok()
}

/// Parses an ISO 8601 time as MISP takes `first_seen` and `last_seen`: a date and time
/// with an offset, a date and time read as UTC, or a date alone at midnight UTC. Returns
/// the time in nanoseconds since the Unix epoch.
pub fn parse_seen(text: &str) -> Option<i128> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    if is_date(text) {
        let t = Date::parse(text, &Iso8601::DEFAULT).ok()?;
        return Some(t.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

/// Checks an attribute's `first_seen` and `last_seen`: each, when given and not empty,
/// must be an ISO 8601 time, and `last_seen` must not be before `first_seen`. Returns the
/// field at fault with the reason.
pub fn check_seen(attribute: &Attribute) -> Result<(), (&'static str, ValueError)> {
    let read = |field: &'static str, value: Option<&str>| match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_seen(text).map(Some).ok_or_else(|| {
            let message = format!(
                "invalid {field} `{text}`; use an ISO 8601 time such as \
                 2024-01-31T12:00:00+00:00"
            );
            (field, ValueError(message))
        }),
    };
    let first = read("first_seen", attribute.first_seen.as_deref())?;
    let last = read("last_seen", attribute.last_seen.as_deref())?;
    if let (Some(first), Some(last)) = (first, last) {
        if last < first {
            let message = "last_seen is before first_seen; set last_seen at or after first_seen";
            return Err(("last_seen", ValueError(message.into())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_forms() {
        assert!(is_uuid("5f8a3c1e-0b2d-4e6f-8a9b-0c1d2e3f4a5b"));
        assert!(is_uuid("5F8A3C1E-0B2D-4E6F-8A9B-0C1D2E3F4A5B"));
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid("5f8a3c1e0b2d4e6f8a9b0c1d2e3f4a5b"));
        assert!(!is_uuid("5f8a3c1e-0b2d-4e6f-8a9b-0c1d2e3f4a5g"));
        assert!(!is_uuid(""));
    }

    #[test]
    fn dates_must_exist() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2026-99-99"));
        assert!(!is_date("2026-1-01"));
        assert!(!is_date("+026-01-01"));
    }

    #[test]
    fn seen_times_parse() {
        assert!(parse_seen("2024-01-31T12:00:00+00:00").is_some());
        assert!(parse_seen("2024-01-31T12:00:00.123456+02:00").is_some());
        assert!(parse_seen("2024-01-31T12:00:00Z").is_some());
        assert!(parse_seen("2024-01-31T12:00:00").is_some());
        assert!(parse_seen("2024-01-31").is_some());
        assert!(parse_seen("garbage").is_none());
    }

    #[test]
    fn last_seen_not_before_first_seen() {
        let mut a = Attribute {
            first_seen: Some("2024-02-01T00:00:00+00:00".into()),
            last_seen: Some("2024-01-01T00:00:00+00:00".into()),
            ..Attribute::default()
        };
        assert_eq!(check_seen(&a).unwrap_err().0, "last_seen");
        a.last_seen = Some("2024-03-01".into());
        assert!(check_seen(&a).is_ok());
        a.first_seen = Some("garbage".into());
        assert_eq!(check_seen(&a).unwrap_err().0, "first_seen");
    }
}
