//! Scaffold: `skillbook new agent|skill|pattern` writes a new content file from the content guide's outline.
//!
//! Every file it writes checks clean as written: an agent claims no item until one is added, a skill's SKILL.md has
//! its `name` and `description`, and a pattern's `covers` names only items the skill's agents have. It never
//! overwrites a file.

use crate::check::did_you_mean;
use crate::config;
use crate::driver;
use crate::frontmatter::{to_strict_yaml, Value};
use crate::parse::{normalize, Model};
use crate::Exit;
use indicatif::ProgressBar;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The placeholder a new agent and SKILL.md carry where the patterns go (the default stub pattern matches it).
pub const DEFAULT_STUB_TEXT: &str =
    "[Content will be expanded in follow-up - this stub enables plugin loading]";

/// What `skillbook new` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum New {
    Agent {
        name: String,
        /// The skill the agent refers to; with it the agent gets a stub to expand.
        skill: Option<String>,
    },
    Skill {
        name: String,
    },
    Pattern {
        skill: String,
        title: String,
        covers: Vec<String>,
    },
}

fn fail(msg: impl std::fmt::Display) -> Exit {
    eprintln!("skillbook: error: {msg}");
    Exit::Failure
}

/// True for a Claude Code / Agent Skills name: 1-64 of `a-z0-9-`, no leading, trailing or doubled hyphen.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// A name written the way Claude Code wants it: `Code Reviewer` becomes `code-reviewer`.
pub fn suggest_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(64).collect()
}

/// The file name of a pattern titled `title`: lowercase words joined by hyphens.
pub fn pattern_slug(title: &str) -> String {
    let s = suggest_name(title);
    if s.is_empty() {
        "pattern".to_string()
    } else {
        s
    }
}

fn title_case(name: &str) -> String {
    name.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

fn frontmatter(fields: Vec<(&str, Value)>) -> String {
    let fields: Vec<(String, Value)> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    format!("---\n{}---\n", to_strict_yaml(&fields))
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// The text of a new agent.
pub fn agent_text(name: &str, skill: Option<&str>) -> String {
    let mut fields = vec![
        ("name", s(name)),
        (
            "description",
            s(&format!("Use this agent when ... (say when Claude should hand a task to {name}; Claude Code reads this to choose it).")),
        ),
        ("model", s("inherit")),
    ];
    if let Some(skill) = skill {
        fields.push(("skills", Value::List(vec![s(skill)])));
    }
    let mut text = frontmatter(fields);
    text.push_str(&format!(
        "\n# {}\n\nYou are ... (who the agent is, in one or two sentences).\n\n## Your Expertise\n\n<!-- One bullet per category, written as `- **Category**: First item, Second item`. Each item is a claim\n     that a pattern page must cover once the agent has a stub or refers to a skill with pattern files:\n     skillbook new pattern SKILL \"Title\" --covers \"First item\" -->\n\n## Responsibilities\n\n<!-- Numbered, each with its name in bold, written as `1. **Review the design**: what the agent does`;\n     a pattern may cover one by that name. -->\n",
        title_case(name)
    ));
    if skill.is_some() {
        text.push_str(&format!("\n## Patterns\n\n{DEFAULT_STUB_TEXT}\n"));
    }
    text
}

/// The text of a new skill's SKILL.md.
pub fn skill_text(name: &str) -> String {
    let mut text = frontmatter(vec![
        ("name", s(name)),
        (
            "description",
            s(&format!("{} patterns, one topic each. Use when ... (say what the skill does and when Claude should use it, in at most 1024 characters).", title_case(name))),
        ),
    ]);
    text.push_str(&format!(
        "\n# {}\n\nWhat this skill is for and who reads it, in a paragraph. The pattern pages are listed below.\n\n{DEFAULT_STUB_TEXT}\n",
        title_case(name)
    ));
    text
}

/// The text of a new pattern file, with the content guide's six parts.
pub fn pattern_text(title: &str, covers: &[String]) -> String {
    let mut text = frontmatter(vec![
        ("title", s(title)),
        ("covers", Value::List(covers.iter().map(|c| s(c)).collect())),
        ("priority", Value::Number("50".to_string())),
        (
            "summary",
            s(&format!("Two or three sentences on {title} that stand alone: a bundle uses them when the budget has no room for the page.")),
        ),
    ]);
    text.push_str(
        "\n## The problem\n\n<!-- Two or three sentences, in the terms a practitioner would search for. -->\n\n\
## When it applies and when it does not\n\n<!-- The trade-off, not a slogan. -->\n\n\
## How to do it\n\n<!-- The libraries a practitioner actually reaches for, by their real module and function names and the version\n     written against; an example small enough to read and complete enough to adapt. -->\n\n\
## How it fails\n\n<!-- The failure modes, what they look like in logs and metrics, how to test for them. -->\n\n\
## Checklist\n\n<!-- What a reviewer can check on a pull request. -->\n\n- [ ] ...\n\n\
## Sources\n\n<!-- The papers, official docs and post-mortems the page relies on, by title; primary sources first. -->\n\n- ...\n",
    );
    text
}

/// True when `root` does not exist, or is a folder without agents, skills, commands or a `.claude-plugin/`.
fn is_new_root(root: &Path) -> bool {
    !root.exists()
        || (root.is_dir()
            && ["agents", "skills", "commands", ".claude-plugin"]
                .iter()
                .all(|f| !root.join(f).exists()))
}

/// Writes `text` to a new file at `path`, creating its folder; refuses to replace an existing file.
fn create(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} already exists; skillbook new never overwrites a file",
                    path.display()
                )
            } else {
                format!("cannot create {}: {e}", path.display())
            }
        })?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where a new agent or skill goes: the content root's own `agents/` and `skills/` (the first plugin's folder in
/// a marketplace).
fn plugin_dir(content_root: &Path, model: Option<&Model>) -> PathBuf {
    match model.and_then(|m| m.plugins.first()) {
        Some(p) if !p.dir.is_empty() => content_root.join(&p.dir),
        _ => content_root.to_path_buf(),
    }
}

/// `skillbook new`: writes one file and prints its path. Exit 0, or 2 (a bad name, an unknown skill, a `covers`
/// entry that names no item of the skill's agents, an existing file).
pub fn run(root: Option<&Path>, what: &New) -> Exit {
    let (content_root, model, stub) = match config::resolve(root) {
        Ok(config) => {
            let content_root = config.content_root.clone();
            let stub = config.stub.clone();
            match driver::compile(config, &ProgressBar::hidden()) {
                Ok(c) => (content_root, Some(c.model), Some(stub)),
                Err(e) => return fail(format!("cannot read {}: {e}", content_root.display())),
            }
        }
        // A new plugin: ROOT does not exist yet, or is a folder with nothing of a plugin in it.
        Err(e) => match root {
            Some(r) if is_new_root(r) => (r.to_path_buf(), None, None),
            _ => return fail(e),
        },
    };
    let (path, text) = match what {
        New::Agent { name, skill } => {
            if !is_name(name) {
                return fail(format!(
                    "`{name}` is not a valid agent name; Claude Code names are lowercase letters, digits and hyphens: try `{}`",
                    suggest_name(name)
                ));
            }
            if let Some(skill) = skill {
                let known = model
                    .as_ref()
                    .and_then(|m| m.plugins.first().map(|_| m.resolve_skill(0, skill)))
                    .flatten()
                    .is_some();
                if !known {
                    return fail(unknown_skill(skill, model.as_ref()));
                }
            }
            (
                plugin_dir(&content_root, model.as_ref())
                    .join("agents")
                    .join(format!("{name}.md")),
                agent_text(name, skill.as_deref()),
            )
        }
        New::Skill { name } => {
            if !is_name(name) {
                return fail(format!(
                    "`{name}` is not a valid skill name; the Agent Skills spec allows 1-64 lowercase letters, digits and hyphens: try `{}`",
                    suggest_name(name)
                ));
            }
            (
                plugin_dir(&content_root, model.as_ref())
                    .join("skills")
                    .join(name)
                    .join("SKILL.md"),
                skill_text(name),
            )
        }
        New::Pattern {
            skill,
            title,
            covers,
        } => {
            if title.trim().is_empty() {
                return fail("a pattern needs a title");
            }
            if covers.is_empty() {
                return fail("name the expertise items the pattern covers with --covers ITEM...");
            }
            let Some(model) = model.as_ref() else {
                return fail(unknown_skill(skill, None));
            };
            let found = (0..model.plugins.len()).find_map(|pi| {
                let key = model.resolve_skill(pi, skill)?;
                (key.0 == pi || skill.contains(':')).then_some(key)
            });
            let Some((pi, si)) = found else {
                return fail(unknown_skill(skill, Some(model)));
            };
            // The names a `covers:` entry may use: the items and responsibilities of every agent using the skill.
            let mut names: Vec<String> = Vec::new();
            for (pj, p) in model.plugins.iter().enumerate() {
                for a in &p.agents {
                    if model.agent_skills(pj, a).contains(&(pi, si)) {
                        names.extend(a.items().map(|(_, i)| i.name.clone()));
                        names.extend(a.responsibilities.iter().map(|r| r.name.clone()));
                    }
                }
            }
            for c in covers {
                let n = normalize(c);
                if names.iter().any(|x| normalize(x) == n) {
                    continue;
                }
                let hint = match did_you_mean(c, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if names.is_empty() => format!(
                        "no agent that uses skill `{skill}` claims any item yet: add `- **Category**: {c}` to an agent's `## Your Expertise`, with `skills: [{skill}]`"
                    ),
                    None => format!("the skill's agents claim: {}", names.join(", ")),
                };
                return fail(format!(
                    "`{c}` is not an expertise item of any agent that uses skill `{skill}`; {hint}"
                ));
            }
            let s = &model.plugins[pi].skills[si];
            (
                content_root
                    .join(&s.dir)
                    .join("patterns")
                    .join(format!("{}.md", pattern_slug(title))),
                pattern_text(title, covers),
            )
        }
    };
    match create(&path, &text) {
        Ok(()) => {
            println!("wrote {}", path.display());
            if let Some(note) = stub.and_then(|stub| unmatched_stub(&path, &text, &stub)) {
                eprintln!("{note}");
            }
            Exit::Success
        }
        Err(e) => fail(e),
    }
}

/// A warning when the book's `stub-pattern` does not match the placeholder just written: skillbook would not find
/// that stub to expand, so the author must replace it with their own stub text.
fn unmatched_stub(path: &Path, text: &str, stub: &regex::Regex) -> Option<String> {
    let at = text.find(DEFAULT_STUB_TEXT)?;
    if stub.is_match(DEFAULT_STUB_TEXT) {
        return None;
    }
    let line = text[..at].matches('\n').count() + 1;
    Some(format!(
        "{}:{line}:1: warning[stub-pattern]: book.toml's stub-pattern `{}` does not match this placeholder, so it will not be expanded\n  = help: replace the placeholder with the stub text your stub-pattern matches",
        path.display(),
        stub.as_str()
    ))
}

fn unknown_skill(skill: &str, model: Option<&Model>) -> String {
    let names: Vec<String> = model
        .map(|m| {
            m.plugins
                .iter()
                .flat_map(|p| p.skills.iter().map(move |s| p.display(&s.name)))
                .collect()
        })
        .unwrap_or_default();
    match did_you_mean(skill, &names) {
        Some(s) => format!("no skill named `{skill}`; did you mean `{s}`?"),
        None => format!("no skill named `{skill}`; create it with `skillbook new skill {skill}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        for (input, ok, suggestion) in [
            ("code-reviewer", true, "code-reviewer"),
            ("Code Reviewer", false, "code-reviewer"),
            ("Shopify_Expert", false, "shopify-expert"),
            ("-x", false, "x"),
            ("a--b", false, "a-b"),
        ] {
            assert_eq!(is_name(input), ok, "{input}");
            assert_eq!(suggest_name(input), suggestion, "{input}");
        }
        assert_eq!(pattern_slug("ExUnit: async tests"), "exunit-async-tests");
        assert_eq!(pattern_slug("???"), "pattern");
    }

    #[test]
    fn pattern_frontmatter_is_strict_yaml_with_the_given_values() {
        let covers = vec!["Raft: leader election".to_string(), "[x]".to_string()];
        let text = pattern_text("Title: with colon", &covers);
        let yaml = text
            .strip_prefix("---\n")
            .and_then(|t| t.split_once("---\n"))
            .map(|(y, _)| y)
            .unwrap();
        let fields = crate::frontmatter::parse_strict(yaml).unwrap();
        assert_eq!(fields[0], ("title".to_string(), s("Title: with colon")));
        assert_eq!(
            fields[1],
            (
                "covers".to_string(),
                Value::List(covers.iter().map(|c| s(c)).collect())
            )
        );
    }
}
