//! Galaxy clusters (threat actors, malware families, ATT&CK techniques) of events and
//! attributes, as stored and as reported with a match.
//!
//! A MISP event names a cluster twice: under `Galaxy[].GalaxyCluster[]` with its metadata,
//! and as a tag `misp-galaxy:<type>="<value>"`. Feeds often carry only the tag, so a
//! cluster is also read back from its tag.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One galaxy cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GalaxyCluster {
    /// Galaxy type such as `mitre-attack-pattern`, `threat-actor` or `malpedia`.
    pub r#type: String,
    /// Cluster value such as `PowerShell - T1059.001` or `APT28`.
    pub value: String,
    /// The cluster's tag, `misp-galaxy:<type>="<value>"`.
    pub tag_name: String,
    /// The cluster's `meta.external_id` (ATT&CK ids such as `T1059.001`, CAPEC ids, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_id: Vec<String>,
}

impl GalaxyCluster {
    /// Reads a cluster from a tag `misp-galaxy:<type>="<value>"`; other tags give `None`.
    pub fn from_tag(tag: &str) -> Option<GalaxyCluster> {
        let rest = tag.strip_prefix("misp-galaxy:")?;
        let (galaxy_type, quoted) = rest.split_once('=')?;
        let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
        if galaxy_type.is_empty() || value.is_empty() {
            return None;
        }
        Some(GalaxyCluster {
            r#type: galaxy_type.to_owned(),
            value: value.to_owned(),
            tag_name: tag.to_owned(),
            external_id: Vec::new(),
        })
    }

    /// Returns the ATT&CK technique ids (`T1059`, `T1059.001`) of a `mitre-*` cluster, from
    /// its external ids, value and tag, each once; other galaxies give none.
    pub fn mitre_technique_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        if !self.r#type.starts_with("mitre-") {
            return ids;
        }
        let texts = self
            .external_id
            .iter()
            .map(String::as_str)
            .chain([self.value.as_str(), self.tag_name.as_str()]);
        for text in texts {
            for id in technique_ids_in(text) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }
}

/// Reads the clusters of MISP `Galaxy` blocks; clusters without a value are skipped.
pub fn clusters_of(galaxies: &[misp::Galaxy]) -> Vec<GalaxyCluster> {
    let mut out = Vec::new();
    for galaxy in galaxies {
        for cluster in &galaxy.clusters {
            let text = |key: &str| cluster.get(key).and_then(Value::as_str).unwrap_or("");
            let value = text("value");
            if value.is_empty() {
                continue;
            }
            let galaxy_type = match text("type") {
                "" => galaxy.r#type.as_deref().unwrap_or(&galaxy.name),
                t => t,
            };
            let tag_name = match text("tag_name") {
                "" => format!("misp-galaxy:{galaxy_type}=\"{value}\""),
                t => t.to_owned(),
            };
            out.push(GalaxyCluster {
                r#type: galaxy_type.to_owned(),
                value: value.to_owned(),
                tag_name,
                external_id: external_ids(cluster),
            });
        }
    }
    out
}

/// `meta.external_id`, given as a list or as one string.
fn external_ids(cluster: &Value) -> Vec<String> {
    match cluster.pointer("/meta/external_id") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Adds the clusters named by `tags` that `clusters` does not list yet (by tag name).
pub fn add_tag_clusters<'a>(
    clusters: &mut Vec<GalaxyCluster>,
    tags: impl IntoIterator<Item = &'a str>,
) {
    for tag in tags {
        if clusters.iter().any(|c| c.tag_name == tag) {
            continue;
        }
        if let Some(cluster) = GalaxyCluster::from_tag(tag) {
            clusters.push(cluster);
        }
    }
}

/// Serialises clusters for the `galaxies` column of events and attributes; an empty list
/// is stored as NULL.
pub fn to_column(clusters: &[GalaxyCluster]) -> Option<String> {
    if clusters.is_empty() {
        None
    } else {
        serde_json::to_string(clusters).ok()
    }
}

/// Reads the `galaxies` column; a NULL or unreadable column gives no clusters.
pub(crate) fn from_column(text: Option<&str>) -> Vec<GalaxyCluster> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// Finds technique ids `T` + 4 digits, with an optional `.` + 3 digits, that stand alone:
/// no letter or digit right before or after, and no other digits after a `.`.
fn technique_ids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let digits = |from: usize, n: usize| {
            bytes.len() >= from + n && bytes[from..from + n].iter().all(u8::is_ascii_digit)
        };
        if bytes[i] == b'T' && starts_word && digits(i + 1, 4) {
            let mut end = i + 5;
            if bytes.get(end) == Some(&b'.') && digits(end + 1, 3) {
                end += 4;
            }
            let next = bytes.get(end).copied();
            let longer_id =
                next == Some(b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            let ends_word = next.is_none_or(|b| !b.is_ascii_alphanumeric()) && !longer_id;
            if ends_word {
                found.push(text[i..end].to_owned());
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_from_galaxy_tag() {
        let tag = "misp-galaxy:threat-actor=\"APT28\"";
        let cluster = GalaxyCluster::from_tag(tag).unwrap();
        assert_eq!(cluster.r#type, "threat-actor");
        assert_eq!(cluster.value, "APT28");
        assert_eq!(cluster.tag_name, tag);
        assert!(GalaxyCluster::from_tag("tlp:white").is_none());
        assert!(GalaxyCluster::from_tag("misp-galaxy:x=unquoted").is_none());
    }

    #[test]
    fn technique_ids_from_value_and_meta() {
        let mut cluster =
            GalaxyCluster::from_tag("misp-galaxy:mitre-attack-pattern=\"PowerShell - T1059.001\"")
                .unwrap();
        cluster.external_id = vec!["T1059.001".into(), "CAPEC-1".into()];
        assert_eq!(cluster.mitre_technique_ids(), ["T1059.001"]);

        let plain =
            GalaxyCluster::from_tag("misp-galaxy:mitre-attack-pattern=\"Masquerading - T1036\"")
                .unwrap();
        assert_eq!(plain.mitre_technique_ids(), ["T1036"]);
    }

    #[test]
    fn technique_ids_need_word_bounds() {
        assert_eq!(
            technique_ids_in("XT1059 T12345 T1059.01 (T1105)"),
            ["T1105"]
        );
        assert!(technique_ids_in("T10").is_empty());
        let actor = GalaxyCluster::from_tag("misp-galaxy:threat-actor=\"T1000 group\"").unwrap();
        assert!(actor.mitre_technique_ids().is_empty());
    }

    #[test]
    fn clusters_read_from_galaxy_blocks() {
        let galaxy: misp::Galaxy = serde_json::from_value(serde_json::json!({
            "name": "Attack Pattern",
            "type": "mitre-attack-pattern",
            "GalaxyCluster": [
                {"type": "mitre-attack-pattern", "value": "PowerShell - T1059.001",
                 "tag_name": "misp-galaxy:mitre-attack-pattern=\"PowerShell - T1059.001\"",
                 "meta": {"external_id": ["T1059.001"]}},
                {"value": ""}
            ]
        }))
        .unwrap();
        let clusters = clusters_of(&[galaxy]);
        assert_eq!(clusters.len(), 1);
        assert_eq!(clusters[0].external_id, ["T1059.001"]);
        assert_eq!(clusters[0].mitre_technique_ids(), ["T1059.001"]);
    }
}
