//! Expand: replaces stub paragraphs with sections generated from the patterns of the skills a document refers to.
//!
//! An agent's stub becomes its patterns grouped under its expertise categories, in the agent's order; a skill's stub
//! becomes an index of its patterns. The plan (which pattern goes where) is separate from rendering so that bundles
//! can render the same plan with some patterns as summaries or left out.

use crate::parse::{markdown_options, Agent, Document, Model, Pattern, Skill};
use mdbook_markdown::pulldown_cmark::{Event, Parser, Tag};
use std::ops::Range;

/// Identifies a pattern: (plugin, skill, pattern) indices into the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatternKey {
    pub plugin: usize,
    pub skill: usize,
    pub pattern: usize,
}

impl PatternKey {
    pub fn get<'m>(&self, model: &'m Model) -> (&'m Skill, &'m Pattern) {
        let skill = &model.plugins[self.plugin].skills[self.skill];
        (skill, &skill.patterns[self.pattern])
    }
}

/// How a pattern goes into a rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Omit,
    Summary,
    /// Its summary (if any) and some of its sections, each whole or cut after a block: only bundles make these.
    Partial,
    Full,
}

/// A heading of generated sections and the patterns under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub heading: String,
    pub patterns: Vec<PatternKey>,
}

/// Where an agent's stub is and what replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Byte ranges (in the file) of the stubs; the first gets the generated sections, the others are removed.
    pub stubs: Vec<Range<usize>>,
    /// Heading level of the group headings; patterns sit one level below.
    pub level: u8,
    pub groups: Vec<Group>,
}

impl Plan {
    pub fn patterns(&self) -> impl Iterator<Item = PatternKey> + '_ {
        self.groups.iter().flat_map(|g| g.patterns.iter().copied())
    }
}

/// Heading of the group for patterns that cover a responsibility rather than an expertise item.
pub const PROCEDURES: &str = "Procedures";
/// Heading of the group for the referenced skills' other patterns.
pub const MORE: &str = "More Patterns";

/// Works out which patterns replace an agent's stubs, grouped under its expertise categories in the agent's order.
/// `None` when the agent has no stub or nothing to expand it with.
pub fn plan_agent(model: &Model, plugin: usize, agent: &Agent) -> Option<Plan> {
    let first = agent.doc.stubs.first()?;
    let mut all: Vec<PatternKey> = Vec::new();
    for (p, s) in model.agent_skills(plugin, agent) {
        for i in 0..model.plugins[p].skills[s].patterns.len() {
            all.push(PatternKey {
                plugin: p,
                skill: s,
                pattern: i,
            });
        }
    }
    if all.is_empty() {
        return None;
    }
    // Whether each pattern of `all` has found its group yet.
    let mut placed = vec![false; all.len()];
    let mut groups = Vec::new();
    let rank = |k: &PatternKey| {
        let (_, p) = k.get(model);
        (std::cmp::Reverse(p.priority), p.slug.as_str(), *k)
    };
    for cat in &agent.expertise {
        let mut members: Vec<(usize, PatternKey)> = Vec::new();
        for (i, k) in all.iter().enumerate() {
            if placed[i] {
                continue;
            }
            let (_, p) = k.get(model);
            if let Some(pos) = cat.items.iter().position(|it| p.covers_norm(&it.norm)) {
                members.push((pos, *k));
                placed[i] = true;
            }
        }
        members.sort_by(|(a, k), (b, l)| (a, rank(k)).cmp(&(b, rank(l))));
        if !members.is_empty() {
            groups.push(Group {
                heading: cat.name.clone(),
                patterns: members.into_iter().map(|(_, k)| k).collect(),
            });
        }
    }
    // Each responsibility's name and text, normalized.
    let duties: Vec<(&str, &str)> = agent
        .responsibilities
        .iter()
        .map(|r| (r.norms[0].as_str(), r.norms[1].as_str()))
        .collect();
    let mut procedures: Vec<(usize, PatternKey)> = Vec::new();
    for (i, k) in all.iter().enumerate() {
        if placed[i] {
            continue;
        }
        let (_, p) = k.get(model);
        if let Some(pos) = duties
            .iter()
            .position(|(name, text)| p.covers_norm(name) || p.covers_norm(text))
        {
            procedures.push((pos, *k));
            placed[i] = true;
        }
    }
    procedures.sort_by(|(a, k), (b, l)| (a, rank(k)).cmp(&(b, rank(l))));
    if !procedures.is_empty() {
        groups.push(Group {
            heading: PROCEDURES.to_string(),
            patterns: procedures.into_iter().map(|(_, k)| k).collect(),
        });
    }
    let mut rest: Vec<PatternKey> = all
        .iter()
        .zip(&placed)
        .filter(|(_, &done)| !done)
        .map(|(k, _)| *k)
        .collect();
    rest.sort_by(|k, l| rank(k).cmp(&rank(l)));
    if !rest.is_empty() {
        groups.push(Group {
            heading: MORE.to_string(),
            patterns: rest,
        });
    }
    let level = first.enclosing_level.clamp(2, 5);
    Some(Plan {
        stubs: agent.doc.stubs.iter().map(|s| s.range.clone()).collect(),
        level,
        groups,
    })
}

/// How links between patterns are written in a rendering.
pub type LinkFn<'a> = &'a dyn Fn(&Skill, &Pattern, Option<&str>) -> String;

/// Links as they work in the compiled plugin, from `agents/<agent>.md`.
pub fn plugin_agent_link(skill: &Skill, pattern: &Pattern, fragment: Option<&str>) -> String {
    format!(
        "../skills/{}/references/{}.md{}",
        skill.dir_name,
        pattern.slug,
        fragment.map(|f| format!("#{f}")).unwrap_or_default()
    )
}

/// Where a pattern's full page is in the compiled plugin, as Claude Code gives it to a plugin agent: it substitutes
/// `${CLAUDE_PLUGIN_ROOT}` in a plugin agent's body with the plugin's folder.
pub fn plugin_root_path(skill: &Skill, pattern: &Pattern) -> String {
    format!(
        "${{CLAUDE_PLUGIN_ROOT}}/skills/{}/references/{}.md",
        skill.dir_name, pattern.slug
    )
}

/// Links as a compiled agent's system prompt has them: [`plugin_root_path`], a path the agent can read.
pub fn plugin_root_link(skill: &Skill, pattern: &Pattern, fragment: Option<&str>) -> String {
    format!(
        "{}{}",
        plugin_root_path(skill, pattern),
        fragment.map(|f| format!("#{f}")).unwrap_or_default()
    )
}

/// Renders an agent's body with its plan applied; `form` says how each pattern goes in.
pub fn render_agent(
    model: &Model,
    agent: &Agent,
    plan: &Plan,
    form: &dyn Fn(PatternKey) -> Form,
    link: LinkFn,
) -> String {
    let section = |k: PatternKey, f: Form, out: &mut String| {
        let (skill, pattern) = k.get(model);
        out.push_str(&render_pattern(skill, pattern, plan.level + 1, f, link));
    };
    render_agent_with(model, agent, plan, form, &section, None)
}

/// [`render_agent`], taking each pattern's rendered section from `section`, which appends it to the text (so callers
/// can cache them); a `preamble` paragraph goes before the generated sections. The text is assembled in one buffer:
/// a bundle's packing renders it at every cutoff it measures.
pub fn render_agent_with(
    model: &Model,
    agent: &Agent,
    plan: &Plan,
    form: &dyn Fn(PatternKey) -> Form,
    section: &dyn Fn(PatternKey, Form, &mut String),
    preamble: Option<&str>,
) -> String {
    let text = &agent.doc.file.text;
    let mut out = String::with_capacity(text.len() * 2);
    let mut pos = agent.doc.body_start;
    for (i, stub) in plan.stubs.iter().enumerate() {
        out.push_str(&text[pos..stub.start]);
        if i == 0 {
            let start = out.len();
            if let Some(p) = preamble {
                out.push_str(p.trim());
                out.push_str("\n\n");
            }
            for group in &plan.groups {
                let heading = out.len();
                out.push_str(&hashes(plan.level));
                out.push(' ');
                out.push_str(&group.heading);
                out.push_str("\n\n");
                let sections = out.len();
                for k in &group.patterns {
                    let (_, pattern) = k.get(model);
                    let f = form(*k);
                    match f {
                        Form::Omit => continue,
                        Form::Summary if pattern.summary.is_none() => continue,
                        _ => {}
                    }
                    section(*k, f, &mut out);
                    out.push('\n');
                }
                if out.len() == sections {
                    out.truncate(heading);
                }
            }
            // The generated text without its trailing blank lines, then one line break.
            let end = start + out[start..].trim_end().len();
            out.truncate(end);
            out.push('\n');
        }
        pos = stub.end;
    }
    out.push_str(&text[pos..]);
    tidy(&out)
}

/// One pattern as a section at heading `level`: in full, or as its summary.
pub fn render_pattern(
    skill: &Skill,
    pattern: &Pattern,
    level: u8,
    form: Form,
    link: LinkFn,
) -> String {
    let mut out = format!("{} {}\n\n", hashes(level), pattern.title);
    match form {
        Form::Full => {
            let body = rewrite_and_demote(
                &pattern.doc,
                &|dest| sibling_link(skill, dest, link),
                level.saturating_sub(1),
            );
            out.push_str(body.trim());
            out.push('\n');
        }
        Form::Summary | Form::Partial => {
            out.push_str(pattern.summary.as_deref().unwrap_or("").trim());
            out.push('\n');
        }
        Form::Omit => return String::new(),
    }
    out
}

/// What a pattern section is for, read from its heading; bundles take sections in the order of [`SectionKind::weight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SectionKind {
    /// Text before the first heading.
    Lead,
    /// `Checklist`: what to verify, the most actionable text per token.
    Checklist,
    /// `How it fails`, `Failure modes`, `Pitfalls`: what goes wrong in production.
    Failures,
    /// `The problem`: what the topic is and its symptoms.
    Problem,
    /// `When it applies…`: where the advice holds and where it does not.
    Applies,
    /// `How to do it…` and any other heading: the long practical body.
    Practice,
    /// `Sources`, `References`, `Further reading`: links an agent cannot follow offline.
    Sources,
}

impl SectionKind {
    /// Reads a section's kind from its heading text.
    pub fn of(heading: Option<&str>) -> Self {
        let Some(h) = heading else {
            return SectionKind::Lead;
        };
        let h = h.to_lowercase();
        let has = |w: &[&str]| w.iter().any(|w| h.contains(w));
        if has(&["checklist", "check list"]) {
            SectionKind::Checklist
        } else if has(&["fail", "pitfall", "gotcha", "anti-pattern", "mistake"]) {
            SectionKind::Failures
        } else if has(&[
            "source",
            "reference",
            "further reading",
            "see also",
            "bibliography",
        ]) {
            SectionKind::Sources
        } else if has(&["problem", "overview", "what it is", "symptom"]) {
            SectionKind::Problem
        } else if has(&["when it applies", "when to use", "applies", "when not"]) {
            SectionKind::Applies
        } else {
            SectionKind::Practice
        }
    }

    /// How much a section of this kind is worth per token to an agent, 0..=100: checklists and failure modes are
    /// dense and actionable; sources are links a model cannot follow in a prompt.
    pub fn weight(self) -> u32 {
        match self {
            SectionKind::Checklist => 100,
            SectionKind::Failures => 90,
            SectionKind::Lead => 85,
            SectionKind::Problem => 80,
            SectionKind::Applies => 70,
            SectionKind::Practice => 60,
            SectionKind::Sources => 10,
        }
    }
}

/// A pattern's body cut for packing: sections at its top headings, each cut into chunks of whole blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The body with links rewritten and headings demoted, as sections and chunks index it.
    pub text: String,
    pub sections: Vec<CutSection>,
}

/// One section of a [`Cut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutSection {
    /// The heading's text (without `#`s), `None` for the text before the first heading.
    pub title: Option<String>,
    /// The heading line as it renders, `None` for the lead.
    pub heading: Option<Range<usize>>,
    pub kind: SectionKind,
    /// Consecutive runs of whole top-level blocks (list items count as blocks); never empty.
    pub chunks: Vec<Range<usize>>,
}

/// Chunks grow to about this many bytes (some 200 tokens of prose) before a new one starts; a single block may be
/// larger. Small chunks let a bundle fill its budget to within one chunk.
pub const CHUNK_BYTES: usize = 700;

impl Cut {
    /// The text of section `s` with its first `n` chunks (heading included), or `None` for `n == 0`.
    pub fn section_text(&self, s: usize, n: usize) -> Option<String> {
        let sec = &self.sections[s];
        let n = n.min(sec.chunks.len());
        if n == 0 {
            return None;
        }
        let body = self.text[sec.chunks[0].start..sec.chunks[n - 1].end].trim_end();
        Some(match &sec.heading {
            Some(h) => format!("{}\n\n{}", self.text[h.clone()].trim_end(), body),
            None => body.to_string(),
        })
    }

    /// Chunks in every section.
    pub fn chunk_counts(&self) -> Vec<usize> {
        self.sections.iter().map(|s| s.chunks.len()).collect()
    }
}

/// Cuts a pattern's body, rendered as a section at heading `level` (links rewritten by `link`), into sections at its
/// top-level headings of the highest level it has, and each section into chunks of whole blocks.
pub fn cut_pattern(skill: &Skill, pattern: &Pattern, level: u8, link: LinkFn) -> Cut {
    cut_of(&rewrite_and_demote(
        &pattern.doc,
        &|dest| sibling_link(skill, dest, link),
        level.saturating_sub(1),
    ))
}

/// [`cut_pattern`] of a pattern's `body` as given (a pattern of `skill`).
pub fn cut_pattern_body(skill: &Skill, body: &str, level: u8, link: LinkFn) -> Cut {
    let body = rewrite_links(body, &|dest| sibling_link(skill, dest, link));
    cut_linked(&body, level)
}

/// A pattern's body with its links rewritten, cut at heading `level`.
fn cut_linked(body: &str, level: u8) -> Cut {
    cut_of(&demote_headings(body, level.saturating_sub(1)))
}

/// A pattern's text as a section (links rewritten, headings demoted), trimmed and cut.
fn cut_of(text: &str) -> Cut {
    let text = text.trim().to_string();
    let sections = cut_text(&text);
    Cut { text, sections }
}

/// A top-level block: its range and, for a heading, its level and text.
struct Block {
    range: Range<usize>,
    heading: Option<(u8, String)>,
}

fn top_blocks(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut depth = 0usize;
    let mut in_list = false;
    let mut heading: Option<usize> = None;
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    match tag {
                        Tag::List(_) => in_list = true,
                        Tag::Heading { level, .. } => {
                            heading = Some(blocks.len());
                            blocks.push(Block {
                                range,
                                heading: Some((level as u8, String::new())),
                            });
                        }
                        _ => blocks.push(Block {
                            range,
                            heading: None,
                        }),
                    }
                } else if depth == 1 && in_list && matches!(tag, Tag::Item) {
                    blocks.push(Block {
                        range,
                        heading: None,
                    });
                }
                depth += 1;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_list = false;
                    heading = None;
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(i) = heading {
                    if let Some((_, s)) = &mut blocks[i].heading {
                        s.push_str(&t);
                    }
                }
            }
            _ if depth == 0 => blocks.push(Block {
                range,
                heading: None,
            }),
            _ => {}
        }
    }
    blocks
}

fn cut_text(text: &str) -> Vec<CutSection> {
    let blocks = top_blocks(text);
    let top = blocks
        .iter()
        .filter_map(|b| b.heading.as_ref().map(|(l, _)| *l))
        .min();
    /// A section's heading (its range and text) and its blocks.
    type Raw<'a> = (Option<(Range<usize>, String)>, Vec<&'a Block>);
    let mut sections: Vec<Raw> = Vec::new();
    for b in &blocks {
        match &b.heading {
            Some((l, t)) if Some(*l) == top => {
                sections.push((Some((b.range.clone(), t.trim().to_string())), Vec::new()))
            }
            _ => {
                if sections.is_empty() {
                    sections.push((None, Vec::new()));
                }
                sections.last_mut().expect("pushed").1.push(b);
            }
        }
    }
    sections
        .into_iter()
        .filter(|(_, blocks)| !blocks.is_empty())
        .map(|(heading, blocks)| {
            let mut chunks: Vec<Range<usize>> = Vec::new();
            let mut open: Option<(Range<usize>, bool)> = None; // (range, ends with a heading)
            for b in blocks {
                let r = b.range.clone();
                open = match open {
                    Some((cur, ends_heading))
                        if ends_heading || r.end - cur.start <= CHUNK_BYTES =>
                    {
                        Some((cur.start..r.end.max(cur.end), b.heading.is_some()))
                    }
                    Some((cur, _)) => {
                        chunks.push(cur);
                        Some((r, b.heading.is_some()))
                    }
                    None => Some((r, b.heading.is_some())),
                };
            }
            if let Some((cur, _)) = open {
                chunks.push(cur);
            }
            let title = heading.as_ref().map(|(_, t)| t.clone());
            CutSection {
                kind: SectionKind::of(title.as_deref()),
                title,
                heading: heading.map(|(r, _)| r),
                chunks,
            }
        })
        .collect()
}

/// A link from one pattern to a sibling pattern (`raft.md`, `./raft.md#x`), rewritten by `link`.
fn sibling_link(skill: &Skill, dest: &str, link: LinkFn) -> Option<String> {
    let (path, fragment) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let path = path.strip_prefix("./").unwrap_or(path);
    let slug = path.strip_suffix(".md")?;
    if slug.contains('/') {
        return None;
    }
    let target = skill.patterns.iter().find(|p| p.slug == slug)?;
    Some(link(skill, target, fragment))
}

/// A file of a skill's own `references/` folder, as the compiled SKILL.md indexes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnReference {
    /// Its path relative to the skill's folder (`references/notes.md`).
    pub path: String,
    pub title: String,
    pub summary: Option<String>,
}

impl OwnReference {
    /// The index entry of a file at `path` (relative to the skill's folder) with these bytes: a markdown file's title
    /// is its frontmatter's `title` or `name`, else its first heading, else its file name; its summary is its
    /// frontmatter's `summary` or `description`, else its first paragraph, cut at about 300 characters.
    pub fn new(path: &str, bytes: &[u8]) -> Self {
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        let text = match crate::load::text_of(bytes) {
            Some(t) if path.ends_with(".md") => t,
            _ => {
                return OwnReference {
                    path: path.to_string(),
                    title: name,
                    summary: None,
                }
            }
        };
        let (fields, body) = match crate::frontmatter::split(text) {
            crate::frontmatter::Split::Found { yaml, body_start } => (
                crate::frontmatter::parse_strict(&text[yaml]).unwrap_or_default(),
                &text[body_start..],
            ),
            _ => (Vec::new(), text),
        };
        let field = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                fields
                    .iter()
                    .find(|(key, _)| key == k)
                    .and_then(|(_, v)| match v {
                        crate::frontmatter::Value::String(s) if !s.trim().is_empty() => {
                            Some(one_line(s))
                        }
                        _ => None,
                    })
            })
        };
        let mut heading = None;
        let mut paragraph = None;
        let mut depth = 0usize;
        let mut current = String::new();
        let mut in_heading = false;
        for event in Parser::new_ext(body, markdown_options()) {
            match event {
                Event::Start(tag) => {
                    if depth == 0 {
                        in_heading = matches!(tag, Tag::Heading { .. });
                        current.clear();
                    }
                    depth += 1;
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        let t = one_line(&current);
                        if in_heading {
                            heading = heading.or(Some(t).filter(|t| !t.is_empty()));
                        } else if paragraph.is_none() && !t.is_empty() {
                            paragraph = Some(t);
                        }
                        if heading.is_some() && paragraph.is_some() {
                            break;
                        }
                    }
                }
                Event::Text(t) | Event::Code(t) => current.push_str(&t),
                Event::SoftBreak | Event::HardBreak => current.push(' '),
                _ => {}
            }
        }
        OwnReference {
            path: path.to_string(),
            title: field(&["title", "name"]).or(heading).unwrap_or(name),
            summary: field(&["summary", "description"])
                .or(paragraph)
                .map(|s| cut_words(&s, 300)),
        }
    }
}

/// Whitespace runs as single spaces, trimmed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` cut at the last word boundary within `max` bytes, with `…` when cut.
fn cut_words(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = s[..end].rfind(' ').map_or(&s[..end], |i| &s[..i]);
    format!("{}…", cut.trim_end_matches([',', ';', ':', ' ']))
}

/// Renders a skill's SKILL.md body, `patterns/x.md` links pointed at `references/x.md` as the compiled plugin lays
/// them out, with an index of every reference the compiled skill has (its patterns' pages, highest priority first,
/// then its own `references/` files) and their summaries: in place of its stub, or, without one, appended as a
/// `## References` section. The index is what progressive disclosure reads to choose a page.
pub fn render_skill(skill: &Skill, own: &[OwnReference]) -> Option<String> {
    let doc = skill.doc.as_ref()?;
    let text = &doc.file.text;
    // What the skill's own text links to already (its own index, if it has one) is not indexed again.
    let linked: crate::HashSet<String> = doc
        .links
        .iter()
        .filter_map(|l| crate::links::join("", &l.path))
        .map(|p| match p.strip_prefix("patterns/") {
            Some(rest) => format!("references/{rest}"),
            None => p,
        })
        .collect();
    let index = |level: u8| skill_index(skill, own, level, &linked);
    let any = !index(2).is_empty();
    let mut out = String::new();
    let mut pos = doc.body_start;
    for (i, stub) in doc.stubs.iter().enumerate() {
        out.push_str(&text[pos..stub.range.start]);
        if i == 0 && any {
            out.push_str(index(stub.enclosing_level.clamp(2, 6)).trim_end());
            out.push('\n');
        }
        pos = stub.range.end;
    }
    out.push_str(&text[pos..]);
    if doc.stubs.is_empty() && any {
        out = format!("{}\n\n{}", out.trim_end(), index(2));
    }
    let out = rewrite_links(&out, &|dest| {
        let rest = dest
            .strip_prefix("./")
            .unwrap_or(dest)
            .strip_prefix("patterns/")?;
        Some(format!("references/{rest}"))
    });
    Some(tidy(&out))
}

/// The references of a compiled skill that its text does not link to yet (`linked`: paths relative to the skill's
/// folder), as a linked list under a `References` heading at `level`: its patterns' pages (highest priority first),
/// then its own `references/` files (by path), each with the first sentence of its summary. Empty when there are
/// none. The index is what a model reads to choose a page, in every subagent that injects the skill and every time
/// the skill is invoked, so each entry is one line; the page holds the rest.
pub fn skill_index(
    skill: &Skill,
    own: &[OwnReference],
    level: u8,
    linked: &crate::HashSet<String>,
) -> String {
    let mut patterns: Vec<&Pattern> = skill.patterns.iter().collect();
    patterns.sort_by_key(|p| (std::cmp::Reverse(p.priority), p.slug.clone()));
    let mut out = String::new();
    let mut entry = |title: &str, path: &str, summary: Option<&str>| {
        if linked.contains(path) {
            return;
        }
        out.push_str(&format!(
            "- [{}]({})",
            title.replace(['[', ']'], ""),
            path.replace(' ', "%20")
        ));
        if let Some(s) = summary.map(first_sentence).filter(|s| !s.is_empty()) {
            out.push_str(": ");
            out.push_str(&s);
        }
        out.push('\n');
    };
    for p in patterns {
        entry(
            &p.title,
            &format!("references/{}.md", p.slug),
            p.summary.as_deref(),
        );
    }
    let mut own: Vec<&OwnReference> = own.iter().collect();
    own.sort_by(|a, b| a.path.cmp(&b.path));
    for r in own {
        entry(&r.title, &r.path, r.summary.as_deref());
    }
    if out.is_empty() {
        return out;
    }
    format!(
        "{} References\n\nThe full pages, to read when a task needs one:\n\n{out}",
        hashes(level)
    )
}

/// The first sentence of `s` on one line (up to a `.`, `!` or `?` before a space, not inside an abbreviation such as
/// `e.g.`), cut at a word before 200 bytes.
pub fn first_sentence(s: &str) -> String {
    let s = one_line(s);
    let bytes = s.as_bytes();
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        if !matches!(c, '.' | '!' | '?') || bytes.get(i + 1) != Some(&b' ') {
            continue;
        }
        let word = s[..i].rsplit(' ').next().unwrap_or("");
        // `e.g.`, `i.e.`, `vs.`: not the end of a sentence.
        let abbreviation = word.len() <= 4
            && word.contains('.')
            && word.chars().all(|c| c.is_ascii_lowercase() || c == '.');
        if c == '.' && (abbreviation || matches!(word, "vs" | "etc" | "cf")) {
            continue;
        }
        end = i + 1;
        break;
    }
    cut_words(&s[..end], 200)
}

fn hashes(level: u8) -> String {
    "#".repeat(level.clamp(1, 6) as usize)
}

/// Collapses runs of more than one blank line and ends the text with exactly one newline.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut blank = 0;
    let mut in_fence = false;
    for line in s.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if t.is_empty() && !in_fence {
            blank += 1;
            // Runs of blank lines collapse to one; the text does not start with an empty line at all.
            if blank > 1 || (out.is_empty() && line.is_empty()) {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    // Without trailing white space, ending in one line break: in place, not copied again.
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
    out
}

/// Applies (range, replacement) edits to `text` in order of position ([`crate::links::ordered`]).
fn apply_edits(text: &str, edits: Vec<(Range<usize>, String)>) -> String {
    crate::links::apply(text, &crate::links::ordered(edits))
}

/// Rewrites the destinations of inline links for which `f` returns a new destination.
pub fn rewrite_links(text: &str, f: &dyn Fn(&str) -> Option<String>) -> String {
    let edits = Parser::new_ext(text, markdown_options())
        .into_offset_iter()
        .filter_map(|(event, range)| crate::links::inline_link_at(text, &event, range))
        .filter_map(|(range, dest)| Some((range, f(&dest)?)))
        .collect();
    apply_edits(text, edits)
}

/// [`rewrite_links`] of a parsed document's body, from the links its parse found ([`Document::inline_links`]):
/// the same text, without parsing the body again.
pub fn rewrite_doc_links(doc: &Document, f: &dyn Fn(&str) -> Option<String>) -> String {
    rewrite_and_demote(doc, f, 0)
}

/// [`demote_headings`] of [`rewrite_doc_links`]: the same text, made from the document's own parse (its links and
/// headings) in one set of edits. A setext heading is replaced whole, by its first line with its links rewritten.
pub fn rewrite_and_demote(doc: &Document, f: &dyn Fn(&str) -> Option<String>, shift: u8) -> String {
    let body = doc.body();
    let mut links: Vec<(Range<usize>, String)> = doc
        .inline_links
        .iter()
        .filter_map(|(range, dest)| Some((range.clone(), f(dest)?)))
        .collect();
    if shift == 0 {
        return apply_edits(body, links);
    }
    let mut edits = Vec::with_capacity(links.len() + doc.headings.len());
    for h in &doc.headings {
        let range = h.range.start - doc.body_start..h.range.end - doc.body_start;
        let raw = &body[range.clone()];
        if raw.starts_with('#') {
            edits.push(demotion(raw, range, h.level, shift));
        } else {
            // The links inside it are rewritten in the line that replaces it.
            let (inside, outside): (Vec<_>, Vec<_>) = links
                .into_iter()
                .partition(|(r, _)| r.start >= range.start && r.end <= range.end);
            links = outside;
            let inside = inside
                .into_iter()
                .map(|(r, new)| (r.start - range.start..r.end - range.start, new))
                .collect();
            edits.push(demotion(&apply_edits(raw, inside), range, h.level, shift));
        }
    }
    edits.extend(links);
    apply_edits(body, edits)
}

/// Moves every heading `shift` levels down (at most to level 6); setext headings become ATX headings.
pub fn demote_headings(text: &str, shift: u8) -> String {
    if shift == 0 {
        return text.to_string();
    }
    let mut edits = Vec::new();
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        let Event::Start(Tag::Heading { level, .. }) = event else {
            continue;
        };
        edits.push(demotion(&text[range.clone()], range, level as u8, shift));
    }
    apply_edits(text, edits)
}

/// The edit that moves the heading `raw` (at `range`, of `level`) `shift` levels down (at most to level 6): an ATX
/// heading's `#`s replaced, a setext heading replaced whole by an ATX heading of its first line.
fn demotion(raw: &str, range: Range<usize>, level: u8, shift: u8) -> (Range<usize>, String) {
    let new_level = (level + shift).min(6);
    if raw.starts_with('#') {
        let n = raw.chars().take_while(|&c| c == '#').count();
        (range.start..range.start + n, hashes(new_level))
    } else {
        let first = raw.lines().next().unwrap_or("").trim();
        let nl = if raw.ends_with('\n') { "\n" } else { "" };
        (range, format!("{} {}{}", hashes(new_level), first, nl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demote_table() {
        for (input, shift, expect) in [
            ("## A\ntext\n", 2, "#### A\ntext\n"),
            ("A\n---\n", 1, "### A\n"),
            ("##### A\n", 3, "###### A\n"),
            (
                "```\n## not a heading\n```\n",
                2,
                "```\n## not a heading\n```\n",
            ),
        ] {
            assert_eq!(demote_headings(input, shift), expect, "{input:?}");
        }
    }

    #[test]
    fn rewrite_links_only_matching() {
        let out = rewrite_links("[a](raft.md) [b](https://x.org) `[c](raft.md)`", &|d| {
            d.ends_with(".md").then(|| format!("../{d}"))
        });
        assert_eq!(out, "[a](../raft.md) [b](https://x.org) `[c](raft.md)`");
    }

    #[test]
    fn own_reference_title_and_summary() {
        let r = OwnReference::new(
            "references/notes.md",
            b"---\ntitle: Notes\nsummary: What the notes say.\n---\n\n# Other\n\nText.\n",
        );
        assert_eq!(
            (r.title.as_str(), r.summary.as_deref()),
            ("Notes", Some("What the notes say."))
        );
        let r = OwnReference::new(
            "references/a.md",
            b"# API\n\nThe `run/1` call\nand its options.\n\nMore.\n",
        );
        assert_eq!(
            (r.title.as_str(), r.summary.as_deref()),
            ("API", Some("The run/1 call and its options."))
        );
        let r = OwnReference::new("references/b.md", b"Just text.\n");
        assert_eq!(
            (r.title.as_str(), r.summary.as_deref()),
            ("b.md", Some("Just text."))
        );
        let r = OwnReference::new("references/logo.png", &[0x89, b'P', b'N', b'G']);
        assert_eq!((r.title.as_str(), r.summary), ("logo.png", None));
        let long = format!("# T\n\n{}\n", "word ".repeat(100));
        let r = OwnReference::new("references/c.md", long.as_bytes());
        let s = r.summary.unwrap();
        assert!(s.ends_with('…') && s.len() <= 303, "{s}");
    }

    #[test]
    fn first_sentences() {
        for (s, want) in [
            ("One. Two.", "One."),
            (
                "Use it, e.g. for\n locks. Then more.",
                "Use it, e.g. for locks.",
            ),
            ("No end", "No end"),
            ("Ends here? Yes.", "Ends here?"),
            ("Written against ra 3.1. Next.", "Written against ra 3.1."),
        ] {
            assert_eq!(first_sentence(s), want, "{s}");
        }
        let long = format!("{}.", "word ".repeat(60).trim());
        let cut = first_sentence(&long);
        assert!(cut.len() <= 203 && cut.ends_with('…'), "{cut}");
    }

    #[test]
    fn tidy_collapses_blank_lines_outside_fences() {
        assert_eq!(
            tidy("a\n\n\n\nb\n```\n\n\n```\n\n"),
            "a\n\nb\n```\n\n\n```\n"
        );
        assert_eq!(tidy("\n\n  \n\na\n"), "a\n");
        assert_eq!(tidy("  \n\na"), "  \na\n");
        assert_eq!(tidy("\n\n"), "\n");
    }

    /// Markdown made of what links and headings turn on: ATX and setext headings (with links in them), inline,
    /// reference and nested links, images, code spans and blocks, emphasis, lists and quotes.
    fn linked_markdown() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("# Title\n".to_string()),
            Just("## Sub [raft](raft.md) x\n".to_string()),
            Just("Setext [a](a.md#f) head\n===\n".to_string()),
            Just("Two\nlines [b](b.md)\n---\n".to_string()),
            Just("see [raft](raft.md) and [x](https://x.org/y.md)".to_string()),
            Just("![img [in](in.md)](pic.md)".to_string()),
            Just("[ref][r]\n\n[r]: r.md\n".to_string()),
            Just("<auto.md> `[c](c.md)` *[e](e.md)*".to_string()),
            Just("```\n[f](f.md)\n# not\n```\n".to_string()),
            Just("- [l](l.md)\n  ### in list\n".to_string()),
            Just("> ## quoted [q](q.md)\n".to_string()),
            Just("[p](p(1).md) [s](<s s.md>) [t](t.md \"title\")".to_string()),
            Just("\n".to_string()),
            Just("\n\n".to_string()),
            Just("    ## indented\n".to_string()),
            Just("###### six\n".to_string()),
        ];
        proptest::collection::vec(piece, 0..10).prop_map(|v| v.concat())
    }

    fn rewrite(dest: &str) -> Option<String> {
        dest.ends_with(".md")
            .then(|| format!("../x/{}", dest.len()))
    }

    proptest::proptest! {
        /// The links and headings a document's parse found give the text a parse of its body gives.
        #[test]
        fn rewriting_from_the_parse_is_rewriting_the_text(
            md in linked_markdown(),
            shift in 0u8..4,
        ) {
            let text = format!("---\nname: x\n---\n{md}");
            let mut diags = Vec::new();
            let file = crate::load::SourceFile { rel: "a.md".into(), text };
            let doc = crate::parse::parse_document(file, &crate::parse::ParseOptions::default(), true, &mut diags)
                .expect("parses");
            let linked = rewrite_links(doc.body(), &rewrite);
            proptest::prop_assert_eq!(rewrite_doc_links(&doc, &rewrite), linked.clone());
            proptest::prop_assert_eq!(
                rewrite_and_demote(&doc, &rewrite, shift),
                demote_headings(&linked, shift)
            );
        }

        /// Whatever the text, `tidy` is its definition: every line kept, runs of blank lines outside fences cut to
        /// one, then the text without the line breaks it starts with and the white space it ends with, plus one
        /// line break.
        #[test]
        fn tidy_is_its_definition(s in "[a ~`\n\r\t]{0,60}") {
            let mut lines = String::new();
            let (mut blank, mut in_fence) = (0, false);
            for line in s.lines() {
                let t = line.trim_start();
                if t.starts_with("```") || t.starts_with("~~~") {
                    in_fence = !in_fence;
                }
                if t.is_empty() && !in_fence {
                    blank += 1;
                    if blank > 1 {
                        continue;
                    }
                } else {
                    blank = 0;
                }
                lines.push_str(line);
                lines.push('\n');
            }
            let definition = format!("{}\n", lines.trim_end().trim_start_matches('\n'));
            proptest::prop_assert_eq!(tidy(&s), definition);
        }
    }
}
