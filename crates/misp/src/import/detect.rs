//! Format detection from content: JSON shapes by their top-level keys, text by
//! whether its lines split into the same number of comma-separated fields.

use super::{read_top, utf8, Format, Top};
use crate::Error;

/// Detects the format of a file's content.
pub(crate) fn detect(bytes: &[u8]) -> Result<Format, Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        None => Err(Error::UnknownFormat {
            reason: "the file is empty".into(),
        }),
        Some(b'{') | Some(b'[') => {
            let text = utf8(bytes)?;
            detect_json(&read_top(text)?)
        }
        Some(_) => Ok(detect_text_format(bytes)),
    }
}

/// Tells a MISP event (or list of them), a STIX 2 bundle and a warninglist apart.
pub(crate) fn detect_json(top: &Top<'_>) -> Result<Format, Error> {
    match top {
        Top::Array(items) => {
            let Some(first) = items.first() else {
                return Ok(Format::MispJson);
            };
            let head = first.get();
            if head.contains("\"Event\"")
                || head.contains("\"Attribute\"")
                || head.contains("\"info\"")
            {
                if head.contains("\"filename\"")
                    && head.contains("\"md5\"")
                    && !head.contains("\"Attribute\"")
                {
                    return Err(not_events_manifest());
                }
                return Ok(Format::MispJson);
            }
            Err(Error::UnknownFormat {
                reason: "a JSON array whose items are not MISP events".into(),
            })
        }
        Top::Object(scalars, entries) => {
            let has = |k: &str| entries.iter().any(|(key, _)| key == k);
            if scalars.get("type").and_then(|v| v.as_str()) == Some("bundle")
                || (has("objects") && has("id") && !has("Event"))
            {
                return Ok(Format::Stix2);
            }
            if has("Event") || has("response") {
                return Ok(Format::MispJson);
            }
            if has("list") && has("name") && (has("matching_attributes") || has("type")) {
                return Ok(Format::Warninglist);
            }
            if has("info") || has("Attribute") || has("Object") {
                return Ok(Format::MispJson);
            }
            if !entries.is_empty()
                && entries
                    .iter()
                    .all(|(k, _)| uuid::Uuid::parse_str(k).is_ok())
            {
                return Err(Error::Invalid {
                    format: "MISP event",
                    message: "this is a MISP feed manifest (event uuids to metadata); \
                              import the folder that contains it"
                        .into(),
                });
            }
            let keys: Vec<&str> = entries.iter().take(6).map(|(k, _)| k.as_str()).collect();
            Err(Error::UnknownFormat {
                reason: format!(
                    "a JSON object with keys `{}` is not a MISP event, STIX 2 bundle or MISP warninglist",
                    keys.join("`, `")
                ),
            })
        }
    }
}

fn not_events_manifest() -> Error {
    Error::Invalid {
        format: "MISP event",
        message: "this is a JSON array of event summaries (filename, uuid, md5), not MISP \
                  events; MISP feeds list events in a manifest.json object keyed by uuid"
            .into(),
    }
}

/// Returns `Csv` when the first data lines all split into the same number (two or more)
/// of fields on `,`, `;` or tab outside quotes, else `Freetext`. A `hash;comment` list
/// whose comments contain the separator therefore stays freetext.
pub fn detect_text_format(bytes: &[u8]) -> Format {
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace) && !l.starts_with(b"#"))
        .take(20)
        .collect();
    if lines.len() < 2 {
        return Format::Freetext;
    }
    for sep in [b',', b'\t'] {
        let counts: Vec<usize> = lines.iter().map(|l| count_fields(l, sep)).collect();
        if counts[0] >= 2 && counts.iter().all(|&c| c == counts[0]) {
            return Format::Csv;
        }
    }
    Format::Freetext
}

fn count_fields(line: &[u8], sep: u8) -> usize {
    let mut in_quotes = false;
    let mut fields = 1;
    for &b in line {
        match b {
            b'"' => in_quotes = !in_quotes,
            b if b == sep && !in_quotes => fields += 1,
            _ => {}
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_formats() {
        assert_eq!(detect_text_format(b"a,b\nc,d\n"), Format::Csv);
        assert_eq!(detect_text_format(b"# x\n\"a,1\",b\nc,d\n"), Format::Csv);
        assert_eq!(detect_text_format(b"abc;x\ndef;y\n"), Format::Freetext);
        assert_eq!(detect_text_format(b"abc\r\ndef\r\n"), Format::Freetext);
    }

    #[test]
    fn json_shapes() {
        let cases = [
            (r#"{"Event": {}}"#, Format::MispJson),
            (r#"{"response": []}"#, Format::MispJson),
            (r#"[{"Event": {}}]"#, Format::MispJson),
            (r#"{"info": "x", "Attribute": []}"#, Format::MispJson),
            (
                r#"{"type": "bundle", "id": "bundle--1", "objects": []}"#,
                Format::Stix2,
            ),
            (
                r#"{"name": "x", "list": [], "type": "string"}"#,
                Format::Warninglist,
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(detect(json.as_bytes()).unwrap(), expected, "{json}");
        }
        assert!(detect(br#"{"version": "1.0", "feeds": {}}"#).is_err());
        assert!(detect(b"   ").is_err());
    }
}
