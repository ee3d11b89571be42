//! Emit the documentation site: pages generated from the checked model, rendered in mdBook 0.5's form and theme.
//!
//! 1. The pages ([`pages`]) and the navigation (a `SUMMARY.md`, [`summary_markdown`]) are generated in memory; the
//!    summary is parsed with mdBook's own parser (`mdbook_summary::parse_summary`) into a [`Navigation`].
//! 2. The configuration is the root `book.toml` (`mdbook_core::config::Config`), adjusted ([`prepare`]); the theme is
//!    mdBook's files and skillbook's stylesheets overlaid with the book's `theme/` folder ([`render::Theme`]).
//! 3. [`render`] renders mdBook's templates per page (in parallel), the shared files once, and the print page;
//!    [`search`] makes the search index in fragments. Everything goes into the [`OutputTree`], which the caller
//!    writes atomically with everything else.
//!
//! Next to each page's HTML the site serves its clean markdown (`agents/x.md` beside `agents/x.html`), and at the
//! root `llms.txt` (links to those) and `llms-full.txt` (every page inlined).

pub mod bundles;
mod index;
mod keys;
mod pages;
pub mod render;
pub mod search;
mod util;

pub use pages::{clean_description, Page};

use crate::check::Report;
use crate::parse::Model;
use crate::write::{FileRef, MemorySink, OutputTree, Sink};
use crate::{HashMap, HashSet};
use index::Index;
use mdbook_core::config::Config;
use mdbook_summary::SummaryItem;
use render::{NavItem, PageView, RenderedPage, SiteShared, Theme};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// The `book.toml` that configures the site (its `[book]` and `[output.html]` tables, read from the text loading
    /// read) and whose folder's `theme/` overrides the built-in theme. `None`: mdBook's defaults and the built-in
    /// theme.
    pub book: Option<&'a crate::config::Book>,
    /// The bundle stage's manifests, one per agent; `None` leaves the Bundles pages out.
    pub bundles: Option<&'a [AgentBundles<'a>]>,
}

/// One agent's bundles as the site shows them: the bundle stage's manifest (borrowed: the site copies nothing of
/// it) and the size of the agent's compiled prompt.
#[derive(Debug, Clone, Copy)]
pub struct AgentBundles<'a> {
    pub manifest: &'a crate::emit::bundle::Manifest,
    pub compiled: Option<&'a crate::emit::plugin::PromptSize>,
    /// A hash of what the manifest was made from (equal keys, equal manifests): the key of the bundle stage's unit.
    /// The agent's and bundles' pages are kept between builds under it ([`PageStore`]).
    pub key: u64,
}

/// A generated page and the hash of its chapter (what its HTML is rendered from); `None` for a page not made.
pub type Generated = Option<(Arc<Page>, u64)>;

/// Generated pages kept between builds (the engine's memo): [`SitePlan::new`] asks for every page by its path and a
/// hash of what it is made from, and `make` makes those (by index into `items`) the store does not hold under the
/// same key. `None` in place of a store makes every page.
pub trait PageStore {
    fn pages(
        &mut self,
        items: &[(String, u64)],
        make: &mut dyn FnMut(&[usize]) -> Vec<Generated>,
    ) -> Vec<Generated>;
}

/// The generated site before rendering: its pages in navigation order and the navigation itself.
#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    pub description: String,
    /// The generated `SUMMARY.md`.
    pub summary: String,
    /// Shared with the caller's [`PageStore`], if any.
    pub pages: Vec<Arc<Page>>,
    /// For each page, a hash of its chapter and markdown: a page is rendered (and its markdown written) again only when
    /// they changed (early cutoff).
    pub keys: Vec<u64>,
}

/// The book's configuration as mdBook reads it: the book's, as loading read it ([`crate::config::Book`]), else
/// mdBook's defaults.
pub fn load_config(book: Option<&crate::config::Book>) -> Config {
    book.map(|b| b.mdbook.clone()).unwrap_or_default()
}

/// Generates every page and the navigation, in memory.
pub fn generate(input: &SiteInput, config: &Config) -> Site {
    generate_with(input, config, None)
}

/// Generates the navigation, and every page that `store` does not hold under the same key (every page without one).
pub fn generate_with(
    input: &SiteInput,
    config: &Config,
    store: Option<&mut dyn PageStore>,
) -> Site {
    let ix = crate::timing::time("site index", || Index::new(input.model, input.report));
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
    let manifests = input.bundles.unwrap_or_default();
    let bundle_paths = bundles::paths(input.bundles);
    // Each agent's manifest (the first by its name), found once.
    let mut by_agent: HashMap<&str, usize> = HashMap::default();
    for (i, m) in manifests.iter().enumerate() {
        by_agent.entry(m.manifest.agent.as_str()).or_insert(i);
    }
    let mine: Vec<Option<usize>> = ix
        .agents
        .iter()
        .map(|a| by_agent.get(a.display.as_str()).copied())
        .collect();

    // The navigation, and the pages in its order (made afterwards, in parallel).
    let mut jobs = vec![Job::Home];
    let mut nav = String::from("# Summary\n\n[Overview](index.md)\n\n");
    if !ix.agents.is_empty() {
        nav.push_str("# Agents\n\n");
        for (ai, a) in ix.agents.iter().enumerate() {
            let _ = writeln!(nav, "- [{}]({})", md_escape(&a.display), a.path);
            jobs.push(Job::Agent(ai));
            if let Some(i) = mine[ai] {
                let _ = writeln!(nav, "    - [Bundles]({})", bundle_paths[i]);
                jobs.push(Job::Bundles(i));
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
    let known: HashSet<&str> = ix.agents.iter().map(|a| a.display.as_str()).collect();
    let orphans: Vec<usize> = (0..manifests.len())
        .filter(|&i| !known.contains(manifests[i].manifest.agent.as_str()))
        .collect();
    if !orphans.is_empty() {
        nav.push_str("# Bundles\n\n");
        for i in orphans {
            let _ = writeln!(
                nav,
                "- [{}]({})",
                md_escape(&manifests[i].manifest.agent),
                bundle_paths[i]
            );
            jobs.push(Job::Bundles(i));
        }
        nav.push('\n');
    }
    nav.push_str("# Coverage\n\n- [Coverage matrix](coverage.md)\n");
    jobs.push(Job::Coverage);

    // Each page's path and key, then the pages the store does not hold.
    let shape = crate::timing::time("page keys", || {
        keys::Shape::new(input, &title, &description)
    });
    let items: Vec<(String, u64)> = jobs
        .iter()
        .map(|job| match *job {
            Job::Home => ("index.md".to_string(), shape.plain(0, &[])),
            Job::Agent(ai) => (
                ix.agents[ai].path.clone(),
                shape.with_bundles(1, ai, mine[ai].map(|i| manifests[i].key)),
            ),
            Job::Skill(si) => (ix.skills[si].path.clone(), shape.plain(2, &[si])),
            Job::Group(si, g) => (
                ix.skills[si].groups[g].path.clone(),
                shape.plain(3, &[si, g]),
            ),
            Job::Pattern(k) => (
                ix.patterns
                    .get(&k)
                    .map(|i| i.path.clone())
                    .unwrap_or_default(),
                {
                    let file = &ix.pattern(k).1.doc.file;
                    let gaps = ix
                        .gaps
                        .get(file.rel.as_str())
                        .map_or(&[][..], Vec::as_slice);
                    shape.pattern(k, file, gaps)
                },
            ),
            Job::Coverage => (
                "coverage.md".to_string(),
                shape.coverage(ix.gaps.values().flatten().copied()),
            ),
            Job::Bundles(i) => (
                bundle_paths[i].clone(),
                shape.with_bundles(6, i, Some(manifests[i].key)),
            ),
        })
        .collect();
    let mut make = |todo: &[usize]| -> Vec<Generated> {
        super::par_map(todo, |&i| {
            match jobs[i] {
                Job::Home => Some(pages::home(&ix, &title, &description)),
                Job::Agent(ai) => Some(pages::agent(
                    &ix,
                    ai,
                    mine[ai].and_then(|i| manifests[i].compiled),
                )),
                Job::Skill(si) => Some(pages::skill(&ix, &ix.skills[si])),
                Job::Group(si, g) => Some(pages::group(&ix, &ix.skills[si], g)),
                Job::Pattern(k) => pages::pattern(&ix, k),
                Job::Coverage => Some(pages::coverage(&ix)),
                Job::Bundles(i) => Some(bundles::page(&ix, &manifests[i], &bundle_paths[i])),
            }
            .map(|p| {
                let hash = crate::write::hash_of(&(&p.chapter, &p.markdown));
                (Arc::new(p), hash)
            })
        })
    };
    let made = crate::timing::time("pages", || match store {
        Some(store) => store.pages(&items, &mut make),
        None => make(&(0..items.len()).collect::<Vec<_>>()),
    });
    let (pages, keys) = made.into_iter().flatten().unzip();
    Site {
        title,
        description,
        summary: nav,
        pages,
        keys,
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
    /// The bundles page of the `i`th manifest.
    Bundles(usize),
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
        } else if p.path.starts_with("patterns/") && !p.path.contains("/by-category/") {
            "Patterns"
        } else {
            "Optional"
        }
    };
    for name in ["Agents", "Skills", "Patterns", "Optional"] {
        let list: Vec<&Page> = site
            .pages
            .iter()
            .map(|p| &**p)
            .filter(|p| section(p) == name)
            .collect();
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
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_llms_full(site, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes `llms-full.txt` to `w`, page by page.
pub fn write_llms_full(site: &Site, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    write!(w, "# {}\n\n", site.title)?;
    if !site.description.trim().is_empty() {
        write!(w, "> {}\n\n", util::one_line(&site.description))?;
    }
    for p in &site.pages {
        let text = crate::expand::rewrite_links(p.markdown.trim(), &|dest| rebase(&p.path, dest));
        write!(w, "<!-- page: {} -->\n\n{}\n\n", p.path, text)?;
    }
    Ok(())
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

/// The navigation as the renderer needs it: its entries in order, and the pages in reading order with their section
/// numbers (indices into `Site::pages`).
pub struct Navigation {
    pub items: Vec<NavItem>,
    pub order: Vec<NavPage>,
}

/// A page in reading order.
pub struct NavPage {
    /// Index into `Site::pages`.
    pub page: usize,
    /// Its name in the navigation (mdBook's chapter name, used in the page title).
    pub name: String,
    /// Its section number, if the summary numbers it.
    pub section: Option<String>,
}

/// Parses the generated `SUMMARY.md` with mdBook's parser (so numbering and nesting are mdBook's) and resolves each
/// link to its page.
pub fn navigation(site: &Site) -> Result<Navigation, String> {
    let summary = mdbook_summary::parse_summary(&site.summary)
        .map_err(|e| format!("the generated navigation does not parse: {e:#}"))?;
    let by_path: HashMap<&str, usize> = site
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.path.as_str(), i))
        .collect();
    let mut nav = Navigation {
        items: Vec::new(),
        order: Vec::new(),
    };
    fn walk(
        items: &[SummaryItem],
        by_path: &HashMap<&str, usize>,
        nav: &mut Navigation,
    ) -> Result<(), String> {
        for item in items {
            match item {
                SummaryItem::Link(link) => {
                    let path = link
                        .location
                        .as_ref()
                        .map(|l| l.to_string_lossy().replace('\\', "/"));
                    let section = link.number.as_ref().map(|n| n.to_string());
                    if let Some(p) = &path {
                        let i = *by_path.get(p.as_str()).ok_or_else(|| {
                            format!("the navigation names {p}, which was not generated")
                        })?;
                        nav.order.push(NavPage {
                            page: i,
                            name: link.name.clone(),
                            section: section.clone(),
                        });
                    }
                    nav.items.push(NavItem::Chapter {
                        name: link.name.clone(),
                        path,
                        section,
                        has_sub_items: !link.nested_items.is_empty(),
                    });
                    walk(&link.nested_items, by_path, nav)?;
                }
                SummaryItem::PartTitle(t) => nav.items.push(NavItem::Part(t.clone())),
                SummaryItem::Separator => nav.items.push(NavItem::Separator),
                _ => {
                    return Err(
                        "the navigation has an entry this mdBook version does not know".to_string(),
                    )
                }
            }
        }
        Ok(())
    }
    for list in [
        &summary.prefix_chapters,
        &summary.numbered_chapters,
        &summary.suffix_chapters,
    ] {
        walk(list, &by_path, &mut nav)?;
    }
    Ok(nav)
}

/// Everything the renderer needs, from the input: the generated site, the adjusted configuration, the theme, and the
/// stylesheets and scripts named by `additional-css`/`additional-js` (by their path in the site).
pub struct Prepared {
    pub site: Site,
    pub config: Config,
    pub theme: Theme,
    pub extra_files: BTreeMap<String, Vec<u8>>,
}

/// A page rendered and its HTML and markdown put into the output, with what the files that hold every page need of
/// it (its `<main>` content for `print.html`, its search document when search is on): what the engine remembers per
/// page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOutput {
    pub html: FileRef,
    /// The page's markdown (`<page>.md`).
    pub markdown: FileRef,
    pub content: String,
    pub search: Option<search::SearchDoc>,
}

/// A site ready to render: its pages generated, its navigation resolved, the files every page shares made. Each page
/// is then rendered on its own ([`SitePlan::render`], a pure function of what [`SitePlan::page_key`] hashes, so a
/// caller may remember it), and [`SitePlan::finish`] adds every file of the site to the output.
pub struct SitePlan {
    prepared: Prepared,
    nav: Navigation,
    shared: std::sync::Arc<SiteShared>,
    /// Each page's chapter (by index into the site's pages), taken out of the page when nothing else holds the page
    /// (no [`PageStore`]): rendering a page consumes it, so that the chapters and the rendered pages are not all held
    /// at once. `None` for a page a store holds: it is rendered from the page's own chapter.
    chapters: Vec<Option<std::sync::Mutex<Option<String>>>>,
}

impl SitePlan {
    /// Plans the site of `input`, its pages taken from `store` where it holds them under the same key.
    pub fn new(input: &SiteInput, store: Option<&mut dyn PageStore>) -> Result<SitePlan, String> {
        let mut prepared = crate::timing::time("generate pages", || prepare_with(input, store))?;
        let chapters = prepared
            .site
            .pages
            .iter_mut()
            .map(|p| {
                Arc::get_mut(p).map(|p| std::sync::Mutex::new(Some(std::mem::take(&mut p.chapter))))
            })
            .collect();
        let nav = crate::timing::time("navigation", || navigation(&prepared.site))?;
        let html: mdbook_core::config::HtmlConfig = prepared
            .config
            .get("output.html")
            .map_err(|e| format!("book.toml [output.html]: {e:#}"))?
            .unwrap_or_default();
        let search_cfg = html.search.clone().unwrap_or_default();
        let settings = render::SearchSettings {
            enable: search_cfg.enable,
            limit_results: search_cfg.limit_results,
            teaser_word_count: search_cfg.teaser_word_count,
            use_boolean_and: search_cfg.use_boolean_and,
            expand: search_cfg.expand,
            copy_js: search_cfg.copy_js,
        };
        let shared = crate::timing::time("shared", || {
            let assets = search::assets(&settings);
            // The files every page shares change only with the configuration, the theme and the navigation: the last
            // ones made are kept for the next build of this process (a save under watch does not make them again).
            static LAST: std::sync::Mutex<Option<(u64, std::sync::Arc<SiteShared>)>> =
                std::sync::Mutex::new(None);
            let key = crate::write::hash_of(&(
                toml::to_string(&prepared.config).map_err(|e| e.to_string())?,
                &prepared.theme,
                &nav.items,
                &assets,
                &prepared.extra_files,
            ));
            let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((k, shared)) = last.as_ref() {
                if *k == key {
                    return Ok(shared.clone());
                }
            }
            let shared = std::sync::Arc::new(SiteShared::new(
                &prepared.config,
                &prepared.theme,
                &nav.items,
                &assets,
                &prepared.extra_files,
            )?);
            *last = Some((key, shared.clone()));
            Ok::<_, String>(shared)
        })?;
        Ok(SitePlan {
            prepared,
            nav,
            shared,
            chapters,
        })
    }

    /// The number of pages, in reading order.
    pub fn len(&self) -> usize {
        self.nav.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nav.order.is_empty()
    }

    /// The markdown path of the `k`th page in reading order (`agents/x.md`).
    pub fn path(&self, k: usize) -> &str {
        &self.prepared.site.pages[self.nav.order[k].page].path
    }

    fn view<'a>(&'a self, k: usize, markdown: &'a str) -> PageView<'a> {
        let site = &self.prepared.site;
        let np = &self.nav.order[k];
        let p = &site.pages[np.page];
        let neighbour = |j: Option<usize>| {
            j.and_then(|j| self.nav.order.get(j)).map(|n| {
                let q = &site.pages[n.page];
                (n.name.as_str(), q.path.as_str())
            })
        };
        PageView {
            path: &p.path,
            title: &np.name,
            markdown,
            section: np.section.as_deref(),
            previous: neighbour(k.checked_sub(1)),
            next: neighbour(Some(k + 1)),
        }
    }

    /// A hash of everything the `k`th page's [`SitePlan::render`] reads: its view (path, title, section number,
    /// neighbours, and its chapter, by the hash taken when it was generated) and what every page shares (theme,
    /// configuration, asset names, navigation).
    pub fn page_key(&self, k: usize) -> u64 {
        let i = self.nav.order[k].page;
        let v = self.view(k, "");
        crate::write::hash_of(&(
            self.shared.fingerprint(),
            self.shared.search_enabled(),
            v.path,
            v.title,
            self.prepared.site.keys[i],
            v.section,
            v.previous,
            v.next,
        ))
    }

    /// Renders the `k`th page in reading order, and makes its search document. A page whose chapter was taken out
    /// is rendered once per plan: its chapter is consumed.
    pub fn render(&self, k: usize) -> Result<(RenderedPage, Option<search::SearchDoc>), String> {
        let i = self.nav.order[k].page;
        let owned = match &self.chapters[i] {
            Some(taken) => match taken.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(c) => Some(c),
                None => return Err(format!("{} was rendered twice", self.path(k))),
            },
            None => None,
        };
        let chapter = owned
            .as_deref()
            .unwrap_or(&self.prepared.site.pages[i].chapter);
        let v = self.view(k, chapter);
        let rendered = render::render_page(&self.shared, &v)?;
        let search = self
            .shared
            .search_enabled()
            .then(|| search::document(&render::html_path(v.path), v.title, &rendered));
        Ok((rendered, search))
    }

    /// Renders the `k`th page in reading order and puts its HTML and its markdown into `sink` under `prefix`.
    pub fn render_into(
        &self,
        k: usize,
        prefix: &str,
        sink: &dyn Sink,
    ) -> Result<PageOutput, String> {
        let (mut rendered, search) = self.render(k)?;
        // Kept until print.html is made (and by the memo): without the spare capacity the renderer gave it.
        rendered.content.shrink_to_fit();
        let html = sink.put(
            format!("{prefix}{}", render::html_path(self.path(k))),
            &rendered.html,
            None,
        );
        let page = &self.prepared.site.pages[self.nav.order[k].page];
        let markdown = sink.put(
            format!("{prefix}{}", page.path),
            page.markdown.as_bytes(),
            None,
        );
        Ok(PageOutput {
            html,
            markdown,
            content: rendered.content,
            search,
        })
    }

    /// Adds the rest of the site under `prefix` (normally `site/`), every page having been rendered into `sink` by
    /// [`SitePlan::render_into`] (`pages`, in reading order; each page's HTML and markdown): the shared files,
    /// `print.html`, the search index, `llms.txt` and `llms-full.txt`. The files that hold every page are written piece by piece,
    /// and only when `whole` (else the caller carries them over from an earlier build: [`holds_every_page`]).
    pub fn finish(
        &self,
        pages: &[&PageOutput],
        prefix: &str,
        sink: &dyn Sink,
        whole: bool,
    ) -> Result<(), String> {
        let site = &self.prepared.site;
        let nav = &self.nav;
        let shared = &self.shared;
        if pages.len() != nav.order.len() {
            return Err("the site was not rendered whole".to_string());
        }
        // print.html: with llms-full.txt on a thread of their own, beside the search index (each reads every page).
        let print = || -> Result<(), String> {
            if !(whole && shared.print_enabled()) {
                return Ok(());
            }
            let list: Vec<(&str, &str, &str)> = nav
                .order
                .iter()
                .zip(pages)
                .map(|(np, r)| {
                    let p = &site.pages[np.page];
                    (p.path.as_str(), np.name.as_str(), r.content.as_str())
                })
                .collect();
            let mut failed = None;
            crate::timing::time("print", || {
                sink.put_with(format!("{prefix}print.html"), &mut |w| {
                    render::render_print(shared, &list, w).map_err(|e| match e {
                        render::PrintError::Io(e) => e,
                        render::PrintError::Template(t) => {
                            failed = Some(t.clone());
                            std::io::Error::other(t)
                        }
                    })
                })
            });
            failed.map_or(Ok(()), Err)
        };
        let llms_full = || {
            if whole {
                crate::timing::time("llms-full", || {
                    sink.put_with(format!("{prefix}llms-full.txt"), &mut |w| {
                        write_llms_full(site, w)
                    })
                });
            }
        };
        // The files every page shares (the theme's scripts, styles and fonts), print.html and llms-full.txt on one
        // thread, the search index (about as long as the three) on this one.
        std::thread::scope(|scope| {
            let depth = crate::timing::depth();
            let printed = scope.spawn(move || {
                crate::timing::nested(depth, || {
                    for (name, bytes) in shared.shared_files() {
                        sink.put(format!("{prefix}{name}"), bytes, None);
                    }
                    let printed = print();
                    llms_full();
                    printed
                })
            });
            if whole && shared.search_enabled() {
                let docs: Vec<&search::SearchDoc> =
                    pages.iter().filter_map(|p| p.search.as_ref()).collect();
                crate::timing::time("search index", || {
                    search::index_with(&docs, &mut |name, bytes| {
                        sink.put(format!("{prefix}{name}"), &bytes, None);
                    })
                });
            }
            printed
                .join()
                .unwrap_or_else(|_| Err("making print.html failed".to_string()))
        })?;
        sink.put(format!("{prefix}llms.txt"), llms_txt(site).as_bytes(), None);
        Ok(())
    }
}

/// Whether a file of the site (`print.html`, relative to the site) is one of those that hold every page and that
/// [`SitePlan::finish`] makes only when asked for the whole site: `print.html`, the search index's fragments
/// (`search/`), `llms-full.txt`.
pub fn holds_every_page(rel: &str) -> bool {
    rel == "print.html" || rel == "llms-full.txt" || rel.starts_with("search/")
}

/// Builds the site and adds it under `prefix` (normally `site/`): every page's HTML and markdown, the shared files,
/// `print.html`, `llms.txt`, `llms-full.txt` and the search index. Every page is rendered (in parallel); the engine
/// renders through its memo instead.
pub fn emit(input: &SiteInput, prefix: &str, out: &mut OutputTree) -> Result<(), String> {
    let plan = SitePlan::new(input, None)?;
    let ks: Vec<usize> = (0..plan.len()).collect();
    let sink = MemorySink::default();
    let pages = super::par_map(&ks, |&k| plan.render_into(k, prefix, &sink))
        .into_iter()
        .collect::<Result<Vec<_>, String>>()?;
    let refs: Vec<&PageOutput> = pages.iter().collect();
    plan.finish(&refs, prefix, &sink, true)?;
    let tree = sink.into_tree();
    out.files.extend(tree.files);
    Ok(())
}

/// Writes the generated book as an ordinary mdBook project in `dir` (book.toml, src/SUMMARY.md, src/**.md, theme,
/// stylesheets), so that `mdbook build dir` renders the same site. Used to compare with mdBook itself.
pub fn write_book(input: &SiteInput, dir: &Path) -> Result<(), String> {
    let prepared = prepare(input)?;
    let io = |e: std::io::Error| format!("cannot write the book in {}: {e}", dir.display());
    let toml =
        toml::to_string(&prepared.config).map_err(|e| format!("cannot write book.toml: {e}"))?;
    fs::write(dir.join("book.toml"), toml).map_err(io)?;
    let theme_dir = dir.join("theme");
    fs::create_dir_all(theme_dir.join("css")).map_err(io)?;
    for (name, text) in BUILTIN_THEME {
        fs::write(theme_dir.join(name), text).map_err(io)?;
    }
    for (name, bytes) in input.book.iter().flat_map(|b| &b.site_files.theme) {
        let path = theme_dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(path, bytes).map_err(io)?;
    }
    for (name, bytes) in &prepared.extra_files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(path, bytes).map_err(io)?;
    }
    let src = dir.join("src");
    fs::create_dir_all(&src).map_err(io)?;
    fs::write(src.join("SUMMARY.md"), &prepared.site.summary).map_err(io)?;
    for p in &prepared.site.pages {
        let path = src.join(&p.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(path, &p.chapter).map_err(io)?;
    }
    Ok(())
}

/// Generates the site and adjusts the configuration for rendering, with the book's theme and the files its
/// `additional-css`/`additional-js` name as loading read them.
pub fn prepare(input: &SiteInput) -> Result<Prepared, String> {
    prepare_with(input, None)
}

/// [`prepare`], the pages taken from `store` where it holds them under the same key.
pub fn prepare_with(
    input: &SiteInput,
    store: Option<&mut dyn PageStore>,
) -> Result<Prepared, String> {
    let mut config = load_config(input.book);
    let mut html: toml::Table = config
        .get::<toml::Table>("output.html")
        .map_err(|e| format!("book.toml [output.html]: {e:#}"))?
        .unwrap_or_default();
    let theme = Theme::new(input.book.map(|b| &b.site_files.theme));
    // The theme's templates are compiled on another thread while the pages are generated (the files every page
    // shares are made from them next; an error shows there).
    let no_section_label = html
        .get("no-section-label")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let site = std::thread::scope(|scope| {
        scope.spawn(|| render::templates(&theme, no_section_label));
        generate_with(input, &config, store)
    });
    html.insert("theme".into(), toml::Value::String("theme".into()));
    // skillbook's stylesheets first, then the book's own additional files.
    let mut extra_files = BTreeMap::new();
    let mut css: Vec<toml::Value> = Vec::new();
    for sheet in STYLESHEETS {
        if let Some(b) = theme.files.get(*sheet) {
            extra_files.insert(sheet.to_string(), b.clone());
        }
        css.push(toml::Value::String(sheet.to_string()));
    }
    let files = input.book.map(|b| &b.site_files);
    let lists = [
        ("additional-css", css, files.map(|f| &f.additional_css)),
        ("additional-js", Vec::new(), files.map(|f| &f.additional_js)),
    ];
    for (key, mut kept, listed) in lists {
        for (rel, bytes) in listed.into_iter().flatten() {
            extra_files.insert(rel.clone(), bytes.clone());
            kept.push(toml::Value::String(rel.clone()));
        }
        html.insert(key.into(), toml::Value::Array(kept));
    }
    html.entry("no-section-label")
        .or_insert(toml::Value::Boolean(true));
    let mut output = toml::Table::new();
    output.insert("html".into(), toml::Value::Table(html));
    let set = |config: &mut Config, key: &str, v: toml::Value| {
        config
            .set(key, v)
            .map_err(|e| format!("cannot configure the site ({key}): {e:#}"))
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
    Ok(Prepared {
        site,
        config,
        theme,
        extra_files,
    })
}
