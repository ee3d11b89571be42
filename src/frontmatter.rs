//! Frontmatter: splits the `---` block off a markdown file and parses it, strict YAML first, a lenient line parser second.
//!
//! serde_yaml lives only here: the rest of the compiler sees [`Value`] and [`Field`].

use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use std::ops::Range;

/// Frontmatter larger than this is refused rather than parsed.
pub const MAX_FRONTMATTER_BYTES: usize = 64 * 1024;

/// A frontmatter value, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, kept as written.
    Number(String),
    String(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value as text if it is a scalar (strings, numbers, booleans).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::String(s) | Value::Number(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// One top-level key of the frontmatter.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub value: Value,
    /// Byte offset of the key in the file.
    pub key_offset: usize,
    /// Byte range in the file of the key's whole entry (its line and its continuation lines).
    pub region: Range<usize>,
}

/// The parsed frontmatter of one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frontmatter {
    pub fields: Vec<Field>,
    /// True when strict YAML accepted it; false when the lenient parser was used.
    pub strict: bool,
    /// True when the frontmatter was refused whole (too large, an alias bomb, not a mapping): the file is unusable.
    pub rejected: bool,
    /// Byte range of the YAML text in the file (between the fences).
    pub yaml: Range<usize>,
}

impl Frontmatter {
    pub fn get(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// Finds `needle` as a whole entry (not inside a longer word) in the field's region, at or after byte `from`
    /// and after the key itself; the byte offset in the file.
    pub fn locate(&self, text: &str, key: &str, needle: &str, from: usize) -> Option<usize> {
        let field = self.get(key)?;
        let start = (field.key_offset + key.len()).max(from);
        let region = text.get(start..field.region.end)?;
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
        region
            .match_indices(needle)
            .find(|(i, _)| {
                !word(region[..*i].chars().next_back())
                    && !word(region[i + needle.len()..].chars().next())
            })
            .map(|(i, _)| start + i)
    }
}

/// A file split into frontmatter and body.
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    /// No frontmatter: the whole file is body.
    None,
    /// An opening fence with no closing one; the byte offset of the opening fence.
    Unterminated,
    /// The YAML between the fences and where the body starts.
    Found {
        yaml: Range<usize>,
        body_start: usize,
    },
}

/// Splits frontmatter off a file whose BOM, if any, was already removed.
pub fn split(text: &str) -> Split {
    let Some(first_end) = line_end(text, 0) else {
        return if text.trim_end() == "---" {
            Split::Unterminated
        } else {
            Split::None
        };
    };
    if text[..first_end].trim_end() != "---" {
        return Split::None;
    }
    let yaml_start = next_line(text, first_end);
    let mut pos = yaml_start;
    while pos < text.len() {
        let end = line_end(text, pos).unwrap_or(text.len());
        let line = text[pos..end].trim_end();
        if line == "---" || line == "..." {
            return Split::Found {
                yaml: yaml_start..pos,
                body_start: next_line(text, end),
            };
        }
        pos = next_line(text, end);
    }
    Split::Unterminated
}

/// The end of the line at `from`: its `\n`, or a lone `\r`, which YAML also reads as a line break (a `\r\n` ends at
/// the `\n`; callers trim the `\r`).
fn line_end(text: &str, from: usize) -> Option<usize> {
    let i = text[from..].find(['\n', '\r'])? + from;
    if text.as_bytes()[i] == b'\r' && text.as_bytes().get(i + 1) == Some(&b'\n') {
        Some(i + 1)
    } else {
        Some(i)
    }
}

fn next_line(text: &str, line_end: usize) -> usize {
    (line_end + 1).min(text.len())
}

/// How invalid YAML is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Yaml {
    /// Claude Code's own formats (agents, SKILL.md, commands) have a published legacy of invalid YAML: it is read
    /// with the lenient line parser, with a warning.
    Lenient,
    /// skillbook's own format (pattern files): invalid YAML is an error at the YAML error's position.
    Strict,
}

/// Parses the frontmatter of `src` found at `yaml`, pushing diagnostics for what is wrong with it; invalid YAML
/// falls back to the lenient line parser.
pub fn parse(src: &Source, yaml: Range<usize>, diags: &mut Vec<Diagnostic>) -> Frontmatter {
    parse_as(src, yaml, Yaml::Lenient, diags)
}

/// [`parse`], treating invalid YAML as `mode` says.
pub fn parse_as(
    src: &Source,
    yaml: Range<usize>,
    mode: Yaml,
    diags: &mut Vec<Diagnostic>,
) -> Frontmatter {
    let text = &src.text[yaml.clone()];
    if text.len() > MAX_FRONTMATTER_BYTES {
        diags.push(
            src.diag(
                yaml.start,
                Severity::Error,
                "frontmatter-too-large",
                format!(
                    "frontmatter is {} bytes; the limit is {} bytes",
                    text.len(),
                    MAX_FRONTMATTER_BYTES
                ),
            )
            .help("move long text into the markdown body"),
        );
        return Frontmatter {
            yaml,
            rejected: true,
            ..Frontmatter::default()
        };
    }
    let regions = key_regions(src.text, yaml.clone());
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Null) => Frontmatter {
            fields: Vec::new(),
            strict: true,
            rejected: false,
            yaml,
        },
        Ok(serde_yaml::Value::Mapping(map)) => {
            let mut fields = Vec::new();
            for (k, v) in map {
                let key = match from_yaml(k) {
                    Value::String(s) => s,
                    other => other.scalar_text().unwrap_or_default(),
                };
                // Keys that are not strings (`? [a, b]`) are read as their text, so two of them can come out equal:
                // the last value is kept where the first stood, as a mapping of strings (the compiled plugin's) has it.
                if let Some(f) = fields.iter_mut().find(|f: &&mut Field| f.key == key) {
                    f.value = from_yaml(v);
                    continue;
                }
                let (key_offset, region) = regions
                    .iter()
                    .find(|r| r.0 == key)
                    .map(|r| (r.1, r.2.clone()))
                    .unwrap_or((yaml.start, yaml.clone()));
                fields.push(Field {
                    key,
                    value: from_yaml(v),
                    key_offset,
                    region,
                });
            }
            Frontmatter {
                fields,
                strict: true,
                rejected: false,
                yaml,
            }
        }
        Ok(other) => {
            diags.push(
                src.diag(
                    yaml.start,
                    Severity::Error,
                    "frontmatter-not-mapping",
                    format!(
                        "frontmatter must be a mapping of `key: value` lines, found {}",
                        from_yaml(other).kind()
                    ),
                )
                .help("write the frontmatter as `name: ...` and `description: ...` lines"),
            );
            Frontmatter {
                yaml,
                rejected: true,
                ..Frontmatter::default()
            }
        }
        Err(err) => {
            let msg = err.to_string();
            let (line, col) = yaml_error_position(src, yaml.start, &err);
            if msg.contains("recursion limit") || msg.contains("repetition limit") {
                diags.push(
                    src.diag_at(
                        line,
                        col,
                        Severity::Error,
                        "yaml-limit",
                        format!(
                            "frontmatter exceeds the YAML parser's limits: {}",
                            strip_location(&msg)
                        ),
                    )
                    .help("remove the anchors and aliases (`&a`, `*a`) or the deep nesting"),
                );
                return Frontmatter {
                    yaml,
                    rejected: true,
                    ..Frontmatter::default()
                };
            }
            if mode == Yaml::Strict && !msg.contains("duplicate entry") {
                // A list or quote left open is noticed lines later; point at where it was opened.
                let d = match unclosed(src, yaml.clone(), line) {
                    Some((l, c, what, help)) => src
                        .diag_at(
                            l,
                            c,
                            Severity::Error,
                            "pattern-yaml",
                            format!(
                                "pattern frontmatter is not valid YAML: this {what} is never closed (the parser gave up at line {line}: {})",
                                strip_location(&msg)
                            ),
                        )
                        .help(help),
                    None => src
                        .diag_at(
                            line,
                            col,
                            Severity::Error,
                            "pattern-yaml",
                            format!(
                                "pattern frontmatter is not valid YAML: {}",
                                strip_location(&msg)
                            ),
                        )
                        .help(strict_help(&msg, src.line_text(line))),
                };
                diags.push(d);
                return Frontmatter {
                    yaml,
                    rejected: true,
                    ..Frontmatter::default()
                };
            }
            // A duplicate key is reported as `duplicate-key` by the lenient parser, in either mode: an error in
            // skillbook's own strict format, a warning in Claude Code's formats, which Claude Code loads.
            let dup = match mode {
                Yaml::Strict => Severity::Error,
                Yaml::Lenient => Severity::Warning,
            };
            let fm = lenient(src, yaml.clone(), dup, diags);
            if !msg.contains("duplicate entry") {
                diags.push(
                    src.diag_at(
                        line,
                        col,
                        Severity::Warning,
                        "yaml-fallback",
                        format!(
                            "frontmatter is not valid YAML ({}); read it with the lenient line parser",
                            strip_location(&msg)
                        ),
                    )
                    .help(fallback_help(&msg, src.line_text(line))),
                );
            }
            fm
        }
    }
}

/// What to do about a control character (YAML allows none but tab, line breaks and, quoted, escapes of the others).
const CONTROL_HELP: &str = "remove the control character at the caret (an invisible byte, often pasted from a terminal or a word processor), or write it as an escape in a double-quoted value (`\\x0f`)";

/// What to do about YAML that only the lenient parser reads.
fn fallback_help(msg: &str, line: &str) -> &'static str {
    let indent = &line[..line.len() - line.trim_start().len()];
    if msg.contains("control characters") {
        CONTROL_HELP
    } else if msg.contains("tab") || indent.contains('\t') {
        "indent with spaces, not tabs: YAML forbids tabs in indentation"
    } else {
        "quote the value (`description: \"...\"`) so strict YAML parsers, including Claude Code's, read it as written"
    }
}

/// The first frontmatter line, up to the YAML error's line, whose value opens a flow list, a flow mapping or a
/// quote that the same line does not close: (line, column of the opener, what it is, what to do).
fn unclosed(
    src: &Source,
    yaml: Range<usize>,
    error_line: usize,
) -> Option<(usize, usize, &'static str, String)> {
    let (first, _) = src.line_col(yaml.start);
    for l in first..=error_line {
        let text = src.line_text(l);
        let Some((key, value)) = text.split_once(':') else {
            continue;
        };
        let v = value.trim_start();
        if key.trim_start().starts_with('#') || v.is_empty() {
            continue;
        }
        let col = key.chars().count() + 2 + (value.chars().count() - v.chars().count());
        let v = v.trim_end();
        let (what, help) = match v.chars().next() {
            Some('[') if !v.ends_with(']') => (
                "list",
                "close the list with `]` on the same line (`covers: [Raft, Paxos]`); if the value is text that starts with `[`, quote it",
            ),
            Some('{') if !v.ends_with('}') => (
                "mapping",
                "close the mapping with `}` on the same line; if the value is text that starts with `{`, quote it",
            ),
            Some(q @ ('"' | '\'')) if v.len() == 1 || !v.ends_with(q) => (
                "quote",
                "close the quote at the end of the value; inside double quotes write `\\\"` for a quote, inside single quotes `''`",
            ),
            _ => continue,
        };
        return Some((l, col, what, help.to_string()));
    }
    None
}

/// What to do about invalid YAML in a pattern file, which must be strict.
fn strict_help(msg: &str, line: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
    if msg.contains("control characters") {
        CONTROL_HELP.to_string()
    } else if msg.contains("tab") || indent.contains('\t') {
        "indent with spaces, not tabs: YAML forbids tabs in indentation".to_string()
    } else if value.starts_with('[') && !value.ends_with(']') {
        "close the list with `]` on the same line (`covers: [Raft, Paxos]`), or write one `- item` per line".to_string()
    } else if value.starts_with('{') && !value.ends_with('}') {
        "close the mapping with `}`, or quote the value if it is text".to_string()
    } else if msg.contains("mapping values are not allowed") {
        "the value contains `: `; quote it (`title: \"Raft: leader election\"`) or use a block scalar (`summary: >-`)"
            .to_string()
    } else if value.starts_with('"') || value.starts_with('\'') {
        "close the quote, and escape quotes inside it (`\\\"` in double quotes, `''` in single quotes)".to_string()
    } else {
        "pattern files are skillbook's own format and must be strict YAML: quote values that contain `: `, ` #` or start with `[`, `{`, `*`, `&`, `!`, `%` or `@`".to_string()
    }
}

/// serde_yaml error messages end with " at line L column C"; that is said by the diagnostic's location instead.
/// (A reader error ends " at position N", a byte offset in the YAML text, which means nothing to the file's reader.)
fn strip_location(msg: &str) -> &str {
    match msg.find(" at line ").or_else(|| msg.rfind(" at position ")) {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// The file's line and column of a YAML error. The YAML parser counts lines by YAML's own line breaks (`\n`,
/// `\r\n`, a lone `\r`, and U+0085, U+2028, U+2029), which a file's lines (split at `\n`) need not agree with, so
/// its line and column are turned back into an offset in the file first.
///
/// An error of libyaml's reader (a control character, a byte-order mark in the middle) has no line and column: its
/// message ends `at position N`, N being the byte offset in the YAML text, which is used instead.
fn yaml_error_position(src: &Source, yaml_start: usize, err: &serde_yaml::Error) -> (usize, usize) {
    let yaml = &src.text[yaml_start.min(src.text.len())..];
    if let Some(mut at) = reader_offset(&err.to_string()).filter(|&n| n <= yaml.len()) {
        while !yaml.is_char_boundary(at) {
            at -= 1;
        }
        return src.line_col(yaml_start + at);
    }
    let Some(loc) = err.location() else {
        return src.line_col(yaml_start);
    };
    src.line_col(yaml_start + yaml_offset(yaml, loc.line().max(1), loc.column().max(1)))
}

/// The byte offset of a libyaml reader error, from its message (`... at position 10`).
fn reader_offset(msg: &str) -> Option<usize> {
    let (_, rest) = msg.rsplit_once(" at position ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The byte offset of a 1-based YAML line and column (in characters) in `yaml`, clamped to its line's end.
fn yaml_offset(yaml: &str, line: usize, column: usize) -> usize {
    let mut chars = yaml.char_indices().peekable();
    let mut current = 1;
    while current < line {
        match chars.next() {
            Some((_, '\r')) => {
                if let Some((_, '\n')) = chars.peek() {
                    chars.next();
                }
                current += 1;
            }
            Some((_, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')) => current += 1,
            Some(_) => {}
            None => return yaml.len(),
        }
    }
    let mut offset = chars.peek().map_or(yaml.len(), |&(i, _)| i);
    for _ in 1..column {
        match chars.next() {
            Some((_, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')) | None => break,
            Some(_) => offset = chars.peek().map_or(yaml.len(), |&(i, _)| i),
        }
    }
    offset
}

fn from_yaml(v: serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => Value::Number(n.to_string()),
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(seq) => Value::List(seq.into_iter().map(from_yaml).collect()),
        serde_yaml::Value::Mapping(map) => {
            // As at the top level: keys read as equal text keep the last value where the first stood.
            let mut entries: Vec<(String, Value)> = Vec::new();
            for (k, v) in map {
                let key = match from_yaml(k) {
                    Value::String(s) => s,
                    other => other.scalar_text().unwrap_or_default(),
                };
                let v = from_yaml(v);
                match entries.iter_mut().find(|(e, _)| *e == key) {
                    Some(e) => e.1 = v,
                    None => entries.push((key, v)),
                }
            }
            Value::Map(entries)
        }
        serde_yaml::Value::Tagged(t) => from_yaml(t.value),
    }
}

fn to_yaml(v: &Value) -> serde_yaml::Value {
    match v {
        Value::Null => serde_yaml::Value::Null,
        Value::Bool(b) => serde_yaml::Value::Bool(*b),
        Value::Number(n) => {
            if let Ok(i) = n.parse::<i64>() {
                serde_yaml::Value::Number(i.into())
            } else if let Ok(u) = n.parse::<u64>() {
                serde_yaml::Value::Number(u.into())
            } else if let Ok(f) = n.parse::<f64>() {
                serde_yaml::Value::Number(f.into())
            } else {
                serde_yaml::Value::String(n.clone())
            }
        }
        Value::String(s) => serde_yaml::Value::String(s.clone()),
        Value::List(items) => serde_yaml::Value::Sequence(items.iter().map(to_yaml).collect()),
        Value::Map(entries) => {
            let mut map = serde_yaml::Mapping::new();
            for (k, v) in entries {
                map.insert(serde_yaml::Value::String(k.clone()), to_yaml(v));
            }
            serde_yaml::Value::Mapping(map)
        }
    }
}

/// Writes fields as frontmatter YAML that strict parsers accept and that decodes to the same values.
pub fn to_strict_yaml(fields: &[(String, Value)]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let mut map = serde_yaml::Mapping::new();
    for (k, v) in fields {
        map.insert(serde_yaml::Value::String(k.clone()), to_yaml(v));
    }
    // Serialising a mapping of plain values cannot fail.
    serde_yaml::to_string(&serde_yaml::Value::Mapping(map)).unwrap_or_default()
}

/// Parses YAML text strictly into fields (used to verify emitted frontmatter).
pub fn parse_strict(text: &str) -> Result<Vec<(String, Value)>, String> {
    match serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| e.to_string())? {
        serde_yaml::Value::Mapping(map) => Ok(map
            .into_iter()
            .map(|(k, v)| {
                let key = from_yaml(k).scalar_text().unwrap_or_default();
                (key, from_yaml(v))
            })
            .collect()),
        serde_yaml::Value::Null => Ok(Vec::new()),
        other => Err(format!("not a mapping: {}", from_yaml(other).kind())),
    }
}

/// A top-level key line: `key:` at column 0.
fn key_line(line: &str) -> Option<(&str, &str)> {
    let first = line.chars().next()?;
    if first.is_whitespace() || matches!(first, '#' | '-' | '[' | '{' | '"' | '\'') {
        return None;
    }
    let colon = line.find(':')?;
    let key = &line[..colon];
    if key.is_empty() || key.contains(char::is_whitespace) && key.trim() != key {
        return None;
    }
    let rest = &line[colon + 1..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((key.trim(), rest.trim()))
}

/// The top-level keys of the YAML region, each with its key offset and the byte range of its entry.
fn key_regions(text: &str, yaml: Range<usize>) -> Vec<(String, usize, Range<usize>)> {
    let mut out: Vec<(String, usize, Range<usize>)> = Vec::new();
    let mut pos = yaml.start;
    while pos < yaml.end {
        let end = line_end(text, pos).unwrap_or(yaml.end).min(yaml.end);
        let line = text[pos..end].trim_end_matches('\r');
        if let Some((key, _)) = key_line(line) {
            if let Some(last) = out.last_mut() {
                last.2.end = pos;
            }
            out.push((key.to_string(), pos, pos..yaml.end));
        }
        pos = next_line(text, end);
    }
    out
}

#[derive(Debug)]
enum Pending {
    None,
    /// A key with an empty value: a list or a mapping may follow on indented lines.
    Open,
    /// A plain scalar that may continue on indented lines.
    Plain,
    /// A block scalar (`|` or `>`): folded or not, and the lines so far.
    Block {
        folded: bool,
        lines: Vec<String>,
    },
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

/// The lenient line parser: `key: value` lines, indented lists and block scalars, and plain values whose `\n`
/// escapes are decoded as newlines. A key given twice is reported with severity `dup`; the last value is kept, as
/// Claude Code keeps it.
fn lenient(
    src: &Source,
    yaml: Range<usize>,
    dup: Severity,
    diags: &mut Vec<Diagnostic>,
) -> Frontmatter {
    let text = src.text;
    let mut fields: Vec<Field> = Vec::new();
    let mut pending = Pending::None;
    let mut pos = yaml.start;

    fn finish(fields: &mut [Field], pending: &mut Pending) {
        let p = std::mem::replace(pending, Pending::None);
        let Some(field) = fields.last_mut() else {
            return;
        };
        match p {
            Pending::Open => field.value = Value::Null,
            Pending::Block { folded, lines } => {
                let mut s = if folded {
                    lines.join(" ")
                } else {
                    lines.join("\n")
                };
                while s.ends_with('\n') {
                    s.pop();
                }
                field.value = Value::String(s);
            }
            Pending::List(items) => field.value = Value::List(items),
            Pending::Map(entries) => field.value = Value::Map(entries),
            Pending::None | Pending::Plain => {}
        }
    }

    while pos < yaml.end {
        let end = line_end(text, pos).unwrap_or(yaml.end).min(yaml.end);
        let raw = text[pos..end].trim_end_matches('\r');
        let expanded = raw.replace('\t', "  ");
        let line = expanded.as_str();
        let trimmed = line.trim();
        let indented = line.starts_with(' ');
        if let Some((key, rest)) = key_line(line) {
            finish(&mut fields, &mut pending);
            if let Some(i) = fields.iter().position(|f| f.key == key) {
                let (first_line, _) = src.line_col(fields[i].key_offset);
                diags.push(
                    src.diag(
                        pos,
                        dup,
                        "duplicate-key",
                        format!("duplicate frontmatter key `{key}` (first set on line {first_line}); the last value is kept, as Claude Code keeps it"),
                    )
                    .help("remove one of the two; strict YAML parsers reject the file"),
                );
                fields.remove(i);
            }
            fields.push(Field {
                key: key.to_string(),
                value: Value::Null,
                key_offset: pos,
                region: pos..yaml.end,
            });
            if let Some(f) = fields.last_mut() {
                if rest.is_empty() {
                    pending = Pending::Open;
                } else if let Some(ind) = block_indicator(rest) {
                    pending = Pending::Block {
                        folded: ind == '>',
                        lines: Vec::new(),
                    };
                } else {
                    f.value = lenient_scalar(rest);
                    pending = if matches!(f.value, Value::String(_))
                        && !rest.starts_with(['"', '\'', '['])
                    {
                        Pending::Plain
                    } else {
                        Pending::None
                    };
                }
            }
            if let Some(prev) = fields.iter_mut().rev().nth(1) {
                prev.region.end = pos;
            }
        } else if trimmed.is_empty()
            || (trimmed.starts_with('#') && !matches!(pending, Pending::Block { .. }))
        {
            if let Pending::Block { lines, .. } = &mut pending {
                lines.push(String::new());
            }
        } else {
            let item = trimmed
                .strip_prefix("- ")
                .or(if trimmed == "-" { Some("") } else { None });
            match (&mut pending, item) {
                (Pending::Block { lines, .. }, _) if indented => lines.push(trimmed.to_string()),
                (Pending::Open, Some(item)) => pending = Pending::List(vec![lenient_scalar(item)]),
                (Pending::List(items), Some(item)) => items.push(lenient_scalar(item)),
                (Pending::Open, None) | (Pending::Map(_), None)
                    if indented && key_line(trimmed).is_some() =>
                {
                    let (k, v) = key_line(trimmed).unwrap_or_default();
                    let entry = (k.to_string(), lenient_scalar(v));
                    match &mut pending {
                        // A key given twice in a nested mapping: reported, the last value kept, as at the top.
                        Pending::Map(entries) if entries.iter().any(|(e, _)| e == k) => {
                            let indent = raw.len() - raw.trim_start().len();
                            diags.push(
                                src.diag(
                                    pos + indent,
                                    dup,
                                    "duplicate-key",
                                    format!("duplicate key `{k}` in a nested mapping; the last value is kept, as Claude Code keeps it"),
                                )
                                .help("remove one of the two entries"),
                            );
                            entries.retain(|(e, _)| e != k);
                            entries.push(entry);
                        }
                        Pending::Map(entries) => entries.push(entry),
                        _ => pending = Pending::Map(vec![entry]),
                    }
                }
                (Pending::Plain, None) if indented => {
                    if let Some(Field {
                        value: Value::String(s),
                        ..
                    }) = fields.last_mut()
                    {
                        s.push(' ');
                        s.push_str(&decode_plain(trimmed));
                    }
                }
                _ => {
                    let indent = raw.len() - raw.trim_start().len();
                    diags.push(
                        src.diag(
                            pos + indent,
                            Severity::Warning,
                            "frontmatter-line-ignored",
                            "this frontmatter line is not `key: value` nor part of the value above; it was ignored",
                        )
                        .help("write each field as `key: value` at the start of a line"),
                    );
                }
            }
        }
        pos = next_line(text, end);
    }
    finish(&mut fields, &mut pending);
    Frontmatter {
        fields,
        strict: false,
        rejected: false,
        yaml,
    }
}

fn block_indicator(rest: &str) -> Option<char> {
    let mut chars = rest.chars();
    let first = chars.next()?;
    if (first == '|' || first == '>') && chars.all(|c| matches!(c, '-' | '+' | '0'..='9')) {
        Some(first)
    } else {
        None
    }
}

/// Decodes one scalar as the lenient parser reads it.
fn lenient_scalar(raw: &str) -> Value {
    let raw = raw.trim();
    if let Some(s) = raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Value::String(decode_double_quoted(s));
    }
    if let Some(s) = raw.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Value::String(s.replace("''", "'"));
    }
    if let Some(inner) = raw.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return Value::List(
            split_flow(inner)
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| lenient_scalar(&s))
                .collect(),
        );
    }
    let plain = strip_comment(raw);
    match plain {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if plain.parse::<i64>().is_ok() || (plain.parse::<f64>().is_ok() && plain.contains('.')) {
        return Value::Number(plain.to_string());
    }
    Value::String(decode_plain(plain))
}

fn strip_comment(s: &str) -> &str {
    match s.find(" #") {
        Some(i) => s[..i].trim_end(),
        None => s,
    }
}

/// Plain values in the lenient fallback: `\n` escapes are decoded as newlines (DESIGN.md).
fn decode_plain(s: &str) -> String {
    s.replace("\\n", "\n")
}

fn split_flow(inner: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in inner.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), _) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ',') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Decodes the escapes of a YAML double-quoted scalar.
pub fn decode_double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        let hex = |chars: &mut std::str::Chars, n: usize| -> Option<char> {
            let h: String = chars.by_ref().take(n).collect();
            u32::from_str_radix(&h, 16).ok().and_then(char::from_u32)
        };
        match e {
            'n' => out.push('\n'),
            't' | '\t' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'e' => out.push('\x1b'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            ' ' => out.push(' '),
            '"' => out.push('"'),
            '/' => out.push('/'),
            '\\' => out.push('\\'),
            'N' => out.push('\u{85}'),
            '_' => out.push('\u{a0}'),
            'L' => out.push('\u{2028}'),
            'P' => out.push('\u{2029}'),
            'x' => out.extend(hex(&mut chars, 2)),
            'u' => out.extend(hex(&mut chars, 4)),
            'U' => out.extend(hex(&mut chars, 8)),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Frontmatter, Vec<Diagnostic>) {
        let src = Source::new("t.md", text);
        let mut diags = Vec::new();
        let fm = match split(text) {
            Split::Found { yaml, .. } => parse(&src, yaml, &mut diags),
            other => panic!("no frontmatter: {other:?}"),
        };
        (fm, diags)
    }

    fn value<'a>(fm: &'a Frontmatter, key: &str) -> &'a Value {
        &fm.get(key).unwrap_or_else(|| panic!("no key {key}")).value
    }

    #[test]
    fn split_table() {
        for (text, expect) in [
            ("", Split::None),
            ("# title\n", Split::None),
            ("---", Split::Unterminated),
            ("---\nname: a\n", Split::Unterminated),
            (
                "---\n---\n",
                Split::Found {
                    yaml: 4..4,
                    body_start: 8,
                },
            ),
            (
                "---\r\na: b\r\n---\r\nbody",
                Split::Found {
                    yaml: 5..11,
                    body_start: 16,
                },
            ),
            (
                "---\na: 1\n...\n",
                Split::Found {
                    yaml: 4..9,
                    body_start: 13,
                },
            ),
            (
                "---  \na: 1\n---",
                Split::Found {
                    yaml: 6..11,
                    body_start: 14,
                },
            ),
        ] {
            assert_eq!(split(text), expect, "{text:?}");
        }
    }

    #[test]
    fn strict_values() {
        let (fm, diags) = run("---\nname: x\ntags: [a, b]\nn: 3\nq: \"a\\tb\"\n---\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert!(fm.strict);
        assert_eq!(value(&fm, "name"), &Value::String("x".into()));
        assert_eq!(
            value(&fm, "tags"),
            &Value::List(vec![Value::String("a".into()), Value::String("b".into())])
        );
        assert_eq!(value(&fm, "n"), &Value::Number("3".into()));
        assert_eq!(value(&fm, "q"), &Value::String("a\tb".into()));
    }

    #[test]
    fn lenient_fallback_decodes_newlines_and_warns_at_yaml_error() {
        let (fm, diags) = run("---\nname: a\ndescription: Use it: now.\\nNext\nmodel: opus\n---\n");
        assert!(!fm.strict);
        assert_eq!(
            value(&fm, "description"),
            &Value::String("Use it: now.\nNext".into())
        );
        assert_eq!(value(&fm, "model"), &Value::String("opus".into()));
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, "yaml-fallback");
        assert_eq!((diags[0].line, diags[0].column), (3, 20));
    }

    #[test]
    fn lenient_lists_blocks_and_quotes() {
        let (fm, _) = run(
            "---\nd: x: y\nlist:\n  - a\n  - \"b\\u00e9\"\nblock: |\n  one\n  two\nfold: >-\n  one\n  two\nsq: 'it''s'\n---\n",
        );
        assert!(!fm.strict);
        assert_eq!(
            value(&fm, "list"),
            &Value::List(vec![Value::String("a".into()), Value::String("bé".into())])
        );
        assert_eq!(value(&fm, "block"), &Value::String("one\ntwo".into()));
        assert_eq!(value(&fm, "fold"), &Value::String("one two".into()));
        assert_eq!(value(&fm, "sq"), &Value::String("it's".into()));
    }

    #[test]
    fn duplicate_nested_key_warns_and_last_wins() {
        // Found by the `roundtrip` fuzzer: the compiled plugin kept only the last of two nested keys.
        let text = "---\ndescription: a: b\nm:\n  k: 1\n  k: 2\n---\n";
        let (fm, diags) = run(text);
        assert_eq!(
            value(&fm, "m"),
            &Value::Map(vec![("k".to_string(), Value::Number("2".to_string()))])
        );
        let dup: Vec<_> = diags
            .iter()
            .filter(|d| d.code == "duplicate-key")
            .map(|d| (d.line, d.column))
            .collect();
        assert_eq!(dup, [(5, 3)], "{diags:?}");
    }

    #[test]
    fn keys_that_are_not_strings_and_read_alike_keep_the_last_value() {
        // Found by the `roundtrip` fuzzer: two list keys (`? - a`) both read as "" were two fields, and the
        // compiled plugin, which writes a mapping of strings, kept one.
        let (fm, _) = run("---\n? - a\n: 1\nname: x\n? - b\n: 2\n---\n");
        let keys: Vec<&str> = fm.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["", "name"]);
        assert_eq!(value(&fm, ""), &Value::Number("2".into()));
        let fields: Vec<(String, Value)> = fm
            .fields
            .iter()
            .map(|f| (f.key.clone(), f.value.clone()))
            .collect();
        assert_eq!(
            parse_strict(&to_strict_yaml(&fields)).expect("strict"),
            fields
        );
    }

    #[test]
    fn duplicate_key_warns_and_last_wins() {
        let (fm, diags) = run("---\nname: a\nname: b\n---\n");
        assert_eq!(value(&fm, "name"), &Value::String("b".into()));
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            (
                diags[0].code,
                diags[0].severity,
                diags[0].line,
                diags[0].column
            ),
            ("duplicate-key", Severity::Warning, 3, 1)
        );
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut yaml = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            yaml.push_str(&format!(
                "b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let (fm, diags) = run(&format!("---\n{yaml}---\n"));
        assert!(fm.fields.is_empty());
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, "yaml-limit");
    }

    #[test]
    fn strict_yaml_round_trip() {
        let fields = vec![
            ("name".to_string(), Value::String("a".into())),
            (
                "description".to_string(),
                Value::String("x: y\n<example>\"q\"</example>".into()),
            ),
            ("n".to_string(), Value::Number("3".into())),
            (
                "tools".to_string(),
                Value::List(vec![Value::String("Read".into())]),
            ),
        ];
        let yaml = to_strict_yaml(&fields);
        assert_eq!(parse_strict(&yaml).unwrap(), fields);
    }

    #[test]
    fn locate_finds_whole_entries_in_order() {
        let text = "---\nskills: [consensus, cons]\ncovers: [Paxos Raft, Raft]\n---\n";
        let (fm, _) = run(text);
        let first = fm.locate(text, "skills", "consensus", 0).unwrap();
        assert_eq!(fm.locate(text, "skills", "cons", first + 9), Some(24));
        assert_eq!(fm.locate(text, "skills", "cons", 0), Some(24));
        let pr = fm.locate(text, "covers", "Paxos Raft", 0).unwrap();
        assert_eq!(
            &text[fm.locate(text, "covers", "Raft", pr + 10).unwrap()..][..6],
            "Raft]\n"
        );
    }

    #[test]
    fn double_quoted_escapes() {
        for (input, expect) in [
            (r"a\nb", "a\nb"),
            (r#"\"q\""#, "\"q\""),
            (r"\x41\u00e9\U0001F600", "Aé😀"),
            (r"back\\slash", "back\\slash"),
            (r"trailing\", "trailing\\"),
        ] {
            assert_eq!(decode_double_quoted(input), expect);
        }
    }

    #[test]
    fn lenient_reads_a_lone_carriage_return_as_a_line_break_as_yaml_does() {
        let (fm, _) = run("---\nname: a\r\r\rd: x: y\r\nlist:\r  - b\r---\n");
        assert!(!fm.strict);
        assert_eq!(value(&fm, "name"), &Value::String("a".into()));
        assert_eq!(value(&fm, "d"), &Value::String("x: y".into()));
        assert_eq!(
            value(&fm, "list"),
            &Value::List(vec![Value::String("b".into())])
        );
    }

    #[test]
    fn yaml_offsets_follow_yamls_line_breaks() {
        let yaml = "a: 1\r\rb: 2\r\nc: é: 3\n";
        assert_eq!(yaml_offset(yaml, 1, 1), 0);
        assert_eq!(&yaml[yaml_offset(yaml, 3, 1)..][..1], "b");
        assert_eq!(&yaml[yaml_offset(yaml, 4, 5)..][..1], ":");
        assert_eq!(yaml_offset(yaml, 4, 99), yaml.len() - 1);
        assert_eq!(yaml_offset(yaml, 9, 1), yaml.len());
    }
}
