//! Check: coverage of expertise items by patterns, references between documents, and the spec lints.
//!
//! The result is a [`Report`]: the diagnostics and a coverage matrix, printed for humans or as JSON.

use crate::diagnostic::{Diagnostic, Severity, WithHelp};
use crate::parse::{normalize, Agent, CoverIndex, Document, Model};
use crate::{HashMap, HashSet};
use serde::Serialize;
use std::collections::BTreeMap;

/// The version of the report's JSON schema.
pub const SCHEMA_VERSION: u32 = 1;

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub summary: Summary,
    pub diagnostics: Vec<Diagnostic>,
    pub coverage: Vec<AgentCoverage>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
    pub agents: usize,
    pub skills: usize,
    pub patterns: usize,
    /// Expertise items of the agents coverage applies to (see [`Coverage`]).
    pub items: usize,
    pub covered_items: usize,
    /// Expertise items of the other agents: prose, not claims; never an error.
    pub untracked_items: usize,
}

/// Which agents' expertise items must be covered (`[preprocessor.skillbook] coverage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coverage {
    /// An agent opts in by having a stub to expand, or by referring to a skill that has pattern files; the bullets
    /// of any other agent are prose, not claims.
    #[default]
    OptIn,
    /// Every agent's items must be covered.
    All,
}

/// The expertise items of one agent and the patterns that cover each.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct AgentCoverage {
    pub plugin: String,
    pub agent: String,
    pub path: String,
    pub skills: Vec<String>,
    /// Whether coverage applies to this agent; the items of an untracked agent are listed but never uncovered.
    pub tracked: bool,
    pub items: Vec<ItemCoverage>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct ItemCoverage {
    pub category: String,
    pub item: String,
    pub line: usize,
    pub column: usize,
    pub covered_by: Vec<PatternRef>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct PatternRef {
    pub skill: String,
    pub pattern: String,
    pub path: String,
}

/// Claude Code's subagent `model` aliases; a full model id (`claude-...`) is accepted too.
pub const AGENT_MODELS: &[&str] = &["sonnet", "opus", "haiku", "inherit"];
/// Claude Code's subagent colours.
pub const AGENT_COLORS: &[&str] = &[
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "cyan",
];

/// Checks the model with the default coverage rule; `diags` holds what earlier stages found.
pub fn check(model: &Model, diags: Vec<Diagnostic>) -> Report {
    check_with(model, diags, Coverage::default())
}

/// Whether coverage applies to an agent under a rule: an agent opts in with a stub, or by referring to a skill that
/// has pattern files.
pub fn tracked(model: &Model, pi: usize, agent: &Agent, rule: Coverage) -> bool {
    rule == Coverage::All
        || !agent.doc.stubs.is_empty()
        || model
            .agent_skills(pi, agent)
            .into_iter()
            .any(|k| !model.skill(k).patterns.is_empty())
}

/// Checks the model; `diags` holds what earlier stages found and receives this stage's findings.
pub fn check_with(model: &Model, mut diags: Vec<Diagnostic>, rule: Coverage) -> Report {
    let mut coverage = Vec::new();
    // `unknown-cover` errors with a did-you-mean (their index in `diags`), and where the items they meant are.
    let mut typos: Vec<Typo> = Vec::new();
    let mut users_of: HashMap<(usize, usize), Vec<&Agent>> = HashMap::default();
    for (pj, p) in model.plugins.iter().enumerate() {
        for a in &p.agents {
            for key in model.agent_skills(pj, a) {
                users_of.entry(key).or_default().push(a);
            }
        }
    }
    let covers: Vec<Vec<CoverIndex>> = model
        .plugins
        .iter()
        .map(|p| p.skills.iter().map(|s| s.cover_index()).collect())
        .collect();
    for (pi, plugin) in model.plugins.iter().enumerate() {
        duplicates(
            plugin.agents.iter().map(|a| (a.name.as_str(), &a.doc)),
            "agent",
            &mut diags,
        );
        duplicates(
            plugin
                .skills
                .iter()
                .filter_map(|s| s.doc.as_ref().map(|d| (s.name.as_str(), d))),
            "skill",
            &mut diags,
        );
        for agent in &plugin.agents {
            lint_agent(agent, &mut diags);
            coverage.push(agent_coverage(model, &covers, pi, agent, rule, &mut diags));
        }
        for (si, skill) in plugin.skills.iter().enumerate() {
            lint_skill(skill, &mut diags);
            let users: &[&Agent] = users_of.get(&(pi, si)).map(Vec::as_slice).unwrap_or(&[]);
            // Every name a `covers:` entry of this skill may use, normalised once.
            let known: HashSet<&str> = users
                .iter()
                .flat_map(|a| {
                    a.items().map(|(_, i)| i.norm.as_str()).chain(
                        a.responsibilities
                            .iter()
                            .flat_map(|r| r.norms.iter().map(String::as_str)),
                    )
                })
                .collect();
            for pattern in &skill.patterns {
                let src = pattern.doc.source();
                if pattern.covers.is_empty() {
                    diags.push(
                        src.diag(field_offset(&pattern.doc, "covers"), Severity::Warning, "covers-nothing", format!("pattern `{}` covers no expertise item", pattern.slug))
                            .help("add `covers: [Item]` naming the agent's expertise items this page explains"),
                    );
                }
                if pattern.summary.is_none() {
                    diags.push(
                        src.diag(0, Severity::Warning, "missing-summary", format!("pattern `{}` has no `summary`", pattern.slug))
                            .help("add `summary: ...` to the frontmatter, a few sentences that stand alone; bundles use it when the full page does not fit the budget"),
                    );
                }
                if users.is_empty() {
                    continue;
                }
                for cover in &pattern.covers {
                    if known.contains(cover.norm.as_str()) {
                        continue;
                    }
                    let candidates: Vec<String> = users
                        .iter()
                        .flat_map(|a| {
                            a.items()
                                .map(|(_, i)| i.name.clone())
                                .chain(a.responsibilities.iter().map(|r| r.name.clone()))
                        })
                        .collect();
                    let mut d = src.diag(
                        cover.offset,
                        Severity::Error,
                        "unknown-cover",
                        format!(
                            "`{}` is not an expertise item of any agent that uses skill `{}`",
                            cover.name, skill.name
                        ),
                    );
                    d = match did_you_mean(&cover.name, &candidates) {
                        Some(s) => {
                            // The item meant is uncovered because of this typo: that error is folded into this one.
                            let meant = normalize(&s);
                            let items: Vec<Place> = users
                                .iter()
                                .flat_map(|a| {
                                    let src = a.doc.source();
                                    a.items()
                                        .filter(|(_, i)| i.norm == meant)
                                        .map(|(_, i)| {
                                            let (l, c) = src.line_col(i.offset);
                                            (a.doc.file.rel.clone(), l, c)
                                        })
                                        .collect::<Vec<Place>>()
                                })
                                .collect();
                            typos.push((diags.len(), items));
                            d.help(format!("did you mean `{s}`?"))
                        }
                        None => d.help("name an item exactly as the agent's `## Your Expertise` section writes it"),
                    };
                    diags.push(d);
                }
            }
        }
    }
    crate::lint::lint(model, &mut diags);
    fold_typos(&mut diags, &typos);
    crate::diagnostic::sort(&mut diags);
    let (errors, warnings) = crate::diagnostic::counts(&diags);
    let items: usize = coverage
        .iter()
        .filter(|c: &&AgentCoverage| c.tracked)
        .map(|c| c.items.len())
        .sum();
    let untracked_items: usize = coverage
        .iter()
        .filter(|c| !c.tracked)
        .map(|c| c.items.len())
        .sum();
    let covered_items = coverage
        .iter()
        .filter(|c| c.tracked)
        .flat_map(|c| &c.items)
        .filter(|i| !i.covered_by.is_empty())
        .count();
    Report {
        schema_version: SCHEMA_VERSION,
        summary: Summary {
            files: model.files,
            errors,
            warnings,
            agents: model.plugins.iter().map(|p| p.agents.len()).sum(),
            skills: model.plugins.iter().map(|p| p.skills.len()).sum(),
            patterns: model
                .plugins
                .iter()
                .flat_map(|p| &p.skills)
                .map(|s| s.patterns.len())
                .sum(),
            items,
            covered_items,
            untracked_items,
        },
        diagnostics: diags,
        coverage,
    }
}

/// A place in a file: path relative to the content root, line, column.
type Place = (String, usize, usize);

/// An `unknown-cover` error with a did-you-mean (its index in the diagnostics), and where the items it meant are.
type Typo = (usize, Vec<Place>);

/// Causes before consequences: an `uncovered-item` error for an item that a misspelt `covers:` entry meant is
/// dropped, and the `unknown-cover` error says that the item stays uncovered until the entry is fixed.
fn fold_typos(diags: &mut Vec<Diagnostic>, typos: &[Typo]) {
    let mut folded = HashSet::default();
    for (at, items) in typos {
        let hits: Vec<&Place> = items
            .iter()
            .filter(|(path, line, column)| {
                diags.iter().any(|d| {
                    d.code == "uncovered-item"
                        && &d.path == path
                        && d.line == *line
                        && d.column == *column
                })
            })
            .collect();
        if hits.is_empty() {
            continue;
        }
        let places: Vec<String> = hits
            .iter()
            .map(|(p, l, c)| format!("{p}:{l}:{c}"))
            .collect();
        if let Some(d) = diags.get_mut(*at) {
            if let Some(help) = &mut d.help {
                help.push_str(&format!(
                    " Until this entry names it, that item ({}) is covered by no pattern.",
                    places.join(", ")
                ));
            }
        }
        folded.extend(hits.into_iter().cloned());
    }
    diags.retain(|d| {
        d.code != "uncovered-item" || !folded.contains(&(d.path.clone(), d.line, d.column))
    });
}

fn field_offset(doc: &Document, key: &str) -> usize {
    doc.frontmatter
        .get(key)
        .map(|f| f.key_offset)
        .unwrap_or(doc.frontmatter.yaml.start.saturating_sub(4))
}

/// The closest candidate by normalised edit distance, when it is close enough to be a likely typo.
pub fn did_you_mean(name: &str, candidates: &[String]) -> Option<String> {
    let n = normalize(name);
    candidates
        .iter()
        .map(|c| (strsim::normalized_levenshtein(&n, &normalize(c)), c))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c.clone())
}

fn duplicates<'a>(
    docs: impl Iterator<Item = (&'a str, &'a Document)>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<&str, &Document> = BTreeMap::new();
    for (name, doc) in docs {
        if let Some(first) = seen.get(name) {
            diags.push(
                doc.source()
                    .diag(
                        field_offset(doc, "name"),
                        Severity::Error,
                        "duplicate-name",
                        format!("{what} `{name}` is already defined in {}", first.file.rel),
                    )
                    .help(format!("give each {what} of a plugin its own name")),
            );
        } else {
            seen.insert(name, doc);
        }
    }
}

fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn lint_agent(agent: &Agent, diags: &mut Vec<Diagnostic>) {
    let doc = &agent.doc;
    let src = doc.source();
    if doc.frontmatter.get("name").is_some() && !is_kebab(&agent.name) {
        diags.push(
            src.diag(
                field_offset(doc, "name"),
                Severity::Warning,
                "agent-name",
                format!(
                    "agent name `{}` should use lowercase letters, digits and hyphens",
                    agent.name
                ),
            )
            .help("Claude Code identifies subagents by this name; write it like `code-reviewer`"),
        );
    }
    if let Some(model) = &agent.model {
        if !AGENT_MODELS.contains(&model.as_str()) && !model.starts_with("claude-") {
            diags.push(
                src.diag(
                    field_offset(doc, "model"),
                    Severity::Warning,
                    "agent-model",
                    format!("unknown model `{model}`"),
                )
                .help(format!(
                    "use one of {} or a full model id such as `claude-sonnet-4-5`",
                    AGENT_MODELS.join(", ")
                )),
            );
        }
    }
    if let Some(color) = &agent.color {
        if !AGENT_COLORS.contains(&color.as_str()) {
            diags.push(
                src.diag(
                    field_offset(doc, "color"),
                    Severity::Warning,
                    "agent-color",
                    format!("unknown color `{color}`"),
                )
                .help(format!("use one of {}", AGENT_COLORS.join(", "))),
            );
        }
    }
    if !agent.doc.stubs.is_empty() && agent.skill_refs.is_empty() {
        diags.push(
            src.diag(
                agent.doc.stubs[0].range.start,
                Severity::Warning,
                "unexpanded-stub",
                "this stub cannot be expanded: the agent refers to no skill",
            )
            .help("add `skills: [name]` to the frontmatter, or a sentence See `name` skill to the text"),
        );
    }
}

fn lint_skill(skill: &crate::parse::Skill, diags: &mut Vec<Diagnostic>) {
    let Some(doc) = &skill.doc else { return };
    if !doc.has_frontmatter {
        return; // its `no-frontmatter` warning says it all
    }
    let src = doc.source();
    let name_offset = field_offset(doc, "name");
    if doc.frontmatter.get("name").is_none() {
        diags.push(
            src.diag(0, Severity::Warning, "skill-name", "SKILL.md has no `name`")
                .help(format!(
                    "add `name: {}` (the folder's name)",
                    skill.dir_name
                )),
        );
    } else if skill.name.chars().any(|c| c.is_uppercase()) {
        diags.push(
            src.diag(
                name_offset,
                Severity::Warning,
                "skill-name",
                format!("skill name `{}` has uppercase letters", skill.name),
            )
            .help(format!(
                "the Agent Skills spec allows lowercase letters, digits and hyphens: `{}`",
                crate::scaffold::suggest_name(&skill.name)
            )),
        );
    } else if !is_kebab(&skill.name) || skill.name.len() > 64 {
        diags.push(
            src.diag(name_offset, Severity::Warning, "skill-name", format!("skill name `{}` must be 1-64 characters of lowercase letters, digits and hyphens", skill.name))
                .help("the Agent Skills spec: no leading, trailing or doubled hyphens"),
        );
    } else if skill.name != skill.dir_name {
        diags.push(
            src.diag(
                name_offset,
                Severity::Warning,
                "skill-name",
                format!(
                    "skill name `{}` differs from its folder `{}`",
                    skill.name, skill.dir_name
                ),
            )
            .help("the Agent Skills spec requires the name to equal the folder's name"),
        );
    }
    match &skill.description {
        None => diags.push(
            src.diag(field_offset(doc, "description"), Severity::Warning, "skill-description", "SKILL.md has no `description`")
                .help("say what the skill does and when to use it, in at most 1024 characters"),
        ),
        Some(d) if d.trim().is_empty() || d.chars().count() > 1024 => diags.push(
            src.diag(field_offset(doc, "description"), Severity::Warning, "skill-description", format!("description is {} characters; the Agent Skills spec allows 1 to 1024", d.chars().count()))
                .help("shorten it: the description is what the model reads to decide when to use the skill"),
        ),
        Some(_) => {}
    }
}

fn agent_coverage(
    model: &Model,
    covers: &[Vec<CoverIndex>],
    pi: usize,
    agent: &Agent,
    rule: Coverage,
    diags: &mut Vec<Diagnostic>,
) -> AgentCoverage {
    let is_tracked = tracked(model, pi, agent, rule);
    let plugin = &model.plugins[pi];
    let src = agent.doc.source();
    for r in &agent.skill_refs {
        if let Some(key) = model.resolve_skill(pi, &r.name) {
            let skill = model.skill(key);
            if !skill.has_skill_md {
                diags.push(
                    src.diag(
                        r.offset,
                        Severity::Error,
                        "unloadable-skill",
                        format!(
                            "skill `{}` has no SKILL.md, so Claude Code will not load it; the compiled plugin would ship a reference to nothing",
                            r.name
                        ),
                    )
                    .help(format!(
                        "add {}/SKILL.md with `name: {}` and a `description`",
                        skill.dir, skill.dir_name
                    )),
                );
            }
            continue;
        }
        {
            let names: Vec<String> = plugin.skills.iter().map(|s| s.name.clone()).collect();
            let mut d = src.diag(
                r.offset,
                Severity::Error,
                "unknown-skill",
                format!(
                    "skill `{}` does not exist in plugin `{}`",
                    r.name, plugin.name
                ),
            );
            d = match did_you_mean(&r.name, &names) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("add skills/{}/SKILL.md, or fix the name", r.name)),
            };
            diags.push(d);
        }
    }
    // Only where coverage applies: elsewhere the bullets are prose, not claims.
    for &offset in agent.unread_bullets.iter().filter(|_| is_tracked) {
        diags.push(
            src.diag(
                offset,
                Severity::Warning,
                "unread-expertise",
                "this bullet under `## Your Expertise` is not read: it has no `Category:` before its items",
            )
            .help("write it as `- **Category**: item, item` (or `- Category: item, item`), or move prose out of the list"),
        );
    }
    let skills = model.agent_skills(pi, agent);
    let mut items = Vec::new();
    for (cat, item) in agent.items() {
        let mut covered_by = Vec::new();
        for &(sp, ss) in &skills {
            let skill = &model.plugins[sp].skills[ss];
            let covering = covers[sp][ss].get(item.norm.as_str());
            for p in covering.into_iter().flatten().map(|&i| &skill.patterns[i]) {
                covered_by.push(PatternRef {
                    skill: model.plugins[sp].display(&skill.name),
                    pattern: p.slug.clone(),
                    path: p.doc.file.rel.clone(),
                });
            }
        }
        let (line, column) = src.line_col(item.offset);
        if covered_by.is_empty() && is_tracked {
            let help = if skills.is_empty() && !agent.skill_refs.is_empty() {
                "none of the agent's skill references resolves; fix them (see unknown-skill)"
                    .to_string()
            } else if skills.is_empty() {
                "the agent refers to no skill; add `skills: [name]` and a pattern with this item in `covers:`".to_string()
            } else {
                format!(
                    "add a pattern under skills/{}/patterns/ with `covers: [{}]`",
                    model.skill(skills[0]).dir_name,
                    item.name
                )
            };
            diags.push(
                src.diag(
                    item.offset,
                    Severity::Error,
                    "uncovered-item",
                    format!(
                        "expertise item `{}` ({}) is covered by no pattern",
                        item.name, cat.name
                    ),
                )
                .help(help),
            );
        }
        items.push(ItemCoverage {
            category: cat.name.clone(),
            item: item.name.clone(),
            line,
            column,
            covered_by,
        });
    }
    AgentCoverage {
        plugin: plugin.name.clone(),
        agent: plugin.display(&agent.name),
        path: agent.doc.file.rel.clone(),
        skills: skills
            .iter()
            .map(|&(p, s)| model.plugins[p].display(&model.plugins[p].skills[s].name))
            .collect(),
        tracked: is_tracked,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_table() {
        let c: Vec<String> = ["Raft", "Paxos", "vector clocks", "Split-brain"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (input, expect) in [
            ("Raftt", Some("Raft")),
            ("vector clock", Some("vector clocks")),
            ("splitbrain", Some("Split-brain")),
            ("Kubernetes", None),
        ] {
            assert_eq!(did_you_mean(input, &c).as_deref(), expect, "{input}");
        }
    }

    #[test]
    fn kebab_table() {
        for (name, ok) in [
            ("a-b", true),
            ("a1", true),
            ("A", false),
            ("-a", false),
            ("a--b", false),
            ("a_b", false),
            ("", false),
        ] {
            assert_eq!(is_kebab(name), ok, "{name}");
        }
    }
}
