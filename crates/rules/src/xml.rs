//! A small XML reader with the rules of Wazuh's own parser (`os_xml`), not of XML 1.0.
//!
//! Wazuh rule files are not well-formed XML: they have many root elements, carry `<`
//! in patterns as `\<`, and use `&` without escaping. This reader accepts exactly that
//! dialect: several root elements, `<!-- -->` comments anywhere, `<?...?>` skipped,
//! element content kept byte for byte (no entity decoding, no trimming), `\<` kept as
//! two characters of content, and `<var name="X">` definitions substituted as `$X`.

/// One element with its attributes, direct text and child elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// Text directly inside the element, child elements left out.
    pub text: String,
    pub children: Vec<Node>,
    /// 1-based line of the opening `<`.
    pub line: u32,
}

impl Node {
    /// Returns the value of an attribute, compared without case as Wazuh does.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A syntax error with the line and the element it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub line: u32,
    /// Element being read, or `xml` when the error is outside any element.
    pub element: String,
    pub message: String,
}

/// Nesting deeper than this is rejected; rule files need four levels.
const MAX_DEPTH: usize = 64;

/// Maximum variable name length, as in Wazuh (`XML_VARIABLE_MAXSIZE` less one).
const MAX_VARIABLE_NAME: usize = 255;

struct Reader<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn advance_str(&mut self, s: &str) {
        for _ in s.chars() {
            self.bump();
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.bump();
        }
    }

    fn error(&self, element: &str, message: impl Into<String>) -> XmlError {
        XmlError {
            line: self.line,
            element: element.to_string(),
            message: message.into(),
        }
    }

    /// Reads content up to the next `<` that is not escaped by an odd run of `\`.
    fn read_text(&mut self) -> &'a str {
        let start = self.pos;
        // True after an odd run of backslashes, which escapes a following `<`.
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if c == '<' && !escaped {
                break;
            }
            escaped = c == '\\' && !escaped;
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    /// Skips `<!-- ... -->`; the reader stands on `<!--`.
    fn skip_comment(&mut self, element: &str) -> Result<(), XmlError> {
        let line = self.line;
        self.advance_str("<!--");
        match self.rest().find("-->") {
            Some(end) => {
                let body = &self.rest()[..end + 3];
                self.advance_str(body);
                Ok(())
            }
            None => Err(XmlError {
                line,
                element: element.to_string(),
                message: "comment not closed: add `-->`".to_string(),
            }),
        }
    }

    /// Skips `<? ... ?>`; the reader stands on `<?`.
    fn skip_declaration(&mut self, element: &str) -> Result<(), XmlError> {
        let line = self.line;
        match self.rest().find("?>") {
            Some(end) => {
                let body = &self.rest()[..end + 2];
                self.advance_str(body);
                Ok(())
            }
            None => Err(XmlError {
                line,
                element: element.to_string(),
                message: "declaration not closed: add `?>`".to_string(),
            }),
        }
    }

    fn read_name(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || matches!(c, '>' | '/' | '<' | '=' | '"' | '\'') {
                break;
            }
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn read_attribute_value(&mut self, element: &str) -> Result<String, XmlError> {
        let quote = match self.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(self.error(element, "attribute value must be quoted")),
        };
        self.bump();
        let start = self.pos;
        match self.rest().find(quote) {
            Some(end) => {
                let value = &self.src[start..start + end];
                self.advance_str(value);
                self.bump();
                Ok(value.to_string())
            }
            None => Err(self.error(
                element,
                format!("attribute value not closed: add `{quote}`"),
            )),
        }
    }

    /// Reads attributes up to `>` or `/>`; returns true when the element closes itself.
    fn read_attributes(&mut self, node: &mut Node) -> Result<bool, XmlError> {
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.error(&node.name, "end of file inside the start tag")),
                Some('>') => {
                    self.bump();
                    return Ok(false);
                }
                Some('/') => {
                    self.bump();
                    if self.peek() != Some('>') {
                        return Err(self.error(&node.name, "expected `>` after `/`"));
                    }
                    self.bump();
                    return Ok(true);
                }
                Some(_) => self.read_attribute(node)?,
            }
        }
    }

    fn read_attribute(&mut self, node: &mut Node) -> Result<(), XmlError> {
        let name = self.read_name().to_string();
        if name.is_empty() {
            let found = self.peek().unwrap_or(' ');
            return Err(self.error(&node.name, format!("unexpected `{found}` in the start tag")));
        }
        self.skip_whitespace();
        if self.peek() != Some('=') {
            return Err(self.error(&node.name, format!("attribute `{name}` has no value")));
        }
        self.bump();
        self.skip_whitespace();
        let value = self.read_attribute_value(&node.name)?;
        if node.attr(&name).is_some() {
            return Err(self.error(&node.name, format!("attribute `{name}` appears twice")));
        }
        node.attrs.push((name, value));
        Ok(())
    }
}

/// Parses a rule file into its root elements.
pub fn parse(input: &str) -> Result<Vec<Node>, XmlError> {
    let mut reader = Reader {
        src: input,
        pos: 0,
        line: 1,
    };
    let mut stack: Vec<Node> = Vec::new();
    let mut roots: Vec<Node> = Vec::new();

    loop {
        let text = reader.read_text();
        if let Some(open) = stack.last_mut() {
            open.text.push_str(text);
        }
        if reader.peek().is_none() {
            break;
        }
        let current = stack.last().map_or("xml", |n| n.name.as_str()).to_string();
        let rest = reader.rest();

        if rest.starts_with("<!--") {
            reader.skip_comment(&current)?;
        } else if rest.starts_with("<?") {
            reader.skip_declaration(&current)?;
        } else if rest.starts_with("</") {
            let closed = read_end_tag(&mut reader, &mut stack)?;
            attach(closed, &mut stack, &mut roots);
        } else if rest.starts_with("<!") {
            return Err(reader.error(&current, "`<!` markup (CDATA, DOCTYPE) is not supported"));
        } else {
            match read_start_tag(&mut reader, stack.len())? {
                StartTag::Empty(node) => attach(node, &mut stack, &mut roots),
                StartTag::Open(node) => stack.push(node),
            }
        }
    }

    if let Some(open) = stack.last() {
        return Err(XmlError {
            line: open.line,
            element: open.name.clone(),
            message: format!("element not closed: add `</{}>`", open.name),
        });
    }
    Ok(roots)
}

enum StartTag {
    /// `<x .../>`: the element is complete.
    Empty(Node),
    /// `<x ...>`: content and a closing tag follow.
    Open(Node),
}

fn read_start_tag(reader: &mut Reader<'_>, depth: usize) -> Result<StartTag, XmlError> {
    let line = reader.line;
    reader.bump();
    let name = reader.read_name().to_string();
    if name.is_empty() {
        return Err(reader.error("xml", "element name missing after `<`"));
    }
    if depth >= MAX_DEPTH {
        return Err(reader.error(&name, format!("elements nested deeper than {MAX_DEPTH}")));
    }
    let mut node = Node {
        name,
        attrs: Vec::new(),
        text: String::new(),
        children: Vec::new(),
        line,
    };
    if reader.read_attributes(&mut node)? {
        return Ok(StartTag::Empty(node));
    }
    Ok(StartTag::Open(node))
}

fn read_end_tag(reader: &mut Reader<'_>, stack: &mut Vec<Node>) -> Result<Node, XmlError> {
    reader.advance_str("</");
    let name = reader.read_name().to_string();
    let open_name = stack.last().map_or("xml", |n| n.name.as_str());
    if name.is_empty() {
        return Err(reader.error(open_name, "element name missing after `</`"));
    }
    reader.skip_whitespace();
    if reader.peek() != Some('>') {
        return Err(reader.error(&name, "expected `>` to end the closing tag"));
    }
    reader.bump();
    match stack.pop() {
        Some(open) if open.name == name => Ok(open),
        Some(open) => Err(XmlError {
            line: reader.line,
            element: open.name.clone(),
            message: format!(
                "element opened on line {} is not closed: found `</{name}>` where `</{}>` was expected",
                open.line, open.name
            ),
        }),
        None => Err(reader.error(&name, format!("`</{name}>` closes an element never opened"))),
    }
}

fn attach(node: Node, stack: &mut [Node], roots: &mut Vec<Node>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => roots.push(node),
    }
}

/// Removes root `<var name="X">value</var>` elements and replaces `$X` in the text and
/// attribute values of the elements that follow them, as Wazuh's `OS_ApplyVariables`.
///
/// A name ends at `$`, `.`, `|`, `,`, a space or the end of the text. `$(` is left alone,
/// so `$(field)` reaches rule descriptions. Once any variable is defined, an
/// unknown `$NAME` is an error.
pub fn apply_variables(roots: Vec<Node>) -> Result<Vec<Node>, XmlError> {
    let mut variables: Vec<(String, String)> = Vec::new();
    let mut elements = Vec::with_capacity(roots.len());
    for mut node in roots {
        if node.name.eq_ignore_ascii_case("var") {
            variables.push(read_variable(&node)?);
            continue;
        }
        if !variables.is_empty() {
            substitute_node(&mut node, &variables)?;
        }
        elements.push(node);
    }
    Ok(elements)
}

fn read_variable(node: &Node) -> Result<(String, String), XmlError> {
    let error = |message: &str| XmlError {
        line: node.line,
        element: node.name.clone(),
        message: message.to_string(),
    };
    let name = match node.attrs.as_slice() {
        [(key, value)] if key.eq_ignore_ascii_case("name") => value.clone(),
        _ => return Err(error("a variable takes exactly one attribute, `name`")),
    };
    if name.is_empty() || name.len() > MAX_VARIABLE_NAME {
        return Err(error("variable name must have 1 to 255 characters"));
    }
    if !node.children.is_empty() {
        return Err(error("a variable holds text only, not elements"));
    }
    Ok((name, node.text.clone()))
}

fn substitute_node(node: &mut Node, variables: &[(String, String)]) -> Result<(), XmlError> {
    let line = node.line;
    let element = node.name.clone();
    let fail = |message: String| XmlError {
        line,
        element: element.clone(),
        message,
    };
    node.text = substitute(&node.text, variables).map_err(fail)?;
    for (_, value) in node.attrs.iter_mut() {
        *value = substitute(value, variables).map_err(fail)?;
    }
    for child in node.children.iter_mut() {
        substitute_node(child, variables)?;
    }
    Ok(())
}

fn substitute(text: &str, variables: &[(String, String)]) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find(['$', '.', '|', ',', ' ']).unwrap_or(after.len());
        let name = &after[..end];
        if name.is_empty() || name.starts_with('(') {
            out.push('$');
            rest = after;
            continue;
        }
        match variables.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, value)) => out.push_str(value),
            None => {
                return Err(format!(
                    "unknown variable `${name}`: define it with <var name=\"{name}\">"
                ))
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_several_roots_and_lines() {
        let roots =
            parse("<group name=\"a\">\n  <rule id=\"1\"/>\n</group>\n<group name=\"b\"></group>")
                .unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[0].attr("NAME"), Some("a"));
        assert_eq!(roots[0].children[0].line, 2);
        assert_eq!(roots[1].line, 4);
    }

    #[test]
    fn parse_keeps_escaped_angle_and_ampersand() {
        let roots = parse("<regex>a\\<b & c</regex>").unwrap();
        assert_eq!(roots[0].text, "a\\<b & c");
    }

    #[test]
    fn parse_skips_comments_and_declaration() {
        let roots = parse("<?xml version=\"1.0\"?>\n<!-- x <y> -->\n<a><!--c-->t</a>").unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].text, "t");
    }

    #[test]
    fn parse_rejects_unclosed_element_with_its_line() {
        let err = parse("<group>\n<rule>\n</group>").unwrap_err();
        assert_eq!(err.element, "rule");
        assert_eq!(err.line, 3);
    }

    #[test]
    fn parse_rejects_unclosed_root() {
        let err = parse("\n\n<group name='x'>").unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.element, "group");
    }

    #[test]
    fn parse_rejects_deep_nesting() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn variables_are_substituted_after_definition() {
        let roots =
            parse("<var name=\"FREQ\">8</var><rule frequency=\"$FREQ\">$FREQ,x $(file)</rule>")
                .unwrap();
        let roots = apply_variables(roots).unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].attr("frequency"), Some("8"));
        assert_eq!(roots[0].text, "8,x $(file)");
    }

    #[test]
    fn unknown_variable_is_rejected() {
        let roots = parse("<var name=\"A\">1</var><r>$B</r>").unwrap();
        let err = apply_variables(roots).unwrap_err();
        assert!(err.message.contains("$B"), "{}", err.message);
    }
}
