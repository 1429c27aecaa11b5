//! Checks of the files shipped for the Wazuh side: the bridge rules, the integration
//! block, and reading a MISP `restSearch` response of the documented shape.

use std::fs;
use std::path::Path;

use bridge::lookup::parse_response;
use bridge::options::Options;

const WAZUH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wazuh");
const RULES_FILE: &str = "iocwatch_bridge_rules.xml";

fn read(name: &str) -> String {
    fs::read_to_string(Path::new(WAZUH_DIR).join(name)).expect("shipped file")
}

/// Wazuh rule files may hold several root elements, so they are checked inside one.
fn parse_xml(text: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not well-formed XML: {e}"))
}

fn rule_ids(text: &str) -> Vec<u32> {
    let wrapped = format!("<root>{text}</root>");
    let document = parse_xml(&wrapped);
    document
        .descendants()
        .filter(|n| n.has_tag_name("rule"))
        .map(|n| {
            n.attribute("id")
                .expect("rule id")
                .parse()
                .expect("numeric id")
        })
        .collect()
}

#[test]
fn rules_are_well_formed_with_reserved_ids() {
    let ids = rule_ids(&read(RULES_FILE));
    assert!(!ids.is_empty());
    for id in &ids {
        assert!(
            (111100..=111119).contains(id),
            "rule {id} outside 111100-111119"
        );
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "repeated rule id");
}

#[test]
fn rules_load_beside_default_rules() {
    let mut files: Vec<(String, String)> = rules::ruleset::DEFAULT_FILES
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    files.push((RULES_FILE.to_string(), read(RULES_FILE)));

    let ruleset = rules::Ruleset::from_sources(&files).expect("rules load");
    let match_rule = ruleset.rule(111101).expect("match rule");
    assert_eq!(match_rule.level, 12);
    assert!(ruleset.rule(111104).is_some());
}

#[test]
fn integration_block_is_usable() {
    let text = read("ossec-integration.xml");
    let document = parse_xml(&text);
    let block = document.root_element();
    assert_eq!(block.tag_name().name(), "integration");

    let child = |name: &str| {
        block
            .children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or_else(|| panic!("missing <{name}>"))
    };
    assert_eq!(child("name"), "custom-iocwatch");
    assert_eq!(child("alert_format"), "json");
    let options: Options =
        serde_json::from_str(child("options")).expect("options the bridge accepts");
    assert_eq!(options.cache_ttl_secs, Some(900));
}

#[test]
fn documented_response_shape_is_read() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/misp/restsearch-response.json"
    );
    let body = fs::read_to_string(path).expect("fixture");
    let found = parse_response(&body)
        .expect("valid answer")
        .expect("a detection");

    assert_eq!(
        found.attribute_id.as_deref(),
        Some("12346"),
        "to_ids false is skipped"
    );
    assert_eq!(found.event_id.as_deref(), Some("1338"));
    assert_eq!(found.event_info.as_deref(), Some("Loader campaign"));
    assert_eq!(found.threat_level_id.as_deref(), Some("2"));
    assert_eq!(found.category.as_deref(), Some("Payload installation"));
    assert_eq!(found.comment.as_deref(), Some("dropped by the loader"));
    assert_eq!(found.tags, ["misp-galaxy:malpedia=\"Loader\"", "tlp:green"]);
    assert_eq!(found.matches, 1);
}
