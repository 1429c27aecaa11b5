//! Loading rule files into a rule tree: defaults, user folders, `overwrite`, parents.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::event::DECODER_NAMES;
use crate::parse::parse_file;
use crate::rule::Rule;

/// The default rule files shipped inside the crate, in load order.
pub const DEFAULT_FILES: [(&str, &str); 2] = [
    (
        "0010-iocwatch_fim_rules.xml",
        include_str!("../ruleset/0010-iocwatch_fim_rules.xml"),
    ),
    (
        "0020-iocwatch_intel_rules.xml",
        include_str!("../ruleset/0020-iocwatch_intel_rules.xml"),
    ),
];

/// Rule files larger than this are rejected.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Parent-to-child chains longer than this are rejected; evaluation recurses along them.
const MAX_DEPTH: usize = 64;

/// Wazuh's `<log_alert_level>` default: rules below it match but write no alert.
pub const DEFAULT_ALERT_LEVEL: u8 = 3;

/// Wazuh's `<email_alert_level>` default: from this level `rule.mail` is true.
pub const DEFAULT_EMAIL_ALERT_LEVEL: u8 = 12;

/// A loaded, checked rule tree. It stores no per-event state, so one `Ruleset` can be
/// shared by many threads, each with its own [`crate::State`].
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) rules: Vec<Rule>,
    pub(crate) by_id: HashMap<u32, usize>,
    pub(crate) children: Vec<Vec<usize>>,
    /// Root rules to try for each decoder name, already in evaluation order.
    pub(crate) roots_by_decoder: HashMap<&'static str, Vec<usize>>,
    /// Roots without `<decoded_as>`, for events of any other decoder.
    pub(crate) generic_roots: Vec<usize>,
    /// Rule ids that `if_matched_sid` counts, with the longest timeframe over them.
    pub(crate) watched_sids: HashMap<u32, u32>,
    /// Groups that `if_matched_group` counts, with the longest timeframe over them.
    pub(crate) watched_groups: HashMap<String, u32>,
    pub(crate) alert_level: u8,
    pub(crate) email_alert_level: u8,
}

impl Ruleset {
    /// Loads the default rules (when `default` is true) and then every `*.xml` file of
    /// each user folder, sorted by name. A path in `user_dirs` may also be a single
    /// file. A rule whose id already exists needs `overwrite="yes"` to replace it.
    pub fn load(default: bool, user_dirs: &[PathBuf]) -> Result<Self, Error> {
        let mut files: Vec<(String, String)> = Vec::new();
        if default {
            for (name, text) in DEFAULT_FILES {
                files.push((format!("<default>/{name}"), text.to_string()));
            }
        }
        for dir in user_dirs {
            for path in rule_files(dir)? {
                files.push((path.display().to_string(), read_rule_file(&path)?));
            }
        }
        Self::from_sources(&files)
    }

    /// Builds a ruleset from `(file name, XML text)` pairs, in that order.
    pub fn from_sources(files: &[(String, String)]) -> Result<Self, Error> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut by_id: HashMap<u32, usize> = HashMap::new();
        for (name, text) in files {
            for rule in parse_file(name, text)? {
                add_rule(&mut rules, &mut by_id, rule)?;
            }
        }
        Self::build(rules, by_id)
    }

    /// Sets the level from which alerts are written (Wazuh's `log_alert_level`, default
    /// 3) and from which `rule.mail` is true (`email_alert_level`, default 12).
    pub fn set_alert_levels(&mut self, alert_level: u8, email_alert_level: u8) {
        self.alert_level = alert_level;
        self.email_alert_level = email_alert_level;
    }

    /// Returns the rule with this id.
    pub fn rule(&self, id: u32) -> Option<&Rule> {
        self.by_id.get(&id).map(|&i| &self.rules[i])
    }

    /// Returns all rules in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    fn build(rules: Vec<Rule>, by_id: HashMap<u32, usize>) -> Result<Self, Error> {
        let mut set = Ruleset {
            children: vec![Vec::new(); rules.len()],
            rules,
            by_id,
            roots_by_decoder: HashMap::new(),
            generic_roots: Vec::new(),
            watched_sids: HashMap::new(),
            watched_groups: HashMap::new(),
            alert_level: DEFAULT_ALERT_LEVEL,
            email_alert_level: DEFAULT_EMAIL_ALERT_LEVEL,
        };
        let roots = set.link_parents()?;
        set.check_depth()?;
        set.index_roots(roots);
        set.index_watched();
        Ok(set)
    }

    /// Attaches every rule under its parents and returns the roots.
    fn link_parents(&mut self) -> Result<Vec<usize>, Error> {
        let mut roots = Vec::new();
        for index in 0..self.rules.len() {
            let parents = self.parents_of(index)?;
            match parents {
                None => roots.push(index),
                Some(parents) => {
                    for parent in parents {
                        self.children[parent].push(index);
                    }
                }
            }
        }
        let rules = &self.rules;
        let order = |&i: &usize| (std::cmp::Reverse(priority(&rules[i])), i);
        for list in self.children.iter_mut() {
            list.sort_by_key(order);
            list.dedup();
        }
        roots.sort_by_key(order);
        Ok(roots)
    }

    /// Parents by `if_sid`, else `if_matched_sid`, else groups; `None` for a root.
    fn parents_of(&self, index: usize) -> Result<Option<Vec<usize>>, Error> {
        let rule = &self.rules[index];
        let sids: Vec<u32> = if !rule.if_sid.is_empty() {
            rule.if_sid.clone()
        } else {
            rule.if_matched_sid.into_iter().collect()
        };
        if !sids.is_empty() {
            let element = if rule.if_sid.is_empty() {
                "if_matched_sid"
            } else {
                "if_sid"
            };
            let mut parents = Vec::with_capacity(sids.len());
            for sid in sids {
                match self.by_id.get(&sid) {
                    Some(&p) if p != index => parents.push(p),
                    Some(_) => {
                        return Err(rule_error(
                            rule,
                            element,
                            format!("rule {} names itself as parent", rule.id),
                        ))
                    }
                    None => {
                        return Err(rule_error(
                            rule,
                            element,
                            format!(
                                "rule {} depends on rule {sid}, which is not defined",
                                rule.id
                            ),
                        ))
                    }
                }
            }
            return Ok(Some(parents));
        }

        let groups: Vec<&str> = if !rule.if_group.is_empty() {
            rule.if_group.iter().map(String::as_str).collect()
        } else {
            rule.if_matched_group.iter().map(String::as_str).collect()
        };
        if groups.is_empty() {
            return Ok(None);
        }
        let parents: Vec<usize> = (0..self.rules.len())
            .filter(|&p| {
                p != index
                    && self.rules[p]
                        .groups
                        .iter()
                        .any(|g| groups.contains(&g.as_str()))
            })
            .collect();
        if parents.is_empty() {
            let element = if rule.if_group.is_empty() {
                "if_matched_group"
            } else {
                "if_group"
            };
            return Err(rule_error(
                rule,
                element,
                format!("no rule has group `{}`", groups.join("|")),
            ));
        }
        Ok(Some(parents))
    }

    /// Rejects cycles and chains deeper than [`MAX_DEPTH`], so evaluation always ends.
    fn check_depth(&self) -> Result<(), Error> {
        // Longest path from each rule downwards; `usize::MAX` marks a rule in progress.
        let mut depth: Vec<Option<usize>> = vec![None; self.rules.len()];
        for start in 0..self.rules.len() {
            let mut stack = vec![(start, 0usize)];
            while let Some(&(node, next)) = stack.last() {
                if next == 0 {
                    if depth[node] == Some(usize::MAX) {
                        return Err(rule_error(
                            &self.rules[node],
                            "rule",
                            format!(
                                "rule {} is its own ancestor through if_sid or if_group",
                                self.rules[node].id
                            ),
                        ));
                    }
                    if depth[node].is_some() {
                        stack.pop();
                        continue;
                    }
                    depth[node] = Some(usize::MAX);
                }
                match self.children[node].get(next) {
                    Some(&child) => {
                        if let Some(top) = stack.last_mut() {
                            top.1 += 1;
                        }
                        if depth[child] == Some(usize::MAX) {
                            return Err(rule_error(
                                &self.rules[child],
                                "rule",
                                format!(
                                    "rule {} is its own ancestor through if_sid or if_group",
                                    self.rules[child].id
                                ),
                            ));
                        }
                        stack.push((child, 0));
                    }
                    None => {
                        let below = self.children[node]
                            .iter()
                            .filter_map(|&c| depth[c])
                            .max()
                            .map_or(1, |d| d + 1);
                        if below > MAX_DEPTH {
                            return Err(rule_error(
                                &self.rules[node],
                                "rule",
                                format!("rule {} starts a chain of more than {MAX_DEPTH} dependent rules", self.rules[node].id),
                            ));
                        }
                        depth[node] = Some(below);
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }

    fn index_roots(&mut self, roots: Vec<usize>) {
        for decoder in DECODER_NAMES {
            let list = roots
                .iter()
                .copied()
                .filter(|&r| {
                    self.rules[r]
                        .decoded_as
                        .as_deref()
                        .is_none_or(|d| d == decoder)
                })
                .collect();
            self.roots_by_decoder.insert(decoder, list);
        }
        self.generic_roots = roots
            .into_iter()
            .filter(|&r| self.rules[r].decoded_as.is_none())
            .collect();
    }

    fn index_watched(&mut self) {
        for rule in &self.rules {
            if let Some(sid) = rule.if_matched_sid {
                let entry = self.watched_sids.entry(sid).or_insert(0);
                *entry = (*entry).max(rule.timeframe);
            }
            if let Some(group) = &rule.if_matched_group {
                let entry = self.watched_groups.entry(group.clone()).or_insert(0);
                *entry = (*entry).max(rule.timeframe);
            }
        }
    }

    /// Root rules to try for an event of this decoder, in order.
    pub(crate) fn roots_for(&self, decoder: &str) -> &[usize] {
        self.roots_by_decoder
            .get(decoder)
            .map_or(self.generic_roots.as_slice(), Vec::as_slice)
    }
}

/// Sibling order of Wazuh: level 0 rules first (they silence events), then higher
/// levels before lower ones, then load order.
fn priority(rule: &Rule) -> u8 {
    if rule.level == 0 {
        99
    } else {
        rule.level
    }
}

fn rule_error(rule: &Rule, element: &str, message: String) -> Error {
    let line = if element.starts_with("if_") {
        rule.source.parent_line
    } else {
        rule.source.line
    };
    Error::rule(&rule.source.file, line, element, message)
}

fn add_rule(
    rules: &mut Vec<Rule>,
    by_id: &mut HashMap<u32, usize>,
    rule: Rule,
) -> Result<(), Error> {
    let Some(&existing) = by_id.get(&rule.id) else {
        if rule.overwrite {
            tracing::warn!(rule_id = rule.id, file = %rule.source.file, "overwrite=\"yes\" on a rule that does not exist yet; adding it");
        }
        by_id.insert(rule.id, rules.len());
        rules.push(rule);
        return Ok(());
    };
    let old = &rules[existing];
    if !rule.overwrite {
        return Err(rule_error(
            &rule,
            "rule",
            format!(
                "rule id {} is already defined in `{}` line {}: choose another id or add overwrite=\"yes\" to replace it",
                rule.id, old.source.file, old.source.line
            ),
        ));
    }
    rules[existing] = overwritten(old, rule);
    Ok(())
}

/// Applies Wazuh's overwrite: the new definition replaces the old one but keeps its
/// place in the tree (`if_sid`, `if_group`, `if_matched_*` of the original).
fn overwritten(old: &Rule, mut new: Rule) -> Rule {
    let moved = (!new.if_sid.is_empty() && new.if_sid != old.if_sid)
        || (!new.if_group.is_empty() && new.if_group != old.if_group)
        || (new.if_matched_sid.is_some() && new.if_matched_sid != old.if_matched_sid);
    if moved {
        tracing::warn!(rule_id = new.id, file = %new.source.file, "overwrite keeps the original if_sid/if_group/if_matched_sid of the rule");
    }
    new.if_sid = old.if_sid.clone();
    new.if_group = old.if_group.clone();
    new.if_matched_sid = old.if_matched_sid;
    new.if_matched_group = old.if_matched_group.clone();
    new
}

/// Lists the `*.xml` files of a folder sorted by name, or the path itself when it is a file.
fn rule_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_error)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let file = entry.path();
        if file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
            && file.is_file()
        {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

fn read_rule_file(path: &Path) -> Result<String, Error> {
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(Error::rule(
            &path.display().to_string(),
            1,
            "xml",
            format!("file is {size} bytes, the maximum is {MAX_FILE_BYTES}"),
        ));
    }
    let bytes = fs::read(path).map_err(read_error)?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::rule(
            &path.display().to_string(),
            u32::try_from(line).unwrap_or(u32::MAX),
            "xml",
            "file is not valid UTF-8: save it as UTF-8",
        )
    })
}
