//! One rule as loaded from XML, with its patterns compiled.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::event::{Event, FieldKey};
use crate::pattern::Pattern;

/// PCRE2 matches that gave up since the process started; each counts as no match.
static ABORTED_MATCHES: AtomicU64 = AtomicU64::new(0);
/// Rules already warned about, so that a pattern that gives up on every event logs once.
static WARNED_RULES: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Returns how many PCRE2 matches gave up (mostly at the backtracking limit) since the
/// process started. Each of them counted as the pattern not matching.
pub fn aborted_pcre2_matches() -> u64 {
    ABORTED_MATCHES.load(Ordering::Relaxed)
}

/// A `<field name="...">` condition.
#[derive(Debug, Clone)]
pub struct FieldCheck {
    pub name: String,
    pub(crate) key: Option<FieldKey>,
    pub pattern: Pattern,
}

/// A piece of a description: text, or a `$(field)` to fill from the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Text(String),
    Field(String, Option<FieldKey>),
}

/// `<options>` flags of a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleOptions {
    /// `alert_by_email` (true) or `no_email_alert` (false); unset follows the level.
    pub email: Option<bool>,
    /// `log_alert` (true) or `no_log` (false); unset follows the level.
    pub log: Option<bool>,
    /// `no_full_log`: the alert carries no `full_log`.
    pub no_full_log: bool,
    /// `no_counter`: the alert carries no `rule.firedtimes`.
    pub no_counter: bool,
    /// `no_ar`: accepted for compatibility; iocwatch runs no active responses.
    pub no_ar: bool,
}

/// Source position of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    pub file: String,
    /// Line of the `<rule>` element.
    pub line: u32,
    /// Line of the `<if_sid>`, `<if_group>` or `<if_matched_*>` element, for errors
    /// about the parent; the rule's line when it has none.
    pub parent_line: u32,
}

/// A loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: u32,
    /// 0 to 16; level 0 rules stop the evaluation without an alert.
    pub level: u8,
    /// The description as written, `$(field)` references included.
    pub description: String,
    pub(crate) description_segments: Vec<Segment>,
    /// Groups of the enclosing `<group name>` followed by the rule's own `<group>`.
    pub groups: Vec<String>,
    pub decoded_as: Option<String>,
    pub if_sid: Vec<u32>,
    /// Group names from `<if_group>` (`|` separates alternatives).
    pub if_group: Vec<String>,
    pub if_matched_sid: Option<u32>,
    pub if_matched_group: Option<String>,
    /// Events needed in `timeframe`, the current one included (`frequency=`).
    pub frequency: Option<u32>,
    /// Seconds that `frequency` counts over; Wazuh's default is 360.
    pub timeframe: u32,
    pub match_pattern: Option<Pattern>,
    pub regex: Option<Pattern>,
    pub location: Option<Pattern>,
    pub fields: Vec<FieldCheck>,
    /// ATT&CK technique ids from `<mitre><id>`.
    pub mitre: Vec<String>,
    pub options: RuleOptions,
    /// `noalert="1"`: the rule can match and lead to children but never alerts itself.
    pub noalert: bool,
    pub overwrite: bool,
    pub source: RuleSource,
}

/// Wazuh's default `timeframe` in seconds.
pub const DEFAULT_TIMEFRAME: u32 = 360;

impl Rule {
    /// Returns whether the rule counts previous events (`if_matched_sid` or `if_matched_group`).
    pub fn is_stateful(&self) -> bool {
        self.if_matched_sid.is_some() || self.if_matched_group.is_some()
    }

    /// Previous matching events needed besides the current one.
    pub(crate) fn previous_needed(&self) -> usize {
        self.frequency
            .map_or(1, |f| f.saturating_sub(1) as usize)
            .max(1)
    }

    /// Tests every condition that depends on the event alone (not on history).
    pub(crate) fn matches_event(&self, event: &Event) -> bool {
        if let Some(decoder) = &self.decoded_as {
            if decoder != event.decoder_name() {
                return false;
            }
        }
        if let Some(p) = &self.location {
            if !self.accepts(p, &event.location) {
                return false;
            }
        }
        if let Some(p) = &self.match_pattern {
            if !self.accepts(p, event.full_log()) {
                return false;
            }
        }
        if let Some(p) = &self.regex {
            if !self.accepts(p, event.full_log()) {
                return false;
            }
        }
        self.fields.iter().all(|check| {
            let value = check.key.as_ref().and_then(|k| event.field_by_key(k));
            // A missing field fails the rule even with negate="yes", as in Wazuh.
            value.is_some_and(|v| self.accepts(&check.pattern, &v))
        })
    }

    /// Tests `pattern` and applies `negate`, like [`Pattern::accepts`]. A PCRE2 match that
    /// gives up counts as no match, is counted, and is logged once per rule.
    fn accepts(&self, pattern: &Pattern, text: &str) -> bool {
        let found = match pattern.try_match(text) {
            Ok(found) => found,
            Err(aborted) => {
                self.note_aborted_match(pattern, &aborted);
                false
            }
        };
        found != pattern.negate
    }

    fn note_aborted_match(&self, pattern: &Pattern, aborted: &crate::pattern::MatchAborted) {
        let total = ABORTED_MATCHES.fetch_add(1, Ordering::Relaxed) + 1;
        if first_abort_of_rule(self.id) {
            tracing::warn!(
                rule_id = self.id,
                pattern = %pattern.source,
                error = %aborted.0,
                aborted_total = total,
                "pcre2 pattern gave up and counts as no match; later cases of this rule are only counted"
            );
        }
    }

    /// Fills `$(field)` references from the event; unknown or empty fields become "".
    pub fn render_description(&self, event: &Event) -> String {
        let mut out = String::with_capacity(self.description.len() + 32);
        for segment in &self.description_segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(_, Some(key)) => {
                    if let Some(v) = event.field_by_key(key) {
                        out.push_str(&v);
                    }
                }
                Segment::Field(_, None) => {}
            }
        }
        out
    }
}

/// Records that rule `id` had a PCRE2 match give up; returns true the first time only.
fn first_abort_of_rule(id: u32) -> bool {
    WARNED_RULES
        .lock()
        .map(|mut warned| warned.insert(id))
        .unwrap_or(false)
}

/// Splits a description into text and `$(field)` references, as Wazuh's
/// `ParseRuleComment`: a `$(` without a closing `)` stays as text.
pub(crate) fn parse_description(description: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = description;
    while let Some(start) = rest.find("$(") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            break;
        };
        if start > 0 {
            segments.push(Segment::Text(rest[..start].to_string()));
        }
        let name = &after[..end];
        segments.push(Segment::Field(name.to_string(), FieldKey::parse(name)));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_string()));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aborted_match_warns_once_per_rule() {
        // Rule ids far above those of the other tests in this process.
        assert!(first_abort_of_rule(4_000_000_001));
        assert!(!first_abort_of_rule(4_000_000_001));
        assert!(first_abort_of_rule(4_000_000_002));
    }

    #[test]
    fn description_segments() {
        let s = parse_description("File $(file) in $(misp.event_id)$(nope) end $(open");
        assert_eq!(s.len(), 6);
        assert_eq!(s[0], Segment::Text("File ".into()));
        assert!(matches!(&s[1], Segment::Field(n, Some(_)) if n == "file"));
        assert!(matches!(&s[4], Segment::Field(n, None) if n == "nope"));
        assert_eq!(s.last(), Some(&Segment::Text(" end $(open".into())));
    }
}
