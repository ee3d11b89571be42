//! Emit prompt bundles: for an agent and a token budget, its system prompt with the expanded patterns packed by
//! priority so that the final text never exceeds the budget, and a manifest of what went in.
//!
//! Packing follows priompt: the elements are each pattern's summary and the chunks of its sections, totally ordered
//! (summaries first, then chunks by value), and a cutoff `k` takes the first `k`. The search
//! finds the largest `k` whose rendered text, counted exactly, fits (with disclosure, whose every smaller cutoff fits
//! too). Raising the budget can only raise `k`, so it never removes or shortens anything. With disclosure (the
//! compiled agent) every pattern not taken whole names its page, and the summaries of the skills injected with the
//! agent are not elements: their SKILL.md says what each page is about.

use crate::expand::{
    cut_pattern, cut_pattern_body, plan_agent, plugin_root_link, plugin_root_path, render_agent,
    render_agent_with, Cut, Form, PatternKey, Plan, SectionKind,
};
use crate::parse::{Agent, Model, Pattern, Skill};
use crate::tokenize::Tokenizer;
use crate::HashMap;
use handlebars::Handlebars;
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};

pub mod rank;

/// The built-in bundle templates; `theme/bundle/<format>.hbs` next to book.toml overrides them.
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    ("markdown", include_str!("../../theme/bundle/markdown.hbs")),
    ("xml", include_str!("../../theme/bundle/xml.hbs")),
];

/// The layout of a bundle's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The agent's body with its stub expanded, as markdown.
    #[default]
    Markdown,
    /// `<agent><instructions>…</instructions><pattern name form>…</pattern></agent>`.
    Xml,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Markdown => "markdown",
            Layout::Xml => "xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Layout::Markdown => "md",
            Layout::Xml => "xml",
        }
    }
}

/// The compiled bundle templates.
pub struct Templates {
    hb: Handlebars<'static>,
    /// The templates that are `{{{body}}}` followed by text without any expression (the built-in `markdown`), with
    /// that text: they render as the body and the text, with no data to build (see [`Bundler::render`]).
    body_only: Vec<(String, String)>,
}

impl Templates {
    /// Compiles the templates: `(name, source, where it came from)`. A template error names its file, line and column.
    pub fn new(sources: &[(String, String, String)]) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(escape_xml);
        let mut body_only = Vec::new();
        for (name, source, origin) in sources {
            if let Some(rest) = source.strip_prefix("{{{body}}}") {
                if !rest.contains(['{', '}', '\\']) {
                    body_only.push((name.clone(), rest.to_string()));
                }
            }
            hb.register_template_string(name, source).map_err(|e| {
                let at = match e.pos() {
                    Some((l, c)) => format!("{origin}:{l}:{c}"),
                    _ => origin.clone(),
                };
                format!(
                    "{at}: bundle template `{name}` does not compile: {}",
                    e.reason()
                )
            })?;
        }
        Ok(Templates { hb, body_only })
    }

    /// The built-in templates.
    pub fn builtin() -> Self {
        let sources: Vec<(String, String, String)> = BUILTIN_TEMPLATES
            .iter()
            .map(|(n, s)| {
                (
                    n.to_string(),
                    s.to_string(),
                    format!("theme/bundle/{n}.hbs"),
                )
            })
            .collect();
        Templates::new(&sources).expect("built-in templates compile")
    }

    /// What the layout's template renders for `body` when the template is only `{{{body}}}` and text (see
    /// `body_only`), without building the data it does not use: a measured cutoff renders once per probe.
    fn render_body(&self, layout: Layout, body: &str) -> Option<String> {
        let (_, rest) = self.body_only.iter().find(|(n, _)| n == layout.name())?;
        let mut text = String::with_capacity(body.len() + rest.len());
        text.push_str(body);
        text.push_str(rest);
        Some(text)
    }

    /// Renders `data` with the layout's template. The data is handed over whole: handlebars would otherwise copy it
    /// (every pattern text of the bundle) into its own context first.
    fn render(&self, layout: Layout, data: serde_json::Value) -> Result<String, String> {
        self.hb
            .render_with_context(layout.name(), &handlebars::Context::from(data))
            .map_err(|e| format!("bundle template `{}` failed: {e}", layout.name()))
    }
}

/// Escapes text for XML attributes and content: `&`, `<`, `>` and `"`.
fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// One section of a pattern in a bundle's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionEntry {
    /// The heading's text; `null` for the text before the first heading.
    pub title: Option<String>,
    pub kind: SectionKind,
    /// The whole section's own count.
    pub tokens: usize,
    /// `full`, `partial` (its first blocks) or `omit`.
    pub form: Form,
    /// How many of its chunks went in, of how many (not in the manifest: `form` says it).
    pub chunks: (usize, usize),
}

/// One pattern in a bundle's manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternEntry {
    pub skill: String,
    pub pattern: String,
    pub title: String,
    pub priority: u8,
    /// BM25 relevance to the task of `--for` (0 when nothing matches); absent without a task.
    pub relevance: Option<f64>,
    /// The pattern's own count in full: its title, summary and every section.
    pub full_tokens: usize,
    /// `None` when the pattern has no summary.
    pub summary_tokens: Option<usize>,
    pub form: Form,
    /// Whether its summary went in (not in the manifest: `form` says it).
    pub with_summary: bool,
    /// The pattern's own count as it went in (0 when left out).
    pub tokens: usize,
    pub sections: Vec<SectionEntry>,
}

/// One bundle: its text and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub budget: usize,
    /// Tokens of the final text.
    pub tokens: usize,
    /// Tokens of the agent's own text alone (every pattern left out).
    pub base_tokens: usize,
    pub patterns: Vec<PatternEntry>,
    pub text: String,
}

/// Why a bundle could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// The agent's own text alone needs `minimum` tokens, more than the budget.
    TooSmall { minimum: usize, budget: usize },
    /// A template failed to render.
    Template(String),
    /// The task text of `--for` has nothing to rank by.
    Task(String),
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::TooSmall { minimum, budget } => write!(
                f,
                "the agent's own text needs {minimum} tokens, more than the budget of {budget}"
            ),
            BundleError::Template(e) => f.write_str(e),
            BundleError::Task(e) => write!(f, "--for: {e}"),
        }
    }
}

/// A pattern prepared for packing: its body cut into sections and chunks, and the token counts of every piece.
struct Prepared {
    cut: Cut,
    /// The title line's count.
    title_tokens: usize,
    /// The summary paragraph's count (0 without a summary).
    summary_tokens: usize,
    /// Per section: the heading line's count and each chunk's count, plus one for the blank line after each.
    sections: Vec<(usize, Vec<usize>)>,
    /// Per section: the whole section's own count.
    totals: Vec<usize>,
}

/// How links between patterns are written in a bundle.
pub type PatternLink = fn(&Skill, &Pattern, Option<&str>) -> String;

/// Makes bundles, caching the cut pattern pages and their token counts across agents and budgets. It can be shared
/// between threads (its caches are locked).
pub struct Bundler<'m> {
    model: &'m Model,
    templates: &'m Templates,
    tokenizer: Tokenizer,
    layout: Layout,
    /// How links between patterns are written.
    link: PatternLink,
    /// Progressive disclosure (the compiled agent): every pattern that does not go in whole names its full page,
    /// and those left out still appear, as their title and that pointer.
    disclosure: bool,
    prepared: Mutex<HashMap<(PatternKey, At), Arc<Prepared>>>,
    /// Exact counts of rendered patterns: (pattern, where, what went in) -> tokens.
    counts: Mutex<HashMap<(PatternKey, At, Pick), usize>>,
}

/// The memo behind a lock; a poisoned lock (a panic elsewhere) still holds good values, all pure.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The paragraph before the patterns of a compiled agent that has shortened ones: what the pointers are for.
pub const DISCLOSURE_PREAMBLE: &str =
    "The patterns below are cut to fit this prompt. Each one that is shortened \
or left out names its full page: read that file when a task needs more than what is here.";

/// What of one pattern goes in: its summary, and how many chunks of each section.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
struct Pick {
    summary: bool,
    chunks: Vec<usize>,
}

impl Pick {
    fn form(&self, all: &[usize], has_summary: bool) -> Form {
        let taken: usize = self.chunks.iter().sum();
        if taken == 0 {
            return if self.summary && has_summary {
                Form::Summary
            } else {
                Form::Omit
            };
        }
        if self.chunks.as_slice() == all && (self.summary || !has_summary) {
            Form::Full
        } else {
            Form::Partial
        }
    }
}

/// An element of the packing order: a pattern's summary, or one chunk of one of its sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    key: PatternKey,
    /// `None` for the summary; else (section, chunk).
    chunk: Option<(usize, usize)>,
}

/// Where a pattern is rendered: the heading level of its title, and whether it belongs to another plugin than the
/// agent's (with disclosure, its pages are then the copies in the agent's plugin, see [`foreign_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct At {
    level: u8,
    foreign: bool,
    /// With disclosure: its skill is injected into the subagent with its index (`skills:` of the compiled agent), so
    /// its summary is left out of the prompt (see [`crate::emit::plugin::injected_skills`]).
    indexed: bool,
}

impl At {
    /// Whether the pattern's summary is one of the elements here.
    fn has_summary(&self, p: &Pattern) -> bool {
        p.summary.is_some() && !self.indexed
    }
}

/// What an agent's bundles are packed from, shared by its budgets.
struct Packing<'a> {
    plan: Option<&'a Plan>,
    level: u8,
    /// The agent's plugin, with disclosure (whose pointers depend on it).
    home: Option<usize>,
    /// With disclosure, the cutoffs that complete a pattern (its pointer goes), ascending.
    completions: Vec<usize>,
    /// With disclosure, the skills injected with the agent, whose summaries its index holds: (plugin, skill).
    indexed: Vec<(usize, usize)>,
    order: Vec<Element>,
    /// Whether a task ranks the patterns.
    task: bool,
    relevance: HashMap<PatternKey, f64>,
    /// Rendered texts by cutoff, with their exact count if it was within the budget it was counted for.
    exact: HashMap<usize, (String, Option<usize>)>,
    /// Estimated counts by cutoff, less the agent's own text ([`Bundler::pieces`]).
    pieces: Vec<usize>,
    /// Each pattern's rendered section, with nothing of it taken and by pick ([`Bundler::render_pick`]).
    texts: std::cell::RefCell<PatternTexts>,
}

/// Rendered sections of the patterns of one agent's packing: with nothing taken, and by what was taken.
type PatternTexts = HashMap<PatternKey, (Option<Arc<str>>, HashMap<Pick, Arc<str>>)>;

impl Packing<'_> {
    fn at(&self, key: PatternKey) -> At {
        At {
            level: self.level,
            foreign: self.home.is_some_and(|h| h != key.plugin),
            indexed: self.indexed.contains(&(key.plugin, key.skill)),
        }
    }
}

impl<'m> Bundler<'m> {
    pub fn new(
        model: &'m Model,
        templates: &'m Templates,
        tokenizer: Tokenizer,
        layout: Layout,
    ) -> Self {
        Bundler {
            model,
            templates,
            tokenizer,
            layout,
            link: anchor_link,
            disclosure: false,
            prepared: Mutex::new(HashMap::default()),
            counts: Mutex::new(HashMap::default()),
        }
    }

    /// The bundler of the compiled plugin's agents: markdown, links between patterns to their pages in the plugin
    /// (`${CLAUDE_PLUGIN_ROOT}/skills/<skill>/references/<pattern>.md`), and a pointer to the full page of every
    /// pattern that does not go in whole. `model` is the model whose pattern links are rebased for `agents/`.
    pub fn for_plugin(model: &'m Model, templates: &'m Templates, tokenizer: Tokenizer) -> Self {
        Bundler {
            link: plugin_root_link,
            disclosure: true,
            ..Bundler::new(model, templates, tokenizer, Layout::Markdown)
        }
    }

    pub fn tokenizer(&self) -> Tokenizer {
        self.tokenizer
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// A pattern cut for a section at heading `level`, with its counts; made once per bundler.
    fn prepared(&self, key: PatternKey, at: At) -> Arc<Prepared> {
        // The cut and counts do not depend on whether the summary is an element.
        let at = At {
            indexed: false,
            ..at
        };
        let hit = lock(&self.prepared).get(&(key, at)).cloned();
        if let Some(hit) = hit {
            return hit;
        }
        let level = at.level;
        let (skill, pattern) = key.get(self.model);
        let cut = if at.foreign {
            // Its links to its siblings lead to their copies; its other links, to files of a plugin the agent's
            // plugin does not carry, keep their text only.
            let plugin = &self.model.plugins[key.plugin].name;
            let body = crate::links::unlink(pattern.doc.body(), &|d| {
                d.starts_with("${CLAUDE_PLUGIN_ROOT}")
            });
            let link = |s: &Skill, p: &Pattern, f: Option<&str>| {
                format!(
                    "{}{}",
                    crate::links::plugin_root(&foreign_page(plugin, s, p)),
                    f.map(|f| format!("#{f}")).unwrap_or_default()
                )
            };
            cut_pattern_body(skill, &body, level, &link)
        } else {
            cut_pattern(skill, pattern, level, &self.link)
        };
        let t = self.tokenizer;
        let sections = (0..cut.sections.len())
            .map(|s| {
                let sec = &cut.sections[s];
                let heading = sec
                    .heading
                    .as_ref()
                    .map(|h| t.count(&cut.text[h.clone()]) + 1)
                    .unwrap_or(0);
                let chunks = sec
                    .chunks
                    .iter()
                    .map(|c| t.count(&cut.text[c.clone()]) + 1)
                    .collect();
                (heading, chunks)
            })
            .collect();
        let totals = (0..cut.sections.len())
            .map(|s| t.count(&cut.section_text(s, usize::MAX).unwrap_or_default()))
            .collect();
        let prepared = Arc::new(Prepared {
            totals,
            title_tokens: t.count(&format!("{} {}\n\n", hashes(level), pattern.title)),
            summary_tokens: pattern
                .summary
                .as_deref()
                .map(|s| t.count(s.trim()) + 1)
                .unwrap_or(0),
            sections,
            cut,
        });
        // Another thread may have made it meanwhile: the same value (a pure function of the pattern), kept once.
        lock(&self.prepared)
            .entry((key, at))
            .or_insert(prepared)
            .clone()
    }

    /// One pattern as a section at heading `level`, with what `pick` takes of it; with disclosure, a pattern not
    /// taken whole ends with the path of its full page.
    fn render_pick(&self, key: PatternKey, at: At, pick: &Pick) -> String {
        let (skill, pattern) = key.get(self.model);
        let prepared = self.prepared(key, at);
        let mut out = format!("{} {}\n\n", hashes(at.level), pattern.title);
        let body = pick_body(&prepared.cut, pattern, pick);
        out.push_str(&body);
        if self.disclosure
            && pick.form(&prepared.cut.chunk_counts(), at.has_summary(pattern)) != Form::Full
        {
            if !body.is_empty() {
                out.push_str("\n\n");
            }
            let page = if at.foreign {
                crate::links::plugin_root(&foreign_page(
                    &self.model.plugins[key.plugin].name,
                    skill,
                    pattern,
                ))
            } else {
                plugin_root_path(skill, pattern)
            };
            out.push_str(&format!("Full page: `{page}`"));
        }
        out.push('\n');
        out
    }

    /// The exact count of a pattern's section as `pick` takes it.
    fn pick_tokens(&self, key: PatternKey, at: At, pick: &Pick) -> usize {
        let id = (key, at, pick.clone());
        let hit = lock(&self.counts).get(&id).copied();
        if let Some(n) = hit {
            return n;
        }
        let n = self.tokenizer.count(&self.render_pick(key, at, pick));
        lock(&self.counts).insert(id, n);
        n
    }

    /// Bundles for every budget, sharing the work between them.
    pub fn bundles(
        &self,
        plugin: usize,
        agent: &Agent,
        budgets: &[usize],
    ) -> Vec<Result<Bundle, BundleError>> {
        self.bundles_for(plugin, agent, budgets, None)
    }

    /// Bundles for every budget; with a task, the patterns most relevant to it go in first (see [`rank`]).
    pub fn bundles_for(
        &self,
        plugin: usize,
        agent: &Agent,
        budgets: &[usize],
        task: Option<&str>,
    ) -> Vec<Result<Bundle, BundleError>> {
        if let Some(Err(e)) = task.map(rank::check_task) {
            return budgets
                .iter()
                .map(|_| Err(BundleError::Task(e.clone())))
                .collect();
        }
        let plan = plan_agent(self.model, plugin, agent);
        let level = plan.as_ref().map(|p| p.level + 1).unwrap_or(3);
        let relevance = match (task, plan.as_ref()) {
            (Some(task), Some(plan)) => rank::relevance(self.model, plan, task)
                .into_iter()
                .collect(),
            _ => HashMap::default(),
        };
        let mut packing = Packing {
            plan: plan.as_ref(),
            level,
            home: self.disclosure.then_some(plugin),
            completions: Vec::new(),
            indexed: if self.disclosure {
                crate::emit::plugin::injected_skills(self.model, plugin, agent)
            } else {
                Vec::new()
            },
            order: Vec::new(),
            task: task.is_some(),
            relevance,
            exact: HashMap::default(),
            pieces: Vec::new(),
            texts: Default::default(),
        };
        packing.order = self.order(&packing);
        packing.pieces = self.pieces(&packing);
        if self.disclosure {
            let mut last: HashMap<PatternKey, usize> = HashMap::default();
            for (i, e) in packing.order.iter().enumerate() {
                last.insert(e.key, i + 1);
            }
            let mut completions: Vec<usize> = last.into_values().collect();
            completions.sort_unstable();
            packing.completions = completions;
        }
        budgets
            .iter()
            .map(|&b| self.pack(agent, &mut packing, b))
            .collect()
    }

    /// One bundle.
    pub fn bundle(
        &self,
        plugin: usize,
        agent: &Agent,
        budget: usize,
    ) -> Result<Bundle, BundleError> {
        self.bundles(plugin, agent, &[budget]).remove(0)
    }

    /// The packing order. First every summary (highest priority first, or most relevant first for a task): the agent
    /// learns a little about every topic before it learns everything about one. Then the chunks of the sections.
    /// Without a task, sections go by value: the pattern's priority times the section kind's weight (a checklist of
    /// a priority-80 pattern, 8000, before the practice section of a priority-90 one, 5400); with a task, the
    /// relevant patterns go whole, most relevant first, their sections by kind weight, and the rest follow by value.
    /// Chunks of a section stay together and in order; every tie is broken by the plan's order, so the order is
    /// total and deterministic.
    fn order(&self, packing: &Packing) -> Vec<Element> {
        let Some(plan) = packing.plan else {
            return Vec::new();
        };
        let task = packing.task;
        let rel = |k: &PatternKey| packing.relevance.get(k).copied().unwrap_or(0.0);
        // (tier, major, minor, position, section, chunk); smaller sorts first.
        type Key = (u8, u64, u64, usize, usize, usize);
        let mut keyed: Vec<(Key, Element)> = Vec::new();
        for (pos, key) in plan.patterns().enumerate() {
            let (_, p) = key.get(self.model);
            let prio = p.priority as u64;
            // Relevance as an integer that sorts: higher first.
            let r = (rel(&key) * 1e6).round().max(0.0) as u64;
            if packing.at(key).has_summary(p) {
                let k = if task {
                    (0, u64::MAX - r, 100 - prio, pos, 0, 0)
                } else {
                    (0, 100 - prio, 0, pos, 0, 0)
                };
                keyed.push((k, Element { key, chunk: None }));
            }
            let prepared = self.prepared(key, packing.at(key));
            for (s, sec) in prepared.cut.sections.iter().enumerate() {
                let w = sec.kind.weight() as u64;
                for c in 0..sec.chunks.len() {
                    let k = if task && r > 0 {
                        (1, u64::MAX - r, 100 - w, pos, s, c)
                    } else {
                        (2, 100 * 100 - prio * w, 100 - w, pos, s, c)
                    };
                    keyed.push((
                        k,
                        Element {
                            key,
                            chunk: Some((s, c)),
                        },
                    ));
                }
            }
        }
        keyed.sort_by_key(|(k, _)| *k);
        keyed.into_iter().map(|(_, e)| e).collect()
    }

    /// A pick of nothing of a pattern.
    fn nothing(&self, key: PatternKey, at: At) -> Pick {
        Pick {
            summary: false,
            chunks: vec![0; self.prepared(key, at).cut.sections.len()],
        }
    }

    /// What the first `k` elements take of each pattern.
    fn picks(&self, packing: &Packing, k: usize) -> HashMap<PatternKey, Pick> {
        let mut picks: HashMap<PatternKey, Pick> = HashMap::default();
        for e in &packing.order[..k] {
            let pick = picks.entry(e.key).or_insert_with(|| Pick {
                summary: false,
                chunks: vec![0; self.prepared(e.key, packing.at(e.key)).cut.sections.len()],
            });
            match e.chunk {
                None => pick.summary = true,
                Some((s, _)) => pick.chunks[s] += 1,
            }
        }
        picks
    }

    fn render(
        &self,
        agent: &Agent,
        packing: &Packing,
        picks: &HashMap<PatternKey, Pick>,
        budget: usize,
    ) -> Result<String, BundleError> {
        let plan = packing.plan;
        let form = |k: PatternKey| match picks.get(&k) {
            None => Form::Omit,
            Some(p) if p.chunks.iter().all(|&n| n == 0) && !p.summary => Form::Omit,
            Some(_) => Form::Partial,
        };
        // With disclosure every pattern is rendered: those left out as their title and the path of their page.
        let shown = |k: PatternKey| {
            if self.disclosure {
                Form::Partial
            } else {
                form(k)
            }
        };
        let body = match plan {
            Some(plan) => {
                // Each pattern's section as rendered for a pick, kept for the agent: most patterns are taken alike
                // at the cutoffs the search measures.
                let section = |k: PatternKey, _: Form, out: &mut String| {
                    let mut texts = packing.texts.borrow_mut();
                    let (none, by_pick) = texts.entry(k).or_default();
                    let text = match picks.get(&k) {
                        Some(pick) => {
                            if !by_pick.contains_key(pick) {
                                let text = self.render_pick(k, packing.at(k), pick);
                                by_pick.insert(pick.clone(), text.into());
                            }
                            &by_pick[pick]
                        }
                        None => none.get_or_insert_with(|| {
                            self.render_pick(k, packing.at(k), &self.nothing(k, packing.at(k)))
                                .into()
                        }),
                    };
                    out.push_str(text);
                };
                let shortened = self.disclosure
                    && plan.patterns().any(|k| {
                        let (_, p) = k.get(self.model);
                        let all = self.prepared(k, packing.at(k)).cut.chunk_counts();
                        picks
                            .get(&k)
                            .map(|x| x.form(&all, packing.at(k).has_summary(p)))
                            != Some(Form::Full)
                    });
                let preamble = shortened.then_some(DISCLOSURE_PREAMBLE);
                render_agent_with(self.model, agent, plan, &shown, &section, preamble)
            }
            None => agent.doc.body().to_string(),
        };
        if let Some(text) = self.templates.render_body(self.layout, body.trim_end()) {
            return Ok(text);
        }
        let instructions = match plan {
            Some(plan) => render_agent(self.model, agent, plan, &|_| Form::Omit, &self.link),
            None => body.clone(),
        };
        let mut patterns = Vec::new();
        if let Some(plan) = plan {
            for key in plan.patterns() {
                let Some(pick) = picks.get(&key).filter(|_| form(key) != Form::Omit) else {
                    continue;
                };
                let (skill, p) = key.get(self.model);
                let cut = &self.prepared(key, packing.at(key)).cut;
                let f = pick.form(&cut.chunk_counts(), packing.at(key).has_summary(p));
                patterns.push(serde_json::json!({
                    "name": p.slug,
                    "title": p.title,
                    "skill": skill.name,
                    "priority": p.priority,
                    "form": form_name(f),
                    "text": pick_body(cut, p, pick).trim(),
                }));
            }
        }
        let data = serde_json::json!({
            "agent": {
                "name": agent.name,
                "description": agent.description,
                "model": agent.model,
            },
            "body": body.trim_end(),
            "instructions": instructions.trim(),
            "patterns": patterns,
            "budget": budget,
            "tokenizer": self.tokenizer.name(),
        });
        self.templates
            .render(self.layout, data)
            .map_err(BundleError::Template)
    }

    /// Renders the first `k` elements (once per agent) and counts them exactly, stopping past the budget.
    fn measure(
        &self,
        agent: &Agent,
        packing: &mut Packing,
        k: usize,
        budget: usize,
    ) -> Result<Option<usize>, BundleError> {
        if let Some((text, counted)) = packing.exact.get_mut(&k) {
            return Ok(match *counted {
                Some(t) => (t <= budget).then_some(t),
                None => {
                    *counted = self.tokenizer.count_within(text, budget);
                    *counted
                }
            });
        }
        let picks = self.picks(packing, k);
        let text = self.render(agent, packing, &picks, budget)?;
        let t = self.tokenizer.count_within(&text, budget);
        packing.exact.insert(k, (text, t));
        Ok(t)
    }

    /// Whether every cutoff up to `k` fits `budget`. Taking an element only adds text, except with disclosure, where
    /// the element that completes a pattern also drops its pointer line, so the text can get shorter: the cutoffs
    /// `d - 1` just before each completion `d <= k` are the only ones that can be longer than `k`, and they are
    /// checked too. So the predicate is monotone in `k` (true up to some cutoff, false after) and in the budget, and
    /// the search below finds, for a larger budget, never a smaller cutoff.
    fn fits_prefix(
        &self,
        agent: &Agent,
        packing: &mut Packing,
        k: usize,
        budget: usize,
    ) -> Result<bool, BundleError> {
        if self.measure(agent, packing, k, budget)?.is_none() {
            return Ok(false);
        }
        let dips: Vec<usize> = packing
            .completions
            .iter()
            .copied()
            .take_while(|&d| d <= k)
            .collect();
        for d in dips {
            if self.measure(agent, packing, d - 1, budget)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn pack(
        &self,
        agent: &Agent,
        packing: &mut Packing,
        budget: usize,
    ) -> Result<Bundle, BundleError> {
        let n = packing.order.len();
        // With disclosure, a pattern left out costs its title and pointer, which can be more than small patterns in
        // whole, and the preamble goes too: everything may fit where less does.
        if self.disclosure && n > 0 && self.measure(agent, packing, n, budget)?.is_some() {
            let base = self.measure(agent, packing, 0, usize::MAX)?.unwrap_or(0);
            return self.finish(agent, packing, n, budget, base);
        }
        if !self.fits_prefix(agent, packing, 0, budget)? {
            let base = self.tokenizer.count(&packing.exact[&0].0);
            if self.disclosure && n > 0 {
                let whole = self.tokenizer.count(&packing.exact[&n].0);
                return Err(BundleError::TooSmall {
                    minimum: base.min(whole),
                    budget,
                });
            }
            return Err(BundleError::TooSmall {
                minimum: base,
                budget,
            });
        }
        let base = self.measure(agent, packing, 0, budget)?.unwrap_or(0);
        // A first guess from the pieces' own counts, then exact counts around it. The largest cutoff whose
        // estimate, corrected by `err` (a measured count less its estimate), fits:
        let predict = |pieces: &[usize], err: i64| {
            pieces
                .partition_point(|&p| (base + p) as i64 + err <= budget as i64)
                .saturating_sub(1)
                .min(n)
        };
        let guess = predict(&packing.pieces, 0);
        // Invariant: cutoff `lo` fits; cutoff `hi` does not (`n + 1` stands for "nothing more to take"). The guess
        // is measured; when it fits, its error corrects the estimate for a second guess, which is usually the
        // answer. Then gallop away from what is known, and bisect.
        let (mut lo, mut hi) = (0, n + 1);
        if guess > 0 && !self.fits_prefix(agent, packing, guess, budget)? {
            hi = guess;
            let mut step = 1;
            while hi > lo + step {
                let probe = hi - step;
                if self.fits_prefix(agent, packing, probe, budget)? {
                    lo = probe;
                    break;
                }
                hi = probe;
                step *= 2;
            }
        } else {
            lo = guess;
            if let Some(t) = self.measure(agent, packing, lo, budget)? {
                let err = t as i64 - (base + packing.pieces[lo]) as i64;
                let second = predict(&packing.pieces, err);
                if second > lo {
                    if self.fits_prefix(agent, packing, second, budget)? {
                        lo = second;
                    } else {
                        hi = second;
                    }
                }
            }
            let mut step = 1;
            while lo + step < hi {
                if lo + step <= n && self.fits_prefix(agent, packing, lo + step, budget)? {
                    lo += step;
                    step *= 2;
                } else {
                    hi = lo + step;
                    break;
                }
            }
        }
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            if mid <= n && self.fits_prefix(agent, packing, mid, budget)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let k = lo.min(n);
        self.finish(agent, packing, k, budget, base)
    }

    /// The estimated count of each cutoff less the agent's own text, from the pieces' own counts (`k` from 0 to
    /// `n`, never decreasing): each element's chunk, the heading of a section when its first chunk goes in, and
    /// without disclosure the title when a pattern's first element does.
    fn pieces(&self, packing: &Packing) -> Vec<usize> {
        let mut out = Vec::with_capacity(packing.order.len() + 1);
        let mut sum = 0;
        out.push(sum);
        let mut present: HashMap<PatternKey, Vec<bool>> = HashMap::default();
        for e in &packing.order {
            let prepared = self.prepared(e.key, packing.at(e.key));
            let seen = present.entry(e.key).or_default();
            if seen.is_empty() {
                seen.resize(prepared.sections.len() + 1, false);
                // With disclosure the title is in the base already.
                if !self.disclosure {
                    sum += prepared.title_tokens;
                }
            }
            match e.chunk {
                None => sum += prepared.summary_tokens,
                Some((s, c)) => {
                    if !seen[s + 1] {
                        seen[s + 1] = true;
                        sum += prepared.sections[s].0;
                    }
                    sum += prepared.sections[s].1[c];
                }
            }
            out.push(sum);
        }
        out
    }

    /// The bundle of the first `k` elements, which fit `budget`.
    fn finish(
        &self,
        agent: &Agent,
        packing: &mut Packing,
        k: usize,
        budget: usize,
        base: usize,
    ) -> Result<Bundle, BundleError> {
        let tokens = self.measure(agent, packing, k, budget)?.unwrap_or(base);
        let text = packing.exact[&k].0.clone();
        let picks = self.picks(packing, k);
        let mut patterns = Vec::new();
        if let Some(plan) = packing.plan {
            for key in plan.patterns() {
                patterns.push(self.entry(key, packing, picks.get(&key)));
            }
        }
        Ok(Bundle {
            budget,
            tokens,
            base_tokens: base,
            patterns,
            text,
        })
    }

    fn entry(&self, key: PatternKey, packing: &Packing, pick: Option<&Pick>) -> PatternEntry {
        let (skill, p) = key.get(self.model);
        let level = packing.at(key);
        let prepared = self.prepared(key, level);
        let all = prepared.cut.chunk_counts();
        let has_summary = level.has_summary(p);
        let full = Pick {
            summary: has_summary,
            chunks: all.clone(),
        };
        let summary = Pick {
            summary: true,
            chunks: vec![0; all.len()],
        };
        let none = Pick {
            summary: false,
            chunks: vec![0; all.len()],
        };
        let pick = pick.unwrap_or(&none);
        let form = pick.form(&all, has_summary);
        let full_tokens = self.pick_tokens(key, level, &full);
        let summary_tokens = has_summary.then(|| self.pick_tokens(key, level, &summary));
        let tokens = match form {
            Form::Omit => 0,
            Form::Full => full_tokens,
            Form::Summary => summary_tokens.unwrap_or(0),
            Form::Partial => self.pick_tokens(key, level, pick),
        };
        let sections = prepared
            .cut
            .sections
            .iter()
            .enumerate()
            .map(|(s, sec)| {
                let taken = pick.chunks.get(s).copied().unwrap_or(0);
                SectionEntry {
                    title: sec.title.clone(),
                    kind: sec.kind,
                    tokens: prepared.totals[s],
                    form: if taken == 0 {
                        Form::Omit
                    } else if taken == sec.chunks.len() {
                        Form::Full
                    } else {
                        Form::Partial
                    },
                    chunks: (taken, sec.chunks.len()),
                }
            })
            .collect();
        PatternEntry {
            skill: skill.name.clone(),
            pattern: p.slug.clone(),
            title: p.title.clone(),
            priority: p.priority,
            relevance: packing
                .task
                .then(|| round3(packing.relevance.get(&key).copied().unwrap_or(0.0))),
            full_tokens,
            summary_tokens,
            form,
            with_summary: pick.summary && has_summary,
            tokens,
            sections,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A pattern's text under its title as `pick` takes it: the summary, then the taken chunks of each section.
fn pick_body(cut: &Cut, pattern: &Pattern, pick: &Pick) -> String {
    let mut parts: Vec<String> = Vec::new();
    if pick.summary {
        if let Some(s) = &pattern.summary {
            parts.push(s.trim().to_string());
        }
    }
    for (s, &n) in pick.chunks.iter().enumerate() {
        if let Some(t) = cut.section_text(s, n) {
            parts.push(t);
        }
    }
    parts.join("\n\n")
}

fn hashes(level: u8) -> String {
    "#".repeat(level.clamp(1, 6) as usize)
}

fn form_name(f: Form) -> &'static str {
    match f {
        Form::Omit => "omit",
        Form::Summary => "summary",
        Form::Partial => "partial",
        Form::Full => "full",
    }
}

/// Where the compiled plugin of an agent carries the page of a pattern of another plugin (`plugin`) that the agent
/// includes, relative to the agent's plugin: `references/<plugin>/<skill folder>/<pattern>.md`. An installed plugin
/// is a copy of its own folder, so a plugin agent can read only its own plugin's files.
pub fn foreign_page(plugin: &str, skill: &Skill, pattern: &Pattern) -> String {
    format!("references/{plugin}/{}/{}.md", skill.dir_name, pattern.slug)
}

/// In a bundle every pattern is inline: links between patterns become in-document anchors of their titles.
fn anchor_link(_: &Skill, pattern: &Pattern, _: Option<&str>) -> String {
    format!("#{}", slug(&pattern.title))
}

/// A GitHub-style heading anchor.
pub fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() => Some(c),
            ' ' | '-' => Some('-'),
            '_' => Some('_'),
            _ => None,
        })
        .collect()
}

/// The version of the manifest's JSON schema (`manifest.json`, `bundle --format json`).
pub const MANIFEST_SCHEMA_VERSION: u32 = 2;

/// The manifest of one agent's bundles.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub schema_version: u32,
    pub agent: String,
    pub plugin: String,
    pub tokenizer: TokenizerInfo,
    pub format: &'static str,
    pub bundles: Vec<ManifestBundle>,
    /// The size of the agent's system prompt in the compiled plugin (for the site; not part of manifest.json).
    pub compiled: Option<crate::emit::plugin::PromptSize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenizerInfo {
    pub name: &'static str,
    pub exact: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TokenizerInfo {
    pub fn of(t: Tokenizer) -> Self {
        TokenizerInfo {
            name: t.name(),
            exact: t.exact(),
            factor: t.factor(),
            note: t.factor().map(|f| {
                format!(
                    "estimate for {}: o200k count x {f}, rounded up; calibrated to err high for English prose, markdown and code",
                    t.models().unwrap_or("Claude")
                )
            }),
        }
    }
}

impl Manifest {
    /// The manifest as `manifest.json` holds it (schema 2): what each pattern is, once, then per budget what of
    /// each went in. `text` adds the bundle's text to a one-budget manifest (`bundle --format json`).
    pub fn to_json(&self, text: Option<&str>) -> String {
        // What a pattern is does not depend on the budget: it is taken from the first bundle that was made.
        let patterns = self
            .bundles
            .iter()
            .find(|b| b.error.is_none())
            .map(|b| b.patterns.iter().map(PatternJson::of).collect())
            .unwrap_or_default();
        let json = ManifestJson {
            schema_version: self.schema_version,
            agent: &self.agent,
            plugin: &self.plugin,
            tokenizer: &self.tokenizer,
            format: self.format,
            patterns,
            bundles: self
                .bundles
                .iter()
                .map(|b| BundleJson {
                    budget: b.budget,
                    file: b.file.as_deref(),
                    tokens: b.tokens,
                    base_tokens: b.base_tokens,
                    error: b.error.as_deref(),
                    patterns: b
                        .patterns
                        .iter()
                        .map(|p| PickJson {
                            form: p.form,
                            tokens: p.tokens,
                            sections: if p.form == Form::Partial {
                                p.sections.iter().map(|s| s.form).collect()
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                    text: text.filter(|_| b.error.is_none()),
                })
                .collect(),
        };
        let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// `manifest.json` (schema 2), borrowed from a [`Manifest`].
#[derive(Serialize)]
struct ManifestJson<'a> {
    schema_version: u32,
    agent: &'a str,
    plugin: &'a str,
    tokenizer: &'a TokenizerInfo,
    format: &'a str,
    patterns: Vec<PatternJson<'a>>,
    bundles: Vec<BundleJson<'a>>,
}

/// What one pattern is: listed once per manifest, in plan order.
#[derive(Serialize)]
struct PatternJson<'a> {
    skill: &'a str,
    pattern: &'a str,
    title: &'a str,
    priority: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    relevance: Option<f64>,
    full_tokens: usize,
    summary_tokens: Option<usize>,
    sections: Vec<SectionJson<'a>>,
}

impl<'a> PatternJson<'a> {
    fn of(p: &'a PatternEntry) -> Self {
        PatternJson {
            skill: &p.skill,
            pattern: &p.pattern,
            title: &p.title,
            priority: p.priority,
            relevance: p.relevance,
            full_tokens: p.full_tokens,
            summary_tokens: p.summary_tokens,
            sections: p
                .sections
                .iter()
                .map(|s| SectionJson {
                    title: s.title.as_deref(),
                    kind: s.kind,
                    tokens: s.tokens,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct SectionJson<'a> {
    title: Option<&'a str>,
    kind: SectionKind,
    tokens: usize,
}

/// One budget: the bundle, or why there is none.
#[derive(Serialize)]
struct BundleJson<'a> {
    budget: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    patterns: Vec<PickJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// What of one pattern went into one bundle, in the order of the manifest's `patterns`.
#[derive(Serialize)]
struct PickJson {
    form: Form,
    tokens: usize,
    /// Each section's form, in page order, when the pattern went in `partial`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sections: Vec<Form>,
}

/// One budget's entry in the manifest: the bundle, or why there is none.
#[derive(Debug, Clone)]
pub struct ManifestBundle {
    pub budget: usize,
    pub file: Option<String>,
    pub tokens: Option<usize>,
    pub base_tokens: Option<usize>,
    pub error: Option<String>,
    pub patterns: Vec<PatternEntry>,
}

impl ManifestBundle {
    pub fn of(budget: usize, result: &Result<Bundle, BundleError>, file: Option<String>) -> Self {
        match result {
            Ok(b) => ManifestBundle {
                budget,
                file,
                tokens: Some(b.tokens),
                base_tokens: Some(b.base_tokens),
                error: None,
                patterns: b.patterns.clone(),
            },
            Err(e) => ManifestBundle {
                budget,
                file: None,
                tokens: None,
                base_tokens: None,
                error: Some(e.to_string()),
                patterns: Vec::new(),
            },
        }
    }
}

/// Adds `bundles/<agent>/<budget>.md` and `bundles/<agent>/manifest.json` for every agent and budget; returns the
/// manifests (for the site) and the agents and budgets whose own text did not fit.
pub fn emit(
    bundler: &Bundler,
    budgets: &[usize],
    out: &mut crate::write::OutputTree,
) -> (Vec<Manifest>, Vec<Skipped>) {
    let mut manifests = Vec::new();
    let mut failures = Vec::new();
    for (pi, plugin) in bundler.model.plugins.iter().enumerate() {
        for agent in &plugin.agents {
            let made = agent_files(bundler, pi, agent, budgets);
            out.extend(made.files);
            manifests.push(made.manifest);
            failures.extend(made.failures);
        }
    }
    (manifests, failures)
}

/// A bundle that could not be made: the agent (as shown) and why.
pub type Skipped = (String, BundleError);

/// What the bundle stage makes of one agent.
#[derive(Debug, Clone)]
pub struct AgentBundles {
    /// Its bundle files and manifest, as (path in the output, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// The manifest, typed: what the site's bundles pages show.
    pub manifest: Manifest,
    /// The budgets its own text did not fit.
    pub failures: Vec<Skipped>,
}

/// One agent's bundle files and manifest.
pub fn agent_files(bundler: &Bundler, pi: usize, agent: &Agent, budgets: &[usize]) -> AgentBundles {
    let plugin = &bundler.model.plugins[pi];
    let dir = if plugin.namespaced {
        format!("bundles/{}/{}", plugin.name, agent.doc.file.stem())
    } else {
        format!("bundles/{}", agent.doc.file.stem())
    };
    let results = bundler.bundles(pi, agent, budgets);
    let mut files = Vec::new();
    let mut failures = Vec::new();
    let mut entries = Vec::new();
    for (&budget, result) in budgets.iter().zip(&results) {
        let file = format!("{budget}.{}", bundler.layout.extension());
        match result {
            Ok(b) => {
                files.push((format!("{dir}/{file}"), b.text.clone().into_bytes()));
                entries.push(ManifestBundle::of(budget, result, Some(file)));
            }
            Err(e) => {
                failures.push((plugin.display(&agent.name), e.clone()));
                entries.push(ManifestBundle::of(budget, result, None));
            }
        }
    }
    let manifest = Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        agent: plugin.display(&agent.name),
        plugin: plugin.name.clone(),
        tokenizer: TokenizerInfo::of(bundler.tokenizer),
        format: bundler.layout.name(),
        bundles: entries,
        compiled: None,
    };
    files.push((
        format!("{dir}/manifest.json"),
        manifest.to_json(None).into_bytes(),
    ));
    AgentBundles {
        files,
        manifest,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_table() {
        for (t, s) in [
            ("Raft", "raft"),
            ("CAP trade-offs", "cap-trade-offs"),
            ("Last-writer-wins (LWW)", "last-writer-wins-lww"),
            (
                "project-learnings.md template",
                "project-learningsmd-template",
            ),
        ] {
            assert_eq!(slug(t), s);
        }
    }

    #[test]
    fn xml_escape() {
        assert_eq!(
            escape_xml(r#"a<b & "c">"#),
            "a&lt;b &amp; &quot;c&quot;&gt;"
        );
    }

    #[test]
    fn a_body_only_template_renders_as_handlebars_does() {
        let body = "# Agent\n\nText with {{braces}}, <xml> & \"quotes\".\n\n```\ncode\n```";
        let sources = [
            ("markdown", "{{{body}}}\n"),
            ("xml", "{{{body}}}\n\n---\nfooter\n"),
        ];
        let templates = Templates::new(
            &sources
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string(), format!("{n}.hbs")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for layout in [Layout::Markdown, Layout::Xml] {
            let fast = templates.render_body(layout, body).expect("body-only");
            let slow = templates
                .render(layout, serde_json::json!({ "body": body }))
                .unwrap();
            assert_eq!(fast, slow);
        }
        let builtin = Templates::builtin();
        assert!(builtin.render_body(Layout::Markdown, body).is_some());
        assert!(builtin.render_body(Layout::Xml, body).is_none());
        // Any other expression after the body takes the template path.
        let other = Templates::new(&[(
            "markdown".into(),
            "{{{body}}}\n{{budget}}\n".into(),
            "markdown.hbs".into(),
        )])
        .unwrap();
        assert!(other.render_body(Layout::Markdown, body).is_none());
    }

    #[test]
    fn template_errors_are_located() {
        let err = Templates::new(&[(
            "markdown".into(),
            "line one\n{{#each x}}\n".into(),
            "theme/bundle/markdown.hbs".into(),
        )])
        .err()
        .unwrap();
        assert!(err.starts_with("theme/bundle/markdown.hbs:"), "{err}");
    }
}
