//! Parse: frontmatter and markdown structure of every loaded file, with byte offsets kept for diagnostics.
//!
//! Agents yield expertise items, responsibilities, skill references, `<example>` blocks and stubs; skills yield
//! their patterns; patterns yield what they cover, their priority and summary.

use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use crate::frontmatter::{self, Field, Frontmatter, Split, Value, Yaml};
use crate::load::{PluginFiles, SourceFile, Workspace};
use mdbook_markdown::pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use regex::Regex;
use std::ops::Range;

/// The default stub: the placeholder paragraphs plugins ship so that they load before their content exists.
pub const DEFAULT_STUB_PATTERN: &str = r"^\[Content will be expanded (?:in follow-up|with full details)[^\]]*- this stub enables plugin loading\]$";

/// Settings the parser takes from the configuration.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    pub stub: Regex,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            stub: Regex::new(DEFAULT_STUB_PATTERN).expect("default stub pattern is valid"),
        }
    }
}

/// A markdown heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    pub level: u8,
    pub text: String,
    /// Byte range of the heading in the file.
    pub range: Range<usize>,
}

/// A stub paragraph to be replaced by generated sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stub {
    pub range: Range<usize>,
    /// Level of the heading the stub sits under (0 when there is none).
    pub enclosing_level: u8,
}

/// A markdown file with frontmatter, split and parsed.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: SourceFile,
    pub frontmatter: Frontmatter,
    pub has_frontmatter: bool,
    /// Byte offset where the markdown body starts.
    pub body_start: usize,
    pub headings: Vec<Heading>,
    pub stubs: Vec<Stub>,
    /// Byte ranges of code blocks.
    pub code: Vec<Range<usize>>,
    /// The relative links and images of the body, their ranges relative to the body
    /// ([`crate::links::relative_links`] of [`Document::body`], found in the same pass as the rest).
    pub links: Vec<crate::links::Link>,
    /// Every inline link's destination as written (images not included), with its range relative to the body: what
    /// [`crate::expand::rewrite_links`] of [`Document::body`] edits, found in the same pass
    /// ([`crate::expand::rewrite_doc_links`]).
    pub inline_links: Vec<(Range<usize>, String)>,
}

impl Document {
    pub fn body(&self) -> &str {
        &self.file.text[self.body_start..]
    }

    pub fn source(&self) -> Source<'_> {
        self.file.source()
    }

    /// The byte range of the section under a heading: to the next heading of the same or a higher level.
    pub fn section(&self, index: usize) -> Range<usize> {
        let h = &self.headings[index];
        let end = self.headings[index + 1..]
            .iter()
            .find(|n| n.level <= h.level)
            .map(|n| n.range.start)
            .unwrap_or(self.file.text.len());
        h.range.end.min(end)..end
    }

    /// The first heading whose normalised text is one of `names`.
    pub fn find_section(&self, names: &[&str]) -> Option<Range<usize>> {
        let i = self
            .headings
            .iter()
            .position(|h| names.contains(&normalize(&h.text).as_str()))?;
        Some(self.section(i))
    }

    fn in_code(&self, offset: usize) -> bool {
        self.code.iter().any(|r| r.contains(&offset))
    }
}

/// One expertise item, as the agent writes it under `## Your Expertise`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertiseItem {
    pub name: String,
    pub offset: usize,
    /// The name [`normalize`]d, computed once.
    pub norm: String,
}

/// A category of expertise items (`- **Category**: a, b, c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub offset: usize,
    pub items: Vec<ExpertiseItem>,
}

/// One numbered responsibility; `name` is its bold part when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responsibility {
    pub name: String,
    pub text: String,
    pub offset: usize,
    /// `name` and `text` [`normalize`]d, computed once: a `covers:` entry may name either.
    pub norms: [String; 2],
}

/// A reference from a document to a skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillRef {
    pub name: String,
    pub offset: usize,
}

/// One `<example>` block of an agent's description.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Example {
    pub context: String,
    pub user: String,
    pub assistant: String,
    pub commentary: String,
}

/// A Claude Code subagent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub doc: Document,
    pub name: String,
    pub description: String,
    pub model: Option<String>,
    pub color: Option<String>,
    pub tools: Vec<String>,
    pub skill_refs: Vec<SkillRef>,
    pub expertise: Vec<Category>,
    /// Byte offsets of the bullets under `## Your Expertise` that could not be read as `Category: items`.
    pub unread_bullets: Vec<usize>,
    pub responsibilities: Vec<Responsibility>,
    pub examples: Vec<Example>,
}

impl Agent {
    pub fn items(&self) -> impl Iterator<Item = (&Category, &ExpertiseItem)> {
        self.expertise
            .iter()
            .flat_map(|c| c.items.iter().map(move |i| (c, i)))
    }
}

/// One `covers:` entry of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    pub name: String,
    pub offset: usize,
    /// The name [`normalize`]d, computed once.
    pub norm: String,
}

/// A pattern file: one topic of a skill.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub doc: Document,
    pub slug: String,
    pub title: String,
    pub covers: Vec<Cover>,
    pub priority: u8,
    pub summary: Option<String>,
}

impl Pattern {
    /// True when one of the pattern's `covers:` entries names this item.
    pub fn covers(&self, name: &str) -> bool {
        self.covers_norm(&normalize(name))
    }

    /// [`Pattern::covers`] for a name already [`normalize`]d.
    pub fn covers_norm(&self, norm: &str) -> bool {
        self.covers.iter().any(|c| c.norm == norm)
    }
}

/// An Agent Skill and its patterns.
#[derive(Debug, Clone)]
pub struct Skill {
    /// None when SKILL.md is missing or could not be read or parsed.
    pub doc: Option<Document>,
    /// Whether the folder has a SKILL.md at all; without one Claude Code does not load the skill.
    pub has_skill_md: bool,
    pub name: String,
    pub dir_name: String,
    pub dir: String,
    pub description: Option<String>,
    pub patterns: Vec<Pattern>,
}

/// Which of a skill's patterns cover each item: [`normalize`]d name -> indices of the patterns naming it in `covers:`,
/// ascending ([`Skill::cover_index`]).
pub type CoverIndex<'m> = crate::HashMap<&'m str, Vec<usize>>;

impl Skill {
    /// Its [`CoverIndex`]: the one resolution of coverage that the check and the site's index both read.
    pub fn cover_index(&self) -> CoverIndex<'_> {
        let mut by_cover = CoverIndex::default();
        for (i, p) in self.patterns.iter().enumerate() {
            for c in &p.covers {
                let list = by_cover.entry(c.norm.as_str()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        by_cover
    }
}

/// A slash command: a markdown document with optional frontmatter.
#[derive(Debug, Clone)]
pub struct Command {
    pub doc: Document,
    pub name: String,
}

/// One plugin, parsed.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub dir: String,
    pub namespaced: bool,
    pub manifest: Option<crate::load::Manifest>,
    pub agents: Vec<Agent>,
    pub skills: Vec<Skill>,
    pub commands: Vec<Command>,
}

impl Plugin {
    /// How a name of this plugin is shown: `plugin:name` inside a marketplace.
    pub fn display(&self, name: &str) -> String {
        if self.namespaced {
            format!("{}:{}", self.name, name)
        } else {
            name.to_string()
        }
    }
}

/// The parsed content of a workspace.
#[derive(Debug, Clone)]
pub struct Model {
    pub plugins: Vec<Plugin>,
    pub marketplace: Option<crate::load::Manifest>,
    /// The files the compiled plugin copies as they are ([`crate::load::Workspace::copies`]).
    pub copies: Vec<crate::load::RawFile>,
    pub files: usize,
}

impl Model {
    /// Resolves a skill reference made from `plugin`: a plain name in the same plugin, or `plugin:skill`.
    pub fn resolve_skill(&self, plugin: usize, name: &str) -> Option<(usize, usize)> {
        if let Some((p, s)) = name.split_once(':') {
            let pi = self.plugins.iter().position(|x| x.name == p)?;
            let si = self.plugins[pi].skills.iter().position(|x| x.name == s)?;
            return Some((pi, si));
        }
        let si = self
            .plugins
            .get(plugin)?
            .skills
            .iter()
            .position(|x| x.name == name)?;
        Some((plugin, si))
    }

    /// The skills an agent refers to that resolve, in reference order, without repeats.
    pub fn agent_skills(&self, plugin: usize, agent: &Agent) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for r in &agent.skill_refs {
            if let Some(k) = self.resolve_skill(plugin, &r.name) {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        out
    }

    pub fn skill(&self, key: (usize, usize)) -> &Skill {
        &self.plugins[key.0].skills[key.1]
    }
}

/// Lowercase letters and digits only: how expertise items and `covers:` entries are compared.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        // ASCII first: the same result as the general case below, without its Unicode tables.
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            }
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Where [`parse_with`] gets one file's parse: [`NoMemo`] parses every time; the watch loop's cache answers files
/// whose path and text it has parsed before.
pub trait Memo {
    /// The parse of `file` as a `kind` (`agent`, `pattern`, `skill` or `command`): from the cache, or by calling
    /// `parse`. The diagnostics parsing gives go to `diags`, also when the answer comes from the cache.
    fn memo<T: Clone + 'static>(
        &mut self,
        kind: &'static str,
        file: SourceFile,
        diags: &mut Vec<Diagnostic>,
        parse: impl FnOnce(SourceFile, &mut Vec<Diagnostic>) -> Option<T>,
    ) -> Option<T>;

    /// Whether [`Memo::memo`] would answer `file` as a `kind` without parsing it.
    fn remembers(&self, _kind: &'static str, _file: &SourceFile) -> bool {
        false
    }

    /// [`Memo::memo`] of each of `files`, in order; the files it does not remember are parsed first, in parallel.
    fn memo_all<T: Clone + Send + 'static>(
        &mut self,
        kind: &'static str,
        files: Vec<SourceFile>,
        diags: &mut Vec<Diagnostic>,
        parse: impl Fn(SourceFile, &mut Vec<Diagnostic>) -> Option<T> + Sync,
    ) -> Vec<Option<T>> {
        let known: Vec<bool> = files.iter().map(|f| self.remembers(kind, f)).collect();
        let todo: Vec<&SourceFile> = files
            .iter()
            .zip(&known)
            .filter(|(_, &k)| !k)
            .map(|(f, _)| f)
            .collect();
        let mut made = crate::emit::par_map(&todo, |f| {
            let mut own = Vec::new();
            let value = parse((*f).clone(), &mut own);
            (value, own)
        })
        .into_iter();
        files
            .into_iter()
            .zip(known)
            .map(|(f, known)| {
                if known {
                    return self.memo(kind, f, diags, &parse);
                }
                let (value, own) = made.next().unwrap_or_default();
                self.memo(kind, f, diags, move |_, d| {
                    d.extend(own);
                    value
                })
            })
            .collect()
    }
}

/// Parses every file, every time.
pub struct NoMemo;

impl Memo for NoMemo {
    fn memo<T: Clone + 'static>(
        &mut self,
        _: &'static str,
        file: SourceFile,
        diags: &mut Vec<Diagnostic>,
        parse: impl FnOnce(SourceFile, &mut Vec<Diagnostic>) -> Option<T>,
    ) -> Option<T> {
        parse(file, diags)
    }
}

/// Parses every file of the workspace.
pub fn parse(ws: Workspace, opts: &ParseOptions, diags: &mut Vec<Diagnostic>) -> Model {
    parse_with(ws, opts, diags, &mut NoMemo)
}

/// [`parse`], getting each file's parse through `memo`.
pub fn parse_with<M: Memo>(
    ws: Workspace,
    opts: &ParseOptions,
    diags: &mut Vec<Diagnostic>,
    memo: &mut M,
) -> Model {
    let plugins = ws
        .plugins
        .into_iter()
        .map(|p| parse_plugin(p, opts, diags, memo))
        .collect();
    Model {
        plugins,
        marketplace: ws.marketplace,
        copies: ws.copies,
        files: ws.files,
    }
}

fn parse_plugin<M: Memo>(
    p: PluginFiles,
    opts: &ParseOptions,
    diags: &mut Vec<Diagnostic>,
    memo: &mut M,
) -> Plugin {
    let agents = memo
        .memo_all("agent", p.agents, diags, |f, d| parse_agent(f, opts, d))
        .into_iter()
        .flatten()
        .collect();
    let commands = p
        .commands
        .into_iter()
        .filter_map(|f| {
            let doc = memo.memo("command", f, diags, |f, d| {
                parse_document_as(f, opts, Needs::Claude("command"), Yaml::Lenient, d)
            })?;
            let name = doc.file.stem().to_string();
            Some(Command { doc, name })
        })
        .collect();
    // Every skill's patterns at once, so that they are parsed in parallel together.
    let mut skill_files = p.skills;
    let counts: Vec<usize> = skill_files.iter().map(|s| s.patterns.len()).collect();
    let all: Vec<SourceFile> = skill_files
        .iter_mut()
        .flat_map(|s| std::mem::take(&mut s.patterns))
        .collect();
    let mut parsed = memo
        .memo_all("pattern", all, diags, |f, d| parse_pattern(f, opts, d))
        .into_iter();
    let skills = skill_files
        .into_iter()
        .zip(counts)
        .map(|(s, count)| {
            let doc = s.skill_md.and_then(|f| {
                memo.memo("skill", f, diags, |f, d| {
                    parse_document_as(f, opts, Needs::Claude("skill"), Yaml::Lenient, d)
                })
            });
            let mut name = s.dir_name.clone();
            let mut description = None;
            if let Some(doc) = &doc {
                if let Some(n) = string_field(doc, "name", diags) {
                    name = n;
                }
                description = string_field(doc, "description", diags);
            }
            let patterns = parsed.by_ref().take(count).flatten().collect();
            Skill {
                has_skill_md: s.skill_md_present,
                doc,
                name,
                dir_name: s.dir_name,
                dir: s.dir,
                description,
                patterns,
            }
        })
        .collect();
    Plugin {
        name: p.name,
        dir: p.dir,
        namespaced: p.namespaced,
        manifest: p.manifest,
        agents,
        skills,
        commands,
    }
}

/// What a kind of file needs of its frontmatter block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// skillbook's own format (pattern files): a file without a closed block is an error and is not used.
    Required,
    /// One of Claude Code's formats (`"agent"`, `"skill"`, `"command"`): Claude Code loads such a file with no
    /// metadata (an agent named after its file, a skill after its folder), so it loads here too, with a warning.
    Claude(&'static str),
    /// Optional: no diagnostic when there is none; an unclosed block is an error.
    Optional,
}

/// Splits and parses one file. `required` says whether a missing frontmatter block is an error.
pub fn parse_document(
    file: SourceFile,
    opts: &ParseOptions,
    required: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Document> {
    let needs = if required {
        Needs::Required
    } else {
        Needs::Optional
    };
    parse_document_as(file, opts, needs, frontmatter::Yaml::Lenient, diags)
}

/// What Claude Code names a file of `kind` that has no name of its own, for messages.
fn default_name(kind: &str, file: &SourceFile) -> String {
    if kind == "skill" {
        let dir = crate::links::parent(&file.rel);
        dir.rsplit('/').next().unwrap_or(dir).to_string()
    } else {
        file.stem().to_string()
    }
}

/// The warning for a file of Claude Code's formats without a frontmatter block (`unclosed`: one opened and never
/// closed, which Claude Code reads as none).
fn no_frontmatter(file: &SourceFile, kind: &'static str, unclosed: bool) -> Diagnostic {
    let name = default_name(kind, file);
    let what = match kind {
        "skill" => "SKILL.md",
        "agent" => "this agent",
        _ => "this command",
    };
    let loads = match kind {
        "agent" => {
            format!("Claude Code loads it as agent `{name}` (the file's name) with no description")
        }
        "skill" => format!(
            "Claude Code loads it as skill `{name}` (the folder's name) with no description"
        ),
        _ => "Claude Code loads it with no description".to_string(),
    };
    let src = file.source();
    if unclosed {
        return src
            .diag(
                0,
                Severity::Warning,
                "unterminated-frontmatter",
                format!(
                    "frontmatter opened with `---` is never closed, so {what} has none: {loads}"
                ),
            )
            .help("add a line with `---` after the last frontmatter field");
    }
    let msg = if file.text.trim().is_empty() {
        format!("file is empty: {loads} and no text")
    } else {
        format!("{what} has no frontmatter: {loads}")
    };
    let add = match kind {
        "command" => "`description: what the command does`".to_string(),
        "skill" => format!("`name: {name}` and `description: what it does and when to use it`"),
        _ => format!("`name: {name}` and `description: when to use this agent`"),
    };
    src.diag(0, Severity::Warning, "no-frontmatter", msg)
        .help(format!(
            "start the file with a `---` line, {add}, and a closing `---`"
        ))
}

/// [`parse_document`], with what the kind of file `needs` and invalid YAML in the frontmatter treated as `yaml` says.
pub fn parse_document_as(
    file: SourceFile,
    opts: &ParseOptions,
    needs: Needs,
    yaml_mode: frontmatter::Yaml,
    diags: &mut Vec<Diagnostic>,
) -> Option<Document> {
    let src = file.source();
    let (frontmatter, has_frontmatter, body_start) = match frontmatter::split(&file.text) {
        Split::Found { yaml, body_start } => {
            let fm = frontmatter::parse_as(&src, yaml, yaml_mode, diags);
            if fm.rejected {
                return None;
            }
            (fm, true, body_start)
        }
        Split::Unterminated => {
            if let Needs::Claude(kind) = needs {
                diags.push(no_frontmatter(&file, kind, true));
                (Frontmatter::default(), false, 0)
            } else {
                diags.push(
                    src.diag(
                        0,
                        Severity::Error,
                        "unterminated-frontmatter",
                        "frontmatter opened with `---` is never closed",
                    )
                    .help("add a line with `---` after the last frontmatter field"),
                );
                return None;
            }
        }
        Split::None => {
            match needs {
                Needs::Required => {
                    let msg = if file.text.trim().is_empty() {
                        "file is empty; it needs frontmatter"
                    } else {
                        "file has no frontmatter"
                    };
                    diags.push(
                        src.diag(0, Severity::Error, "missing-frontmatter", msg)
                            .help("start the file with a `---` line, `title:`, `covers:` and `summary:` fields, and a closing `---`"),
                    );
                    return None;
                }
                // Frontmatter is optional in a command (Claude Code's own documentation says so, though its
                // validator warns); the compiled plugin gives it a description.
                Needs::Claude("command") => {}
                Needs::Claude(kind) => diags.push(no_frontmatter(&file, kind, false)),
                Needs::Optional => {}
            }
            (Frontmatter::default(), false, 0)
        }
    };
    let mut doc = Document {
        frontmatter,
        has_frontmatter,
        body_start,
        headings: Vec::new(),
        stubs: Vec::new(),
        code: Vec::new(),
        links: Vec::new(),
        inline_links: Vec::new(),
        file,
    };
    scan_markdown(&mut doc, Some(opts));
    Some(doc)
}

fn heading_level(l: HeadingLevel) -> u8 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Markdown options used everywhere skillbook reads markdown.
pub fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// `doc` with the edits `edits` (ranges of its body, in text order, as [`crate::links::apply`] takes them) made to its
/// body: its stubs moved with the text, and its headings, code blocks and links found again by parsing the new body,
/// so that everything the document holds describes its text (a compiled plugin rebases the links of a pattern or an
/// agent it includes; the cut of a pattern reads its links and headings from its document).
pub fn edit_body(doc: &mut Document, edits: &[(Range<usize>, String)]) {
    let base = doc.body_start;
    let body = crate::links::apply(doc.body(), edits);
    let map = |o: usize| base + crate::links::shift(o - base, edits);
    for s in &mut doc.stubs {
        s.range = map(s.range.start)..map(s.range.end);
    }
    doc.file.text.truncate(base);
    doc.file.text.push_str(&body);
    doc.headings.clear();
    doc.code.clear();
    doc.links.clear();
    doc.inline_links.clear();
    scan_markdown(doc, None);
}

/// Finds the headings, code blocks, links and (with `opts`) stubs of `doc`'s body.
fn scan_markdown(doc: &mut Document, opts: Option<&ParseOptions>) {
    let base = doc.body_start;
    let body = &doc.file.text[base..];
    let mut heading: Option<(u8, Range<usize>, String)> = None;
    let mut para: Option<(Range<usize>, String)> = None;
    let mut current_level = 0u8;
    for (event, range) in Parser::new_ext(body, markdown_options()).into_offset_iter() {
        if let Some(link) = crate::links::link_at(body, &event, range.clone()) {
            doc.links.push(link);
        }
        if let Some(dest) = crate::links::inline_link_at(body, &event, range.clone()) {
            doc.inline_links.push(dest);
        }
        let range = range.start + base..range.end + base;
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((heading_level(level), range, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, range, text)) = heading.take() {
                    current_level = level;
                    doc.headings.push(Heading {
                        level,
                        text: text.trim().to_string(),
                        range,
                    });
                }
            }
            Event::Start(Tag::Paragraph) => para = Some((range, String::new())),
            Event::End(TagEnd::Paragraph) => {
                if let (Some((range, text)), Some(opts)) = (para.take(), opts) {
                    if opts.stub.is_match(text.trim()) {
                        doc.stubs.push(Stub {
                            range,
                            enclosing_level: current_level,
                        });
                    }
                }
            }
            Event::Start(Tag::CodeBlock(_)) => doc.code.push(range),
            Event::Code(code) => push_text(&mut heading, &mut para, &code),
            Event::Text(text) => push_text(&mut heading, &mut para, &text),
            Event::SoftBreak | Event::HardBreak => push_text(&mut heading, &mut para, " "),
            _ => {}
        }
    }
    // In text order: a link in an image's description opens after the image (see `links::relative_links`).
    doc.links.sort_by_key(|l| l.range.start);
}

fn push_text(
    heading: &mut Option<(u8, Range<usize>, String)>,
    para: &mut Option<(Range<usize>, String)>,
    s: &str,
) {
    if let Some((_, _, t)) = heading {
        t.push_str(s);
    }
    if let Some((_, t)) = para {
        t.push_str(s);
    }
}

/// A frontmatter field that should be a string. Numbers and booleans are read as text with a warning;
/// lists and mappings are errors.
pub fn string_field(doc: &Document, key: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let field = doc.frontmatter.get(key)?;
    match &field.value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        v @ (Value::Number(_) | Value::Bool(_)) => {
            let text = v.scalar_text().unwrap_or_default();
            diags.push(
                field_diag(
                    doc,
                    field,
                    Severity::Warning,
                    "wrong-type",
                    format!(
                        "`{key}` should be a string, found {}; read as \"{text}\"",
                        v.kind()
                    ),
                )
                .help(format!("quote it: `{key}: \"{text}\"`")),
            );
            Some(text)
        }
        v => {
            diags.push(
                field_diag(
                    doc,
                    field,
                    Severity::Error,
                    "wrong-type",
                    format!("`{key}` must be a string, found {}", v.kind()),
                )
                .help(format!("write `{key}: some text` on one line")),
            );
            None
        }
    }
}

/// A frontmatter field that should be a list of strings; a comma-separated string is accepted too.
pub fn list_field(doc: &Document, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
    list_field_as(doc, key, Severity::Error, diags)
}

/// [`list_field`], with entries or values of the wrong type reported at `severity`.
pub fn list_field_as(
    doc: &Document,
    key: &str,
    severity: Severity,
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let Some(field) = doc.frontmatter.get(key) else {
        return Vec::new();
    };
    match &field.value {
        Value::Null => Vec::new(),
        Value::String(s) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        Value::List(items) => {
            let mut out = Vec::new();
            for item in items {
                match item.scalar_text() {
                    Some(t) if !t.trim().is_empty() => out.push(t.trim().to_string()),
                    Some(_) => {}
                    None => diags.push(
                        field_diag(
                            doc,
                            field,
                            severity,
                            "wrong-type",
                            format!(
                                "`{key}` entries must be strings, found {}{}",
                                item.kind(),
                                ignored(severity)
                            ),
                        )
                        .help(format!("write `{key}: [a, b]`")),
                    ),
                }
            }
            out
        }
        v => {
            diags.push(
                field_diag(
                    doc,
                    field,
                    severity,
                    "wrong-type",
                    format!(
                        "`{key}` must be a list of strings, found {}{}",
                        v.kind(),
                        ignored(severity)
                    ),
                )
                .help(format!("write `{key}: [a, b]`")),
            );
            Vec::new()
        }
    }
}

/// What a message adds when a wrong type is only a warning: the value is not read.
fn ignored(severity: Severity) -> &'static str {
    if severity == Severity::Warning {
        "; it is ignored"
    } else {
        ""
    }
}

fn field_diag(
    doc: &Document,
    field: &Field,
    severity: Severity,
    code: &'static str,
    msg: String,
) -> Diagnostic {
    doc.source().diag(field.key_offset, severity, code, msg)
}

/// An agent without a `name` or `description` (absent, empty or null): Claude Code loads it, named after its file and
/// with a missing description warned about, so these are warnings (`agent-name`, `agent-description`) at the field,
/// or at the top of the frontmatter when it is absent. A file without frontmatter already has its warning.
fn agent_fields(
    doc: &Document,
    name: &Option<String>,
    description: &Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    if !doc.has_frontmatter {
        return;
    }
    let blank = |v: &Option<String>, key: &str| {
        v.as_deref().is_none_or(|v| v.trim().is_empty())
            && doc
                .frontmatter
                .get(key)
                .is_none_or(|f| matches!(f.value, Value::Null | Value::String(_)))
    };
    let at = |key: &str| doc.frontmatter.get(key).map(|f| f.key_offset).unwrap_or(0);
    let stem = doc.file.stem();
    if blank(name, "name") {
        diags.push(
            doc.source()
                .diag(
                    at("name"),
                    Severity::Warning,
                    "agent-name",
                    format!("agent has no `name`; Claude Code names it after its file: `{stem}`"),
                )
                .help(format!("add `name: {stem}` to the frontmatter")),
        );
    }
    if blank(description, "description") {
        diags.push(
            doc.source()
                .diag(at("description"), Severity::Warning, "agent-description", "agent has no `description`; Claude Code loads it, but cannot tell when to use it")
                .help("add `description: ...` saying what the agent does and when to use it (`<example>` blocks help)"),
        );
    }
}

/// A frontmatter field that Claude Code reads as a string but ignores when it is not one (`model`, `color`): a list
/// or mapping there is a `wrong-type` warning and the field is not read.
fn ignored_unless_string(doc: &Document, key: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let field = doc.frontmatter.get(key)?;
    if matches!(field.value, Value::List(_) | Value::Map(_)) {
        diags.push(
            field_diag(
                doc,
                field,
                Severity::Warning,
                "wrong-type",
                format!(
                    "`{key}` should be a string, found {}; it is ignored",
                    field.value.kind()
                ),
            )
            .help(format!("write `{key}: value` on one line")),
        );
        return None;
    }
    string_field(doc, key, diags)
}

fn parse_agent(
    file: SourceFile,
    opts: &ParseOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Agent> {
    let doc = parse_document_as(file, opts, Needs::Claude("agent"), Yaml::Lenient, diags)?;
    let name = string_field(&doc, "name", diags);
    let description = string_field(&doc, "description", diags);
    agent_fields(&doc, &name, &description, diags);
    let model = ignored_unless_string(&doc, "model", diags);
    let color = ignored_unless_string(&doc, "color", diags);
    // Claude Code accepts `tools` and `skills` of any shape (it ignores what it cannot read).
    let tools = list_field_as(&doc, "tools", Severity::Warning, diags);
    let mut skill_refs = Vec::new();
    let mut from = 0;
    for s in list_field_as(&doc, "skills", Severity::Warning, diags) {
        let offset = doc
            .frontmatter
            .locate(&doc.file.text, "skills", &s, from)
            .or(doc.frontmatter.get("skills").map(|f| f.key_offset))
            .unwrap_or(0);
        from = offset + s.len();
        skill_refs.push(SkillRef { name: s, offset });
    }
    skill_refs.extend(text_skill_refs(&doc));
    let (expertise, unread_bullets) = expertise(&doc);
    let responsibilities = responsibilities(&doc);
    let description = description.unwrap_or_default();
    let examples = examples(&description);
    Some(Agent {
        name: name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| doc.file.stem().to_string()),
        description,
        model,
        color,
        tools,
        skill_refs,
        expertise,
        unread_bullets,
        responsibilities,
        examples,
        doc,
    })
}

fn text_skill_refs(doc: &Document) -> Vec<SkillRef> {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?i)\bsee\s+(?:the\s+)?`([A-Za-z0-9][A-Za-z0-9:_.-]*)`\s+skill\b")
            .expect("valid regex")
    });
    let body = doc.body();
    re.captures_iter(body)
        .filter_map(|c| {
            let m = c.get(1)?;
            let offset = doc.body_start + m.start();
            (!doc.in_code(offset)).then(|| SkillRef {
                name: m.as_str().to_string(),
                offset,
            })
        })
        .collect()
}

fn lines_in(text: &str, range: Range<usize>) -> impl Iterator<Item = (usize, &str)> {
    let slice = &text[range.clone()];
    let mut pos = range.start;
    slice.split_inclusive('\n').map(move |l| {
        let start = pos;
        pos += l.len();
        (start, l.trim_end_matches(['\n', '\r']))
    })
}

/// The categories of the `## Your Expertise` section, and the offsets of the bullets there that could not be read.
///
/// A bullet is `Category` and its items, separated by `:`, ` - `, ` — ` or ` – `, the category bold or not
/// (`- **Category**: a, b`, `- **Category:** a, b`, `- **Category** - a, b`, `- Category: a, b`). A bullet that is a
/// category alone (`- **Category**` or `- Category:`) takes the bullets nested under it as its items.
fn expertise(doc: &Document) -> (Vec<Category>, Vec<usize>) {
    static BULLET: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    static BOLD: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let bullet = BULLET.get_or_init(|| {
        Regex::new(r"^(?P<indent>[ \t]*)[-*+][ \t]+(?P<body>.*?)\s*$").expect("valid regex")
    });
    let bold = BOLD.get_or_init(|| {
        Regex::new(
            r"^\*\*(?P<cat>[^*]+?)\s*(?::\*\*\s*(?:[:\-—–]\s+)?|\*\*(?:\s*[\-—–]\s+|\s*:|\s*$))(?P<rest>.*)$",
        )
            .expect("valid regex")
    });
    let Some(range) = doc.find_section(&["yourexpertise", "expertise"]) else {
        return (Vec::new(), Vec::new());
    };
    let mut out: Vec<Category> = Vec::new();
    let mut unread = Vec::new();
    // The indent of the last category bullet, while nested bullets may still add items to it.
    let mut open: Option<usize> = None;
    for (start, line) in lines_in(&doc.file.text, range) {
        if doc.in_code(start) {
            continue;
        }
        let Some(c) = bullet.captures(line) else {
            continue;
        };
        let (Some(indent), Some(body)) = (c.name("indent"), c.name("body")) else {
            continue;
        };
        let depth = indent.as_str().replace('\t', "    ").len();
        if let (Some(level), Some(cat)) = (open, out.last_mut()) {
            if depth > level {
                // A nested bullet is an item, or a list of them; a bold one is the bold text.
                let base = start + body.start();
                match bold.captures(body.as_str()).and_then(|b| b.name("cat")) {
                    Some(b) => cat.items.push(item(b.as_str().trim(), base + b.start())),
                    None => push_items(&mut cat.items, body.as_str(), base),
                }
                continue;
            }
        }
        open = None;
        let (cat, cat_at, rest, rest_at) = if let Some(b) = bold.captures(body.as_str()) {
            let (Some(cat), Some(rest)) = (b.name("cat"), b.name("rest")) else {
                continue;
            };
            (cat.as_str(), cat.start(), rest.as_str(), rest.start())
        } else if let Some((cat_end, rest_at)) = separator(body.as_str()) {
            let cat = body.as_str()[..cat_end].trim_end();
            (cat, 0, &body.as_str()[rest_at..], rest_at)
        } else {
            unread.push(start + body.start());
            continue;
        };
        let cat = cat.trim().trim_matches('*').trim();
        let cat_at = body.as_str()[cat_at..]
            .find(cat)
            .map_or(cat_at, |i| cat_at + i);
        if cat.is_empty() {
            unread.push(start + body.start());
            continue;
        }
        let mut items = Vec::new();
        push_items(&mut items, rest, start + body.start() + rest_at);
        if items.is_empty() {
            open = Some(depth);
        }
        out.push(Category {
            name: cat.to_string(),
            offset: start + body.start() + cat_at,
            items,
        });
    }
    (out, unread)
}

/// Where a plain bullet's category ends and its items start: at the first `: `, ` - `, ` — ` or ` – ` (or a `:` that
/// ends the bullet).
fn separator(body: &str) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for sep in [": ", " - ", " — ", " – "] {
        if let Some(i) = body.find(sep) {
            if best.is_none_or(|(b, _)| i < b) {
                best = Some((i, i + sep.len()));
            }
        }
    }
    best.or_else(|| body.strip_suffix(':').map(|c| (c.len(), body.len())))
}

fn item(name: &str, offset: usize) -> ExpertiseItem {
    ExpertiseItem {
        name: name.to_string(),
        offset,
        norm: normalize(name),
    }
}

fn push_items(items: &mut Vec<ExpertiseItem>, text: &str, base: usize) {
    for (at, name) in split_items(text) {
        items.push(item(name, base + at));
    }
}

/// Splits `a, b (x, y), c.` at top-level commas; each item trimmed, with its byte offset in `s`.
fn split_items(s: &str) -> Vec<(usize, &str)> {
    fn push<'a>(s: &'a str, from: usize, to: usize, out: &mut Vec<(usize, &'a str)>) {
        let raw = &s[from..to];
        let lead = raw.len() - raw.trim_start().len();
        let item = raw.trim().trim_end_matches('.').trim();
        if !item.is_empty() {
            out.push((from + lead, item));
        }
    }
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | ';' if depth <= 0 => {
                push(s, start, i, &mut out);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(s, start, s.len(), &mut out);
    out
}

fn responsibilities(doc: &Document) -> Vec<Responsibility> {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    static BOLD: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^\s*\d+[.)]\s+(?P<text>.+)$").expect("valid regex"));
    let bold = BOLD.get_or_init(|| Regex::new(r"\*\*(?P<b>[^*]+)\*\*").expect("valid regex"));
    let Some(range) = doc.find_section(&["responsibilities", "yourresponsibilities"]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (start, line) in lines_in(&doc.file.text, range) {
        let Some(c) = re.captures(line) else { continue };
        let Some(t) = c.name("text") else { continue };
        let text = t.as_str().replace("**", "").trim().to_string();
        let name = bold
            .captures(t.as_str())
            .and_then(|b| b.name("b"))
            .map(|b| b.as_str().trim().to_string())
            .unwrap_or_else(|| text.clone());
        out.push(Responsibility {
            norms: [normalize(&name), normalize(&text)],
            name,
            text,
            offset: start + t.start(),
        });
    }
    out
}

/// The `<example>` blocks of a description: context, user, assistant and commentary.
pub fn examples(description: &str) -> Vec<Example> {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    static COMMENTARY: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"(?s)<example>(.*?)</example>").expect("valid regex"));
    let commentary = COMMENTARY
        .get_or_init(|| Regex::new(r"(?s)<commentary>(.*?)</commentary>").expect("valid regex"));
    re.captures_iter(description)
        .filter_map(|c| c.get(1))
        .map(|m| {
            let inner = m.as_str();
            let mut ex = Example::default();
            if let Some(c) = commentary.captures(inner).and_then(|c| c.get(1)) {
                ex.commentary = c.as_str().trim().to_string();
            }
            let without = commentary.replace_all(inner, "");
            let mut current: Option<usize> = None;
            let mut parts = [String::new(), String::new(), String::new()];
            for line in without.lines() {
                let t = line.trim();
                let lower = t.to_ascii_lowercase();
                let field = ["context:", "user:", "assistant:"]
                    .iter()
                    .position(|p| lower.starts_with(p));
                match (field, current) {
                    (Some(i), _) => {
                        let prefix = ["context:", "user:", "assistant:"][i].len();
                        parts[i].push_str(t[prefix..].trim());
                        current = Some(i);
                    }
                    (None, Some(i)) if !t.is_empty() => {
                        parts[i].push(' ');
                        parts[i].push_str(t);
                    }
                    _ => {}
                }
            }
            let [context, user, assistant] = parts;
            ex.context = unquote(&context).to_string();
            ex.user = unquote(&user).to_string();
            ex.assistant = unquote(&assistant).to_string();
            ex
        })
        .collect()
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
}

fn parse_pattern(
    file: SourceFile,
    opts: &ParseOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Pattern> {
    // Pattern files are skillbook's own format: strict YAML, no lenient fallback.
    let doc = parse_document_as(file, opts, Needs::Required, Yaml::Strict, diags)?;
    let slug = doc.file.stem().to_string();
    let title = string_field(&doc, "title", diags)
        .or_else(|| doc.headings.first().map(|h| h.text.clone()))
        .unwrap_or_else(|| slug.clone());
    let mut covers = Vec::new();
    let mut from = 0;
    for name in list_field(&doc, "covers", diags) {
        let offset = doc
            .frontmatter
            .locate(&doc.file.text, "covers", &name, from)
            .or_else(|| doc.frontmatter.get("covers").map(|f| f.key_offset))
            .unwrap_or(0);
        from = offset + name.len();
        let norm = normalize(&name);
        covers.push(Cover { name, offset, norm });
    }
    let priority = match doc.frontmatter.get("priority") {
        None => 50,
        Some(f) => match &f.value {
            Value::Number(n) if n.parse::<u8>().is_ok_and(|p| p <= 100) => {
                n.parse::<u8>().unwrap_or(50)
            }
            v => {
                diags.push(invalid_priority(&doc, f, v));
                50
            }
        },
    };
    let summary = string_field(&doc, "summary", diags).filter(|s| !s.trim().is_empty());
    Some(Pattern {
        doc,
        slug,
        title,
        covers,
        priority,
        summary,
    })
}

/// Byte offset of a field's value: past the key, the `:` and the spaces after it (the key itself when there is no
/// value on its line).
pub fn value_offset(doc: &Document, field: &Field) -> usize {
    let after = field.key_offset + field.key.len();
    let Some(region) = doc.file.text.get(after..field.region.end) else {
        return field.key_offset;
    };
    let bytes = region.as_bytes();
    let mut i = 0;
    // The closing quote of a quoted key, then the colon and the spaces after it.
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'"' | b'\'') {
        i += 1;
    }
    if bytes.get(i) != Some(&b':') {
        return field.key_offset;
    }
    i += 1;
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
        i += 1;
    }
    match bytes.get(i) {
        None | Some(b'\n' | b'\r' | b'#') => field.key_offset,
        Some(_) => after + i,
    }
}

/// The error for a `priority` that is not an unquoted whole number from 0 to 100, at the value.
fn invalid_priority(doc: &Document, field: &Field, v: &Value) -> Diagnostic {
    let (found, help) = match v {
        Value::String(s) if s.trim().parse::<i64>().is_ok_and(|n| (0..=100).contains(&n)) => (
            format!("the quoted string \"{s}\""),
            format!("remove the quotes: `priority: {}`", s.trim()),
        ),
        Value::String(s) => (
            format!("`{s}`"),
            "write a number: the lowest priorities are left out of a bundle first; 50 is the default".to_string(),
        ),
        Value::Number(n) if n.contains(['.', 'e', 'E']) => (
            format!("`{n}`"),
            format!(
                "write a whole number, such as `priority: {}`",
                n.parse::<f64>().map_or(50.0, |x| x.round().clamp(0.0, 100.0))
            ),
        ),
        Value::Number(n) if n.starts_with('-') => {
            (format!("`{n}`"), "0 is the lowest priority: `priority: 0`".to_string())
        }
        Value::Number(n) => (
            format!("`{n}`"),
            "100 is the highest priority: `priority: 100`".to_string(),
        ),
        v => (
            v.scalar_text().map_or_else(|| v.kind().to_string(), |t| format!("`{t}`")),
            "write a number from 0 to 100; 50 is the default".to_string(),
        ),
    };
    doc.source()
        .diag(
            value_offset(doc, field),
            Severity::Error,
            "invalid-priority",
            format!("`priority` must be an unquoted whole number from 0 to 100, found {found}"),
        )
        .help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the files named `kept*`: answers them with their text upper-cased, and records what it was asked.
    #[derive(Default)]
    struct Keeps {
        asked: Vec<String>,
    }

    impl Memo for Keeps {
        fn memo<T: Clone + 'static>(
            &mut self,
            _: &'static str,
            file: SourceFile,
            diags: &mut Vec<Diagnostic>,
            parse: impl FnOnce(SourceFile, &mut Vec<Diagnostic>) -> Option<T>,
        ) -> Option<T> {
            self.asked.push(file.rel.clone());
            if file.rel.starts_with("kept") {
                let v: Box<dyn std::any::Any> = Box::new(Some(file.text.to_uppercase()));
                return v.downcast_ref::<Option<T>>().cloned().flatten();
            }
            parse(file, diags)
        }

        fn remembers(&self, _: &'static str, file: &SourceFile) -> bool {
            file.rel.starts_with("kept")
        }
    }

    #[test]
    fn memo_all_answers_in_order_and_parses_only_what_is_not_remembered() {
        let files: Vec<SourceFile> = ["kept1", "new1", "kept2", "new2", "new3"]
            .iter()
            .map(|n| SourceFile {
                rel: n.to_string(),
                text: format!("text of {n}"),
            })
            .collect();
        let parsed = std::sync::Mutex::new(Vec::new());
        let mut memo = Keeps::default();
        let mut diags = Vec::new();
        let out = memo.memo_all("pattern", files, &mut diags, |f, d| {
            parsed.lock().unwrap().push(f.rel.clone());
            d.push(Source::new(&f.rel, &f.text).diag(0, Severity::Warning, "x", f.rel.clone()));
            Some(f.text)
        });
        assert_eq!(
            out,
            [
                "TEXT OF KEPT1",
                "text of new1",
                "TEXT OF KEPT2",
                "text of new2",
                "text of new3"
            ]
            .map(|s| Some(s.to_string()))
        );
        let mut parsed = parsed.into_inner().unwrap();
        parsed.sort();
        assert_eq!(parsed, ["new1", "new2", "new3"]);
        // Each file went through the memo, in order, and the diagnostics came in file order.
        assert_eq!(memo.asked, ["kept1", "new1", "kept2", "new2", "new3"]);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["new1", "new2", "new3"]);
    }

    fn doc(text: &str) -> Document {
        let mut diags = Vec::new();
        let file = SourceFile {
            rel: "a.md".into(),
            text: text.into(),
        };
        parse_document(file, &ParseOptions::default(), true, &mut diags).expect("parses")
    }

    /// A document whose body is edited (a compiled plugin's rebased links) describes its new text: its headings,
    /// code blocks, links and stubs are those a parse of the new text finds.
    #[test]
    fn an_edited_body_is_described_by_its_document() {
        let text = "---\nname: a\n---\n# A\n\nSee [run](../scripts/run.sh) and [b](b.md).\n\n## Later\n\n[Content will be expanded in follow-up - this stub enables plugin loading]\n\n```sh\nx\n```\n\nSetext [c](../c.md)\n---\n";
        let mut edited = doc(text);
        let run = edited.links[0].range.clone();
        let c = edited.links[2].range.clone();
        let edits = vec![
            (run, "${CLAUDE_PLUGIN_ROOT}/scripts/run.sh".to_string()),
            (c, "../../much/longer/c.md".to_string()),
        ];
        edit_body(&mut edited, &edits);
        let fresh = doc(&edited.file.text);
        assert!(edited
            .file
            .text
            .contains("](${CLAUDE_PLUGIN_ROOT}/scripts/run.sh)"));
        assert_eq!(edited.headings, fresh.headings);
        assert_eq!(edited.code, fresh.code);
        assert_eq!(edited.links, fresh.links);
        assert_eq!(edited.inline_links, fresh.inline_links);
        assert_eq!(edited.stubs, fresh.stubs);
        assert_eq!(edited.stubs.len(), 1);
    }

    /// Each bullet form authors write, as (category, items); `None` for a bullet that cannot be read.
    #[test]
    fn expertise_bullet_forms() {
        type Read = Option<(&'static str, Vec<&'static str>)>;
        let cases: Vec<(&str, Read)> = vec![
            (
                "- **Caching**: LRU, LFU",
                Some(("Caching", vec!["LRU", "LFU"])),
            ),
            (
                "- **Caching:** LRU, LFU",
                Some(("Caching", vec!["LRU", "LFU"])),
            ),
            (
                "* **Caching** - LRU, LFU",
                Some(("Caching", vec!["LRU", "LFU"])),
            ),
            (
                "- **Sizing** - memory budgets",
                Some(("Sizing", vec!["memory budgets"])),
            ),
            ("- **Caching** — LRU", Some(("Caching", vec!["LRU"]))),
            ("- **Caching** – LRU", Some(("Caching", vec!["LRU"]))),
            (
                "- Monitoring: hit ratio, eviction metrics",
                Some(("Monitoring", vec!["hit ratio", "eviction metrics"])),
            ),
            (
                "- Monitoring - hit ratio",
                Some(("Monitoring", vec!["hit ratio"])),
            ),
            (
                "- Monitoring — hit ratio",
                Some(("Monitoring", vec!["hit ratio"])),
            ),
            (
                "- *Monitoring*: hit ratio",
                Some(("Monitoring", vec!["hit ratio"])),
            ),
            (
                "- Split-brain handling: fencing",
                Some(("Split-brain handling", vec!["fencing"])),
            ),
            ("- Deep knowledge of caches", None),
            ("- **Raft** consensus", None),
        ];
        for (line, expect) in cases {
            let d = doc(&format!(
                "---\nname: a\n---\n\n## Your Expertise\n\n{line}\n"
            ));
            let (cats, unread) = expertise(&d);
            let got = cats.first().map(|c| {
                (
                    c.name.as_str(),
                    c.items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                )
            });
            let want = expect.as_ref().map(|(c, i)| (*c, i.clone()));
            assert_eq!(got, want, "{line}");
            assert_eq!(unread.len(), usize::from(expect.is_none()), "{line}");
            // Every item's offset points at its text.
            for c in &cats {
                assert!(d.file.text[c.offset..].starts_with(&c.name), "{line}");
                for i in &c.items {
                    assert!(d.file.text[i.offset..].starts_with(&i.name), "{line}");
                }
            }
        }
    }

    #[test]
    fn expertise_nested_bullets_are_items() {
        let d = doc("---\nname: a\n---\n\n## Your Expertise\n\n- **Consensus**\n  - Raft\n  - **Paxos**\n- Storage:\n    - LSM trees, B-trees\n- **Ops**: alerts\n  - a note\n\nProse.\n");
        let (cats, unread) = expertise(&d);
        let got: Vec<(&str, Vec<&str>)> = cats
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.items.iter().map(|i| i.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("Consensus", vec!["Raft", "Paxos"]),
                ("Storage", vec!["LSM trees", "B-trees"]),
                ("Ops", vec!["alerts"]),
            ]
        );
        // A nested bullet under a category that already has items is not read.
        assert_eq!(unread.len(), 1);
        for c in &cats {
            for i in &c.items {
                assert!(d.file.text[i.offset..].starts_with(&i.name), "{}", i.name);
            }
        }
    }

    #[test]
    fn split_items_table() {
        for (input, expect) in [
            ("Paxos, Raft", vec![(0, "Paxos"), (7, "Raft")]),
            ("  a (x, y), b.", vec![(2, "a (x, y)"), (12, "b")]),
            ("", vec![]),
            ("a,,b", vec![(0, "a"), (3, "b")]),
        ] {
            assert_eq!(split_items(input), expect, "{input:?}");
        }
    }

    proptest::proptest! {
        /// The ASCII fast path changes nothing: the result is the definition's, letters and digits lowercased.
        #[test]
        fn normalize_keeps_lowercased_letters_and_digits(s in "(?s).{0,40}|[a-zA-Z0-9 ÀÉİßΣẞ_-]{0,40}") {
            let definition: String = s
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect();
            proptest::prop_assert_eq!(normalize(&s), definition);
        }
    }

    #[test]
    fn normalize_table() {
        for (a, b) in [
            ("Multi-Raft with Leader Leases", "multiraftwithleaderleases"),
            ("full-mesh limitations", "fullmeshlimitations"),
            ("Split brain", "splitbrain"),
            ("CRDTs", "crdts"),
        ] {
            assert_eq!(normalize(a), b);
        }
    }

    #[test]
    fn stubs_default_pattern_matches_both_forms() {
        let d = doc("---\nname: a\n---\n## A\n\n[Content will be expanded in follow-up - this stub enables plugin loading]\n\n[Content will be expanded with full details - this stub enables plugin loading]\n\n[Content will be expanded soon]\n");
        assert_eq!(d.stubs.len(), 2);
        assert_eq!(d.stubs[0].enclosing_level, 2);
    }

    #[test]
    fn examples_are_read() {
        let ex = examples("Use it. Examples:\n<example>\nContext: Ctx\nuser: \"Q?\"\nassistant: \"A.\"\n<commentary>\nWhy.\n</commentary>\n</example>");
        assert_eq!(
            ex,
            vec![Example {
                context: "Ctx".into(),
                user: "Q?".into(),
                assistant: "A.".into(),
                commentary: "Why.".into()
            }]
        );
    }

    #[test]
    fn skill_refs_in_text_not_in_code() {
        let d = doc("---\nname: a\n---\nSee `x` skill.\n\n```\nSee `y` skill\n```\n");
        let refs = text_skill_refs(&d);
        assert_eq!(
            refs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            vec!["x"]
        );
    }
}
