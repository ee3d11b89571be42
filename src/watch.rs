//! Watch: rebuilds on every change under the content root, `theme/` and `book.toml`, redoing only what changed.
//!
//! Three parts:
//!
//! - **What changed** (pure, like zola's `fs_utils`): [`classify`] names what one changed path is ([`Change`]), and
//!   [`Plan::add`] folds debounced notify events into a [`Plan`]: rebuild everything (book.toml, lost events), the
//!   site (the theme), or the content paths that changed. Editor temporary files, hidden folders and the output
//!   directory are ignored.
//! - **Rebuilding** ([`Builder`]): reads and parses only the files that changed, expands and bundles only the
//!   agents and skills whose inputs changed (see [`crate::cache`]), renders the site whole, and writes the output
//!   atomically, hard-linking the files whose bytes did not change. A failed build leaves the last good output.
//! - **The loop** ([`run`]): notify with a debouncer (a burst of saves is one rebuild), the builder, and a listener
//!   (`serve` pushes each outcome to the browser) that is called only once the new output is completely in place.

use crate::cache::{hash_bytes, hash_of, Cache, Stats};
use crate::config::{self, Config};
use crate::diagnostic::{self, Diagnostic, Style};
use crate::driver::{self, Compiled, Options};
use crate::emit::report::display_path;
use crate::write;
use crate::Exit;
use indicatif::ProgressBar;
use notify_debouncer_full::notify::event::{AccessKind, AccessMode, MetadataKind};
use notify_debouncer_full::notify::{Event, EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long a path must be quiet before its events are handed on: a burst of saves is one rebuild.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// The paths that decide what a change means, all absolute and with symlinks resolved (as notify reports them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The content root.
    pub content: PathBuf,
    /// The folder whose `book.toml` configures the build (ROOT, or the working directory).
    pub config_dir: PathBuf,
    /// The theme folder (`theme/` beside a book.toml with a `[preprocessor.skillbook]` table).
    pub theme: Option<PathBuf>,
    /// The output directory.
    pub out: PathBuf,
}

/// Absolute, with symlinks resolved as far as the path exists.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => absolute(parent).join(name),
        _ => abs,
    }
}

impl Roots {
    /// The roots of a configuration; `root` is ROOT as given on the command line.
    pub fn of(config: &Config, root: Option<&Path>, out: &Path) -> Roots {
        Roots {
            content: absolute(&config.content_root),
            config_dir: absolute(root.unwrap_or(Path::new("."))),
            theme: config
                .book_dir
                .as_deref()
                .map(|d| absolute(d).join("theme")),
            out: absolute(out),
        }
    }

    /// What to watch: the content root and the theme recursively, the config folder (book.toml) on its own.
    pub fn watches(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut recursive: Vec<PathBuf> = vec![self.content.clone()];
        if let Some(t) = self.theme.as_ref().filter(|t| t.is_dir()) {
            if !t.starts_with(&self.content) {
                recursive.push(t.clone());
            }
        }
        let mut out: Vec<(PathBuf, RecursiveMode)> = recursive
            .into_iter()
            .map(|p| (p, RecursiveMode::Recursive))
            .collect();
        if !self.config_dir.starts_with(&self.content) {
            out.push((self.config_dir.clone(), RecursiveMode::NonRecursive));
        }
        out
    }
}

/// What one changed path means for the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing: an editor's temporary file, a hidden file, the output, or a path outside what is built.
    Ignore,
    /// `book.toml`: everything is rebuilt.
    Config,
    /// A file of the theme: the site is rendered again (and the bundles, if their templates changed).
    Theme,
    /// A file or folder of the content, relative to the content root.
    Content(PathBuf),
}

/// Editors' temporary and backup files: vim (`.x.swp`, `4913`, `x~`), emacs (`.#x`, `#x#`), JetBrains, kate,
/// and `*.tmp` files written before a rename.
pub fn is_editor_temp(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#') && name.len() > 1)
        || (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        || [
            ".swp",
            ".swx",
            ".swo",
            ".swpx",
            ".tmp",
            ".temp",
            ".bak",
            ".kate-swp",
            ".crswap",
            "___jb_tmp___",
            "___jb_old___",
        ]
        .iter()
        .any(|s| lower.ends_with(s))
        || lower.starts_with(".goutputstream-")
}

/// What a changed path means. `path` is absolute, as notify reports it.
pub fn classify(path: &Path, roots: &Roots) -> Change {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if is_editor_temp(&name) {
        return Change::Ignore;
    }
    if path.starts_with(&roots.out) {
        return Change::Ignore;
    }
    if let (Some(parent), Some(out_name)) = (roots.out.parent(), roots.out.file_name()) {
        // The output's temporary siblings while it is swapped in.
        let prefix = format!(".{}.skillbook-", out_name.to_string_lossy());
        if let Ok(rest) = path.strip_prefix(parent) {
            if let Some(Component::Normal(first)) = rest.components().next() {
                if first.to_string_lossy().starts_with(&prefix) {
                    return Change::Ignore;
                }
            }
        }
    }
    if path == roots.config_dir.join("book.toml") {
        return Change::Config;
    }
    if let Some(theme) = &roots.theme {
        if path.starts_with(theme) {
            return Change::Theme;
        }
    }
    if let Ok(rel) = path.strip_prefix(&roots.content) {
        // The loader skips hidden files and folders, except the plugin manifests' folder.
        let hidden = rel.components().any(|c| {
            let s = c.as_os_str().to_string_lossy();
            s.starts_with('.') && s != ".claude-plugin"
        });
        if hidden {
            return Change::Ignore;
        }
        return Change::Content(rel.to_path_buf());
    }
    Change::Ignore
}

/// Whether an event can change a file's content or presence (opening and reading cannot).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(notify_debouncer_full::notify::event::ModifyKind::Metadata(
            MetadataKind::AccessTime,
        )) => false,
        _ => true,
    }
}

/// What a batch of changes asks to be redone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Everything, from scratch: book.toml changed, or the watcher lost events.
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

    /// Adds what one notify event asks for.
    pub fn add(&mut self, event: &Event, roots: &Roots) {
        if event.need_rescan() {
            self.everything = true;
            return;
        }
        if !is_change(&event.kind) {
            return;
        }
        for path in &event.paths {
            match classify(path, roots) {
                Change::Ignore => {}
                Change::Config => self.everything = true,
                Change::Theme => self.theme = true,
                Change::Content(rel) => {
                    self.content.insert(rel);
                }
            }
        }
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

/// A build that was written.
#[derive(Debug, Clone)]
pub struct Built {
    /// Files in the output.
    pub files: usize,
    /// Files written (the others were hard-linked from the previous output, their bytes unchanged).
    pub written: usize,
    /// Whether any output file was added, changed or removed.
    pub changed: bool,
    pub warnings: usize,
    /// Diagnostics that the previous build did not have (all of them on the first build).
    pub new_diagnostics: Vec<Diagnostic>,
    /// Bundles that could not be made: the warning (with its help) printed for each.
    pub skipped: Vec<String>,
    pub stats: Stats,
    pub timings: Timings,
    pub elapsed: Duration,
}

/// Where a rebuild's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Loading, parsing and checking (nothing when only the theme changed).
    pub compile: Duration,
    /// Expanding agents and skills and packing bundles (taking unchanged ones from the cache included).
    pub expand: Duration,
    /// The rest of the outputs: the site (rendered whole by mdBook) and report.json.
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
    /// Writing the output failed (the output directory is not skillbook's, or cannot be written).
    pub io: bool,
    pub elapsed: Duration,
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Built(Box<Built>),
    Failed(Failed),
    /// The changed paths changed nothing that is built (a file saved without changes, a file the build does not read).
    Unchanged(Duration),
}

/// Rebuilds the output, redoing only what the changed paths affect. Keeps the caches between rebuilds.
pub struct Builder {
    root: Option<PathBuf>,
    out: PathBuf,
    cache: Cache,
    compiled: Option<Compiled>,
    config: Option<Config>,
    /// The content root and stub pattern the caches were filled under.
    content_key: Option<u64>,
    /// Hashes of the files the last successful commit wrote, by output path.
    committed: Option<HashMap<String, u64>>,
    /// The diagnostics of the last build, to print only new ones.
    seen: HashSet<(String, usize, usize, &'static str, String)>,
    last_ok: bool,
}

fn diag_key(d: &Diagnostic) -> (String, usize, usize, &'static str, String) {
    (d.path.clone(), d.line, d.column, d.code, d.message.clone())
}

impl Builder {
    /// A builder for `root` (as given on the command line) writing to `out`.
    pub fn new(root: Option<PathBuf>, out: PathBuf) -> Builder {
        Builder {
            root,
            out,
            cache: Cache::new(),
            compiled: None,
            config: None,
            content_key: None,
            committed: None,
            seen: HashSet::new(),
            last_ok: false,
        }
    }

    /// The configuration of the last build, if it could be read.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The content root as diagnostics show it.
    fn root_display(&self) -> String {
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

    /// Rebuilds what `plan` asks for.
    pub fn build(&mut self, plan: &Plan) -> Outcome {
        let start = Instant::now();
        let config = match config::resolve(self.root.as_deref()) {
            Ok(c) => c,
            Err(e) => return self.failed(e, false, start),
        };
        let content_key = hash_of(&(&config.content_root, config.stub.as_str()));
        if plan.everything || self.content_key != Some(content_key) {
            self.cache.clear();
            self.compiled = None;
            self.content_key = Some(content_key);
        }
        self.cache.clear_stats();
        self.cache
            .invalidate(plan.content.iter().map(PathBuf::as_path));
        self.config = Some(config.clone());
        let load = self.compiled.is_none() || !plan.content.is_empty();
        let mut timings = Timings::default();
        let t = Instant::now();
        if load {
            let root = config.content_root.display().to_string();
            let compiled =
                match driver::compile_with(config, &ProgressBar::hidden(), Some(&mut self.cache)) {
                    Ok(c) => c,
                    Err(e) => {
                        self.compiled = None;
                        return self.failed(format!("cannot read {root}: {e}"), true, start);
                    }
                };
            let unchanged = !plan.everything
                && !plan.theme
                && self.last_ok
                && self.compiled.is_some()
                && !self.cache.content_changed();
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
            self.last_ok = false;
            return Outcome::Failed(Failed {
                diagnostics: shown,
                message: None,
                text,
                io: io_error,
                elapsed: start.elapsed(),
            });
        }
        timings.compile = t.elapsed();
        let t = Instant::now();
        let (tree, skipped) = match driver::outputs_with(compiled, Some(&mut self.cache)) {
            Ok(t) => t,
            Err(e) => return self.failed(e, false, start),
        };
        timings.expand = self.cache.emit_time();
        timings.site = t.elapsed().saturating_sub(timings.expand);
        let t = Instant::now();
        let warnings = report.summary.warnings;
        let hashes: HashMap<String, u64> = {
            let known = self.cache.output_hashes();
            tree.iter()
                .map(|(k, v)| {
                    let h = known.get(k).copied().unwrap_or_else(|| hash_bytes(v));
                    (k.clone(), h)
                })
                .collect()
        };
        let changed = self.committed.as_ref() != Some(&hashes);
        let present = self.out.join(write::MARKER).is_file();
        let mut written = 0;
        if changed || !present || !self.last_ok {
            let committed = if present {
                self.committed.take().unwrap_or_default()
            } else {
                HashMap::new()
            };
            let unchanged = |rel: &str| {
                committed
                    .get(rel)
                    .is_some_and(|h| hashes.get(rel) == Some(h))
            };
            match write::commit_reusing(&self.out, &tree, &unchanged) {
                Ok(linked) => written = tree.len() - linked,
                Err(e) => {
                    self.committed = None;
                    let out = self.out.display().to_string();
                    return self.failed(format!("cannot write {out}: {e}"), true, start);
                }
            }
        }
        timings.write = t.elapsed();
        self.committed = Some(hashes);
        self.last_ok = true;
        Outcome::Built(Box::new(Built {
            files: tree.len(),
            written,
            changed: changed || !present,
            warnings,
            new_diagnostics: new,
            skipped: skipped
                .iter()
                .map(|(a, e)| driver::skipped_bundle(a, e, &compiled.config))
                .collect(),
            stats: self.cache.stats(),
            timings,
            elapsed: start.elapsed(),
        }))
    }

    /// Prints an outcome on stderr: diagnostics, then one line saying what was done.
    pub fn print(&self, outcome: &Outcome, plan: &Plan, first: bool, opts: &Options) {
        let style = opts.style(std::io::stderr().is_terminal());
        let root = self.root_display();
        let mut err = String::new();
        match outcome {
            Outcome::Built(b) => {
                if !opts.quiet {
                    for d in &b.new_diagnostics {
                        err.push_str(&diagnostic::render_human(
                            d,
                            &display_path(&root, &d.path),
                            style,
                        ));
                    }
                    for s in &b.skipped {
                        err.push_str(s);
                    }
                }
                let ms = b.elapsed.as_millis();
                if first {
                    err.push_str(&format!(
                        "built {} into {} ({}) in {ms} ms ({})\n",
                        driver::plural(b.files, "file"),
                        self.out.display(),
                        driver::plural(b.warnings + b.skipped.len(), "warning"),
                        b.timings
                    ));
                } else {
                    err.push_str(&format!(
                        "rebuilt in {ms} ms after {}: {}; wrote {} of {} files{} ({})\n",
                        plan.describe(),
                        describe_stats(&b.stats),
                        b.written,
                        b.files,
                        if b.changed { "" } else { " (output unchanged)" },
                        b.timings
                    ));
                }
            }
            Outcome::Failed(f) => {
                for d in &f.diagnostics {
                    err.push_str(&diagnostic::render_human(
                        d,
                        &display_path(&root, &d.path),
                        style,
                    ));
                }
                if let Some(m) = &f.message {
                    err.push_str(&format!("skillbook: error: {m}\n"));
                }
                let errors = f.diagnostics.iter().filter(|d| d.is_error()).count();
                let what = if errors > 0 {
                    format!("{errors} error{}", if errors == 1 { "" } else { "s" })
                } else {
                    "an error".to_string()
                };
                err.push_str(&format!(
                    "build failed ({what}); {} still holds the last good build\n",
                    self.out.display()
                ));
            }
            Outcome::Unchanged(t) => {
                if !opts.quiet {
                    err.push_str(&format!(
                        "nothing to rebuild after {} ({} ms)\n",
                        plan.describe(),
                        t.as_millis()
                    ));
                }
            }
        }
        eprint!("{err}");
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `read 1 file, parsed 1, expanded 2 agents and 1 skill, bundled 2 agents`.
pub fn describe_stats(s: &Stats) -> String {
    format!(
        "read {}, parsed {}, expanded {} and {}, bundled {}",
        plural(s.read.len(), "file", "files"),
        s.parsed.len(),
        plural(s.expanded.len(), "agent", "agents"),
        plural(s.skills.len(), "skill", "skills"),
        plural(s.bundled.len(), "agent", "agents"),
    )
}

/// What the watch loop waits for.
enum Msg {
    Events(DebounceEventResult),
    Stop,
}

/// Watches and rebuilds until Ctrl-C. `listener` sees every outcome once its output is in place (the first build's
/// too); `ready` is called once after the first build.
pub fn run(
    opts: &Options,
    out: &Path,
    listener: &mut dyn FnMut(&Outcome),
    ready: &mut dyn FnMut(),
) -> Exit {
    let config = match config::resolve_for(opts.root.as_deref(), opts.command) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skillbook: error: {e}");
            return Exit::Failure;
        }
    };
    if !config.content_root.is_dir() {
        eprintln!(
            "skillbook: error: {} is not a directory",
            config.content_root.display()
        );
        return Exit::Failure;
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    let stop = tx.clone();
    let building = Arc::new(AtomicBool::new(false));
    let busy = building.clone();
    let presses = AtomicUsize::new(0);
    // Ctrl-C between builds stops at once. During a build it stops once the build is done (its output is written
    // whole or not at all); a second Ctrl-C stops at once, leaving the previous output as it was.
    // A second handler cannot be installed (tests call this in-process); Ctrl-C then ends the process as usual.
    let _ = ctrlc::set_handler(move || {
        let n = presses.fetch_add(1, Ordering::SeqCst) + 1;
        if busy.load(Ordering::SeqCst) {
            if n >= 2 {
                eprintln!("stopped during a build; the output is as it was before it");
                std::process::exit(130);
            }
            eprintln!("stopping after this build (Ctrl-C again to stop now)");
        }
        let _ = stop.send(Msg::Stop);
    });
    let mut debouncer = match new_debouncer(DEBOUNCE, None, move |r: DebounceEventResult| {
        let _ = tx.send(Msg::Events(r));
    }) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skillbook: error: cannot watch files: {e}");
            return Exit::Failure;
        }
    };
    let mut roots = Roots::of(&config, opts.root.as_deref(), out);
    let mut watched: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    if let Err(e) = rewatch(&mut debouncer, &mut watched, &roots) {
        eprintln!("skillbook: error: cannot watch {e}");
        return Exit::Failure;
    }
    if !opts.quiet {
        let names: Vec<String> = watched
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        eprintln!(
            "watching {} for changes (Ctrl-C to stop); output in {}",
            names.join(", "),
            out.display()
        );
    }
    let mut builder = Builder::new(opts.root.clone(), out.to_path_buf());
    let plan = Plan::everything();
    building.store(true, Ordering::SeqCst);
    let outcome = builder.build(&plan);
    building.store(false, Ordering::SeqCst);
    builder.print(&outcome, &plan, true, opts);
    if let Outcome::Failed(f) = &outcome {
        if f.io && f.diagnostics.is_empty() {
            return Exit::Failure;
        }
    }
    listener(&outcome);
    ready();
    loop {
        let mut plan = Plan::default();
        match rx.recv() {
            Ok(Msg::Stop) | Err(_) => break,
            Ok(Msg::Events(r)) => add_events(&mut plan, r, &roots),
        }
        // Whatever else is already queued (events that arrived during the last build) joins this rebuild.
        let mut stop = false;
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Stop => stop = true,
                Msg::Events(r) => add_events(&mut plan, r, &roots),
            }
        }
        if stop {
            break;
        }
        if plan.is_empty() {
            continue;
        }
        building.store(true, Ordering::SeqCst);
        let outcome = builder.build(&plan);
        building.store(false, Ordering::SeqCst);
        builder.print(&outcome, &plan, false, opts);
        if !matches!(outcome, Outcome::Unchanged(_)) {
            listener(&outcome);
        }
        if let Some(config) = builder.config() {
            let next = Roots::of(config, opts.root.as_deref(), out);
            if next != roots || theme_appeared(&watched, &next) {
                roots = next;
                if let Err(e) = rewatch(&mut debouncer, &mut watched, &roots) {
                    eprintln!("skillbook: warning: cannot watch {e}");
                }
            }
        }
    }
    if !opts.quiet {
        eprintln!("stopped watching");
    }
    Exit::Success
}

fn theme_appeared(watched: &[(PathBuf, RecursiveMode)], roots: &Roots) -> bool {
    roots.watches().len() != watched.len()
}

fn add_events(plan: &mut Plan, result: DebounceEventResult, roots: &Roots) {
    match result {
        Ok(events) => {
            for e in &events {
                plan.add(e, roots);
            }
        }
        Err(errors) => {
            for e in errors {
                eprintln!("skillbook: warning: file watcher: {e}; rebuilding everything");
            }
            plan.everything = true;
        }
    }
}

/// Makes the watched paths those `roots` asks for.
fn rewatch<W: notify_debouncer_full::notify::Watcher, C: notify_debouncer_full::FileIdCache>(
    debouncer: &mut notify_debouncer_full::Debouncer<W, C>,
    watched: &mut Vec<(PathBuf, RecursiveMode)>,
    roots: &Roots,
) -> Result<(), String> {
    for (p, _) in watched.drain(..) {
        let _ = debouncer.unwatch(&p);
    }
    for (p, mode) in roots.watches() {
        debouncer
            .watch(&p, mode)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        watched.push((p, mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_debouncer_full::notify::event::Flag;
    use notify_debouncer_full::notify::event::{
        CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode,
    };

    fn roots() -> Roots {
        Roots {
            content: PathBuf::from("/p/content"),
            config_dir: PathBuf::from("/p"),
            theme: Some(PathBuf::from("/p/theme")),
            out: PathBuf::from("/p/build"),
        }
    }

    fn content(rel: &str) -> Change {
        Change::Content(PathBuf::from(rel))
    }

    #[test]
    fn classify_table() {
        let r = roots();
        for (path, expect) in [
            ("/p/content/agents/a.md", content("agents/a.md")),
            (
                "/p/content/skills/s/patterns/raft.md",
                content("skills/s/patterns/raft.md"),
            ),
            ("/p/content/skills/s", content("skills/s")),
            (
                "/p/content/.claude-plugin/plugin.json",
                content(".claude-plugin/plugin.json"),
            ),
            ("/p/content/README.md", content("README.md")),
            ("/p/content", content("")),
            ("/p/book.toml", Change::Config),
            ("/p/theme/css/skillbook.css", Change::Theme),
            ("/p/theme/bundle/markdown.hbs", Change::Theme),
            ("/p/theme", Change::Theme),
            // Editors' temporary files.
            ("/p/content/agents/.a.md.swp", Change::Ignore),
            ("/p/content/agents/a.md.swx", Change::Ignore),
            ("/p/content/agents/a.md~", Change::Ignore),
            ("/p/content/agents/4913", Change::Ignore),
            ("/p/content/agents/.#a.md", Change::Ignore),
            ("/p/content/agents/#a.md#", Change::Ignore),
            ("/p/content/agents/a.md.tmp", Change::Ignore),
            ("/p/content/agents/a.md___jb_tmp___", Change::Ignore),
            ("/p/theme/.book.css.swp", Change::Ignore),
            ("/p/book.toml~", Change::Ignore),
            // Hidden folders the loader never reads.
            ("/p/content/.git/index", Change::Ignore),
            ("/p/content/skills/.obsidian/workspace.json", Change::Ignore),
            // The output and its temporary siblings.
            ("/p/build/plugin/agents/a.md", Change::Ignore),
            ("/p/build", Change::Ignore),
            ("/p/.build.skillbook-tmp-42/site/index.html", Change::Ignore),
            ("/p/.build.skillbook-old", Change::Ignore),
            // Outside what is built.
            ("/p/README.md", Change::Ignore),
            ("/p/src/main.rs", Change::Ignore),
            ("/elsewhere/book.toml", Change::Ignore),
        ] {
            assert_eq!(classify(Path::new(path), &r), expect, "{path}");
        }
    }

    #[test]
    fn output_inside_the_content_root_is_ignored() {
        let r = Roots {
            content: PathBuf::from("/plugin"),
            config_dir: PathBuf::from("/plugin"),
            theme: None,
            out: PathBuf::from("/plugin/build"),
        };
        for (path, expect) in [
            ("/plugin/build/report.json", Change::Ignore),
            ("/plugin/.build.skillbook-tmp-7/report.json", Change::Ignore),
            ("/plugin/book.toml", Change::Config),
            ("/plugin/agents/a.md", content("agents/a.md")),
            ("/plugin/theme/x.css", content("theme/x.css")),
        ] {
            assert_eq!(classify(Path::new(path), &r), expect, "{path}");
        }
    }

    #[test]
    fn editor_temp_table() {
        for (name, temp) in [
            ("raft.md", false),
            ("SKILL.md", false),
            ("plugin.json", false),
            ("agent-2024.md", false),
            (".raft.md.swp", true),
            ("raft.md~", true),
            ("4913", true),
            (".#raft.md", true),
            ("#raft.md#", true),
            ("raft.md.tmp", true),
            ("raft.md.TMP", true),
            (".goutputstream-ABC123", true),
            ("raft.md.kate-swp", true),
        ] {
            assert_eq!(is_editor_temp(name), temp, "{name}");
        }
    }

    fn ev(kind: EventKind, paths: &[&str]) -> Event {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    fn plan_of(events: &[Event]) -> Plan {
        let r = roots();
        let mut plan = Plan::default();
        for e in events {
            plan.add(e, &r);
        }
        plan
    }

    fn content_plan(paths: &[&str]) -> Plan {
        Plan {
            content: paths.iter().map(PathBuf::from).collect(),
            ..Plan::default()
        }
    }

    #[test]
    fn plan_table() {
        let raft = "/p/content/skills/s/patterns/raft.md";
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        let cases: Vec<(&str, Vec<Event>, Plan)> = vec![
            (
                "a save",
                vec![ev(write, &[raft])],
                content_plan(&["skills/s/patterns/raft.md"]),
            ),
            (
                "reading is no change",
                vec![
                    ev(
                        EventKind::Access(AccessKind::Open(AccessMode::Any)),
                        &[raft],
                    ),
                    ev(
                        EventKind::Access(AccessKind::Close(AccessMode::Read)),
                        &[raft],
                    ),
                    ev(
                        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
                        &[raft],
                    ),
                ],
                Plan::default(),
            ),
            (
                "closing after a write is",
                vec![ev(
                    EventKind::Access(AccessKind::Close(AccessMode::Write)),
                    &[raft],
                )],
                content_plan(&["skills/s/patterns/raft.md"]),
            ),
            (
                "atomic save: write a temp file, rename it over",
                vec![
                    ev(
                        EventKind::Create(CreateKind::File),
                        &["/p/content/skills/s/patterns/.raft.md.tmp"],
                    ),
                    ev(
                        EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                        &["/p/content/skills/s/patterns/.raft.md.tmp", raft],
                    ),
                ],
                content_plan(&["skills/s/patterns/raft.md"]),
            ),
            (
                "vim: 4913, swap and backup files",
                vec![
                    ev(
                        EventKind::Create(CreateKind::File),
                        &["/p/content/agents/4913"],
                    ),
                    ev(
                        EventKind::Remove(RemoveKind::File),
                        &["/p/content/agents/4913"],
                    ),
                    ev(write, &["/p/content/agents/.a.md.swp"]),
                    ev(
                        EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                        &["/p/content/agents/a.md", "/p/content/agents/a.md~"],
                    ),
                    ev(
                        EventKind::Create(CreateKind::File),
                        &["/p/content/agents/a.md"],
                    ),
                ],
                content_plan(&["agents/a.md"]),
            ),
            (
                "a folder renamed: both names",
                vec![ev(
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                    &["/p/content/skills/old", "/p/content/skills/new"],
                )],
                content_plan(&["skills/new", "skills/old"]),
            ),
            (
                "a file deleted",
                vec![ev(EventKind::Remove(RemoveKind::File), &[raft])],
                content_plan(&["skills/s/patterns/raft.md"]),
            ),
            (
                "theme",
                vec![ev(write, &["/p/theme/css/skillbook.css"])],
                Plan {
                    theme: true,
                    ..Plan::default()
                },
            ),
            (
                "book.toml",
                vec![ev(write, &["/p/book.toml"]), ev(write, &[raft])],
                Plan {
                    everything: true,
                    content: content_plan(&["skills/s/patterns/raft.md"]).content,
                    ..Plan::default()
                },
            ),
            (
                "our own output",
                vec![
                    ev(
                        EventKind::Create(CreateKind::Folder),
                        &["/p/.build.skillbook-tmp-9"],
                    ),
                    ev(write, &["/p/build/site/index.html"]),
                ],
                Plan::default(),
            ),
            (
                "lost events",
                vec![ev(EventKind::Other, &[]).set_flag(Flag::Rescan)],
                Plan::everything(),
            ),
        ];
        for (name, events, expect) in cases {
            assert_eq!(plan_of(&events), expect, "{name}");
        }
    }

    // ----- the builder, on a small project: agents a (skill s1), b (s2) and c (s1 and s2) -----

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
        let mut b = Builder::new(Some(root.to_path_buf()), out.clone());

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

    #[test]
    fn a_failed_build_keeps_the_last_good_output_until_fixed() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let mut b = Builder::new(Some(root.to_path_buf()), out.clone());
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

    #[test]
    fn a_gap_builds_and_shows_on_the_site() {
        let dir = project();
        let root = dir.path();
        let out = root.join("build");
        let mut b = Builder::new(Some(root.to_path_buf()), out.clone());
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
    fn plan_merge_and_describe() {
        let mut a = content_plan(&["agents/a.md"]);
        a.merge(Plan {
            theme: true,
            ..content_plan(&["agents/b.md", "x", "y"])
        });
        assert!(a.theme);
        assert_eq!(
            a.describe(),
            "theme/, agents/a.md, agents/b.md, x, and 1 more"
        );
        assert!(Plan::default().is_empty());
        assert!(!Plan::everything().is_empty());
    }
}
