//! Fuzzes the STIX 2 bundle importer and the pattern parser on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use misp::{parse_bytes, CsvOptions, FileMeta, Format};

fuzz_target!(|data: &[u8]| {
    let _ = parse_bytes(
        data,
        Some(Format::Stix2),
        &FileMeta::default(),
        &CsvOptions::default(),
    );
    if let Ok(pattern) = std::str::from_utf8(data) {
        let _ = misp::import::stix::pattern::parse_pattern(pattern);
    }
});
