//! The input of the rules: a file event with its agent, location and intel enrichment.
//!
//! Field names and the `full_log` text follow Wazuh 4.14's syscheck decoder
//! (`src/analysisd/decoders/syscheck.c`): the new value of an attribute is the plain
//! name (`md5`), the old value is `md5_before`, and iocwatch also accepts `md5_after`
//! as another name for the new value.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::mitre::MitreTechnique;

/// Kind of change to a file; it selects Wazuh's decoder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileEventKind {
    Added,
    Modified,
    Deleted,
}

impl FileEventKind {
    /// Returns the `syscheck.event` value: `added`, `modified` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Modified => "modified",
            Self::Deleted => "deleted",
        }
    }

    /// Parses a `syscheck.event` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "added" => Some(Self::Added),
            "modified" => Some(Self::Modified),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }

    /// Wazuh's decoder name for this kind, matched by `<decoded_as>`.
    pub fn decoder_name(self) -> &'static str {
        match self {
            Self::Added => "syscheck_new_entry",
            Self::Modified => "syscheck_integrity_changed",
            Self::Deleted => "syscheck_deleted",
        }
    }
}

/// Decoder names a rule may name in `<decoded_as>`.
pub const DECODER_NAMES: [&str; 3] = [
    "syscheck_new_entry",
    "syscheck_integrity_changed",
    "syscheck_deleted",
];

/// The agent that reported the event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agent {
    /// Agent id such as `001`; `000` is the manager itself.
    pub id: String,
    pub name: String,
    pub ip: Option<String>,
}

/// One side (before or after) of a file's attributes. Values are text as in Wazuh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileAttributes {
    pub size: Option<String>,
    pub perm: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub uname: Option<String>,
    pub gname: Option<String>,
    /// Seconds since the Unix epoch, or the text an alert already carried.
    pub mtime: Option<String>,
    pub inode: Option<String>,
}

/// A file integrity event, the `syscheck` object of a Wazuh alert.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileEvent {
    pub path: String,
    pub kind: Option<FileEventKind>,
    /// `realtime`, `whodata` or `scheduled`.
    pub mode: Option<String>,
    pub hard_links: Vec<String>,
    pub symbolic_path: Option<String>,
    /// Old values of a modified file, all of them: `full_log` reports every attribute
    /// whose old and new values differ. [`FileEvent::from_syscheck_json`] copies the new
    /// value where an alert has no `*_before` key, since Wazuh leaves unchanged ones out.
    pub before: FileAttributes,
    pub after: FileAttributes,
    /// Names of the attributes that changed, such as `size`, `md5`.
    pub changed_attributes: Vec<String>,
    pub tags: Vec<String>,
    /// Content diff reported by the agent.
    pub diff: Option<String>,
    /// Other `syscheck` keys (`audit`, `win_perm_after`, ...), passed to the alert as is.
    pub extra: Map<String, Value>,
}

/// The intel enrichment the manager adds when it looked the file's hashes up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MispMatch {
    pub event_id: Option<String>,
    pub event_uuid: Option<String>,
    pub event_info: Option<String>,
    pub threat_level_id: Option<String>,
    pub attribute_id: Option<String>,
    pub attribute_uuid: Option<String>,
    /// MISP attribute type such as `sha256` (rule field `misp.type`).
    pub attribute_type: Option<String>,
    pub category: Option<String>,
    pub value: Option<String>,
    pub tags: Vec<String>,
    /// Names of the warninglists that contain the value.
    pub warninglists: Vec<String>,
    /// Galaxy clusters (threat actors, malware families, ATT&CK techniques) of the matched
    /// attribute and its event (rule field `misp.galaxies`: the cluster values).
    pub galaxies: Vec<MispGalaxy>,
    /// ATT&CK techniques from the event's galaxies; they extend the alert's `rule.mitre`.
    pub mitre_techniques: Vec<MitreTechnique>,
    /// Reason the lookup failed, set instead of the match fields.
    pub error: Option<String>,
}

/// One galaxy cluster of a [`MispMatch`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MispGalaxy {
    /// Galaxy type such as `mitre-attack-pattern` or `threat-actor`.
    pub galaxy_type: String,
    /// Cluster value such as `PowerShell - T1059.001`.
    pub value: String,
    /// The cluster's tag, `misp-galaxy:<type>="<value>"`.
    pub tag_name: String,
}

/// An event as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub file: FileEvent,
    pub agent: Agent,
    /// Wazuh's `location`; file events use `syscheck`.
    pub location: String,
    pub misp: Option<MispMatch>,
    full_log: String,
}

impl Event {
    /// Builds an event and its Wazuh-style `full_log`.
    pub fn new(file: FileEvent, agent: Agent, location: impl Into<String>) -> Self {
        let full_log = build_full_log(&file);
        Self {
            file,
            agent,
            location: location.into(),
            misp: None,
            full_log,
        }
    }

    /// Takes the `full_log` out, leaving it empty.
    pub(crate) fn take_full_log(&mut self) -> String {
        std::mem::take(&mut self.full_log)
    }

    /// Adds the intel enrichment.
    pub fn with_misp(mut self, misp: MispMatch) -> Self {
        self.misp = Some(misp);
        self
    }

    /// Returns the text that `<match>` and `<regex>` test, as Wazuh's syscheck decoder writes it.
    pub fn full_log(&self) -> &str {
        &self.full_log
    }

    /// Wazuh's decoder name, or `syscheck` when the kind is unknown.
    pub fn decoder_name(&self) -> &'static str {
        self.file
            .kind
            .map_or("syscheck", FileEventKind::decoder_name)
    }

    /// Looks a dynamic field up by its rule name (`file`, `md5`, `misp.event_id`, ...).
    pub fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        FieldKey::parse(name).and_then(|key| self.field_by_key(&key))
    }

    pub(crate) fn field_by_key(&self, key: &FieldKey) -> Option<Cow<'_, str>> {
        let f = &self.file;
        match key {
            FieldKey::File => Some(Cow::Borrowed(f.path.as_str())),
            FieldKey::Mode => borrowed(&f.mode),
            FieldKey::Attr(attr, before) => {
                let side = if *before { &f.before } else { &f.after };
                borrowed(attr.get(side))
            }
            FieldKey::ChangedFields => join_list(&f.changed_attributes),
            FieldKey::HardLinks if f.hard_links.is_empty() => None,
            FieldKey::HardLinks => Some(Cow::Owned(Value::from(f.hard_links.clone()).to_string())),
            FieldKey::SymbolicPath => borrowed(&f.symbolic_path),
            FieldKey::Tag => join_list(&f.tags),
            FieldKey::Diff => borrowed(&f.diff),
            FieldKey::EventType => f.kind.map(|k| Cow::Borrowed(k.as_str())),
            FieldKey::EntryType => Some(Cow::Borrowed("file")),
            FieldKey::Audit(section, name) => audit_field(&f.extra, section, name),
            FieldKey::Misp(key) => self.misp.as_ref().and_then(|m| key.get(m)),
        }
    }
}

fn borrowed(value: &Option<String>) -> Option<Cow<'_, str>> {
    value.as_deref().map(Cow::Borrowed)
}

fn join_list(values: &[String]) -> Option<Cow<'_, str>> {
    match values {
        [] => None,
        [one] => Some(Cow::Borrowed(one.as_str())),
        many => Some(Cow::Owned(many.join(","))),
    }
}

fn audit_field<'a>(
    extra: &'a Map<String, Value>,
    section: &str,
    name: &str,
) -> Option<Cow<'a, str>> {
    let value = extra.get("audit")?.get(section)?.get(name)?;
    match value {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// One attribute of [`FileAttributes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Size,
    Perm,
    Uid,
    Gid,
    Md5,
    Sha1,
    Sha256,
    Uname,
    Gname,
    Mtime,
    Inode,
}

impl Attr {
    /// Every attribute with its field name, in the order Wazuh writes them in alerts.
    pub(crate) const ALL: [(Attr, &'static str); 11] = [
        (Attr::Size, "size"),
        (Attr::Perm, "perm"),
        (Attr::Uid, "uid"),
        (Attr::Gid, "gid"),
        (Attr::Md5, "md5"),
        (Attr::Sha1, "sha1"),
        (Attr::Sha256, "sha256"),
        (Attr::Uname, "uname"),
        (Attr::Gname, "gname"),
        (Attr::Mtime, "mtime"),
        (Attr::Inode, "inode"),
    ];

    pub(crate) fn get(self, a: &FileAttributes) -> &Option<String> {
        match self {
            Attr::Size => &a.size,
            Attr::Perm => &a.perm,
            Attr::Uid => &a.uid,
            Attr::Gid => &a.gid,
            Attr::Md5 => &a.md5,
            Attr::Sha1 => &a.sha1,
            Attr::Sha256 => &a.sha256,
            Attr::Uname => &a.uname,
            Attr::Gname => &a.gname,
            Attr::Mtime => &a.mtime,
            Attr::Inode => &a.inode,
        }
    }

    pub(crate) fn get_mut(self, a: &mut FileAttributes) -> &mut Option<String> {
        match self {
            Attr::Size => &mut a.size,
            Attr::Perm => &mut a.perm,
            Attr::Uid => &mut a.uid,
            Attr::Gid => &mut a.gid,
            Attr::Md5 => &mut a.md5,
            Attr::Sha1 => &mut a.sha1,
            Attr::Sha256 => &mut a.sha256,
            Attr::Uname => &mut a.uname,
            Attr::Gname => &mut a.gname,
            Attr::Mtime => &mut a.mtime,
            Attr::Inode => &mut a.inode,
        }
    }
}

/// One field of [`MispMatch`] under its rule name `misp.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MispKey {
    EventId,
    EventUuid,
    EventInfo,
    ThreatLevelId,
    AttributeId,
    AttributeUuid,
    Type,
    Category,
    Value,
    Tags,
    Warninglists,
    Galaxies,
    MitreTechniques,
    Error,
}

impl MispKey {
    pub(crate) const ALL: [(MispKey, &'static str); 14] = [
        (MispKey::EventId, "event_id"),
        (MispKey::EventUuid, "event_uuid"),
        (MispKey::EventInfo, "event_info"),
        (MispKey::ThreatLevelId, "threat_level_id"),
        (MispKey::AttributeId, "attribute_id"),
        (MispKey::AttributeUuid, "attribute_uuid"),
        (MispKey::Type, "type"),
        (MispKey::Category, "category"),
        (MispKey::Value, "value"),
        (MispKey::Tags, "tags"),
        (MispKey::Warninglists, "warninglists"),
        (MispKey::Galaxies, "galaxies"),
        (MispKey::MitreTechniques, "mitre_techniques"),
        (MispKey::Error, "error"),
    ];

    fn get(self, m: &MispMatch) -> Option<Cow<'_, str>> {
        match self {
            MispKey::EventId => borrowed(&m.event_id),
            MispKey::EventUuid => borrowed(&m.event_uuid),
            MispKey::EventInfo => borrowed(&m.event_info),
            MispKey::ThreatLevelId => borrowed(&m.threat_level_id),
            MispKey::AttributeId => borrowed(&m.attribute_id),
            MispKey::AttributeUuid => borrowed(&m.attribute_uuid),
            MispKey::Type => borrowed(&m.attribute_type),
            MispKey::Category => borrowed(&m.category),
            MispKey::Value => borrowed(&m.value),
            MispKey::Tags => join_list(&m.tags),
            MispKey::Warninglists => join_list(&m.warninglists),
            MispKey::Galaxies if m.galaxies.is_empty() => None,
            MispKey::Galaxies => Some(Cow::Owned(
                m.galaxies
                    .iter()
                    .map(|g| g.value.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            MispKey::MitreTechniques if m.mitre_techniques.is_empty() => None,
            MispKey::MitreTechniques => Some(Cow::Owned(
                m.mitre_techniques
                    .iter()
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            MispKey::Error => borrowed(&m.error),
        }
    }
}

/// A field name resolved once when a rule is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldKey {
    File,
    Mode,
    /// An attribute, and whether it is the `_before` value.
    Attr(Attr, bool),
    ChangedFields,
    HardLinks,
    SymbolicPath,
    Tag,
    Diff,
    EventType,
    EntryType,
    /// Who-data from `syscheck.audit.<section>.<name>`.
    Audit(&'static str, &'static str),
    Misp(MispKey),
}

/// Who-data field names of Wazuh's decoder and where the alert keeps them.
const AUDIT_FIELDS: [(&str, &str, &str); 14] = [
    ("user_id", "user", "id"),
    ("user_name", "user", "name"),
    ("group_id", "group", "id"),
    ("group_name", "group", "name"),
    ("process_name", "process", "name"),
    ("process_id", "process", "id"),
    ("parent_name", "process", "parent_name"),
    ("cwd", "process", "cwd"),
    ("parent_cwd", "process", "parent_cwd"),
    ("ppid", "process", "ppid"),
    ("audit_uid", "login_user", "id"),
    ("audit_name", "login_user", "name"),
    ("effective_uid", "effective_user", "id"),
    ("effective_name", "effective_user", "name"),
];

impl FieldKey {
    /// Resolves a rule field name; `None` for a name no event carries.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let simple = match name {
            "file" => Some(Self::File),
            "mode" => Some(Self::Mode),
            "changed_fields" => Some(Self::ChangedFields),
            "hard_links" => Some(Self::HardLinks),
            "symbolic_path" => Some(Self::SymbolicPath),
            "tag" => Some(Self::Tag),
            "changed_content" => Some(Self::Diff),
            "event_type" => Some(Self::EventType),
            "entry_type" => Some(Self::EntryType),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        if let Some(key) = name.strip_prefix("misp.") {
            return MispKey::ALL
                .iter()
                .find(|(_, n)| *n == key)
                .map(|(k, _)| Self::Misp(*k));
        }
        if let Some((_, section, field)) = AUDIT_FIELDS.iter().find(|(n, _, _)| *n == name) {
            return Some(Self::Audit(section, field));
        }
        let (base, before) = match name.strip_suffix("_before") {
            Some(base) => (base, true),
            None => (name.strip_suffix("_after").unwrap_or(name), false),
        };
        Attr::ALL
            .iter()
            .find(|(_, n)| *n == base)
            .map(|(attr, _)| Self::Attr(*attr, before))
    }
}

/// Longest path shown whole in `full_log`, as Wazuh's `path_buffer` of 757 bytes.
const FULL_LOG_PATH_MAX: usize = 756;

fn shorten_path(path: &str) -> Cow<'_, str> {
    if path.len() <= FULL_LOG_PATH_MAX {
        return Cow::Borrowed(path);
    }
    let head_end = floor_boundary(path, 719);
    let tail_start = ceil_boundary(path, path.len() - 30);
    Cow::Owned(format!(
        "{} [...] {}",
        &path[..head_end],
        &path[tail_start..]
    ))
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Writes the `full_log` text of Wazuh's `fim_generate_alert` for a file entry.
fn build_full_log(file: &FileEvent) -> String {
    let event = file.kind.map_or("changed", FileEventKind::as_str);
    let mut log = format!("File '{}' {}\n", shorten_path(&file.path), event);
    if !file.hard_links.is_empty() {
        log.push_str(&format!("Hard links: {}\n", file.hard_links.join(",")));
    }
    if let Some(mode) = &file.mode {
        log.push_str(&format!("Mode: {mode}\n"));
    }
    if !file.changed_attributes.is_empty() {
        log.push_str(&format!(
            "Changed attributes: {}\n",
            file.changed_attributes.join(",")
        ));
    }
    if file.kind == Some(FileEventKind::Modified) {
        push_changes(&mut log, &file.before, &file.after);
    }
    log
}

/// Appends one line per changed attribute, in Wazuh's order and wording.
fn push_changes(log: &mut String, before: &FileAttributes, after: &FileAttributes) {
    let lines: [(Attr, &str); 11] = [
        (Attr::Size, "Size changed from '{0}' to '{1}'\n"),
        (Attr::Perm, "Permissions changed from '{0}' to '{1}'\n"),
        (Attr::Uid, "Ownership was '{0}', now it is '{1}'\n"),
        (Attr::Uname, "User name was '{0}', now it is '{1}'\n"),
        (Attr::Gid, "Group ownership was '{0}', now it is '{1}'\n"),
        (Attr::Gname, "Group name was '{0}', now it is '{1}'\n"),
        (
            Attr::Mtime,
            "Old modification time was: '{0}', now it is '{1}'\n",
        ),
        (Attr::Inode, "Old inode was: '{0}', now it is '{1}'\n"),
        (Attr::Md5, "Old md5sum was: '{0}'\nNew md5sum is : '{1}'\n"),
        (
            Attr::Sha1,
            "Old sha1sum was: '{0}'\nNew sha1sum is : '{1}'\n",
        ),
        (
            Attr::Sha256,
            "Old sha256sum was: '{0}'\nNew sha256sum is : '{1}'\n",
        ),
    ];
    for (attr, template) in lines {
        let old = attr.get(before).as_deref().unwrap_or("");
        let new = attr.get(after).as_deref().unwrap_or("");
        if old != new {
            log.push_str(&template.replace("{0}", old).replace("{1}", new));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modified() -> FileEvent {
        FileEvent {
            path: "/etc/hosts".into(),
            kind: Some(FileEventKind::Modified),
            mode: Some("realtime".into()),
            changed_attributes: vec!["size".into(), "md5".into()],
            before: FileAttributes {
                size: Some("10".into()),
                md5: Some("aa".into()),
                uid: Some("0".into()),
                ..Default::default()
            },
            after: FileAttributes {
                size: Some("12".into()),
                md5: Some("bb".into()),
                uid: Some("0".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn full_log_of_added_file() {
        let file = FileEvent {
            path: "/tmp/x".into(),
            kind: Some(FileEventKind::Added),
            mode: Some("realtime".into()),
            ..Default::default()
        };
        let event = Event::new(file, Agent::default(), "syscheck");
        assert_eq!(event.full_log(), "File '/tmp/x' added\nMode: realtime\n");
    }

    #[test]
    fn full_log_of_modified_file_lists_changes() {
        let event = Event::new(modified(), Agent::default(), "syscheck");
        assert_eq!(
            event.full_log(),
            "File '/etc/hosts' modified\nMode: realtime\nChanged attributes: size,md5\n\
             Size changed from '10' to '12'\n\
             Old md5sum was: 'aa'\nNew md5sum is : 'bb'\n"
        );
    }

    #[test]
    fn full_log_shortens_long_paths() {
        let path = format!("/{}", "a".repeat(800));
        let file = FileEvent {
            path,
            kind: Some(FileEventKind::Deleted),
            ..Default::default()
        };
        let log = Event::new(file, Agent::default(), "syscheck")
            .full_log()
            .to_string();
        assert!(log.contains(" [...] "));
        assert!(log.len() < 800);
    }

    #[test]
    fn fields_use_wazuh_names() {
        let event = Event::new(modified(), Agent::default(), "syscheck");
        assert_eq!(event.field("file").as_deref(), Some("/etc/hosts"));
        assert_eq!(event.field("md5").as_deref(), Some("bb"));
        assert_eq!(event.field("md5_after").as_deref(), Some("bb"));
        assert_eq!(event.field("md5_before").as_deref(), Some("aa"));
        assert_eq!(event.field("changed_fields").as_deref(), Some("size,md5"));
        assert_eq!(event.field("sha256"), None);
        assert_eq!(event.field("misp.event_id"), None);
        assert!(FieldKey::parse("nonsense").is_none());
    }

    #[test]
    fn misp_fields_are_joined() {
        let misp = MispMatch {
            event_id: Some("42".into()),
            tags: vec!["tlp:white".into(), "malware".into()],
            ..Default::default()
        };
        let event = Event::new(modified(), Agent::default(), "syscheck").with_misp(misp);
        assert_eq!(event.field("misp.event_id").as_deref(), Some("42"));
        assert_eq!(
            event.field("misp.tags").as_deref(),
            Some("tlp:white,malware")
        );
    }
}
