//! The pages of the documentation site, each in two forms: clean markdown (served next to the HTML, and inlined in
//! `llms-full.txt`) and the chapter mdBook renders (the same text with cards, tables and highlighted code as HTML).

use super::index::{AgentInfo, Index, SkillInfo, Target};
use super::util::{bar, escape, first_sentence, inline_html, md_escape, one_line, percent, rel};
use crate::emit::plugin::PromptSize;
use crate::expand::{self, Form, PatternKey};
use crate::highlight::highlight_fences;
use crate::parse::{self, Example, Pattern, Skill};
use regex::Regex;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// One page of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Path of the page's markdown, relative to the site root (`agents/x.md`); the HTML sits at `.html`.
    pub path: String,
    /// The page's title, as the navigation shows it.
    pub title: String,
    /// Clean markdown: what a reader (or a model) gets from `<page>.md` and `llms-full.txt`.
    pub markdown: String,
    /// The chapter mdBook renders.
    pub chapter: String,
    /// One line about the page, for `llms.txt`.
    pub note: String,
}

/// Claude Code's subagent colours as the swatch shows them.
pub const SWATCHES: &[&str] = &[
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "cyan",
];

/// Removes blank lines from an HTML fragment, so that markdown never ends the HTML block it sits in. Inside `<pre>`
/// an empty comment keeps the line.
fn no_blank_lines(html: &str) -> String {
    let mut out = html.to_string();
    while out.contains("\n\n") {
        out = out.replace("\n\n", "\n<!---->\n");
    }
    out
}

fn tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?is)<example>.*?</example>|</?(?:example|commentary)>").expect("valid regex")
    })
}

/// The description without its `<example>` blocks, trailing `Examples:` label and literal `\n` escapes.
pub fn clean_description(description: &str) -> String {
    let d = description.replace("\\n", "\n");
    let d = tag_re().replace_all(&d, "\n");
    let mut d = d.trim().to_string();
    for label in [
        "examples:",
        "example:",
        "for example:",
        "examples",
        "for example",
    ] {
        if d.to_ascii_lowercase().ends_with(label) {
            d.truncate(d.len() - label.len());
            d = d.trim_end().to_string();
        }
    }
    let mut out = String::new();
    let mut blank = 0;
    for line in d.lines() {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_end());
    }
    out
}

/// The agent's `<example>` blocks, read again from the decoded description when the parsed ones still carry
/// literal `\n` escapes.
pub fn examples(agent: &parse::Agent) -> Vec<Example> {
    let escaped = |e: &Example| {
        [&e.context, &e.user, &e.assistant, &e.commentary]
            .iter()
            .any(|f| f.contains("\\n"))
    };
    let mut ex = if agent.examples.iter().any(escaped) || agent.description.contains("\\n") {
        parse::examples(&agent.description.replace("\\n", "\n"))
    } else {
        agent.examples.clone()
    };
    for e in &mut ex {
        for f in [
            &mut e.context,
            &mut e.user,
            &mut e.assistant,
            &mut e.commentary,
        ] {
            *f = f.replace("\\n", "\n").trim().to_string();
        }
    }
    ex.retain(|e| {
        !(e.context.is_empty()
            && e.user.is_empty()
            && e.assistant.is_empty()
            && e.commentary.is_empty())
    });
    ex
}

/// Removes a leading `# Title` line from a markdown body; returns it (if any) and the rest.
fn split_h1(body: &str) -> (Option<String>, String) {
    let trimmed = body.trim_start_matches(['\n', '\r', ' ']);
    if let Some(rest) = trimmed.strip_prefix("# ") {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        return (
            Some(line.trim().trim_end_matches('#').trim().to_string()),
            after.to_string(),
        );
    }
    (None, body.to_string())
}

fn has_h1(md: &str) -> bool {
    use mdbook_markdown::pulldown_cmark::{Event, HeadingLevel, Parser, Tag};
    Parser::new_ext(md, parse::markdown_options()).any(|e| {
        matches!(
            e,
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            })
        )
    })
}

/// A markdown table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

fn swatch(color: Option<&str>) -> String {
    match color {
        Some(c) if SWATCHES.contains(&c.to_ascii_lowercase().as_str()) => format!(
            "<span class=\"sb-swatch sb-swatch-{}\" title=\"{}\"></span>",
            c.to_ascii_lowercase(),
            escape(c)
        ),
        Some(c) => format!(
            "<span class=\"sb-swatch sb-swatch-unknown\" title=\"{}\"></span>",
            escape(c)
        ),
        None => "<span class=\"sb-swatch sb-swatch-none\" title=\"no color\"></span>".to_string(),
    }
}

fn coverage_phrase(covered: usize, total: usize) -> String {
    if total == 0 {
        "no expertise items declared".to_string()
    } else {
        format!("{covered} of {total} expertise items covered")
    }
}

/// What the site says of an agent coverage does not apply to (see [`crate::check::Coverage`]).
const NOT_TRACKED: &str =
    "not tracked: the agent has no stub and none of its skills has pattern files";

fn agent_coverage_phrase(a: &AgentInfo) -> String {
    if a.tracked {
        coverage_phrase(a.covered(), a.items.len())
    } else {
        NOT_TRACKED.to_string()
    }
}

fn agent_coverage_bar(a: &AgentInfo) -> String {
    if a.tracked {
        coverage_bar(a.covered(), a.items.len())
    } else {
        format!(
            "<span class=\"sb-muted sb-untracked\" title=\"{}\">not tracked</span>",
            escape(NOT_TRACKED)
        )
    }
}

/// Most gaps a banner lists one by one.
const BANNER_MAX: usize = 12;

/// A banner over a page made from `files` listing their gaps (errors that still build: an uncovered item, a
/// `covers:` entry that names nothing, an unknown skill), as (markdown, chapter); empty when there are none.
fn gap_banner(ix: &Index, files: &[&str]) -> (String, String) {
    gap_banner_for(ix, files, "in this page's source")
}

fn gap_banner_for(ix: &Index, files: &[&str], where_: &str) -> (String, String) {
    let gaps: Vec<&crate::diagnostic::Diagnostic> = files
        .iter()
        .filter_map(|f| ix.gaps.get(f))
        .flatten()
        .copied()
        .collect();
    if gaps.is_empty() {
        return (String::new(), String::new());
    }
    let n = gaps.len();
    let head = format!(
        "{} {where_}: `skillbook check` reports {} as {}.",
        if n == 1 {
            "1 gap".to_string()
        } else {
            format!("{n} gaps")
        },
        if n == 1 { "it" } else { "them" },
        if n == 1 { "an error" } else { "errors" }
    );
    let mut md = format!(
        "> **{head}**
>
"
    );
    let mut ch = format!(
        "<div class=\"sb-gaps\" role=\"note\">\n<p class=\"sb-gaps-head\"><strong>{}</strong></p>\n<ul>\n",
        inline_html(&head)
    );
    for d in gaps.iter().take(BANNER_MAX) {
        let line = format!(
            "`{}:{}:{}` {}",
            d.path,
            d.line,
            d.column,
            one_line(&d.message)
        );
        let _ = writeln!(md, "> - {line}");
        let _ = writeln!(
            ch,
            "<li><code>{}:{}:{}</code> <span class=\"sb-gap-code\">{}</span> {}</li>",
            escape(&d.path),
            d.line,
            d.column,
            escape(d.code),
            inline_html(&one_line(&d.message))
        );
    }
    if n > BANNER_MAX {
        let more = format!("and {} more", n - BANNER_MAX);
        let _ = writeln!(md, "> - {more}");
        let _ = writeln!(ch, "<li>{more}</li>");
    }
    md.push('\n');
    ch.push_str("</ul>\n</div>\n\n");
    (md, no_blank_lines(&ch) + "\n\n")
}

fn coverage_bar(covered: usize, total: usize) -> String {
    let class = if covered == total {
        "sb-bar-ok"
    } else {
        "sb-bar-warn"
    };
    format!(
        "{} <span class=\"sb-bar-label\">{covered}/{total}</span>",
        bar(covered, total, class, &coverage_phrase(covered, total))
    )
}

impl Index<'_> {
    fn pattern_link(&self, from: &str, k: PatternKey) -> Option<(String, &str)> {
        let href = self.href(from, k, None)?;
        let (_, p) = self.pattern(k);
        Some((href, p.title.as_str()))
    }

    fn skill_links_md(&self, from: &str, keys: &[(usize, usize)]) -> String {
        keys.iter()
            .filter_map(|k| self.skill_info(*k))
            .map(|s| format!("[{}]({})", md_escape(&s.display), rel(from, &s.path)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn skill_links_html(&self, from: &str, keys: &[(usize, usize)]) -> String {
        keys.iter()
            .filter_map(|k| self.skill_info(*k))
            .map(|s| {
                format!(
                    "<a class=\"sb-chip\" href=\"{}\">{}</a>",
                    escape(&rel(from, &s.path)),
                    escape(&s.display)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn pattern_chips(&self, from: &str, keys: &[PatternKey]) -> String {
        keys.iter()
            .filter_map(|k| self.pattern_link(from, *k))
            .map(|(href, title)| {
                format!(
                    "<a class=\"sb-chip sb-chip-pattern\" href=\"{}\">{}</a>",
                    escape(&href),
                    escape(title)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn pattern_links_md(&self, from: &str, keys: &[PatternKey]) -> String {
        keys.iter()
            .filter_map(|k| self.pattern_link(from, *k))
            .map(|(href, title)| format!("[{}]({href})", md_escape(title)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Home

/// The home page: what the plugin is, its agents and skills as cards, overall coverage.
pub fn home(ix: &Index, title: &str, description: &str) -> Page {
    let path = "index.md";
    let (items, covered) = ix.totals();
    let patterns: usize = ix.skills.iter().map(|s| s.skill.patterns.len()).sum();
    let mut md = format!("# {}\n\n", md_escape(title));
    let mut ch = md.clone();
    let lead = if description.trim().is_empty() {
        default_lead(ix)
    } else {
        description.trim().to_string()
    };
    let _ = write!(md, "{lead}\n\n");
    let _ = write!(
        ch,
        "<div class=\"sb-lead\">\n\n{lead}\n\n</div>\n\n{}\n\n",
        no_blank_lines(&stats_html(ix, items, covered, patterns))
    );
    let _ = write!(
        md,
        "{} agents, {} skills, {} patterns; {}.\n\n",
        ix.agents.len(),
        ix.skills.len(),
        patterns,
        coverage_phrase(covered, items)
    );

    if !ix.agents.is_empty() {
        md.push_str("## Agents\n\n");
        ch.push_str("## Agents\n\n");
        let mut cards = String::from("<div class=\"sb-cards\">\n");
        for a in &ix.agents {
            let desc = first_sentence(&clean_description(&a.agent.description), 220);
            let _ = writeln!(
                md,
                "- [{}]({}): {}",
                md_escape(&a.display),
                rel(path, &a.path),
                desc
            );
            let model = a
                .agent
                .model
                .as_deref()
                .map(|m| format!("<span class=\"sb-badge sb-model\">{}</span>", escape(m)))
                .unwrap_or_default();
            let _ = writeln!(
                cards,
                "<a class=\"sb-card sb-card-link\" href=\"{}\"><span class=\"sb-card-head\">{}<span class=\"sb-card-title\">{}</span></span><span class=\"sb-card-body\">{}</span><span class=\"sb-card-foot\">{model} {}</span></a>",
                escape(&rel(path, &a.path)),
                swatch(a.agent.color.as_deref()),
                escape(&a.display),
                escape(&desc),
                agent_coverage_bar(a),
            );
        }
        cards.push_str("</div>");
        md.push('\n');
        ch.push_str(&no_blank_lines(&cards));
        ch.push_str("\n\n");
    }

    if !ix.skills.is_empty() {
        md.push_str("## Skills\n\n");
        ch.push_str("## Skills\n\n");
        let mut cards = String::from("<div class=\"sb-cards\">\n");
        for s in &ix.skills {
            let desc = first_sentence(s.skill.description.as_deref().unwrap_or(""), 220);
            let _ = writeln!(
                md,
                "- [{}]({}): {} ({} patterns)",
                md_escape(&s.display),
                rel(path, &s.path),
                desc,
                s.skill.patterns.len()
            );
            let users = match s.users.len() {
                0 => "no agent".to_string(),
                1 => "1 agent".to_string(),
                n => format!("{n} agents"),
            };
            let _ = writeln!(
                cards,
                "<a class=\"sb-card sb-card-link\" href=\"{}\"><span class=\"sb-card-head\"><span class=\"sb-card-title\">{}</span><span class=\"sb-badge\">{} patterns</span></span><span class=\"sb-card-body\">{}</span><span class=\"sb-card-foot\">used by {users}</span></a>",
                escape(&rel(path, &s.path)),
                escape(&s.display),
                s.skill.patterns.len(),
                escape(&desc),
            );
        }
        cards.push_str("</div>");
        md.push('\n');
        ch.push_str(&no_blank_lines(&cards));
        ch.push_str("\n\n");
    }

    md.push_str("## Coverage\n\n");
    ch.push_str("## Coverage\n\n");
    let sentence = format!(
        "{}. The [coverage matrix](coverage.md) shows every expertise item against the patterns that explain it.",
        upper_first(&coverage_phrase(covered, items))
    );
    let _ = write!(md, "{sentence}\n\n");
    let _ = write!(
        ch,
        "<div class=\"sb-coverage-total\">{}</div>\n\n{sentence}\n\n",
        coverage_bar(covered, items)
    );

    let machine = "## For machines\n\nEvery page is also served as markdown: replace `.html` with `.md` in its address. [llms.txt](llms.txt) lists them all; [llms-full.txt](llms-full.txt) has every page inlined.\n";
    md.push_str(machine);
    ch.push_str(machine);
    Page {
        path: path.to_string(),
        title: "Overview".to_string(),
        markdown: md,
        chapter: ch,
        note: "what the plugin holds, and its overall coverage".to_string(),
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn default_lead(ix: &Index) -> String {
    let names: Vec<&str> = ix.model.plugins.iter().map(|p| p.name.as_str()).collect();
    let what = if names.len() == 1 {
        format!("`{}` is a Claude Code plugin", names[0])
    } else {
        format!("This marketplace holds {} Claude Code plugins", names.len())
    };
    format!(
        "{what}: subagents, the Agent Skills they use, and the pattern pages that explain, one topic each, what the agents claim to know."
    )
}

fn stats_html(ix: &Index, items: usize, covered: usize, patterns: usize) -> String {
    format!(
        "<div class=\"sb-stats\">\n<div class=\"sb-stat\"><span class=\"sb-stat-n\">{}</span><span class=\"sb-stat-l\">agents</span></div>\n<div class=\"sb-stat\"><span class=\"sb-stat-n\">{}</span><span class=\"sb-stat-l\">skills</span></div>\n<div class=\"sb-stat\"><span class=\"sb-stat-n\">{patterns}</span><span class=\"sb-stat-l\">patterns</span></div>\n<div class=\"sb-stat\"><span class=\"sb-stat-n\">{}%</span><span class=\"sb-stat-l\">{covered} of {items} items covered</span></div>\n</div>",
        ix.agents.len(),
        ix.skills.len(),
        percent(covered, items),
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Agents

/// One agent's page: header card, conversation cards, expertise linked to patterns, the expanded body.
pub fn agent(ix: &Index, ai: usize, prompt: Option<&PromptSize>) -> Page {
    let a = &ix.agents[ai];
    let agent = a.agent;
    let path = a.path.as_str();
    let description = clean_description(&agent.description);
    let mut md = format!("# {}\n\n", md_escape(&a.display));
    let mut ch = md.clone();
    let (banner_md, banner_ch) = gap_banner(ix, &[agent.doc.file.rel.as_str()]);
    md.push_str(&banner_md);
    ch.push_str(&banner_ch);

    // Header card.
    if !description.is_empty() {
        let _ = write!(md, "{description}\n\n");
    }
    let tools_md = if agent.tools.is_empty() {
        "all tools (not restricted)".to_string()
    } else {
        agent
            .tools
            .iter()
            .map(|t| format!("`{}`", t.replace('`', "'")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let skills_md = if a.skills.is_empty() {
        "none".to_string()
    } else {
        ix.skill_links_md(path, &a.skills)
    };
    let prompt = prompt.map(prompt_size);
    let _ = write!(
        md,
        "- **Model:** {}\n- **Color:** {}\n- **Tools:** {tools_md}\n- **Skills:** {skills_md}\n- **Coverage:** {}\n- **Source:** `{}`\n{}\n",
        agent.model.as_deref().map(md_escape).unwrap_or_else(|| "not set (inherits)".to_string()),
        agent.color.as_deref().map(md_escape).unwrap_or_else(|| "not set".to_string()),
        agent_coverage_phrase(a),
        agent.doc.file.rel,
        prompt.as_deref().map(|p| format!("- **Compiled prompt:** {p}\n")).unwrap_or_default(),
    );
    ch.push_str(&no_blank_lines(&agent_card(ix, a, prompt.as_deref())));
    ch.push_str("\n\n");
    if !description.is_empty() {
        let _ = write!(ch, "<div class=\"sb-lead\">\n\n{description}\n\n</div>\n\n");
    }

    // Examples.
    let ex = examples(agent);
    if !ex.is_empty() {
        md.push_str("## Examples\n\n");
        ch.push_str("## Examples\n\n");
        let mut cards = String::from("<div class=\"sb-examples\">\n");
        for (n, e) in ex.iter().enumerate() {
            let heading = if e.context.is_empty() {
                format!("Example {}", n + 1)
            } else {
                one_line(&e.context)
            };
            let _ = write!(md, "### {}\n\n", md_escape(&heading));
            for (who, text) in [("User", &e.user), ("Assistant", &e.assistant)] {
                if !text.is_empty() {
                    let _ = write!(md, "**{who}:** {text}\n\n");
                }
            }
            if !e.commentary.is_empty() {
                let _ = write!(md, "*Why this agent:* {}\n\n", e.commentary);
            }
            let _ = writeln!(
                cards,
                "<div class=\"sb-example\">\n<div class=\"sb-example-context\"><span class=\"sb-kicker\">Example {}</span>{}</div>",
                n + 1,
                if e.context.is_empty() {
                    String::new()
                } else {
                    format!(" <span>{}</span>", inline_html(&e.context))
                }
            );
            for (who, class, text) in [
                ("User", "sb-user", &e.user),
                ("Assistant", "sb-assistant", &e.assistant),
            ] {
                if !text.is_empty() {
                    let _ = writeln!(
                        cards,
                        "<div class=\"sb-turn {class}\"><div class=\"sb-avatar\" aria-hidden=\"true\">{}</div><div class=\"sb-bubble\"><div class=\"sb-role\">{who}</div>{}</div></div>",
                        &who[..1],
                        inline_html(text)
                    );
                }
            }
            if !e.commentary.is_empty() {
                let _ = writeln!(
                    cards,
                    "<div class=\"sb-commentary\"><span class=\"sb-role\">Why this agent</span> {}</div>",
                    inline_html(&e.commentary)
                );
            }
            cards.push_str("</div>\n");
        }
        cards.push_str("</div>");
        ch.push_str(&no_blank_lines(&cards));
        ch.push_str("\n\n");
    }

    // Expertise, linked to the patterns that cover each item.
    if !a.items.is_empty() || !a.resps.is_empty() {
        md.push_str("## Expertise\n\n");
        ch.push_str("## Expertise\n\n");
        if a.tracked {
            let _ = write!(
                ch,
                "<p class=\"sb-note\">Each item the agent claims, and the pattern pages that explain it. {}</p>\n\n",
                agent_coverage_bar(a)
            );
        } else {
            let note = "Coverage is not tracked for this agent: it has no stub to expand and none of its skills has pattern files, so its bullets are read as prose, not claims. A stub, or a skill with a pattern that covers an item, opts it in.";
            let _ = write!(md, "*{note}*\n\n");
            let _ = write!(ch, "<p class=\"sb-note\">{}</p>\n\n", escape(note));
        }
    }
    if !a.items.is_empty() {
        md.push_str("| Category | Item | Explained by |\n|---|---|---|\n");
        let mut t = String::from("<table class=\"sb-expertise\">\n<thead><tr><th>Category</th><th>Expertise item</th><th>Explained by</th></tr></thead>\n<tbody>\n");
        let mut i = 0;
        while i < a.items.len() {
            let cat = &a.items[i].category;
            let span = a.items[i..]
                .iter()
                .take_while(|x| &x.category == cat)
                .count();
            for (n, item) in a.items[i..i + span].iter().enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    cell(&md_escape(cat)),
                    cell(&md_escape(&item.name)),
                    if item.patterns.is_empty() && !a.tracked {
                        "not tracked".to_string()
                    } else if item.patterns.is_empty() {
                        "**not covered**".to_string()
                    } else {
                        cell(&ix.pattern_links_md(path, &item.patterns))
                    }
                );
                let head = if n == 0 {
                    format!(
                        "<th scope=\"rowgroup\" rowspan=\"{span}\">{}</th>",
                        escape(cat)
                    )
                } else {
                    String::new()
                };
                let (class, links) = if item.patterns.is_empty() && !a.tracked {
                    (
                        " class=\"sb-untracked\"",
                        "<span class=\"sb-muted\">not tracked</span>".to_string(),
                    )
                } else if item.patterns.is_empty() {
                    (
                        " class=\"sb-uncovered\"",
                        "<span class=\"sb-flag\">not covered</span>".to_string(),
                    )
                } else {
                    ("", ix.pattern_chips(path, &item.patterns))
                };
                let _ = writeln!(
                    t,
                    "<tr id=\"{}\"{class}>{head}<td class=\"sb-item\">{}</td><td>{links}</td></tr>",
                    escape(&item.anchor),
                    escape(&item.name)
                );
            }
            i += span;
        }
        t.push_str("</tbody>\n</table>");
        md.push('\n');
        ch.push_str(&no_blank_lines(&t));
        ch.push_str("\n\n");
    }
    if !a.resps.is_empty() {
        md.push_str("| Responsibility | Procedures |\n|---|---|\n");
        let mut t = String::from("<table class=\"sb-expertise sb-responsibilities\">\n<thead><tr><th>Responsibility</th><th>Procedures</th></tr></thead>\n<tbody>\n");
        for r in &a.resps {
            let _ = writeln!(
                md,
                "| {} | {} |",
                cell(&md_escape(&r.text)),
                if r.patterns.is_empty() {
                    "none".to_string()
                } else {
                    cell(&ix.pattern_links_md(path, &r.patterns))
                }
            );
            let _ = writeln!(
                t,
                "<tr id=\"{}\"><td class=\"sb-item\">{}</td><td>{}</td></tr>",
                escape(&r.anchor),
                escape(&r.text),
                if r.patterns.is_empty() {
                    "<span class=\"sb-muted\">none</span>".to_string()
                } else {
                    ix.pattern_chips(path, &r.patterns)
                }
            );
        }
        t.push_str("</tbody>\n</table>");
        md.push('\n');
        ch.push_str(&no_blank_lines(&t));
        ch.push_str("\n\n");
    }

    // The body, with its stub expanded from the plan: each pattern as its summary under a heading that links to
    // its page (the full text lives on the pattern pages and in the compiled plugin, not a second time here).
    let (body, expanded) = agent_body(ix, a);
    let body = expand::demote_headings(body.trim(), 1);
    let label = if expanded > 0 {
        format!(
            "The agent's system prompt with its stub expanded from {expanded} patterns, each shown here as its summary; the headings link to the full pages, and the compiled plugin's agents/{}.md has them in full.",
            agent.doc.file.stem()
        )
    } else {
        "The agent's system prompt, as the compiled plugin ships it.".to_string()
    };
    let _ = write!(md, "## System prompt\n\n*{label}*\n\n{body}\n");
    let _ = write!(
        ch,
        "<div class=\"sb-prompt-label\">{}</div>\n\n<div class=\"sb-prompt\">\n\n{}\n\n</div>\n",
        escape(&label),
        highlight_fences(&body)
    );
    Page {
        path: a.path.clone(),
        title: a.display.clone(),
        markdown: md,
        chapter: ch,
        note: first_sentence(&description, 240),
    }
}

/// The agent's body with its stubs replaced as the expansion plans it (the first stub by the generated sections, the
/// others removed), each pattern as its summary under a heading linked to its page. Returns the body and the number
/// of patterns in it.
fn agent_body(ix: &Index, a: &AgentInfo) -> (String, usize) {
    let agent = a.agent;
    let Some(plan) = expand::plan_agent(ix.model, a.plugin, agent) else {
        return (agent.doc.body().to_string(), 0);
    };
    let hashes = |n: u8| "#".repeat(n.clamp(1, 6) as usize);
    let no_link = |_: &Skill, _: &Pattern, _: Option<&str>| String::new();
    let mut generated = String::new();
    let mut count = 0;
    for group in &plan.groups {
        if group.patterns.is_empty() {
            continue;
        }
        let _ = write!(generated, "{} {}\n\n", hashes(plan.level), group.heading);
        for k in &group.patterns {
            let (skill, p) = ix.pattern(*k);
            count += 1;
            let title = match ix.pattern_link(&a.path, *k) {
                Some((href, _)) => format!("[{}]({href})", md_escape(&p.title)),
                None => md_escape(&p.title),
            };
            let text = if p.summary.is_some() {
                let s = expand::render_pattern(skill, p, plan.level + 1, Form::Summary, &no_link);
                s.split_once("\n\n")
                    .map(|(_, t)| t.trim().to_string())
                    .unwrap_or_default()
            } else {
                "*This pattern has no summary; its page has the full text.*".to_string()
            };
            let _ = write!(
                generated,
                "{} {title}\n\n{text}\n\n",
                hashes(plan.level + 1)
            );
        }
    }
    let text = &agent.doc.file.text;
    let mut out = String::with_capacity(text.len() + generated.len());
    let mut pos = agent.doc.body_start;
    for (i, stub) in plan.stubs.iter().enumerate() {
        if stub.start < pos || stub.end > text.len() {
            continue;
        }
        out.push_str(&text[pos..stub.start]);
        if i == 0 {
            out.push_str(generated.trim_end());
            out.push('\n');
        }
        pos = stub.end;
    }
    out.push_str(&text[pos..]);
    (out, count)
}

/// What an agent's system prompt in the compiled plugin costs, and how it was packed: `7,848 tokens (claude, an
/// estimate), 17,742 bytes; agent budget 8,000: 5 patterns partly, 16 as summaries`.
fn prompt_size(p: &PromptSize) -> String {
    let n = |x: usize| {
        let s = x.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let t = p.tokenizer;
    let unit = if t.exact() {
        t.name().to_string()
    } else {
        format!("{}, an estimate", t.name())
    };
    let mut out = format!("{} tokens ({unit}), {} bytes", n(p.tokens), n(p.bytes));
    match p.budget {
        Some(b) => {
            let forms: Vec<String> = [
                (p.full, "whole"),
                (p.partial, "partly"),
                (p.summary, "as summaries"),
                (p.omitted, "as pointers only"),
            ]
            .iter()
            .filter(|(c, _)| *c > 0)
            .map(|(c, w)| format!("{c} {w}"))
            .collect();
            out.push_str(&format!(
                "; agent budget {}: patterns {}",
                n(b),
                forms.join(", ")
            ));
        }
        None => out.push_str("; its body as written (nothing to expand)"),
    }
    out
}

fn agent_card(ix: &Index, a: &AgentInfo, prompt: Option<&str>) -> String {
    let agent = a.agent;
    let path = a.path.as_str();
    let model = match &agent.model {
        Some(m) => format!("<span class=\"sb-badge sb-model\">{}</span>", escape(m)),
        None => "<span class=\"sb-muted\">not set (inherits the session's)</span>".to_string(),
    };
    let color = match &agent.color {
        Some(c) => format!("{} {}", swatch(Some(c)), escape(c)),
        None => format!("{} <span class=\"sb-muted\">not set</span>", swatch(None)),
    };
    let tools = if agent.tools.is_empty() {
        "<span class=\"sb-muted\">all tools (not restricted)</span>".to_string()
    } else {
        agent
            .tools
            .iter()
            .map(|t| format!("<code class=\"sb-tool\">{}</code>", escape(t)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let skills = if a.skills.is_empty() {
        "<span class=\"sb-muted\">none</span>".to_string()
    } else {
        ix.skill_links_html(path, &a.skills)
    };
    let accent = agent
        .color
        .as_deref()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| SWATCHES.contains(&c.as_str()))
        .map(|c| format!(" sb-accent-{c}"))
        .unwrap_or_default();
    format!(
        "<div class=\"sb-card sb-header-card{accent}\">\n<dl class=\"sb-facts\">\n<dt>Name</dt><dd><code>{}</code></dd>\n<dt>Model</dt><dd>{model}</dd>\n<dt>Color</dt><dd>{color}</dd>\n<dt>Tools</dt><dd>{tools}</dd>\n<dt>Skills</dt><dd>{skills}</dd>\n<dt>Coverage</dt><dd>{}</dd>\n<dt>Source</dt><dd><code>{}</code></dd>\n{}</dl>\n</div>",
        escape(&agent.name),
        agent_coverage_bar(a),
        escape(&agent.doc.file.rel),
        prompt
            .map(|p| format!("<dt>Compiled prompt</dt><dd>{}</dd>\n", escape(p)))
            .unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Skills

/// One skill's page: its description, the agents using it, and SKILL.md with the stub replaced by a pattern index.
pub fn skill(ix: &Index, s: &SkillInfo) -> Page {
    let path = s.path.as_str();
    let skill = s.skill;
    let mut md = format!("# {}\n\n", md_escape(&s.display));
    let mut ch = md.clone();
    let description = skill.description.clone().unwrap_or_default();
    let users_md = s
        .users
        .iter()
        .map(|&i| {
            let a = &ix.agents[i];
            format!("[{}]({})", md_escape(&a.display), rel(path, &a.path))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let users_html = s
        .users
        .iter()
        .map(|&i| {
            let a = &ix.agents[i];
            format!(
                "<a class=\"sb-chip\" href=\"{}\">{}</a>",
                escape(&rel(path, &a.path)),
                escape(&a.display)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let source = skill
        .doc
        .as_ref()
        .map(|d| d.file.rel.clone())
        .unwrap_or_else(|| format!("{}/ (no SKILL.md)", skill.dir));
    if !description.is_empty() {
        let _ = write!(md, "{}\n\n", description.trim());
    }
    let _ = write!(
        md,
        "- **Used by:** {}\n- **Patterns:** {}\n- **Source:** `{}`\n\n",
        if users_md.is_empty() {
            "no agent".to_string()
        } else {
            users_md
        },
        skill.patterns.len(),
        source
    );
    let card = format!(
        "<div class=\"sb-card sb-header-card\">\n<dl class=\"sb-facts\">\n<dt>Used by</dt><dd>{}</dd>\n<dt>Patterns</dt><dd>{}</dd>\n<dt>Source</dt><dd><code>{}</code></dd>\n</dl>\n</div>",
        if users_html.is_empty() {
            "<span class=\"sb-muted\">no agent</span>".to_string()
        } else {
            users_html
        },
        skill.patterns.len(),
        escape(&source)
    );
    ch.push_str(&card);
    ch.push_str("\n\n");
    if !description.is_empty() {
        let _ = write!(
            ch,
            "<div class=\"sb-lead\">\n\n{}\n\n</div>\n\n",
            description.trim()
        );
    }

    let index = pattern_index(ix, s, path);
    let body = match &skill.doc {
        Some(doc) => {
            let text = &doc.file.text;
            let mut out = String::new();
            let mut pos = doc.body_start;
            for (i, stub) in doc.stubs.iter().enumerate() {
                out.push_str(&text[pos..stub.range.start]);
                if i == 0 {
                    out.push_str(&index);
                }
                pos = stub.range.end;
            }
            out.push_str(&text[pos..]);
            if doc.stubs.is_empty() {
                out.push_str("\n\n");
                out.push_str(&index);
            }
            out
        }
        None => index.clone(),
    };
    let body = expand::rewrite_links(&body, &|dest| {
        let (p, frag) = match dest.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (dest, None),
        };
        let p = p.strip_prefix("./").unwrap_or(p);
        let slug = p.strip_prefix("patterns/")?.strip_suffix(".md")?;
        ix.href(path, ix.pattern_by_dir(&skill.dir, slug)?, frag)
    });
    let (h1, rest) = split_h1(&body);
    let body = match h1 {
        Some(h) => format!("## {h}\n{rest}"),
        None => rest,
    };
    let body = if has_h1(&body) {
        expand::demote_headings(&body, 1)
    } else {
        body
    };
    let _ = writeln!(md, "{}", body.trim());
    let _ = writeln!(ch, "{}", highlight_fences(body.trim()));
    Page {
        path: s.path.clone(),
        title: s.display.clone(),
        markdown: md,
        chapter: ch,
        note: first_sentence(&description, 240),
    }
}

/// The skill's patterns by priority (highest first), as a markdown table.
fn pattern_index(ix: &Index, s: &SkillInfo, from: &str) -> String {
    if s.skill.patterns.is_empty() {
        return "This skill has no patterns yet.\n".to_string();
    }
    let mut keys: Vec<PatternKey> = s.groups.iter().flat_map(|g| g.patterns.clone()).collect();
    keys.sort_by_key(|k| {
        let (_, p) = ix.pattern(*k);
        (std::cmp::Reverse(p.priority), p.slug.clone())
    });
    let mut out = String::from(
        "## Patterns\n\n| Pattern | Covers | Priority | In short |\n|---|---|--:|---|\n",
    );
    for k in keys {
        let (_, p) = ix.pattern(k);
        let Some(href) = ix.href(from, k, None) else {
            continue;
        };
        let covers = p
            .covers
            .iter()
            .map(|c| md_escape(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| [{}]({}) | {} | {} | {} |",
            cell(&md_escape(&p.title)),
            href,
            cell(&covers),
            p.priority,
            cell(&first_sentence(p.summary.as_deref().unwrap_or(""), 200))
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Patterns

/// A category page: the patterns of one group, with their summaries.
pub fn group(ix: &Index, s: &SkillInfo, g: usize) -> Page {
    let group = &s.groups[g];
    let path = group.path.as_str();
    let mut md = format!("# {}\n\n", md_escape(&group.name));
    let mut ch = md.clone();
    let intro = match group.name.as_str() {
        expand::PROCEDURES => format!(
            "Patterns of [{}]({}) that describe how an agent carries out one of its responsibilities.",
            md_escape(&s.display),
            rel(path, &s.path)
        ),
        expand::MORE => format!(
            "Patterns of [{}]({}) that cover no expertise item or responsibility of the agents using it.",
            md_escape(&s.display),
            rel(path, &s.path)
        ),
        _ => format!(
            "Patterns of [{}]({}) that explain the **{}** expertise items.",
            md_escape(&s.display),
            rel(path, &s.path),
            md_escape(&group.name)
        ),
    };
    let _ = write!(md, "{intro}\n\n");
    let _ = write!(ch, "{intro}\n\n");
    let mut cards = String::from("<div class=\"sb-cards sb-cards-wide\">\n");
    for k in &group.patterns {
        let (_, p) = ix.pattern(*k);
        let Some(href) = ix.href(path, *k, None) else {
            continue;
        };
        let covers: Vec<&str> = p.covers.iter().map(|c| c.name.as_str()).collect();
        let summary = p.summary.as_deref().map(one_line).unwrap_or_default();
        let _ = writeln!(
            md,
            "- [{}]({href}) (covers {}): {summary}",
            md_escape(&p.title),
            if covers.is_empty() {
                "nothing".to_string()
            } else {
                md_escape(&covers.join(", "))
            }
        );
        let _ = writeln!(
            cards,
            "<a class=\"sb-card sb-card-link\" href=\"{}\"><span class=\"sb-card-head\"><span class=\"sb-card-title\">{}</span><span class=\"sb-badge\" title=\"priority\">P{}</span></span><span class=\"sb-card-body\">{}</span><span class=\"sb-card-foot\">{}</span></a>",
            escape(&href),
            escape(&p.title),
            p.priority,
            inline_html(&summary),
            covers
                .iter()
                .map(|c| format!("<span class=\"sb-chip sb-chip-static\">{}</span>", escape(c)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    cards.push_str("</div>");
    ch.push_str(&no_blank_lines(&cards));
    ch.push('\n');
    md.push('\n');
    Page {
        path: group.path.clone(),
        title: group.name.clone(),
        markdown: md,
        chapter: ch,
        note: format!("{} patterns of {}", group.name, s.display),
    }
}

/// One pattern's page: its facts, summary, backlinks to the agent items it covers, and its text.
pub fn pattern(ix: &Index, k: PatternKey) -> Option<Page> {
    let info = ix.patterns.get(&k)?;
    let p = ix.pattern(k).1;
    let mut md = format!("# {}\n\n", md_escape(&p.title));
    let mut ch = md.clone();
    let (banner_md, banner_ch) = gap_banner(ix, &[p.doc.file.rel.as_str()]);
    md.push_str(&banner_md);
    ch.push_str(&banner_ch);
    let (m, c) = pattern_section(ix, k, &info.path, 0)?;
    md.push_str(&m);
    ch.push_str(&c);
    Some(Page {
        path: info.path.clone(),
        title: p.title.clone(),
        markdown: md,
        chapter: ch,
        note: p
            .summary
            .as_deref()
            .map(|s| first_sentence(s, 240))
            .unwrap_or_default(),
    })
}

/// A pattern's facts, summary, backlinks and text, as written on its page at `path`, with its headings moved `shift`
/// levels down. Returns (markdown, chapter).
fn pattern_section(ix: &Index, k: PatternKey, path: &str, shift: u8) -> Option<(String, String)> {
    let info = ix.patterns.get(&k)?;
    let s = ix.skill_info((k.plugin, k.skill))?;
    let (skill, p) = ix.pattern(k);
    let mut md = String::new();
    let mut ch = String::new();

    // Backlinks, grouped by cover entry.
    let mut covers_md = Vec::new();
    let mut covers_html = Vec::new();
    for c in &p.covers {
        let n = &c.norm;
        let mut links_md = Vec::new();
        let mut links_html = Vec::new();
        for &(ai, target) in &info.backlinks {
            let a = &ix.agents[ai];
            // A responsibility may be named by its name or its text (`a.resps` follows the agent's order).
            let (matches, anchor, place) = match target {
                Target::Item(i) => {
                    let it = &a.items[i];
                    (it.norm == *n, &it.anchor, it.category.clone())
                }
                Target::Resp(i) => (
                    a.agent.responsibilities[i].norms.contains(n),
                    &a.resps[i].anchor,
                    "Responsibilities".to_string(),
                ),
            };
            if !matches {
                continue;
            }
            let href = format!("{}#{anchor}", rel(path, &a.path));
            links_md.push(format!(
                "[{} › {}]({href})",
                md_escape(&a.display),
                md_escape(&place)
            ));
            links_html.push(format!(
                "<a class=\"sb-backlink\" href=\"{}\"><span class=\"sb-backlink-agent\">{}</span> › {}</a>",
                escape(&href),
                escape(&a.display),
                escape(&place)
            ));
        }
        if links_md.is_empty() {
            covers_md.push(format!(
                "{} (no agent item by this name)",
                md_escape(&c.name)
            ));
            covers_html.push(format!(
                "<li><span class=\"sb-item\">{}</span> <span class=\"sb-muted\">no agent item by this name</span></li>",
                escape(&c.name)
            ));
        } else {
            covers_md.push(format!("{} ({})", md_escape(&c.name), links_md.join(", ")));
            covers_html.push(format!(
                "<li><span class=\"sb-item\">{}</span> {}</li>",
                escape(&c.name),
                links_html.join(" ")
            ));
        }
    }
    let _ = write!(
        md,
        "- **Skill:** [{}]({})\n- **Category:** [{}]({})\n- **Priority:** {} (0-100; under a tight token budget the lowest go first)\n- **Covers:** {}\n- **Source:** `{}`\n\n",
        md_escape(&s.display),
        rel(path, &s.path),
        md_escape(&info.group),
        rel(path, &info.group_path),
        p.priority,
        if covers_md.is_empty() {
            "nothing".to_string()
        } else {
            covers_md.join("; ")
        },
        p.doc.file.rel
    );
    if let Some(summary) = &p.summary {
        let _ = write!(md, "> **In short:** {}\n\n", one_line(summary));
    }
    let card = format!(
        "<div class=\"sb-card sb-header-card sb-pattern-card\">\n<dl class=\"sb-facts\">\n<dt>Skill</dt><dd><a class=\"sb-chip\" href=\"{}\">{}</a></dd>\n<dt>Category</dt><dd><a href=\"{}\">{}</a></dd>\n<dt>Priority</dt><dd>{} <span class=\"sb-bar-label\">{}</span> <span class=\"sb-muted\">under a tight token budget the lowest go first</span></dd>\n<dt>Covers</dt><dd>{}</dd>\n<dt>Source</dt><dd><code>{}</code></dd>\n</dl>\n</div>",
        escape(&rel(path, &s.path)),
        escape(&s.display),
        escape(&rel(path, &info.group_path)),
        escape(&info.group),
        bar(p.priority as usize, 100, "sb-bar-priority", &format!("priority {}", p.priority)),
        p.priority,
        if covers_html.is_empty() {
            "<span class=\"sb-muted\">nothing</span>".to_string()
        } else {
            format!("<ul class=\"sb-covers\">{}</ul>", covers_html.join(""))
        },
        escape(&p.doc.file.rel),
    );
    ch.push_str(&no_blank_lines(&card));
    ch.push_str("\n\n");
    if let Some(summary) = &p.summary {
        let _ = write!(
            ch,
            "<div class=\"sb-summary\"><div class=\"sb-role\">In short</div>\n\n{}\n\n</div>\n\n",
            summary.trim()
        );
    }

    let body = expand::rewrite_doc_links(&p.doc, &|dest| sibling(ix, skill, path, dest));
    let (h1, rest) = split_h1(&body);
    let body = match h1 {
        Some(h) if parse::normalize(&h) == parse::normalize(&p.title) => rest,
        Some(h) => format!("# {h}\n{rest}"),
        None => rest,
    };
    let body = expand::demote_headings(&body, shift + u8::from(has_h1(&body)));
    let _ = writeln!(md, "{}", body.trim());
    let _ = writeln!(ch, "{}", highlight_fences(body.trim()));
    Some((md, ch))
}

/// A link from a pattern to a sibling pattern file (`raft.md`, `./raft.md#x`), pointed at its page.
fn sibling(ix: &Index, skill: &Skill, from: &str, dest: &str) -> Option<String> {
    let (p, frag) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let p = p.strip_prefix("./").unwrap_or(p);
    let slug = p.strip_suffix(".md")?;
    if slug.contains('/') {
        return None;
    }
    ix.href(from, ix.pattern_by_dir(&skill.dir, slug)?, frag)
}

// ---------------------------------------------------------------------------------------------------------------
// Coverage

/// The coverage page: every agent's items against the patterns that cover them, uncovered items flagged.
pub fn coverage(ix: &Index) -> Page {
    let path = "coverage.md";
    let (items, covered) = ix.totals();
    let mut md = String::from("# Coverage\n\n");
    let mut ch = md.clone();
    let untracked = ix.agents.iter().filter(|a| !a.tracked).count();
    let intro = format!(
        "{}. An expertise item is covered when a pattern of one of the agent's skills names it in `covers:`; `skillbook check` reports every uncovered item as an error. Coverage applies to an agent with a stub to expand, or one that refers to a skill with pattern files{}.",
        upper_first(&coverage_phrase(covered, items)),
        match untracked {
            0 => String::new(),
            1 => "; the 1 other agent is not tracked".to_string(),
            n => format!("; the {n} other agents are not tracked"),
        }
    );
    let files: Vec<&str> = ix.gaps.keys().copied().collect();
    let (banner_md, banner_ch) = gap_banner_for(ix, &files, "in this build");
    md.push_str(&banner_md);
    ch.push_str(&banner_ch);
    let _ = write!(md, "{intro}\n\n");
    let _ = write!(
        ch,
        "<div class=\"sb-coverage-total\">{}</div>\n\n{intro}\n\n",
        coverage_bar(covered, items)
    );
    if ix.agents.is_empty() {
        md.push_str("There are no agents.\n");
        ch.push_str("There are no agents.\n");
    } else {
        md.push_str("| Agent | Items | Covered |\n|---|--:|--:|\n");
        let mut t = String::from("<table class=\"sb-summary-table\">\n<thead><tr><th>Agent</th><th>Items</th><th>Covered</th><th></th></tr></thead>\n<tbody>\n");
        for a in &ix.agents {
            if !a.tracked {
                let _ = writeln!(
                    md,
                    "| [{}]({}) | {} | not tracked |",
                    cell(&md_escape(&a.display)),
                    rel(path, &a.path),
                    a.items.len(),
                );
                let _ = writeln!(
                    t,
                    "<tr class=\"sb-untracked\"><td><a href=\"{}\">{}</a></td><td class=\"sb-num\">{}</td><td class=\"sb-num\">–</td><td>{}</td></tr>",
                    escape(&rel(path, &a.path)),
                    escape(&a.display),
                    a.items.len(),
                    agent_coverage_bar(a)
                );
                continue;
            }
            let _ = writeln!(
                md,
                "| [{}]({}) | {} | {} |",
                cell(&md_escape(&a.display)),
                rel(path, &a.path),
                a.items.len(),
                a.covered()
            );
            let target = if a.items.is_empty() && a.resps.is_empty() {
                rel(path, &a.path)
            } else {
                format!("{}#expertise", rel(path, &a.path))
            };
            let _ = writeln!(
                t,
                "<tr{}><td><a href=\"{}\">{}</a></td><td class=\"sb-num\">{}</td><td class=\"sb-num\">{}</td><td>{}</td></tr>",
                if a.covered() < a.items.len() { " class=\"sb-uncovered\"" } else { "" },
                escape(&target),
                escape(&a.display),
                a.items.len(),
                a.covered(),
                bar(a.covered(), a.items.len(), if a.covered() == a.items.len() { "sb-bar-ok" } else { "sb-bar-warn" }, &coverage_phrase(a.covered(), a.items.len()))
            );
        }
        t.push_str("</tbody>\n</table>");
        md.push('\n');
        ch.push_str(&no_blank_lines(&t));
        ch.push_str("\n\n");
    }
    {
        let uncovered: Vec<(&AgentInfo, &super::index::ItemInfo)> = ix
            .agents
            .iter()
            .filter(|a| a.tracked)
            .flat_map(|a| {
                a.items
                    .iter()
                    .filter(|i| i.patterns.is_empty())
                    .map(move |i| (a, i))
            })
            .collect();
        let note =
            "Each agent's page lists its expertise items against the patterns that cover them."
                .to_string();
        let _ = write!(md, "{note}\n\n## Uncovered items\n\n");
        let _ = write!(
            ch,
            "<p class=\"sb-note\">{}</p>\n\n## Uncovered items\n\n",
            escape(&note)
        );
        if uncovered.is_empty() {
            md.push_str("None.\n");
            ch.push_str("None.\n");
        }
        for (a, it) in uncovered {
            let line = format!(
                "- [{}]({}#{}): {} ({})\n",
                md_escape(&a.display),
                rel(path, &a.path),
                it.anchor,
                md_escape(&it.name),
                md_escape(&it.category)
            );
            md.push_str(&line);
            ch.push_str(&line);
        }
    }
    Page {
        path: path.to_string(),
        title: "Coverage".to_string(),
        markdown: md,
        chapter: ch,
        note: "every agent's expertise items and the patterns that cover them".to_string(),
    }
}
