//! Render the site's HTML: mdBook's theme (`index.hbs` and its assets) filled with per-page data by handlebars.
//!
//! This replaces mdBook's whole-book renderer, whose per-page data held the whole navigation (so its time grew with
//! the square of the page count) and which only wrote to a directory. The output is the same kind of mdBook site:
//! the sidebar comes from `toc.js` (rendered once), themes, keyboard navigation, the print page and 404 work as in
//! mdBook, and a book's own `theme/` (`index.hbs`, `head.hbs`, `header.hbs`, `toc.js.hbs`, css, fonts) overrides the
//! built-in files with the template variables mdBook documents.
//!
//! Two calls, each a pure function of its inputs, so that a caller can remember their results:
//!
//! - [`SiteShared::new`]: the theme, the configuration and the navigation, made once; it also gives the files every
//!   page shares ([`SiteShared::shared_files`]: assets, `toc.js`, `toc.html`, 404) and a [`SiteShared::fingerprint`]
//!   that changes whenever a page's HTML could change for reasons outside the page;
//! - [`render_page`]: one page's HTML from its markdown, its title and its neighbours.
//!
//! [`render_print`] joins the pages' contents into `print.html`. The assets mdBook ships (MPL-2.0) are vendored
//! under `src/emit/site/mdbook/`.

use super::{BUILTIN_THEME, STYLESHEETS};
use crate::{HashMap, HashSet};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, Output, RenderContext, RenderError, RenderErrorReason,
};
use mdbook_core::config::{Config, HtmlConfig};
use mdbook_markdown::pulldown_cmark::{html, CodeBlockKind, CowStr, Event, LinkType, Tag, TagEnd};
use mdbook_markdown::MarkdownOptions;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// mdBook's own theme files (mdbook-html 0.5.4, `front-end/`), by the name a book's `theme/` folder overrides them.
const MDBOOK_FILES: &[(&str, &[u8])] = &[
    ("index.hbs", include_bytes!("mdbook/templates/index.hbs")),
    ("head.hbs", include_bytes!("mdbook/templates/head.hbs")),
    (
        "redirect.hbs",
        include_bytes!("mdbook/templates/redirect.hbs"),
    ),
    ("header.hbs", include_bytes!("mdbook/templates/header.hbs")),
    ("toc.js.hbs", include_bytes!("mdbook/templates/toc.js.hbs")),
    (
        "toc.html.hbs",
        include_bytes!("mdbook/templates/toc.html.hbs"),
    ),
    ("book.js", include_bytes!("mdbook/js/book.js")),
    ("css/chrome.css", include_bytes!("mdbook/css/chrome.css")),
    ("css/general.css", include_bytes!("mdbook/css/general.css")),
    ("css/print.css", include_bytes!("mdbook/css/print.css")),
    (
        "css/variables.css",
        include_bytes!("mdbook/css/variables.css"),
    ),
    ("highlight.js", include_bytes!("mdbook/js/highlight.js")),
    (
        "clipboard.min.js",
        include_bytes!("mdbook/js/clipboard.min.js"),
    ),
    ("highlight.css", include_bytes!("mdbook/css/highlight.css")),
    (
        "tomorrow-night.css",
        include_bytes!("mdbook/css/tomorrow-night.css"),
    ),
    (
        "ayu-highlight.css",
        include_bytes!("mdbook/css/ayu-highlight.css"),
    ),
    ("favicon.png", include_bytes!("mdbook/images/favicon.png")),
    ("favicon.svg", include_bytes!("mdbook/images/favicon.svg")),
];

/// mdBook's fonts, used unless the theme has its own `fonts/fonts.css`.
const MDBOOK_FONTS: &[(&str, &[u8])] = &[
    ("fonts/fonts.css", include_bytes!("mdbook/fonts/fonts.css")),
    (
        "fonts/OPEN-SANS-LICENSE.txt",
        include_bytes!("mdbook/fonts/OPEN-SANS-LICENSE.txt"),
    ),
    (
        "fonts/SOURCE-CODE-PRO-LICENSE.txt",
        include_bytes!("mdbook/fonts/SOURCE-CODE-PRO-LICENSE.txt"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-300.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-300.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-300italic.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-300italic.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-regular.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-regular.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-italic.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-italic.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-600.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-600.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-600italic.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-600italic.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-700.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-700.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-700italic.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-700italic.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-800.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-800.woff2"),
    ),
    (
        "fonts/open-sans-v17-all-charsets-800italic.woff2",
        include_bytes!("mdbook/fonts/open-sans-v17-all-charsets-800italic.woff2"),
    ),
    (
        "fonts/source-code-pro-v11-all-charsets-500.woff2",
        include_bytes!("mdbook/fonts/source-code-pro-v11-all-charsets-500.woff2"),
    ),
];

/// mark.js (MIT), which highlights the search words on the page a result opens.
const MARK_JS: &[u8] = include_bytes!("mdbook/searcher/mark.min.js");

/// The theme: every template and asset by name, the built-in files overlaid with the book's theme folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Theme {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The names of the files a book's theme folder may replace: mdBook's theme files and skillbook's stylesheets (and
/// the files of `fonts/`, when it has `fonts/fonts.css`).
pub fn theme_file_names() -> impl Iterator<Item = &'static str> {
    MDBOOK_FILES
        .iter()
        .map(|(n, _)| *n)
        .chain(BUILTIN_THEME.iter().map(|(n, _)| *n))
}

impl Theme {
    /// The built-in theme (mdBook's files and skillbook's stylesheets), overlaid with the book's own theme files as
    /// loading read them ([`crate::config::SiteFiles::theme`]: those of [`theme_file_names`], and `fonts/` when it
    /// has `fonts/fonts.css`).
    pub fn new(own: Option<&BTreeMap<String, Vec<u8>>>) -> Theme {
        let mut files: BTreeMap<String, Vec<u8>> = MDBOOK_FILES
            .iter()
            .map(|(n, b)| (n.to_string(), b.to_vec()))
            .collect();
        for (n, text) in BUILTIN_THEME {
            files.insert(n.to_string(), text.as_bytes().to_vec());
        }
        let own_fonts = own.is_some_and(|o| o.contains_key("fonts/fonts.css"));
        for (name, bytes) in own.into_iter().flatten() {
            files.insert(name.clone(), bytes.clone());
        }
        // As mdBook: a theme that replaces one favicon does not get the default of the other.
        for (one, other) in [
            ("favicon.svg", "favicon.png"),
            ("favicon.png", "favicon.svg"),
        ] {
            let default = |n: &str| MDBOOK_FILES.iter().find(|(m, _)| *m == n).map(|(_, b)| *b);
            let replaced = files.get(one).map(Vec::as_slice) != default(one);
            let kept = files.get(other).map(Vec::as_slice) == default(other);
            if replaced && kept {
                files.remove(other);
            }
        }
        if !own_fonts {
            for (n, b) in MDBOOK_FONTS {
                files.insert(n.to_string(), b.to_vec());
            }
        }
        Theme { files }
    }

    fn text(&self, name: &str) -> Result<String, String> {
        let bytes = self.files.get(name).map(Vec::as_slice).unwrap_or_default();
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("theme file {name} is not UTF-8"))
    }
}

/// One entry of the navigation, in order: a part title or a link to a page (or a draft without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NavItem {
    Part(String),
    Chapter {
        name: String,
        /// The page's markdown path (`agents/x.md`); `None` for a draft.
        path: Option<String>,
        /// mdBook's section number (`1.2.`), when the summary numbers it.
        section: Option<String>,
        has_sub_items: bool,
    },
    Separator,
}

/// A page as the renderer sees it.
#[derive(Debug, Clone, Copy)]
pub struct PageView<'a> {
    /// The markdown path (`agents/x.md`); the HTML goes to the same path ending in `.html`.
    pub path: &'a str,
    /// The title in the navigation.
    pub title: &'a str,
    /// The markdown to render.
    pub markdown: &'a str,
    /// The section number in the navigation, if any.
    pub section: Option<&'a str>,
    /// The previous and next pages in reading order: (title, markdown path).
    pub previous: Option<(&'a str, &'a str)>,
    pub next: Option<(&'a str, &'a str)>,
}

/// A rendered page: the whole HTML document and the content of its `<main>` (for the print page and search).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPage {
    pub html: Vec<u8>,
    pub content: String,
}

/// What every page shares: templates, configuration, asset names. Made once per build (or per theme, configuration
/// or navigation change).
pub struct SiteShared {
    handlebars: Handlebars<'static>,
    /// The template data common to every page (mdBook's `make_data`, without `chapters`).
    data: Map<String, Value>,
    html: HtmlConfig,
    markdown: MarkdownOptions,
    book_title: String,
    /// The files written once: assets (under their hashed names), `toc.js`, `toc.html`, `.nojekyll`, 404.
    files: BTreeMap<String, Vec<u8>>,
    fingerprint: u64,
}

/// The search settings mdBook reads from `[output.html.search]` that skillbook's search uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSettings {
    pub enable: bool,
    pub limit_results: u32,
    pub teaser_word_count: u32,
    pub use_boolean_and: bool,
    pub expand: bool,
    pub copy_js: bool,
}

impl SiteShared {
    /// Gets the theme ready and renders the files every page shares. `nav` is the navigation in order; `search_js`
    /// the search scripts ([`super::search::assets`]), added when search is on.
    pub fn new(
        config: &Config,
        theme: &Theme,
        nav: &[NavItem],
        search_js: &[(&str, Vec<u8>)],
        book_files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<SiteShared, String> {
        let html: HtmlConfig = config
            .get::<HtmlConfig>("output.html")
            .map_err(|e| format!("book.toml [output.html]: {e:#}"))?
            .unwrap_or_default();
        let mut hb = Handlebars::clone(&*templates(theme, html.no_section_label)?);

        let search = search_settings(&html);
        let book_title = config.book.title.clone().unwrap_or_default();
        let mut data = base_data(config, &html, theme, &search);

        // The assets, in mdBook's set.
        let mut assets: Vec<(String, Vec<u8>)> = Vec::new();
        let mut add = |name: &str| {
            if let Some(b) = theme.files.get(name) {
                assets.push((name.to_string(), b.clone()));
            }
        };
        add("book.js");
        add("css/general.css");
        add("css/chrome.css");
        if html.print.enable {
            add("css/print.css");
        }
        add("css/variables.css");
        add("favicon.png");
        add("favicon.svg");
        add("highlight.css");
        add("tomorrow-night.css");
        add("ayu-highlight.css");
        add("highlight.js");
        add("clipboard.min.js");
        for name in theme.files.keys().filter(|n| n.starts_with("fonts/")) {
            if let Some(b) = theme.files.get(name) {
                assets.push((name.clone(), b.clone()));
            }
        }
        for (name, b) in book_files {
            assets.push((name.clone(), b.clone()));
        }
        if search.enable && search.copy_js {
            assets.push(("mark.min.js".to_string(), MARK_JS.to_vec()));
            for (name, b) in search_js {
                assets.push((name.to_string(), b.clone()));
            }
        }

        // toc.js: the sidebar, rendered once; it is an asset like the others.
        let mut toc_data = data.clone();
        toc_data.insert("chapters".into(), chapters_json(nav));
        let toc_js = hb
            .render("toc_js", &toc_data)
            .map_err(|e| format!("theme toc.js.hbs: {e}"))?;
        assets.push(("toc.js".to_string(), toc_js.into_bytes()));

        let mut names: BTreeMap<String, String> = BTreeMap::new();
        if html.hash_files {
            for (name, bytes) in &assets {
                if let Some(hashed) = hashed_name(name, bytes) {
                    names.insert(name.clone(), hashed);
                }
            }
        }
        let mut files = BTreeMap::new();
        for (name, bytes) in assets {
            let out = if name.ends_with(".css") || name.ends_with(".js") {
                resolve_resources(&bytes, &name, &names)
            } else {
                bytes
            };
            let final_name = names.get(&name).cloned().unwrap_or(name);
            files.insert(final_name, out);
        }
        hb.register_helper(
            "resource",
            Box::new(ResourceHelper {
                names: names.clone(),
            }),
        );

        toc_data.insert("is_toc_html".into(), json!(true));
        toc_data.insert("path".into(), json!("toc.html"));
        let toc_html = hb
            .render("toc_html", &toc_data)
            .map_err(|e| format!("theme toc.html.hbs: {e}"))?;
        files.insert("toc.html".to_string(), toc_html.into_bytes());
        files.insert(
            ".nojekyll".to_string(),
            b"This file makes sure that Github Pages doesn't process mdBook's output.\n".to_vec(),
        );
        if let Some(cname) = &html.cname {
            files.insert("CNAME".to_string(), format!("{cname}\n").into_bytes());
        }

        let mut markdown = MarkdownOptions::default();
        markdown.smart_punctuation = html.smart_punctuation;
        markdown.definition_lists = html.definition_lists;
        markdown.admonitions = html.admonitions;

        let mut fp = Fnv::new();
        for (k, v) in &theme.files {
            fp.write(k.as_bytes());
            fp.write(v);
        }
        fp.write(serde_json::to_string(&data).unwrap_or_default().as_bytes());
        for (k, v) in &names {
            fp.write(k.as_bytes());
            fp.write(v.as_bytes());
        }
        fp.write(
            format!(
                "{} {} {}",
                markdown.smart_punctuation, markdown.definition_lists, markdown.admonitions
            )
            .as_bytes(),
        );
        data.remove("chapters");

        let mut shared = SiteShared {
            handlebars: hb,
            data,
            html,
            markdown,
            book_title,
            files,
            fingerprint: fp.finish(),
        };
        if shared.html.input_404 != Some(String::new()) {
            let page = shared.render_404()?;
            let name = shared.html.get_404_output_file();
            shared.files.insert(name, page);
        }
        for (from, to) in shared.html.redirect.clone() {
            if from.contains('#') {
                continue;
            }
            let rendered = shared
                .handlebars
                .render("redirect", &json!({"fragment_map": "{}", "url": to}))
                .map_err(|e| format!("theme redirect.hbs: {e}"))?;
            shared.files.insert(
                from.trim_start_matches('/').to_string(),
                rendered.into_bytes(),
            );
        }
        Ok(shared)
    }

    /// The files every page shares: assets under their final names, `toc.js`, `toc.html`, `404.html`, ...
    pub fn shared_files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// Changes whenever something outside a page that its HTML depends on changes (theme, configuration, asset
    /// names, among them `toc.js`'s).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether `print.html` is wanted.
    pub fn print_enabled(&self) -> bool {
        self.html.print.enable
    }

    /// Whether the search index is wanted.
    pub fn search_enabled(&self) -> bool {
        search_settings(&self.html).enable
    }

    /// The `[output.html.search]` settings.
    pub fn search(&self) -> SearchSettings {
        search_settings(&self.html)
    }

    fn render_404(&self) -> Result<Vec<u8>, String> {
        let text = "# Document not found (404)\n\nThis URL is invalid, sorry. Please use the navigation bar or \
                    search to continue.";
        let content = markdown_to_html(text, &self.markdown);
        let mut data = self.data.clone();
        let base = self
            .html
            .site_url
            .clone()
            .unwrap_or_else(|| "/".to_string());
        data.insert("base_url".into(), json!(base));
        data.insert("path".into(), json!("404.md"));
        data.insert("content".into(), json!(content));
        let mut title = String::from("Page not found");
        if !self.book_title.is_empty() {
            title.push_str(" - ");
            title.push_str(&self.book_title);
        }
        data.insert("title".into(), json!(title));
        self.handlebars
            .render("index", &data)
            .map(String::into_bytes)
            .map_err(|e| format!("theme index.hbs (404 page): {e}"))
    }
}

/// Renders one page: its markdown to HTML (as mdBook does: heading anchors, `.md` links to `.html`, tables in a
/// scrolling wrapper), then the page template around it. `index.md` is rendered as mdBook renders the book's first
/// page at `index.html`.
pub fn render_page(shared: &SiteShared, page: &PageView) -> Result<RenderedPage, String> {
    let content = markdown_to_html(page.markdown, &shared.markdown);
    let mut data = shared.data.clone();
    let title = if shared.book_title.is_empty() {
        page.title.to_string()
    } else {
        format!("{} - {}", page.title, shared.book_title)
    };
    if let Some(template) = &shared.html.edit_url_template {
        let url = template.replace("{path}", &format!("src/{}", page.path));
        data.insert("git_repository_edit_url".into(), json!(url));
    }
    data.insert("path".into(), json!(page.path));
    data.insert("content".into(), json!(content));
    data.insert("chapter_title".into(), json!(page.title));
    data.insert("title".into(), json!(title));
    data.insert("path_to_root".into(), json!(path_to_root(page.path)));
    if let Some(s) = page.section {
        data.insert("section".into(), json!(s));
    }
    if page.path == "index.md" {
        data.insert("is_index".into(), json!(true));
    }
    for (key, nb) in [("previous", page.previous), ("next", page.next)] {
        if let Some((title, path)) = nb {
            data.insert(key.into(), json!({"title": title, "link": html_path(path)}));
        }
    }
    let html = shared
        .handlebars
        .render("index", &data)
        .map_err(|e| format!("theme index.hbs ({}): {e}", page.path))?;
    Ok(RenderedPage {
        html: html.into_bytes(),
        content,
    })
}

/// Why `print.html` could not be written.
#[derive(Debug)]
pub enum PrintError {
    Io(std::io::Error),
    /// The theme's template failed.
    Template(String),
}

impl From<std::io::Error> for PrintError {
    fn from(e: std::io::Error) -> Self {
        PrintError::Io(e)
    }
}

/// Marks where the content goes in the print page's frame (the template rendered around it): a comment, which a
/// template that escaped the content would change.
const PRINT_CONTENT: &str = "<!--skillbook:print-content-->";

/// `print.html`: every page's content in order, its ids made unique across the book and its links to other pages
/// turned into links within the print page (as mdBook's print page does), written to `w` page by page (the page holds
/// the whole book: it is never held whole). `pages`: (markdown path, title, content).
pub fn render_print(
    shared: &SiteShared,
    pages: &[(&str, &str, &str)],
    w: &mut dyn std::io::Write,
) -> Result<(), PrintError> {
    // Pass 1: unique ids, and each page's first id (its anchor on the print page).
    let mut used = UsedIds::default();
    let mut remap: Vec<BTreeMap<String, String>> = Vec::with_capacity(pages.len());
    let mut root_id: BTreeMap<String, String> = BTreeMap::new();
    let mut prepend: Vec<Option<String>> = Vec::with_capacity(pages.len());
    for (path, title, content) in pages {
        let mut map = BTreeMap::new();
        let mut first_h1: Option<String> = None;
        let mut seen_heading = false;
        scan_tags(content, |tag, attrs| {
            let is_h1 = tag == "h1";
            let heading = matches!(tag, "h1" | "h2" | "h3" | "h4" | "h5" | "h6");
            if let Some((_, id)) = attrs.iter().find(|(n, _)| *n == "id") {
                let id = decode_attr(id);
                let new_id = unique_id(&id, &mut used);
                if is_h1 && !seen_heading {
                    first_h1 = Some(new_id.clone());
                }
                if new_id != id {
                    map.insert(id, new_id);
                }
            }
            if heading {
                seen_heading = true;
            }
        });
        let html_path = html_path(path);
        match first_h1 {
            Some(id) => {
                root_id.insert(html_path, id);
                prepend.push(None);
            }
            None => {
                let id = unique_id(&id_from_content(title), &mut used);
                root_id.insert(html_path, id.clone());
                prepend.push(Some(id));
            }
        }
        remap.push(map);
    }
    let by_path: BTreeMap<String, usize> = pages
        .iter()
        .enumerate()
        .map(|(i, (p, _, _))| (html_path(p), i))
        .collect();
    // Pass 2: rewrite, piece by piece.
    let body = |emit: &mut dyn FnMut(&str) -> std::io::Result<()>| -> std::io::Result<()> {
        for (i, (path, title, content)) in pages.iter().enumerate() {
            if i > 0 {
                emit(r#"<div style="break-before: page; page-break-before: always;"></div>"#)?;
            }
            if let Some(id) = &prepend[i] {
                emit(&format!(
                    "<h1 id=\"{id}\"><a href=\"#{id}\" class=\"header\">{}</a></h1>",
                    escape_attr(title)
                ))?;
            }
            let here = html_path(path);
            let base = parent(&here);
            emit(&rewrite_tags(content, |tag, name, value| {
                if name == "id" {
                    return remap[i].get(&decode_attr(value)).cloned();
                }
                if !matches!(tag, "a" | "img") || !matches!(name, "href" | "src" | "xlink:href") {
                    return None;
                }
                let dest = decode_attr(value);
                if has_scheme(&dest) || dest.starts_with('/') {
                    return None;
                }
                let (p, anchor) = match dest.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (dest.as_str(), None),
                };
                let target = if p.is_empty() {
                    here.clone()
                } else {
                    normalize(&format!("{base}{p}"))
                };
                let Some(&j) = by_path.get(&target) else {
                    // Not a page: relative to the root, where print.html is.
                    let mut rel = normalize(&format!("{base}{p}"));
                    if let Some(a) = anchor {
                        rel.push('#');
                        rel.push_str(a);
                    }
                    return Some(escape_attr(&rel));
                };
                let id = match anchor {
                    Some(a) => remap[j].get(a).cloned().unwrap_or_else(|| a.to_string()),
                    None => root_id.get(&target).cloned().unwrap_or_default(),
                };
                Some(escape_attr(&format!("#{id}")))
            }))?;
        }
        Ok(())
    };
    let frame = |content: &str| -> Result<String, PrintError> {
        let mut data = shared.data.clone();
        if shared.book_title.is_empty() {
            data.remove("title");
        } else {
            data.insert("title".into(), json!(shared.book_title));
        }
        data.insert("is_print".into(), json!(true));
        data.insert("path".into(), json!("print.md"));
        data.insert("content".into(), json!(content));
        data.insert("path_to_root".into(), json!(""));
        shared
            .handlebars
            .render("index", &data)
            .map_err(|e| PrintError::Template(format!("theme index.hbs (print page): {e}")))
    };
    // The template around a marker; the content is written where the marker is. A template that does not show the
    // content once and unescaped, as mdBook's does, gets the whole content in memory instead.
    let around = frame(PRINT_CONTENT)?;
    match around.split_once(PRINT_CONTENT) {
        Some((head, tail)) if !tail.contains(PRINT_CONTENT) => {
            w.write_all(head.as_bytes())?;
            body(&mut |piece| w.write_all(piece.as_bytes()))?;
            w.write_all(tail.as_bytes())?;
        }
        _ => {
            let mut out = String::new();
            body(&mut |piece| {
                out.push_str(piece);
                Ok(())
            })?;
            w.write_all(frame(&out)?.as_bytes())?;
        }
    }
    Ok(())
}

fn search_settings(html: &HtmlConfig) -> SearchSettings {
    let s = html.search.clone().unwrap_or_default();
    SearchSettings {
        enable: s.enable,
        limit_results: s.limit_results,
        teaser_word_count: s.teaser_word_count,
        use_boolean_and: s.use_boolean_and,
        expand: s.expand,
        copy_js: s.copy_js,
    }
}

/// mdBook's `make_data`: the template variables every page shares.
fn base_data(
    config: &Config,
    html: &HtmlConfig,
    theme: &Theme,
    search: &SearchSettings,
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert(
        "language".into(),
        json!(config.book.language.clone().unwrap_or_default()),
    );
    data.insert(
        "text_direction".into(),
        json!(config.book.realized_text_direction()),
    );
    data.insert(
        "book_title".into(),
        json!(config.book.title.clone().unwrap_or_default()),
    );
    data.insert(
        "description".into(),
        json!(config.book.description.clone().unwrap_or_default()),
    );
    if theme.files.contains_key("favicon.png") {
        data.insert("favicon_png".into(), json!("favicon.png"));
    }
    if theme.files.contains_key("favicon.svg") {
        data.insert("favicon_svg".into(), json!("favicon.svg"));
    }
    if let Some(e) = &html.live_reload_endpoint {
        data.insert("live_reload_endpoint".into(), json!(e));
    }
    let default_theme = html
        .default_theme
        .as_deref()
        .map(str::to_lowercase)
        .unwrap_or_else(|| "light".to_string());
    data.insert("default_theme".into(), json!(default_theme));
    let dark = html
        .preferred_dark_theme
        .as_deref()
        .map(str::to_lowercase)
        .unwrap_or_else(|| "navy".to_string());
    data.insert("preferred_dark_theme".into(), json!(dark));
    if html.mathjax_support {
        data.insert("mathjax_support".into(), json!(true));
    }
    let paths = |v: &[std::path::PathBuf]| -> Vec<String> {
        v.iter()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .collect()
    };
    if !html.additional_css.is_empty() {
        data.insert("additional_css".into(), json!(paths(&html.additional_css)));
    }
    if !html.additional_js.is_empty() {
        data.insert("additional_js".into(), json!(paths(&html.additional_js)));
    }
    if html.playground.copyable {
        data.insert("playground_copyable".into(), json!(true));
    }
    data.insert("print_enable".into(), json!(html.print.enable));
    data.insert("fold_enable".into(), json!(html.fold.enable));
    data.insert("fold_level".into(), json!(html.fold.level));
    data.insert("sidebar_header_nav".into(), json!(html.sidebar_header_nav));
    data.insert("search_enabled".into(), json!(search.enable));
    data.insert("search_js".into(), json!(search.enable && search.copy_js));
    if let Some(url) = &html.git_repository_url {
        data.insert("git_repository_url".into(), json!(url));
    }
    let icon = html
        .git_repository_icon
        .clone()
        .unwrap_or_else(|| "fab-github".to_string());
    let class = match icon.split('-').next() {
        Some("fas") => "solid",
        Some("fab") => "brands",
        _ => "regular",
    };
    data.insert("git_repository_icon".into(), json!(icon));
    data.insert("git_repository_icon_class".into(), json!(class));
    data
}

/// The `chapters` list mdBook's `toc` helper reads (only `toc.js` and `toc.html` are rendered with it).
fn chapters_json(nav: &[NavItem]) -> Value {
    let list: Vec<Value> = nav
        .iter()
        .map(|item| {
            let mut m = Map::new();
            match item {
                NavItem::Part(t) => {
                    m.insert("part".into(), json!(t));
                }
                NavItem::Separator => {
                    m.insert("spacer".into(), json!("_spacer_"));
                }
                NavItem::Chapter {
                    name,
                    path,
                    section,
                    has_sub_items,
                } => {
                    if let Some(s) = section {
                        m.insert("section".into(), json!(s));
                    }
                    m.insert("has_sub_items".into(), json!(has_sub_items.to_string()));
                    m.insert("name".into(), json!(name));
                    if let Some(p) = path {
                        m.insert("path".into(), json!(p));
                    }
                }
            }
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

/// `a/b/c.md` -> `../../`.
pub fn path_to_root(path: &str) -> String {
    "../".repeat(path.matches('/').count())
}

/// `agents/x.md` -> `agents/x.html`.
pub fn html_path(path: &str) -> String {
    match path.strip_suffix(".md") {
        Some(stem) => format!("{stem}.html"),
        None => path.to_string(),
    }
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => path[..=i].to_string(),
        None => String::new(),
    }
}

/// Resolves `.` and `..` in a relative path.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "." | "" => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn has_scheme(link: &str) -> bool {
    let Some((scheme, _)) = link.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
}

/// mdBook's `fix_link`: a relative link to `x.md` (with an optional anchor) becomes `x.html`.
pub fn fix_link(link: &str) -> Option<String> {
    if link.starts_with('#') || has_scheme(link) {
        return None;
    }
    let (path, anchor) = match link.find('#') {
        Some(i) => (&link[..i], Some(&link[i..])),
        None => (link, None),
    };
    let stem = path.strip_suffix(".md")?;
    Some(format!("{stem}.html{}", anchor.unwrap_or("")))
}

/// mdBook's heading id: lowercase, alphanumerics, `_` and `-` kept, whitespace to `-`, the rest dropped.
pub fn id_from_content(content: &str) -> String {
    content
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Ids handed out on one page (or the print page), for mdBook's `unique_id`.
#[derive(Default)]
pub struct UsedIds {
    used: HashSet<String>,
    /// Per id asked for: the smallest `n` that `id-n` may still be free at (every smaller one is taken, and taken
    /// ids stay taken), so a common heading asked for k times costs O(k), not O(k²).
    next: HashMap<String, u32>,
}

/// mdBook's `unique_id`: `id`, else the first free of `id-1`, `id-2`, ...
pub fn unique_id(id: &str, used: &mut UsedIds) -> String {
    if used.used.insert(id.to_string()) {
        return id.to_string();
    }
    let n = used.next.entry(id.to_string()).or_insert(1);
    loop {
        let candidate = format!("{id}-{n}");
        *n += 1;
        if used.used.insert(candidate.clone()) {
            return candidate;
        }
    }
}

fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes the entities an attribute value may hold (named ones HTML writers use, and numeric ones).
pub fn decode_attr(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // An entity is short: its `;` is within 12 bytes of the `&`. Bytes, not a slice of the text, which could cut
        // a character of several bytes (`&amp;T’s “new”`: byte 12 is inside the `“`).
        let Some(end) = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';')
        else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let decoded = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Calls `f(tag, attributes)` for every start tag of an HTML fragment (comments, `<script>` and `<style>` bodies
/// skipped). Attribute values are returned raw (still escaped).
pub fn scan_tags(html: &str, mut f: impl FnMut(&str, &[(&str, &str)])) {
    walk_tags(html, |tag, attrs, _| {
        f(tag, attrs);
    });
}

/// Rewrites attribute values of start tags: `f(tag, name, raw value)` returns the new (escaped) value, or `None` to
/// keep it.
fn rewrite_tags(html: &str, mut f: impl FnMut(&str, &str, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut last = 0;
    walk_tags(html, |tag, attrs, spans| {
        for ((name, value), (start, end)) in attrs.iter().zip(spans) {
            if let Some(new) = f(tag, name, value) {
                out.push_str(&html[last..*start]);
                out.push_str(&new);
                last = *end;
            }
        }
    });
    out.push_str(&html[last..]);
    out
}

/// The tag scanner behind [`scan_tags`] and [`rewrite_tags`]: for each start tag, its lowercase name, its attributes
/// and the byte range of each quoted value in `html`.
fn walk_tags(html: &str, mut f: impl FnMut(&str, &[(&str, &str)], &[(usize, usize)])) {
    let b = html.as_bytes();
    let mut i = 0;
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    while let Some(off) = html[i..].find('<') {
        i += off;
        if html[i..].starts_with("<!--") {
            i = html[i..].find("-->").map_or(b.len(), |e| i + e + 3);
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
            j += 1;
        }
        if j == start {
            i += 1;
            continue;
        }
        let tag = tag_name(&html[start..j]);
        attrs.clear();
        spans.clear();
        // Attributes until '>'.
        loop {
            while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b'/') {
                j += 1;
            }
            if j >= b.len() || b[j] == b'>' {
                break;
            }
            let ns = j;
            while j < b.len() && !b[j].is_ascii_whitespace() && !b"=>/".contains(&b[j]) {
                j += 1;
            }
            let name = &html[ns..j];
            if name.is_empty() {
                j += 1;
                continue;
            }
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                j += 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < b.len() && (b[j] == b'"' || b[j] == b'\'') {
                    let q = b[j];
                    let vs = j + 1;
                    let ve = html[vs..].find(q as char).map_or(b.len(), |e| vs + e);
                    attrs.push((name, &html[vs..ve]));
                    spans.push((vs, ve));
                    j = (ve + 1).min(b.len());
                } else {
                    let vs = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    attrs.push((name, &html[vs..j]));
                    spans.push((vs, j));
                }
            } else {
                attrs.push((name, ""));
                spans.push((j, j));
            }
        }
        f(&tag, &attrs, &spans);
        i = (j + 1).min(b.len());
        if tag == "script" || tag == "style" {
            i = closing_tag(html, i, &tag);
        }
    }
}

/// A tag's name, lowercase. Tag names are lowercase in what skillbook renders; any other is lowercased (a copy only
/// then: pages hold thousands of tags).
pub fn tag_name(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.bytes().any(|c| c.is_ascii_uppercase()) {
        raw.to_ascii_lowercase().into()
    } else {
        raw.into()
    }
}

/// Where the closing tag of the raw-text element `name` (`script`, `style`) starts, in any case, at or after
/// `from`; the end of `html` without one. The rest of the page is not lowercased to find it.
pub fn closing_tag(html: &str, from: usize, name: &str) -> usize {
    let close = format!("</{name}");
    html[from..]
        .match_indices("</")
        .find(|(e, _)| {
            html.get(from + e..from + e + close.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(&close))
        })
        .map_or(html.len(), |(e, _)| from + e)
}

/// A heading being collected: level, explicit id, classes, attributes.
type OpenHeading = (
    u8,
    Option<String>,
    Vec<String>,
    Vec<(String, Option<String>)>,
);

/// Markdown to HTML as mdBook 0.5 renders a chapter: mdBook's parser options; headings get an id (from their text,
/// unique on the page) and an `<a class="header">` link to themselves; links to `x.md` point at `x.html` (in raw
/// HTML too); tables sit in `<div class="table-wrapper">`; a fenced block's first info word is its `language-`
/// class, the rest are classes.
pub fn markdown_to_html(text: &str, options: &MarkdownOptions) -> String {
    let parser = mdbook_markdown::new_cmark_parser(text, options);
    let mut used = UsedIds::default();
    let mut events: Vec<Event> = Vec::new();
    let mut heading: Option<OpenHeading> = None;
    let mut inner: Vec<Event> = Vec::new();
    let mut heading_text = String::new();
    for ev in parser {
        if heading.is_some() {
            match ev {
                Event::End(TagEnd::Heading(_)) => {
                    let Some((level, id, classes, attrs)) = heading.take() else {
                        continue;
                    };
                    let id = match id {
                        Some(id) => id,
                        None => unique_id(&id_from_content(&heading_text), &mut used),
                    };
                    let mut open = format!("<h{level} id=\"{}\"", escape_attr(&id));
                    if !classes.is_empty() {
                        let _ = write!(open, " class=\"{}\"", escape_attr(&classes.join(" ")));
                    }
                    for (k, v) in &attrs {
                        let _ = write!(
                            open,
                            " {}=\"{}\"",
                            escape_attr(k),
                            escape_attr(v.as_deref().unwrap_or(""))
                        );
                    }
                    let _ = write!(open, "><a class=\"header\" href=\"#{}\">", escape_attr(&id));
                    events.push(Event::Html(open.into()));
                    events.append(&mut inner);
                    events.push(Event::Html(format!("</a></h{level}>\n").into()));
                    heading_text.clear();
                }
                ev => {
                    if let Event::Text(t) | Event::Code(t) = &ev {
                        heading_text.push_str(t);
                    }
                    inner.push(fix_event(ev));
                }
            }
            continue;
        }
        match ev {
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => {
                heading = Some((
                    level as u8,
                    id.map(|s| s.to_string()),
                    classes.iter().map(|c| c.to_string()).collect(),
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_string())))
                        .collect(),
                ));
            }
            Event::Start(Tag::Table(a)) => {
                events.push(Event::Html("<div class=\"table-wrapper\">".into()));
                events.push(Event::Start(Tag::Table(a)));
            }
            Event::End(TagEnd::Table) => {
                events.push(Event::End(TagEnd::Table));
                events.push(Event::Html("</div>\n".into()));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let class = match &kind {
                    CodeBlockKind::Fenced(info) => {
                        let mut words = info.split([' ', '\t', ',']).filter(|w| !w.is_empty());
                        words.next().map(|lang| {
                            let mut c = format!("language-{lang}");
                            for w in words {
                                c.push(' ');
                                c.push_str(w);
                            }
                            c
                        })
                    }
                    CodeBlockKind::Indented => None,
                };
                let open = match class {
                    Some(c) => format!("<pre><code class=\"{}\">", escape_attr(&c)),
                    None => "<pre><code>".to_string(),
                };
                events.push(Event::Html(open.into()));
            }
            Event::End(TagEnd::CodeBlock) => {
                events.push(Event::Html("</code></pre>\n".into()));
            }
            ev => events.push(fix_event(ev)),
        }
    }
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
    out
}

/// Links to `x.md` become `x.html`, in markdown links and images and in raw HTML `<a href>`.
fn fix_event(ev: Event) -> Event {
    match ev {
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if link_type != LinkType::Email => {
            let dest = fix_link(&dest_url).map(CowStr::from).unwrap_or(dest_url);
            Event::Start(Tag::Link {
                link_type,
                dest_url: dest,
                title,
                id,
            })
        }
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let dest = fix_link(&dest_url).map(CowStr::from).unwrap_or(dest_url);
            Event::Start(Tag::Image {
                link_type,
                dest_url: dest,
                title,
                id,
            })
        }
        Event::Html(h) if h.contains(".md") => Event::Html(fix_html_links(&h).into()),
        Event::InlineHtml(h) if h.contains(".md") => Event::InlineHtml(fix_html_links(&h).into()),
        ev => ev,
    }
}

fn fix_html_links(h: &str) -> String {
    rewrite_tags(h, |tag, name, value| {
        if tag == "a" && (name == "href" || name == "xlink:href") {
            fix_link(value)
        } else {
            None
        }
    })
}

/// `name.ext` -> `name-<hash>.ext`, as mdBook's `hash-files` names assets (not `.txt`, not names without a dot).
fn hashed_name(name: &str, bytes: &[u8]) -> Option<String> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.is_empty() || suffix.is_empty() || suffix == "txt" {
        return None;
    }
    let mut h = Fnv::new();
    h.write(bytes);
    Some(format!("{stem}-{:08x}.{suffix}", h.finish() as u32))
}

/// Replaces `{{ resource "name" }}` in an asset with the path from the asset to `name` under its final name.
fn resolve_resources(bytes: &[u8], from: &str, names: &BTreeMap<String, String>) -> Vec<u8> {
    const OPEN: &[u8] = b"{{ resource \"";
    const CLOSE: &[u8] = b"\" }}";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(OPEN) {
            let s = i + OPEN.len();
            if let Some(e) = bytes[s..].windows(CLOSE.len()).position(|w| w == CLOSE) {
                let name = String::from_utf8_lossy(&bytes[s..s + e]);
                if !name.contains('"') {
                    out.extend_from_slice(path_to_root(from).as_bytes());
                    out.extend_from_slice(
                        names
                            .get(name.as_ref())
                            .map_or(name.as_ref(), |n| n)
                            .as_bytes(),
                    );
                    i = s + e + CLOSE.len();
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// FNV-1a, 64 bits: a stable hash for asset names and fingerprints (the same on every platform and Rust version).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

/// The theme's templates (`index.hbs` with its partials, `redirect.hbs`, the sidebar's) compiled, with the `toc` and
/// `fa` helpers. Parsing `index.hbs` is most of the cost of the files every page shares, so the last templates compiled
/// are kept for the process by their texts and the setting: [`SitePlan::new`](super::SitePlan::new) compiles them on
/// another thread while the pages are generated, and a second caller waits for the first instead of compiling again.
pub fn templates(
    theme: &Theme,
    no_section_label: bool,
) -> Result<Arc<Handlebars<'static>>, String> {
    static LAST: Mutex<Option<(u64, Arc<Handlebars<'static>>)>> = Mutex::new(None);
    const NAMES: [&str; 6] = [
        "index.hbs",
        "head.hbs",
        "header.hbs",
        "redirect.hbs",
        "toc.js.hbs",
        "toc.html.hbs",
    ];
    let texts = NAMES
        .iter()
        .map(|n| theme.text(n))
        .collect::<Result<Vec<String>, String>>()?;
    let key = crate::write::hash_of(&(&texts, no_section_label));
    // Held while compiling: a caller that comes meanwhile waits for these templates.
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, hb)) = last.as_ref() {
        if *k == key {
            return Ok(hb.clone());
        }
    }
    let mut hb = Handlebars::new();
    let tpl = |e: handlebars::TemplateError| format!("theme template: {e}");
    hb.register_template_string("index", &texts[0])
        .map_err(tpl)?;
    hb.register_partial("head", &texts[1]).map_err(tpl)?;
    hb.register_partial("header", &texts[2]).map_err(tpl)?;
    hb.register_template_string("redirect", &texts[3])
        .map_err(tpl)?;
    hb.register_template_string("toc_js", &texts[4])
        .map_err(tpl)?;
    hb.register_template_string("toc_html", &texts[5])
        .map_err(tpl)?;
    hb.register_helper("toc", Box::new(RenderToc { no_section_label }));
    hb.register_helper("fa", Box::new(fa_helper));
    let hb = Arc::new(hb);
    *last = Some((key, hb.clone()));
    Ok(hb)
}

/// The `resource` helper: the path from the page being rendered to an asset, under its final (hashed) name.
struct ResourceHelper {
    names: BTreeMap<String, String>,
}

impl HelperDef for ResourceHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _r: &'reg Handlebars<'_>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> Result<(), RenderError> {
        let name = h.param(0).and_then(|v| v.value().as_str()).ok_or_else(|| {
            RenderErrorReason::Other("the resource helper needs a file name".to_owned())
        })?;
        let base = rc
            .evaluate(ctx, "@root/path")?
            .as_json()
            .as_str()
            .unwrap_or_default()
            .replace('"', "");
        out.write(&path_to_root(&base))?;
        out.write(self.names.get(name).map_or(name, |n| n.as_str()))?;
        Ok(())
    }
}

/// The `fa` helper: a Font Awesome icon as inline SVG (mdBook's).
fn fa_helper(
    h: &Helper<'_>,
    _r: &Handlebars<'_>,
    _ctx: &Context,
    _rc: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> Result<(), RenderError> {
    use font_awesome_as_a_crate as fa;
    use std::str::FromStr;
    let kind = h
        .param(0)
        .and_then(|v| v.value().as_str())
        .and_then(|v| fa::Type::from_str(v).ok())
        .ok_or_else(|| {
            RenderErrorReason::Other(
                "the fa helper needs a type: solid, regular or brands".to_owned(),
            )
        })?;
    let name = h
        .param(1)
        .and_then(|v| v.value().as_str())
        .ok_or_else(|| RenderErrorReason::Other("the fa helper needs an icon name".to_owned()))?;
    let name = name
        .strip_prefix("fa-")
        .or_else(|| name.strip_prefix("fab-"))
        .or_else(|| name.strip_prefix("fas-"))
        .unwrap_or(name);
    match h.param(2).and_then(|v| v.value().as_str()) {
        Some(id) => out.write(&format!("<span class=fa-svg id=\"{id}\">"))?,
        None => out.write("<span class=fa-svg>")?,
    }
    let svg = fa::svg(kind, name).map_err(|_| {
        RenderErrorReason::Other(format!(
            "unknown Font Awesome icon `{name}` of type `{kind}`"
        ))
    })?;
    out.write(svg)?;
    out.write("</span>")?;
    Ok(())
}

/// mdBook's `toc` helper: the sidebar's `<ol class="chapter">` from `@root/chapters`.
#[derive(Clone, Copy)]
struct RenderToc {
    no_section_label: bool,
}

impl HelperDef for RenderToc {
    fn call<'reg: 'rc, 'rc>(
        &self,
        _h: &Helper<'rc>,
        _r: &'reg Handlebars<'_>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> Result<(), RenderError> {
        let chapters = rc.evaluate(ctx, "@root/chapters")?.as_json().clone();
        let chapters: Vec<BTreeMap<String, String>> = serde_json::from_value(chapters)
            .map_err(|_| RenderErrorReason::Other("cannot decode `chapters`".to_owned()))?;
        let fold_enable = rc
            .evaluate(ctx, "@root/fold_enable")?
            .as_json()
            .as_bool()
            .unwrap_or(false);
        let fold_level = rc
            .evaluate(ctx, "@root/fold_level")?
            .as_json()
            .as_u64()
            .unwrap_or(0);
        let is_toc_html = rc
            .evaluate(ctx, "@root/is_toc_html")?
            .as_json()
            .as_bool()
            .unwrap_or(false);
        out.write(&toc_html(
            &chapters,
            fold_enable,
            fold_level as usize,
            is_toc_html,
            self.no_section_label,
        ))?;
        Ok(())
    }
}

fn toc_html(
    chapters: &[BTreeMap<String, String>],
    fold_enable: bool,
    fold_level: usize,
    is_toc_html: bool,
    no_section_label: bool,
) -> String {
    let mut out = String::from("<ol class=\"chapter\">");
    let li = |out: &mut String, expanded: bool| {
        out.push_str(if expanded {
            "<li class=\"chapter-item expanded \">"
        } else {
            "<li class=\"chapter-item \">"
        });
    };
    let mut current = 1usize;
    let mut first = true;
    for item in chapters {
        let level = item
            .get("section")
            .map_or(1, |s| s.matches('.').count().max(1));
        let expanded = !fold_enable || level - 1 < fold_level;
        if level > current {
            while level > current {
                current += 1;
                out.push_str("<ol class=\"section\">");
                li(&mut out, expanded);
            }
        } else if level < current {
            while level < current {
                out.push_str("</li></ol>");
                current -= 1;
            }
            li(&mut out, expanded);
        } else {
            if !first {
                out.push_str("</li>");
            }
            li(&mut out, expanded);
        }
        first = false;
        if item.contains_key("spacer") {
            out.push_str("<li class=\"spacer\"></li>");
            continue;
        }
        if let Some(t) = item.get("part") {
            let _ = write!(out, "<li class=\"part-title\">{}</li>", escape_attr(t));
            continue;
        }
        out.push_str("<span class=\"chapter-link-wrapper\">");
        let link = item.get("path").filter(|p| !p.is_empty());
        match link {
            Some(p) => {
                let _ = write!(
                    out,
                    "<a href=\"{}\"{}>",
                    escape_attr(&html_path(p)),
                    if is_toc_html {
                        " target=\"_parent\""
                    } else {
                        ""
                    }
                );
            }
            None => out.push_str("<span>"),
        }
        if !no_section_label {
            if let Some(s) = item.get("section") {
                let _ = write!(
                    out,
                    "<strong aria-hidden=\"true\">{}</strong> ",
                    escape_attr(s)
                );
            }
        }
        if let Some(n) = item.get("name") {
            out.push_str(&escape_attr(n));
        }
        out.push_str(if link.is_some() { "</a>" } else { "</span>" });
        let subs = item.get("has_sub_items").is_some_and(|f| f == "true");
        if fold_enable && subs {
            out.push_str("<a class=\"chapter-fold-toggle\"><div>❱</div></a>");
        }
        out.push_str("</span>");
    }
    while current > 0 {
        out.push_str("</li></ol>");
        current -= 1;
    }
    out
}

/// The stylesheets skillbook adds before the book's own `additional-css`.
pub fn additional_css(html: &toml::Table) -> Vec<String> {
    let mut css: Vec<String> = STYLESHEETS.iter().map(|s| s.to_string()).collect();
    if let Some(list) = html.get("additional-css").and_then(|v| v.as_array()) {
        css.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    css
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(s: &str) -> String {
        markdown_to_html(s, &MarkdownOptions::default())
    }

    #[test]
    fn entities_next_to_characters_of_several_bytes() {
        // Found by the `site` fuzzer: the 12-byte window after `&` ended inside the `“`, a panic in the search
        // index's text (and so in `skillbook build`) for a page saying `AT&T’s “new” plan`.
        assert_eq!(decode_attr("AT&amp;T’s “new” plan"), "AT&T’s “new” plan");
        assert_eq!(decode_attr("&amp;———"), "&———");
        assert_eq!(decode_attr("&———;"), "&———;");
        assert_eq!(decode_attr("&#x201C;x&#8221;"), "“x”");
    }

    proptest::proptest! {
        /// Whatever the text, decoding what `escape_attr` wrote gives the text back, and decoding text without `&`
        /// changes nothing. (Neither panics: the fuzzer found a text that did.)
        #[test]
        fn decode_attr_undoes_escape_attr(s in "(\\PC|&|;|#|x|[0-9a-f]|amp|quot){0,40}") {
            proptest::prop_assert_eq!(decode_attr(&escape_attr(&s)), s.clone());
            if !s.contains('&') {
                proptest::prop_assert_eq!(decode_attr(&s), s);
            } else {
                let _ = decode_attr(&s);
            }
        }
    }

    #[test]
    fn tag_names_and_raw_text_ends() {
        assert_eq!(tag_name("span"), "span");
        assert!(matches!(tag_name("span"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(tag_name("SCRIPT"), "script");
        let html = "<script>a < b; \"</scr\"</SCRIPT><p>x</p>";
        let from = "<script>".len();
        assert_eq!(
            closing_tag(html, from, "script"),
            html.find("</SCRIPT>").unwrap()
        );
        assert_eq!(closing_tag("<style>x", 7, "style"), 8);
    }

    #[test]
    fn headings_get_unique_ids_and_self_links() {
        assert_eq!(
            md("# Hello `x` world\n\n## Hello x world\n\n## Hello x world\n"),
            "<h1 id=\"hello-x-world\"><a class=\"header\" href=\"#hello-x-world\">Hello <code>x</code> world</a></h1>\n\
             <h2 id=\"hello-x-world-1\"><a class=\"header\" href=\"#hello-x-world-1\">Hello x world</a></h2>\n\
             <h2 id=\"hello-x-world-2\"><a class=\"header\" href=\"#hello-x-world-2\">Hello x world</a></h2>\n"
        );
    }

    #[test]
    fn md_links_point_at_html_in_markdown_and_raw_html() {
        let out = md("[a](x/y.md#z) [b](https://e.com/a.md) <a href=\"p.md\">p</a>\n");
        assert!(out.contains("href=\"x/y.html#z\""), "{out}");
        assert!(out.contains("href=\"https://e.com/a.md\""), "{out}");
        assert!(out.contains("<a href=\"p.html\">"), "{out}");
    }

    #[test]
    fn tables_are_wrapped_and_code_keeps_its_classes() {
        let out = md("| a |\n|---|\n| b |\n\n```rust ignore\nfn x() < 1\n```\n");
        assert!(
            out.starts_with("<div class=\"table-wrapper\"><table>"),
            "{out}"
        );
        assert!(
            out.contains("<pre><code class=\"language-rust ignore\">fn x() &lt; 1\n</code></pre>"),
            "{out}"
        );
    }

    #[test]
    fn toc_nests_by_section_number() {
        let ch = |name: &str, path: &str, section: Option<&str>| {
            let mut m = BTreeMap::new();
            m.insert("name".to_string(), name.to_string());
            m.insert("path".to_string(), path.to_string());
            if let Some(s) = section {
                m.insert("section".to_string(), s.to_string());
            }
            m
        };
        let mut part = BTreeMap::new();
        part.insert("part".to_string(), "Agents".to_string());
        let list = vec![
            ch("Overview", "index.md", None),
            part,
            ch("A", "agents/a.md", Some("1.")),
            ch("B", "agents/b.md", Some("1.1.")),
            ch("C", "c.md", Some("2.")),
        ];
        assert_eq!(
            toc_html(&list, false, 0, false, true),
            "<ol class=\"chapter\"><li class=\"chapter-item expanded \"><span class=\"chapter-link-wrapper\"><a href=\"index.html\">Overview</a></span></li>\
             <li class=\"chapter-item expanded \"><li class=\"part-title\">Agents</li></li>\
             <li class=\"chapter-item expanded \"><span class=\"chapter-link-wrapper\"><a href=\"agents/a.html\">A</a></span>\
             <ol class=\"section\"><li class=\"chapter-item expanded \"><span class=\"chapter-link-wrapper\"><a href=\"agents/b.html\">B</a></span></li></ol>\
             <li class=\"chapter-item expanded \"><span class=\"chapter-link-wrapper\"><a href=\"c.html\">C</a></span></li></ol>"
        );
    }

    #[test]
    fn resources_resolve_relative_to_the_asset() {
        let mut names = BTreeMap::new();
        names.insert(
            "fonts/a.woff2".to_string(),
            "fonts/a-1234.woff2".to_string(),
        );
        let out = resolve_resources(
            b"url('{{ resource \"fonts/a.woff2\" }}')",
            "fonts/fonts.css",
            &names,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "url('../fonts/a-1234.woff2')"
        );
    }

    #[test]
    fn tag_rewriting_touches_only_attribute_values() {
        let out = rewrite_tags(
            "<p title=\"a\">id=\"x\"</p><a id='x' href=\"y\">",
            |_, n, v| (n == "id").then(|| format!("{v}-1")),
        );
        assert_eq!(out, "<p title=\"a\">id=\"x\"</p><a id='x-1' href=\"y\">");
    }
}
