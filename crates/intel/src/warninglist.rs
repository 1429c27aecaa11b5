//! Warninglists with an action each, the lists shipped with iocwatch, and the matcher
//! that decides which lists a detection indicator's value is on.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use misp::import::Warninglist;
use serde::Serialize;

/// Effect of a warninglist hit on a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The match is reported as suppressed and is not a detection.
    Suppress,
    /// The match stays a detection and names the list.
    Annotate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Suppress => "suppress",
            Action::Annotate => "annotate",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "suppress" => Ok(Action::Suppress),
            "annotate" => Ok(Action::Annotate),
            _ => Err(format!(
                "unknown warninglist action `{s}`; use suppress or annotate"
            )),
        }
    }
}

/// Default action of an imported list: `annotate` for EICAR test-file lists, which flag
/// a real (test) detection, and `suppress` for every other list, since MISP warninglists
/// hold known false positives such as empty-file hashes.
pub fn default_action(list: &Warninglist) -> Action {
    if list.name.to_ascii_lowercase().contains("eicar") {
        Action::Annotate
    } else {
        Action::Suppress
    }
}

/// The warninglists shipped in `warninglists/` (CC0, from MISP/misp-warninglists), loaded
/// into every new store.
pub const DEFAULT_LISTS: &[(&str, &str)] = &[
    (
        "empty-hashes",
        include_str!("../warninglists/empty-hashes/list.json"),
    ),
    (
        "common-ioc-false-positive",
        include_str!("../warninglists/common-ioc-false-positive/list.json"),
    ),
    (
        "eicar.com",
        include_str!("../warninglists/eicar.com/list.json"),
    ),
];

/// A warninglist ready for matching.
#[derive(Debug)]
pub struct StoredList {
    pub name: String,
    pub action: Action,
    pub list_type: String,
    pub matching_attributes: Vec<String>,
    pub entries: Vec<String>,
}

/// One list a value is on, as reported in a match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WarninglistHit {
    pub name: String,
    pub action: Action,
}

enum Entries {
    Exact(HashSet<String>),
    Substring(Vec<String>),
    Hostname(HashSet<String>),
    Cidr(Vec<(IpAddr, u8)>),
    Regex(Vec<regex::Regex>),
}

/// Tests values against a set of warninglists.
pub struct Matcher {
    lists: Vec<(WarninglistHit, Entries)>,
    /// Lists that apply to each attribute type; `all_types` apply to every type.
    by_type: HashMap<String, Vec<usize>>,
    all_types: Vec<usize>,
}

impl Matcher {
    pub fn new(lists: &[StoredList]) -> Matcher {
        let mut matcher = Matcher {
            lists: Vec::new(),
            by_type: HashMap::new(),
            all_types: Vec::new(),
        };
        for list in lists {
            let index = matcher.lists.len();
            let hit = WarninglistHit {
                name: list.name.clone(),
                action: list.action,
            };
            matcher
                .lists
                .push((hit, compile(&list.list_type, &list.entries)));
            if list.matching_attributes.is_empty() {
                matcher.all_types.push(index);
            }
            for t in &list.matching_attributes {
                matcher.by_type.entry(t.clone()).or_default().push(index);
            }
        }
        matcher
    }

    /// Returns the lists that `value` (of MISP type `type_name`) is on, in list order.
    pub fn check(&self, type_name: &str, value: &str) -> Vec<WarninglistHit> {
        let typed = self
            .by_type
            .get(type_name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if typed.is_empty() && self.all_types.is_empty() {
            return Vec::new();
        }
        let lower = value.to_lowercase();
        let mut parts = vec![lower.as_str()];
        if type_name.contains('|') || type_name == "malware-sample" {
            if let Some((a, b)) = lower.rsplit_once('|') {
                parts.extend([a, b]);
            }
        }
        let mut indices: Vec<usize> = typed.iter().chain(&self.all_types).copied().collect();
        indices.sort_unstable();
        indices.dedup();
        indices
            .into_iter()
            .filter(|&i| parts.iter().any(|p| matches(&self.lists[i].1, p)))
            .map(|i| self.lists[i].0.clone())
            .collect()
    }
}

fn compile(list_type: &str, entries: &[String]) -> Entries {
    let lower = entries.iter().map(|e| e.trim().to_lowercase());
    match list_type {
        "substring" => Entries::Substring(lower.collect()),
        "hostname" => Entries::Hostname(lower.map(|e| e.trim_matches('.').to_owned()).collect()),
        "cidr" => Entries::Cidr(entries.iter().filter_map(|e| parse_cidr(e.trim())).collect()),
        "regex" => Entries::Regex(
            entries
                .iter()
                .filter_map(|e| {
                    let pattern = strip_regex_delimiters(e.trim());
                    regex::RegexBuilder::new(pattern)
                        .case_insensitive(true)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|err| tracing::warn!(entry = %e, error = %err, "invalid warninglist regex skipped"))
                        .ok()
                })
                .collect(),
        ),
        _ => Entries::Exact(lower.collect()),
    }
}

/// MISP writes regex entries PHP-style, as `/pattern/flags`.
fn strip_regex_delimiters(entry: &str) -> &str {
    match entry
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
    {
        Some((pattern, flags)) if flags.chars().all(|c| c.is_ascii_alphabetic()) => pattern,
        _ => entry,
    }
}

fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a, b.parse().ok()?),
        None => (entry, if entry.contains(':') { 128 } else { 32 }),
    };
    Some((addr.parse().ok()?, bits))
}

fn in_network(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn matches(entries: &Entries, value: &str) -> bool {
    match entries {
        Entries::Exact(set) => set.contains(value),
        Entries::Substring(list) => list.iter().any(|e| value.contains(e.as_str())),
        Entries::Hostname(set) => {
            let host = host_of(value);
            let mut candidate = host;
            loop {
                if set.contains(candidate) {
                    return true;
                }
                match candidate.split_once('.') {
                    Some((_, rest)) => candidate = rest,
                    None => return false,
                }
            }
        }
        Entries::Cidr(nets) => {
            let addr = value.split('/').next().unwrap_or(value);
            addr.parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|&n| in_network(ip, n)))
        }
        Entries::Regex(list) => list.iter().any(|r| r.is_match(value)),
    }
}

/// Returns the host of a URL, or the value itself.
fn host_of(value: &str) -> &str {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    host.rsplit_once('@')
        .map_or(host, |(_, h)| h)
        .split(':')
        .next()
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, list_type: &str, types: &[&str], entries: &[&str]) -> StoredList {
        StoredList {
            name: name.into(),
            action: Action::Suppress,
            list_type: list_type.into(),
            matching_attributes: types.iter().map(|s| s.to_string()).collect(),
            entries: entries.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn exact_hash_entries_any_case_and_composites() {
        let m = Matcher::new(&[list(
            "empty",
            "string",
            &["md5", "filename|md5"],
            &["D41D8CD98F00B204E9800998ECF8427E"],
        )]);
        assert_eq!(m.check("md5", "d41d8cd98f00b204e9800998ecf8427e").len(), 1);
        assert_eq!(
            m.check("filename|md5", "a.txt|d41d8cd98f00b204e9800998ecf8427e")
                .len(),
            1
        );
        assert!(m
            .check("sha1", "d41d8cd98f00b204e9800998ecf8427e")
            .is_empty());
    }

    #[test]
    fn other_list_types() {
        let m = Matcher::new(&[
            list("hosts", "hostname", &[], &["example.org"]),
            list("nets", "cidr", &[], &["10.0.0.0/8"]),
            list("re", "regex", &[], &["/^evil[0-9]+$/i"]),
            list("sub", "substring", &[], &["windowsupdate"]),
        ]);
        assert_eq!(m.check("hostname", "cdn.example.org")[0].name, "hosts");
        assert_eq!(m.check("url", "https://a.example.org/x")[0].name, "hosts");
        assert_eq!(m.check("ip-dst", "10.1.2.3")[0].name, "nets");
        assert!(m.check("ip-dst", "11.1.2.3").is_empty());
        assert_eq!(m.check("text", "EVIL42")[0].name, "re");
        assert_eq!(
            m.check("domain", "download.windowsupdate.com")[0].name,
            "sub"
        );
    }

    #[test]
    fn default_actions() {
        for (name, text) in DEFAULT_LISTS {
            let list = misp::import::warninglist::parse_warninglist(text).unwrap();
            let expected = if *name == "eicar.com" {
                Action::Annotate
            } else {
                Action::Suppress
            };
            assert_eq!(default_action(&list), expected, "{name}");
        }
    }
}
