//! Ignore rules of one monitored directory: globs on names or relative paths, and regexes.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::bytes::RegexSet;

/// Compiled ignore rules. A matching directory is skipped with everything below it.
///
/// - A glob without `/` matches an entry's name at any depth (`*.swp`).
/// - A glob with `/` matches the path relative to the monitored directory (`cache/**`), or the
///   absolute path when it starts with `/`. `*` stops at `/`, `**` crosses it.
/// - A regex matches anywhere in the absolute path (anchor it with `^` and `$`).
#[derive(Clone, Debug)]
pub struct IgnoreRules {
    names: GlobSet,
    relative: GlobSet,
    absolute: GlobSet,
    regexes: RegexSet,
}

impl Default for IgnoreRules {
    fn default() -> Self {
        IgnoreRules {
            names: GlobSet::empty(),
            relative: GlobSet::empty(),
            absolute: GlobSet::empty(),
            regexes: RegexSet::empty(),
        }
    }
}

/// A rule that failed to compile: its index in the list and the compiler's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub index: usize,
    pub message: String,
}

impl IgnoreRules {
    /// Compiles the rules; returns every glob and regex that failed, not only the first.
    pub fn build(
        globs: &[String],
        regexes: &[String],
    ) -> Result<IgnoreRules, (Vec<RuleError>, Vec<RuleError>)> {
        let mut names = GlobSetBuilder::new();
        let mut relative = GlobSetBuilder::new();
        let mut absolute = GlobSetBuilder::new();
        let mut glob_errors = Vec::new();
        for (index, pattern) in globs.iter().enumerate() {
            match GlobBuilder::new(pattern).literal_separator(true).build() {
                Ok(glob) if pattern.starts_with('/') => {
                    absolute.add(glob);
                }
                Ok(glob) if pattern.contains('/') => {
                    relative.add(glob);
                }
                Ok(glob) => {
                    names.add(glob);
                }
                Err(e) => glob_errors.push(RuleError {
                    index,
                    message: e.kind().to_string(),
                }),
            }
        }
        let mut regex_errors = Vec::new();
        for (index, pattern) in regexes.iter().enumerate() {
            if let Err(e) = regex::bytes::Regex::new(pattern) {
                regex_errors.push(RuleError {
                    index,
                    message: e.to_string(),
                });
            }
        }
        if !glob_errors.is_empty() || !regex_errors.is_empty() {
            return Err((glob_errors, regex_errors));
        }
        let build = |b: GlobSetBuilder| b.build().unwrap_or_else(|_| GlobSet::empty());
        Ok(IgnoreRules {
            names: build(names),
            relative: build(relative),
            absolute: build(absolute),
            regexes: RegexSet::new(regexes).unwrap_or_else(|_| RegexSet::empty()),
        })
    }

    /// True when `path`, inside the monitored directory `root`, is ignored.
    pub fn is_ignored(&self, root: &Path, path: &Path) -> bool {
        if let Some(name) = path.file_name() {
            if !self.names.is_empty() && self.names.is_match(name) {
                return true;
            }
        }
        if !self.relative.is_empty() {
            if let Ok(rel) = path.strip_prefix(root) {
                if self.relative.is_match(rel) {
                    return true;
                }
            }
        }
        if !self.absolute.is_empty() && self.absolute.is_match(path) {
            return true;
        }
        !self.regexes.is_empty() && self.regexes.is_match(path.as_os_str().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(globs: &[&str], regexes: &[&str]) -> IgnoreRules {
        let g: Vec<String> = globs.iter().map(|s| s.to_string()).collect();
        let r: Vec<String> = regexes.iter().map(|s| s.to_string()).collect();
        IgnoreRules::build(&g, &r).unwrap()
    }

    #[test]
    fn name_glob_matches_at_any_depth() {
        let r = rules(&["*.swp"], &[]);
        let root = Path::new("/w");
        assert!(r.is_ignored(root, Path::new("/w/a/b/.x.swp")));
        assert!(!r.is_ignored(root, Path::new("/w/a/b/x.swpx")));
    }

    #[test]
    fn relative_glob_matches_from_root() {
        let r = rules(&["cache/*"], &[]);
        let root = Path::new("/w");
        assert!(r.is_ignored(root, Path::new("/w/cache/a")));
        assert!(!r.is_ignored(root, Path::new("/w/cache/a/b")));
        assert!(!r.is_ignored(root, Path::new("/w/x/cache/a")));
    }

    #[test]
    fn regex_matches_absolute_path() {
        let r = rules(&[], &[r"^/w/tmp[0-9]+$"]);
        assert!(r.is_ignored(Path::new("/w"), Path::new("/w/tmp12")));
        assert!(!r.is_ignored(Path::new("/w"), Path::new("/w/tmp12/x")));
    }

    #[test]
    fn every_bad_rule_is_reported() {
        let g = vec!["a[".to_string(), "ok".to_string(), "{x".to_string()];
        let r = vec!["(".to_string()];
        let (globs, regexes) = IgnoreRules::build(&g, &r).unwrap_err();
        assert_eq!(
            globs.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(regexes.len(), 1);
    }
}
