//! Small helpers of the site generator: slugs, relative links, escaping for markdown and HTML, bars.

use std::collections::BTreeSet;

pub use crate::highlight::escape;

/// A URL- and file-safe slug: lowercase ASCII letters, digits and single hyphens; `page` when nothing is left.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else if c == '_' || c == '.' {
            // Keep these inside names such as `project_learnings` or `v1.2`.
            if !out.is_empty() && !dash {
                out.push(c);
            }
        } else {
            dash = true;
        }
    }
    let out = out.trim_end_matches(['_', '.']).to_string();
    if out.is_empty() {
        "page".to_string()
    } else {
        out
    }
}

/// Hands out unique names: the first `want` is returned as is, later equal ones get `-2`, `-3`, ...
#[derive(Debug, Default)]
pub struct Unique {
    used: BTreeSet<String>,
}

impl Unique {
    pub fn take(&mut self, want: &str) -> String {
        if self.used.insert(want.to_string()) {
            return want.to_string();
        }
        for n in 2.. {
            let candidate = match want.rsplit_once('.') {
                Some((stem, ext)) if !ext.contains('/') => format!("{stem}-{n}.{ext}"),
                _ => format!("{want}-{n}"),
            };
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
        unreachable!("an unbounded range always yields a free name")
    }

    /// Marks a name as used without handing it out.
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }
}

/// The relative link from the page at `from` to `to` (both relative to the site root, `/`-separated).
pub fn rel(from: &str, to: &str) -> String {
    let from_dirs: Vec<&str> = from.split('/').collect();
    let from_dirs = &from_dirs[..from_dirs.len().saturating_sub(1)];
    let to_parts: Vec<&str> = to.split('/').collect();
    let common = from_dirs
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to_parts.len().saturating_sub(1));
    let mut out = String::new();
    for _ in common..from_dirs.len() {
        out.push_str("../");
    }
    out.push_str(&to_parts[common..].join("/"));
    out
}

/// Escapes text so that markdown shows it literally (inline context).
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        // A line break would end the list item, heading or link the text is in (a file named with a carriage
        // return gave an agent whose title broke the generated SUMMARY.md); inside a line it reads as a space.
        if matches!(c, '\r' | '\n') {
            out.push(' ');
            continue;
        }
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!' | '{' | '}' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text on one line: whitespace runs (newlines included) become one space.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first sentence of a text (at most `max` characters, cut at a word with an ellipsis).
pub fn first_sentence(s: &str, max: usize) -> String {
    let s = one_line(s);
    let end = s.find(". ").map_or(s.len(), |i| i + 1);
    let sentence = &s[..end];
    if sentence.chars().count() <= max {
        return sentence.to_string();
    }
    let mut out = String::new();
    for word in sentence.split(' ') {
        if out.chars().count() + word.chars().count() + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('…');
    out
}

/// A horizontal bar showing `part` of `whole`, with the figure beside it.
pub fn bar(part: usize, whole: usize, class: &str, label: &str) -> String {
    let pct = percent(part, whole);
    format!(
        "<span class=\"sb-bar {class}\" role=\"img\" aria-label=\"{}\"><span class=\"sb-bar-fill\" style=\"width: {pct}%\"></span></span>",
        escape(label)
    )
}

/// `part` as a whole percentage of `whole` (100 when `whole` is 0).
pub fn percent(part: usize, whole: usize) -> usize {
    (part.saturating_mul(100)).checked_div(whole).unwrap_or(100)
}

/// Inline markdown rendered to HTML (for text inside HTML cards), without the wrapping paragraph.
pub fn inline_html(md: &str) -> String {
    use mdbook_markdown::pulldown_cmark::{html, Options, Parser};
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH));
    let t = out.trim();
    let t = t.strip_prefix("<p>").unwrap_or(t);
    let t = t.strip_suffix("</p>").unwrap_or(t);
    t.replace("</p>\n<p>", "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_table() {
        for (input, expect) in [
            ("Consensus Algorithms", "consensus-algorithms"),
            (
                "Multi-Raft with Leader Leases",
                "multi-raft-with-leader-leases",
            ),
            ("  ", "page"),
            ("CAP Tradeoffs!", "cap-tradeoffs"),
            ("project_learnings", "project_learnings"),
            ("Ünïcode", "n-code"),
            ("../etc/passwd", "etc-passwd"),
        ] {
            assert_eq!(slugify(input), expect, "{input:?}");
        }
    }

    #[test]
    fn rel_table() {
        for (from, to, expect) in [
            ("index.md", "agents/a.md", "agents/a.md"),
            ("agents/a.md", "patterns/s/raft.md", "../patterns/s/raft.md"),
            ("patterns/s/raft.md", "patterns/s/paxos.md", "paxos.md"),
            ("patterns/s/raft.md", "agents/a.md", "../../agents/a.md"),
            ("patterns/s/raft.md", "index.md", "../../index.md"),
            ("agents/a.md", "agents/a.md", "a.md"),
        ] {
            assert_eq!(rel(from, to), expect, "{from} -> {to}");
        }
    }

    #[test]
    fn unique_table() {
        let mut u = Unique::default();
        assert_eq!(u.take("a.md"), "a.md");
        assert_eq!(u.take("a.md"), "a-2.md");
        assert_eq!(u.take("x"), "x");
        assert_eq!(u.take("x"), "x-2");
    }

    #[test]
    fn first_sentence_table() {
        assert_eq!(first_sentence("One. Two.", 100), "One.");
        assert_eq!(first_sentence("a b c d e f", 5), "a b c…");
        assert_eq!(first_sentence("Line\nbreak", 100), "Line break");
    }

    #[test]
    fn md_escape_keeps_text_literal() {
        assert_eq!(md_escape("a*b*[c]"), "a\\*b\\*\\[c\\]");
    }

    #[test]
    fn md_escape_keeps_text_on_its_line() {
        assert_eq!(md_escape("exp\r\re\rrt\nx\r\n"), "exp  e rt x  ");
    }
}
