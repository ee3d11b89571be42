//! Emit the compiled plugin: every file of the source plugin, byte for byte with its mode, except those skillbook
//! transforms: agents with their stubs expanded, skills with their patterns as references, commands and manifests,
//! with frontmatter rewritten as strict YAML that decodes to the same values.
//!
//! The plugin is made of units that the engine remembers separately: the manifests and commands
//! ([`Compiler::meta`]), each agent ([`Agents::agent`]), each skill ([`Compiler::skill`]) and the copied files
//! ([`copies`]). [`emit`] is all of them.
//!
//! A compiled agent follows Claude Code's progressive disclosure: its stub expands to its bundle at the agent budget
//! (`agent-budget`), every pattern that does not fit whole names its full page
//! (`${CLAUDE_PLUGIN_ROOT}/skills/<skill>/references/<pattern>.md`), and its frontmatter lists its skills in
//! `skills:`, which Claude Code injects into the subagent when it starts.

use crate::emit::bundle::{BundleError, Bundler, Templates};
use crate::expand::{plan_agent, render_skill, Form, OwnReference};
use crate::frontmatter::{to_strict_yaml, Value};
use crate::parse::{Agent, Command, Document, Model, Plugin, Skill};
use crate::tokenize::Tokenizer;
use crate::write::OutputTree;

/// Output files as (path in the output, bytes).
pub type Files = Vec<(String, Vec<u8>)>;

/// Adds the compiled plugin under `prefix` (normally `plugin/`): every unit of it, its agents at the default agent
/// budget. Returns each agent's outcome, in the model's order (plugin by plugin): the size of its compiled prompt, or
/// why it does not fit (its files are then left out).
pub fn emit(
    model: &Model,
    prefix: &str,
    out: &mut OutputTree,
) -> Vec<Result<PromptSize, AgentError>> {
    emit_with(model, AgentSettings::default(), prefix, out)
}

/// [`emit`], its agents made with `settings`.
pub fn emit_with(
    model: &Model,
    settings: AgentSettings,
    prefix: &str,
    out: &mut OutputTree,
) -> Vec<Result<PromptSize, AgentError>> {
    let compiler = Compiler::new(model);
    let agents = compiler.agents(settings);
    let mut outcomes = Vec::new();
    out.extend(compiler.meta(prefix));
    for (pi, plugin) in model.plugins.iter().enumerate() {
        for agent in &plugin.agents {
            outcomes.push(agents.agent(pi, agent, prefix).map(|a| {
                out.insert(a.path, a.bytes);
                out.extend(a.pages);
                a.prompt
            }));
        }
        for skill in &plugin.skills {
            out.extend(compiler.skill(pi, skill, prefix));
        }
    }
    copies(model, prefix, out);
    outcomes
}

/// How the compiled plugin's agents are made: the token budget of each one's system prompt (its markdown body) and
/// the tokenizer that counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSettings {
    pub budget: usize,
    pub tokenizer: Tokenizer,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            budget: crate::config::DEFAULT_AGENT_BUDGET as usize,
            tokenizer: Tokenizer::default(),
        }
    }
}

impl AgentSettings {
    pub fn of(config: &crate::config::Config) -> Self {
        AgentSettings {
            budget: config.agent_budget as usize,
            tokenizer: config.tokenizer,
        }
    }
}

/// A compiled agent: its file, and the size of its system prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledAgent {
    /// Its path in the output.
    pub path: String,
    pub bytes: Vec<u8>,
    pub prompt: PromptSize,
    /// The pages of the patterns of other plugins' skills that it includes, copied into its own plugin where its
    /// pointers lead (see [`foreign_skills`]).
    pub pages: Files,
}

/// The size of a compiled agent's system prompt (its body: what Claude Code sends each time it starts the subagent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptSize {
    /// Its count in `tokenizer`.
    pub tokens: usize,
    pub bytes: usize,
    pub tokenizer: Tokenizer,
    /// The budget it was packed for; `None` when there was nothing to pack (no stub, or no patterns to expand it).
    pub budget: Option<usize>,
    /// Patterns in full, partly (some sections), as their summary, and left out (title and pointer only).
    pub full: usize,
    pub partial: usize,
    pub summary: usize,
    pub omitted: usize,
}

/// An agent whose own text (with a pointer to each pattern page) does not fit the agent budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    /// The agent as shown.
    pub agent: String,
    /// Tokens of its smallest compiled form; 0 when the error is not about size.
    pub minimum: usize,
    pub budget: usize,
    /// Patterns that get a pointer in that smallest form.
    pub patterns: usize,
    /// A failure other than size (a template), as text.
    pub other: Option<String>,
}

/// What compiling an agent or a skill needs to know about the whole plugin: where every file goes, so that links
/// in texts that move are rebased, and the patterns as agents include them.
pub struct Compiler<'m> {
    model: &'m Model,
    dests: Dests,
    /// The model with pattern links rebased for `agents/`, when any needs it.
    for_agents: Option<Model>,
    /// The built-in bundle templates: a compiled agent is the built-in markdown layout, whatever the book overrides.
    templates: Templates,
}

/// Compiles agents: a [`Compiler`] with the bundler of their system prompts, shared by every agent (and thread).
pub struct Agents<'c> {
    compiler: &'c Compiler<'c>,
    bundler: Bundler<'c>,
    settings: AgentSettings,
}

impl<'m> Compiler<'m> {
    pub fn new(model: &'m Model) -> Self {
        let dests = Dests::new(model);
        let for_agents = agent_model(model, &dests);
        Compiler {
            model,
            dests,
            for_agents,
            templates: Templates::builtin(),
        }
    }

    /// The agent compiler for `settings`.
    pub fn agents<'c>(&'c self, settings: AgentSettings) -> Agents<'c>
    where
        'm: 'c,
    {
        let model: &'c Model = self.for_agents.as_ref().unwrap_or(self.model);
        Agents {
            compiler: self,
            bundler: Bundler::for_plugin(model, &self.templates, settings.tokenizer),
            settings,
        }
    }

    /// A hash of where the targets of the relative links of `docs` go in the compiled plugin (and whether they
    /// exist): what, besides their own text, decides how their links are rebased.
    pub fn links_key<'d>(&self, docs: impl IntoIterator<Item = &'d Document>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for doc in docs {
            let dir = crate::links::parent(&doc.file.rel);
            for link in &doc.links {
                let target = crate::links::join(dir, &link.path);
                let dest = target.as_deref().and_then(|t| self.dests.dest_of(t));
                (target, dest).hash(&mut h);
            }
        }
        h.finish()
    }

    /// [`Compiler::links_key`] of what a compiled agent includes: the agent and the patterns of its skills.
    pub fn agent_links_key(&self, pi: usize, agent: &Agent) -> u64 {
        let skills = self.model.agent_skills(pi, agent);
        self.links_key(
            std::iter::once(&agent.doc).chain(
                skills
                    .iter()
                    .flat_map(|&k| self.model.skill(k).patterns.iter().map(|p| &p.doc)),
            ),
        )
    }

    /// [`Compiler::links_key`] of a skill's SKILL.md and patterns.
    pub fn skill_links_key(&self, skill: &Skill) -> u64 {
        self.links_key(
            skill
                .doc
                .iter()
                .chain(skill.patterns.iter().map(|p| &p.doc)),
        )
    }

    /// The marketplace manifest, each plugin's manifest and its commands: everything but agents, skills and copies.
    pub fn meta(&self, prefix: &str) -> Files {
        let model = self.model;
        let mut out = Files::new();
        if let Some(m) = &model.marketplace {
            out.push((
                format!("{prefix}{}", m.rel),
                json_bytes(&serde_json::Value::Object(m.json.clone())),
            ));
        }
        for plugin in &model.plugins {
            let rel_base = base(plugin, "");
            let base = base(plugin, prefix);
            out.push((
                format!("{base}.claude-plugin/plugin.json"),
                json_bytes(&serde_json::Value::Object(manifest(plugin))),
            ));
            for command in &plugin.commands {
                let dest = command_dest(plugin, command);
                let body = self.dests.rebase(
                    command.doc.body(),
                    &command.doc.file.rel,
                    &format!("{rel_base}{dest}"),
                );
                out.push((
                    format!("{base}{dest}"),
                    command_document(&command.doc, &body),
                ));
            }
        }
        out
    }

    /// [`Compiler::links_key`] of every command.
    pub fn command_links_key(&self) -> u64 {
        self.links_key(
            self.model
                .plugins
                .iter()
                .flat_map(|p| p.commands.iter().map(|c| &c.doc)),
        )
    }

    /// A skill's compiled files: its SKILL.md and a reference per pattern, under `prefix`.
    pub fn skill(&self, pi: usize, skill: &Skill, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let plugin = &self.model.plugins[pi];
        let dir = format!("{}{}", base(plugin, prefix), skill_dest(skill));
        let out_dir = format!("{}{}", base(plugin, ""), skill_dest(skill));
        let mut files = Vec::new();
        if let (Some(doc), Some(body)) =
            (&skill.doc, render_skill(skill, &self.own_references(skill)))
        {
            let body = self
                .dests
                .rebase(&body, &doc.file.rel, &format!("{out_dir}SKILL.md"));
            files.push((
                format!("{dir}SKILL.md"),
                completed_document(doc, &skill.dir_name, "skill", &body),
            ));
        }
        for p in &skill.patterns {
            let body = self.dests.rebase(
                p.doc.body(),
                &p.doc.file.rel,
                &format!("{out_dir}references/{}.md", p.slug),
            );
            files.push((
                format!("{dir}references/{}.md", p.slug),
                format!("# {}\n\n{}\n", p.title, body.trim()).into_bytes(),
            ));
        }
        files
    }
}

impl AgentError {
    /// The build's error for agents that do not fit the agent budget: where the budget is set (book.toml's
    /// `agent-budget`, with its line and column, or the default), what each agent needs, and what to do.
    pub fn report(errors: &[AgentError], config: &crate::config::Config) -> String {
        let t = config.tokenizer;
        let unit = if t.exact() {
            t.name().to_string()
        } else {
            format!("{}, an estimate", t.name())
        };
        let budget = config.agent_budget;
        let book = match config.book_dir() {
            Some(d) => format!("{}", crate::config::clean(&d.join("book.toml")).display()),
            None => "book.toml".to_string(),
        };
        let (head, set) = match &config.agent_budget_at {
            Some(at) => (
                format!("{at}: `agent-budget = {budget}` is too small"),
                format!("raise `agent-budget` under [preprocessor.skillbook] in {book}"),
            ),
            None => (
                if budget == crate::config::DEFAULT_AGENT_BUDGET {
                    format!("the default agent budget ({budget} tokens) is too small")
                } else {
                    format!("the agent budget ({budget} tokens) is too small")
                },
                match config.book_dir() {
                    Some(_) => format!("set `agent-budget` under [preprocessor.skillbook] in {book}"),
                    None => "set `agent-budget` under [preprocessor.skillbook] in a book.toml that names the content (`content = \"DIR\"`)".to_string(),
                },
            ),
        };
        let mut msg = head;
        let mut most = 0;
        for e in errors {
            match &e.other {
                Some(other) => msg.push_str(&format!("\n  agent `{}`: {other}", e.agent)),
                None => {
                    most = most.max(e.minimum);
                    msg.push_str(&format!(
                        "\n  agent `{}` needs at least {} tokens ({unit}): its own text, and its {} patterns each at least as a pointer to its page",
                        e.agent, e.minimum, e.patterns
                    ));
                }
            }
        }
        msg.push_str(&format!(
            "\n  = help: {set} to at least {most}, or shorten the agent's own text (the compiled agent is its own text, then as much of its patterns as the budget holds)"
        ));
        msg
    }
}

impl Agents<'_> {
    /// The compiled agent under `prefix`: its stub expanded to its bundle at the agent budget, with a pointer to the
    /// full page of each pattern that is not in whole, and its skills in `skills:`. An agent without a stub, or
    /// without patterns to expand it with, keeps its body. An agent whose own text and pointers do not fit the budget
    /// is an error.
    pub fn agent(
        &self,
        pi: usize,
        agent: &Agent,
        prefix: &str,
    ) -> Result<CompiledAgent, AgentError> {
        let compiler = self.compiler;
        let plugin = &compiler.model.plugins[pi];
        let path = format!("{}{}", base(plugin, prefix), agent_dest(&agent.doc));
        // Its body is a system prompt: its own links to files of the plugin become `${CLAUDE_PLUGIN_ROOT}/...` paths
        // (others are rebased for `agents/`, where an agent from a custom path moves).
        let moved = compiler.dests.prompt_agent(
            agent,
            &format!("{}{}", base(plugin, ""), agent_dest(&agent.doc)),
            &base(plugin, ""),
        );
        let agent = moved.as_ref().unwrap_or(agent);
        let tokenizer = self.settings.tokenizer;
        let model = self.bundler_model();
        let plan = plan_agent(model, pi, agent);
        let (body, prompt) = match &plan {
            None => {
                let body = agent
                    .doc
                    .body()
                    .trim_start_matches(['\n', '\r'])
                    .to_string();
                let prompt = PromptSize {
                    tokens: tokenizer.count(body.trim()),
                    bytes: body.trim().len(),
                    tokenizer,
                    budget: None,
                    full: 0,
                    partial: 0,
                    summary: 0,
                    omitted: 0,
                };
                (body, prompt)
            }
            Some(plan) => {
                let budget = self.settings.budget;
                let result = self.bundler.bundles(pi, agent, &[budget]).remove(0);
                let bundle = result.map_err(|e| AgentError {
                    agent: plugin.display(&agent.name),
                    minimum: match &e {
                        BundleError::TooSmall { minimum, .. } => *minimum,
                        _ => 0,
                    },
                    budget,
                    patterns: plan.patterns().count(),
                    other: match &e {
                        BundleError::TooSmall { .. } => None,
                        e => Some(e.to_string()),
                    },
                })?;
                let count = |f: Form| bundle.patterns.iter().filter(|p| p.form == f).count();
                let prompt = PromptSize {
                    tokens: bundle.tokens,
                    bytes: bundle.text.trim().len(),
                    tokenizer,
                    budget: Some(budget),
                    full: count(Form::Full),
                    partial: count(Form::Partial),
                    summary: count(Form::Summary),
                    omitted: count(Form::Omit),
                };
                (format!("{}\n", bundle.text.trim_end()), prompt)
            }
        };
        let skills = skills_field(compiler.model, pi, agent);
        let pages = match plan {
            Some(_) => compiler.foreign_pages(pi, agent, prefix),
            None => Files::new(),
        };
        Ok(CompiledAgent {
            path,
            bytes: completed_document_with(&agent.doc, &agent.name, "agent", &body, skills),
            prompt,
            pages,
        })
    }

    fn bundler_model(&self) -> &Model {
        self.compiler
            .for_agents
            .as_ref()
            .unwrap_or(self.compiler.model)
    }
}

/// The skills of its own plugin that Claude Code injects into a compiled agent when it starts: those its `skills:`
/// lists (as compiled) that have a SKILL.md. Their compiled SKILL.md indexes their pages, so the
/// agent's prompt leaves their summaries to it. Another plugin's skill is not counted: that plugin may not be
/// installed, and the agent's plugin carries only its pages.
pub fn injected_skills(model: &Model, pi: usize, agent: &Agent) -> Vec<(usize, usize)> {
    let names: Vec<String> = match skills_field(model, pi, agent) {
        Some(Value::List(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => match agent.doc.frontmatter.get("skills").map(|f| &f.value) {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            _ => Vec::new(),
        },
    };
    let mut out = Vec::new();
    for n in names {
        if let Some(k) = model.resolve_skill(pi, &n) {
            let skill = model.skill(k);
            if k.0 == pi && skill.has_skill_md && skill.doc.is_some() && !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// The `skills:` of a compiled agent when it must change: the skills of its frontmatter as written, then those it
/// names in its text (``See `x` skill``) that resolve to a skill none of the others resolves to, in order. `None`
/// when the text adds nothing (the frontmatter's value is kept as it is).
fn skills_field(model: &Model, pi: usize, agent: &Agent) -> Option<Value> {
    let listed = agent.doc.frontmatter.get("skills").map(|f| &f.value);
    let mut names: Vec<String> = match listed {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        Some(_) => return None,
        None => Vec::new(),
    };
    let mut resolved: Vec<(usize, usize)> = names
        .iter()
        .filter_map(|n| model.resolve_skill(pi, n))
        .collect();
    let before = names.len();
    let in_text = agent.skill_refs.iter().filter(|r| {
        agent
            .doc
            .frontmatter
            .get("skills")
            .is_none_or(|f| !f.region.contains(&r.offset))
    });
    for r in in_text {
        let Some(k) = model.resolve_skill(pi, &r.name) else {
            continue;
        };
        if resolved.contains(&k) || names.contains(&r.name) {
            continue;
        }
        resolved.push(k);
        names.push(r.name.clone());
    }
    (names.len() > before).then(|| Value::List(names.into_iter().map(Value::String).collect()))
}

/// The skills of other plugins (in a marketplace, `plugin:skill`) whose patterns an agent with a stub includes. An
/// installed plugin is a copy of its own folder (Claude Code caches each plugin on its own, and a path that leaves
/// the plugin's folder does not resolve), so the agent's plugin carries their pages: under
/// `references/<plugin>/<skill>/` ([`crate::emit::bundle::foreign_page`]), where its pointers lead.
pub fn foreign_skills(model: &Model, pi: usize, agent: &Agent) -> Vec<(usize, usize)> {
    if agent.doc.stubs.is_empty() {
        return Vec::new();
    }
    model
        .agent_skills(pi, agent)
        .into_iter()
        .filter(|&(p, _)| p != pi)
        .collect()
}

impl Compiler<'_> {
    /// The copies of the pages of other plugins' patterns that an agent of plugin `pi` includes ([`foreign_skills`]),
    /// under `prefix`. A page's links to its sibling patterns lead to their copies; its other relative links, to files
    /// the agent's plugin does not carry, keep their text only.
    pub fn foreign_pages(&self, pi: usize, agent: &Agent, prefix: &str) -> Files {
        let model = self.model;
        let plugin = &model.plugins[pi];
        let mut out = Files::new();
        for (fp, fs) in foreign_skills(model, pi, agent) {
            let owner = &model.plugins[fp].name;
            let skill = &model.plugins[fp].skills[fs];
            let copies: crate::HashMap<&str, String> = skill
                .patterns
                .iter()
                .map(|p| {
                    (
                        p.doc.file.rel.as_str(),
                        format!(
                            "{}{}",
                            base(plugin, ""),
                            crate::emit::bundle::foreign_page(owner, skill, p)
                        ),
                    )
                })
                .collect();
            for p in &skill.patterns {
                let dest = &copies[p.doc.file.rel.as_str()];
                let (src_dir, out_dir) = (
                    crate::links::parent(&p.doc.file.rel),
                    crate::links::parent(dest),
                );
                let body =
                    crate::links::rebase_doc(&p.doc, src_dir, out_dir, &|t| copies.get(t).cloned());
                let carried: crate::HashSet<&str> = copies.values().map(|c| c.as_str()).collect();
                let dangling: crate::HashSet<String> = crate::links::relative_links(&body)
                    .into_iter()
                    .filter(|l| {
                        !l.path.is_empty()
                            && !crate::links::join(out_dir, &l.path)
                                .is_some_and(|t| carried.contains(t.as_str()))
                    })
                    .map(|l| l.dest)
                    .collect();
                let body = crate::links::unlink(&body, &|d| dangling.contains(d));
                out.push((
                    format!("{prefix}{dest}"),
                    format!("# {}\n\n{}\n", p.title, body.trim()).into_bytes(),
                ));
            }
        }
        out
    }

    /// The files of a skill's own `references/` folder (carried over as they are), for its SKILL.md's index.
    pub fn own_references(&self, skill: &Skill) -> Vec<OwnReference> {
        own_reference_files(self.model, skill)
            .map(|f| {
                let path = &f.rel[skill.dir.len() + 1..];
                OwnReference::new(path, &f.bytes)
            })
            .collect()
    }
}

/// The files of a skill's own `references/` folder among the files the compiled plugin copies.
pub fn own_reference_files<'m>(
    model: &'m Model,
    skill: &'m Skill,
) -> impl Iterator<Item = &'m crate::load::RawFile> + 'm {
    let prefix = format!("{}/references/", skill.dir);
    model
        .copies
        .iter()
        .filter(move |f| f.rel.starts_with(&prefix))
}

/// Where each source file is in the compiled plugin, for rebasing links of texts that move.
struct Dests {
    files: crate::HashMap<String, String>,
    /// Source folders that hold files, with where they go.
    dirs: crate::HashMap<String, String>,
}

impl Dests {
    fn new(model: &Model) -> Self {
        let mut files = crate::HashMap::default();
        let mut dirs = crate::HashMap::default();
        for (dest, source) in layout(model) {
            let Some(source) = source else { continue };
            let (mut s, mut d) = (crate::links::parent(&source), crate::links::parent(&dest));
            while !s.is_empty() && !dirs.contains_key(s) {
                dirs.insert(s.to_string(), d.to_string());
                (s, d) = (crate::links::parent(s), crate::links::parent(d));
            }
            files.entry(source).or_insert(dest);
        }
        Dests { files, dirs }
    }

    fn dest_of(&self, target: &str) -> Option<String> {
        self.files
            .get(target)
            .or_else(|| self.dirs.get(target))
            .cloned()
    }

    /// An agent as its compiled body has it, `out` the path of its compiled file in the plugin at `plugin_base`: its
    /// links to files of the plugin written `${CLAUDE_PLUGIN_ROOT}/<path>` (a system prompt has no folder for a
    /// relative path to start from), other links rebased for `out` (an agent at a custom path moves to `agents/`);
    /// the offsets of its stubs, headings and code blocks follow the edits. `None` when no link changes.
    fn prompt_agent(&self, agent: &Agent, out: &str, plugin_base: &str) -> Option<Agent> {
        let doc = &agent.doc;
        let (src_dir, out_dir) = (
            crate::links::parent(&doc.file.rel),
            crate::links::parent(out),
        );
        let edits =
            crate::links::plugin_root_edits(doc.body(), src_dir, out_dir, plugin_base, &|t| {
                self.dest_of(t)
            });
        if edits.is_empty() {
            return None;
        }
        let mut moved = agent.clone();
        crate::parse::edit_body(&mut moved.doc, &edits);
        Some(moved)
    }

    /// `text`, written in the source file `src`, with its relative links rebased for the output file `out`.
    fn rebase(&self, text: &str, src: &str, out: &str) -> String {
        let (src_dir, out_dir) = (crate::links::parent(src), crate::links::parent(out));
        crate::links::rebase(text, src_dir, out_dir, &|t| self.dest_of(t))
    }
}

/// The model with each pattern's links as a compiled agent of its plugin includes them: to a file of the plugin,
/// `${CLAUDE_PLUGIN_ROOT}/<path>`; elsewhere, rebased for the `agents/` folder. `None` when no link needs it. Links
/// to a sibling pattern are left as written: the bundler points them at the sibling's page
/// (`${CLAUDE_PLUGIN_ROOT}/skills/<skill>/references/<pattern>.md`), which the agent can read.
fn agent_model(model: &Model, dests: &Dests) -> Option<Model> {
    let mut changed = false;
    let mut clone: Option<Model> = None;
    for (pi, plugin) in model.plugins.iter().enumerate() {
        let agents_dir = format!("{}agents/x.md", base(plugin, ""));
        for (si, skill) in plugin.skills.iter().enumerate() {
            let siblings: crate::HashSet<&str> = skill
                .patterns
                .iter()
                .map(|p| p.doc.file.rel.as_str())
                .collect();
            for (ti, p) in skill.patterns.iter().enumerate() {
                let body = p.doc.body();
                let (src_dir, out_dir) = (
                    crate::links::parent(&p.doc.file.rel),
                    crate::links::parent(&agents_dir),
                );
                let edits = crate::links::plugin_root_edits(
                    body,
                    src_dir,
                    out_dir,
                    &base(plugin, ""),
                    &|t| {
                        if siblings.contains(t) {
                            None
                        } else {
                            dests.dest_of(t)
                        }
                    },
                );
                // A link's new destination is never the one written (`links::edits_for`): no edit, no change.
                if edits.is_empty() {
                    continue;
                }
                changed = true;
                let m = clone.get_or_insert_with(|| model.clone());
                crate::parse::edit_body(&mut m.plugins[pi].skills[si].patterns[ti].doc, &edits);
            }
        }
    }
    if changed {
        clone
    } else {
        None
    }
}

/// Adds the files the compiled plugin carries as they are ([`Model::copies`]): same bytes, same mode.
pub fn copies(model: &Model, prefix: &str, out: &mut OutputTree) {
    for f in &model.copies {
        out.insert_with_mode(
            format!("{prefix}{}", copy_dest(model, &f.rel)),
            f.bytes.clone(),
            f.mode,
        );
    }
}

/// Every path of the compiled plugin (relative to its folder) with the source file it is made from, in emit order;
/// `None` for a manifest skillbook makes. Two entries with one path are a clash (see `check`).
pub fn layout(model: &Model) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    if let Some(m) = &model.marketplace {
        out.push((m.rel.clone(), Some(m.rel.clone())));
    }
    for (pi, plugin) in model.plugins.iter().enumerate() {
        let base = base(plugin, "");
        out.push((
            format!("{base}.claude-plugin/plugin.json"),
            plugin.manifest.as_ref().map(|m| m.rel.clone()),
        ));
        for agent in &plugin.agents {
            out.push((
                format!("{base}{}", agent_dest(&agent.doc)),
                Some(agent.doc.file.rel.clone()),
            ));
        }
        // The pages of other plugins' patterns its agents include, once each.
        let mut carried = std::collections::BTreeSet::new();
        for agent in &plugin.agents {
            carried.extend(foreign_skills(model, pi, agent));
        }
        for (fp, fs) in carried {
            let skill = &model.plugins[fp].skills[fs];
            for p in &skill.patterns {
                out.push((
                    format!(
                        "{base}{}",
                        crate::emit::bundle::foreign_page(&model.plugins[fp].name, skill, p)
                    ),
                    Some(p.doc.file.rel.clone()),
                ));
            }
        }
        for command in &plugin.commands {
            out.push((
                format!("{base}{}", command_dest(plugin, command)),
                Some(command.doc.file.rel.clone()),
            ));
        }
        for skill in &plugin.skills {
            let dir = format!("{base}{}", skill_dest(skill));
            if let Some(doc) = &skill.doc {
                out.push((format!("{dir}SKILL.md"), Some(doc.file.rel.clone())));
            }
            for p in &skill.patterns {
                out.push((
                    format!("{dir}references/{}.md", p.slug),
                    Some(p.doc.file.rel.clone()),
                ));
            }
        }
    }
    for f in &model.copies {
        out.push((copy_dest(model, &f.rel), Some(f.rel.clone())));
    }
    out
}

/// Where a copied file goes: a file inside a skill's folder goes with the skill (which may have come from a custom
/// manifest path) to `skills/<folder>/`; every other file keeps its path.
pub fn copy_dest(model: &Model, rel: &str) -> String {
    for plugin in &model.plugins {
        for skill in &plugin.skills {
            if let Some(rest) = rel.strip_prefix(&format!("{}/", skill.dir)) {
                return format!("{}{}{rest}", base(plugin, ""), skill_dest(skill));
            }
        }
    }
    rel.to_string()
}

/// The plugin's folder under `prefix`, with a trailing `/` (or `prefix` itself for the root plugin).
fn base(plugin: &Plugin, prefix: &str) -> String {
    if plugin.dir.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}{}/", plugin.dir)
    }
}

fn agent_dest(doc: &Document) -> String {
    format!("agents/{}.md", doc.file.stem())
}

fn command_dest(plugin: &Plugin, command: &Command) -> String {
    let rel = command
        .doc
        .file
        .rel
        .strip_prefix(&format!("{}/", plugin.dir))
        .unwrap_or(&command.doc.file.rel);
    let rel = rel
        .split_once("commands/")
        .map(|(_, r)| r.to_string())
        .unwrap_or_else(|| format!("{}.md", command.doc.file.stem()));
    format!("commands/{rel}")
}

fn skill_dest(skill: &Skill) -> String {
    format!("skills/{}/", skill.dir_name)
}

/// The compiled plugin's manifest: the source's, without custom paths (everything is in the default folders).
fn manifest(plugin: &Plugin) -> serde_json::Map<String, serde_json::Value> {
    let mut manifest = plugin
        .manifest
        .as_ref()
        .map(|m| m.json.clone())
        .unwrap_or_default();
    for key in ["agents", "skills", "commands"] {
        manifest.remove(key);
    }
    manifest
        .entry("name")
        .or_insert_with(|| serde_json::Value::String(plugin.name.clone()));
    manifest
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

/// A command. One without frontmatter gets a `description`: the first line of its text, which is what Claude Code
/// shows for it at runtime, or `The NAME command.` (NAME its file's stem) when no line has text (only blank lines
/// and rules), written out so that `claude plugin validate --strict` has no missing frontmatter to warn about. It
/// always gets one: its text is written with its leading blank lines dropped, and a text that then began with a `---`
/// line would be read as frontmatter (a command holding a blank line, `---`, `--` and `---` became one whose
/// frontmatter is the string `--`, which Claude Code refuses).
fn command_document(doc: &Document, body: &str) -> Vec<u8> {
    if doc.has_frontmatter {
        return document(doc, body);
    }
    let description = body
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty() && !l.chars().all(|c| matches!(c, '-' | '*' | '_' | ' ')))
        .map_or_else(|| format!("The {} command.", doc.file.stem()), no_dashes);
    with_frontmatter(
        &[("description".to_string(), Value::String(description))],
        body,
    )
}

/// An agent or SKILL.md, with `name` and `description` added where the source has none (no frontmatter, or the field
/// absent, null or empty), so that Claude Code loads it with no warning (`claude plugin validate --strict`): the name
/// it would take anyway (the file's or the folder's) and a description made from the text ([`derived_description`]).
fn completed_document(doc: &Document, name: &str, kind: &str, body: &str) -> Vec<u8> {
    completed_document_with(doc, name, kind, body, None)
}

/// [`completed_document`], with `skills` (when given) as the value of `skills:`, in its place or added last.
fn completed_document_with(
    doc: &Document,
    name: &str,
    kind: &str,
    body: &str,
    skills: Option<Value>,
) -> Vec<u8> {
    let blank = |key: &str| {
        doc.frontmatter.get(key).is_none_or(|f| match &f.value {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        })
    };
    let (no_name, no_description) = (blank("name"), blank("description"));
    if !no_name && !no_description {
        return document_with(doc, body, skills);
    }
    let mut fields: Vec<(String, Value)> = doc
        .frontmatter
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    if no_description {
        let d = derived_description(body).unwrap_or_else(|| format!("The {name} {kind}."));
        match fields.iter_mut().find(|(k, _)| k == "description") {
            Some((_, v)) => *v = Value::String(d),
            None => {
                let at = fields
                    .iter()
                    .position(|(k, _)| k == "name")
                    .map_or(0, |i| i + 1);
                fields.insert(at, ("description".into(), Value::String(d)))
            }
        }
    }
    if no_name {
        match fields.iter_mut().find(|(k, _)| k == "name") {
            Some((_, v)) => *v = Value::String(name.to_string()),
            None => fields.insert(0, ("name".into(), Value::String(name.to_string()))),
        }
    }
    set_skills(&mut fields, skills);
    with_frontmatter(&fields, body)
}

/// A description for a file that has none: the text of its first paragraph (or, with none, its first heading), on
/// one line, cut at a word before 300 characters; `None` for a file with no text.
pub fn derived_description(body: &str) -> Option<String> {
    use mdbook_markdown::pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut heading: Option<String> = None;
    let (mut in_para, mut in_heading) = (false, false);
    let mut text = String::new();
    for event in Parser::new_ext(body, crate::parse::markdown_options()) {
        match event {
            Event::Start(Tag::Paragraph) => in_para = true,
            Event::Start(Tag::Heading { .. }) => in_heading = true,
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::End(TagEnd::Paragraph) => {
                if !text.trim().is_empty() {
                    break;
                }
                in_para = false;
            }
            Event::Text(t) | Event::Code(t) if in_para => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if in_para => text.push(' '),
            Event::Text(t) | Event::Code(t) if in_heading => {
                heading.get_or_insert_with(String::new).push_str(&t)
            }
            _ => {}
        }
    }
    let text = if text.trim().is_empty() {
        heading.unwrap_or_default()
    } else {
        text
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if out.chars().count() + w.chars().count() + 1 > 300 {
            out.push('…');
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    (!out.is_empty()).then_some(no_dashes(&out))
}

/// `text` with each run of three or more `-` made an em dash: Claude Code ends a frontmatter block at the first `---`
/// it finds, even inside a value, so a description skillbook writes must hold none.
fn no_dashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split("---").enumerate() {
        if i > 0 && !out.ends_with('—') {
            out.push('—');
        }
        // `----` splits into `---` and `-`: the leftover dashes of a longer run go into the em dash too.
        out.push_str(if i > 0 {
            part.trim_start_matches('-')
        } else {
            part
        });
    }
    out
}

/// A document with its frontmatter written as strict YAML and the given body.
pub fn document(doc: &Document, body: &str) -> Vec<u8> {
    document_with(doc, body, None)
}

/// [`document`], with `skills` (when given) as the value of `skills:`, in its place or added last.
fn document_with(doc: &Document, body: &str, skills: Option<Value>) -> Vec<u8> {
    if !doc.has_frontmatter {
        // As it is: with its leading blank lines dropped, a text that begins with a `---` line after them would be
        // read as frontmatter.
        return body.as_bytes().to_vec();
    }
    let mut fields: Vec<(String, Value)> = doc
        .frontmatter
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    set_skills(&mut fields, skills);
    with_frontmatter(&fields, body)
}

/// `skills` (when given) as the value of `skills:`, in its place or added last.
fn set_skills(fields: &mut Vec<(String, Value)>, skills: Option<Value>) {
    if let Some(skills) = skills {
        match fields.iter_mut().find(|(k, _)| k == "skills") {
            Some((_, v)) => *v = skills,
            None => fields.push(("skills".to_string(), skills)),
        }
    }
}

/// A compiled markdown file: `fields` as a strict-YAML frontmatter block, a blank line, then `body` without its
/// leading blank lines.
fn with_frontmatter(fields: &[(String, Value)], body: &str) -> Vec<u8> {
    let body = body.trim_start_matches(['\n', '\r']);
    format!("---\n{}---\n\n{}", to_strict_yaml(fields), body).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_skillbook_writes_hold_no_triple_dash() {
        for (text, want) in [
            ("a --- b", "a — b"),
            ("a---b", "a—b"),
            ("a ------ b", "a — b"),
            ("a -- b - c", "a -- b - c"),
            ("---", "—"),
            ("", ""),
        ] {
            assert_eq!(no_dashes(text), want, "{text}");
        }
        assert_eq!(
            derived_description("---\n\n# Title\n\nFirst  paragraph\nwraps.\n\nSecond.\n")
                .as_deref(),
            Some("First paragraph wraps.")
        );
        assert_eq!(
            derived_description("# Only a heading\n").as_deref(),
            Some("Only a heading")
        );
        assert_eq!(derived_description("\n\n"), None);
        let long = "word ".repeat(100);
        let d = derived_description(&long).unwrap();
        assert!(d.chars().count() <= 301 && d.ends_with("word…"), "{d}");
    }
}
