//! SARIF 2.1.0: the check report in the format code-scanning tools read, so findings show on a pull request's lines.

use crate::check::Report;
use crate::diagnostic::{error_kind, Diagnostic, ErrorKind, Severity};
use crate::emit::report::display_path;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What each code means, as a SARIF rule's short description. A code missing here is described by its name.
pub const RULES: &[(&str, &str)] = &[
    (
        "uncovered-item",
        "An expertise item that no pattern of the agent's skills covers",
    ),
    (
        "unknown-cover",
        "A `covers:` entry that names no item of any agent using the skill",
    ),
    (
        "unknown-skill",
        "A skill reference that resolves to no skill",
    ),
    (
        "unloadable-skill",
        "A skill reference to a folder without SKILL.md, which Claude Code does not load",
    ),
    (
        "duplicate-name",
        "Two agents, or two skills, with one name in a plugin",
    ),
    (
        "missing-frontmatter",
        "A pattern file without a frontmatter block",
    ),
    (
        "no-frontmatter",
        "An agent or SKILL.md without frontmatter, which Claude Code loads with no description",
    ),
    (
        "unterminated-frontmatter",
        "A frontmatter block that is never closed",
    ),
    ("wrong-type", "A frontmatter value of the wrong type"),
    ("duplicate-key", "A frontmatter key given twice"),
    (
        "frontmatter-not-mapping",
        "Frontmatter that is a list or a scalar",
    ),
    ("pattern-yaml", "Pattern frontmatter that is not valid YAML"),
    ("yaml-limit", "Frontmatter beyond the YAML parser's limits"),
    ("frontmatter-too-large", "Frontmatter larger than the limit"),
    ("file-too-large", "A file larger than the limit"),
    ("invalid-utf8", "A file that is not UTF-8"),
    (
        "invalid-priority",
        "A pattern priority that is not a whole number from 0 to 100",
    ),
    (
        "manifest-json",
        "A plugin or marketplace manifest that is not JSON",
    ),
    (
        "manifest-path",
        "A manifest path that leaves the plugin or does not exist",
    ),
    (
        "marketplace-shape",
        "A marketplace.json without Claude Code's `plugins` list",
    ),
    (
        "not-a-folder",
        "`agents`, `skills` or `commands` that is a file",
    ),
    (
        "symlink-escape",
        "A path that resolves outside the content root",
    ),
    ("io-error", "A file or folder that cannot be read"),
    (
        "yaml-fallback",
        "Frontmatter that strict YAML parsers reject",
    ),
    (
        "frontmatter-line-ignored",
        "A frontmatter line the lenient parser could not place",
    ),
    ("skill-name", "A skill name outside the Agent Skills limits"),
    (
        "skill-description",
        "A skill description outside the Agent Skills limits",
    ),
    (
        "agent-name",
        "An agent name that is missing or not lowercase-hyphenated",
    ),
    ("agent-description", "An agent without a description"),
    ("agent-model", "An unknown agent model"),
    ("agent-color", "An unknown agent colour"),
    ("covers-nothing", "A pattern that covers nothing"),
    ("missing-summary", "A pattern without a summary"),
    ("unexpanded-stub", "A stub with no skill to expand it from"),
    ("missing-skill-md", "A skill folder without SKILL.md"),
    (
        "remote-plugin-source",
        "A marketplace plugin with a remote source",
    ),
    ("empty-marketplace", "A marketplace that lists no plugins"),
    ("broken-symlink", "A symlink that leads nowhere"),
    ("hooks-json", "A hooks file that is not JSON"),
    (
        "hooks-schema",
        "A hooks file, matcher or hook entry of a shape Claude Code refuses or drops",
    ),
    ("hooks-event", "A hook event Claude Code does not have"),
    ("mcp-json", "An MCP servers file that is not JSON"),
    ("mcp-schema", "An MCP server Claude Code drops at load"),
    (
        "frontmatter-dashes",
        "A `---` inside a frontmatter value, where Claude Code ends the block",
    ),
];

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A path as a URI reference: unreserved characters and `/` as they are, everything else percent-encoded.
fn uri_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a diagnostic is: relative to where skillbook ran (`%SRCROOT%`) when the root was given as a relative
/// path, a `file://` URI when it was absolute.
fn artifact(root: &str, d: &Diagnostic) -> Value {
    let shown = display_path(root, &d.path);
    if shown.starts_with('/') {
        json!({ "uri": format!("file://{}", uri_path(&shown)) })
    } else {
        json!({ "uri": uri_path(&shown), "uriBaseId": "%SRCROOT%" })
    }
}

/// The report as one SARIF 2.1.0 log with one run, ending in a newline. `root` is the content root as the user
/// named it, so locations are the paths `check` prints.
pub fn sarif(report: &Report, root: &str) -> String {
    let descriptions: BTreeMap<&str, &str> = RULES.iter().copied().collect();
    // One rule per code used, sorted; a rule's default level is error when any of its results is one.
    let mut codes: BTreeMap<&str, Severity> = BTreeMap::new();
    for d in &report.diagnostics {
        let e = codes.entry(d.code).or_insert(d.severity);
        *e = (*e).min(d.severity);
    }
    let index: BTreeMap<&str, usize> = codes.keys().enumerate().map(|(i, c)| (*c, i)).collect();
    let rules: Vec<Value> = codes
        .iter()
        .map(|(code, sev)| {
            let mut rule = json!({
                "id": code,
                "name": code,
                "shortDescription": { "text": descriptions.get(code).copied().unwrap_or(code) },
                "defaultConfiguration": { "level": level(*sev) },
            });
            if *sev == Severity::Error {
                let kind = match error_kind(code) {
                    ErrorKind::Gap => "gap",
                    ErrorKind::Breakage => "breakage",
                };
                rule["properties"] = json!({ "kind": kind });
            }
            rule
        })
        .collect();
    let results: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            let text = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            json!({
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": level(d.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact(root, d),
                        "region": { "startLine": d.line.max(1), "startColumn": d.column.max(1) },
                    }
                }],
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "skillbook",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_path_table() {
        for (path, uri) in [
            ("agents/a.md", "agents/a.md"),
            (
                "skills/Docs Writer/SKILL.md",
                "skills/Docs%20Writer/SKILL.md",
            ),
            ("a/é#?.md", "a/%C3%A9%23%3F.md"),
        ] {
            assert_eq!(uri_path(path), uri, "{path}");
        }
    }
}
