//! Lint: the plugin-level checks `check` runs besides coverage: files that would clash in the compiled plugin,
//! what Claude Code's own validator (`claude plugin validate`) reports on manifests and frontmatter, relative
//! markdown links that lead to no file, and unknown tool names.

use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use crate::frontmatter::Value;
use crate::links::Link;
use crate::parse::{Document, Model};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

mod config;
mod json;

pub use config::HOOK_EVENTS;

/// Runs every lint of this module on the model.
pub fn lint(model: &Model, diags: &mut Vec<Diagnostic>) {
    clashes(model, diags);
    for plugin in &model.plugins {
        if let Some(m) = &plugin.manifest {
            plugin_manifest(m, diags);
        }
        for a in &plugin.agents {
            claude_frontmatter(&a.doc, "agent", diags);
            tools(&a.doc, "tools", diags);
        }
        for s in &plugin.skills {
            if let Some(d) = &s.doc {
                claude_frontmatter(d, "skill", diags);
                tools(d, "allowed-tools", diags);
            }
        }
        for c in &plugin.commands {
            claude_frontmatter(&c.doc, "command", diags);
            tools(&c.doc, "allowed-tools", diags);
        }
    }
    links(model, diags);
    hooks_and_servers(model, diags);
}

/// Lints each plugin's hooks file and MCP servers file ([`config`]): the default `hooks/hooks.json` and `.mcp.json`,
/// and files plugin.json's `hooks` and `mcpServers` name by path.
fn hooks_and_servers(model: &Model, diags: &mut Vec<Diagnostic>) {
    let texts: BTreeMap<&str, &[u8]> = model
        .copies
        .iter()
        .map(|c| (c.rel.as_str(), c.bytes.as_slice()))
        .collect();
    for plugin in &model.plugins {
        let base = if plugin.dir.is_empty() {
            String::new()
        } else {
            format!("{}/", plugin.dir)
        };
        let named = |key: &str| -> Vec<String> {
            let paths = match plugin.manifest.as_ref().and_then(|m| m.json.get(key)) {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            paths
                .iter()
                .filter_map(|p| crate::links::join(plugin.dir.as_str(), p.trim_start_matches("./")))
                .collect()
        };
        // Hooks and MCP servers written inline in plugin.json: the manifest read as a hooks file (its `hooks`
        // object) and as an MCP servers file (its `mcpServers` object).
        if let Some(m) = &plugin.manifest {
            if m.json
                .get("hooks")
                .is_some_and(serde_json::Value::is_object)
            {
                config::hooks_file(&m.rel, &m.text, diags);
            }
            if m.json
                .get("mcpServers")
                .is_some_and(serde_json::Value::is_object)
            {
                config::mcp_file(&m.rel, &m.text, diags);
            }
        }
        let mut hooks = vec![format!("{base}hooks/hooks.json")];
        hooks.extend(named("hooks"));
        let mut servers = vec![format!("{base}.mcp.json")];
        servers.extend(named("mcpServers"));
        let mut done = BTreeSet::new();
        for (files, lint) in [
            (
                hooks,
                config::hooks_file as fn(&str, &str, &mut Vec<Diagnostic>),
            ),
            (servers, config::mcp_file),
        ] {
            for rel in files {
                let Some(bytes) = texts.get(rel.as_str()) else {
                    continue;
                };
                if !done.insert(rel.clone()) {
                    continue;
                }
                let text = String::from_utf8_lossy(bytes);
                lint(&rel, &text, diags);
            }
        }
    }
}

/// Fields of plugin.json that Claude Code knows (2.1.332): others get an "Unknown field" warning from it.
pub const PLUGIN_FIELDS: &[&str] = &[
    "$schema",
    "name",
    "displayName",
    "version",
    "description",
    "author",
    "homepage",
    "repository",
    "license",
    "keywords",
    "icon",
    "commands",
    "agents",
    "skills",
    "hooks",
    "mcpServers",
    "outputStyles",
    "lspServers",
    "dependencies",
    "userConfig",
    "channels",
    "settings",
    "engines",
    "network",
    "monitors",
    "themes",
    "workflows",
    "experimental",
];

/// Fields that belong in the marketplace entry, not in plugin.json.
pub const MARKETPLACE_ENTRY_FIELDS: &[&str] = &["category", "tags", "source", "strict", "id"];

/// Finds `"key"` in a JSON text: the offset of the key's first character, or 0.
fn key_offset(text: &str, key: &str) -> usize {
    text.find(&format!("\"{key}\"")).map(|i| i + 1).unwrap_or(0)
}

/// What `claude plugin validate` checks in a plugin.json, as skillbook's own diagnostics: schema errors
/// (`manifest-schema`), component paths Claude Code refuses (`manifest-path`), and the warnings that matter to an
/// author (`manifest-field`, `manifest-metadata`, `plugin-name`).
fn plugin_manifest(m: &crate::load::Manifest, diags: &mut Vec<Diagnostic>) {
    let src = Source::new(&m.rel, &m.text);
    let at = |key: &str| key_offset(&m.text, key);
    let mut schema = |key: &str, msg: String, help: &str| {
        diags.push(
            src.diag(at(key), Severity::Error, "manifest-schema", msg)
                .help(help.to_string()),
        );
    };
    match m.json.get("name") {
        None => schema(
            "name",
            "plugin.json has no `name`".into(),
            "add `\"name\": \"my-plugin\"` (kebab-case)",
        ),
        Some(serde_json::Value::String(n)) if n.contains(char::is_whitespace) => schema(
            "name",
            format!("plugin name `{n}` contains spaces, which Claude Code refuses"),
            "use kebab-case, e.g. \"my-plugin\"",
        ),
        Some(serde_json::Value::String(_)) => {}
        Some(_) => schema(
            "name",
            "`name` must be a string".into(),
            "write the name in quotes",
        ),
    }
    for key in [
        "version",
        "description",
        "homepage",
        "repository",
        "license",
        "displayName",
        "$schema",
    ] {
        if let Some(v) = m.json.get(key) {
            if !v.is_string() {
                schema(
                    key,
                    format!("`{key}` must be a string"),
                    "write the value in quotes",
                );
            } else if key == "homepage" && !v.as_str().unwrap_or("").contains("://") {
                schema(
                    key,
                    "`homepage` is not a URL".into(),
                    "write a full URL, e.g. \"https://example.com\"",
                );
            }
        }
    }
    if let Some(k) = m.json.get("keywords") {
        if !k
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v.is_string()))
        {
            schema(
                "keywords",
                "`keywords` must be a list of strings".into(),
                "write `\"keywords\": [\"a\", \"b\"]`",
            );
        }
    }
    match m.json.get("author") {
        None => diags.push(
            src.diag(0, Severity::Warning, "manifest-metadata", "plugin.json has no `author`")
                .help("add `\"author\": { \"name\": \"...\" }` for attribution (`claude plugin validate --strict` requires it)"),
        ),
        Some(serde_json::Value::Object(a)) if a.get("name").is_some_and(|n| n.is_string()) => {}
        Some(serde_json::Value::Object(_)) => schema("author", "`author` has no `name`".into(), "write `\"author\": { \"name\": \"...\" }`"),
        Some(_) => schema("author", "`author` must be an object with a `name`".into(), "write `\"author\": { \"name\": \"...\" }`"),
    }
    for key in ["version", "description"] {
        if !m.json.contains_key(key) {
            diags.push(
                src.diag(
                    0,
                    Severity::Warning,
                    "manifest-metadata",
                    format!("plugin.json has no `{key}`"),
                )
                .help("`claude plugin validate --strict` requires it"),
            );
        }
    }
    if let Some(serde_json::Value::String(n)) = m.json.get("name") {
        let kebab = !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !kebab && !n.contains(char::is_whitespace) {
            diags.push(
                src.diag(at("name"), Severity::Warning, "plugin-name", format!("plugin name `{n}` is not kebab-case"))
                    .help("Claude Code accepts it, but marketplaces want lowercase letters, digits and hyphens"),
            );
        }
    }
    for (key, kind) in [
        ("agents", "agents"),
        ("commands", "commands"),
        ("skills", "skills"),
    ] {
        let values: Vec<&str> = match m.json.get(key) {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        for v in values {
            let offset = m.text.find(&format!("\"{v}\"")).map(|i| i + 1).unwrap_or(0);
            let problem = if !v.starts_with("./") {
                Some("must start with `./`")
            } else if kind == "agents" && !v.ends_with(".md") {
                Some("must name a `.md` file (Claude Code does not read a folder here)")
            } else if kind == "skills" && v.ends_with(".md") {
                Some("must name a folder that holds SKILL.md, not a file")
            } else {
                None
            };
            if let Some(p) = problem {
                diags.push(
                    src.diag(offset, Severity::Error, "manifest-path", format!("`{key}` entry `{v}` {p}; Claude Code refuses the manifest"))
                        .help(if kind == "agents" { "list each agent file: `\"agents\": [\"./agents/a.md\"]`, or drop the entry: `agents/` is read anyway" } else { "paths are relative to the plugin root and start with `./`" }),
                );
            }
        }
    }
    for key in m.json.keys() {
        if MARKETPLACE_ENTRY_FIELDS.contains(&key.as_str()) {
            diags.push(
                src.diag(at(key), Severity::Warning, "manifest-field", format!("`{key}` belongs in the marketplace entry (marketplace.json), not plugin.json; Claude Code ignores it here"))
                    .help("move it to the plugin's entry in marketplace.json"),
            );
        } else if !PLUGIN_FIELDS.contains(&key.as_str()) {
            let known: Vec<String> = PLUGIN_FIELDS.iter().map(|s| s.to_string()).collect();
            let d = src.diag(
                at(key),
                Severity::Warning,
                "manifest-field",
                format!("unknown field `{key}`; Claude Code ignores it"),
            );
            diags.push(match crate::check::did_you_mean(key, &known) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("remove it"),
            });
        }
    }
}

/// What Claude Code's frontmatter reader rejects that skillbook's lenient reader accepts: YAML its parser fails on
/// (the file then loads with every field dropped), and field types it refuses.
fn claude_frontmatter(doc: &Document, kind: &str, diags: &mut Vec<Diagnostic>) {
    if !doc.has_frontmatter || doc.frontmatter.rejected {
        return;
    }
    let src = doc.source();
    // Claude Code ends a frontmatter block at the first `---` it finds, even inside a value.
    let yaml_range = doc.frontmatter.yaml.clone();
    if let Some(cut) = doc.file.text[yaml_range.clone()].find("---") {
        let at = yaml_range.start + cut;
        let head = &doc.file.text[yaml_range.start..at];
        let fails = claude_yaml_error(head).is_some()
            || (doc.frontmatter.strict && crate::frontmatter::parse_strict(head).is_err());
        let d = if fails {
            src.diag(at, Severity::Error, "yaml-invalid", format!("Claude Code ends the frontmatter at this `---`, and what comes before it does not parse; at runtime this {kind} loads {}", if kind == "agent" { "with its name taken from the file name and every other field dropped" } else { "with empty metadata" }))
        } else {
            src.diag(at, Severity::Warning, "frontmatter-dashes", format!("Claude Code ends the frontmatter at this `---`, even inside a value: at runtime this {kind} loses what follows it"))
        };
        diags.push(d.help(
            "write the dashes another way (`—`, or `--` and `-`), or put the text in the body",
        ));
        if fails {
            return;
        }
    }
    if !doc.frontmatter.strict {
        let yaml = &doc.file.text[doc.frontmatter.yaml.clone()];
        if let Some((offset, why)) = claude_yaml_error(yaml) {
            let dropped = if kind == "agent" {
                "with its name taken from the file name and every other field dropped"
            } else {
                "with empty metadata"
            };
            diags.push(
                src.diag(doc.frontmatter.yaml.start + offset, Severity::Error, "yaml-invalid", format!("Claude Code cannot parse this frontmatter ({why}); at runtime this {kind} loads {dropped}"))
                    .help("quote the value (\"...\"), or use a block scalar (`description: >-` and indented lines); skillbook's lenient reading is shown in the yaml-fallback warning"),
            );
        }
        return;
    }
    if let Some(f) = doc.frontmatter.get("name") {
        if matches!(f.value, Value::Number(_) | Value::Bool(_)) {
            diags.push(
                src.diag(
                    f.key_offset,
                    Severity::Error,
                    "wrong-type",
                    "`name` must be a string; Claude Code refuses a number or boolean here",
                )
                .help("write the name in quotes"),
            );
        }
    }
    if kind != "agent" {
        if let Some(f) = doc.frontmatter.get("allowed-tools") {
            let ok = match &f.value {
                Value::String(_) | Value::Null => true,
                Value::List(items) => items.iter().all(|v| matches!(v, Value::String(_))),
                _ => false,
            };
            if !ok {
                diags.push(
                    src.diag(
                        f.key_offset,
                        Severity::Error,
                        "wrong-type",
                        "`allowed-tools` must be a string or a list of strings",
                    )
                    .help("write `allowed-tools: Read, Grep` or a list"),
                );
            }
        }
    }
}

/// Whether Claude Code's YAML parser (Bun's) rejects a frontmatter that strict YAML already rejected, and where. The
/// rules are the failures `claude plugin validate` 2.1.332 was seen to report; it accepts much that YAML 1.2 does not
/// (`key: a: b`, unclosed `[`, duplicate keys), so anything else is left to the `yaml-fallback` warning.
pub fn claude_yaml_error(yaml: &str) -> Option<(usize, &'static str)> {
    let mut offset = 0;
    let mut open_quote: Option<(char, usize)> = None;
    // The key's indentation and, once seen, the first content line's, of a block scalar being read.
    let mut block: Option<(usize, Option<usize>)> = None;
    // Inside a plain (unquoted) multi-line value: its continuation lines may not hold `key: value`.
    let mut plain = false;
    for line in yaml.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let l = line.trim_end_matches(['\n', '\r']);
        if let Some((q, _)) = open_quote {
            if closes(l, q).is_some() {
                open_quote = None;
            }
            continue;
        }
        let trimmed = l.trim_start_matches(' ');
        let indent = l.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((k, first)) = block {
            if indent > k {
                match first {
                    None => block = Some((k, Some(indent))),
                    Some(f) if indent < f => {
                        return Some((
                            start,
                            "a block scalar line indented less than its first line",
                        ))
                    }
                    Some(_) => {}
                }
                continue;
            }
            block = None;
        }
        let tabbed = trimmed.starts_with('\t');
        if plain && (indent > 0 || tabbed) {
            let t = trimmed.trim_start();
            if t.contains(": ") || t.ends_with(':') {
                return Some((
                    start + indent,
                    "`key: value` inside a plain multi-line value",
                ));
            }
            continue;
        }
        plain = false;
        if indent > 0 || tabbed {
            continue;
        }
        if trimmed.starts_with("? ") {
            return Some((start, "a complex key `? `"));
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            return Some((
                start,
                "a line that is neither `key: value` nor indented under one",
            ));
        };
        if key.starts_with("- ") || key == "-" {
            return Some((start, "a list item where a `key: value` belongs"));
        }
        let value = value.trim();
        let vstart = start
            + trimmed.find(':').unwrap_or(0)
            + 1
            + (trimmed
                .split_once(':')
                .map(|(_, v)| v.len() - v.trim_start().len())
                .unwrap_or(0));
        if value.starts_with('|') || value.starts_with('>') {
            block = Some((indent, None));
            continue;
        }
        plain = !value.is_empty()
            && !value.starts_with(['"', '\'', '[', '{', '&', '*', '!'])
            && !value.starts_with('#');
        if let Some(q) = value.chars().next().filter(|c| *c == '"' || *c == '\'') {
            match closes(&value[1..], q) {
                None => open_quote = Some((q, vstart)),
                Some(end) => {
                    let rest = value[1 + end + 1..].trim();
                    if !rest.is_empty() && !rest.starts_with('#') {
                        return Some((vstart, "text after a closing quote"));
                    }
                }
            }
            continue;
        }
        if value.ends_with(':') && !value.contains(": ") {
            return Some((vstart + value.len() - 1, "a value that ends with `:`"));
        }
    }
    open_quote.map(|(_, at)| (at, "a quoted value that is never closed"))
}

/// The byte index in `s` of the quote `q` that closes a quoted scalar, if any (`\"` and `''` are escapes).
fn closes(s: &str, q: char) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if q == '"' && c == '\\' {
            i += 2;
            continue;
        }
        if c == q {
            if q == '\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Claude Code's tool names, for `tools:` and `allowed-tools:`: its documentation's tools reference, checked against
/// Claude Code 2.1.332 (the version `tests/run` pins), which defines each of these names. Not here: names 2.1.332 lists
/// as removed tools (`TeamCreate`, `TeamDelete`, `TaskOutput`, `BashOutput`) and older names it no longer defines
/// (`KillShell`, `LS`, `MultiEdit`, `NotebookRead`, `SlashCommand`, `TodoRead`), which an agent's `tools:` gains
/// nothing from.
pub const CLAUDE_TOOLS: &[&str] = &[
    "Agent",
    "Artifact",
    "AskUserQuestion",
    "Bash",
    "CronCreate",
    "CronDelete",
    "CronList",
    "Edit",
    "EnterPlanMode",
    "EnterWorktree",
    "ExitPlanMode",
    "ExitWorktree",
    "Glob",
    "Grep",
    "LSP",
    "ListMcpResourcesTool",
    "Monitor",
    "NotebookEdit",
    "PowerShell",
    "Read",
    "ReadMcpResourceTool",
    "SendMessage",
    "Skill",
    "Task",
    "TaskCreate",
    "TaskGet",
    "TaskList",
    "TaskStop",
    "TaskUpdate",
    "TodoWrite",
    "ToolSearch",
    "WebFetch",
    "WebSearch",
    "Write",
];

/// Unknown tool names in `tools:` (agents) or `allowed-tools:` (skills, commands): a warning with a suggestion.
/// `mcp__server__tool` names and `Bash(git:*)`-style rules (by their tool name) pass; `*` passes.
fn tools(doc: &Document, key: &str, diags: &mut Vec<Diagnostic>) {
    let Some(f) = doc.frontmatter.get(key) else {
        return;
    };
    let names: Vec<String> = match &f.value {
        Value::String(s) => split_tools(s),
        Value::List(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                _ => None,
            })
            .collect(),
        _ => return,
    };
    let known: Vec<String> = CLAUDE_TOOLS.iter().map(|s| s.to_string()).collect();
    let src = doc.source();
    let mut seen = BTreeSet::new();
    for name in names {
        let tool = name.split('(').next().unwrap_or("").trim();
        if tool.is_empty()
            || tool == "*"
            || tool.starts_with("mcp__")
            || CLAUDE_TOOLS.contains(&tool)
        {
            continue;
        }
        if !seen.insert(tool.to_string()) {
            continue;
        }
        let offset = doc
            .frontmatter
            .locate(&doc.file.text, key, tool, f.region.start)
            .unwrap_or(f.key_offset);
        let d = src.diag(
            offset,
            Severity::Warning,
            "unknown-tool",
            format!("`{tool}` is not a Claude Code tool"),
        );
        diags.push(match crate::check::did_you_mean(tool, &known) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => {
                d.help("MCP tools are named `mcp__server__tool`; see Claude Code's tools reference")
            }
        });
    }
}

/// `Read, Bash(git add:*), Grep` as names, commas inside parentheses not splitting.
fn split_tools(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            ' ' if depth <= 0 && !cur.trim().is_empty() && !s.contains(',') => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Relative links and images in any markdown file of the plugin that lead to no file or folder of it
/// (`broken-link`, an error: the link is broken in the source and would be in the compiled plugin).
fn links(model: &Model, diags: &mut Vec<Diagnostic>) {
    let mut files: BTreeSet<&str> = BTreeSet::new();
    // Path, text, where the body starts, and the body's links (a document's, found when it was parsed).
    let mut texts: Vec<(&str, &str, usize, Cow<[Link]>)> = Vec::new();
    for plugin in &model.plugins {
        if let Some(m) = &plugin.manifest {
            files.insert(&m.rel);
        }
        let docs = plugin
            .agents
            .iter()
            .map(|a| &a.doc)
            .chain(plugin.commands.iter().map(|c| &c.doc))
            .chain(
                plugin
                    .skills
                    .iter()
                    .flat_map(|s| s.doc.iter().chain(s.patterns.iter().map(|p| &p.doc))),
            );
        for d in docs {
            files.insert(&d.file.rel);
            texts.push((
                &d.file.rel,
                &d.file.text,
                d.body_start,
                Cow::Borrowed(&d.links),
            ));
        }
    }
    if let Some(m) = &model.marketplace {
        files.insert(&m.rel);
    }
    for c in &model.copies {
        files.insert(&c.rel);
        if c.rel.ends_with(".md") {
            if let Some(t) = crate::load::text_of(&c.bytes) {
                texts.push((&c.rel, t, 0, Cow::Owned(crate::links::relative_links(t))));
            }
        }
    }
    let dirs: BTreeSet<&str> = files
        .iter()
        .flat_map(|f| {
            let mut out = Vec::new();
            let mut p = crate::links::parent(f);
            while !p.is_empty() {
                out.push(p);
                p = crate::links::parent(p);
            }
            out
        })
        .collect();
    for (path, text, body_start, links) in texts {
        let dir = crate::links::parent(path);
        for link in links.iter() {
            if link.path.is_empty() {
                continue;
            }
            let target = crate::links::join(dir, &link.path);
            let ok = target
                .as_deref()
                .is_some_and(|t| files.contains(t) || dirs.contains(t) || t.is_empty());
            if ok {
                continue;
            }
            let src = Source::new(path, text);
            let why = match &target {
                None => "leads outside the content root".to_string(),
                Some(t) => format!("leads to `{t}`, which is not a file of the plugin"),
            };
            diags.push(
                src.diag(
                    body_start + link.range.start,
                    Severity::Error,
                    "broken-link",
                    format!("link `{}` {why}", link.dest),
                )
                .help("fix the path (relative to this file), or add the file"),
            );
        }
    }
}

/// Two source files that the compiled plugin would write to one path (a skill's own `references/x.md` and its
/// pattern `patterns/x.md`, say): an error at the second, naming the first, so that nothing is silently lost.
fn clashes(model: &Model, diags: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (dest, source) in crate::emit::plugin::layout(model) {
        let Some(first) = seen.get(&dest) else {
            seen.insert(dest, source);
            continue;
        };
        let Some(second) = source else { continue };
        let src = Source::new(&second, "");
        // The same file twice: its plugin's folder is the source of two marketplace entries.
        let (message, help) = if first.as_deref() == Some(second.as_str()) {
            (
                format!("this file would be written twice to `{dest}`: its plugin folder is the `source` of two entries of the marketplace"),
                "list each plugin folder once in marketplace.json",
            )
        } else {
            let first = first.as_deref().unwrap_or("the manifest skillbook writes");
            (
                format!("this file and `{first}` would both be written to `{dest}` in the compiled plugin"),
                "rename one of them: a pattern `patterns/x.md` becomes `references/x.md`, next to the skill's own references",
            )
        };
        diags.push(
            src.diag_at(1, 1, Severity::Error, "output-clash", message)
                .help(help),
        );
    }
}
