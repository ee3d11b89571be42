//! Watch: feeds the engine the paths that change under the content root, the book's theme and site files and
//! `book.toml`, and calls the same build as `skillbook build` ([`Engine::build`]) after each burst of saves.
//!
//! Two parts:
//!
//! - **What changed** (pure, like zola's `fs_utils`): [`classify`] names what one changed path is ([`Change`]), and
//!   [`Plan::add`] folds debounced notify events into a [`Plan`]: rebuild everything (book.toml, lost events), the
//!   site (the theme), or the content paths that changed. What the compiled plugin leaves out
//!   ([`crate::load::left_out`]: version control, editor temporaries, output directories) and the output are ignored;
//!   hidden files of the plugin (`.mcp.json`, `.claude-plugin/`) are content.
//! - **The loop** ([`run`]): notify, whose events are gathered until [`QUIET`] passes without a new change (a burst
//!   of saves is one build), one [`Engine`] kept between builds, and a listener (`serve` pushes each outcome to the
//!   browser) that is called only once the new output is completely in place.

use crate::config::{self, Config};
use crate::diagnostic;
use crate::driver::Options;
use crate::emit::report::display_path;
use crate::engine::Engine;
pub use crate::engine::{Built, Failed, Outcome, Plan, Stats, Timings};
use crate::load::{is_editor_temp, left_out};
use crate::write;
use crate::Exit;
use notify::event::{AccessKind, AccessMode, MetadataKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long the watcher must be quiet (no event that changes what to build) before a build starts: a burst of saves
/// (an editor's temporary file renamed over the original, a `git checkout`) is one build. Short, since it is part of
/// every save's wait for the reload.
pub const QUIET: Duration = Duration::from_millis(15);

/// How long after the first change a build starts even while changes keep coming.
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// The paths that decide what a change means, all absolute and with symlinks resolved (as notify reports them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The content root.
    pub content: PathBuf,
    /// The folder whose `book.toml` configures the build (ROOT, or the working directory).
    pub config_dir: PathBuf,
    /// The theme folder (`theme/` beside a book.toml with a `[preprocessor.skillbook]` table).
    pub theme: Option<PathBuf>,
    /// The rest of the book the site is made of ([`config::Book::site_paths`]): the theme folder `[output.html]
    /// theme` names when it is another, and the files `additional-css` and `additional-js` name.
    pub site: Vec<PathBuf>,
    /// The output directory.
    pub out: PathBuf,
    /// [`crate::load::root_book`] of the content root, as loading decides what ships: read once per configuration,
    /// not per event.
    pub root_book: Option<String>,
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
            theme: config.book_dir().map(|d| absolute(d).join("theme")),
            site: config
                .book
                .iter()
                .flat_map(|b| b.site_paths())
                .map(|p| match (p.parent(), p.file_name()) {
                    // The path itself as written (a symlinked stylesheet is reported by its own name).
                    (Some(parent), Some(name)) => absolute(parent).join(name),
                    _ => absolute(&p),
                })
                .collect(),
            out: absolute(out),
            root_book: crate::load::root_book(&config.content_root),
        }
    }

    /// What to watch: the content root and the theme folders recursively, the config folder (book.toml) on its own,
    /// and the folder of each additional file outside them on its own (an editor that saves by renaming replaces the
    /// file, which a watch on the file itself would lose).
    pub fn watches(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut recursive: Vec<PathBuf> = vec![self.content.clone()];
        for t in self.theme.iter().chain(&self.site).filter(|t| t.is_dir()) {
            if !recursive.iter().any(|r| t.starts_with(r)) {
                recursive.push(t.clone());
            }
        }
        let mut single: Vec<PathBuf> = Vec::new();
        let folders = std::iter::once(self.config_dir.as_path()).chain(
            self.site
                .iter()
                .filter(|p| !p.is_dir())
                .filter_map(|p| p.parent()),
        );
        for folder in folders {
            let covered = recursive.iter().any(|r| folder.starts_with(r));
            if !covered && folder.is_dir() && !single.iter().any(|s| s == folder) {
                single.push(folder.to_path_buf());
            }
        }
        let recursive = recursive.into_iter().map(|p| (p, RecursiveMode::Recursive));
        let single = single.into_iter().map(|p| (p, RecursiveMode::NonRecursive));
        recursive.chain(single).collect()
    }
}

/// What one changed path means for the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing: a file the plugin leaves out (an editor's temporary file, version control), the output, or a path
    /// outside what is built.
    Ignore,
    /// `book.toml`: everything is rebuilt.
    Config,
    /// A file of the theme: the site is rendered again (and the bundles, if their templates changed).
    Theme,
    /// A file or folder of the content, relative to the content root.
    Content(PathBuf),
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
    // A path of the content is content (loading reads the configuration again, the site's files with it).
    let site = roots.site.iter().any(|s| path.starts_with(s));
    if let Ok(rel) = path.strip_prefix(&roots.content) {
        // What the loader leaves out of the plugin ([`left_out`]) is no change; everything else is, hidden files such
        // as `.mcp.json` or `.claude-plugin/plugin.json` included.
        let rel_str = rel.to_string_lossy().replace('\\', "/");
        let parts: Vec<&str> = rel_str.split('/').filter(|p| !p.is_empty()).collect();
        for i in 0..parts.len() {
            let prefix = parts[..=i].join("/");
            let last = i + 1 == parts.len();
            // A removed path is no longer a folder on disk; a VCS folder's name is enough.
            let folder = !last || path.is_dir() || crate::load::VCS_DIRS.contains(&parts[i]);
            let marker = folder && roots.content.join(&prefix).join(write::MARKER).exists();
            if left_out(&prefix, folder, roots.root_book.as_deref(), marker).is_some() {
                return if site { Change::Theme } else { Change::Ignore };
            }
        }
        return Change::Content(rel.to_path_buf());
    }
    if site {
        return Change::Theme;
    }
    Change::Ignore
}

/// Whether an event can change a file's content or presence (opening and reading cannot).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(notify::event::ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

impl Plan {
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
}

/// Prints an outcome on stderr: diagnostics, then one line saying what was done.
pub fn print(
    engine: &Engine,
    out: &Path,
    outcome: &Outcome,
    plan: &Plan,
    first: bool,
    opts: &Options,
) {
    let style = opts.style(std::io::stderr().is_terminal());
    let root = engine.root_display();
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
                    crate::driver::plural(b.files, "file"),
                    out.display(),
                    crate::driver::plural(b.warnings + b.skipped.len(), "warning"),
                    b.timings
                ));
            } else if b.partial {
                if !opts.quiet {
                    err.push_str(&format!(
                        "pages in {ms} ms after {}: rendered {}; wrote {} of {} files{}; the rest follows\n",
                        plan.describe(),
                        plural(b.stats.rendered.len(), "page", "pages"),
                        b.written,
                        b.files,
                        if b.changed { "" } else { " (output unchanged)" },
                    ));
                }
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
                out.display()
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

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `read 1 file, parsed 1, expanded 2 agents and 1 skill, bundled 2 agents, rendered 4 pages`.
pub fn describe_stats(s: &Stats) -> String {
    format!(
        "read {}, parsed {}, expanded {} and {}, bundled {}, generated {} and rendered {}",
        plural(s.read.len(), "file", "files"),
        s.parsed.len(),
        plural(s.expanded.len(), "agent", "agents"),
        plural(s.skills.len(), "skill", "skills"),
        plural(s.bundled.len(), "agent", "agents"),
        s.generated.len(),
        plural(s.rendered.len(), "page", "pages"),
    )
}

/// What the watch loop waits for.
enum Msg {
    Event(notify::Result<Event>),
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
    let mut watcher = match notify::recommended_watcher(move |r: notify::Result<Event>| {
        let _ = tx.send(Msg::Event(r));
    }) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skillbook: error: cannot watch files: {e}");
            return Exit::Failure;
        }
    };
    let mut roots = Roots::of(&config, opts.root.as_deref(), out);
    let mut watched: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    if let Err(e) = rewatch(&mut watcher, &mut watched, &roots) {
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
    let mut engine = Engine::new(opts.root.clone(), out.to_path_buf())
        .for_command(opts.command)
        .background_cleanup(true)
        .defer(true);
    let plan = Plan::everything();
    building.store(true, Ordering::SeqCst);
    let outcome = engine.build(&plan);
    building.store(false, Ordering::SeqCst);
    print(&engine, out, &outcome, &plan, true, opts);
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
            Ok(Msg::Event(r)) => add_event(&mut plan, r, &roots),
        }
        if plan.is_empty() {
            continue;
        }
        // Whatever else is queued (events that arrived during the last build) joins this build, and so does every
        // change until QUIET passes without one (at most MAX_WAIT after the first).
        if gather(&rx, &mut plan, &roots) {
            break;
        }
        building.store(true, Ordering::SeqCst);
        let outcome = engine.build(&plan);
        print(&engine, out, &outcome, &plan, false, opts);
        if !matches!(outcome, Outcome::Unchanged(_)) {
            listener(&outcome);
        }
        // The pages are in (and the page reloaded): now the rest.
        if let Some(outcome) = engine.finish() {
            print(&engine, out, &outcome, &plan, false, opts);
            listener(&outcome);
        }
        building.store(false, Ordering::SeqCst);
        if let Some(config) = engine.config() {
            let next = Roots::of(config, opts.root.as_deref(), out);
            if next != roots || theme_appeared(&watched, &next) {
                roots = next;
                if let Err(e) = rewatch(&mut watcher, &mut watched, &roots) {
                    eprintln!("skillbook: warning: cannot watch {e}");
                }
            }
        }
    }
    // The engine's next staging directory goes with it.
    drop(engine);
    write::finish_cleanup();
    if !opts.quiet {
        eprintln!("stopped watching");
    }
    Exit::Success
}

/// Whether the folders to watch are not those watched: a theme folder or an additional file's folder appeared or went.
fn theme_appeared(watched: &[(PathBuf, RecursiveMode)], roots: &Roots) -> bool {
    roots.watches() != watched
}

fn add_event(plan: &mut Plan, result: notify::Result<Event>, roots: &Roots) {
    match result {
        Ok(e) => plan.add(&e, roots),
        Err(e) => {
            eprintln!("skillbook: warning: file watcher: {e}; rebuilding everything");
            plan.everything = true;
        }
    }
}

/// Adds to `plan` the events that come until [`QUIET`] passes without one that changes it (events it ignores, such
/// as the output's own files, do not count), or [`MAX_WAIT`] after now. Whether Ctrl-C asked to stop.
fn gather(rx: &mpsc::Receiver<Msg>, plan: &mut Plan, roots: &Roots) -> bool {
    let first = Instant::now();
    let mut quiet_from = first;
    loop {
        let now = Instant::now();
        let until = (quiet_from + QUIET).min(first + MAX_WAIT);
        if now >= until {
            return false;
        }
        match rx.recv_timeout(until - now) {
            Ok(Msg::Stop) => return true,
            Ok(Msg::Event(r)) => {
                let before = (plan.everything, plan.theme, plan.content.len());
                add_event(plan, r, roots);
                if (plan.everything, plan.theme, plan.content.len()) != before {
                    quiet_from = Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
            Err(mpsc::RecvTimeoutError::Disconnected) => return true,
        }
    }
}

/// Makes the watched paths those `roots` asks for.
fn rewatch<W: Watcher>(
    watcher: &mut W,
    watched: &mut Vec<(PathBuf, RecursiveMode)>,
    roots: &Roots,
) -> Result<(), String> {
    for (p, _) in watched.drain(..) {
        let _ = watcher.unwatch(&p);
    }
    for (p, mode) in roots.watches() {
        watcher
            .watch(&p, mode)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        watched.push((p, mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::Flag;
    use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};

    fn roots() -> Roots {
        Roots {
            content: PathBuf::from("/p/content"),
            config_dir: PathBuf::from("/p"),
            theme: Some(PathBuf::from("/p/theme")),
            site: Vec::new(),
            out: PathBuf::from("/p/build"),
            root_book: None,
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
            // What the compiled plugin leaves out: version control, Finder metadata.
            ("/p/content/.git/index", Change::Ignore),
            ("/p/content/.git", Change::Ignore),
            ("/p/content/skills/s/.hg/store/x", Change::Ignore),
            ("/p/content/.jj/repo", Change::Ignore),
            ("/p/content/agents/.DS_Store", Change::Ignore),
            // Hidden files that are part of the plugin: it carries them, so they are content.
            ("/p/content/.mcp.json", content(".mcp.json")),
            ("/p/content/.env.example", content(".env.example")),
            (
                "/p/content/hooks/.shellcheckrc",
                content("hooks/.shellcheckrc"),
            ),
            (
                "/p/content/.github/workflows/ci.yml",
                content(".github/workflows/ci.yml"),
            ),
            (
                "/p/content/skills/.obsidian/workspace.json",
                content("skills/.obsidian/workspace.json"),
            ),
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
            site: Vec::new(),
            out: PathBuf::from("/plugin/build"),
            root_book: None,
        };
        for (path, expect) in [
            ("/plugin/build/report.json", Change::Ignore),
            ("/plugin/.build.skillbook-tmp-7/report.json", Change::Ignore),
            // A previous output being deleted in the background, its marker file gone already.
            (
                "/plugin/.build.skillbook-trash-7-2/site/x.html",
                Change::Ignore,
            ),
            ("/plugin/book.toml", Change::Config),
            ("/plugin/agents/a.md", content("agents/a.md")),
            ("/plugin/theme/x.css", content("theme/x.css")),
        ] {
            assert_eq!(classify(Path::new(path), &r), expect, "{path}");
        }
    }

    /// The theme folder `[output.html] theme` names and the files `additional-css`/`-js` name render the site again
    /// when they change, as `theme/` does; inside the content they are content (loading reads them again).
    #[test]
    fn the_book_s_other_site_files_are_theme_changes() {
        let r = Roots {
            site: vec![
                PathBuf::from("/p/look"),
                PathBuf::from("/p/css/extra.css"),
                PathBuf::from("/p/content/extra.js"),
            ],
            ..roots()
        };
        for (path, expect) in [
            ("/p/look/index.hbs", Change::Theme),
            ("/p/look/css/chrome.css", Change::Theme),
            ("/p/look", Change::Theme),
            ("/p/look/.index.hbs.swp", Change::Ignore),
            ("/p/css/extra.css", Change::Theme),
            ("/p/css/other.css", Change::Ignore),
            ("/p/content/extra.js", content("extra.js")),
            ("/p/theme/bundle/markdown.hbs", Change::Theme),
        ] {
            assert_eq!(classify(Path::new(path), &r), expect, "{path}");
        }
    }

    /// A theme folder inside the content root (book.toml at the plugin's root names `look`) is the site's, not the
    /// plugin's: loading leaves it out of the compiled plugin, so a change to it renders the site again.
    #[test]
    fn a_theme_folder_inside_the_content_is_a_theme_change() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        std::fs::create_dir_all(p.join("look/css")).unwrap();
        std::fs::create_dir_all(p.join("agents")).unwrap();
        std::fs::write(
            p.join("book.toml"),
            "[output.html]\ntheme = \"look\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n",
        )
        .unwrap();
        let r = Roots {
            content: p.to_path_buf(),
            config_dir: p.to_path_buf(),
            theme: Some(p.join("theme")),
            site: vec![p.join("look")],
            out: p.join("out"),
            root_book: crate::load::root_book(p),
        };
        assert_eq!(classify(&p.join("look/css/look.css"), &r), Change::Theme);
        assert_eq!(
            classify(&p.join("agents/a.md"), &r),
            Change::Content(PathBuf::from("agents/a.md"))
        );
    }

    /// Each folder is watched once: recursively the content and the theme folders outside it, on its own the config
    /// folder and the folder of an additional file outside those; what does not exist (yet) is not watched.
    #[test]
    fn watches_cover_every_site_file_once() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        for d in ["content/agents", "theme", "look/css", "css", "content/js"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        let r = Roots {
            content: p.join("content"),
            config_dir: p.to_path_buf(),
            theme: Some(p.join("theme")),
            site: vec![
                p.join("look"),
                p.join("look/css/in-theme.css"),
                p.join("css/extra.css"),
                p.join("css/more.css"),
                p.join("content/js/extra.js"),
                p.join("missing/x.css"),
            ],
            out: p.join("build"),
            root_book: None,
        };
        let rec = RecursiveMode::Recursive;
        let one = RecursiveMode::NonRecursive;
        assert_eq!(
            r.watches(),
            vec![
                (p.join("content"), rec),
                (p.join("theme"), rec),
                (p.join("look"), rec),
                (p.to_path_buf(), one),
                (p.join("css"), one),
            ]
        );
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
