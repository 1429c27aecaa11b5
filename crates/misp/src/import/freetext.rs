//! Freetext hash lists: one indicator per line, its type guessed from the value.
//!
//! Each line is trimmed; blank lines and lines starting with `#` are skipped. The value
//! is the line up to the first `;`, `,`, tab or space, and the rest of the line becomes
//! the attribute's comment, which covers `hash;comment` lists and `sha256sum` output.
//! NOTE: unlike MISP's freetext tool this does not extract indicators from prose; a
//! line whose first field is not an indicator is rejected.

use super::guess::guess_type;
use super::text::{lines, ListEvent};
use super::{FileMeta, Parsed};
use crate::Error;

/// Maximum line length accepted, in bytes; a longer line is rejected, not truncated.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parses a freetext list into one event.
pub(crate) fn parse_freetext(bytes: &[u8], meta: &FileMeta) -> Result<Parsed, Error> {
    let mut list = ListEvent::new(meta, count_lines(bytes));
    for (number, line) in lines(bytes) {
        if line.len() > MAX_LINE_BYTES {
            let reason = format!(
                "line is {} bytes, over the {MAX_LINE_BYTES}-byte limit",
                line.len()
            );
            list.reject(number, "", reason);
            continue;
        }
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (value, comment) = split_value(line);
        match guess_type(value) {
            Ok((type_name, normalized)) => {
                list.add(type_name, normalized, comment.map(str::to_owned));
            }
            Err(e) => list.reject(number, value, e.0),
        }
    }
    list.finish("freetext list")
}

fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count() + 1
}

/// Splits `value;comment`, `value,comment`, `value<tab>comment` or `value  comment`.
fn split_value(line: &str) -> (&str, Option<&str>) {
    match line.find([';', ',', '\t', ' ']) {
        Some(cut) => {
            let rest = line[cut..]
                .trim_start_matches([';', ',', '\t', ' ', '*'])
                .trim();
            (&line[..cut], (!rest.is_empty()).then_some(rest))
        }
        None => (line, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            name: "list.txt".into(),
            source_key: "/lists/list.txt".into(),
            mtime: 1_600_000_000,
        }
    }

    #[test]
    fn hash_comment_lines() {
        let text = b"# header\n\n0c2674c3a97c53082187d930efb645c2;DEEP PANDA Sakula\r\n\
                     45E617CA0C551F70D2D87313149A302EE4D4BA1B  sample.bin\n";
        let parsed = parse_freetext(text, &meta()).unwrap();
        let attributes = &parsed.events[0].event.attributes;
        assert_eq!(attributes.len(), 2);
        assert_eq!(attributes[0].r#type, "md5");
        assert_eq!(attributes[0].comment.as_deref(), Some("DEEP PANDA Sakula"));
        assert_eq!(
            attributes[1].value,
            "45e617ca0c551f70d2d87313149a302ee4d4ba1b"
        );
        assert_eq!(attributes[1].comment.as_deref(), Some("sample.bin"));
    }

    #[test]
    fn duplicates_and_rejections_counted() {
        let text =
            b"0c2674c3a97c53082187d930efb645c2\n0C2674C3A97C53082187D930EFB645C2\nnonsense\n";
        let parsed = parse_freetext(text, &meta()).unwrap();
        assert_eq!(parsed.events[0].event.attributes.len(), 1);
        assert_eq!(parsed.duplicates, 1);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].location, "line 3");
    }

    #[test]
    fn same_file_same_event_uuid() {
        let a = parse_freetext(b"0c2674c3a97c53082187d930efb645c2\n", &meta()).unwrap();
        let b = parse_freetext(b"0c2674c3a97c53082187d930efb645c3\n", &meta()).unwrap();
        assert_eq!(a.events[0].event.uuid, b.events[0].event.uuid);
    }

    #[test]
    fn list_without_indicators_fails() {
        let err = parse_freetext(b"{\n  \"Event\": {}\n}\n", &meta()).unwrap_err();
        assert!(err.to_string().contains("none of its 3 values"), "{err}");
    }
}
