//! CSV lists: one indicator per row from a chosen column, `#` comment lines skipped,
//! a header row recognised, and MISP's own CSV export (`type` and `value` columns) read
//! with its types, categories and `to_ids`.

use std::str::FromStr;

use super::guess::guess_type;
use super::text::ListEvent;
use super::{CsvOptions, FileMeta, Parsed};
use crate::validate::normalize_value;
use crate::Error;

/// The column holding the values: a 1-based number or a header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSpec {
    Index(usize),
    Name(String),
}

impl FromStr for ColumnSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<usize>() {
            Ok(0) => Err("CSV columns are numbered from 1".into()),
            Ok(n) => Ok(ColumnSpec::Index(n - 1)),
            Err(_) if s.trim().is_empty() => Err("empty CSV column name".into()),
            Err(_) => Ok(ColumnSpec::Name(s.trim().to_owned())),
        }
    }
}

/// Header names taken as the value column when no column is chosen.
const VALUE_HEADERS: &[&str] = &[
    "value",
    "sha256",
    "sha256_hash",
    "md5",
    "md5_hash",
    "sha1",
    "sha1_hash",
    "hash",
    "ioc",
    "indicator",
];

/// Parses a CSV file into one event.
pub(crate) fn parse_csv(
    bytes: &[u8],
    meta: &FileMeta,
    options: &CsvOptions,
) -> Result<Parsed, Error> {
    let delimiter = options.delimiter.unwrap_or_else(|| sniff_delimiter(bytes));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(delimiter)
        .from_reader(bytes);

    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| csv_error(&e))?;
        let line = record.position().map_or(0, |p| p.line());
        let fields: Vec<String> = record
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_owned())
            .collect();
        if fields.iter().all(String::is_empty) {
            continue;
        }
        rows.push((line, fields));
    }

    let header = take_header(&mut rows);
    let layout = choose_layout(header.as_deref(), &rows, options.column.as_ref())?;
    let mut list = ListEvent::new(meta, rows.len());
    for (line, fields) in rows {
        add_row(&mut list, &layout, line, &fields);
    }
    list.finish("CSV file")
}

fn csv_error(e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::Line {
        line,
        message: format!("invalid CSV: {e}"),
    }
}

fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let line = bytes
        .split(|&b| b == b'\n')
        .find(|l| !l.starts_with(b"#") && !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(b"");
    let count = |d: u8| line.iter().filter(|&&b| b == d).count();
    [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|&d| count(d))
        .filter(|&d| count(d) > 0)
        .unwrap_or(b',')
}

/// Removes and returns the first row when none of its fields is an indicator.
fn take_header(rows: &mut Vec<(u64, Vec<String>)>) -> Option<Vec<String>> {
    let (_, first) = rows.first()?;
    let looks_like_data = first.iter().any(|f| guess_type(f).is_ok());
    if looks_like_data {
        return None;
    }
    Some(
        rows.remove(0)
            .1
            .into_iter()
            .map(|f| f.to_ascii_lowercase())
            .collect(),
    )
}

enum Layout {
    /// Values from one column, their type guessed.
    Column(usize),
    /// MISP's CSV export: typed rows.
    Misp {
        type_col: usize,
        value_col: usize,
        category: Option<usize>,
        to_ids: Option<usize>,
        comment: Option<usize>,
    },
}

fn choose_layout(
    header: Option<&[String]>,
    rows: &[(u64, Vec<String>)],
    column: Option<&ColumnSpec>,
) -> Result<Layout, Error> {
    let find = |name: &str| header.and_then(|h| h.iter().position(|c| c == name));
    match column {
        Some(ColumnSpec::Index(i)) => return Ok(Layout::Column(*i)),
        Some(ColumnSpec::Name(name)) => {
            let wanted = name.to_ascii_lowercase();
            return find(&wanted)
                .map(Layout::Column)
                .ok_or_else(|| Error::Invalid {
                    format: "CSV file",
                    message: format!(
                    "no column named `{name}` in the header ({}); pass --csv-column with a name \
                     from the header or a column number",
                    header.map(|h| h.join(", ")).unwrap_or_else(|| "no header row".into())
                ),
                });
        }
        None => {}
    }
    if let (Some(type_col), Some(value_col)) = (find("type"), find("value")) {
        return Ok(Layout::Misp {
            type_col,
            value_col,
            category: find("category"),
            to_ids: find("to_ids"),
            comment: find("comment"),
        });
    }
    if let Some(i) = VALUE_HEADERS.iter().find_map(|h| find(h)) {
        return Ok(Layout::Column(i));
    }
    // Otherwise the column where most sampled rows hold an indicator.
    let width = rows
        .iter()
        .take(50)
        .map(|(_, f)| f.len())
        .max()
        .unwrap_or(0);
    let score = |i: usize| {
        rows.iter()
            .take(50)
            .filter(|(_, f)| f.get(i).is_some_and(|v| guess_type(v).is_ok()))
            .count()
    };
    let best = (0..width).max_by_key(|&i| (score(i), std::cmp::Reverse(i)));
    Ok(Layout::Column(best.unwrap_or(0)))
}

fn add_row(list: &mut ListEvent, layout: &Layout, line: u64, fields: &[String]) {
    let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
    match *layout {
        Layout::Column(i) => {
            let value = get(i);
            if fields.len() <= i {
                let reason = format!(
                    "row has {} fields, so column {} is missing",
                    fields.len(),
                    i + 1
                );
                return list.reject(line, value, reason);
            }
            match guess_type(value) {
                Ok((t, v)) => {
                    list.add(t, v, None);
                }
                Err(e) => list.reject(line, value, e.0),
            }
        }
        Layout::Misp {
            type_col,
            value_col,
            comment,
            ..
        } => {
            let (type_name, value) = (get(type_col), get(value_col));
            match normalize_value(type_name, value) {
                Ok(v) if crate::types::type_info(type_name).is_some() => {
                    if list.add(type_name, v, comment.map(|c| get(c).to_owned())) {
                        apply_misp_columns(list, layout, fields);
                    }
                }
                Ok(_) => list.reject(line, value, format!("unknown attribute type `{type_name}`")),
                Err(e) => list.reject(line, value, e.0),
            }
        }
    }
}

/// Copies category and `to_ids` from a MISP CSV row onto the attribute just added.
fn apply_misp_columns(list: &mut ListEvent, layout: &Layout, fields: &[String]) {
    let Layout::Misp {
        category, to_ids, ..
    } = *layout
    else {
        return;
    };
    let Some(attribute) = list.last_attribute() else {
        return;
    };
    if let Some(c) = category
        .and_then(|c| fields.get(c))
        .filter(|c| !c.is_empty())
    {
        let allowed = crate::types::type_info(&attribute.r#type)
            .is_some_and(|i| i.categories.iter().any(|x| x == c));
        if allowed {
            attribute.category = Some(c.clone());
        }
    }
    if let Some(flag) = to_ids.and_then(|c| fields.get(c)) {
        attribute.to_ids = Some(matches!(flag.to_ascii_lowercase().as_str(), "1" | "true"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            name: "x.csv".into(),
            source_key: "/x.csv".into(),
            mtime: 0,
        }
    }

    fn parse(text: &str, column: Option<&str>) -> Parsed {
        let options = CsvOptions {
            column: column.map(|c| c.parse().unwrap()),
            delimiter: None,
        };
        parse_csv(text.as_bytes(), &meta(), &options).unwrap()
    }

    #[test]
    fn header_names_the_column() {
        let text = "# banner\nfirst_seen,sha256_hash,reporter\n\
                    2024-01-01,E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855,x\n";
        let parsed = parse(text, None);
        let attributes = &parsed.events[0].event.attributes;
        assert_eq!(attributes.len(), 1);
        assert_eq!(attributes[0].r#type, "sha256");
    }

    #[test]
    fn column_by_number_and_name() {
        let text =
            "uuid,md5\nd177856e-6e46-44ee-8eb5-83ef1c7452c7,d15b9e575525346a5e304ae5b3a35d64\n";
        assert_eq!(
            parse(text, Some("2")).events[0].event.attributes[0].r#type,
            "md5"
        );
        assert_eq!(parse(text, Some("md5")).events[0].event.attributes.len(), 1);
        let options = CsvOptions {
            column: Some("nope".parse().unwrap()),
            delimiter: None,
        };
        assert!(parse_csv(text.as_bytes(), &meta(), &options).is_err());
    }

    #[test]
    fn misp_csv_export_keeps_types() {
        let text = "uuid,event_id,category,type,value,comment,to_ids\n\
                    a,1,Payload delivery,imphash,68F013D7437AA653A8A98A05807AFEB1,c,0\n";
        let parsed = parse(text, None);
        let attribute = &parsed.events[0].event.attributes[0];
        assert_eq!(attribute.r#type, "imphash");
        assert_eq!(attribute.to_ids, Some(false));
        assert_eq!(attribute.comment.as_deref(), Some("c"));
    }

    #[test]
    fn malformed_csv_fails_whole_file() {
        let options = CsvOptions::default();
        let text = "name,size\n\"unterminated,1\nother,2\n";
        let err = parse_csv(text.as_bytes(), &meta(), &options).unwrap_err();
        assert!(
            err.to_string()
                .contains("check that the file is a CSV file"),
            "{err}"
        );
        let err = parse_csv(b"a;b\nc;d\n", &meta(), &options).unwrap_err();
        assert!(err.to_string().contains("none of its"), "{err}");
    }
}
