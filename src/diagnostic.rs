//! Diagnostics: problems in the user's content, collected as data, sorted, and rendered for humans or JSON.

use serde::Serialize;
use std::fmt::Write as _;

/// How bad a diagnostic is. Errors make `check` and `build` exit 1; warnings never change the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, located in a file relative to the content root (1-based line and column, column in characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// What to do about it, when there is something specific to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The offending source line, without its line ending (empty when the file has no such line).
    #[serde(skip)]
    pub source_line: String,
}

/// What an error does to the outputs. Every code is one or the other; this is the one place that says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// Something is missing, but every output is correct as far as it goes (an uncovered item, a `covers:` entry
    /// that names nothing, an unknown skill reference): `build` writes everything, shows the gap, and exits 1.
    Gap,
    /// An output would be wrong or incomplete (a file that cannot be read or parsed, a duplicate name, a bad
    /// manifest, a layout Claude Code would not load): `build` writes nothing and keeps the previous output.
    Breakage,
}

/// The error codes that are gaps; every other error code is breakage, so a code added without thought errs on
/// the side of keeping the previous output.
pub const GAP_CODES: &[&str] = &["uncovered-item", "unknown-cover", "unknown-skill"];

/// Whether an error with this code is a gap or breakage.
pub fn error_kind(code: &str) -> ErrorKind {
    if GAP_CODES.contains(&code) {
        ErrorKind::Gap
    } else {
        ErrorKind::Breakage
    }
}

/// True when any diagnostic is breakage: the outputs must not be written.
pub fn has_breakage(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_breakage)
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// An error that leaves the outputs correct as far as they go (see [`ErrorKind::Gap`]).
    pub fn is_gap(&self) -> bool {
        self.is_error() && error_kind(self.code) == ErrorKind::Gap
    }

    /// An error that would make an output wrong (see [`ErrorKind::Breakage`]).
    pub fn is_breakage(&self) -> bool {
        self.is_error() && error_kind(self.code) == ErrorKind::Breakage
    }

    fn sort_key(&self) -> (bool, &str, usize, usize, Severity, &str, &str) {
        (
            // Causes before consequences: any other problem (a broken file, a misspelt reference) can leave an
            // item uncovered, so uncovered items come last.
            self.code == "uncovered-item",
            &self.path,
            self.line,
            self.column,
            self.severity,
            self.code,
            &self.message,
        )
    }
}

/// A file's text with a line index, so byte offsets become line and column.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub path: &'a str,
    pub text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a str, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end clamp to it.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        // An offset in a line's ending (the second `\r` of `\r\r\n`) is at the end of the line as it is shown.
        let last = self.line_text(line + 1).chars().count() + 1;
        (line + 1, col.min(last))
    }

    /// Byte offset of a 1-based line.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Byte offset of a 1-based line and 1-based column counted in bytes (as serde_json counts them), clamped to the
    /// line's end and moved back to a character boundary.
    pub fn byte_line_col(&self, line: usize, byte_column: usize) -> usize {
        let start = self.line_start(line);
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let mut offset = (start + byte_column.saturating_sub(1)).min(end);
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    /// The text of a 1-based line without its line ending.
    pub fn line_text(&self, line: usize) -> &'a str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let rest = &self.text[start..];
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end].trim_end_matches('\r')
    }

    /// A diagnostic at a byte offset of this file.
    pub fn diag(
        &self,
        offset: usize,
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = self.line_col(offset);
        self.diag_at(line, column, severity, code, message)
    }

    /// A diagnostic at a 1-based line and column of this file.
    pub fn diag_at(
        &self,
        line: usize,
        column: usize,
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            path: self.path.to_string(),
            line,
            column,
            severity,
            code,
            message: message.into(),
            help: None,
            source_line: self.line_text(line).to_string(),
        }
    }
}

/// Adds help text to a diagnostic, builder style.
pub trait WithHelp {
    fn help(self, help: impl Into<String>) -> Self;
}

impl WithHelp for Diagnostic {
    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Sorts diagnostics by file, position, severity and code, `uncovered-item` errors after all the others, and drops
/// exact duplicates.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diags.dedup();
}

/// Counts of errors and warnings.
pub fn counts(diags: &[Diagnostic]) -> (usize, usize) {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    (errors, diags.len() - errors)
}

/// Colours used when rendering for a terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// Renders one diagnostic the way compilers do: the location line, the source line, a caret, and help.
pub fn render_human(d: &Diagnostic, display_path: &str, style: Style) -> String {
    let sev = match d.severity {
        Severity::Error => style.paint("1;31", "error"),
        Severity::Warning => style.paint("1;33", "warning"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}:{}:{}: {}[{}]: {}",
        display_path, d.line, d.column, sev, d.code, d.message
    );
    let gutter = d.line.to_string();
    let pad = " ".repeat(gutter.len());
    if !d.source_line.is_empty() {
        let (line, caret) = window(&d.source_line, d.column.saturating_sub(1));
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{gutter} | {line}");
        let caret_pad = " ".repeat(caret);
        let _ = writeln!(out, "{pad} | {caret_pad}{}", style.paint("1;36", "^"));
    }
    if let Some(help) = &d.help {
        // `=` sits under the gutter's `|`, as rustc and clippy align it.
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    out
}

/// Long source lines are cut to this many characters around the column.
const WINDOW: usize = 100;

/// The part of a source line to show, tabs as spaces, and the caret's position in it.
fn window(line: &str, col0: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let col0 = col0.min(chars.len());
    if chars.len() <= WINDOW {
        return (chars.into_iter().collect(), col0);
    }
    let start = col0.saturating_sub(WINDOW / 2).min(chars.len() - WINDOW);
    let end = start + WINDOW;
    let mut s = String::new();
    let mut caret = col0 - start;
    if start > 0 {
        s.push_str("...");
        caret += 3;
    }
    s.extend(&chars[start..end]);
    if end < chars.len() {
        s.push_str("...");
    }
    (s, caret)
}

/// The closing line: how many errors and warnings, or that all is clean.
pub fn summary_line(diags: &[Diagnostic], files: usize) -> String {
    let (errors, warnings) = counts(diags);
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {} in {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(files, "file")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_table() {
        let src = Source::new("a.md", "ab\ncdé\r\nf");
        for (offset, expect) in [
            (0, (1, 1)),
            (1, (1, 2)),
            (2, (1, 3)),
            (3, (2, 1)),
            (5, (2, 3)),
            (7, (2, 4)),
            (9, (3, 1)),
            (99, (3, 2)),
        ] {
            assert_eq!(src.line_col(offset), expect, "offset {offset}");
        }
        assert_eq!(src.line_text(2), "cdé");
        assert_eq!(src.line_text(4), "");
    }

    #[test]
    fn error_kind_table() {
        for (code, kind) in [
            ("uncovered-item", ErrorKind::Gap),
            ("unknown-cover", ErrorKind::Gap),
            ("unknown-skill", ErrorKind::Gap),
            ("duplicate-name", ErrorKind::Breakage),
            ("manifest-json", ErrorKind::Breakage),
            ("pattern-yaml", ErrorKind::Breakage),
            ("io-error", ErrorKind::Breakage),
            ("a-code-nobody-classified", ErrorKind::Breakage),
        ] {
            assert_eq!(error_kind(code), kind, "{code}");
        }
        let src = Source::new("a.md", "x\n");
        let gap = src.diag(0, Severity::Error, "uncovered-item", "m");
        let warning = src.diag(0, Severity::Warning, "yaml-fallback", "m");
        let broken = src.diag(0, Severity::Error, "duplicate-name", "m");
        assert!(gap.is_gap() && !gap.is_breakage());
        assert!(!warning.is_gap() && !warning.is_breakage());
        assert!(!has_breakage(&[gap.clone(), warning.clone()]));
        assert!(has_breakage(&[gap, warning, broken]));
    }

    #[test]
    fn render_has_caret_under_column() {
        let src = Source::new("x.md", "hello world\n");
        let d = src.diag(6, Severity::Error, "e", "bad");
        let out = render_human(&d, "x.md", Style::default());
        assert_eq!(
            out,
            "x.md:1:7: error[e]: bad\n  |\n1 | hello world\n  |       ^\n"
        );
    }
}
