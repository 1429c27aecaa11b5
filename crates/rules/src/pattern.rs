//! Wazuh's three pattern languages (OS_Match, OS_Regex, PCRE2), compiled once at load.
//!
//! OS_Match and OS_Regex are translated to the `regex` crate; the semantics follow
//! Wazuh 4.14 `src/os_regex/` (read for this port, not copied):
//!
//! * OS_Match (`sregex`): literal text, ASCII case-insensitive, `|` separates
//!   alternatives, `^` at the start and `$` at the end of an alternative anchor it,
//!   an empty alternative matches everything, and a leading `!` negates the whole pattern.
//! * OS_Regex (`regex`): ASCII case-insensitive search where `\w` is `[A-Za-z0-9_@-]`,
//!   `\d` is `[0-9]`, `\s` is a space only, `\t` a tab, `\p` is the punctuation set
//!   ``()*+,-.:;<=>?[]!"'#$%&|{}``, `\W \D \S` their complements, `\.` any character,
//!   and `\( \) \\ \$ \| \<` the literal characters. `+` and `*` quantify only the
//!   escape right before them; after a plain character they are literal. `(` `)` group
//!   (one level, no `|` inside), `|` separates alternatives, `^`/`$` anchor an
//!   alternative only at its ends. Any other escape is an error, as in Wazuh.
//! * PCRE2 (`type="pcre2"`): compiled with `fancy-regex`, case-sensitive like Wazuh's
//!   `pcre2_compile(..., 0, ...)`. fancy-regex is pure Rust (no libpcre2 on the build
//!   host) and covers the PCRE features rules use: look-around, back-references,
//!   atomic groups, possessive quantifiers and inline flags such as `(?i)`.
//!
//! NOTE: Wazuh's OS_Regex matcher backtracks at most four positions, so a few patterns
//! such as `\w+\w` that need more backtracking match here but not in Wazuh.

use std::fmt;

/// Pattern language of an element (its `type=` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternType {
    OsMatch,
    OsRegex,
    Pcre2,
}

impl PatternType {
    /// Parses the `type` attribute value; Wazuh compares it without case.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "osmatch" => Some(Self::OsMatch),
            "osregex" => Some(Self::OsRegex),
            "pcre2" => Some(Self::Pcre2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OsMatch => "osmatch",
            Self::OsRegex => "osregex",
            Self::Pcre2 => "pcre2",
        }
    }
}

impl fmt::Display for PatternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
enum Compiled {
    Std(regex::Regex),
    Fancy(fancy_regex::Regex),
}

/// A PCRE2 match that stopped without a result, with fancy-regex's reason (such as its
/// backtracking limit being exceeded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pcre2 match aborted: {0}")]
pub struct MatchAborted(pub String);

/// A compiled pattern with its `negate="yes"` flag.
#[derive(Debug, Clone)]
pub struct Pattern {
    compiled: Compiled,
    /// OS_Match `!` prefix: the result of the match is inverted.
    inverted: bool,
    /// The rule's `negate="yes"`: the element matches when the pattern does not.
    pub negate: bool,
    pub kind: PatternType,
    pub source: String,
}

/// Maximum pattern length in bytes, as Wazuh's `OS_PATTERN_MAXSIZE`.
const MAX_PATTERN_BYTES: usize = 2048;

/// Compiled programs larger than this are rejected instead of exhausting memory.
const MAX_PROGRAM_BYTES: usize = 4 << 20;

impl Pattern {
    /// Compiles `source` in the given language.
    pub fn compile(source: &str, kind: PatternType, negate: bool) -> Result<Self, String> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "pattern is {} bytes, the maximum is {MAX_PATTERN_BYTES}",
                source.len()
            ));
        }
        let (compiled, inverted) = match kind {
            PatternType::OsMatch => {
                let (body, inverted) = match source.strip_prefix('!') {
                    Some(rest) => (rest, true),
                    None => (source, false),
                };
                (
                    Compiled::Std(build_std(&translate_os_match(body))?),
                    inverted,
                )
            }
            PatternType::OsRegex => (
                Compiled::Std(build_std(&translate_os_regex(source)?)?),
                false,
            ),
            PatternType::Pcre2 => {
                let re = fancy_regex::RegexBuilder::new(source)
                    .delegate_size_limit(MAX_PROGRAM_BYTES)
                    .build()
                    .map_err(|e| format!("invalid pcre2 pattern: {e}"))?;
                (Compiled::Fancy(re), false)
            }
        };
        Ok(Self {
            compiled,
            inverted,
            negate,
            kind,
            source: source.to_string(),
        })
    }

    /// Tests the pattern against `text`, before `negate` is applied. A PCRE2 match that
    /// gives up (see [`Pattern::try_match`]) counts as not matching, as a PCRE2 match
    /// error does in Wazuh.
    pub fn is_match(&self, text: &str) -> bool {
        self.try_match(text).unwrap_or(false)
    }

    /// Tests the pattern against `text`, before `negate` is applied, and reports a PCRE2
    /// match that gave up, mostly at fancy-regex's backtracking limit of 1,000,000 steps.
    pub fn try_match(&self, text: &str) -> Result<bool, MatchAborted> {
        let found = match &self.compiled {
            Compiled::Std(re) => re.is_match(text),
            Compiled::Fancy(re) => re.is_match(text).map_err(|e| MatchAborted(e.to_string()))?,
        };
        Ok(found != self.inverted)
    }

    /// Tests the pattern and applies `negate`: true when the rule element is satisfied.
    pub fn accepts(&self, text: &str) -> bool {
        self.is_match(text) != self.negate
    }
}

fn build_std(translated: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(translated)
        .size_limit(MAX_PROGRAM_BYTES)
        .build()
        .map_err(|e| format!("pattern does not compile: {e}"))
}

/// Translates OS_Match text (without its `!`) to a `regex` pattern.
fn translate_os_match(body: &str) -> String {
    let alternatives: Vec<String> = body
        .split('|')
        .map(|alt| {
            if alt.is_empty() {
                return String::new();
            }
            let (start, rest) = match alt.strip_prefix('^') {
                Some(rest) => (true, rest),
                None => (false, alt),
            };
            // Wazuh tests the last character of the whole alternative, so `^$` is an
            // anchored empty string.
            let (end, rest) = match rest.strip_suffix('$') {
                Some(inner) => (true, inner),
                None => (false, rest),
            };
            format!(
                "{}{}{}",
                if start { "^" } else { "" },
                regex::escape(rest),
                if end { "$" } else { "" }
            )
        })
        .collect();
    format!("(?i-u)(?:{})", alternatives.join("|"))
}

const WORD: &str = "A-Za-z0-9_@\\-";
const PUNCT: &str = "()*+,\\-.:;<=>?\\[\\]!\"'#$%&|{}";

/// Translates one escape (`\x`) to a `regex` atom, or names the bad escape.
fn os_regex_escape(c: char) -> Result<String, String> {
    let atom = match c {
        'd' => "[0-9]".to_string(),
        'w' => format!("[{WORD}]"),
        's' => " ".to_string(),
        't' => "\\t".to_string(),
        'p' => format!("[{PUNCT}]"),
        'D' => "(?u:[^0-9])".to_string(),
        'W' => format!("(?u:[^{WORD}])"),
        'S' => "(?u:[^ ])".to_string(),
        '.' => "(?su:.)".to_string(),
        '(' | ')' | '\\' | '$' | '|' => format!("\\{c}"),
        '<' => "<".to_string(),
        other => {
            return Err(format!(
                "invalid escape `\\{other}` in OS_Regex: use one of \\w \\d \\s \\t \\p \\W \\D \\S \\. \\( \\) \\\\ \\$ \\| \\<"
            ))
        }
    };
    Ok(atom)
}

/// A piece of an OS_Regex alternative after escapes are read.
enum Token {
    Escape(char),
    Char(char),
    Open,
    Close,
}

fn tokenize_os_regex(source: &str) -> Result<Vec<Vec<Token>>, String> {
    let mut alternatives = vec![Vec::new()];
    let mut depth = 0i32;
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        let current = alternatives
            .last_mut()
            .expect("alternatives is never empty");
        match c {
            '\\' => match chars.next() {
                Some(e) => {
                    os_regex_escape(e)?;
                    current.push(Token::Escape(e));
                }
                None => return Err("OS_Regex pattern ends with a lone `\\`".to_string()),
            },
            '(' => {
                depth += 1;
                if depth > 1 {
                    return Err("OS_Regex allows one level of parentheses".to_string());
                }
                current.push(Token::Open);
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced `)` in OS_Regex pattern".to_string());
                }
                current.push(Token::Close);
            }
            '|' if depth > 0 => {
                return Err("`|` inside parentheses is not allowed in OS_Regex".to_string())
            }
            '|' => alternatives.push(Vec::new()),
            other => current.push(Token::Char(other)),
        }
    }
    if depth != 0 {
        return Err("unbalanced `(` in OS_Regex pattern".to_string());
    }
    Ok(alternatives)
}

/// Translates an OS_Regex pattern to a `regex` pattern.
pub(crate) fn translate_os_regex(source: &str) -> Result<String, String> {
    let alternatives = tokenize_os_regex(source)?;
    let mut parts = Vec::with_capacity(alternatives.len());
    for tokens in alternatives {
        parts.push(translate_alternative(&tokens)?);
    }
    Ok(format!("(?i-u)(?:{})", parts.join("|")))
}

fn translate_alternative(tokens: &[Token]) -> Result<String, String> {
    let mut tokens = tokens;
    let mut out = String::new();
    if let Some((Token::Char('^'), rest)) = tokens.split_first() {
        out.push('^');
        tokens = rest;
    }
    let mut anchored_end = false;
    if let Some((Token::Char('$'), rest)) = tokens.split_last() {
        anchored_end = true;
        tokens = rest;
    }

    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Escape(e) => {
                out.push_str(&os_regex_escape(*e)?);
                if let Some(Token::Char(q @ ('+' | '*'))) = tokens.get(i + 1) {
                    out.push(*q);
                    i += 1;
                }
            }
            Token::Char(c) => out.push_str(&regex::escape(&c.to_string())),
            Token::Open => out.push_str("(?:"),
            Token::Close => out.push(')'),
        }
        i += 1;
    }
    if anchored_end {
        out.push('$');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn osregex(p: &str, text: &str) -> bool {
        Pattern::compile(p, PatternType::OsRegex, false)
            .unwrap()
            .is_match(text)
    }

    fn osmatch(p: &str, text: &str) -> bool {
        Pattern::compile(p, PatternType::OsMatch, false)
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn os_match_is_substring_without_case() {
        assert!(osmatch("Added", "File '/x' added"));
        assert!(!osmatch("removed", "File '/x' added"));
    }

    #[test]
    fn os_match_anchors_and_alternatives() {
        assert!(osmatch("^/tmp/", "/tmp/a"));
        assert!(!osmatch("^/tmp/", "/var/tmp/a"));
        assert!(osmatch(".exe$|.dll$", "c:/x.DLL"));
        assert!(osmatch("^abc$", "ABC"));
        assert!(!osmatch("^abc$", "abcd"));
        assert!(
            osmatch("a||b", "zzz"),
            "an empty alternative matches anything"
        );
    }

    #[test]
    fn os_match_bang_negates() {
        assert!(osmatch("!/tmp/", "/etc/passwd"));
        assert!(!osmatch("!/tmp/", "/tmp/x"));
    }

    #[test]
    fn os_match_treats_regex_characters_literally() {
        assert!(osmatch("a.b*", "xa.b*y"));
        assert!(!osmatch("a.b", "axb"));
    }

    #[test]
    fn os_regex_classes_follow_wazuh_maps() {
        assert!(osregex("^\\w+$", "a-b@c_d9"));
        assert!(!osregex("^\\w+$", "a b"));
        assert!(osregex("^\\d\\d$", "42"));
        assert!(osregex("^a\\sb$", "a b"));
        assert!(!osregex("^a\\sb$", "a\tb"));
        assert!(osregex("^a\\tb$", "a\tb"));
        assert!(osregex("^\\p+$", "()*+,-.:;<=>?[]!\"'#$%&|{}"));
        assert!(osregex("^\\W$", "/"));
        assert!(!osregex("^\\W$", "-"));
        assert!(osregex("^\\.*$", "any\nthing"));
        assert!(osregex("^\\S+$", "no-space"));
        assert!(osregex("^\\D+$", "abc"));
    }

    #[test]
    fn os_regex_quantifies_escapes_only() {
        assert!(osregex("^a+$", "a+"));
        assert!(!osregex("^a+$", "aa"));
        assert!(osregex("^x\\d*y$", "xy"));
        assert!(osregex("a.b", "a.b"));
        assert!(!osregex("a.b", "axb"));
    }

    #[test]
    fn os_regex_is_case_insensitive_and_unanchored() {
        assert!(osregex("ADDED", "File '/x' added"));
    }

    #[test]
    fn os_regex_alternatives_anchor_separately() {
        assert!(osregex("^foo$|bar", "xbarx"));
        assert!(!osregex("^foo$|^bar", "xbar"));
        assert!(osregex("^foo$|^bar", "foo"));
    }

    #[test]
    fn os_regex_literal_escapes() {
        assert!(osregex("^\\$\\(x\\)\\|\\\\$", "$(x)|\\"));
        assert!(osregex("\\<tag", "<TAG>"));
        assert!(osregex("^a$b$", "a$b"), "an inner `$` is literal");
    }

    #[test]
    fn os_regex_groups() {
        assert!(
            osregex("^(\\d+)\\.(\\d+)$", "12x34"),
            "`\\.` is any character"
        );
        assert!(osregex("^(\\d+)\\p(\\d+)$", "12.34"));
        assert!(!osregex("^(\\d+)\\p(\\d+)$", "12x34"));
    }

    #[test]
    fn os_regex_rejects_bad_syntax() {
        for bad in ["\\q", "((a))", "(a|b)", "a)", "(a", "x\\"] {
            assert!(
                Pattern::compile(bad, PatternType::OsRegex, false).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn pcre2_is_case_sensitive_with_lookaround() {
        let p = Pattern::compile("^(?!/tmp/)/.*\\.exe$", PatternType::Pcre2, false).unwrap();
        assert!(p.is_match("/home/x.exe"));
        assert!(!p.is_match("/tmp/x.exe"));
        assert!(!p.is_match("/home/x.EXE"));
    }

    #[test]
    fn negate_inverts_accepts() {
        let p = Pattern::compile("^/tmp", PatternType::OsMatch, true).unwrap();
        assert!(!p.accepts("/tmp/x"));
        assert!(p.accepts("/etc/x"));
    }

    #[test]
    fn non_ascii_text_is_accepted() {
        assert!(osmatch("ñaña", "/home/ÑAÑA/ñaña"));
        assert!(osregex("^/\\S+/\\w+$", "/héllo/abc"));
    }
}
