//! Fuzzes the CSV and freetext list readers, type guessing and value normalisation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use misp::{parse_bytes, CsvOptions, FileMeta, Format};

fuzz_target!(|data: &[u8]| {
    let meta = FileMeta::default();
    let csv = CsvOptions::default();
    let _ = parse_bytes(data, Some(Format::Csv), &meta, &csv);
    let _ = parse_bytes(data, Some(Format::Freetext), &meta, &csv);
    let by_name = CsvOptions {
        column: Some(misp::import::ColumnSpec::Name("sha256".into())),
        delimiter: Some(b';'),
    };
    let _ = parse_bytes(data, Some(Format::Csv), &meta, &by_name);
    let _ = misp::import::feed::parse_hashes_csv(data);
});
