//! Engine: the one build path. `build`, `watch` and `serve` all call [`Engine::build`]; `build` runs it once on a
//! fresh engine (every memo empty), the watch loop keeps one engine and tells it which paths changed.
//!
//! What it keeps between builds, each keyed by what its result is made from:
//!
//! - **inputs** ([`Files`], a small virtual file system): the bytes of every content file by relative path, with its
//!   length and mtime. A file is read again only when the watcher named it (or a folder above it), or when its length
//!   or mtime changed. The loader still lists the folders, so new, deleted and renamed files are always seen.
//! - **parses** ([`Parses`]): each file's parse and diagnostics, by kind, path and text.
//! - **output units** ([`Memo`], one table): every group of output files that is made together (the plugin's
//!   manifests and commands, one compiled agent, one compiled skill, one agent's bundles) is a unit with an id, a
//!   hash of everything it is made from (its *key*), and a pure function that makes it. A unit whose key is unchanged
//!   is taken from the memo; the others are made again. Keys hash only what a unit reads: an agent's key has the
//!   path and text hash of each pattern of the skills it refers to, and nothing of other skills.
//!
//! The check runs on the whole model every time (one pattern can cover an item of any agent; it takes milliseconds).
//! The output is then committed by [`crate::write::commit_outputs`]: complete in a temporary directory, swapped in
//! with one rename, every file whose bytes did not change hard-linked from the previous output rather than written.
//! [`Stats`] says what was read, parsed, made and written, so tests can check that an edit redid only what depends
//! on it, and that the result equals a fresh build's.

use crate::check::{self, Report};
use crate::config::{self, Config};
use crate::diagnostic::{self, Diagnostic, Style};
use crate::driver::Compiled;
use crate::emit::bundle::{self, Bundler, Layout, Manifest, Skipped, Templates};
use crate::emit::report::display_path;
use crate::emit::{self, plugin};
use crate::load::{self, Reader, SourceFile};
use crate::parse::{self, ParseOptions};
use crate::write::{self, hash_of, FileRef, MemorySink, OutputTree, Sink, Staging};
use crate::{HashMap, HashSet};
use indicatif::ProgressBar;
use std::any::Any;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Where the compiled plugin goes in the output.
const PLUGIN: &str = "plugin/";
/// Where the site goes in the output.
const SITE: &str = "site/";

// ----- inputs -----

struct FileEntry {
    len: u64,
    mtime: Option<SystemTime>,
    bytes: Vec<u8>,
}

/// The content files as the last load saw them: implements [`Reader`] for the loader.
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
    removed: Vec<String>,
}

impl Files {
    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    fn is_dirty(&self, rel: &Path) -> bool {
        self.all_dirty || rel.ancestors().any(|a| self.dirty.contains(a))
    }

    /// Starts a load of the content at `root`.
    fn begin(&mut self, root: &Path) {
        if self.root != root {
            *self = Files {
                root: root.to_path_buf(),
                ..Files::default()
            };
        }
        self.seen.clear();
        self.read.clear();
        self.changed.clear();
        self.removed.clear();
    }

    /// Ends a load: forgets files that are gone, and clears the changed marks.
    fn end(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        let mut removed: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !seen.contains(*k))
            .map(|k| display(k))
            .collect();
        removed.sort();
        self.removed = removed;
        self.entries.retain(|k, _| seen.contains(k));
        self.seen = seen;
        self.dirty.clear();
        self.all_dirty = false;
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

// ----- parses -----

struct ParseEntry {
    text: String,
    hash: u64,
    value: Box<dyn Any>,
    diags: Vec<Diagnostic>,
}

/// Each file's parse, by kind and path, kept while its text is the same: implements [`parse::Memo`].
#[derive(Default)]
struct Parses {
    entries: HashMap<(&'static str, String), ParseEntry>,
    /// Text hash of every file parsed (or answered) in this build, by relative path.
    hashes: HashMap<String, u64>,
    seen: HashSet<(&'static str, String)>,
    parsed: Vec<String>,
}

impl Parses {
    fn begin(&mut self) {
        self.seen.clear();
        self.parsed.clear();
        self.hashes.clear();
    }

    fn end(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.entries.retain(|k, _| seen.contains(k));
        self.seen = seen;
    }
}

impl parse::Memo for Parses {
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

    fn remembers(&self, kind: &'static str, file: &SourceFile) -> bool {
        self.entries
            .get(&(kind, file.rel.clone()))
            .is_some_and(|e| e.text == file.text)
    }
}

// ----- output units -----

/// A unit's identity: its kind (`agent`, `skill`, `bundles`, ...) and a stable name within the kind (a source path).
pub type UnitId = (&'static str, String);

struct Entry {
    key: u64,
    value: Arc<dyn Any + Send + Sync>,
}

/// The one memo table of output units: each unit's value with the key it was made under.
#[derive(Default)]
pub struct Memo {
    entries: HashMap<UnitId, Entry>,
    seen: HashSet<UnitId>,
    /// Units made (not taken from the memo) in this build, in the order they were asked for.
    made: Vec<UnitId>,
}

impl Memo {
    /// The values of the units `items` = (name, key) of `kind`, in order: taken from the memo when made before under
    /// the same key, else made by `make(i)` (on several threads when `parallel`). The memo keeps them for next time.
    fn units<T: Send + Sync + 'static>(
        &mut self,
        kind: &'static str,
        items: &[(String, u64)],
        make: &mut dyn FnMut(&[usize]) -> Vec<T>,
    ) -> Vec<Arc<T>> {
        let mut out: Vec<Option<Arc<T>>> = Vec::with_capacity(items.len());
        let mut missing = Vec::new();
        for (i, (name, key)) in items.iter().enumerate() {
            let id = (kind, name.clone());
            let hit = self
                .entries
                .get(&id)
                .filter(|e| e.key == *key)
                .and_then(|e| e.value.clone().downcast::<T>().ok());
            if hit.is_none() {
                missing.push(i);
            }
            out.push(hit);
            self.seen.insert(id);
        }
        let made = make(&missing);
        for (i, value) in missing.into_iter().zip(made) {
            let value = Arc::new(value);
            let id = (kind, items[i].0.clone());
            self.made.push(id.clone());
            self.entries.insert(
                id,
                Entry {
                    key: items[i].1,
                    value: value.clone(),
                },
            );
            out[i] = Some(value);
        }
        out.into_iter().flatten().collect()
    }

    fn begin(&mut self) {
        self.seen.clear();
        self.made.clear();
    }

    /// Forgets the units this build did not ask for (their sources are gone).
    fn end(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.entries.retain(|k, _| seen.contains(k));
        self.seen = seen;
    }

    /// The value of the unit `name` of `kind` as last made, whatever its key, with that key; it is not marked as
    /// asked for.
    fn peek_keyed<T: Send + Sync + 'static>(
        &self,
        kind: &'static str,
        name: &str,
    ) -> Option<(u64, Arc<T>)> {
        let e = self.entries.get(&(kind, name.to_string()))?;
        Some((e.key, e.value.clone().downcast::<T>().ok()?))
    }

    /// Forgets the units made in this build: their files were not committed (the build failed), so the previous
    /// output does not have them.
    fn forget_made(&mut self) {
        for id in &self.made {
            self.entries.remove(id);
        }
    }

    /// The names of the units of `kind` made in this build.
    fn made(&self, kind: &str) -> Vec<String> {
        self.made
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.clone())
            .collect()
    }
}

/// The site's generated pages in the memo (kind `generated`, by page path).
struct GeneratedPages<'m>(&'m mut Memo);

impl emit::site::PageStore for GeneratedPages<'_> {
    fn pages(
        &mut self,
        items: &[(String, u64)],
        make: &mut dyn FnMut(&[usize]) -> Vec<emit::site::Generated>,
    ) -> Vec<emit::site::Generated> {
        self.0
            .units("generated", items, make)
            .into_iter()
            .map(|p| (*p).clone())
            .collect()
    }
}

/// Output files made together: what the memo keeps of them (path, hash, mode), their bytes being in the output.
type UnitFiles = Vec<FileRef>;

/// Puts files made by a unit into the output; what the memo keeps of them.
fn put_all(sink: &dyn Sink, files: Vec<(String, Vec<u8>)>) -> UnitFiles {
    files
        .into_iter()
        .map(|(p, b)| sink.put(p, &b, None))
        .collect()
}

/// Puts the files of the units taken from the memo into the output (linked from the previous one); the units made
/// in this build put theirs already.
fn keep_all(sink: &dyn Sink, files: &UnitFiles) {
    for f in files {
        sink.keep(f);
    }
}

/// One compiled agent as a unit: its file and the size of its prompt, or why it does not fit the agent budget.
struct AgentUnit {
    files: UnitFiles,
    result: Result<plugin::PromptSize, plugin::AgentError>,
}

/// One agent's bundles as a unit: its files, its typed manifest (for the site) and what did not fit.
struct BundleUnit {
    files: UnitFiles,
    manifest: Manifest,
    failures: Vec<Skipped>,
}

/// Where the time of making the outputs went.
#[derive(Debug, Clone, Copy, Default)]
struct EmitTimes {
    expand: Duration,
    site: Duration,
}

/// The text hash of a file, as the parses knew it (computed when they did not).
fn text_hash(hashes: &HashMap<String, u64>, file: &SourceFile) -> u64 {
    hashes
        .get(&file.rel)
        .copied()
        .unwrap_or_else(|| hash_of(&file.text))
}

/// Every output of `compiled`, through `memo`, into `sink` as each is made: only the units whose inputs changed are
/// made again (the others' files are kept from the previous output). `hashes` are the text hashes of the content
/// files by path (from the parses; missing ones are computed). `once`: no build follows (`skillbook build`), so the
/// process-wide memos of token counts and highlighted code are freed as soon as their stage is done.
/// `fresh`: the files parsed in this build (`None`: all). When the compiled agents and bundles leave a core spare (they
/// are made an agent per thread, and there are fewer agents than cores), the code blocks of those files are
/// highlighted on it meanwhile, and the pages find them in the highlighting memo: highlighting is most of a small
/// site's time. What that thread has not come to when the bundles are made, the build's own thread shares with it. (With as many agents as cores the extra thread only competes: 4% slower at 300 agents.)
fn outputs(
    memo: &mut Memo,
    hashes: &HashMap<String, u64>,
    compiled: &Compiled,
    sink: &dyn Sink,
    once: bool,
    fresh: Option<&[String]>,
) -> Result<(Vec<Skipped>, EmitTimes), String> {
    let agents: usize = compiled.model.plugins.iter().map(|p| p.agents.len()).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if agents >= cores {
        return outputs_made(memo, hashes, compiled, sink, once, None);
    }
    let fresh: Option<HashSet<&str>> = fresh.map(|f| f.iter().map(String::as_str).collect());
    let warm: Vec<&str> = compiled
        .model
        .plugins
        .iter()
        .flat_map(|p| &p.skills)
        .flat_map(|s| &s.patterns)
        .filter(|p| {
            fresh
                .as_ref()
                .is_none_or(|f| f.contains(p.doc.file.rel.as_str()))
        })
        .map(|p| p.doc.body())
        .collect();
    let warmup = crate::highlight::Warmup::new(warm);
    std::thread::scope(|scope| {
        let depth = crate::timing::depth();
        let warmup = &warmup;
        if !warmup.is_empty() {
            scope.spawn(move || {
                crate::timing::nested(depth, || {
                    crate::timing::time("highlight (beside)", || warmup.run())
                })
            });
        }
        outputs_made(memo, hashes, compiled, sink, once, Some(warmup))
    })
}

fn outputs_made(
    memo: &mut Memo,
    hashes: &HashMap<String, u64>,
    compiled: &Compiled,
    sink: &dyn Sink,
    once: bool,
    warmup: Option<&crate::highlight::Warmup>,
) -> Result<(Vec<Skipped>, EmitTimes), String> {
    let t = Instant::now();
    let model = &compiled.model;
    let config = &compiled.config;
    let templates = Templates::new(&config.templates)?;
    let budgets: Vec<usize> = config.budgets.iter().map(|&b| b as usize).collect();
    let settings = hash_of(&(
        config.stub.as_str(),
        &config.budgets,
        config.tokenizer.name(),
        &config.templates,
    ));

    // What a skill is for the agents that use it: its plugin, name, folder, and its patterns' paths and texts.
    let skill_keys: Vec<Vec<u64>> = model
        .plugins
        .iter()
        .map(|p| {
            p.skills
                .iter()
                .map(|s| {
                    let patterns: Vec<(&str, u64)> = s
                        .patterns
                        .iter()
                        .map(|x| (x.doc.file.rel.as_str(), text_hash(hashes, &x.doc.file)))
                        .collect();
                    hash_of(&(
                        &p.name,
                        &p.dir,
                        p.namespaced,
                        &s.name,
                        &s.dir_name,
                        &s.dir,
                        patterns,
                        // Whether Claude Code injects it (a compiled agent then leaves its summaries out).
                        s.has_skill_md && s.doc.is_some(),
                    ))
                })
                .collect()
        })
        .collect();
    // Everything an agent's compiled file and bundles are made from.
    let mut agents: Vec<(usize, usize)> = Vec::new();
    let mut agent_items: Vec<(String, u64)> = Vec::new();
    for (pi, p) in model.plugins.iter().enumerate() {
        for (ai, a) in p.agents.iter().enumerate() {
            let deps: Vec<u64> = model
                .agent_skills(pi, a)
                .iter()
                .map(|&(x, y)| skill_keys[x][y])
                .collect();
            let key = hash_of(&(
                settings,
                &p.name,
                &p.dir,
                p.namespaced,
                &a.doc.file.rel,
                text_hash(hashes, &a.doc.file),
                deps,
            ));
            agents.push((pi, ai));
            agent_items.push((a.doc.file.rel.clone(), key));
        }
    }
    let agent = |i: usize| {
        let (pi, ai) = agents[i];
        (pi, &model.plugins[pi].agents[ai])
    };

    // The plugin: manifests and commands, then each agent, then each skill. Besides their own texts, they depend on
    // where the targets of their relative links go in the compiled plugin (the compiler rebases those links).
    let compiler = crate::timing::time("plugin compiler", || plugin::Compiler::new(model));
    let skill_links: Vec<Vec<u64>> = model
        .plugins
        .iter()
        .map(|p| {
            p.skills
                .iter()
                .map(|s| compiler.skill_links_key(s))
                .collect()
        })
        .collect();
    let meta_key = {
        let manifests: Vec<(String, Option<String>)> = model
            .plugins
            .iter()
            .map(|p| {
                (
                    format!("{}\0{}", p.name, p.dir),
                    p.manifest
                        .as_ref()
                        .map(|m| serde_json::Value::Object(m.json.clone()).to_string()),
                )
            })
            .collect();
        let commands: Vec<(&str, u64)> = model
            .plugins
            .iter()
            .flat_map(|p| &p.commands)
            .map(|c| (c.doc.file.rel.as_str(), text_hash(hashes, &c.doc.file)))
            .collect();
        let marketplace = model.marketplace.as_ref().map(|m| {
            (
                m.rel.clone(),
                serde_json::Value::Object(m.json.clone()).to_string(),
            )
        });
        hash_of(&(
            manifests,
            commands,
            marketplace,
            compiler.command_links_key(),
        ))
    };
    let meta = memo.units("meta", &[(String::new(), meta_key)], &mut |_| {
        vec![put_all(sink, compiler.meta(PLUGIN))]
    });
    for unit in &meta {
        keep_all(sink, unit);
    }
    let plugin_agent_items: Vec<(String, u64)> = agent_items
        .iter()
        .enumerate()
        .map(|(i, (name, key))| {
            let (pi, a) = agent(i);
            let deps: Vec<u64> = model
                .agent_skills(pi, a)
                .iter()
                .map(|&(x, y)| skill_links[x][y])
                .collect();
            let own = compiler.links_key(std::iter::once(&a.doc));
            // The compiled agent is its bundle at the agent budget (the tokenizer is in `key` already).
            (
                name.clone(),
                hash_of(&(key, own, deps, config.agent_budget)),
            )
        })
        .collect();
    let agent_compiler = compiler.agents(plugin::AgentSettings::of(config));
    let compiled_agents = crate::timing::time("plugin agents", || {
        memo.units("agent", &plugin_agent_items, &mut |todo| {
            crate::emit::par_map(todo, |&i| {
                let (pi, a) = agent(i);
                match agent_compiler.agent(pi, a, PLUGIN) {
                    Ok(c) => AgentUnit {
                        files: put_all(
                            sink,
                            std::iter::once((c.path, c.bytes)).chain(c.pages).collect(),
                        ),
                        result: Ok(c.prompt),
                    },
                    Err(e) => AgentUnit {
                        files: Vec::new(),
                        result: Err(e),
                    },
                }
            })
        })
    });
    let mut too_small = Vec::new();
    for unit in &compiled_agents {
        keep_all(sink, &unit.files);
        if let Err(e) = &unit.result {
            too_small.push(e.clone());
        }
    }
    // Its memo of cut patterns and counts is not needed any more: freed before the next stage allocates.
    drop(agent_compiler);
    if !too_small.is_empty() {
        return Err(plugin::AgentError::report(&too_small, config));
    }
    let mut skills: Vec<(usize, usize)> = Vec::new();
    let mut skill_items: Vec<(String, u64)> = Vec::new();
    for (pi, p) in model.plugins.iter().enumerate() {
        for (si, s) in p.skills.iter().enumerate() {
            let doc = s
                .doc
                .as_ref()
                .map(|d| (&d.file.rel, text_hash(hashes, &d.file), d.has_frontmatter));
            // Its own `references/` files are in its SKILL.md's index.
            let own: Vec<(&str, u64)> = plugin::own_reference_files(model, s)
                .map(|f| (f.rel.as_str(), write::hash_bytes(&f.bytes)))
                .collect();
            skills.push((pi, si));
            skill_items.push((
                s.dir.clone(),
                hash_of(&(skill_keys[pi][si], doc, skill_links[pi][si], own)),
            ));
        }
    }
    let compiled_skills = crate::timing::time("plugin skills", || {
        memo.units("skill", &skill_items, &mut |todo| {
            crate::emit::par_map(todo, |&i| {
                let (pi, si) = skills[i];
                put_all(
                    sink,
                    compiler.skill(pi, &model.plugins[pi].skills[si], PLUGIN),
                )
            })
        })
    });
    for unit in &compiled_skills {
        keep_all(sink, unit);
    }
    // The files the plugin carries as they are (read whole by every load: their bytes are the key).
    let copies_key = hash_of(
        &model
            .copies
            .iter()
            .map(|f| (&f.rel, f.mode, write::hash_bytes(&f.bytes)))
            .collect::<Vec<_>>(),
    );
    let copies = memo.units("copies", &[(String::new(), copies_key)], &mut |_| {
        let mut tree = OutputTree::new();
        plugin::copies(model, PLUGIN, &mut tree);
        vec![tree
            .iter()
            .map(|(p, b)| sink.put(p.clone(), b, tree.mode(p)))
            .collect::<UnitFiles>()]
    });
    for unit in &copies {
        keep_all(sink, unit);
    }

    // Bundles: one unit per agent, in parallel (the bundler shares cut patterns and counts between the agents it packs).
    let bundler = Bundler::new(model, &templates, config.tokenizer, Layout::Markdown);
    let bundle_items: Vec<(String, u64)> = agent_items
        .iter()
        .map(|(name, key)| (name.clone(), hash_of(&(key, &budgets))))
        .collect();
    let bundles = crate::timing::time("bundles", || {
        memo.units("bundles", &bundle_items, &mut |todo| {
            crate::emit::par_map(todo, |&i| {
                let (pi, a) = agent(i);
                let made = bundle::agent_files(&bundler, pi, a, &budgets);
                BundleUnit {
                    files: put_all(sink, made.files),
                    manifest: made.manifest,
                    failures: made.failures,
                }
            })
        })
    });
    let mut skipped = Vec::new();
    let mut manifests = Vec::with_capacity(bundles.len());
    for (((unit, agent), (_, bkey)), (_, akey)) in bundles
        .iter()
        .zip(&compiled_agents)
        .zip(&bundle_items)
        .zip(&plugin_agent_items)
    {
        keep_all(sink, &unit.files);
        skipped.extend(unit.failures.iter().cloned());
        manifests.push(emit::site::AgentBundles {
            manifest: &unit.manifest,
            compiled: agent.result.as_ref().ok(),
            key: hash_of(&(bkey, akey)),
        });
    }
    drop(bundler);
    if once {
        crate::tokenize::forget();
    }
    let expand = t.elapsed();

    // The site, from the model, the report and the bundle stage's manifests; first, the code blocks the warm-up
    // thread has not come to yet are shared with it.
    if let Some(warmup) = warmup {
        crate::timing::time("highlight (sharing)", || warmup.run());
    }
    let t = Instant::now();
    site(memo, compiled, &manifests, sink, true, once)?;
    Ok((
        skipped,
        EmitTimes {
            expand,
            site: t.elapsed(),
        },
    ))
}

/// The site and report.json, from the model, the report and the bundle stage's manifests. Every page is generated; a
/// page is rendered again (and its search document made again) only when what it is rendered from changed: early
/// cutoff, so an edit re-renders the pages that show it. Without `whole`, the files that hold every page
/// (`print.html`, the search index, `llms-full.txt`: [`emit::site::holds_every_page`]) and report.json are not
/// made. `once`: the highlighting memo is freed once the pages are made (no build follows).
fn site(
    memo: &mut Memo,
    compiled: &Compiled,
    manifests: &[emit::site::AgentBundles],
    sink: &dyn Sink,
    whole: bool,
    once: bool,
) -> Result<(), String> {
    crate::timing::time("site", || {
        let input = emit::site::SiteInput {
            model: &compiled.model,
            report: &compiled.report,
            book: compiled.config.book.as_ref(),
            bundles: Some(manifests),
        };
        // A build that runs once keeps no generated page (each page's chapter is freed as it is rendered).
        let mut store = GeneratedPages(memo);
        let plan = emit::site::SitePlan::new(
            &input,
            if once {
                None
            } else {
                Some(&mut store as &mut dyn emit::site::PageStore)
            },
        )?;
        if once {
            crate::highlight::forget();
        }
        let items: Vec<(String, u64)> = (0..plan.len())
            .map(|k| (plan.path(k).to_string(), plan.page_key(k)))
            .collect();
        let pages = crate::timing::time("render pages", || {
            memo.units("page", &items, &mut |todo| {
                crate::emit::par_map(todo, |&k| plan.render_into(k, SITE, sink))
            })
        });
        let mut done = Vec::with_capacity(pages.len());
        for p in &pages {
            let p = p.as_ref().as_ref().map_err(String::clone)?;
            sink.keep(&p.html);
            sink.keep(&p.markdown);
            done.push(p);
        }
        crate::timing::time("finish", || plan.finish(&done, SITE, sink, whole))
    })
    .map_err(|e| format!("cannot build the site: {e}"))?;
    if whole {
        crate::timing::time("report.json", || {
            sink.put(
                "report.json".to_string(),
                emit::report::json(&compiled.report, &compiled.root_display()).as_bytes(),
                None,
            )
        });
    }
    Ok(())
}

/// The first part of a rebuild under `watch`/`serve`, what the reload waits for: the site's pages, made with the
/// bundle stage's manifests of the last build (the bundles are made in the second part); every other file,
/// report.json and the ones that hold every page included, is carried over from the previous output as it is.
fn pages_first(memo: &mut Memo, compiled: &Compiled, staging: &Staging) -> Result<(), String> {
    // Each agent's bundles and compiled agent as last made, with their keys.
    type Made<T> = (u64, Arc<T>);
    let units: Vec<(Made<BundleUnit>, Option<Made<AgentUnit>>)> = compiled
        .model
        .plugins
        .iter()
        .flat_map(|p| &p.agents)
        .filter_map(|a| {
            let bundles = memo.peek_keyed::<BundleUnit>("bundles", &a.doc.file.rel)?;
            Some((
                bundles,
                memo.peek_keyed::<AgentUnit>("agent", &a.doc.file.rel),
            ))
        })
        .collect();
    let manifests: Vec<emit::site::AgentBundles> = units
        .iter()
        .map(|((bkey, b), a)| emit::site::AgentBundles {
            manifest: &b.manifest,
            compiled: a.as_ref().and_then(|(_, a)| a.result.as_ref().ok()),
            key: hash_of(&(bkey, a.as_ref().map_or(0, |(k, _)| *k))),
        })
        .collect();
    site(memo, compiled, &manifests, staging, false, false)?;
    crate::timing::time("carry the rest", || {
        staging.carry_rest(|rel| match rel.strip_prefix(SITE) {
            Some(page) => emit::site::holds_every_page(page),
            None => true,
        })
    });
    Ok(())
}

/// Every output of `compiled`, made from scratch (an empty memo): what `skillbook build` writes.
pub fn outputs_of(compiled: &Compiled) -> Result<(OutputTree, Vec<Skipped>), String> {
    let sink = MemorySink::default();
    let (skipped, _) = outputs(
        &mut Memo::default(),
        &HashMap::default(),
        compiled,
        &sink,
        false,
        None,
    )?;
    Ok((sink.into_tree(), skipped))
}

// ----- the build -----

/// What changed since the last build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Everything, from scratch: the first build, book.toml changed, or the watcher lost events.
    pub everything: bool,
    /// The theme changed: the site is rendered again (and bundles, if their templates changed).
    pub theme: bool,
    /// Content files and folders that changed, relative to the content root.
    pub content: BTreeSet<PathBuf>,
}

impl Plan {
    /// A plan that rebuilds everything (the first build).
    pub fn everything() -> Plan {
        Plan {
            everything: true,
            ..Plan::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.everything && !self.theme && self.content.is_empty()
    }

    /// Folds another plan into this one.
    pub fn merge(&mut self, other: Plan) {
        self.everything |= other.everything;
        self.theme |= other.theme;
        self.content.extend(other.content);
    }

    /// The changed paths, for the log line: `skills/x/patterns/raft.md`, or `book.toml`, `theme/`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.everything {
            parts.push("book.toml or lost events: everything".into());
        }
        if self.theme {
            parts.push("theme/".into());
        }
        let n = self.content.len();
        for p in self.content.iter().take(3) {
            parts.push(p.to_string_lossy().replace('\\', "/"));
        }
        if n > 3 {
            parts.push(format!("and {} more", n - 3));
        }
        parts.join(", ")
    }
}

/// What one build redid. Content paths are relative to the content root, output paths to the output directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files read from disk (the others came from memory).
    pub read: Vec<String>,
    /// Files whose bytes differ from what the engine held, or that are new.
    pub changed: Vec<String>,
    /// Files that were there last time and are gone.
    pub removed: Vec<String>,
    /// Files parsed (the others' parses came from memory).
    pub parsed: Vec<String>,
    /// Agents whose compiled plugin file was made again (by source path).
    pub expanded: Vec<String>,
    /// Skills whose compiled SKILL.md and references were made again (by folder).
    pub skills: Vec<String>,
    /// Agents whose bundles were packed again (by source path).
    pub bundled: Vec<String>,
    /// Site pages generated again from the model (by markdown path, `agents/x.md`); the others came from the memo,
    /// what they are made from being the same. Empty for a build that runs once (it keeps no page).
    pub generated: Vec<String>,
    /// Site pages rendered again (by markdown path, `agents/x.md`); the others' HTML came from the memo.
    pub rendered: Vec<String>,
    /// Output files written (the others were hard-linked from the previous output, or the output was unchanged).
    pub written: Vec<String>,
}

/// A build that was written.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// Files in the output.
    pub files: usize,
    /// Files written (the others were hard-linked from the previous output, their bytes unchanged).
    pub written: usize,
    /// Whether any output file was added, changed or removed.
    pub changed: bool,
    /// Only the site's pages were made (the first part of a deferred build: [`Engine::defer`]).
    pub partial: bool,
    pub warnings: usize,
    /// Diagnostics that the previous build did not have (all of them on the first build).
    pub new_diagnostics: Vec<Diagnostic>,
    /// Bundles that could not be made: the warning (with its help) printed for each.
    pub skipped: Vec<String>,
    /// Bundles that could not be made: the agent and why.
    pub skipped_bundles: Vec<Skipped>,
    pub stats: Stats,
    pub timings: Timings,
    pub elapsed: Duration,
}

/// Where a build's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Loading, parsing and checking (nothing when only the theme changed).
    pub compile: Duration,
    /// The compiled plugin and the bundles (taking unchanged units from the memo included).
    pub expand: Duration,
    /// The site and report.json.
    pub site: Duration,
    /// Writing the output and swapping it in.
    pub write: Duration,
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "load+check {} ms, expand+bundle {} ms, site {} ms, write {} ms",
            self.compile.as_millis(),
            self.expand.as_millis(),
            self.site.as_millis(),
            self.write.as_millis()
        )
    }
}

/// A build that failed: the previous output stays.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The errors (and new warnings), rendered for the terminal.
    pub diagnostics: Vec<Diagnostic>,
    /// A failure that is not in the content (book.toml, a template, the output directory).
    pub message: Option<String>,
    /// The text shown in the browser: the errors without colour, and a summary line.
    pub text: String,
    /// A usage or I/O failure (unreadable content root or files, an output directory it may not replace).
    pub io: bool,
    pub elapsed: Duration,
}

/// What a build did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Built(Box<Built>),
    Failed(Failed),
    /// The changed paths changed nothing that is built (a file saved without changes, a file the build does not read).
    Unchanged(Duration),
}

fn diag_key(d: &Diagnostic) -> (String, usize, usize, &'static str, String) {
    (d.path.clone(), d.line, d.column, d.code, d.message.clone())
}

/// The build: loads, checks and makes the outputs of a content root, and commits them to an output directory,
/// remembering what it can between builds.
pub struct Engine {
    root: Option<PathBuf>,
    /// The command running the engine, for suggestions in messages (`build`, `watch`, `serve`).
    command: &'static str,
    out: PathBuf,
    files: Files,
    parses: Parses,
    memo: Memo,
    compiled: Option<Compiled>,
    config: Option<Config>,
    /// The content root and stub pattern the inputs and parses were kept under.
    content_key: Option<u64>,
    /// Hashes of the files the last successful commit wrote, by output path.
    committed: Option<HashMap<String, u64>>,
    /// The diagnostics of the last build, to report only new ones.
    seen: HashSet<(String, usize, usize, &'static str, String)>,
    last_ok: bool,
    /// Delete the previous output on another thread after a swap (the watch loop), or rather keep it as the next
    /// staging directory, brought up to date in the background ([`write::Mirror`]).
    background: bool,
    /// Delete the previous output on another thread after a swap, and only that
    /// ([`Engine::delete_previous_later`]).
    delete_later: bool,
    /// Put off what the reload need not wait for (see [`Engine::defer`]).
    deferred: bool,
    /// No build follows (see [`Engine::once`]).
    once: bool,
    /// The last build put its second part off.
    pending: bool,
    /// When the last build started (its second part's time counts from there).
    started: Option<Instant>,
    /// The next staging directory, being prepared.
    mirror: Option<write::MirrorHandle>,
    progress: ProgressBar,
}

impl Engine {
    /// An engine for `root` (as given on the command line, `None` for `./book.toml`) writing to `out`, with every
    /// memo empty.
    pub fn new(root: Option<PathBuf>, out: PathBuf) -> Engine {
        Engine {
            root,
            command: "build",
            out,
            files: Files::default(),
            parses: Parses::default(),
            memo: Memo::default(),
            compiled: None,
            config: None,
            content_key: None,
            committed: None,
            seen: HashSet::default(),
            last_ok: false,
            background: false,
            delete_later: false,
            deferred: false,
            once: false,
            pending: false,
            started: None,
            mirror: None,
            progress: ProgressBar::hidden(),
        }
    }

    /// Builds in two parts (the watch loop): [`Engine::build`] makes the site's pages and commits them with everything
    /// else as the previous build left it, so that the reload waits for nothing more; [`Engine::finish`] then makes
    /// the rest (bundles and compiled agents, `print.html`, the search index, `llms-full.txt`) and commits the output
    /// a full build would write. The first build, and one after `book.toml` changed or a failure, is whole at once.
    pub fn defer(mut self, on: bool) -> Engine {
        self.deferred = on;
        self
    }

    /// No build follows this one (`skillbook build`): the process-wide memos of token counts and highlighted code are
    /// freed after their stages, and the generated pages are not kept, so that peak memory is the output's, not the
    /// memos'. The output is the same.
    pub fn once(mut self, on: bool) -> Engine {
        self.once = on;
        self
    }

    /// Deletes each previous output on another thread once the new one is in place (for a long-running process).
    pub fn background_cleanup(mut self, on: bool) -> Engine {
        self.background = on;
        self
    }

    /// Deletes the previous output on another thread once the new one is in place, for a process that ends after the
    /// build: it calls [`write::finish_cleanup`] before it exits, so the deletion runs while the process winds down.
    pub fn delete_previous_later(mut self, on: bool) -> Engine {
        self.delete_later = on;
        self
    }

    /// Names the command the engine runs for (in messages that suggest a fix).
    pub fn for_command(mut self, command: &'static str) -> Engine {
        self.command = command;
        self
    }

    /// Shows what the build is doing on `progress`.
    pub fn with_progress(mut self, progress: ProgressBar) -> Engine {
        self.progress = progress;
        self
    }

    /// The configuration of the last build, if it could be read.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The content of the last build that loaded, with its report.
    pub fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_ref()
    }

    /// The content root as diagnostics show it.
    pub fn root_display(&self) -> String {
        self.compiled
            .as_ref()
            .map(|c| c.root_display())
            .unwrap_or_default()
    }

    fn failed(&mut self, message: String, io: bool, start: Instant) -> Outcome {
        self.last_ok = false;
        Outcome::Failed(Failed {
            diagnostics: Vec::new(),
            text: format!("{message}\n"),
            message: Some(message),
            io,
            elapsed: start.elapsed(),
        })
    }

    /// Loads, parses and checks the content, reading and parsing only what changed.
    fn compile(&mut self, config: Config) -> io::Result<Compiled> {
        compile_with(config, &self.progress, &mut self.files, &mut self.parses)
    }

    /// Builds what `plan` says changed, and commits the output. The first build of an engine builds everything.
    pub fn build(&mut self, plan: &Plan) -> Outcome {
        let start = Instant::now();
        let config = match config::resolve_for(self.root.as_deref(), self.command) {
            Ok(c) => c,
            Err(e) => return self.failed(e, false, start),
        };
        let content_key = hash_of(&(&config.content_root, config.stub.as_str()));
        if plan.everything || self.content_key != Some(content_key) {
            self.files = Files::default();
            self.parses = Parses::default();
            self.memo = Memo::default();
            self.compiled = None;
            self.content_key = Some(content_key);
        }
        self.files.read.clear();
        self.files.changed.clear();
        self.files.removed.clear();
        self.parses.parsed.clear();
        self.memo.begin();
        self.files
            .dirty
            .extend(plan.content.iter().map(PathBuf::clone));
        self.config = Some(config.clone());
        let load = self.compiled.is_none() || !plan.content.is_empty();
        let mut timings = Timings::default();
        let t = Instant::now();
        if load {
            let root = config.content_root.display().to_string();
            let compiled = match crate::timing::time("compile", || self.compile(config)) {
                Ok(c) => c,
                Err(e) => {
                    self.compiled = None;
                    return self.failed(format!("cannot read {root}: {e}"), true, start);
                }
            };
            let files_changed = !self.files.changed.is_empty() || !self.files.removed.is_empty();
            let unchanged = !plan.everything
                && !plan.theme
                && self.last_ok
                && self.compiled.is_some()
                && !files_changed;
            self.compiled = Some(compiled);
            if unchanged {
                return Outcome::Unchanged(start.elapsed());
            }
        } else if let Some(c) = self.compiled.as_mut() {
            c.config = config;
        }
        let Some(compiled) = self.compiled.as_ref() else {
            return self.failed("nothing was compiled".into(), false, start);
        };
        let report = &compiled.report;
        let new: Vec<Diagnostic> = report
            .diagnostics
            .iter()
            .filter(|d| !self.seen.contains(&diag_key(d)))
            .cloned()
            .collect();
        self.seen = report.diagnostics.iter().map(diag_key).collect();
        let io_error = report.diagnostics.iter().any(|d| d.code == "io-error");
        // Gaps (an uncovered item, an unknown skill) build and are shown on the site; breakage keeps the output.
        if diagnostic::has_breakage(&report.diagnostics) || io_error {
            let failed = failure(compiled, report, new, io_error, start);
            self.last_ok = false;
            return failed;
        }
        timings.compile = t.elapsed();
        // Under watch/serve, with a previous output to carry the rest over from: the pages first.
        let first = self.deferred
            && !plan.everything
            && self.last_ok
            && self.committed.is_some()
            && self.out.join(write::MARKER).is_file();
        self.started = Some(start);
        self.emit(first, new, timings, start)
    }

    /// Whether the last build put off its second part ([`Engine::finish`] does it).
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// The second part of a build that put it off (see [`Engine::defer`]): every output, as a build from scratch makes
    /// it (the units whose inputs did not change taken from the memo), committed. `None` when nothing is owed.
    pub fn finish(&mut self) -> Option<Outcome> {
        if !self.pending {
            return None;
        }
        self.pending = false;
        let start = self.started.unwrap_or_else(Instant::now);
        self.memo.begin();
        Some(self.emit(false, Vec::new(), Timings::default(), start))
    }

    /// Makes the outputs of the compiled content and commits them: all of them, or with `first` only the site's pages
    /// (the rest, report.json included, carried over from the previous output, and owed: [`Engine::finish`]).
    fn emit(
        &mut self,
        mut first: bool,
        new: Vec<Diagnostic>,
        mut timings: Timings,
        start: Instant,
    ) -> Outcome {
        let Some(compiled) = self.compiled.as_ref() else {
            return self.failed("nothing was compiled".into(), false, start);
        };
        let report = &compiled.report;
        self.progress.set_message("emitting");
        // The files go into the new output as they are made. The memo keeps hashes, not bytes: a unit taken from it
        // has its files linked from the previous output, so without that output (deleted, or never committed) every
        // unit is made again.
        let present = self.out.join(write::MARKER).is_file();
        if !present || self.committed.is_none() {
            self.memo = Memo::default();
        }
        let out = self.out.display().to_string();
        let mut attempt = 0;
        let (staging, skipped, times) = loop {
            let previous = if present {
                self.committed.clone()
            } else {
                None
            };
            let mirror = self.mirror.take().and_then(write::MirrorHandle::wait);
            let staging = match Staging::begin_mirrored(&self.out, previous, mirror) {
                Ok(s) => s,
                Err(e) => return self.failed(format!("cannot write {out}: {e}"), true, start),
            };
            let made = if first {
                let t = Instant::now();
                crate::timing::time("pages first", || {
                    pages_first(&mut self.memo, compiled, &staging)
                })
                .map(|()| {
                    (
                        Vec::new(),
                        EmitTimes {
                            expand: Duration::ZERO,
                            site: t.elapsed(),
                        },
                    )
                })
            } else {
                crate::timing::time("outputs", || {
                    outputs(
                        &mut self.memo,
                        &self.parses.hashes,
                        compiled,
                        &staging,
                        self.once,
                        Some(&self.parses.parsed),
                    )
                })
            };
            let (skipped, times) = match made {
                Ok(t) => t,
                Err(e) => {
                    self.memo.forget_made();
                    return self.failed(e, false, start);
                }
            };
            // A file the memo knew is not in the previous output (someone changed it): once more, without the memo.
            if staging.stale() && attempt == 0 {
                attempt += 1;
                drop(staging);
                self.memo = Memo::default();
                self.memo.begin();
                // Without the memo there are no manifests to make the pages with: everything, at once.
                first = false;
                continue;
            }
            break (staging, skipped, times);
        };
        // The first part asks for the pages only: the other units stay for the second.
        if !first {
            self.memo.end();
        }
        timings.expand = times.expand;
        timings.site = times.site;
        let warnings = report.summary.warnings;

        let t = Instant::now();
        self.progress
            .set_message(format!("writing {}", self.out.display()));
        let hashes = staging.hashes();
        let changed = self.committed.as_ref() != Some(&hashes);
        let mut written = Vec::new();
        if changed || !present || !self.last_ok {
            let commit = crate::timing::time("write", || {
                staging.commit_mirrored(self.background || self.delete_later, self.background)
            });
            match commit {
                Ok((done, mirror)) => {
                    written = done.written;
                    self.mirror = mirror;
                }
                Err(e) => {
                    self.committed = None;
                    self.memo.forget_made();
                    return self.failed(format!("cannot write {out}: {e}"), true, start);
                }
            }
        }
        timings.write = t.elapsed();
        self.committed = Some(hashes);
        self.last_ok = true;
        self.pending = first;
        let stats = Stats {
            read: self.files.read.clone(),
            changed: self.files.changed.clone(),
            removed: self.files.removed.clone(),
            parsed: self.parses.parsed.clone(),
            expanded: self.memo.made("agent"),
            skills: self.memo.made("skill"),
            bundled: self.memo.made("bundles"),
            generated: self.memo.made("generated"),
            rendered: self.memo.made("page"),
            written,
        };
        Outcome::Built(Box::new(Built {
            files: self.committed.as_ref().map_or(0, HashMap::len),
            written: stats.written.len(),
            changed: changed || !present,
            partial: first,
            warnings,
            new_diagnostics: new,
            skipped: skipped
                .iter()
                .map(|(a, e)| crate::driver::skipped_bundle(a, e, &compiled.config))
                .collect(),
            skipped_bundles: skipped,
            stats,
            timings,
            elapsed: start.elapsed(),
        }))
    }
}

/// Loads, parses and checks the content a configuration names, from scratch (what `check` and `bundle` do). Only
/// an unreadable root is an `Err`.
pub fn compile(config: Config, progress: &ProgressBar) -> io::Result<Compiled> {
    compile_with(
        config,
        progress,
        &mut Files::default(),
        &mut Parses::default(),
    )
}

fn compile_with(
    config: Config,
    progress: &ProgressBar,
    files: &mut Files,
    parses: &mut Parses,
) -> io::Result<Compiled> {
    let mut diags = Vec::new();
    progress.set_message(format!("loading {}", config.content_root.display()));
    let opts = ParseOptions {
        stub: config.stub.clone(),
    };
    files.begin(&config.content_root);
    parses.begin();
    let ws = crate::timing::time("load", || {
        load::load_with(&config.content_root, &mut diags, files)
    });
    files.end();
    let ws = ws?;
    progress.set_message(format!("parsing {} files", ws.files));
    let model = crate::timing::time("parse", || parse::parse_with(ws, &opts, &mut diags, parses));
    parses.end();
    progress.set_message("checking");
    let report = crate::timing::time("check", || {
        check::check_with(&model, diags, config.coverage)
    });
    Ok(Compiled {
        config,
        model,
        report,
    })
}

/// A build stopped by errors in the content: the errors and the new warnings, and the text the browser shows.
fn failure(
    compiled: &Compiled,
    report: &Report,
    new: Vec<Diagnostic>,
    io: bool,
    start: Instant,
) -> Outcome {
    let root = compiled.root_display();
    let errors: Vec<Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    let mut text = String::new();
    for d in &errors {
        text.push_str(&diagnostic::render_human(
            d,
            &display_path(&root, &d.path),
            Style::default(),
        ));
    }
    text.push_str(&format!(
        "{}; {} of {} expertise items covered\n",
        diagnostic::summary_line(&report.diagnostics, report.summary.files),
        report.summary.covered_items,
        report.summary.items
    ));
    let mut shown = errors;
    shown.extend(new.into_iter().filter(|d| !d.is_error()));
    diagnostic::sort(&mut shown);
    Outcome::Failed(Failed {
        diagnostics: shown,
        message: None,
        text,
        io,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver;

    // ----- the engine, on a small project: agents a (skill s1), b (s2) and c (s1 and s2) -----

    /// The output files' bytes by path (their modes are `write`'s tests' business).
    type Files = std::collections::BTreeMap<String, Vec<u8>>;
    use std::fs;

    fn agent(name: &str, skills: &str, items: &str) -> String {
        format!(
            "---\nname: {name}\ndescription: Agent {name}.\nskills: [{skills}]\n---\n\n# {name}\n\n## Your Expertise\n\n- **Topics**: {items}\n\n[Content will be expanded in follow-up - this stub enables plugin loading]\n"
        )
    }

    fn pattern(title: &str, covers: &str, body: &str) -> String {
        format!("---\ntitle: {title}\ncovers: [{covers}]\npriority: 50\nsummary: About {title}.\n---\n\n## {title}\n\n{body}\n")
    }

    fn skill(name: &str) -> String {
        format!("---\nname: {name}\ndescription: Skill {name}.\n---\n\n# {name}\n\n[Content will be expanded in follow-up - this stub enables plugin loading]\n")
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let files = [
            ("book.toml", "[book]\ntitle = \"t\"\n\n[preprocessor.skillbook]\ncontent = \"content\"\nbudgets = [200, 4000]\n".to_string()),
            ("content/agents/a.md", agent("a", "s1", "Alpha")),
            ("content/agents/b.md", agent("b", "s2", "Beta")),
            ("content/agents/c.md", agent("c", "s1, s2", "Alpha, Beta")),
            ("content/skills/s1/SKILL.md", skill("s1")),
            ("content/skills/s1/patterns/alpha.md", pattern("Alpha", "Alpha", "Alpha text one.")),
            ("content/skills/s2/SKILL.md", skill("s2")),
            ("content/skills/s2/patterns/beta.md", pattern("Beta", "Beta", "Beta text.")),
        ];
        for (rel, text) in files {
            let path = p.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    fn read_tree(out: &Path) -> Files {
        fn walk(base: &Path, dir: &Path, tree: &mut Files) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, tree);
                } else {
                    let rel = p
                        .strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    if rel != write::MARKER {
                        tree.insert(rel, fs::read(&p).unwrap());
                    }
                }
            }
        }
        let mut tree = Files::new();
        walk(out, out, &mut tree);
        tree
    }

    /// What `skillbook build` would write for the project as it is now.
    fn full_build(root: &Path) -> Files {
        let config = config::resolve(Some(root)).unwrap();
        let compiled = driver::compile(config, &ProgressBar::hidden()).unwrap();
        driver::outputs(&compiled).unwrap().0.files
    }

    fn built(outcome: Outcome) -> Built {
        match outcome {
            Outcome::Built(b) => *b,
            other => panic!("expected a build, got {other:?}"),
        }
    }

    fn names(v: &[String]) -> Vec<&str> {
        let mut v: Vec<&str> = v.iter().map(String::as_str).collect();
        v.sort();
        v
    }

    /// Changes a file and returns the plan the watcher would make for it.
    fn edit(root: &Path, rel: &str, text: Option<&str>) -> Plan {
        let path = root.join(rel);
        match text {
            Some(t) => {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, t).unwrap();
            }
            None => fs::remove_file(&path).unwrap(),
        }
        let content = rel.strip_prefix("content/").map(PathBuf::from);
        Plan {
            everything: rel == "book.toml",
            theme: rel.starts_with("theme/"),
            content: content.into_iter().collect(),
        }
    }

    #[test]
    fn edits_redo_only_what_depends_on_them_and_match_a_full_build() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let mut b = Engine::new(Some(root.to_path_buf()), out.clone());

        let first = built(b.build(&Plan::everything()));
        assert_eq!(first.stats.read.len(), 7);
        assert_eq!(first.stats.parsed.len(), 7);
        assert_eq!(
            names(&first.stats.bundled),
            ["agents/a.md", "agents/b.md", "agents/c.md"]
        );
        assert_eq!(read_tree(&out), full_build(root));
        assert_eq!(first.written, first.files);

        // One pattern: its file is read and parsed; the agents using its skill are expanded and bundled again.
        let plan = edit(
            root,
            "content/skills/s1/patterns/alpha.md",
            Some(&pattern("Alpha", "Alpha", "Alpha text two.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.read), ["skills/s1/patterns/alpha.md"]);
        assert_eq!(names(&r.stats.parsed), ["skills/s1/patterns/alpha.md"]);
        assert_eq!(names(&r.stats.expanded), ["agents/a.md", "agents/c.md"]);
        assert_eq!(names(&r.stats.skills), ["skills/s1"]);
        assert_eq!(names(&r.stats.bundled), ["agents/a.md", "agents/c.md"]);
        let tree = read_tree(&out);
        assert_eq!(tree, full_build(root));
        let text = |k: &str| String::from_utf8(tree[k].clone()).unwrap();
        assert!(text("bundles/a/4000.md").contains("Alpha text two."));
        assert!(text("plugin/agents/c.md").contains("Alpha text two."));
        assert!(!text("plugin/agents/b.md").contains("Alpha"));
        assert!(
            r.written < r.files,
            "unchanged files are linked, not written"
        );
        // Written: exactly the outputs whose bytes changed. The pattern is small enough to go in full into both
        // budgets' bundles; the edit keeps its token count, so no manifest changes, and agent b is untouched.
        let outside_site: Vec<&str> = r
            .stats
            .written
            .iter()
            .map(String::as_str)
            .filter(|p| !p.starts_with("site/"))
            .collect();
        assert_eq!(
            outside_site,
            [
                "bundles/a/200.md",
                "bundles/a/4000.md",
                "bundles/c/200.md",
                "bundles/c/4000.md",
                "plugin/agents/a.md",
                "plugin/agents/c.md",
                "plugin/skills/s1/references/alpha.md",
            ]
        );

        // One agent: only it.
        let plan = edit(
            root,
            "content/agents/b.md",
            Some(&agent("b", "s2", "Beta").replace("# b", "# b\n\nNew intro.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.parsed), ["agents/b.md"]);
        assert_eq!(names(&r.stats.expanded), ["agents/b.md"]);
        assert!(r.stats.skills.is_empty());
        assert_eq!(names(&r.stats.bundled), ["agents/b.md"]);
        assert_eq!(read_tree(&out), full_build(root));

        // A SKILL.md whose name stays: its skill's files only; no agent depends on its text.
        let plan = edit(
            root,
            "content/skills/s1/SKILL.md",
            Some(&skill("s1").replace("# s1", "# s1\n\nMore words.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.parsed), ["skills/s1/SKILL.md"]);
        assert_eq!(names(&r.stats.skills), ["skills/s1"]);
        assert!(r.stats.expanded.is_empty() && r.stats.bundled.is_empty());
        assert_eq!(read_tree(&out), full_build(root));

        // The theme: the site only.
        let plan = edit(
            root,
            "theme/css/skillbook.css",
            Some("body { color: #123456; }\n"),
        );
        let r = built(b.build(&plan));
        assert!(r.stats.read.is_empty() && r.stats.parsed.is_empty());
        assert!(r.stats.expanded.is_empty() && r.stats.bundled.is_empty());
        assert_eq!(read_tree(&out), full_build(root));

        // Saved without a change: nothing to do.
        let same = fs::read_to_string(root.join("content/agents/a.md")).unwrap();
        let plan = edit(root, "content/agents/a.md", Some(&same));
        assert!(matches!(b.build(&plan), Outcome::Unchanged(_)));

        // A new pattern, then gone again.
        let plan = edit(
            root,
            "content/skills/s2/patterns/gamma.md",
            Some(&pattern("Gamma", "Beta", "Gamma text.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.read), ["skills/s2/patterns/gamma.md"]);
        assert_eq!(names(&r.stats.expanded), ["agents/b.md", "agents/c.md"]);
        assert_eq!(read_tree(&out), full_build(root));
        assert!(read_tree(&out).contains_key("plugin/skills/s2/references/gamma.md"));
        let plan = edit(root, "content/skills/s2/patterns/gamma.md", None);
        let r = built(b.build(&plan));
        assert!(r.stats.read.is_empty() && r.stats.parsed.is_empty());
        assert_eq!(names(&r.stats.removed), ["skills/s2/patterns/gamma.md"]);
        assert_eq!(names(&r.stats.bundled), ["agents/b.md", "agents/c.md"]);
        assert_eq!(read_tree(&out), full_build(root));
        assert!(!read_tree(&out).contains_key("plugin/skills/s2/references/gamma.md"));

        // A skill folder renamed: its files are new paths.
        fs::rename(
            root.join("content/skills/s2"),
            root.join("content/skills/s3"),
        )
        .unwrap();
        let plan = Plan {
            content: [PathBuf::from("skills/s2"), PathBuf::from("skills/s3")].into(),
            ..Plan::default()
        };
        let r = built(b.build(&plan));
        assert_eq!(
            names(&r.stats.read),
            ["skills/s3/SKILL.md", "skills/s3/patterns/beta.md"]
        );
        assert_eq!(names(&r.stats.bundled), ["agents/b.md", "agents/c.md"]);
        assert_eq!(read_tree(&out), full_build(root));

        // book.toml: everything.
        let toml = fs::read_to_string(root.join("book.toml"))
            .unwrap()
            .replace("[200, 4000]", "[300, 4000]");
        let plan = edit(root, "book.toml", Some(&toml));
        let r = built(b.build(&plan));
        assert_eq!(r.stats.parsed.len(), 7);
        assert_eq!(r.stats.bundled.len(), 3);
        let tree = read_tree(&out);
        assert!(tree.contains_key("bundles/a/300.md") && !tree.contains_key("bundles/a/200.md"));
        assert_eq!(tree, full_build(root));
    }

    /// The compiled agent's key has the agent budget: changing it makes every compiled agent again (and only them),
    /// and the new budget shapes them.
    #[test]
    fn the_agent_budget_is_in_the_compiled_agents_key() {
        let dir = project();
        // A page long enough that a part of it and a pointer take less than it does whole.
        let long = "Alpha text, one paragraph of many.\n\n".repeat(40);
        edit(
            dir.path(),
            "content/skills/s1/patterns/alpha.md",
            Some(&pattern("Alpha", "Alpha", &long)),
        );
        let config = config::resolve(Some(dir.path())).unwrap();
        let mut compiled = driver::compile(config, &ProgressBar::hidden()).unwrap();
        let mut memo = Memo::default();
        // Units taken from the memo keep their files from the previous output: here, the last tree made.
        let last = std::cell::RefCell::new(OutputTree::new());
        let build = |memo: &mut Memo, c: &Compiled| {
            memo.begin();
            let sink = MemorySink::new(last.borrow().clone());
            let r =
                outputs(memo, &HashMap::default(), c, &sink, false, None).map(|_| sink.into_tree());
            memo.end();
            if let Ok(t) = &r {
                *last.borrow_mut() = t.clone();
            }
            r
        };
        let first = build(&mut memo, &compiled).unwrap();
        assert_eq!(memo.made("agent").len(), 3);
        build(&mut memo, &compiled).unwrap();
        assert!(memo.made("agent").is_empty() && memo.made("bundles").is_empty());

        // One token less than agent a takes whole: a is cut (its pattern partly, with a pointer).
        let a = &compiled.model.plugins[0].agents[0];
        assert_eq!(a.name, "a");
        let compiler = plugin::Compiler::new(&compiled.model);
        let whole = compiler
            .agents(plugin::AgentSettings::of(&compiled.config))
            .agent(0, a, PLUGIN)
            .unwrap()
            .prompt;
        assert_eq!((whole.full, whole.budget), (1, Some(8000)));
        compiled.config.agent_budget = whole.tokens as u32 - 1;
        let second = build(&mut memo, &compiled).unwrap();
        assert_eq!(
            names(&memo.made("agent")),
            ["agents/a.md", "agents/b.md", "agents/c.md"]
        );
        assert!(memo.made("bundles").is_empty() && memo.made("skill").is_empty());
        let text = |f: &OutputTree| String::from_utf8(f["plugin/agents/a.md"].clone()).unwrap();
        assert_ne!(text(&first), text(&second));
        assert!(
            text(&second)
                .contains("Full page: `${CLAUDE_PLUGIN_ROOT}/skills/s1/references/alpha.md`"),
            "{}",
            text(&second)
        );
        assert_eq!(first["bundles/a/4000.md"], second["bundles/a/4000.md"]);
        // Too small for any agent: the build fails, naming the key.
        compiled.config.agent_budget = 1;
        let err = build(&mut memo, &compiled).unwrap_err();
        assert!(
            err.starts_with("the agent budget (1 tokens) is too small"),
            "{err}"
        );
        assert!(
            err.contains("set `agent-budget` under [preprocessor.skillbook]"),
            "{err}"
        );
        assert!(err.contains("agent `a` needs at least"), "{err}");
    }

    /// A skill's own `references/` file is in its SKILL.md's index: editing it makes that skill again.
    #[test]
    fn a_skills_own_reference_is_in_its_index_and_its_key() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let notes = "content/skills/s1/references/notes.md";
        edit(root, notes, Some("# Notes\n\nFirst words.\n"));
        let mut b = Engine::new(Some(root.to_path_buf()), out.clone());
        built(b.build(&Plan::everything()));
        let skill_md = out.join("plugin/skills/s1/SKILL.md");
        let text = fs::read_to_string(&skill_md).unwrap();
        assert!(
            text.contains("- [Notes](references/notes.md): First words."),
            "{text}"
        );
        let plan = edit(root, notes, Some("# Notes\n\nSecond words.\n"));
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.skills), ["skills/s1"]);
        assert!(r.stats.expanded.is_empty() && r.stats.bundled.is_empty());
        let text = fs::read_to_string(&skill_md).unwrap();
        assert!(
            text.contains("- [Notes](references/notes.md): Second words."),
            "{text}"
        );
        assert_eq!(read_tree(&out), full_build(root));
    }

    #[test]
    fn an_edit_re_renders_and_rewrites_only_the_pages_that_show_it() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let mut b = Engine::new(Some(root.to_path_buf()), out.clone());
        let first = built(b.build(&Plan::everything()));
        let pages = first.stats.rendered.len();
        assert!(pages >= 8, "{:?}", first.stats.rendered);

        // A pattern's body: only its own page shows it (agent and skill pages show its summary), so only that page
        // is rendered again; written are its page, its markdown, and the files that hold every page.
        let plan = edit(
            root,
            "content/skills/s1/patterns/alpha.md",
            Some(&pattern("Alpha", "Alpha", "Alpha text two.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.rendered), ["patterns/s1/alpha.md"]);
        // Generated again: the pattern's page, and the pages that show what the bundle stage made of it (the agents
        // using its skill: their compiled prompt's size; their bundles pages), which render the same as before.
        assert_eq!(
            names(&r.stats.generated),
            [
                "agents/a.md",
                "agents/c.md",
                "bundles/a.md",
                "bundles/c.md",
                "patterns/s1/alpha.md"
            ]
        );
        let site: Vec<&str> = r
            .stats
            .written
            .iter()
            .filter_map(|p| p.strip_prefix("site/"))
            .collect();
        assert_eq!(
            site,
            [
                "llms-full.txt",
                "patterns/s1/alpha.html",
                "patterns/s1/alpha.md",
                "print.html",
                // The search fragments that hold the page's text and the terms that came and went ("one", "two"):
                // this small index is one term fragment, and its list of fragments stays the same.
                "search/d/0.js",
                "search/t/303030.js",
            ]
        );
        assert_eq!(read_tree(&out), full_build(root));

        // A title: the navigation changes, so every page (each names the navigation script) is rendered again.
        let plan = edit(
            root,
            "content/skills/s1/patterns/alpha.md",
            Some(&pattern("Alpha prime", "Alpha", "Alpha text two.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(r.stats.rendered.len(), pages);
        // A title is in what every page may read (the model's shape), so every page is generated again too.
        assert_eq!(r.stats.generated.len(), pages);
        assert_eq!(read_tree(&out), full_build(root));

        // An agent's text: its page, and its bundles' page (the new intro changes their token counts); no other.
        let plan = edit(
            root,
            "content/agents/b.md",
            Some(&agent("b", "s2", "Beta").replace("# b", "# b\n\nNew intro.")),
        );
        let r = built(b.build(&plan));
        assert_eq!(names(&r.stats.rendered), ["agents/b.md", "bundles/b.md"]);
        assert_eq!(read_tree(&out), full_build(root));

        // The theme's stylesheet: its hashed name is in every page, so every page.
        let plan = edit(
            root,
            "theme/css/skillbook.css",
            Some("body { color: #123456; }\n"),
        );
        let r = built(b.build(&plan));
        assert_eq!(r.stats.rendered.len(), pages);
        assert_eq!(read_tree(&out), full_build(root));
    }

    #[test]
    fn a_gap_builds_and_shows_on_the_site() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let mut b = Engine::new(Some(root.to_path_buf()), out.clone());
        built(b.build(&Plan::everything()));
        // An uncovered item is a gap: the output is written, the coverage page has the red row, report.json lists it.
        let plan = edit(
            root,
            "content/agents/b.md",
            Some(&agent("b", "s2", "Beta, Delta")),
        );
        let r = built(b.build(&plan));
        assert!(r.changed);
        assert!(
            r.new_diagnostics.iter().any(|d| d.code == "uncovered-item"),
            "{:?}",
            r.new_diagnostics
        );
        let tree = read_tree(&out);
        let coverage = String::from_utf8_lossy(&tree["site/coverage.html"]).into_owned();
        assert!(
            coverage.contains("<tr class=\"sb-uncovered\">"),
            "no red row"
        );
        let uncovered = coverage.split("Uncovered items").nth(1).unwrap_or_default();
        assert!(
            uncovered.contains("Delta"),
            "Delta is not listed as uncovered"
        );
        let report = String::from_utf8_lossy(&tree["report.json"]).into_owned();
        assert!(report.contains("\"uncovered-item\""), "{report}");
        assert_eq!(tree, full_build(root));
    }

    #[test]
    fn a_failed_build_keeps_the_last_good_output_until_fixed() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let mut b = Engine::new(Some(root.to_path_buf()), out.clone());
        built(b.build(&Plan::everything()));
        let good = read_tree(&out);

        let broken =
            "---\ntitle: Alpha\ncovers: [Alpha]\n\nThe closing line of the frontmatter is gone.\n";
        let plan = edit(root, "content/skills/s1/patterns/alpha.md", Some(broken));
        let Outcome::Failed(f) = b.build(&plan) else {
            panic!("expected a failure")
        };
        assert!(f.text.contains("skills/s1/patterns/alpha.md"), "{}", f.text);
        assert!(f.text.contains("error"), "{}", f.text);
        assert_eq!(read_tree(&out), good);

        // An uncovered item is an error too.
        let plan = edit(
            root,
            "content/agents/b.md",
            Some(&agent("b", "s2", "Beta, Delta")),
        );
        let Outcome::Failed(f) = b.build(&plan) else {
            panic!("expected a failure")
        };
        assert!(f.text.contains("uncovered-item"), "{}", f.text);
        assert_eq!(read_tree(&out), good);

        edit(root, "content/agents/b.md", Some(&agent("b", "s2", "Beta")));
        let plan = edit(
            root,
            "content/skills/s1/patterns/alpha.md",
            Some(&pattern("Alpha", "Alpha", "Fixed.")),
        );
        let mut plan2 = plan;
        plan2.content.insert(PathBuf::from("agents/b.md"));
        let r = built(b.build(&plan2));
        assert!(r.changed);
        let tree = read_tree(&out);
        assert!(String::from_utf8_lossy(&tree["plugin/agents/a.md"]).contains("Fixed."));
        assert_eq!(tree, full_build(root));
    }
}
