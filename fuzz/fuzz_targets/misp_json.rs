//! Fuzzes the MISP event JSON reader: detection, wrappers, the event model and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use misp::{parse_bytes, CsvOptions, FileMeta, Format};

fuzz_target!(|data: &[u8]| {
    let meta = FileMeta::default();
    let csv = CsvOptions::default();
    let _ = parse_bytes(data, None, &meta, &csv);
    let _ = parse_bytes(data, Some(Format::MispJson), &meta, &csv);
    let _ = parse_bytes(data, Some(Format::Warninglist), &meta, &csv);
    let _ = misp::import::feed::parse_manifest(&String::from_utf8_lossy(data));
});
