//! A parser for STIX 2.x patterns (the STIX Patterning language, STIX 2.1 section 9).
//!
//! It reads the whole grammar: observation expressions joined by AND, OR and FOLLOWEDBY
//! with WITHIN/REPEATS/START-STOP qualifiers, and comparison expressions with AND, OR,
//! NOT, EXISTS and every comparison operator. Observation operators and qualifiers are
//! checked but not kept, because the importer looks at each observation on its own.

use std::fmt;

/// Deepest nesting of brackets and parentheses accepted, so input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Timestamp `t'...'`, hex `h'...'` or binary `b'...'` literal, with its prefix.
    Prefixed(char, String),
    List(Vec<Literal>),
}

/// One `object-type:path op value` test.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub object_type: String,
    /// Path components after the colon; list indexes (`[*]`, `[0]`) are dropped.
    pub path: Vec<String>,
    pub negated: bool,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `IN`, `LIKE`, `MATCHES`, `ISSUBSET`, `ISSUPERSET`
    /// or `EXISTS` (then `value` is `Bool(true)`).
    pub operator: String,
    pub value: Literal,
}

/// A comparison expression: the content of one `[...]` observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cmp(Comparison),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// Returns every comparison in the expression, in order.
    pub fn comparisons(&self) -> Vec<&Comparison> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Comparison>) {
        match self {
            Expr::Cmp(c) => out.push(c),
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.collect(out)),
        }
    }

    /// True when no OR appears anywhere in the expression.
    pub fn is_conjunction(&self) -> bool {
        match self {
            Expr::Cmp(_) => true,
            Expr::And(items) => items.iter().all(Expr::is_conjunction),
            Expr::Or(_) => false,
        }
    }
}

/// Reason a pattern could not be parsed, with the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.offset + 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Colon,
    Dot,
    Star,
    Op(&'static str),
    Word(String),
    Str(String),
    Prefixed(char, String),
    Num(String),
}

fn tokenize(input: &str) -> Result<Vec<(usize, Tok)>, PatternError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = match c {
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            b'.' => Some(Tok::Dot),
            b'*' => Some(Tok::Star),
            _ => None,
        };
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if let Some(tok) = single {
            out.push((start, tok));
            i += 1;
            continue;
        }
        let (tok, next) = match c {
            b'\'' => read_string(input, i + 1).map(|(s, n)| (Tok::Str(s), n))?,
            b't' | b'h' | b'b' if bytes.get(i + 1) == Some(&b'\'') => {
                read_string(input, i + 2).map(|(s, n)| (Tok::Prefixed(c as char, s), n))?
            }
            b'=' => (Tok::Op("="), i + 1),
            b'!' if bytes.get(i + 1) == Some(&b'=') => (Tok::Op("!="), i + 2),
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                };
                (Tok::Op(op), i + 1 + usize::from(eq))
            }
            b'-' | b'0'..=b'9' => {
                let end = scan(bytes, i + 1, |b| b.is_ascii_digit() || b == b'.');
                (Tok::Num(input[i..end].to_owned()), end)
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let end = scan(bytes, i, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
                });
                (Tok::Word(input[i..end].to_owned()), end)
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(PatternError {
                    offset: i,
                    message: format!("unexpected character `{ch}`"),
                });
            }
        };
        out.push((start, tok));
        i = next;
    }
    Ok(out)
}

fn scan(bytes: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    let mut end = from;
    while end < bytes.len() && ok(bytes[end]) {
        end += 1;
    }
    end
}

/// Reads a quoted string body starting after the opening quote; returns it and the
/// offset after the closing quote. `\'` and `\\` are the only escapes.
fn read_string(input: &str, from: usize) -> Result<(String, usize), PatternError> {
    let mut out = String::new();
    let mut chars = input[from..].char_indices();
    while let Some((offset, ch)) = chars.next() {
        match ch {
            '\'' => return Ok((out, from + offset + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('\'' | '\\'))) => out.push(e),
                _ => {
                    return Err(PatternError {
                        offset: from + offset,
                        message: "invalid escape in string (only \\' and \\\\ are allowed)".into(),
                    })
                }
            },
            _ => out.push(ch),
        }
    }
    Err(PatternError {
        offset: input.len(),
        message: "unterminated string".into(),
    })
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    depth: usize,
    observations: Vec<Expr>,
}

/// Parses a pattern and returns the comparison expression of each observation.
pub fn parse_pattern(input: &str) -> Result<Vec<Expr>, PatternError> {
    let toks = tokenize(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.len(),
        depth: 0,
        observations: Vec::new(),
    };
    p.observation_seq()?;
    if p.pos < p.toks.len() {
        return Err(p.error("unexpected text after the pattern"));
    }
    Ok(p.observations)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn error(&self, message: &str) -> PatternError {
        let found = match self.peek() {
            None => "the end of the pattern".to_owned(),
            Some(t) => format!("{t:?}"),
        };
        PatternError {
            offset: self.offset(),
            message: format!("{message}, found {found}"),
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), PatternError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn enter(&mut self) -> Result<(), PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn observation_seq(&mut self) -> Result<(), PatternError> {
        self.observation_unit()?;
        while self.eat_word("AND") || self.eat_word("OR") || self.eat_word("FOLLOWEDBY") {
            self.observation_unit()?;
        }
        Ok(())
    }

    fn observation_unit(&mut self) -> Result<(), PatternError> {
        self.enter()?;
        if self.eat(&Tok::LBracket) {
            let expr = self.comparison_or()?;
            self.expect(&Tok::RBracket, "`]`")?;
            self.observations.push(expr);
        } else if self.eat(&Tok::LParen) {
            self.observation_seq()?;
            self.expect(&Tok::RParen, "`)`")?;
        } else {
            return Err(self.error("expected `[` or `(` to start an observation"));
        }
        self.qualifiers()?;
        self.depth -= 1;
        Ok(())
    }

    fn qualifiers(&mut self) -> Result<(), PatternError> {
        loop {
            if self.eat_word("WITHIN") {
                self.number()?;
                self.word("SECONDS")?;
            } else if self.eat_word("REPEATS") {
                self.number()?;
                self.word("TIMES")?;
            } else if self.eat_word("START") {
                self.timestamp()?;
                self.word("STOP")?;
                self.timestamp()?;
            } else {
                return Ok(());
            }
        }
    }

    fn word(&mut self, word: &str) -> Result<(), PatternError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{word}`")))
        }
    }

    fn number(&mut self) -> Result<(), PatternError> {
        match self.peek() {
            Some(Tok::Num(_)) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.error("expected a number")),
        }
    }

    fn timestamp(&mut self) -> Result<(), PatternError> {
        match self.peek() {
            Some(Tok::Prefixed('t', _)) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.error("expected a timestamp t'...'")),
        }
    }

    fn comparison_or(&mut self) -> Result<Expr, PatternError> {
        let mut items = vec![self.comparison_and()?];
        while self.eat_word("OR") {
            items.push(self.comparison_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn comparison_and(&mut self) -> Result<Expr, PatternError> {
        let mut items = vec![self.comparison_unit()?];
        while self.eat_word("AND") {
            items.push(self.comparison_unit()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn comparison_unit(&mut self) -> Result<Expr, PatternError> {
        self.enter()?;
        let expr = if self.eat(&Tok::LParen) {
            let inner = self.comparison_or()?;
            self.expect(&Tok::RParen, "`)`")?;
            inner
        } else {
            Expr::Cmp(self.comparison()?)
        };
        self.depth -= 1;
        Ok(expr)
    }

    fn comparison(&mut self) -> Result<Comparison, PatternError> {
        let negated_exists = self.eat_word("NOT");
        if self.eat_word("EXISTS") {
            let (object_type, path) = self.object_path()?;
            return Ok(Comparison {
                object_type,
                path,
                negated: negated_exists,
                operator: "EXISTS".into(),
                value: Literal::Bool(true),
            });
        }
        if negated_exists {
            return Err(self.error("expected `EXISTS` after a leading `NOT`"));
        }
        let (object_type, path) = self.object_path()?;
        let negated = self.eat_word("NOT");
        let operator = match self.peek().cloned() {
            Some(Tok::Op(op)) => op.to_owned(),
            Some(Tok::Word(w))
                if ["IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"].contains(&w.as_str()) =>
            {
                w
            }
            _ => return Err(self.error("expected a comparison operator")),
        };
        self.pos += 1;
        let value = self.literal()?;
        Ok(Comparison {
            object_type,
            path,
            negated,
            operator,
            value,
        })
    }

    fn object_path(&mut self) -> Result<(String, Vec<String>), PatternError> {
        let object_type = match self.peek().cloned() {
            Some(Tok::Word(w)) => w,
            _ => return Err(self.error("expected an object type such as `file`")),
        };
        self.pos += 1;
        self.expect(&Tok::Colon, "`:` after the object type")?;
        let mut path = vec![self.path_component()?];
        loop {
            if self.eat(&Tok::Dot) {
                path.push(self.path_component()?);
            } else if self.peek() == Some(&Tok::LBracket)
                && matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.1),
                    Some(Tok::Star | Tok::Num(_))
                )
            {
                self.pos += 2;
                self.expect(&Tok::RBracket, "`]` after a list index")?;
            } else {
                return Ok((object_type, path));
            }
        }
    }

    fn path_component(&mut self) -> Result<String, PatternError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.error("expected a property name")),
        }
    }

    fn literal(&mut self) -> Result<Literal, PatternError> {
        let tok = self.peek().cloned();
        let literal = match tok {
            Some(Tok::Str(s)) => Literal::Str(s),
            Some(Tok::Prefixed(p, s)) => Literal::Prefixed(p, s),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Literal::Bool(w == "true"),
            Some(Tok::Num(n)) => match n.parse::<i64>() {
                Ok(i) => Literal::Int(i),
                Err(_) => n
                    .parse::<f64>()
                    .map(Literal::Float)
                    .map_err(|_| self.error("invalid number"))?,
            },
            Some(Tok::LParen) => return self.literal_list(),
            _ => return Err(self.error("expected a value")),
        };
        self.pos += 1;
        Ok(literal)
    }

    fn literal_list(&mut self) -> Result<Literal, PatternError> {
        self.enter()?;
        self.pos += 1;
        let mut items = vec![self.literal()?];
        while self.eat(&Tok::Comma) {
            items.push(self.literal()?);
        }
        self.expect(&Tok::RParen, "`)` to close the list")?;
        self.depth -= 1;
        Ok(Literal::List(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys_quoted_and_bare() {
        let obs =
            parse_pattern("[file:hashes.'SHA-256' = 'ab' OR file:hashes.MD5 = 'cd']").unwrap();
        let cmps = obs[0].comparisons();
        assert_eq!(cmps[0].path, vec!["hashes", "SHA-256"]);
        assert_eq!(cmps[1].path, vec!["hashes", "MD5"]);
        assert!(!obs[0].is_conjunction());
    }

    #[test]
    fn nested_paths_and_qualifiers() {
        let p = "[email-message:body_multipart[*].body_raw_ref.hashes.MD5 = 'x' AND file:size = 134123] \
                 WITHIN 600 SECONDS AND [ipv4-addr:value ISSUBSET '10.0.0.0/8'] REPEATS 2 TIMES \
                 FOLLOWEDBY ([x:y != 'z'] START t'2016-01-01T00:00:00Z' STOP t'2016-02-01T00:00:00Z')";
        let obs = parse_pattern(p).unwrap();
        assert_eq!(obs.len(), 3);
        assert_eq!(
            obs[0].comparisons()[0].path,
            vec!["body_multipart", "body_raw_ref", "hashes", "MD5"]
        );
        assert_eq!(obs[1].comparisons()[0].operator, "ISSUBSET");
    }

    #[test]
    fn escapes_and_lists() {
        let obs = parse_pattern(r"[file:name IN ('a\'b', 'c') AND NOT EXISTS file:size]").unwrap();
        let cmps = obs[0].comparisons();
        assert_eq!(
            cmps[0].value,
            Literal::List(vec![Literal::Str("a'b".into()), Literal::Str("c".into())])
        );
        assert!(cmps[1].negated);
    }

    #[test]
    fn malformed_patterns_rejected() {
        for p in [
            "",
            "[file:name = 'x'",
            "[file:name 'x']",
            "[file:name = 'x]",
            "file:name = 'x'",
            "[(]",
        ] {
            assert!(parse_pattern(p).is_err(), "{p}");
        }
        let deep = format!(
            "{}file:name = 'x'{}",
            "[".to_owned() + &"(".repeat(200),
            ")".repeat(200) + "]"
        );
        assert!(parse_pattern(&deep)
            .unwrap_err()
            .message
            .contains("nesting"));
    }
}
