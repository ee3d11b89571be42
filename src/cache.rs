//! Cache: what the watch loop keeps between rebuilds, so that a save redoes only the work that depends on it.
//!
//! Four layers, each keyed by everything its result depends on:
//!
//! - **files**: relative path -> bytes, length and mtime. A file is read again only when the watcher named it (or a
//!   folder above it), or when its length or mtime changed; other files come from memory ([`crate::load::Reader`]).
//! - **parses**: (kind, relative path) -> the file's text, its hash, the parsed value and the diagnostics parsing gave.
//!   A file is parsed again only when its text differs ([`crate::parse::Memo`]).
//! - **agents**: each agent's compiled plugin file, and separately its bundles, keyed by a hash of what they are made
//!   from: the agent's path and text; the plugin's name and folder; the name, folder and the path and text hash of
//!   every pattern of every skill the agent resolves to; and (bundles) the budgets, tokenizer and templates.
//! - **skills**: each skill's compiled `SKILL.md` and `references/`, keyed by the skill's files.
//!
//! The rest of the output (manifests, commands, report.json and the site, which mdBook renders whole) is made fresh
//! on every rebuild. [`Stats`] says what was redone, so tests can check that an edit redid only what depends on it.

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::emit::bundle::{BundleError, Bundler};
use crate::load::{Reader, SourceFile};
use crate::parse::{Memo, Model, Plugin};
use crate::write::OutputTree;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What one rebuild redid. Paths are relative to the content root; agents and skills are named by their file or
/// folder path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files read from disk (the others came from memory).
    pub read: Vec<String>,
    /// Files whose bytes differ from what the cache held, or that are new.
    pub changed: Vec<String>,
    /// Files that were there last time and are gone.
    pub removed: Vec<String>,
    /// Files parsed (the others' parses came from memory).
    pub parsed: Vec<String>,
    /// Agents whose compiled plugin file was expanded again.
    pub expanded: Vec<String>,
    /// Skills whose compiled SKILL.md and references were made again.
    pub skills: Vec<String>,
    /// Agents whose bundles were packed again.
    pub bundled: Vec<String>,
}

/// A 64-bit hash of anything hashable; stable within one process, which is all the cache needs.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The hash the cache and the watch loop use for output files.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    hash_of(bytes)
}

struct FileEntry {
    len: u64,
    mtime: Option<SystemTime>,
    bytes: Vec<u8>,
}

/// The file layer: implements [`Reader`] for the loader.
#[derive(Default)]
struct Files {
    root: PathBuf,
    entries: HashMap<PathBuf, FileEntry>,
    /// Paths (files or folders) the watcher said changed since the last load.
    dirty: HashSet<PathBuf>,
    /// Everything is suspect (events were lost): read every file again.
    all_dirty: bool,
    seen: HashSet<PathBuf>,
    read: Vec<String>,
    changed: Vec<String>,
}

impl Files {
    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    fn is_dirty(&self, rel: &Path) -> bool {
        self.all_dirty || rel.ancestors().any(|a| self.dirty.contains(a))
    }
}

fn display(rel: &Path) -> String {
    rel.to_string_lossy().replace('\\', "/")
}

impl Reader for Files {
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let rel = self.rel(path);
        self.seen.insert(rel.clone());
        let meta = fs::metadata(path)?;
        let mtime = meta.modified().ok();
        if let Some(e) = self.entries.get(&rel) {
            if !self.is_dirty(&rel) && e.len == meta.len() && e.mtime == mtime && mtime.is_some() {
                return Ok(e.bytes.clone());
            }
        }
        let bytes = fs::read(path)?;
        self.read.push(display(&rel));
        let same = self.entries.get(&rel).is_some_and(|e| e.bytes == bytes);
        if !same {
            self.changed.push(display(&rel));
        }
        // The length and mtime are those from before the read: a write that lands during it is seen next time.
        self.entries.insert(
            rel,
            FileEntry {
                len: meta.len(),
                mtime,
                bytes: bytes.clone(),
            },
        );
        Ok(bytes)
    }
}

struct ParseEntry {
    text: String,
    hash: u64,
    value: Box<dyn Any>,
    diags: Vec<Diagnostic>,
}

/// The parse layer: implements [`Memo`] for the parser.
#[derive(Default)]
struct Parses {
    entries: HashMap<(&'static str, String), ParseEntry>,
    /// Text hash of every file parsed (or answered) in this build, by relative path.
    hashes: HashMap<String, u64>,
    seen: HashSet<(&'static str, String)>,
    parsed: Vec<String>,
}

impl Memo for Parses {
    fn memo<T: Clone + 'static>(
        &mut self,
        kind: &'static str,
        file: SourceFile,
        diags: &mut Vec<Diagnostic>,
        parse: impl FnOnce(SourceFile, &mut Vec<Diagnostic>) -> Option<T>,
    ) -> Option<T> {
        let key = (kind, file.rel.clone());
        self.seen.insert(key.clone());
        if let Some(e) = self.entries.get(&key) {
            if e.text == file.text {
                if let Some(v) = e.value.downcast_ref::<Option<T>>() {
                    diags.extend(e.diags.iter().cloned());
                    self.hashes.insert(file.rel, e.hash);
                    return v.clone();
                }
            }
        }
        let text = file.text.clone();
        let hash = hash_of(&text);
        self.parsed.push(file.rel.clone());
        self.hashes.insert(file.rel.clone(), hash);
        let mut own = Vec::new();
        let value = parse(file, &mut own);
        diags.extend(own.iter().cloned());
        self.entries.insert(
            key,
            ParseEntry {
                text,
                hash,
                value: Box::new(value.clone()),
                diags: own,
            },
        );
        value
    }
}

/// Output files made from one agent or skill, with the key they were made under.
struct Unit {
    key: u64,
    files: Vec<(String, Vec<u8>, u64)>,
    failures: Vec<(String, BundleError)>,
}

/// The watch loop's memory between rebuilds. See the module documentation.
#[derive(Default)]
pub struct Cache {
    files: Files,
    parses: Parses,
    /// Hash of the settings outputs depend on (stub pattern, budgets, tokenizer, templates).
    generation: u64,
    agents: HashMap<String, Unit>,
    bundles: HashMap<String, Unit>,
    skills: HashMap<String, Unit>,
    units_seen: HashSet<(u8, String)>,
    /// Hashes of the output files this build took from units, by output path.
    out_hashes: HashMap<String, u64>,
    expanded: Vec<String>,
    skills_made: Vec<String>,
    bundled: Vec<String>,
    removed: Vec<String>,
    /// Time spent in [`Cache::plugin`] and [`Cache::bundles`] since [`Cache::begin_emit`].
    emit_time: Duration,
}

impl Cache {
    pub fn new() -> Self {
        Cache::default()
    }

    /// Forgets everything (book.toml changed, or the content root moved).
    pub fn clear(&mut self) {
        *self = Cache::default();
    }

    /// Marks paths (files or folders, relative to the content root) as changed: they are read again.
    pub fn invalidate<'a>(&mut self, rels: impl IntoIterator<Item = &'a Path>) {
        self.files
            .dirty
            .extend(rels.into_iter().map(Path::to_path_buf));
    }

    /// Marks every file as changed (the watcher lost events).
    pub fn invalidate_all(&mut self) {
        self.files.all_dirty = true;
    }

    /// Forgets what the last build redid (a build that loads nothing reports nothing read).
    pub fn clear_stats(&mut self) {
        self.files.read.clear();
        self.files.changed.clear();
        self.parses.parsed.clear();
        self.removed.clear();
        self.expanded.clear();
        self.skills_made.clear();
        self.bundled.clear();
    }

    /// Starts a load of `config`'s content: resets the per-build records.
    pub fn begin_load(&mut self, config: &Config) {
        if self.files.root != config.content_root {
            let keep_none = Cache::default();
            *self = keep_none;
            self.files.root = config.content_root.clone();
        }
        self.files.seen.clear();
        self.files.read.clear();
        self.files.changed.clear();
        self.parses.seen.clear();
        self.parses.parsed.clear();
        self.parses.hashes.clear();
        self.removed.clear();
    }

    /// The reader and memo for [`crate::driver::compile_with`].
    pub fn layers(&mut self) -> (&mut dyn Reader, &mut impl Memo) {
        (&mut self.files, &mut self.parses)
    }

    /// Ends a load: forgets files and parses that are gone, and clears the changed marks.
    pub fn end_load(&mut self) {
        let seen = std::mem::take(&mut self.files.seen);
        let mut removed: Vec<String> = self
            .files
            .entries
            .keys()
            .filter(|k| !seen.contains(*k))
            .map(|k| display(k))
            .collect();
        removed.sort();
        self.removed = removed;
        self.files.entries.retain(|k, _| seen.contains(k));
        self.files.seen = seen;
        let pseen = std::mem::take(&mut self.parses.seen);
        self.parses.entries.retain(|k, _| pseen.contains(k));
        self.parses.seen = pseen;
        self.files.dirty.clear();
        self.files.all_dirty = false;
    }

    /// Whether the last load found any file new, changed or gone.
    pub fn content_changed(&self) -> bool {
        !self.files.changed.is_empty() || !self.removed.is_empty()
    }

    /// Starts emitting outputs for `config`: settings that changed invalidate the agents and bundles made under the
    /// old ones.
    pub fn begin_emit(&mut self, config: &Config) {
        let templates: Vec<&(String, String, String)> = config.templates.iter().collect();
        self.generation = hash_of(&(
            config.stub.as_str(),
            &config.budgets,
            config.tokenizer.name(),
            templates,
        ));
        self.units_seen.clear();
        self.out_hashes.clear();
        self.emit_time = Duration::ZERO;
        self.expanded.clear();
        self.skills_made.clear();
        self.bundled.clear();
    }

    /// Ends emitting: forgets agents and skills that are gone.
    pub fn end_emit(&mut self) {
        let seen = &self.units_seen;
        self.agents.retain(|k, _| seen.contains(&(0, k.clone())));
        self.bundles.retain(|k, _| seen.contains(&(1, k.clone())));
        self.skills.retain(|k, _| seen.contains(&(2, k.clone())));
    }

    /// What the last load and emit redid.
    pub fn stats(&self) -> Stats {
        Stats {
            read: self.files.read.clone(),
            changed: self.files.changed.clone(),
            removed: self.removed.clone(),
            parsed: self.parses.parsed.clone(),
            expanded: self.expanded.clone(),
            skills: self.skills_made.clone(),
            bundled: self.bundled.clone(),
        }
    }

    /// How long expanding and bundling took in this build (including taking unchanged results from the cache).
    pub fn emit_time(&self) -> Duration {
        self.emit_time
    }

    /// The hashes of the output files taken from agents and skills in this build (the rest must be hashed).
    pub fn output_hashes(&self) -> &HashMap<String, u64> {
        &self.out_hashes
    }

    fn text_hash(&self, file: &SourceFile) -> u64 {
        self.parses
            .hashes
            .get(&file.rel)
            .copied()
            .unwrap_or_else(|| hash_of(&file.text))
    }

    /// What a skill is, for the agents that use it: its name, folder, and its patterns' paths and texts.
    fn skill_fingerprint(&self, model: &Model, key: (usize, usize)) -> u64 {
        let plugin = &model.plugins[key.0];
        let skill = model.skill(key);
        let patterns: Vec<(&str, u64)> = skill
            .patterns
            .iter()
            .map(|p| (p.doc.file.rel.as_str(), self.text_hash(&p.doc.file)))
            .collect();
        hash_of(&(
            &plugin.name,
            &plugin.dir,
            plugin.namespaced,
            &skill.name,
            &skill.dir_name,
            &skill.dir,
            patterns,
        ))
    }

    /// Everything an agent's compiled file and bundles are made from.
    fn agent_key(&self, model: &Model, pi: usize, agent: &crate::parse::Agent, fps: &[u64]) -> u64 {
        let plugin = &model.plugins[pi];
        hash_of(&(
            self.generation,
            &plugin.name,
            &plugin.dir,
            plugin.namespaced,
            &agent.doc.file.rel,
            self.text_hash(&agent.doc.file),
            fps,
        ))
    }

    fn skill_fingerprints(&self, model: &Model) -> HashMap<(usize, usize), u64> {
        let mut out = HashMap::new();
        for (pi, p) in model.plugins.iter().enumerate() {
            for si in 0..p.skills.len() {
                out.insert((pi, si), self.skill_fingerprint(model, (pi, si)));
            }
        }
        out
    }

    fn agent_keys(&self, model: &Model) -> Vec<Vec<u64>> {
        let fps = self.skill_fingerprints(model);
        model
            .plugins
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                p.agents
                    .iter()
                    .map(|a| {
                        let deps: Vec<u64> = model
                            .agent_skills(pi, a)
                            .iter()
                            .map(|k| fps.get(k).copied().unwrap_or(0))
                            .collect();
                        self.agent_key(model, pi, a, &deps)
                    })
                    .collect()
            })
            .collect()
    }

    fn put(&mut self, unit: &Unit, out: &mut OutputTree) {
        for (path, bytes, hash) in &unit.files {
            out.insert(path.clone(), bytes.clone());
            self.out_hashes.insert(path.clone(), *hash);
        }
    }

    /// The compiled plugin under `prefix`, exactly as [`crate::emit::plugin::emit`] makes it, expanding only the
    /// agents and skills whose inputs changed.
    pub fn plugin(&mut self, model: &Model, prefix: &str, out: &mut OutputTree) {
        let start = Instant::now();
        // Manifests and commands (no expansion): the plugin emitter itself, on the model without agents and skills.
        let bare = Model {
            plugins: model
                .plugins
                .iter()
                .map(|p| Plugin {
                    name: p.name.clone(),
                    dir: p.dir.clone(),
                    namespaced: p.namespaced,
                    manifest: p.manifest.clone(),
                    agents: Vec::new(),
                    skills: Vec::new(),
                    commands: p.commands.clone(),
                })
                .collect(),
            marketplace: model.marketplace.clone(),
            copies: Vec::new(),
            files: model.files,
        };
        crate::emit::plugin::emit(&bare, prefix, out);
        crate::emit::plugin::copies(model, prefix, out);
        let keys = self.agent_keys(model);
        let compiler = crate::emit::plugin::Compiler::new(model);
        for (pi, plugin) in model.plugins.iter().enumerate() {
            let base = if plugin.dir.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}{}/", plugin.dir)
            };
            for (ai, agent) in plugin.agents.iter().enumerate() {
                let id = agent.doc.file.rel.clone();
                let key = hash_of(&(keys[pi][ai], prefix, compiler.agent_links_key(pi, agent)));
                self.units_seen.insert((0, id.clone()));
                if self.agents.get(&id).is_none_or(|u| u.key != key) {
                    let (path, bytes) = compiler.agent(pi, agent, prefix);
                    let hash = hash_bytes(&bytes);
                    self.expanded.push(id.clone());
                    self.agents.insert(
                        id.clone(),
                        Unit {
                            key,
                            files: vec![(path, bytes, hash)],
                            failures: Vec::new(),
                        },
                    );
                }
                if let Some(unit) = self.agents.remove(&id) {
                    self.put(&unit, out);
                    self.agents.insert(id, unit);
                }
            }
            for (si, skill) in plugin.skills.iter().enumerate() {
                let id = skill.dir.clone();
                let doc_hash = skill.doc.as_ref().map(|d| {
                    (
                        d.file.rel.clone(),
                        self.text_hash(&d.file),
                        d.has_frontmatter,
                    )
                });
                let key = hash_of(&(
                    self.skill_fingerprint(model, (pi, si)),
                    doc_hash,
                    &base,
                    compiler.skill_links_key(skill),
                ));
                self.units_seen.insert((2, id.clone()));
                if self.skills.get(&id).is_none_or(|u| u.key != key) {
                    let files = compiler.skill(pi, skill, prefix);
                    let files = files
                        .into_iter()
                        .map(|(p, b)| {
                            let h = hash_bytes(&b);
                            (p, b, h)
                        })
                        .collect();
                    self.skills_made.push(id.clone());
                    self.skills.insert(
                        id.clone(),
                        Unit {
                            key,
                            files,
                            failures: Vec::new(),
                        },
                    );
                }
                if let Some(unit) = self.skills.remove(&id) {
                    self.put(&unit, out);
                    self.skills.insert(id, unit);
                }
            }
        }
        self.emit_time += start.elapsed();
    }

    /// Every agent's bundles and manifest, exactly as [`crate::emit::bundle::emit`] makes them, packing only the
    /// agents whose inputs changed. Returns the agents and budgets whose own text did not fit.
    pub fn bundles(
        &mut self,
        bundler: &Bundler,
        model: &Model,
        budgets: &[usize],
        out: &mut OutputTree,
    ) -> Vec<(String, BundleError)> {
        let start = Instant::now();
        let keys = self.agent_keys(model);
        let mut failures = Vec::new();
        for (pi, plugin) in model.plugins.iter().enumerate() {
            for (ai, agent) in plugin.agents.iter().enumerate() {
                let id = agent.doc.file.rel.clone();
                let key = hash_of(&(keys[pi][ai], budgets));
                self.units_seen.insert((1, id.clone()));
                if self.bundles.get(&id).is_none_or(|u| u.key != key) {
                    let unit = bundle_unit(bundler, pi, agent, budgets, key);
                    self.bundled.push(id.clone());
                    self.bundles.insert(id.clone(), unit);
                }
                if let Some(unit) = self.bundles.remove(&id) {
                    self.put(&unit, out);
                    failures.extend(unit.failures.iter().cloned());
                    self.bundles.insert(id, unit);
                }
            }
        }
        self.emit_time += start.elapsed();
        failures
    }
}

/// One agent's bundles and manifest, as `emit::bundle::emit` lays them out.
fn bundle_unit(
    bundler: &Bundler,
    pi: usize,
    agent: &crate::parse::Agent,
    budgets: &[usize],
    key: u64,
) -> Unit {
    let (files, failures) = crate::emit::bundle::agent_files(bundler, pi, agent, budgets);
    Unit {
        key,
        files: files
            .into_iter()
            .map(|(p, b)| {
                let h = hash_bytes(&b);
                (p, b, h)
            })
            .collect(),
        failures,
    }
}
