//! Fuzz target for the rule file reader: any bytes must load or fail with an error.
//!
//! Run with `cargo fuzz run rules_xml` from the repository root. The input is loaded
//! alone and after the default rules, so that `if_sid`, `if_group` and `overwrite`
//! links to default rules are exercised too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rules::ruleset::DEFAULT_FILES;
use rules::Ruleset;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = rules::xml::parse(&text);
    let _ = Ruleset::from_sources(&[("fuzz.xml".to_string(), text.clone())]);

    let mut files: Vec<(String, String)> = DEFAULT_FILES
        .iter()
        .map(|(name, body)| (name.to_string(), body.to_string()))
        .collect();
    files.push(("fuzz.xml".to_string(), text));
    let _ = Ruleset::from_sources(&files);
});
