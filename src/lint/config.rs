//! What `claude plugin validate` (2.1.332) checks in a plugin's hooks (`hooks/hooks.json`) and MCP servers
//! (`.mcp.json`), as skillbook diagnostics at the offending key's line and column.
//!
//! Hooks: a file that is not JSON, not an object, without `hooks`, or with `hooks` not an object breaks the whole
//! plugin's load (errors). A bad entry under an event is dropped at runtime: Claude Code reports it as an error under
//! `PreToolUse` and `PermissionRequest` (such a hook may be what guards a permission) and as a warning under any other
//! event. An unknown event is a warning. MCP servers: every problem drops the server at load, and is an error.

use super::json::{dotted, locate, Step};
use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use serde_json::Value;

/// Claude Code's hook events (2.1.332, from its own list).
pub const HOOK_EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "Notification",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "SessionStart",
    "SessionEnd",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "PreModelSwitch",
    "PostModelSwitch",
    "PermissionRequest",
    "PermissionDenied",
    "Setup",
    "TeammateIdle",
    "TaskCreated",
    "TaskCompleted",
    "Elicitation",
    "ElicitationResult",
    "ConfigChange",
    "WorktreeCreate",
    "WorktreeRemove",
    "InstructionsLoaded",
    "CwdChanged",
    "FileChanged",
    "DirectoryAdded",
    "MessageDisplay",
    "PreSkillShellCommand",
];

/// Hook types and the string fields each must have.
const HOOK_TYPES: &[(&str, &[&str])] = &[
    ("command", &["command"]),
    ("prompt", &["prompt"]),
    ("agent", &["prompt"]),
    ("http", &["url"]),
    ("mcp_tool", &["server", "tool"]),
];

/// Events whose broken entries Claude Code reports as errors.
const GUARDING_EVENTS: &[&str] = &["PreToolUse", "PermissionRequest"];

/// A JSON file of the plugin being linted: its path, text and the diagnostics found.
struct File<'a> {
    src: Source<'a>,
    text: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

impl File<'_> {
    fn at(
        &mut self,
        path: &[Step],
        severity: Severity,
        code: &'static str,
        msg: String,
        help: &str,
    ) {
        let d = self
            .src
            .diag(locate(self.text, path), severity, code, msg)
            .help(help.to_string());
        self.diags.push(d);
    }
}

/// Parses a JSON file, reporting a syntax error as `code` at its line and column.
fn parse(
    rel: &str,
    text: &str,
    code: &'static str,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Value> {
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        // Claude Code (2.1.332) refuses it: "JSON Parse error: Unrecognized token (UTF-8 BOM at start of file)", and
        // loads nothing from the file (a hooks file's failure fails the whole plugin). Located, as every file the
        // loader reads, in the text without its BOM.
        diags.push(
            Source::new(rel, rest)
                .diag_at(
                    1,
                    1,
                    Severity::Error,
                    code,
                    format!("{what} starts with a UTF-8 byte-order mark (BOM), which Claude Code does not accept here (plugin.json may have one); it cannot load the file"),
                )
                .help("re-save it as UTF-8 without a BOM; the JSON itself may be fine"),
        );
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let src = Source::new(rel, text);
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            diags.push(
                src.diag(
                    src.byte_line_col(e.line(), e.column()),
                    Severity::Error,
                    code,
                    format!("{what} is not valid JSON ({msg}); Claude Code cannot load it"),
                )
                .help("fix the JSON syntax here (a missing comma, quote or bracket)"),
            );
            None
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Lints a hooks file (`hooks/hooks.json`, or a file plugin.json's `hooks` names).
pub fn hooks_file(rel: &str, text: &str, diags: &mut Vec<Diagnostic>) {
    let Some(root) = parse(rel, text, "hooks-json", "this hooks file", diags) else {
        return;
    };
    let mut f = File {
        src: Source::new(rel, text),
        text,
        diags,
    };
    hooks(&mut f, &root, &[]);
}

/// Lints a hooks document at `base` in its file.
fn hooks(f: &mut File, root: &Value, base: &[Step]) {
    let path = |steps: &[Step]| -> Vec<Step> {
        base.iter().cloned().chain(steps.iter().cloned()).collect()
    };
    let Value::Object(obj) = root else {
        f.at(
            base,
            Severity::Error,
            "hooks-schema",
            format!(
                "hooks must be an object, found {}; Claude Code cannot load the plugin",
                kind(root)
            ),
            "write `{ \"hooks\": { \"PreToolUse\": [ ... ] } }`",
        );
        return;
    };
    if let Some(d) = obj.get("description") {
        if !d.is_string() {
            f.at(
                &path(&[Step::Key("description".into())]),
                Severity::Error,
                "hooks-schema",
                format!("`description` must be a string, found {}", kind(d)),
                "write the description in quotes",
            );
        }
    }
    let Some(events) = obj.get("hooks") else {
        if obj.contains_key("modules") {
            return;
        }
        let stray = obj.keys().find(|k| HOOK_EVENTS.contains(&k.as_str()));
        let (at, msg) = match stray {
            Some(e) => (
                path(&[Step::Key(e.clone())]),
                format!("`{e}` is declared at the top level, outside the `hooks` object; Claude Code cannot load the plugin"),
            ),
            None => (
                base.to_vec(),
                "this hooks file has no `hooks` object; Claude Code cannot load the plugin".to_string(),
            ),
        };
        f.at(
            &at,
            Severity::Error,
            "hooks-schema",
            msg,
            "put the events inside `\"hooks\": { ... }`",
        );
        return;
    };
    let Value::Object(events) = events else {
        f.at(
            &path(&[Step::Key("hooks".into())]),
            Severity::Error,
            "hooks-schema",
            format!("`hooks` must be an object of events, found {}; Claude Code cannot load the plugin", kind(events)),
            "write `\"hooks\": { \"PreToolUse\": [ { \"matcher\": \"Bash\", \"hooks\": [ ... ] } ] }`",
        );
        return;
    };
    for (event, matchers) in events {
        let at = path(&[Step::Key("hooks".into()), Step::Key(event.clone())]);
        if !HOOK_EVENTS.contains(&event.as_str()) {
            let known: Vec<String> = HOOK_EVENTS.iter().map(|s| s.to_string()).collect();
            let help = match crate::check::did_you_mean(event, &known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "see Claude Code's hooks reference for the events".to_string(),
            };
            f.at(
                &at,
                Severity::Warning,
                "hooks-event",
                format!("`{event}` is not a Claude Code hook event; its hooks are ignored"),
                &help,
            );
            continue;
        }
        let (severity, consequence) = if GUARDING_EVENTS.contains(&event.as_str()) {
            (
                Severity::Error,
                "Claude Code refuses it: a PreToolUse or PermissionRequest hook may guard a permission",
            )
        } else {
            (Severity::Warning, "Claude Code ignores the entry")
        };
        let bad = |f: &mut File, steps: &[Step], problem: String, help: &str| {
            let p: Vec<Step> = at.iter().cloned().chain(steps.iter().cloned()).collect();
            let msg = format!("{}: {problem}; {consequence}", dotted(&p[base.len()..]));
            f.at(&p, severity, "hooks-schema", msg, help);
        };
        let Value::Array(matchers) = matchers else {
            bad(
                f,
                &[],
                format!("must be a list of matchers, found {}", kind(matchers)),
                "write `[ { \"matcher\": \"Bash\", \"hooks\": [ ... ] } ]`",
            );
            continue;
        };
        for (i, m) in matchers.iter().enumerate() {
            let Value::Object(m) = m else {
                bad(
                    f,
                    &[Step::Index(i)],
                    format!("a matcher must be an object, found {}", kind(m)),
                    "write `{ \"matcher\": \"Bash\", \"hooks\": [ ... ] }`",
                );
                continue;
            };
            if let Some(mt) = m.get("matcher").filter(|v| !v.is_string()) {
                bad(
                    f,
                    &[Step::Index(i), Step::Key("matcher".into())],
                    format!("`matcher` must be a string, found {}", kind(mt)),
                    "write a tool name or pattern in quotes, e.g. \"Edit|Write\"",
                );
                continue;
            }
            let Some(Value::Array(entries)) = m.get("hooks") else {
                let found = m.get("hooks").map_or("nothing", kind);
                let steps = if m.contains_key("hooks") {
                    vec![Step::Index(i), Step::Key("hooks".into())]
                } else {
                    vec![Step::Index(i)]
                };
                bad(
                    f,
                    &steps,
                    format!("a matcher's `hooks` must be a list of hook entries, found {found}"),
                    "write `\"hooks\": [ { \"type\": \"command\", \"command\": \"...\" } ]`",
                );
                continue;
            };
            for (j, h) in entries.iter().enumerate() {
                let here = [Step::Index(i), Step::Key("hooks".into()), Step::Index(j)];
                let Value::Object(h) = h else {
                    bad(
                        f,
                        &here,
                        format!("a hook entry must be an object, found {}", kind(h)),
                        "write `{ \"type\": \"command\", \"command\": \"...\" }`",
                    );
                    continue;
                };
                let types: Vec<&str> = HOOK_TYPES.iter().map(|(t, _)| *t).collect();
                let ty = match h.get("type") {
                    None => {
                        bad(
                            f,
                            &here,
                            "a hook entry has no `type`".into(),
                            &format!("add `\"type\"`: one of {}", types.join(", ")),
                        );
                        continue;
                    }
                    Some(Value::String(t)) => t,
                    Some(t) => {
                        let mut p = here.to_vec();
                        p.push(Step::Key("type".into()));
                        bad(
                            f,
                            &p,
                            format!("`type` must be a string, found {}", kind(t)),
                            &format!("one of {}", types.join(", ")),
                        );
                        continue;
                    }
                };
                let Some((_, required)) = HOOK_TYPES.iter().find(|(t, _)| t == ty) else {
                    let mut p = here.to_vec();
                    p.push(Step::Key("type".into()));
                    bad(
                        f,
                        &p,
                        format!("unknown hook type `{ty}`"),
                        &format!("use one of {}", types.join(", ")),
                    );
                    continue;
                };
                for key in *required {
                    match h.get(*key) {
                        Some(Value::String(_)) => {}
                        v => {
                            let mut p = here.to_vec();
                            if v.is_some() {
                                p.push(Step::Key(key.to_string()));
                            }
                            bad(
                                f,
                                &p,
                                format!(
                                    "a `{ty}` hook needs `{key}` as a string, found {}",
                                    v.map_or("nothing", kind)
                                ),
                                &format!("add `\"{key}\": \"...\"`"),
                            );
                        }
                    }
                }
                if let Some(t) = h.get("timeout").filter(|t| !t.is_number()) {
                    let mut p = here.to_vec();
                    p.push(Step::Key("timeout".into()));
                    bad(
                        f,
                        &p,
                        format!("`timeout` must be a number of seconds, found {}", kind(t)),
                        "write `\"timeout\": 30`",
                    );
                }
            }
        }
    }
}

/// Lints an MCP servers file (`.mcp.json`, or a file plugin.json's `mcpServers` names).
pub fn mcp_file(rel: &str, text: &str, diags: &mut Vec<Diagnostic>) {
    let Some(root) = parse(rel, text, "mcp-json", "this MCP servers file", diags) else {
        return;
    };
    let mut f = File {
        src: Source::new(rel, text),
        text,
        diags,
    };
    let (servers, base): (Vec<(String, &Value)>, Vec<Step>) = match &root {
        Value::Object(o) => match o.get("mcpServers") {
            Some(Value::Object(s)) => (
                s.iter().map(|(k, v)| (k.clone(), v)).collect(),
                vec![Step::Key("mcpServers".into())],
            ),
            Some(Value::Array(a)) => (
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v))
                    .collect(),
                vec![Step::Key("mcpServers".into())],
            ),
            Some(v) => {
                f.at(
                    &[Step::Key("mcpServers".into())],
                    Severity::Error,
                    "mcp-schema",
                    format!(
                        "`mcpServers` must be an object of servers, found {}",
                        kind(v)
                    ),
                    "write `\"mcpServers\": { \"name\": { \"command\": \"...\" } }`",
                );
                return;
            }
            None => (o.iter().map(|(k, v)| (k.clone(), v)).collect(), vec![]),
        },
        Value::Array(a) => (
            a.iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            vec![],
        ),
        v => {
            f.at(
                &[],
                Severity::Error,
                "mcp-schema",
                format!("an MCP servers file must be an object, found {}", kind(v)),
                "write `{ \"mcpServers\": { \"name\": { \"command\": \"...\" } } }`",
            );
            return;
        }
    };
    for (i, (name, server)) in servers.iter().enumerate() {
        let step = if matches!(root, Value::Array(_))
            || matches!(&root, Value::Object(o) if o.get("mcpServers").is_some_and(Value::is_array))
        {
            Step::Index(i)
        } else {
            Step::Key(name.clone())
        };
        let at: Vec<Step> = base.iter().cloned().chain([step]).collect();
        mcp_server(&mut f, name, server, &at);
    }
}

fn mcp_server(f: &mut File, name: &str, server: &Value, at: &[Step]) {
    let bad = |f: &mut File, key: Option<&str>, problem: String, help: &str| {
        let mut p = at.to_vec();
        if let Some(k) = key {
            p.push(Step::Key(k.to_string()));
        }
        f.at(
            &p,
            Severity::Error,
            "mcp-schema",
            format!("MCP server `{name}`: {problem}; Claude Code drops it at load"),
            help,
        );
    };
    let Value::Object(s) = server else {
        bad(
            f,
            None,
            format!("its configuration must be an object, found {}", kind(server)),
            "write `{ \"command\": \"...\", \"args\": [] }` or `{ \"type\": \"http\", \"url\": \"https://...\" }`",
        );
        return;
    };
    let remote = match s.get("type") {
        None if s.contains_key("url") => {
            bad(
                f,
                Some("url"),
                "it has a `url` but no `type`, so it is read as a local (stdio) server".into(),
                "add `\"type\": \"http\"` (or \"sse\", \"ws\")",
            );
            return;
        }
        None => false,
        Some(Value::String(t)) if t == "stdio" => false,
        Some(Value::String(t)) if ["http", "sse", "ws"].contains(&t.as_str()) => true,
        Some(t) => {
            let shown = t
                .as_str()
                .map_or_else(|| kind(t).to_string(), |s| format!("`{s}`"));
            bad(
                f,
                Some("type"),
                format!("unknown server type {shown}"),
                "use \"stdio\" (or no type) for a local command, or \"http\", \"sse\", \"ws\" for a remote server",
            );
            return;
        }
    };
    let strings_map = |v: &Value| match v {
        Value::Object(m) => m
            .iter()
            .find(|(_, v)| !v.is_string())
            .map(|(k, v)| (k.clone(), kind(v))),
        other => Some((String::new(), kind(other))),
    };
    if remote {
        match s.get("url") {
            Some(Value::String(u)) => {
                if !u.contains("${") && !is_absolute_url(u) {
                    bad(
                        f,
                        Some("url"),
                        format!("`{u}` is not an absolute URL"),
                        "write it in full, e.g. \"https://host/path\"",
                    );
                }
            }
            v => bad(
                f,
                if v.is_some() { Some("url") } else { None },
                format!(
                    "a remote server needs `url` as a string, found {}",
                    v.map_or("nothing", kind)
                ),
                "add `\"url\": \"https://host/path\"`",
            ),
        }
        if let Some((k, found)) = s.get("headers").and_then(strings_map) {
            bad(
                f,
                Some("headers"),
                format!("`headers` must map names to strings (`{k}` is {found})"),
                "write `\"headers\": { \"Authorization\": \"Bearer ${TOKEN}\" }`",
            );
        }
        return;
    }
    match s.get("command") {
        Some(Value::String(_)) => {}
        v => bad(
            f,
            if v.is_some() { Some("command") } else { None },
            format!("a local server needs `command` as a string, found {}", v.map_or("nothing", kind)),
            "add `\"command\": \"npx\"` (with `args`), or `\"type\": \"http\"` and a `url` for a remote server",
        ),
    }
    if let Some(a) = s.get("args") {
        if !a.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            bad(
                f,
                Some("args"),
                format!("`args` must be a list of strings, found {}", kind(a)),
                "write `\"args\": [\"-y\", \"package\"]`",
            );
        }
    }
    if let Some((k, found)) = s.get("env").and_then(strings_map) {
        let what = if k.is_empty() {
            format!("`env` must map names to strings, found {found}")
        } else {
            format!("`env` must map names to strings (`{k}` is {found})")
        };
        bad(
            f,
            Some("env"),
            what,
            "quote every value: `\"PORT\": \"8080\"`",
        );
    }
}

/// `scheme://host...`: what Claude Code accepts as an absolute URL.
fn is_absolute_url(u: &str) -> bool {
    let Some((scheme, rest)) = u.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.starts_with('/')
        && !u.contains(char::is_whitespace)
}
