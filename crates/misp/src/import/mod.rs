//! Importers: turn the bytes of one file into validated MISP events or warninglists.
//!
//! The format is detected from content unless forced. A value that fails validation is
//! left out and returned as [`Rejected`] with a reason, and the rest of the file is kept.
//! A structural problem (bad JSON, unknown format) fails the whole file.

mod csv;
mod detect;
pub mod feed;
mod freetext;
pub mod guess;
mod misp_json;
pub mod stix;
mod text;
pub mod warninglist;

use std::fmt;
use std::str::FromStr;

use serde_json::value::RawValue;

use crate::model::Event;
use crate::Error;

pub use self::csv::ColumnSpec;
pub use detect::detect_text_format;
use misp_json::parse_misp_json;
pub use misp_json::{date_to_epoch, epoch_to_date, finalize_event, UUID_NAMESPACE};
pub use warninglist::Warninglist;

/// An input format `intel import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    MispJson,
    MispFeed,
    Csv,
    Freetext,
    Stix2,
    Warninglist,
}

impl Format {
    /// The names accepted by `--format`, for messages.
    pub const NAMES: &'static str = "misp-json, misp-feed, csv, freetext, stix2, warninglist";

    pub fn as_str(self) -> &'static str {
        match self {
            Format::MispJson => "misp-json",
            Format::MispFeed => "misp-feed",
            Format::Csv => "csv",
            Format::Freetext => "freetext",
            Format::Stix2 => "stix2",
            Format::Warninglist => "warninglist",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "misp-json" | "misp" | "json" => Ok(Format::MispJson),
            "misp-feed" | "feed" => Ok(Format::MispFeed),
            "csv" => Ok(Format::Csv),
            "freetext" | "text" => Ok(Format::Freetext),
            "stix2" | "stix" => Ok(Format::Stix2),
            "warninglist" => Ok(Format::Warninglist),
            _ => Err(format!(
                "unknown format `{s}`; use one of {}",
                Format::NAMES
            )),
        }
    }
}

/// A value left out of the import, with where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Position in the input: `line 13`, `attribute 57c4...`, `indicator--...`.
    pub location: String,
    pub value: String,
    pub reason: String,
}

/// A validated event and the JSON to store for it.
#[derive(Debug, Clone)]
pub struct ParsedEvent {
    /// The event with normalised values; rejected attributes are removed.
    pub event: Event,
    /// The event object as it came in, for MISP JSON; `None` for events built from other
    /// formats, which the model describes completely.
    pub json: Option<String>,
}

/// Everything one file contributed.
#[derive(Debug, Default)]
pub struct Parsed {
    pub format: Option<Format>,
    pub events: Vec<ParsedEvent>,
    pub warninglists: Vec<Warninglist>,
    pub rejected: Vec<Rejected>,
    /// Values that repeat an earlier value of the same type in the same list.
    pub duplicates: usize,
    /// Inputs read but not turned into attributes, such as non-hash STIX patterns.
    pub skipped: Vec<String>,
}

/// Facts about the file being parsed, used to build events for list formats.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    /// File name shown in event info (`Imported from samples.sha256`).
    pub name: String,
    /// Stable identity of the source (its absolute path); list events get a uuid from it,
    /// so importing the same file again updates the same event.
    pub source_key: String,
    /// Modification time in seconds since the Unix epoch: the timestamp of list events.
    pub mtime: i64,
}

/// Options of the CSV importer.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    pub column: Option<ColumnSpec>,
    pub delimiter: Option<u8>,
}

/// Parses one file's content as `format`, or as the format detected from it.
pub fn parse_bytes(
    bytes: &[u8],
    format: Option<Format>,
    meta: &FileMeta,
    csv: &CsvOptions,
) -> Result<Parsed, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let json_like = matches!(first, Some(b'{') | Some(b'['));

    // JSON is read to its top level once, both to detect the format and to split events.
    if json_like && matches!(format, None | Some(Format::MispJson)) {
        let text = utf8(bytes)?;
        let top = read_top(text)?;
        let format = match format {
            Some(f) => f,
            None => detect::detect_json(&top)?,
        };
        if format == Format::MispJson {
            let mut parsed = parse_misp_json(text, &top)?;
            parsed.format = Some(format);
            return Ok(parsed);
        }
        return parse_bytes(bytes, Some(format), meta, csv);
    }

    let format = match format {
        Some(f) => f,
        None => detect::detect(bytes)?,
    };
    let mut parsed = match format {
        Format::MispJson => parse_misp_json(utf8(bytes)?, &read_top(utf8(bytes)?)?)?,
        Format::Stix2 => stix::parse_stix(utf8(bytes)?, meta)?,
        Format::Warninglist => {
            let list = warninglist::parse_warninglist(utf8(bytes)?)?;
            Parsed {
                warninglists: vec![list],
                ..Parsed::default()
            }
        }
        Format::Csv => csv::parse_csv(bytes, meta, csv)?,
        Format::Freetext => freetext::parse_freetext(bytes, meta)?,
        Format::MispFeed => {
            return Err(Error::Invalid {
                format: "misp-feed",
                message: "a MISP feed is a folder with manifest.json; import the folder".into(),
            })
        }
    };
    parsed.format = Some(format);
    Ok(parsed)
}

/// Parses one file's content as [`parse_bytes`] does, taking ownership of the buffer. When
/// the file is a single MISP JSON event, the buffer becomes that event's kept JSON in place
/// of a copy, so a large event file is held in memory once instead of twice.
pub fn parse_vec(
    mut bytes: Vec<u8>,
    format: Option<Format>,
    meta: &FileMeta,
    csv: &CsvOptions,
) -> Result<Parsed, Error> {
    let (event, range) = match split_single_event(&bytes, format)? {
        Single::Event(event, range) => (event, range),
        Single::Parsed(parsed) => return Ok(parsed),
        Single::Other => return parse_bytes(&bytes, format, meta, csv),
    };

    // Move the event's JSON to the start of the buffer and cut the rest.
    let length = range.len();
    bytes.copy_within(range, 0);
    bytes.truncate(length);
    let json = String::from_utf8(bytes).map_err(|e| Error::Invalid {
        format: "JSON file",
        message: format!("invalid UTF-8 in the event object: {e}; save the file as UTF-8"),
    })?;
    let mut parsed = Parsed {
        format: Some(Format::MispJson),
        ..Parsed::default()
    };
    misp_json::push_event(&mut parsed, 0, *event, json);
    Ok(parsed)
}

/// Result of [`split_single_event`] for one buffer.
enum Single {
    /// The document's one event, and the byte range of its JSON object in the buffer.
    Event(Box<Event>, std::ops::Range<usize>),
    /// A MISP JSON document with no event or several, parsed already.
    Parsed(Parsed),
    /// Not MISP JSON, or a format to detect by [`parse_bytes`].
    Other,
}

/// Deserializes the event of a MISP JSON document that contains exactly one, and returns
/// where its JSON object is in `bytes`.
fn split_single_event(bytes: &[u8], format: Option<Format>) -> Result<Single, Error> {
    let start = bytes.len() - bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes).len();
    let first = bytes[start..].iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) || !matches!(format, None | Some(Format::MispJson)) {
        return Ok(Single::Other);
    }
    let text = utf8(&bytes[start..])?;
    let top = read_top(text)?;
    if format.is_none() && detect::detect_json(&top)? != Format::MispJson {
        return Ok(Single::Other);
    }
    let raw_events = misp_json::split_events(text, &top)?;
    let [raw] = raw_events[..] else {
        let mut parsed = misp_json::parse_events(text, raw_events)?;
        parsed.format = Some(Format::MispJson);
        return Ok(Single::Parsed(parsed));
    };
    let event = misp_json::deserialize_event(text, raw)?;
    // `raw` is a slice of `text`, which is a slice of `bytes`.
    let offset = raw.get().as_ptr() as usize - bytes.as_ptr() as usize;
    Ok(Single::Event(
        Box::new(event),
        offset..offset + raw.get().len(),
    ))
}

/// Checks that `bytes` is UTF-8 text, as JSON must be.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::Invalid {
            format: "JSON file",
            message: format!(
                "invalid UTF-8 at byte {offset} (line {line}); save the file as UTF-8"
            ),
        }
    })
}

/// Top-level JSON value, read without parsing nested values.
pub(crate) enum Top<'a> {
    Object(
        serde_json::Map<String, serde_json::Value>,
        Vec<(String, &'a RawValue)>,
    ),
    Array(Vec<&'a RawValue>),
}

/// Reads the top level of a JSON text, keeping nested values as raw slices.
pub(crate) fn read_top(text: &str) -> Result<Top<'_>, Error> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(text).map_err(|e| Error::json(&e, text, text))?;
        return Ok(Top::Array(items));
    }
    let entries: RawObject = serde_json::from_str(text).map_err(|e| Error::json(&e, text, text))?;
    // Scalars at the top level are cheap to keep as values, for format detection.
    let mut scalars = serde_json::Map::new();
    for (key, raw) in &entries.0 {
        let first = raw.get().as_bytes().first().copied().unwrap_or(b' ');
        if first != b'{' && first != b'[' {
            if let Ok(v) = serde_json::from_str(raw.get()) {
                scalars.insert(key.clone(), v);
            }
        }
    }
    Ok(Top::Object(scalars, entries.0))
}

/// A JSON object as its keys and raw values, in document order.
pub(crate) struct RawObject<'a>(pub Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    entries.push((k, v));
                }
                Ok(RawObject(entries))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Top<'a> {
    /// Returns the raw value under `key` of a top-level object.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        match self {
            Top::Object(_, entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v),
            Top::Array(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Complete enough (uuids, timestamp) that the kept JSON is the input unchanged.
    const EVENT: &str = r#"{"uuid":"57c4445b-c548-4654-af0b-4be3950d210f","info":"x",
        "timestamp":"1704067200","Attribute":[{"uuid":"b7f35fee-0c77-589e-84e7-7643a5b79679",
        "type":"md5","value":"0749BAE92CA336A02C83D126E04EC628"}]}"#;

    fn parse_both(doc: &str, format: Option<Format>) -> (Parsed, Parsed) {
        let (meta, csv) = (FileMeta::default(), CsvOptions::default());
        let borrowed = parse_bytes(doc.as_bytes(), format, &meta, &csv).unwrap();
        let owned = parse_vec(doc.as_bytes().to_vec(), format, &meta, &csv).unwrap();
        (borrowed, owned)
    }

    #[test]
    fn parse_vec_matches_parse_bytes() {
        for doc in [
            format!("\u{feff} \n{{\"Event\": {EVENT}}}\n"),
            EVENT.to_string(),
            format!(r#"{{"response":[{{"Event":{EVENT}}}]}}"#),
            format!("[{EVENT},{EVENT}]"),
            "[]".to_string(),
        ] {
            for format in [None, Some(Format::MispJson)] {
                let (borrowed, owned) = parse_both(&doc, format);
                assert_eq!(owned.format, borrowed.format, "{doc}");
                assert_eq!(owned.events.len(), borrowed.events.len(), "{doc}");
                for (a, b) in owned.events.iter().zip(&borrowed.events) {
                    assert_eq!(a.event, b.event, "{doc}");
                    assert_eq!(a.json, b.json, "{doc}");
                }
            }
        }
    }

    #[test]
    fn parse_vec_keeps_the_event_object_only() {
        let doc = format!("  {{\"Event\": {EVENT}}}  ");
        let (_, owned) = parse_both(&doc, None);
        assert_eq!(owned.events[0].json.as_deref(), Some(EVENT));
        assert_eq!(
            owned.events[0].event.attributes[0].value,
            "0749bae92ca336a02c83d126e04ec628"
        );
    }

    #[test]
    fn parse_vec_reads_other_formats() {
        let doc = "0749bae92ca336a02c83d126e04ec628\n";
        let (borrowed, owned) = parse_both(doc, None);
        assert_eq!(owned.format, Some(Format::Freetext));
        assert_eq!(owned.format, borrowed.format);
        assert_eq!(owned.events.len(), borrowed.events.len());
    }
}
