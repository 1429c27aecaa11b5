//! Events the agent emits: file changes with Wazuh syscheck field names, and notices.
//!
//! A file event serialises as one flat JSON object, for example
//! `{"id":7,"boot_id":"…","timestamp":"…","type":"file","path":"/etc/hosts","event":"modified",
//! "mode":"realtime","changed_attributes":["size","md5"],"size_before":10,"size_after":12,…}`.
//! `added` events carry only `*_after` fields, `deleted` events only `*_before` fields, and
//! `modified` events both. Only the attributes selected by the directory's `check` appear.

use serde::{Deserialize, Serialize};

use crate::state::{format_perm, format_time_ns, FileState, HashSkip};
use crate::sys::users::NameCache;

/// One message from the agent, with a unique id for de-duplication of resends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number, strictly increasing across restarts of one baseline database.
    pub id: u64,
    /// Random id of the baseline database; with `id` it names the event uniquely.
    pub baseline_id: String,
    /// The kernel's boot id when the event was produced.
    pub boot_id: String,
    /// RFC 3339 time, UTC, with microseconds.
    pub timestamp: String,
    #[serde(flatten)]
    pub body: EventBody,
}

/// Event payload, serialised with a `type` field.
// File events are the common case, so boxing them would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    File(FileEvent),
    Notice(Notice),
}

impl Event {
    pub fn as_file(&self) -> Option<&FileEvent> {
        match &self.body {
            EventBody::File(f) => Some(f),
            EventBody::Notice(_) => None,
        }
    }

    pub fn as_notice(&self) -> Option<&Notice> {
        match &self.body {
            EventBody::Notice(n) => Some(n),
            EventBody::File(_) => None,
        }
    }
}

/// Kind of file change (Wazuh `syscheck.event`), plus `quarantined` for active responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileEventKind {
    #[default]
    Added,
    Modified,
    Deleted,
    Quarantined,
}

/// Detection method of a change (Wazuh `syscheck.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// An inotify event.
    #[default]
    Realtime,
    /// A scan: at start, on schedule, or after an inotify queue overflow.
    Scheduled,
    /// A request from the manager, such as quarantine.
    ActiveResponse,
}

/// Attribute names of `changed_attributes`, as Wazuh syscheck spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    Size,
    Permission,
    Uid,
    Gid,
    UserName,
    GroupName,
    Mtime,
    Inode,
    Md5,
    Sha1,
    Sha256,
}

/// Set of attributes a monitored directory records and compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckSet {
    pub md5: bool,
    pub sha1: bool,
    pub sha256: bool,
    pub size: bool,
    pub permissions: bool,
    /// uid and user name.
    pub owner: bool,
    /// gid and group name.
    pub group: bool,
    pub mtime: bool,
    pub inode: bool,
}

impl CheckSet {
    pub const ALL: CheckSet = CheckSet {
        md5: true,
        sha1: true,
        sha256: true,
        size: true,
        permissions: true,
        owner: true,
        group: true,
        mtime: true,
        inode: true,
    };

    pub fn algorithms(&self) -> hashing::Algorithms {
        hashing::Algorithms {
            md5: self.md5,
            sha1: self.sha1,
            sha256: self.sha256,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A file added, modified, deleted or quarantined, with Wazuh syscheck field names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileEvent {
    /// Absolute path; bytes that are not UTF-8 are replaced with U+FFFD. Quarantine finds
    /// such a file again when exactly one name in its folder reads the same.
    pub path: String,
    pub event: FileEventKind,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perm_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perm_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gname_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gname_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_after: Option<String>,
    /// True when the current content was not hashed, for the reason in `hash_skipped_reason`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hash_skipped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_skipped_reason: Option<HashSkip>,
    /// New path of a quarantined file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_path: Option<String>,
}

/// One side (before or after) of a file event, already formatted.
struct Side {
    size: Option<u64>,
    perm: Option<String>,
    uid: Option<String>,
    gid: Option<String>,
    uname: Option<String>,
    gname: Option<String>,
    mtime: Option<String>,
    inode: Option<u64>,
    md5: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
}

impl Side {
    fn of(state: &FileState, check: &CheckSet, names: &mut NameCache) -> Side {
        Side {
            size: check.size.then_some(state.size),
            perm: check.permissions.then(|| format_perm(state.perm)),
            uid: check.owner.then(|| state.uid.to_string()),
            gid: check.group.then(|| state.gid.to_string()),
            uname: if check.owner {
                names.user(state.uid)
            } else {
                None
            },
            gname: if check.group {
                names.group(state.gid)
            } else {
                None
            },
            mtime: check.mtime.then(|| format_time_ns(state.mtime_ns)),
            inode: check.inode.then_some(state.inode),
            md5: state.md5.filter(|_| check.md5).map(hex::encode),
            sha1: state.sha1.filter(|_| check.sha1).map(hex::encode),
            sha256: state.sha256.filter(|_| check.sha256).map(hex::encode),
        }
    }
}

impl FileEvent {
    /// Builds the event for a change from `before` to `after` (either may be absent, not both).
    ///
    /// Returns `None` for a modification in which no checked attribute changed.
    pub(crate) fn from_change(
        path: String,
        mode: Mode,
        before: Option<&FileState>,
        after: Option<&FileState>,
        check: &CheckSet,
        names: &mut NameCache,
    ) -> Option<FileEvent> {
        let kind = match (before, after) {
            (None, Some(_)) => FileEventKind::Added,
            (Some(_), None) => FileEventKind::Deleted,
            (Some(_), Some(_)) => FileEventKind::Modified,
            (None, None) => return None,
        };
        let mut event = FileEvent {
            path,
            event: kind,
            mode,
            ..Default::default()
        };
        let before_side = before.map(|s| Side::of(s, check, names));
        let after_side = after.map(|s| Side::of(s, check, names));
        if let (Some(b), Some(a)) = (&before_side, &after_side) {
            event.changed_attributes = changed_attributes(b, a);
            if event.changed_attributes.is_empty() {
                return None;
            }
        }
        if let Some(b) = before_side {
            event.set_before(b);
        }
        if let Some(a) = after_side {
            event.set_after(a);
        }
        if let Some(reason) = after.and_then(|s| s.hash_skipped) {
            event.hash_skipped = true;
            event.hash_skipped_reason = Some(reason);
        }
        Some(event)
    }

    fn set_before(&mut self, s: Side) {
        self.size_before = s.size;
        self.perm_before = s.perm;
        self.uid_before = s.uid;
        self.gid_before = s.gid;
        self.uname_before = s.uname;
        self.gname_before = s.gname;
        self.mtime_before = s.mtime;
        self.inode_before = s.inode;
        self.md5_before = s.md5;
        self.sha1_before = s.sha1;
        self.sha256_before = s.sha256;
    }

    fn set_after(&mut self, s: Side) {
        self.size_after = s.size;
        self.perm_after = s.perm;
        self.uid_after = s.uid;
        self.gid_after = s.gid;
        self.uname_after = s.uname;
        self.gname_after = s.gname;
        self.mtime_after = s.mtime;
        self.inode_after = s.inode;
        self.md5_after = s.md5;
        self.sha1_after = s.sha1;
        self.sha256_after = s.sha256;
    }

    /// Returns the current sha256 (after the change), or the last known one for a deletion.
    pub fn sha256(&self) -> Option<&str> {
        self.sha256_after
            .as_deref()
            .or(self.sha256_before.as_deref())
    }
}

/// Compares two formatted sides. A digest missing on either side (not computed) does not
/// count as a change; the event then carries `hash_skipped`.
fn changed_attributes(b: &Side, a: &Side) -> Vec<Attribute> {
    fn differs<T: PartialEq>(x: &Option<T>, y: &Option<T>) -> bool {
        x.is_some() && y.is_some() && x != y
    }
    let mut out = Vec::new();
    let checks = [
        (differs(&b.size, &a.size), Attribute::Size),
        (differs(&b.perm, &a.perm), Attribute::Permission),
        (differs(&b.uid, &a.uid), Attribute::Uid),
        (differs(&b.gid, &a.gid), Attribute::Gid),
        (differs(&b.uname, &a.uname), Attribute::UserName),
        (differs(&b.gname, &a.gname), Attribute::GroupName),
        (differs(&b.mtime, &a.mtime), Attribute::Mtime),
        (differs(&b.inode, &a.inode), Attribute::Inode),
        (differs(&b.md5, &a.md5), Attribute::Md5),
        (differs(&b.sha1, &a.sha1), Attribute::Sha1),
        (differs(&b.sha256, &a.sha256), Attribute::Sha256),
    ];
    for (changed, attribute) in checks {
        if changed {
            out.push(attribute);
        }
    }
    out
}

/// Something the agent reports that is not a file change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub notice: NoticeKind,
    /// The directory concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
    /// Totals of a finished scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanSummary>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    ScanStarted,
    ScanFinished,
    /// The kernel dropped inotify events; a rescan follows.
    QueueOverflow,
    /// The inotify watch limit was reached; a subtree falls back to scheduled scans.
    WatchLimit,
    /// A monitored directory does not exist (any more); the agent waits for it.
    DirectoryMissing,
}

/// Reason a scan ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    /// The first scan of an empty baseline: records files without reporting them.
    Baseline,
    /// The scan at start against an existing baseline, or one on schedule.
    Scheduled,
    /// A rescan after an inotify queue overflow.
    Rescan,
}

impl ScanKind {
    /// The name used in JSON (`baseline`, `scheduled`, `rescan`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Baseline => "baseline",
            ScanKind::Scheduled => "scheduled",
            ScanKind::Rescan => "rescan",
        }
    }
}

/// Totals of one scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub kind: ScanKind,
    /// Regular files seen.
    pub files: u64,
    /// Files read and hashed (the others were unchanged since the last scan).
    pub hashed: u64,
    /// Bytes read to hash.
    pub bytes: u64,
    /// File events the scan produced.
    pub events: u64,
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(size: u64, sha: u8) -> FileState {
        FileState {
            size,
            perm: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 1_600_000_000_000_000_000,
            ctime_ns: 0,
            inode: 42,
            dev: 1,
            md5: Some([sha; 16]),
            sha1: Some([sha; 20]),
            sha256: Some([sha; 32]),
            hash_skipped: None,
        }
    }

    #[test]
    fn modified_lists_changed_attributes() {
        let mut names = NameCache::default();
        let event = FileEvent::from_change(
            "/x".into(),
            Mode::Realtime,
            Some(&state(1, 1)),
            Some(&state(2, 2)),
            &CheckSet::ALL,
            &mut names,
        )
        .unwrap();
        assert_eq!(event.event, FileEventKind::Modified);
        assert_eq!(
            event.changed_attributes,
            vec![
                Attribute::Size,
                Attribute::Md5,
                Attribute::Sha1,
                Attribute::Sha256
            ]
        );
        assert_eq!(event.size_before, Some(1));
        assert_eq!(event.size_after, Some(2));
        assert_eq!(event.perm_after.as_deref(), Some("rw-r--r--"));
        assert_eq!(event.uname_after.as_deref(), Some("root"));
    }

    #[test]
    fn unchanged_checked_attributes_give_no_event() {
        let mut names = NameCache::default();
        let mut after = state(1, 1);
        after.ctime_ns = 5;
        let event = FileEvent::from_change(
            "/x".into(),
            Mode::Scheduled,
            Some(&state(1, 1)),
            Some(&after),
            &CheckSet::ALL,
            &mut names,
        );
        assert!(event.is_none());
    }

    #[test]
    fn unchecked_attribute_is_left_out() {
        let mut names = NameCache::default();
        let check = CheckSet {
            sha1: false,
            md5: false,
            ..CheckSet::ALL
        };
        let event = FileEvent::from_change(
            "/x".into(),
            Mode::Realtime,
            None,
            Some(&state(1, 1)),
            &check,
            &mut names,
        )
        .unwrap();
        assert_eq!(event.md5_after, None);
        assert_eq!(event.sha1_after, None);
        assert!(event.sha256_after.is_some());
    }

    #[test]
    fn event_serialises_flat_with_wazuh_names() {
        let mut names = NameCache::default();
        let body = FileEvent::from_change(
            "/x".into(),
            Mode::Realtime,
            None,
            Some(&state(3, 9)),
            &CheckSet::ALL,
            &mut names,
        )
        .unwrap();
        let event = Event {
            id: 5,
            baseline_id: "b".into(),
            boot_id: "k".into(),
            timestamp: "t".into(),
            body: EventBody::File(body),
        };
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "file");
        assert_eq!(json["event"], "added");
        assert_eq!(json["mode"], "realtime");
        assert_eq!(json["size_after"], 3);
        assert_eq!(json["uid_after"], "0");
        assert_eq!(json["inode_after"], 42);
        assert_eq!(json["mtime_after"], "2020-09-13T12:26:40Z");
        assert!(json.get("size_before").is_none());
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
