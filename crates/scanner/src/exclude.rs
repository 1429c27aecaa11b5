//! `--exclude` glob patterns: which paths a scan leaves out.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A glob pattern that is not valid.
#[derive(Debug, thiserror::Error)]
#[error("invalid exclude pattern `{pattern}`")]
pub struct ExcludeError {
    pattern: String,
    source: globset::Error,
}

/// Compiled exclude patterns. A pattern without `/` is matched against the file or directory
/// name (`*.iso`, `node_modules`). A pattern with `/` is matched against the whole path as the
/// walk produces it: the root as given, followed by the entries below it (`/proc/**`,
/// `data/cache/*`). In both, `*` and `?` never match `/`, and `**` matches any number of
/// directories.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    names: GlobSet,
    paths: GlobSet,
    len: usize,
}

impl Excludes {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Excludes, ExcludeError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|source| ExcludeError {
                    pattern: pattern.to_string(),
                    source,
                })?;
            if pattern.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |set: GlobSetBuilder| {
            set.build().map_err(|source| {
                let all: Vec<&str> = patterns.iter().map(AsRef::as_ref).collect();
                ExcludeError {
                    pattern: all.join(" "),
                    source,
                }
            })
        };
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
            len: patterns.len(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_match(&self, path: &Path) -> bool {
        let name_matches = path
            .file_name()
            .is_some_and(|name| self.names.is_match(name));
        name_matches || self.paths.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_pattern_matches_any_depth() {
        let excludes = Excludes::new(&["*.iso", "node_modules"]).unwrap();
        assert!(excludes.is_match(Path::new("/data/images/disk.iso")));
        assert!(excludes.is_match(Path::new("app/node_modules")));
        assert!(!excludes.is_match(Path::new("/data/iso/readme.txt")));
    }

    #[test]
    fn path_pattern_matches_whole_path() {
        let excludes = Excludes::new(&["/proc/**", "tree/*/cache"]).unwrap();
        assert!(excludes.is_match(Path::new("/proc/1/maps")));
        assert!(excludes.is_match(Path::new("tree/a/cache")));
        assert!(
            !excludes.is_match(Path::new("tree/a/b/cache")),
            "`*` must not cross `/`"
        );
        assert!(!excludes.is_match(Path::new("/home/proc/x")));
    }

    #[test]
    fn invalid_pattern_names_itself() {
        let err = Excludes::new(&["a[b"]).unwrap_err();
        assert!(err.to_string().contains("`a[b`"), "{err}");
    }

    #[test]
    fn empty_excludes_match_nothing() {
        let excludes = Excludes::default();
        assert!(excludes.is_empty());
        assert!(!excludes.is_match(Path::new("anything")));
    }
}
