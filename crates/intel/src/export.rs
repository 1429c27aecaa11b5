//! Exports in MISP's formats: `misp-json` (the events as imported, in a `response`
//! list), `csv` (MISP's attribute CSV columns) and `text` (one value per line).

use std::io::Write;

use rusqlite::params_from_iter;

use crate::store::Store;
use crate::Error;

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    MispJson,
    Csv,
    Text,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "misp-json" => Ok(ExportFormat::MispJson),
            "csv" => Ok(ExportFormat::Csv),
            "text" => Ok(ExportFormat::Text),
            _ => Err(format!(
                "unknown export format `{s}`; use misp-json, csv or text"
            )),
        }
    }
}

/// Attribute selection of the `csv` and `text` exports.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only these attribute types; empty means all.
    pub types: Vec<String>,
    /// Also attributes without `to_ids`; by default only detection indicators are exported,
    /// as in MISP's CSV and text exports.
    pub include_non_ids: bool,
}

/// MISP's CSV export header.
pub const CSV_HEADER: [&str; 13] = [
    "uuid",
    "event_id",
    "category",
    "type",
    "value",
    "comment",
    "to_ids",
    "date",
    "object_relation",
    "attribute_tag",
    "object_uuid",
    "object_name",
    "object_meta_category",
];

/// Writes the export to `out`; returns how many events (misp-json) or rows were written.
pub fn export(
    store: &Store,
    format: ExportFormat,
    filter: &ExportFilter,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    match format {
        ExportFormat::MispJson => export_json(store, out),
        ExportFormat::Csv => export_csv(store, filter, out),
        ExportFormat::Text => export_text(store, filter, out),
    }
}

fn export_json(store: &Store, out: &mut dyn Write) -> Result<u64, Error> {
    let mut count = 0u64;
    out.write_all(b"{\"response\": [").map_err(Error::Write)?;
    store.for_each_event(|row| {
        let sep: &[u8] = if count == 0 { b"\n" } else { b",\n" };
        out.write_all(sep).map_err(Error::Write)?;
        out.write_all(b"{\"Event\": ").map_err(Error::Write)?;
        out.write_all(row.json.as_bytes()).map_err(Error::Write)?;
        out.write_all(b"}").map_err(Error::Write)?;
        count += 1;
        Ok(())
    })?;
    out.write_all(b"\n]}\n").map_err(Error::Write)?;
    Ok(count)
}

fn attribute_query(filter: &ExportFilter, columns: &str) -> String {
    let mut sql = format!(
        "SELECT {columns} FROM attributes a JOIN events e ON e.id = a.event_id
         LEFT JOIN objects o ON o.id = a.object_id WHERE a.deleted = 0"
    );
    if !filter.include_non_ids {
        sql.push_str(" AND a.to_ids = 1");
    }
    if !filter.types.is_empty() {
        let marks = vec!["?"; filter.types.len()].join(", ");
        sql.push_str(&format!(" AND a.type IN ({marks})"));
    }
    sql
}

fn export_csv(store: &Store, filter: &ExportFilter, out: &mut dyn Write) -> Result<u64, Error> {
    let sql = attribute_query(
        filter,
        "a.uuid, e.id, a.category, a.type, a.value, a.comment, a.to_ids, a.timestamp,
         a.object_relation, a.tags, o.uuid, o.name, o.meta_category",
    ) + " ORDER BY a.id";
    let mut writer = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| Error::Write(std::io::Error::other(e));
    writer.write_record(CSV_HEADER).map_err(csv_err)?;
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&filter.types))?;
    let mut count = 0;
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> Result<String, rusqlite::Error> {
            Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
        };
        let tags: Vec<String> = serde_json::from_str(&text(9)?).unwrap_or_default();
        let record = [
            text(0)?,
            r.get::<_, i64>(1)?.to_string(),
            text(2)?,
            text(3)?,
            text(4)?,
            text(5)?,
            r.get::<_, i64>(6)?.to_string(),
            r.get::<_, Option<i64>>(7)?
                .map(|t| t.to_string())
                .unwrap_or_default(),
            text(8)?,
            tags.join(","),
            text(10)?,
            text(11)?,
            text(12)?,
        ];
        writer.write_record(&record).map_err(csv_err)?;
        count += 1;
    }
    writer.flush().map_err(Error::Write)?;
    Ok(count)
}

fn export_text(store: &Store, filter: &ExportFilter, out: &mut dyn Write) -> Result<u64, Error> {
    let sql = attribute_query(filter, "DISTINCT a.value") + " ORDER BY a.value";
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(&filter.types))?;
    let mut count = 0;
    while let Some(r) = rows.next()? {
        let value: String = r.get(0)?;
        writeln!(out, "{value}").map_err(Error::Write)?;
        count += 1;
    }
    Ok(count)
}
