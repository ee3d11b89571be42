//! Claude Code's own validator as a test tool: `claude plugin validate` (the pinned CLI that `tests/run` installs in
//! `tests/node/`) must accept every compiled plugin with `--strict`, and every file it flags in a broken fixture must
//! carry a skillbook error too.

use crate::common::{copy_dir, fixture, project_dir, run, tests_dir, Fixture};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The version `tests/run` installs.
const CLAUDE_CODE_VERSION: &str = "2.1.332";

fn claude() -> PathBuf {
    let bin = project_dir().join("tests/node/node_modules/.bin/claude");
    assert!(
        bin.exists(),
        "Claude Code's CLI is not installed at {}: run `tests/run` (it installs everything the tests need), or \
         `npm install --prefix tests/node @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}`",
        bin.display()
    );
    bin
}

/// `claude plugin validate DIR --json [--strict]`: its report.
fn validate(dir: &Path, strict: bool) -> serde_json::Value {
    let mut cmd = Command::new(claude());
    cmd.args(["plugin", "validate"]).arg(dir).arg("--json");
    if strict {
        cmd.arg("--strict");
    }
    let out = cmd.env("NO_COLOR", "1").output().expect("run claude");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "claude plugin validate {}: no JSON ({e}):\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The files (relative to `dir`) on which the report has errors; manifest errors about a marketplace's plugin
/// (`plugins[N] plugin.json → ...`) are put on that plugin's plugin.json, and those about a field of its entry in
/// the marketplace (`plugins[N].name`) on marketplace.json.
fn flagged(dir: &Path, report: &serde_json::Value) -> BTreeSet<String> {
    let canon = fs::canonicalize(dir).unwrap();
    let rel = |f: &str| {
        let p = fs::canonicalize(f).unwrap_or_else(|_| PathBuf::from(f));
        p.strip_prefix(&canon)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| f.to_string())
    };
    let mut out = BTreeSet::new();
    if let Some(m) = report.get("manifest").filter(|m| !m.is_null()) {
        let file = rel(m["file"].as_str().unwrap_or(""));
        for e in m["errors"].as_array().into_iter().flatten() {
            let path = e["path"].as_str().unwrap_or("");
            if path == "directory" {
                continue; // no manifest at all: not a file's problem
            }
            match path
                .strip_prefix("plugins[")
                .and_then(|r| r.split_once(']'))
            {
                Some((_, field)) if field.starts_with('.') => {
                    out.insert(file.clone());
                }
                Some((n, _)) if file.ends_with("marketplace.json") => {
                    let mkt: serde_json::Value =
                        serde_json::from_str(&fs::read_to_string(dir.join(&file)).unwrap())
                            .unwrap();
                    let source = mkt["plugins"][n.parse::<usize>().unwrap()]["source"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches("./")
                        .to_string();
                    out.insert(format!("{source}/.claude-plugin/plugin.json"));
                }
                _ => {
                    out.insert(file.clone());
                }
            }
        }
    }
    for c in report["contents"].as_array().into_iter().flatten() {
        if c["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            out.insert(rel(c["file"].as_str().unwrap_or("")));
        }
    }
    out
}

fn content() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("content");
    copy_dir(&project_dir().join("content"), &path);
    Fixture::new(tmp, path)
}

#[test]
fn compiled_plugins_pass_claude_plugin_validate_strict() {
    let mut roots: Vec<(String, Fixture)> = [
        "clean-plugin",
        "seed",
        "plugin-repo",
        "marketplace",
        "marketplace-shared",
        "full-plugin",
        "custom-paths",
    ]
    .iter()
    .map(|n| (n.to_string(), fixture(n)))
    .collect();
    roots.push(("content".into(), content()));
    for (name, dir) in &roots {
        // Claude Code accepts the source (no false errors the other way: skillbook finds none either).
        let source = validate(dir.path(), false);
        assert_eq!(
            flagged(dir.path(), &source),
            BTreeSet::new(),
            "{name}: {source:#}"
        );
        let out = tempfile::tempdir().unwrap();
        let r = run(
            dir.path(),
            &["build", ".", "-q", "--out", out.path().to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let report = validate(&out.path().join("plugin"), true);
        assert_eq!(
            report["success"], true,
            "{name}: the compiled plugin fails --strict:\n{report:#}"
        );
    }
}

#[test]
fn skillbook_flags_every_file_claude_code_flags() {
    let mut names: Vec<String> = fs::read_dir(tests_dir().join("fixtures/broken"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut flagged_somewhere = 0;
    for name in &names {
        let dir = fixture(&format!("broken/{name}"));
        let report = validate(dir.path(), false);
        let theirs = flagged(dir.path(), &report);
        let r = run(dir.path(), &["check", ".", "--format", "json"]);
        let ours: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let ours: BTreeSet<String> = ours["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error")
            .map(|d| d["path"].as_str().unwrap().to_string())
            .collect();
        let missed: Vec<&String> = theirs.difference(&ours).collect();
        assert!(
            missed.is_empty(),
            "{name}: Claude Code flags {missed:?}, skillbook reports no error there.\nClaude Code: {report:#}\nskillbook: {ours:?}"
        );
        flagged_somewhere += usize::from(!theirs.is_empty());
    }
    // The fixtures exercise the client: at least these many have files it flags.
    assert!(
        flagged_somewhere >= 9,
        "only {flagged_somewhere} broken fixtures are flagged by Claude Code"
    );
}

/// The folders of `tests/fixtures/accepted/`: plugins Claude Code loads (with warnings at most).
fn accepted() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(tests_dir().join("fixtures/accepted"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// No false errors: every plugin Claude Code accepts (no file with an error in `claude plugin validate`) checks with
/// no errors in skillbook, builds, and compiles to a plugin that passes `--strict`: the compiled files have the
/// frontmatter the source lacked.
#[test]
fn plugins_claude_code_accepts_check_with_no_errors() {
    let names = accepted();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let dir = fixture(&format!("accepted/{name}"));
        let report = validate(dir.path(), false);
        assert_eq!(
            report["success"], true,
            "{name}: Claude Code refuses it:\n{report:#}"
        );
        assert_eq!(
            flagged(dir.path(), &report),
            BTreeSet::new(),
            "{name}: {report:#}"
        );
        let r = run(dir.path(), &["check", ".", "--format", "json"]);
        let ours: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let errors: Vec<&serde_json::Value> = ours["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error")
            .collect();
        assert!(
            errors.is_empty(),
            "{name}: Claude Code accepts it, skillbook reports {errors:#?}"
        );
        assert_eq!(r.code, 0, "{name}");
        let out = tempfile::tempdir().unwrap();
        let b = run(
            dir.path(),
            &["build", ".", "-q", "--out", out.path().to_str().unwrap()],
        );
        assert_eq!(b.code, 0, "{name}: {}", b.stderr);
        let plugin = out.path().join("plugin");
        let compiled = validate(&plugin, false);
        assert_eq!(
            flagged(&plugin, &compiled),
            BTreeSet::new(),
            "{name}: {compiled:#}"
        );
        // Everything skillbook writes passes --strict; a hooks file it carries byte for byte keeps the warnings Claude
        // Code has for it (skillbook warns about them too).
        let strict = validate(&plugin, true);
        let canon = fs::canonicalize(&plugin).unwrap();
        let warned: Vec<String> = strict["contents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c["warnings"].as_array().is_some_and(|w| !w.is_empty())
                    || c["errors"].as_array().is_some_and(|e| !e.is_empty())
            })
            .map(|c| {
                let f = fs::canonicalize(c["file"].as_str().unwrap()).unwrap();
                f.strip_prefix(&canon)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let manifest_clean = strict["manifest"]["warnings"]
            .as_array()
            .is_none_or(|w| w.is_empty());
        assert!(
            manifest_clean && warned.iter().all(|f| f == "hooks/hooks.json"),
            "{name}: the compiled plugin fails --strict on what skillbook wrote: {warned:?}\n{strict:#}"
        );
        assert!(
            strict["success"] == true || !warned.is_empty(),
            "{name}: the compiled plugin fails --strict:\n{strict:#}"
        );
        if name == "no-frontmatter" {
            let read = |p: &str| fs::read_to_string(plugin.join(p)).unwrap();
            assert!(
                read("agents/plain.md").starts_with(
                    "---\nname: plain\ndescription: 'name: helper'\n---\n\n# Helper\n"
                ),
                "{}",
                read("agents/plain.md")
            );
            assert!(read("agents/empty.md")
                .starts_with("---\nname: empty\ndescription: The empty agent.\n---\n"));
            // A command with no line of text, whose first lines after a blank one are rules: its text keeps them
            // after the added frontmatter, which Claude Code would otherwise read as frontmatter (the string `--`).
            assert_eq!(
                read("commands/rules.md"),
                "---\ndescription: The rules command.\n---\n\n---\n\n--\n---\n\n---\n-\n"
            );
            assert!(read("skills/notes/SKILL.md").starts_with(
                "---\nname: notes\ndescription: 'How this team writes release notes: short, in the past tense, one line per change.'\n---\n\n# Notes\n"
            ));
        }
    }
}
