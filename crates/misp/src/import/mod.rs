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
