//! MITRE ATT&CK technique names and tactics for the `rule.mitre` object of alerts.
//!
//! Wazuh looks technique ids up in its ATT&CK database to fill `rule.mitre.technique`
//! and `rule.mitre.tactic`. iocwatch ships a small catalog (`ruleset/mitre.tsv`) with the
//! techniques its default rules use and the ones MISP file indicators carry most often;
//! an event can bring the name and tactics of any other technique with it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// One ATT&CK technique as it appears in an alert.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MitreTechnique {
    /// Technique id such as `T1204.002`.
    pub id: String,
    /// Technique name such as `Malicious File`; empty when unknown.
    pub technique: String,
    /// Tactic names such as `Execution`; empty when unknown.
    pub tactics: Vec<String>,
}

impl MitreTechnique {
    /// Builds a technique from its id, with the name and tactics from the catalog.
    pub fn from_id(id: &str) -> Self {
        let id = id.trim().to_ascii_uppercase();
        match catalog().get(id.as_str()) {
            Some(known) => known.clone(),
            None => Self {
                id,
                ..Self::default()
            },
        }
    }

    /// Fills a missing name or tactic list from the catalog.
    pub fn completed(mut self) -> Self {
        if self.technique.is_empty() || self.tactics.is_empty() {
            let known = Self::from_id(&self.id);
            if self.technique.is_empty() {
                self.technique = known.technique;
            }
            if self.tactics.is_empty() {
                self.tactics = known.tactics;
            }
        }
        self
    }
}

const CATALOG: &str = include_str!("../ruleset/mitre.tsv");

fn catalog() -> &'static HashMap<String, MitreTechnique> {
    static MAP: OnceLock<HashMap<String, MitreTechnique>> = OnceLock::new();
    MAP.get_or_init(|| {
        CATALOG
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let mut cols = line.split('\t');
                let id = cols.next()?.trim().to_string();
                let technique = cols.next()?.trim().to_string();
                let tactics = cols
                    .next()?
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
                Some((
                    id.clone(),
                    MitreTechnique {
                        id,
                        technique,
                        tactics,
                    },
                ))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_knows_default_rule_techniques() {
        for id in ["T1565.001", "T1070.004", "T1485", "T1204.002"] {
            let t = MitreTechnique::from_id(id);
            assert!(!t.technique.is_empty(), "{id} has no name");
            assert!(!t.tactics.is_empty(), "{id} has no tactic");
        }
    }

    #[test]
    fn unknown_technique_keeps_its_id() {
        let t = MitreTechnique::from_id("t9999");
        assert_eq!(t.id, "T9999");
        assert!(t.technique.is_empty());
    }
}
