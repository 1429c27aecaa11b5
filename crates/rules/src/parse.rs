//! Reads rule files: `<group name>` roots holding `<rule>` elements (Wazuh 4.x syntax).
//!
//! Elements iocwatch does not implement are rejected by name instead of being ignored,
//! so a rule never silently matches more than its author meant.

use crate::error::Error;
use crate::event::{FieldKey, DECODER_NAMES};
use crate::pattern::{Pattern, PatternType};
use crate::rule::{
    parse_description, FieldCheck, Rule, RuleOptions, RuleSource, DEFAULT_TIMEFRAME,
};
use crate::xml::{self, Node};

/// Wazuh rule elements that iocwatch rejects because it does not implement them.
const UNSUPPORTED: [&str; 22] = [
    "srcip",
    "dstip",
    "srcport",
    "dstport",
    "user",
    "url",
    "id",
    "data",
    "extra_data",
    "hostname",
    "program_name",
    "status",
    "protocol",
    "system_name",
    "action",
    "list",
    "if_level",
    "if_fts",
    "if_matched_regex",
    "time",
    "weekday",
    "check_diff",
];

/// Rule elements (and `same_*`/`different_*` prefixes) that are left for later versions.
fn unsupported_message(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let known = UNSUPPORTED.contains(&lower.as_str())
        || lower.starts_with("same_")
        || lower.starts_with("different_")
        || lower.starts_with("not_same_")
        || matches!(
            lower.as_str(),
            "ignore" | "check_if_ignored" | "global_frequency" | "info" | "cve" | "var"
        );
    known.then(|| {
        format!("`<{name}>` is a Wazuh rule element that iocwatch does not support: remove it")
    })
}

/// Parses one rule file. `file` names it in errors.
pub fn parse_file(file: &str, text: &str) -> Result<Vec<Rule>, Error> {
    let roots = xml::parse(text)
        .and_then(xml::apply_variables)
        .map_err(|e| Error::rule(file, e.line, &e.element, e.message))?;
    let mut rules = Vec::new();
    for root in &roots {
        if !root.name.eq_ignore_ascii_case("group") {
            return Err(Error::rule(
                file,
                root.line,
                &root.name,
                "only `<group name=\"...\">` (and `<var>`) may be at the top of a rule file",
            ));
        }
        parse_group(file, root, &mut rules)?;
    }
    Ok(rules)
}

fn parse_group(file: &str, group: &Node, rules: &mut Vec<Rule>) -> Result<(), Error> {
    let name = match group.attrs.as_slice() {
        [(key, value)] if key.eq_ignore_ascii_case("name") => value.as_str(),
        _ => {
            return Err(Error::rule(
                file,
                group.line,
                "group",
                "a root group takes exactly one attribute, `name`",
            ))
        }
    };
    if group.children.is_empty() {
        return Err(Error::rule(
            file,
            group.line,
            "group",
            "group without any rule",
        ));
    }
    let groups = split_groups(name);
    for child in &group.children {
        if !child.name.eq_ignore_ascii_case("rule") {
            return Err(Error::rule(
                file,
                child.line,
                &child.name,
                "a group holds only `<rule>` elements",
            ));
        }
        rules.push(parse_rule(file, child, &groups)?);
    }
    Ok(())
}

fn split_groups(text: &str) -> Vec<String> {
    text.split(',')
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a number attribute or element text, naming the element on failure.
fn number<T: std::str::FromStr>(
    file: &str,
    node: &Node,
    label: &str,
    value: &str,
    max_digits: usize,
) -> Result<T, Error> {
    let value = value.trim();
    if value.is_empty() || value.len() > max_digits || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::rule(
            file,
            node.line,
            &node.name,
            format!("{label} `{value}` must be a number of at most {max_digits} digits"),
        ));
    }
    value.parse().map_err(|_| {
        Error::rule(
            file,
            node.line,
            &node.name,
            format!("{label} `{value}` is out of range"),
        )
    })
}

fn empty_rule(file: &str, node: &Node, groups: &[String]) -> Rule {
    Rule {
        id: 0,
        level: 0,
        description: String::new(),
        description_segments: Vec::new(),
        groups: groups.to_vec(),
        decoded_as: None,
        if_sid: Vec::new(),
        if_group: Vec::new(),
        if_matched_sid: None,
        if_matched_group: None,
        frequency: None,
        timeframe: DEFAULT_TIMEFRAME,
        match_pattern: None,
        regex: None,
        location: None,
        fields: Vec::new(),
        mitre: Vec::new(),
        options: RuleOptions::default(),
        noalert: false,
        overwrite: false,
        source: RuleSource {
            file: file.to_string(),
            line: node.line,
            parent_line: node.line,
        },
    }
}

fn parse_rule(file: &str, node: &Node, groups: &[String]) -> Result<Rule, Error> {
    let mut rule = empty_rule(file, node, groups);
    read_rule_attributes(file, node, &mut rule)?;
    if node.children.is_empty() {
        return Err(Error::rule(
            file,
            node.line,
            "rule",
            format!(
                "rule {} has no conditions or description: add at least one element",
                rule.id
            ),
        ));
    }

    let mut texts = PatternTexts::default();
    for child in &node.children {
        read_element(file, child, &mut rule, &mut texts)?;
    }
    texts.compile(file, &mut rule)?;
    check_rule(file, node, &rule)?;
    rule.description_segments = parse_description(&rule.description);
    Ok(rule)
}

fn read_rule_attributes(file: &str, node: &Node, rule: &mut Rule) -> Result<(), Error> {
    let mut id = None;
    let mut level = None;
    for (key, value) in &node.attrs {
        match key.to_ascii_lowercase().as_str() {
            "id" => id = Some(number::<u32>(file, node, "rule id", value, 6)?),
            "level" => level = Some(number::<u8>(file, node, "level", value, 2)?),
            "frequency" => rule.frequency = Some(number(file, node, "frequency", value, 4)?),
            "timeframe" => rule.timeframe = number(file, node, "timeframe", value, 5)?,
            "overwrite" => rule.overwrite = yes_no(file, node, key, value)?,
            "noalert" => {
                rule.noalert = match value.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(Error::rule(file, node.line, "rule", "noalert must be 0 or 1")),
                }
            }
            other => {
                return Err(Error::rule(
                    file,
                    node.line,
                    "rule",
                    format!(
                        "unknown attribute `{other}`: use id, level, frequency, timeframe, overwrite or noalert"
                    ),
                ))
            }
        }
    }
    let (Some(id), Some(level)) = (id, level) else {
        return Err(Error::rule(
            file,
            node.line,
            "rule",
            "a rule needs both `id` and `level` attributes",
        ));
    };
    if id == 0 {
        return Err(Error::rule(
            file,
            node.line,
            "rule",
            "rule id must be 1 to 999999",
        ));
    }
    if level > 16 {
        return Err(Error::rule(
            file,
            node.line,
            "rule",
            format!("level {level} is out of range 0 to 16"),
        ));
    }
    if let Some(f) = rule.frequency {
        if !(2..=9999).contains(&f) {
            return Err(Error::rule(
                file,
                node.line,
                "rule",
                format!("frequency {f} is out of range 2 to 9999"),
            ));
        }
    }
    rule.id = id;
    rule.level = level;
    Ok(())
}

fn yes_no(file: &str, node: &Node, key: &str, value: &str) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(Error::rule(
            file,
            node.line,
            &node.name,
            format!("`{key}` is `{value}`: use yes or no"),
        )),
    }
}

/// Pattern texts gathered over a rule's elements; Wazuh joins repeated `<match>` or
/// `<regex>` texts into one pattern.
#[derive(Default)]
struct PatternTexts {
    match_text: Option<(String, PatternType, bool, u32)>,
    regex_text: Option<(String, PatternType, bool, u32)>,
}

impl PatternTexts {
    fn compile(self, file: &str, rule: &mut Rule) -> Result<(), Error> {
        if let Some((text, kind, negate, line)) = self.match_text {
            rule.match_pattern = Some(compile(file, line, "match", &text, kind, negate)?);
        }
        if let Some((text, kind, negate, line)) = self.regex_text {
            rule.regex = Some(compile(file, line, "regex", &text, kind, negate)?);
        }
        Ok(())
    }
}

fn compile(
    file: &str,
    line: u32,
    element: &str,
    text: &str,
    kind: PatternType,
    negate: bool,
) -> Result<Pattern, Error> {
    Pattern::compile(text, kind, negate).map_err(|e| Error::rule(file, line, element, e))
}

/// Reads `type=` and `negate=`, plus `name=` when `with_name`, and rejects others.
fn pattern_attributes(
    file: &str,
    node: &Node,
    default: PatternType,
    with_name: bool,
) -> Result<(PatternType, bool), Error> {
    let mut kind = default;
    let mut negate = false;
    for (key, value) in &node.attrs {
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                kind = PatternType::parse(value).ok_or_else(|| {
                    Error::rule(
                        file,
                        node.line,
                        &node.name,
                        format!("type `{value}` is unknown: use osmatch, osregex or pcre2"),
                    )
                })?
            }
            "negate" => negate = yes_no(file, node, key, value)?,
            "name" if with_name => {}
            other => {
                return Err(Error::rule(
                    file,
                    node.line,
                    &node.name,
                    format!("unknown attribute `{other}`"),
                ))
            }
        }
    }
    Ok((kind, negate))
}

fn no_attributes(file: &str, node: &Node) -> Result<(), Error> {
    match node.attrs.first() {
        Some((key, _)) => Err(Error::rule(
            file,
            node.line,
            &node.name,
            format!("unknown attribute `{key}`: this element takes none"),
        )),
        None => Ok(()),
    }
}

fn read_element(
    file: &str,
    node: &Node,
    rule: &mut Rule,
    texts: &mut PatternTexts,
) -> Result<(), Error> {
    let name = node.name.to_ascii_lowercase();
    match name.as_str() {
        "match" | "regex" => {
            let default = if name == "match" {
                PatternType::OsMatch
            } else {
                PatternType::OsRegex
            };
            let (kind, negate) = pattern_attributes(file, node, default, false)?;
            let slot = if name == "match" {
                &mut texts.match_text
            } else {
                &mut texts.regex_text
            };
            match slot {
                Some((text, ..)) => text.push_str(&node.text),
                None => *slot = Some((node.text.clone(), kind, negate, node.line)),
            }
        }
        "field" => rule.fields.push(read_field(file, node)?),
        "location" => {
            let (kind, negate) = pattern_attributes(file, node, PatternType::OsMatch, false)?;
            rule.location = Some(compile(
                file, node.line, "location", &node.text, kind, negate,
            )?);
        }
        "mitre" => read_mitre(file, node, rule)?,
        _ => read_simple_element(file, node, &name, rule)?,
    }
    Ok(())
}

/// Elements without attributes that [`read_simple_element`] reads.
const SIMPLE_ELEMENTS: [&str; 9] = [
    "description",
    "group",
    "decoded_as",
    "if_sid",
    "if_group",
    "if_matched_sid",
    "if_matched_group",
    "options",
    "category",
];

fn read_simple_element(file: &str, node: &Node, name: &str, rule: &mut Rule) -> Result<(), Error> {
    if !SIMPLE_ELEMENTS.contains(&name) {
        let message = unsupported_message(name)
            .unwrap_or_else(|| format!("unknown element `<{}>` in a rule", node.name));
        return Err(Error::rule(file, node.line, &node.name, message));
    }
    no_attributes(file, node)?;
    let text = node.text.trim();
    if name.starts_with("if_") {
        rule.source.parent_line = node.line;
    }
    match name {
        "description" => {
            let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
            rule.description.push_str(&one_line);
        }
        "group" => rule.groups.extend(split_groups(text)),
        "decoded_as" => {
            if !DECODER_NAMES.contains(&text) {
                return Err(Error::rule(
                    file,
                    node.line,
                    "decoded_as",
                    format!(
                        "decoder `{text}` is unknown: use one of {}",
                        DECODER_NAMES.join(", ")
                    ),
                ));
            }
            rule.decoded_as = Some(text.to_string());
        }
        "if_sid" => {
            for id in text.split([',', ' ']).filter(|s| !s.trim().is_empty()) {
                rule.if_sid.push(number(file, node, "if_sid", id, 6)?);
            }
        }
        "if_group" => rule.if_group.extend(
            text.split('|')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string),
        ),
        "if_matched_sid" => {
            rule.if_matched_sid = Some(number(file, node, "if_matched_sid", text, 6)?)
        }
        "if_matched_group" => rule.if_matched_group = Some(text.to_string()),
        "options" => read_option(file, node, text, &mut rule.options)?,
        // Wazuh's `<category>` selects a decoder family; file events have one family.
        _ => {}
    }
    Ok(())
}

fn read_field(file: &str, node: &Node) -> Result<FieldCheck, Error> {
    let (kind, negate) = pattern_attributes(file, node, PatternType::OsRegex, true)?;
    let name = node
        .attr("name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::rule(
                file,
                node.line,
                "field",
                "`<field>` needs a `name` attribute",
            )
        })?;
    let key = FieldKey::parse(name);
    if key.is_none() {
        tracing::warn!(
            file,
            line = node.line,
            field = name,
            "rule field is not a known file event field"
        );
    }
    Ok(FieldCheck {
        name: name.to_string(),
        key,
        pattern: compile(file, node.line, "field", &node.text, kind, negate)?,
    })
}

fn read_mitre(file: &str, node: &Node, rule: &mut Rule) -> Result<(), Error> {
    no_attributes(file, node)?;
    for child in &node.children {
        if !child.name.eq_ignore_ascii_case("id") {
            return Err(Error::rule(
                file,
                child.line,
                &child.name,
                "`<mitre>` takes `<id>T1234</id>` elements only",
            ));
        }
        let id = child.text.trim();
        let valid = id.len() >= 5
            && id.starts_with('T')
            && id[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !valid {
            return Err(Error::rule(
                file,
                child.line,
                "id",
                format!("`{id}` is not an ATT&CK technique id such as T1204.002"),
            ));
        }
        rule.mitre.push(id.to_string());
    }
    Ok(())
}

fn read_option(
    file: &str,
    node: &Node,
    text: &str,
    options: &mut RuleOptions,
) -> Result<(), Error> {
    match text {
        "alert_by_email" => options.email = Some(true),
        "no_email_alert" => options.email = Some(false),
        "log_alert" => options.log = Some(true),
        "no_log" => options.log = Some(false),
        "no_full_log" => options.no_full_log = true,
        "no_counter" => options.no_counter = true,
        "no_ar" => options.no_ar = true,
        other => {
            return Err(Error::rule(
                file,
                node.line,
                "options",
                format!(
                    "option `{other}` is unknown: use alert_by_email, no_email_alert, log_alert, no_log, no_full_log, no_counter or no_ar"
                ),
            ))
        }
    }
    Ok(())
}

fn check_rule(file: &str, node: &Node, rule: &Rule) -> Result<(), Error> {
    if rule.frequency.is_some() && !rule.is_stateful() {
        return Err(Error::rule(
            file,
            node.line,
            "rule",
            format!(
                "rule {} has `frequency` but nothing to count: add `<if_matched_sid>` or `<if_matched_group>`",
                rule.id
            ),
        ));
    }
    if rule.if_matched_sid.is_some() && rule.if_matched_group.is_some() {
        return Err(Error::rule(
            file,
            node.line,
            "rule",
            format!(
                "rule {} has both if_matched_sid and if_matched_group: keep one",
                rule.id
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(xml: &str) -> Rule {
        let mut rules = parse_file("t.xml", xml).unwrap();
        assert_eq!(rules.len(), 1);
        rules.remove(0)
    }

    fn error(xml: &str) -> Error {
        parse_file("t.xml", xml).unwrap_err()
    }

    #[test]
    fn reads_a_full_rule() {
        let r = one(r#"<group name="a,b,">
  <rule id="111001" level="5" frequency="3" timeframe="60">
    <if_sid>1, 2 3</if_sid>
    <if_matched_sid>2</if_matched_sid>
    <decoded_as>syscheck_new_entry</decoded_as>
    <field name="file" type="pcre2" negate="yes">^/tmp</field>
    <match>added</match>
    <description>File $(file)
      added</description>
    <mitre><id>T1204.002</id></mitre>
    <group>c,</group>
    <options>no_full_log</options>
  </rule>
</group>"#);
        assert_eq!(r.id, 111001);
        assert_eq!(r.if_sid, vec![1, 2, 3]);
        assert_eq!(r.groups, vec!["a", "b", "c"]);
        assert_eq!(r.description, "File $(file) added");
        assert_eq!(r.frequency, Some(3));
        assert_eq!(r.timeframe, 60);
        assert!(r.fields[0].pattern.negate);
        assert!(r.options.no_full_log);
        assert_eq!(r.source.line, 2);
    }

    #[test]
    fn error_names_file_line_and_element() {
        let err = error("<group name=\"x\">\n<rule id=\"1\" level=\"3\">\n  <feild>x</feild>\n</rule>\n</group>");
        let loc = err.location().unwrap();
        assert_eq!(loc.file, "t.xml");
        assert_eq!(loc.line, 3);
        assert_eq!(loc.element, "feild");
        assert!(err.to_string().contains("unknown element"), "{err}");
    }

    #[test]
    fn rejects_invalid_attributes() {
        for (xml, needle) in [
            (
                r#"<group name="x"><rule id="1" level="17"><match>a</match></rule></group>"#,
                "level",
            ),
            (
                r#"<group name="x"><rule id="1234567" level="1"><match>a</match></rule></group>"#,
                "rule id",
            ),
            (
                r#"<group name="x"><rule level="1"><match>a</match></rule></group>"#,
                "id",
            ),
            (
                r#"<group name="x"><rule id="1" level="1" frequency="1"><if_matched_sid>2</if_matched_sid></rule></group>"#,
                "frequency",
            ),
            (
                r#"<group name="x"><rule id="1" level="1" frequency="3"><match>a</match></rule></group>"#,
                "nothing to count",
            ),
            (
                r#"<group name="x"><rule id="1" level="1" bogus="3"><match>a</match></rule></group>"#,
                "bogus",
            ),
        ] {
            let err = error(xml);
            assert!(err.to_string().contains(needle), "{xml}: {err}");
        }
    }

    #[test]
    fn rejects_bad_patterns_with_element() {
        let err = error(
            "<group name=\"x\">\n<rule id=\"1\" level=\"3\">\n<regex>\\q</regex></rule></group>",
        );
        let loc = err.location().unwrap();
        assert_eq!((loc.line, loc.element.as_str()), (3, "regex"));
        let err = error("<group name=\"x\"><rule id=\"1\" level=\"3\"><field name=\"md5\" type=\"pcre2\">(</field></rule></group>");
        assert_eq!(err.location().unwrap().element, "field");
    }

    #[test]
    fn rejects_unsupported_wazuh_elements() {
        let err = error(
            r#"<group name="x"><rule id="1" level="3"><srcip>1.2.3.4</srcip></rule></group>"#,
        );
        assert!(err.to_string().contains("does not support"), "{err}");
    }

    #[test]
    fn rejects_unknown_decoder() {
        let err = error(
            r#"<group name="x"><rule id="1" level="3"><decoded_as>json</decoded_as></rule></group>"#,
        );
        assert!(err.to_string().contains("syscheck_new_entry"), "{err}");
    }

    #[test]
    fn repeated_match_elements_are_joined() {
        let r = one(
            r#"<group name="x"><rule id="1" level="3"><match>ab</match><match>cd</match></rule></group>"#,
        );
        assert_eq!(r.match_pattern.unwrap().source, "abcd");
    }
}
