//! Emit the documentation site: pages generated from the checked model, rendered by mdBook 0.5 used as a library.
//!
//! How the mdBook integration works:
//!
//! 1. The pages ([`pages`]) and the navigation (a `SUMMARY.md`, [`summary_markdown`]) are generated in memory. The
//!    summary is parsed with mdBook's own parser (`mdbook_summary::parse_summary`) and turned into an
//!    `mdbook_driver::book::Book` whose chapters hold the generated markdown; nothing is read from a `src/` folder.
//! 2. The configuration is the root `book.toml` (`mdbook_driver::config::Config`), adjusted: its
//!    `[preprocessor.*]` tables are removed (so mdBook never tries to run a `mdbook-skillbook` command for
//!    skillbook's own `[preprocessor.skillbook]` table), mdBook's default preprocessors are off (`links` would
//!    expand `{{#include}}` in content), only the HTML renderer is kept, and the theme is skillbook's built-in
//!    files overlaid with the book's `theme/` folder.
//! 3. mdBook's HTML renderer writes to disk only, so `MDBook::build` runs in a temporary directory, and the files it
//!    wrote are read back into the [`OutputTree`]; the temporary directory is removed. The caller writes the tree
//!    atomically with everything else.
//!
//! Next to each page's HTML the site serves its clean markdown (`agents/x.md` beside `agents/x.html`), and at the
//! root `llms.txt` (links to those) and `llms-full.txt` (every page inlined).

pub mod bundles;
mod index;
mod pages;
mod util;

pub use bundles::{AgentBundles, BudgetBundle, BundlePattern, BundleSummary};
pub use pages::{clean_description, Page};

use crate::check::Report;
use crate::parse::Model;
use crate::write::OutputTree;
use index::Index;
use mdbook_driver::book::{Book, BookItem, Chapter};
use mdbook_driver::config::Config;
use mdbook_driver::MDBook;
use mdbook_summary::{Summary, SummaryItem};
use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use util::md_escape;

/// skillbook's built-in theme files (from `theme/`), overridden by the same files in the book's theme folder.
pub const BUILTIN_THEME: &[(&str, &str)] = &[
    (
        "css/skillbook.css",
        include_str!("../../theme/css/skillbook.css"),
    ),
    ("css/syntax.css", include_str!("../../theme/css/syntax.css")),
    ("favicon.svg", include_str!("../../theme/favicon.svg")),
];

/// The stylesheets added to every page, after mdBook's own, in this order.
pub const STYLESHEETS: &[&str] = &["css/skillbook.css", "css/syntax.css"];

/// What the site is made from.
pub struct SiteInput<'a> {
    pub model: &'a Model,
    pub report: &'a Report,
    /// The folder of the `book.toml` that configures the site (its `[book]` and `[output.html]` tables) and whose
    /// `theme/` folder overrides the built-in theme. `None`: mdBook's defaults and the built-in theme.
    pub book_dir: Option<&'a Path>,
    /// The bundles, once the bundle stage provides them; `None` leaves the Bundles pages out.
    pub bundles: Option<&'a BundleSummary>,
}

/// The generated site before rendering: its pages in navigation order and the navigation itself.
#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    pub description: String,
    /// The generated `SUMMARY.md`.
    pub summary: String,
    pub pages: Vec<Page>,
    /// Patterns are sections of their group pages (a large site; see `index::COMPACT_PAGES`).
    pub compact: bool,
}

/// Reads the book's configuration: `book_dir/book.toml` when there is one, else mdBook's defaults.
pub fn load_config(book_dir: Option<&Path>) -> Result<Config, String> {
    let Some(dir) = book_dir else {
        return Ok(Config::default());
    };
    let path = dir.join("book.toml");
    if !path.is_file() {
        return Ok(Config::default());
    }
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Config::from_str(&text).map_err(|e| format!("{}: {e:#}", path.display()))
}

/// Generates every page and the navigation, in memory.
pub fn generate(input: &SiteInput, config: &Config) -> Site {
    let ix = Index::new(input.model, input.report);
    let title = config
        .book
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| default_title(input.model));
    let description = config
        .book
        .description
        .clone()
        .or_else(|| manifest_description(input.model))
        .unwrap_or_default();
    let bundle_pages = bundles::pages(&ix, input.bundles);

    // The navigation, and the pages in its order (made afterwards, in parallel).
    let mut jobs = vec![Job::Home];
    let mut nav = String::from("# Summary\n\n[Overview](index.md)\n\n");
    if !ix.agents.is_empty() {
        nav.push_str("# Agents\n\n");
        for (ai, a) in ix.agents.iter().enumerate() {
            let _ = writeln!(nav, "- [{}]({})", md_escape(&a.display), a.path);
            jobs.push(Job::Agent(ai));
            let mine = input.bundles.and_then(|b| {
                b.agents
                    .iter()
                    .position(|x| x.agent == a.display)
                    .filter(|&i| i < bundle_pages.len())
            });
            if let Some(i) = mine {
                let _ = writeln!(nav, "    - [Bundles]({})", bundle_pages[i].path);
                jobs.push(Job::Ready(i));
            }
        }
        nav.push('\n');
    }
    if !ix.skills.is_empty() {
        nav.push_str("# Skills\n\n");
        for (si, s) in ix.skills.iter().enumerate() {
            let _ = writeln!(nav, "- [{}]({})", md_escape(&s.display), s.path);
            jobs.push(Job::Skill(si));
        }
        nav.push('\n');
    }
    let with_patterns: Vec<usize> = (0..ix.skills.len())
        .filter(|&i| !ix.skills[i].skill.patterns.is_empty())
        .collect();
    for &si in &with_patterns {
        let s = &ix.skills[si];
        if with_patterns.len() == 1 {
            nav.push_str("# Patterns\n\n");
        } else {
            let _ = write!(nav, "# Patterns: {}\n\n", md_escape(&s.display));
        }
        for (g, group) in s.groups.iter().enumerate() {
            let _ = writeln!(nav, "- [{}]({})", md_escape(&group.name), group.path);
            jobs.push(Job::Group(si, g));
            for k in &group.patterns {
                if ix.compact {
                    break;
                }
                if let Some(info) = ix.patterns.get(k) {
                    let (_, p) = ix.pattern(*k);
                    let _ = writeln!(nav, "    - [{}]({})", md_escape(&p.title), info.path);
                    jobs.push(Job::Pattern(*k));
                }
            }
        }
        nav.push('\n');
    }
    // Bundles of agents the index does not know (renamed since): listed on their own.
    let orphans: Vec<usize> = input
        .bundles
        .map(|b| {
            b.agents
                .iter()
                .enumerate()
                .filter(|(i, x)| {
                    *i < bundle_pages.len() && !ix.agents.iter().any(|a| a.display == x.agent)
                })
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default();
    if !orphans.is_empty() {
        nav.push_str("# Bundles\n\n");
        for i in orphans {
            let p = &bundle_pages[i];
            let _ = writeln!(nav, "- [{}]({})", md_escape(&p.title), p.path);
            jobs.push(Job::Ready(i));
        }
        nav.push('\n');
    }
    nav.push_str("# Coverage\n\n- [Coverage matrix](coverage.md)\n");
    jobs.push(Job::Coverage);

    let pages = par_map(&jobs, |job| match *job {
        Job::Home => Some(pages::home(&ix, &title, &description)),
        Job::Agent(ai) => Some(pages::agent(&ix, ai)),
        Job::Skill(si) => Some(pages::skill(&ix, &ix.skills[si])),
        Job::Group(si, g) => Some(pages::group(&ix, &ix.skills[si], g)),
        Job::Pattern(k) => pages::pattern(&ix, k),
        Job::Coverage => Some(pages::coverage(&ix)),
        Job::Ready(i) => bundle_pages.get(i).cloned(),
    })
    .into_iter()
    .flatten()
    .collect();
    Site {
        title,
        description,
        summary: nav,
        pages,
        compact: ix.compact,
    }
}

/// One page to make.
#[derive(Debug, Clone, Copy)]
enum Job {
    Home,
    Agent(usize),
    Skill(usize),
    Group(usize, usize),
    Pattern(crate::expand::PatternKey),
    Coverage,
    /// A page made already (a bundles page, by index).
    Ready(usize),
}

/// `items.iter().map(f)`, on as many threads as the machine has cores (at most 8), in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

fn default_title(model: &Model) -> String {
    match (&model.marketplace, model.plugins.as_slice()) {
        (Some(m), _) => m
            .json
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| "Plugin marketplace".to_string()),
        (None, [p]) => p.name.clone(),
        _ => "Claude Code plugins".to_string(),
    }
}

fn manifest_description(model: &Model) -> Option<String> {
    let single = match model.plugins.as_slice() {
        [p] => p.manifest.as_ref(),
        _ => None,
    };
    let m = model.marketplace.as_ref().or(single)?;
    m.json
        .get("description")
        .or_else(|| m.json.get("metadata").and_then(|x| x.get("description")))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The generated `SUMMARY.md` alone (for tests and for readers of the code).
pub fn summary_markdown(input: &SiteInput, config: &Config) -> String {
    generate(input, config).summary
}

/// `llms.txt`: the title, a summary, and a link to each page's markdown, by section.
pub fn llms_txt(site: &Site) -> String {
    let mut out = format!("# {}\n\n", site.title);
    let summary = if site.description.trim().is_empty() {
        "Documentation of a Claude Code plugin: its agents, the skills they use, and the pattern pages that explain what the agents know.".to_string()
    } else {
        util::one_line(&site.description)
    };
    let _ = write!(out, "> {summary}\n\n");
    out.push_str("Every page below is markdown; the same page as HTML is at the same address ending in `.html`. `llms-full.txt` has all of them inlined.\n");
    let section = |p: &Page| -> &'static str {
        if p.path.starts_with("agents/") {
            "Agents"
        } else if p.path.starts_with("skills/") {
            "Skills"
        } else if p.path.starts_with("patterns/")
            && (site.compact || !p.path.contains("/by-category/"))
        {
            "Patterns"
        } else {
            "Optional"
        }
    };
    for name in ["Agents", "Skills", "Patterns", "Optional"] {
        let list: Vec<&Page> = site.pages.iter().filter(|p| section(p) == name).collect();
        if list.is_empty() {
            continue;
        }
        let _ = write!(out, "\n## {name}\n\n");
        for p in list {
            let note = util::one_line(&p.note);
            if note.is_empty() {
                let _ = writeln!(out, "- [{}]({})", md_escape(&p.title), p.path);
            } else {
                let _ = writeln!(out, "- [{}]({}): {note}", md_escape(&p.title), p.path);
            }
        }
    }
    out
}

/// `llms-full.txt`: every page's markdown, in navigation order.
pub fn llms_full_txt(site: &Site) -> String {
    let mut out = format!("# {}\n\n", site.title);
    if !site.description.trim().is_empty() {
        let _ = write!(out, "> {}\n\n", util::one_line(&site.description));
    }
    for p in &site.pages {
        let text = crate::expand::rewrite_links(p.markdown.trim(), &|dest| rebase(&p.path, dest));
        let _ = write!(out, "<!-- page: {} -->\n\n{}\n", p.path, text);
        out.push('\n');
    }
    out
}

/// A link written on the page at `page`, made relative to the site root (for text that leaves the page's folder).
fn rebase(page: &str, dest: &str) -> Option<String> {
    let scheme = dest.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if scheme || dest.starts_with('/') {
        return None;
    }
    if dest.starts_with('#') {
        return Some(format!("{page}{dest}"));
    }
    let mut parts: Vec<&str> = page.split('/').collect();
    parts.pop();
    for c in dest.split('/') {
        match c {
            ".." => {
                parts.pop()?;
            }
            "." | "" => {}
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Turns the parsed summary into mdBook's book, with each chapter's content taken from `pages`.
fn book_from_summary(summary: &Summary, site: &Site) -> Result<Book, String> {
    fn convert(item: &SummaryItem, parents: &[String], site: &Site) -> Result<BookItem, String> {
        match item {
            SummaryItem::Link(link) => {
                let Some(location) = &link.location else {
                    let mut ch = Chapter::new_draft(&link.name, parents.to_vec());
                    ch.number = link.number.clone();
                    return Ok(BookItem::Chapter(ch));
                };
                let key = location.to_string_lossy().replace('\\', "/");
                let page = site.pages.iter().find(|p| p.path == key).ok_or_else(|| {
                    format!("the navigation names {key}, which was not generated")
                })?;
                let mut ch = Chapter::new(
                    &link.name,
                    page.chapter.clone(),
                    location.clone(),
                    parents.to_vec(),
                );
                ch.number = link.number.clone();
                let mut inner = parents.to_vec();
                inner.push(link.name.clone());
                ch.sub_items = link
                    .nested_items
                    .iter()
                    .map(|i| convert(i, &inner, site))
                    .collect::<Result<_, _>>()?;
                Ok(BookItem::Chapter(ch))
            }
            SummaryItem::Separator => Ok(BookItem::Separator),
            SummaryItem::PartTitle(t) => Ok(BookItem::PartTitle(t.clone())),
            _ => Err("the navigation has an entry this mdBook version does not know".to_string()),
        }
    }
    let items = summary
        .prefix_chapters
        .iter()
        .chain(&summary.numbered_chapters)
        .chain(&summary.suffix_chapters)
        .map(|i| convert(i, &[], site))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Book::new_with_items(items))
}

/// A relative path without `..`, absolute parts or prefixes: safe to join under a temporary root.
fn plain_relative(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(from)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let ft = e.file_type()?;
        let dest = to.join(&name);
        if ft.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_tree(&e.path(), &dest, &[])?;
        } else if ft.is_file() {
            fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

fn read_tree(base: &Path, dir: &Path, prefix: &str, out: &mut OutputTree) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            read_tree(base, &path, prefix, out)?;
        } else {
            let rel = path
                .strip_prefix(base)
                .map_err(|_| std::io::Error::other("path outside the output"))?
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(format!("{prefix}{rel}"), fs::read(&path)?);
        }
    }
    Ok(())
}

/// Builds the site and adds it under `prefix` (normally `site/`).
pub fn emit(input: &SiteInput, prefix: &str, out: &mut OutputTree) -> Result<(), String> {
    let tmp = tempfile::Builder::new()
        .prefix("skillbook-site-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let root = tmp.path();
    let (site, config, book) = prepare(input, root)?;
    let io = |e: std::io::Error| format!("cannot read the site back from {}: {e}", root.display());
    let mut md = MDBook::load_with_config_and_summary(root, config, Summary::default())
        .map_err(|e| format!("mdBook: {e:#}"))?;
    md.book = book;
    md.build().map_err(|e| format!("mdBook: {e:#}"))?;
    read_tree(&root.join("book"), &root.join("book"), prefix, out).map_err(io)?;

    for p in &site.pages {
        out.insert(
            format!("{prefix}{}", p.path),
            p.markdown.clone().into_bytes(),
        );
    }
    out.insert(format!("{prefix}llms.txt"), llms_txt(&site).into_bytes());
    out.insert(
        format!("{prefix}llms-full.txt"),
        llms_full_txt(&site).into_bytes(),
    );
    Ok(())
}

/// Writes the generated book as an ordinary mdBook project in `dir` (book.toml, src/SUMMARY.md, src/**.md, theme,
/// stylesheets), so that `mdbook build dir` renders the same site. Used to compare with mdBook itself.
pub fn write_book(input: &SiteInput, dir: &Path) -> Result<(), String> {
    let (site, config, _) = prepare(input, dir)?;
    let io = |e: std::io::Error| format!("cannot write the book in {}: {e}", dir.display());
    let toml = toml::to_string(&config).map_err(|e| format!("cannot write book.toml: {e}"))?;
    fs::write(dir.join("book.toml"), toml).map_err(io)?;
    let src = dir.join("src");
    fs::write(src.join("SUMMARY.md"), &site.summary).map_err(io)?;
    for p in &site.pages {
        let path = src.join(&p.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(path, &p.chapter).map_err(io)?;
    }
    Ok(())
}

/// Generates the site and gets `root` ready for mdBook: the theme and stylesheets written, an empty `src/`, and the
/// configuration adjusted. Returns the site, the configuration and the book.
fn prepare(input: &SiteInput, root: &Path) -> Result<(Site, Config, Book), String> {
    let mut config = load_config(input.book_dir)?;
    let site = generate(input, &config);
    let summary = mdbook_summary::parse_summary(&site.summary)
        .map_err(|e| format!("the generated navigation does not parse: {e:#}"))?;
    let book = book_from_summary(&summary, &site)?;
    let io = |e: std::io::Error| format!("cannot prepare the site in {}: {e}", root.display());

    // The theme: the built-in files, then the book's own theme folder over them (bundle templates excluded).
    let mut html: toml::Table = config
        .get::<toml::Table>("output.html")
        .map_err(|e| format!("book.toml [output.html]: {e:#}"))?
        .unwrap_or_default();
    let theme_dir = root.join("theme");
    fs::create_dir_all(theme_dir.join("css")).map_err(io)?;
    for (name, text) in BUILTIN_THEME {
        fs::write(theme_dir.join(name), text).map_err(io)?;
    }
    if let Some(dir) = input.book_dir {
        let user_theme = html
            .get("theme")
            .and_then(|t| t.as_str())
            .map(|t| dir.join(t))
            .unwrap_or_else(|| dir.join("theme"));
        if user_theme.is_dir() {
            copy_tree(&user_theme, &theme_dir, &["bundle"]).map_err(io)?;
        }
    }
    html.insert("theme".into(), toml::Value::String("theme".into()));
    // skillbook's stylesheets first, then the book's own additional files (copied next to them).
    let mut css: Vec<toml::Value> = Vec::new();
    for sheet in STYLESHEETS {
        let dest = root.join(sheet);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).map_err(io)?;
        }
        fs::copy(theme_dir.join(sheet), &dest).map_err(io)?;
        css.push(toml::Value::String(sheet.to_string()));
    }
    for key in ["additional-css", "additional-js"] {
        let mut kept = if key == "additional-css" {
            css.clone()
        } else {
            Vec::new()
        };
        let listed = html
            .get(key)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for v in listed {
            let Some(rel) = v.as_str() else { continue };
            let src = input.book_dir.map(|d| d.join(rel));
            if let Some(src) = src.filter(|s| s.is_file() && plain_relative(Path::new(rel))) {
                let dest = root.join(rel);
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).map_err(io)?;
                }
                fs::copy(&src, &dest).map_err(io)?;
                kept.push(v.clone());
            }
        }
        html.insert(key.into(), toml::Value::Array(kept));
    }
    html.entry("no-section-label")
        .or_insert(toml::Value::Boolean(true));
    if site.compact {
        // A print page of thousands of pages helps nobody and costs a copy of the whole site.
        let print = html
            .entry("print")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(t) = print.as_table_mut() {
            t.entry("enable").or_insert(toml::Value::Boolean(false));
        }
    }
    // The print page repeats every page; its links into the book are mdBook's business, not the content's.
    let mut output = toml::Table::new();
    output.insert("html".into(), toml::Value::Table(html));
    let set = |config: &mut Config, key: &str, v: toml::Value| {
        config
            .set(key, v)
            .map_err(|e| format!("cannot configure mdBook ({key}): {e:#}"))
    };
    set(&mut config, "output", toml::Value::Table(output))?;
    set(
        &mut config,
        "preprocessor",
        toml::Value::Table(toml::Table::new()),
    )?;
    config.book.src = PathBuf::from("src");
    config.book.title = Some(site.title.clone());
    if config.book.description.is_none() && !site.description.trim().is_empty() {
        config.book.description = Some(util::one_line(&site.description));
    }
    config.build.build_dir = PathBuf::from("book");
    config.build.use_default_preprocessors = false;
    config.build.create_missing = false;
    fs::create_dir_all(root.join("src")).map_err(io)?;
    Ok((site, config, book))
}
