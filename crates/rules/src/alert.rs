//! Alerts and their JSON document in the form of Wazuh 4.x `alerts.json`.
//!
//! Key order follows Wazuh 4.14 `Eventinfo_to_jsonstr` and `W_ParseJSON`: `timestamp`,
//! `rule`, `agent`, `manager`, `id`, `previous_output`, `full_log`, `syscheck`,
//! `decoder`, `data`, `location`. Groups named `pci_dss_*`, `gdpr_*`, `hipaa_*`,
//! `nist_800_53_*`, `tsc_*`, `gpg13_*` and `cis_*` move from `rule.groups` into
//! compliance arrays with the prefix removed, as Wazuh does.
//!
//! Intel enrichment goes under `data.misp`: Wazuh integrations put their fields under
//! `data.<integration>`, the Wazuh indexer template maps `data.*` dynamically, and the
//! community MISP integrations' dashboards read `data.misp.event_id`, `data.misp.value`
//! and friends. A top-level `misp` key would be outside that mapping.

use std::time::SystemTime;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::event::{Agent, Event, FileEvent, MispMatch};
use crate::event_json::Syscheck;
use crate::mitre::MitreTechnique;
use crate::rule::Rule;
use crate::time::{alert_timestamp, epoch_parts};

/// Compliance group prefixes and the `rule` key each one fills.
const COMPLIANCE: [(&str, &str); 7] = [
    ("pci_dss_", "pci_dss"),
    ("cis_", "cis"),
    ("gdpr_", "gdpr"),
    ("gpg13_", "gpg13"),
    ("hipaa_", "hipaa"),
    ("nist_800_53_", "nist_800_53"),
    ("tsc_", "tsc"),
];

/// The `rule` part of an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub id: u32,
    pub level: u8,
    /// Description with `$(field)` references filled in.
    pub description: String,
    pub groups: Vec<String>,
    /// Techniques of the rule's `<mitre>` followed by those the event brought.
    pub mitre: Vec<MitreTechnique>,
    /// The rule's `frequency`, for rules that count events.
    pub frequency: Option<u32>,
    /// `None` when the rule has `no_counter`.
    pub fired_times: Option<u64>,
    pub mail: bool,
}

/// An alert, ready to be written as one line of `alerts.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub time: SystemTime,
    /// `"<epoch seconds>.<sequence>"`, unique within a [`crate::State`].
    pub id: String,
    pub rule: AlertRule,
    pub agent: Agent,
    pub manager_name: String,
    /// Logs of the earlier events a `frequency` rule counted, newest first.
    pub previous_output: Option<String>,
    /// `None` when the rule has `no_full_log`.
    pub full_log: Option<String>,
    pub file: FileEvent,
    pub decoder: String,
    pub location: String,
    pub misp: Option<MispMatch>,
}

/// Engine decision for an alert, before the event goes into it.
pub(crate) struct AlertInput<'a> {
    pub rule: &'a Rule,
    pub time: SystemTime,
    pub sequence: u64,
    pub fired_times: u64,
    pub mail: bool,
    pub previous_logs: Vec<String>,
    pub manager_name: String,
}

impl Alert {
    /// Builds the alert, moving the event's file, agent and enrichment into it.
    pub(crate) fn build(input: AlertInput<'_>, mut event: Event) -> Self {
        let rule = input.rule;
        let (secs, _) = epoch_parts(input.time);
        let previous_output =
            (input.previous_logs.len() >= 2).then(|| input.previous_logs.join("\n"));
        let description = rule.render_description(&event);
        let mitre = merged_mitre(rule, &event);
        let decoder = event.decoder_name().to_string();
        let full_log = (!rule.options.no_full_log).then(|| event.take_full_log());
        Alert {
            time: input.time,
            id: format!("{secs}.{}", input.sequence),
            rule: AlertRule {
                id: rule.id,
                level: rule.level,
                description,
                groups: rule.groups.clone(),
                mitre,
                frequency: rule.frequency,
                fired_times: (!rule.options.no_counter).then_some(input.fired_times),
                mail: input.mail,
            },
            agent: event.agent,
            manager_name: input.manager_name,
            previous_output,
            full_log,
            file: event.file,
            decoder,
            location: event.location,
            misp: event.misp,
        }
    }

    /// Builds the alert document.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Formats the alert's `timestamp` field: `2026-12-04T16:37:25.123+0000`.
    pub fn timestamp(&self) -> String {
        alert_timestamp(self.time)
    }

    /// The alert as one `alerts.json` line, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Alerts of file events take about 1.2 KB: one allocation in place of five.
        let mut line = Vec::with_capacity(2048);
        if serde_json::to_writer(&mut line, self).is_err() {
            return String::new();
        }
        String::from_utf8(line).unwrap_or_default()
    }

    /// `agent.name` of the manager's own events (id `000`) defaults to the manager name.
    fn agent_name(&self) -> &str {
        if self.agent.name.is_empty() && self.agent.id == "000" {
            &self.manager_name
        } else {
            &self.agent.name
        }
    }
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut root = serializer.serialize_map(None)?;
        root.serialize_entry("timestamp", &alert_timestamp(self.time))?;
        root.serialize_entry("rule", &RuleJson(&self.rule))?;
        root.serialize_entry("agent", &AgentJson(self))?;
        root.serialize_entry("manager", &Single("name", &self.manager_name))?;
        root.serialize_entry("id", &self.id)?;
        if let Some(previous) = &self.previous_output {
            root.serialize_entry("previous_output", previous)?;
        }
        if let Some(log) = &self.full_log {
            root.serialize_entry("full_log", log)?;
        }
        root.serialize_entry("syscheck", &Syscheck(&self.file))?;
        root.serialize_entry("decoder", &Single("name", &self.decoder))?;
        if let Some(misp) = &self.misp {
            root.serialize_entry("data", &Single("misp", &MispJson(misp)))?;
        }
        root.serialize_entry("location", &self.location)?;
        root.end()
    }
}

/// A one-key object.
struct Single<'a, T: Serialize + ?Sized>(&'static str, &'a T);

impl<T: Serialize + ?Sized> Serialize for Single<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

struct MispJson<'a>(&'a MispMatch);

impl Serialize for MispJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.to_json().serialize(serializer)
    }
}

struct AgentJson<'a>(&'a Alert);

impl Serialize for AgentJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let alert = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &alert.agent.id)?;
        map.serialize_entry("name", alert.agent_name())?;
        if let Some(ip) = alert.agent.ip.as_ref().filter(|ip| ip.as_str() != "any") {
            map.serialize_entry("ip", ip)?;
        }
        map.end()
    }
}

struct RuleJson<'a>(&'a AlertRule);

impl Serialize for RuleJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("level", &r.level)?;
        map.serialize_entry("description", &r.description)?;
        map.serialize_entry("id", &r.id.to_string())?;
        if !r.mitre.is_empty() {
            map.serialize_entry("mitre", &MitreJson(&r.mitre))?;
        }
        if let Some(frequency) = r.frequency {
            map.serialize_entry("frequency", &frequency)?;
        }
        if let Some(fired) = r.fired_times {
            map.serialize_entry("firedtimes", &fired)?;
        }
        map.serialize_entry("mail", &r.mail)?;
        let (plain, compliance) = split_groups(&r.groups);
        map.serialize_entry("groups", &plain)?;
        for (key, list) in compliance {
            map.serialize_entry(key, &list)?;
        }
        map.end()
    }
}

/// Splits groups into plain ones and compliance arrays, in the order groups first appear.
fn split_groups(groups: &[String]) -> (Vec<&str>, Vec<(&'static str, Vec<&str>)>) {
    let mut plain = Vec::new();
    let mut compliance: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for group in groups {
        let found = COMPLIANCE
            .iter()
            .find_map(|(prefix, key)| group.strip_prefix(prefix).map(|rest| (*key, rest)));
        match found {
            Some((key, rest)) => match compliance.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(rest),
                None => compliance.push((key, vec![rest])),
            },
            None => plain.push(group.as_str()),
        }
    }
    (plain, compliance)
}

/// The rule's techniques, then the event's (MISP galaxies), each id once.
fn merged_mitre(rule: &Rule, event: &Event) -> Vec<MitreTechnique> {
    let mut out: Vec<MitreTechnique> = rule
        .mitre
        .iter()
        .map(|id| MitreTechnique::from_id(id))
        .collect();
    let from_event = event.misp.iter().flat_map(|m| m.mitre_techniques.iter());
    for technique in from_event {
        if !out.iter().any(|t| t.id == technique.id) {
            out.push(technique.clone());
        }
    }
    out
}

/// `{"id": [...], "tactic": [...], "technique": [...]}`. Techniques missing from the
/// catalog keep their id but add no name or tactic; an empty list is left out.
struct MitreJson<'a>(&'a [MitreTechnique]);

impl Serialize for MitreJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let techniques = self.0;
        let ids: Vec<&str> = techniques.iter().map(|t| t.id.as_str()).collect();
        let mut tactics: Vec<&str> = Vec::new();
        for tactic in techniques.iter().flat_map(|t| t.tactics.iter()) {
            if !tactics.contains(&tactic.as_str()) {
                tactics.push(tactic);
            }
        }
        let names: Vec<&str> = techniques
            .iter()
            .filter(|t| !t.technique.is_empty())
            .map(|t| t.technique.as_str())
            .collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &ids)?;
        if !tactics.is_empty() {
            map.serialize_entry("tactic", &tactics)?;
        }
        if !names.is_empty() {
            map.serialize_entry("technique", &names)?;
        }
        map.end()
    }
}
