//! Emit prompt bundles: for an agent and a token budget, its system prompt with the expanded patterns packed by
//! priority so that the final text never exceeds the budget, and a manifest of what went in.
//!
//! Packing follows priompt: every pattern contributes a summary element (priority + 101, so all summaries rank
//! above all full pages) and a full element (its priority). Elements are totally ordered (priority, then the order
//! of the expansion plan), and a cutoff `k` takes the first `k`: a pattern is in full if its full element is taken,
//! as its summary if only that is, and left out otherwise. The search finds the largest `k` whose rendered text,
//! counted exactly, fits. Raising the budget can only raise `k`, so it never removes or downgrades a pattern.

use crate::expand::{
    plan_agent, render_agent, render_agent_with, render_pattern, Form, PatternKey, Plan,
};
use crate::parse::{Agent, Model, Pattern, Skill};
use crate::tokenize::Tokenizer;
use handlebars::Handlebars;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

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
}

impl Templates {
    /// Compiles the templates: `(name, source, where it came from)`. A template error names its file, line and column.
    pub fn new(sources: &[(String, String, String)]) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(escape_xml);
        for (name, source, origin) in sources {
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
        Ok(Templates { hb })
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

    fn render(&self, layout: Layout, data: &serde_json::Value) -> Result<String, String> {
        self.hb
            .render(layout.name(), data)
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

/// One pattern in a bundle's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatternEntry {
    pub skill: String,
    pub pattern: String,
    pub title: String,
    pub priority: u8,
    pub full_tokens: usize,
    /// `None` when the pattern has no summary.
    pub summary_tokens: Option<usize>,
    pub form: Form,
}

/// One bundle: its text and what went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bundle {
    pub budget: usize,
    /// Tokens of the final text.
    pub tokens: usize,
    /// Tokens of the agent's own text alone (every pattern left out).
    pub base_tokens: usize,
    pub patterns: Vec<PatternEntry>,
    #[serde(skip)]
    pub text: String,
}

/// Why a bundle could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// The agent's own text alone needs `minimum` tokens, more than the budget.
    TooSmall { minimum: usize, budget: usize },
    /// A template failed to render.
    Template(String),
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::TooSmall { minimum, budget } => write!(
                f,
                "the agent's own text needs {minimum} tokens, more than the budget of {budget}"
            ),
            BundleError::Template(e) => f.write_str(e),
        }
    }
}

/// Makes bundles, caching the token counts of pattern sections across agents and budgets.
pub struct Bundler<'m> {
    model: &'m Model,
    templates: &'m Templates,
    tokenizer: Tokenizer,
    layout: Layout,
    sections: RefCell<HashMap<SectionKey, (Rc<str>, usize)>>,
}

/// A pattern section: which pattern, at which heading level, in which form.
type SectionKey = (PatternKey, u8, Form);

/// An element of the packing order: one pattern in one form.
#[derive(Debug, Clone, Copy)]
struct Element {
    key: PatternKey,
    form: Form,
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
            sections: RefCell::new(HashMap::new()),
        }
    }

    pub fn tokenizer(&self) -> Tokenizer {
        self.tokenizer
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// A pattern's section as the markdown layout renders it, and its token count; rendered once per bundler.
    fn section(&self, key: PatternKey, level: u8, form: Form) -> (Rc<str>, usize) {
        if let Some(hit) = self.sections.borrow().get(&(key, level, form)) {
            return hit.clone();
        }
        let (skill, pattern) = key.get(self.model);
        let text: Rc<str> = render_pattern(skill, pattern, level, form, &anchor_link).into();
        let n = self.tokenizer.count(&text);
        self.sections
            .borrow_mut()
            .insert((key, level, form), (text.clone(), n));
        (text, n)
    }

    fn section_tokens(&self, key: PatternKey, level: u8, form: Form) -> usize {
        self.section(key, level, form).1
    }

    /// Bundles for every budget, sharing the work between them.
    pub fn bundles(
        &self,
        plugin: usize,
        agent: &Agent,
        budgets: &[usize],
    ) -> Vec<Result<Bundle, BundleError>> {
        let plan = plan_agent(self.model, plugin, agent);
        let order = self.order(plan.as_ref());
        let mut exact: HashMap<usize, (String, Option<usize>)> = HashMap::new();
        budgets
            .iter()
            .map(|&b| self.pack(agent, plan.as_ref(), &order, b, &mut exact))
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

    /// Every (pattern, form) element, highest priority first; ties in the plan's order.
    fn order(&self, plan: Option<&Plan>) -> Vec<Element> {
        let Some(plan) = plan else { return Vec::new() };
        let mut elements: Vec<(u16, usize, Element)> = Vec::new();
        for (pos, key) in plan.patterns().enumerate() {
            let (_, p) = key.get(self.model);
            if p.summary.is_some() {
                elements.push((
                    101 + p.priority as u16,
                    pos,
                    Element {
                        key,
                        form: Form::Summary,
                    },
                ));
            }
            elements.push((
                p.priority as u16,
                pos,
                Element {
                    key,
                    form: Form::Full,
                },
            ));
        }
        elements.sort_by_key(|(vp, pos, _)| (std::cmp::Reverse(*vp), *pos));
        elements.into_iter().map(|(_, _, e)| e).collect()
    }

    fn forms(order: &[Element], k: usize) -> HashMap<PatternKey, Form> {
        let mut forms = HashMap::new();
        for e in &order[..k] {
            let f = forms.entry(e.key).or_insert(Form::Omit);
            *f = (*f).max(e.form);
        }
        forms
    }

    fn render(
        &self,
        agent: &Agent,
        plan: Option<&Plan>,
        forms: &HashMap<PatternKey, Form>,
        budget: usize,
    ) -> Result<String, BundleError> {
        let form = |k: PatternKey| forms.get(&k).copied().unwrap_or(Form::Omit);
        let body = match plan {
            Some(plan) => {
                let section =
                    |k: PatternKey, f: Form| self.section(k, plan.level + 1, f).0.to_string();
                render_agent_with(self.model, agent, plan, &form, &section)
            }
            None => agent.doc.body().to_string(),
        };
        let instructions = match plan {
            Some(plan) => render_agent(self.model, agent, plan, &|_| Form::Omit, &anchor_link),
            None => body.clone(),
        };
        let mut patterns = Vec::new();
        if let Some(plan) = plan {
            for key in plan.patterns() {
                let f = form(key);
                let (skill, p) = key.get(self.model);
                let text = match f {
                    Form::Omit => continue,
                    Form::Full => p.doc.body().trim().to_string(),
                    Form::Summary => p.summary.clone().unwrap_or_default(),
                };
                patterns.push(serde_json::json!({
                    "name": p.slug,
                    "title": p.title,
                    "skill": skill.name,
                    "priority": p.priority,
                    "form": form_name(f),
                    "text": text.trim(),
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
            .render(self.layout, &data)
            .map_err(BundleError::Template)
    }

    fn pack(
        &self,
        agent: &Agent,
        plan: Option<&Plan>,
        order: &[Element],
        budget: usize,
        exact: &mut HashMap<usize, (String, Option<usize>)>,
    ) -> Result<Bundle, BundleError> {
        let n = order.len();
        // Renders the first k elements (once per agent) and counts them exactly, stopping past the budget.
        let measure = |k: usize,
                       exact: &mut HashMap<usize, (String, Option<usize>)>|
         -> Result<Option<usize>, BundleError> {
            if let Some((text, counted)) = exact.get_mut(&k) {
                return Ok(match *counted {
                    Some(t) => (t <= budget).then_some(t),
                    None => {
                        *counted = self.tokenizer.count_within(text, budget);
                        *counted
                    }
                });
            }
            let text = self.render(agent, plan, &Self::forms(order, k), budget)?;
            let t = self.tokenizer.count_within(&text, budget);
            exact.insert(k, (text, t));
            Ok(t)
        };
        let Some(base) = measure(0, exact)? else {
            return Err(BundleError::TooSmall {
                minimum: self.tokenizer.count(&exact[&0].0),
                budget,
            });
        };
        // A first guess from the sections' own counts, then exact counts around it.
        let level = plan.map(|p| p.level + 1).unwrap_or(3);
        let mut estimate = base;
        let mut guess = 0;
        let mut seen = std::collections::HashSet::new();
        for (i, e) in order.iter().enumerate() {
            let add = self.section_tokens(e.key, level, e.form);
            let replaced = match e.form {
                Form::Full if seen.contains(&e.key) => {
                    self.section_tokens(e.key, level, Form::Summary)
                }
                _ => 0,
            };
            seen.insert(e.key);
            estimate = (estimate + add).saturating_sub(replaced);
            if estimate > budget {
                break;
            }
            guess = i + 1;
        }
        let (mut lo, mut hi) = (0, n + 1); // measure(lo) fits; measure(hi) does not (n + 1 stands for "nothing more").
        if guess > 0 {
            if measure(guess, exact)?.is_some() {
                lo = guess;
            } else {
                hi = guess;
            }
        }
        if lo + 1 < hi && lo < n {
            if measure(lo + 1, exact)?.is_some() {
                lo += 1;
            } else {
                hi = lo + 1;
            }
        }
        while lo + 1 < hi && lo < n {
            let mid = (lo + hi) / 2;
            if mid > n {
                break;
            }
            if measure(mid, exact)?.is_some() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let k = lo.min(n);
        let tokens = measure(k, exact)?.unwrap_or(base);
        let text = exact[&k].0.clone();
        let forms = Self::forms(order, k);
        let mut patterns = Vec::new();
        if let Some(plan) = plan {
            for key in plan.patterns() {
                let (skill, p) = key.get(self.model);
                patterns.push(self.entry(
                    key,
                    skill,
                    p,
                    level,
                    forms.get(&key).copied().unwrap_or(Form::Omit),
                ));
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

    fn entry(
        &self,
        key: PatternKey,
        skill: &Skill,
        p: &Pattern,
        level: u8,
        form: Form,
    ) -> PatternEntry {
        PatternEntry {
            skill: skill.name.clone(),
            pattern: p.slug.clone(),
            title: p.title.clone(),
            priority: p.priority,
            full_tokens: self.section_tokens(key, level, Form::Full),
            summary_tokens: p
                .summary
                .as_ref()
                .map(|_| self.section_tokens(key, level, Form::Summary)),
            form,
        }
    }
}

fn form_name(f: Form) -> &'static str {
    match f {
        Form::Omit => "omit",
        Form::Summary => "summary",
        Form::Full => "full",
    }
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
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// The manifest of one agent's bundles.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub agent: String,
    pub plugin: String,
    pub tokenizer: TokenizerInfo,
    pub format: &'static str,
    pub bundles: Vec<ManifestBundle>,
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
                    "estimate: o200k count x {f}, rounded up; calibrated to err high, never low"
                )
            }),
        }
    }
}

/// One budget's entry in the manifest: the bundle, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestBundle {
    pub budget: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
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
    };
    let mut json = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    json.push('\n');
    files.push((format!("{dir}/manifest.json"), json.into_bytes()));
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
