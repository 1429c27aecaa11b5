//! Agent configuration: the TOML file format, its defaults, and one validation step that
//! reports every problem at once.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::event::CheckSet;
use crate::ignore::IgnoreRules;

/// Every default of the configuration, in one place.
pub mod defaults {
    /// Twelve hours between scheduled scans.
    pub const SCAN_INTERVAL_SECS: u64 = 12 * 60 * 60;
    pub const SCAN_ON_START: bool = true;
    /// 1 GiB; larger files are reported with metadata only.
    pub const MAX_FILE_BYTES: u64 = 1 << 30;
    pub const SKIP_SPECIAL_FILESYSTEMS: bool = true;
    pub const SCAN_NETWORK_FILESYSTEMS: bool = false;
    /// Directory levels below a monitored directory (Wazuh's `recursion_level` default).
    pub const RECURSION_DEPTH: u32 = 256;
    pub const REALTIME: bool = true;
    pub const FOLLOW_SYMLINKS: bool = false;
    /// Baseline database file, relative to the data directory.
    pub const DATABASE_FILE: &str = "fim/baseline.sqlite";
    /// Quarantine folder, relative to the data directory.
    pub const QUARANTINE_DIR: &str = "quarantine";
}

/// Deepest `recursion_depth` accepted.
pub const MAX_RECURSION_DEPTH: u32 = 1024;

/// Kernel and virtual file systems never worth hashing.
pub const SPECIAL_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "selinuxfs",
    "rpc_pipefs",
    "nsfs",
];

/// Network file systems, skipped unless `scan_network_filesystems` is set.
pub const NETWORK_FILESYSTEMS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "9p",
    "afs",
];

/// Names accepted in a directory's `check` list.
pub const CHECK_NAMES: &[&str] = &[
    "md5",
    "sha1",
    "sha256",
    "size",
    "permissions",
    "owner",
    "group",
    "mtime",
    "inode",
];

/// The TOML file as written; every field is optional except `directories`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub scan_interval_secs: Option<u64>,
    pub scan_on_start: Option<bool>,
    pub max_file_bytes: Option<u64>,
    pub skip_special_filesystems: Option<bool>,
    pub scan_network_filesystems: Option<bool>,
    /// Cap on emitted events per second; absent means no cap.
    pub max_events_per_sec: Option<u32>,
    /// Cap on inotify watches this agent adds; absent means the kernel's limit.
    pub max_watches: Option<u64>,
    pub database_path: Option<PathBuf>,
    pub quarantine_dir: Option<PathBuf>,
    pub output: Option<OutputFile>,
    /// The `[manager]` section, kept as written: the binary parses and checks it, so this
    /// crate stays free of the link's dependencies.
    pub manager: Option<toml::Table>,
    #[serde(default)]
    pub directories: Vec<DirectoryFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// `stdout` or `file`.
    pub kind: String,
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    pub path: PathBuf,
    pub recursion_depth: Option<u32>,
    pub realtime: Option<bool>,
    pub follow_symlinks: Option<bool>,
    pub check: Option<Vec<String>>,
    #[serde(default)]
    pub ignore_globs: Vec<String>,
    #[serde(default)]
    pub ignore_regexes: Vec<String>,
}

/// Location of the baseline database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    File(PathBuf),
    /// Kept only for the life of the process (`iocwatch watch`).
    Memory,
}

/// Destination of the local sink's JSON lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputConfig {
    Stdout,
    File(PathBuf),
}

/// One monitored directory, validated.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    pub path: PathBuf,
    pub recursion_depth: u32,
    pub realtime: bool,
    pub follow_symlinks: bool,
    pub check: CheckSet,
    pub ignore: IgnoreRules,
}

/// The validated configuration the agent runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub directories: Vec<DirectoryConfig>,
    pub scan_interval: Duration,
    pub scan_on_start: bool,
    pub max_file_bytes: u64,
    /// File system types (as in `/proc/self/mountinfo`) that are never entered.
    pub skipped_fs_types: Vec<String>,
    pub max_events_per_sec: Option<u32>,
    pub max_watches: Option<u64>,
    pub database: DatabaseLocation,
    pub quarantine_dir: PathBuf,
    pub output: OutputConfig,
    /// The `[manager]` section as written, when present.
    pub manager: Option<toml::Table>,
    /// When the baseline is empty, record the first scan without reporting it. Off for
    /// `iocwatch watch`, which reports every existing file.
    pub silent_first_scan: bool,
    /// The agent's own files (database, quarantine, output), never monitored.
    pub own_paths: Vec<PathBuf>,
}

/// A configuration problem: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// Loading or validating a configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read agent config `{path}`")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid agent config `{path}`")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid agent config: {}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s)", self.0.len())?;
        for p in self.0 {
            write!(f, "\n  `{}`: {}", p.field, p.message)?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and validates the TOML file at `path`.
    pub fn load(path: &Path, data_dir: &Path) -> Result<Config, ConfigError> {
        ConfigFile::read(path)?.validate(data_dir)
    }

    /// Builds a configuration for `dirs` with every default, as `iocwatch watch` uses it.
    pub fn for_directories(dirs: &[PathBuf], data_dir: &Path) -> Result<Config, ConfigError> {
        let file = ConfigFile {
            directories: dirs
                .iter()
                .map(|d| DirectoryFile {
                    path: d.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        file.validate(data_dir)
    }
}

impl ConfigFile {
    /// Reads and parses the TOML file at `path`, without validating it.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Applies defaults and checks every field; relative default paths hang off `data_dir`.
    pub fn validate(self, data_dir: &Path) -> Result<Config, ConfigError> {
        self.validate_with(data_dir, Vec::new())
    }

    /// Like [`ConfigFile::validate`], reporting `extra` (problems the caller found in
    /// sections it checks itself, such as `[manager]`) together with the others.
    pub fn validate_with(
        self,
        data_dir: &Path,
        extra: Vec<Problem>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut problem =
            |field: String, message: String| problems.push(Problem { field, message });

        let scan_interval_secs = self
            .scan_interval_secs
            .unwrap_or(defaults::SCAN_INTERVAL_SECS);
        if scan_interval_secs == 0 {
            problem("scan_interval_secs".into(), "must be at least 1".into());
        }
        let max_file_bytes = self.max_file_bytes.unwrap_or(defaults::MAX_FILE_BYTES);
        if max_file_bytes == 0 {
            problem("max_file_bytes".into(), "must be at least 1".into());
        }
        if self.max_events_per_sec == Some(0) {
            problem(
                "max_events_per_sec".into(),
                "must be at least 1; leave it out for no cap".into(),
            );
        }
        if self.max_watches == Some(0) {
            problem(
                "max_watches".into(),
                "must be at least 1; leave it out for no cap".into(),
            );
        }

        let data_dir = absolute(data_dir);
        let database = match &self.database_path {
            Some(p) => {
                check_absolute(p, "database_path", &mut problem);
                DatabaseLocation::File(p.clone())
            }
            None => DatabaseLocation::File(data_dir.join(defaults::DATABASE_FILE)),
        };
        let quarantine_dir = match &self.quarantine_dir {
            Some(p) => {
                check_absolute(p, "quarantine_dir", &mut problem);
                p.clone()
            }
            None => data_dir.join(defaults::QUARANTINE_DIR),
        };
        let output = validate_output(self.output.as_ref(), &mut problem);

        if self.directories.is_empty() {
            problem(
                "directories".into(),
                "at least one [[directories]] entry is required".into(),
            );
        }
        let mut directories = Vec::new();
        for (i, dir) in self.directories.into_iter().enumerate() {
            let seen: Vec<&Path> = directories
                .iter()
                .map(|d: &DirectoryConfig| d.path.as_path())
                .collect();
            if seen.contains(&dir.path.as_path()) {
                problem(
                    format!("directories[{i}].path"),
                    format!("`{}` is listed twice", dir.path.display()),
                );
            }
            if let Some(d) = validate_directory(i, dir, &mut problem) {
                directories.push(d);
            }
        }

        let mut skipped_fs_types = Vec::new();
        if self
            .skip_special_filesystems
            .unwrap_or(defaults::SKIP_SPECIAL_FILESYSTEMS)
        {
            skipped_fs_types.extend(SPECIAL_FILESYSTEMS.iter().map(|s| s.to_string()));
        }
        if !self
            .scan_network_filesystems
            .unwrap_or(defaults::SCAN_NETWORK_FILESYSTEMS)
        {
            skipped_fs_types.extend(NETWORK_FILESYSTEMS.iter().map(|s| s.to_string()));
        }

        problems.extend(extra);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let mut own_paths = vec![quarantine_dir.clone()];
        if let DatabaseLocation::File(p) = &database {
            own_paths.extend(database_files(p));
        }
        if let OutputConfig::File(p) = &output {
            own_paths.push(p.clone());
        }
        Ok(Config {
            directories,
            scan_interval: Duration::from_secs(scan_interval_secs),
            scan_on_start: self.scan_on_start.unwrap_or(defaults::SCAN_ON_START),
            max_file_bytes,
            skipped_fs_types,
            max_events_per_sec: self.max_events_per_sec,
            max_watches: self.max_watches,
            database,
            quarantine_dir,
            output,
            manager: self.manager,
            silent_first_scan: true,
            own_paths,
        })
    }
}

/// Suffixes of the files SQLite and the agent keep next to the baseline database: its
/// write-ahead log, shared memory, rollback journal and the agent's lock file.
pub const DATABASE_SIDE_FILES: &[&str] = &["-wal", "-shm", "-journal", ".lock"];

/// The baseline database and the files kept next to it, which the agent never reports;
/// the rest of the folder around them is monitored like any other.
pub fn database_files(database: &Path) -> Vec<PathBuf> {
    let mut files = vec![database.to_path_buf()];
    for suffix in DATABASE_SIDE_FILES {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

fn validate_output(
    output: Option<&OutputFile>,
    problem: &mut impl FnMut(String, String),
) -> OutputConfig {
    let Some(out) = output else {
        return OutputConfig::Stdout;
    };
    match (out.kind.as_str(), &out.path) {
        ("stdout", None) => OutputConfig::Stdout,
        ("stdout", Some(_)) => {
            problem(
                "output.path".into(),
                "only allowed with kind = \"file\"".into(),
            );
            OutputConfig::Stdout
        }
        ("file", Some(p)) => {
            check_absolute(p, "output.path", problem);
            OutputConfig::File(p.clone())
        }
        ("file", None) => {
            problem("output.path".into(), "required with kind = \"file\"".into());
            OutputConfig::Stdout
        }
        (other, _) => {
            problem(
                "output.kind".into(),
                format!("unknown kind `{other}`; use \"stdout\" or \"file\""),
            );
            OutputConfig::Stdout
        }
    }
}

fn validate_directory(
    i: usize,
    dir: DirectoryFile,
    problem: &mut impl FnMut(String, String),
) -> Option<DirectoryConfig> {
    let field = |name: &str| format!("directories[{i}].{name}");
    let mut ok = true;
    if !dir.path.is_absolute() {
        problem(
            field("path"),
            format!("must be an absolute path, got `{}`", dir.path.display()),
        );
        ok = false;
    } else if dir
        .path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        problem(
            field("path"),
            format!("must not contain `.` or `..`, got `{}`", dir.path.display()),
        );
        ok = false;
    }
    let recursion_depth = dir.recursion_depth.unwrap_or(defaults::RECURSION_DEPTH);
    if recursion_depth > MAX_RECURSION_DEPTH {
        problem(
            field("recursion_depth"),
            format!("must be at most {MAX_RECURSION_DEPTH}, got {recursion_depth}"),
        );
        ok = false;
    }
    let check = match &dir.check {
        None => CheckSet::ALL,
        Some(names) => parse_check(names, &field("check"), problem).unwrap_or_else(|| {
            ok = false;
            CheckSet::ALL
        }),
    };
    let ignore = match IgnoreRules::build(&dir.ignore_globs, &dir.ignore_regexes) {
        Ok(rules) => rules,
        Err((globs, regexes)) => {
            for e in globs {
                let pattern = &dir.ignore_globs[e.index];
                problem(
                    format!("{}[{}]", field("ignore_globs"), e.index),
                    format!("invalid glob `{pattern}`: {}", e.message),
                );
            }
            for e in regexes {
                let pattern = &dir.ignore_regexes[e.index];
                problem(
                    format!("{}[{}]", field("ignore_regexes"), e.index),
                    format!("invalid regex `{pattern}`: {}", e.message),
                );
            }
            return None;
        }
    };
    ok.then(|| DirectoryConfig {
        path: dir.path,
        recursion_depth,
        realtime: dir.realtime.unwrap_or(defaults::REALTIME),
        follow_symlinks: dir.follow_symlinks.unwrap_or(defaults::FOLLOW_SYMLINKS),
        check,
        ignore,
    })
}

fn parse_check(
    names: &[String],
    field: &str,
    problem: &mut impl FnMut(String, String),
) -> Option<CheckSet> {
    let mut set = CheckSet {
        md5: false,
        sha1: false,
        sha256: false,
        size: false,
        permissions: false,
        owner: false,
        group: false,
        mtime: false,
        inode: false,
    };
    let mut ok = true;
    for (j, name) in names.iter().enumerate() {
        let flag = match name.as_str() {
            "md5" => &mut set.md5,
            "sha1" => &mut set.sha1,
            "sha256" => &mut set.sha256,
            "size" => &mut set.size,
            "permissions" => &mut set.permissions,
            "owner" => &mut set.owner,
            "group" => &mut set.group,
            "mtime" => &mut set.mtime,
            "inode" => &mut set.inode,
            other => {
                let known = CHECK_NAMES.join(", ");
                problem(
                    format!("{field}[{j}]"),
                    format!("unknown attribute `{other}`; use one of {known}"),
                );
                ok = false;
                continue;
            }
        };
        *flag = true;
    }
    if names.is_empty() {
        problem(
            field.to_string(),
            "must name at least one attribute; leave it out to check all".into(),
        );
        ok = false;
    }
    ok.then_some(set)
}

fn check_absolute(path: &Path, field: &str, problem: &mut impl FnMut(String, String)) {
    if !path.is_absolute() {
        problem(
            field.to_string(),
            format!("must be an absolute path, got `{}`", path.display()),
        );
    }
}

/// Makes `path` absolute against the current directory, without touching the file system.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).unwrap();
        file.validate(Path::new("/var/lib/iocwatch"))
    }

    #[test]
    fn defaults_apply() {
        let config = parse("[[directories]]\npath = \"/etc\"\n").unwrap();
        assert_eq!(config.scan_interval, Duration::from_secs(43_200));
        assert!(config.scan_on_start);
        assert_eq!(config.max_file_bytes, 1 << 30);
        assert_eq!(config.max_events_per_sec, None);
        assert!(config.skipped_fs_types.iter().any(|t| t == "proc"));
        assert!(config.skipped_fs_types.iter().any(|t| t == "nfs4"));
        assert_eq!(
            config.database,
            DatabaseLocation::File("/var/lib/iocwatch/fim/baseline.sqlite".into())
        );
        let dir = &config.directories[0];
        assert!(dir.realtime);
        assert!(!dir.follow_symlinks);
        assert_eq!(dir.recursion_depth, 256);
        assert_eq!(dir.check, CheckSet::ALL);
    }

    #[test]
    fn own_paths_name_the_database_files_not_their_folder() {
        let text = "database_path = \"/srv/b.sqlite\"\n[[directories]]\npath = \"/srv/watch\"\n";
        let config = parse(text).unwrap();
        for name in [
            "b.sqlite",
            "b.sqlite-wal",
            "b.sqlite-shm",
            "b.sqlite-journal",
            "b.sqlite.lock",
        ] {
            let path = Path::new("/srv").join(name);
            assert!(config.own_paths.contains(&path), "{name} missing");
        }
        assert!(!config.own_paths.iter().any(|p| p == Path::new("/srv")));
        assert!(!config
            .own_paths
            .iter()
            .any(|p| Path::new("/srv/watch/new.txt").starts_with(p)));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            scan_interval_secs = 0
            max_events_per_sec = 0
            [output]
            kind = "syslog"
            [[directories]]
            path = "relative"
            check = ["md5", "colour"]
            ignore_globs = ["a["]
            ignore_regexes = ["("]
        "#;
        let ConfigError::Invalid(problems) = parse(text).unwrap_err() else {
            panic!()
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"scan_interval_secs"));
        assert!(fields.contains(&"max_events_per_sec"));
        assert!(fields.contains(&"output.kind"));
        assert!(fields.contains(&"directories[0].path"));
        assert!(fields.contains(&"directories[0].check[1]"));
        assert!(fields.contains(&"directories[0].ignore_globs[0]"));
        assert!(fields.contains(&"directories[0].ignore_regexes[0]"));
    }

    #[test]
    fn manager_section_kept_with_extra_problems() {
        let text = "[manager]\nkeepalive_secs = 5\n[[directories]]\npath = \"/etc\"\n";
        let config = parse(text).unwrap();
        let manager = config.manager.unwrap();
        assert_eq!(manager["keepalive_secs"].as_integer(), Some(5));

        let file: ConfigFile = toml::from_str("scan_interval_secs = 0\n[manager]\n").unwrap();
        let extra = vec![Problem {
            field: "manager.keepalive_secs".into(),
            message: "must be at least 1".into(),
        }];
        let ConfigError::Invalid(problems) = file
            .validate_with(Path::new("/var/lib/iocwatch"), extra)
            .unwrap_err()
        else {
            panic!()
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"scan_interval_secs"));
        assert!(fields.contains(&"directories"));
        assert!(fields.contains(&"manager.keepalive_secs"));
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = toml::from_str::<ConfigFile>("scan_intervall_secs = 5").unwrap_err();
        assert!(err.to_string().contains("scan_intervall_secs"));
    }

    #[test]
    fn network_filesystems_on_request() {
        let config =
            parse("scan_network_filesystems = true\n[[directories]]\npath = \"/srv\"\n").unwrap();
        assert!(!config.skipped_fs_types.iter().any(|t| t == "nfs"));
        assert!(config.skipped_fs_types.iter().any(|t| t == "sysfs"));
    }

    #[test]
    fn duplicate_directory_is_rejected() {
        let text = "[[directories]]\npath = \"/etc\"\n[[directories]]\npath = \"/etc\"\n";
        let ConfigError::Invalid(problems) = parse(text).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems[0].field, "directories[1].path");
    }
}
