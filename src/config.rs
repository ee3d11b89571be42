//! Configuration: the `[preprocessor.skillbook]` table of a book.toml, and where the content root is.

use crate::tokenize::Tokenizer;
use clap::ValueEnum;
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default token budgets of bundles.
pub const DEFAULT_BUDGETS: &[u32] = &[2000, 4000, 8000, 16000];

/// The default budget of a compiled agent's system prompt (see the README, "The compiled agent").
pub const DEFAULT_AGENT_BUDGET: u32 = 8000;

/// skillbook's settings, as written under `[preprocessor.skillbook]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SkillbookTable {
    /// The content root, relative to book.toml.
    pub content: Option<PathBuf>,
    /// The regex that finds stub paragraphs.
    pub stub_pattern: Option<String>,
    /// Token budgets of bundles.
    pub budgets: Option<Vec<u32>>,
    /// The token budget of each compiled agent's system prompt in the compiled plugin.
    pub agent_budget: Option<u32>,
    /// The tokenizer `build` counts bundles with: claude (default), claude-4.6, o200k or cl100k.
    pub tokenizer: Option<String>,
    /// Which agents' expertise items must be covered: `opt-in` (default) or `all`.
    pub coverage: Option<String>,
    /// Left for mdBook: the command it would run for this preprocessor.
    pub command: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The book.toml that names the content (with a `[preprocessor.skillbook]` table), when there is one.
    pub book: Option<Book>,
    pub content_root: PathBuf,
    pub stub: Regex,
    pub budgets: Vec<u32>,
    /// The token budget of each compiled agent's system prompt.
    pub agent_budget: u32,
    /// Where `agent-budget` is set: book.toml (as shown), and the line and column of the key; `None` for the default.
    pub agent_budget_at: Option<KeyAt>,
    pub tokenizer: Tokenizer,
    /// Which agents' expertise items must be covered.
    pub coverage: crate::check::Coverage,
    /// Bundle templates as (format, source, origin): overrides from `theme/bundle/` next to book.toml, else built in.
    pub templates: Vec<(String, String, String)>,
}

/// A book.toml that configures the build: its folder, its text as loading read it, and mdBook's configuration read
/// from that text (the site's `[book]` and `[output.html]`), so no later stage reads the file again.
#[derive(Debug, Clone)]
pub struct Book {
    pub dir: PathBuf,
    pub toml: String,
    /// book.toml as mdBook reads it; its `[output.html]` table has been checked as the HTML renderer reads it.
    pub mdbook: mdbook_core::config::Config,
    /// The book's own files for the site, as loading read them.
    pub site_files: SiteFiles,
}

/// The files a book adds to its site: its theme folder's, and those `additional-css` and `additional-js` name.
#[derive(Debug, Clone, Default)]
pub struct SiteFiles {
    /// The theme folder the site's theme is read from: `theme/` beside book.toml, or the folder `[output.html] theme`
    /// names (whether it exists or not: `watch` waits for it to appear).
    pub theme_dir: PathBuf,
    /// The theme folder's files (`theme/`, or the folder `[output.html] theme` names) that replace the built-in
    /// theme's, by their name in it (`index.hbs`, `css/general.css`), and the files of its `fonts/` when it has
    /// `fonts/fonts.css`.
    pub theme: BTreeMap<String, Vec<u8>>,
    /// The files `additional-css` names, in its order: the path as written, `/`-separated, and the bytes.
    pub additional_css: Vec<(String, Vec<u8>)>,
    /// The same for `additional-js`.
    pub additional_js: Vec<(String, Vec<u8>)>,
}

impl Book {
    /// The files and folders outside the content that the site is made of besides `theme/`: the theme folder
    /// `[output.html] theme` names when it is another, and the files `additional-css` and `additional-js` name.
    pub fn site_paths(&self) -> Vec<PathBuf> {
        let files = &self.site_files;
        let own = self.dir.join("theme");
        let theme = Some(files.theme_dir.clone()).filter(|t| *t != own);
        let extra = files.additional_css.iter().chain(&files.additional_js);
        theme
            .into_iter()
            .chain(extra.map(|(rel, _)| self.dir.join(rel)))
            .collect()
    }
}

impl Config {
    /// The folder of the book.toml that names the content, when there is one.
    pub fn book_dir(&self) -> Option<&Path> {
        self.book.as_ref().map(|b| b.dir.as_path())
    }
}

/// Where a key of book.toml is: the file as shown, and its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyAt {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for KeyAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Finds the content root and settings: ROOT when given (its own book.toml, if any, may point into it), else the
/// content named by `./book.toml`, else the current directory when it is a plugin or a marketplace.
///
/// Every error names the path it is about, and says what to do; a root with no plugin in it lists the plugins and
/// marketplaces found below it.
pub fn resolve(root: Option<&Path>) -> Result<Config, String> {
    resolve_for(root, "check")
}

/// [`resolve`] for a command: its name goes into the suggestions (`skillbook build PATH`).
pub fn resolve_for(root: Option<&Path>, command: &str) -> Result<Config, String> {
    let command = if command.is_empty() { "check" } else { command };
    let (dir, given) = match root {
        Some(r) => (r.to_path_buf(), true),
        None => (PathBuf::from("."), false),
    };
    if given {
        match std::fs::metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("{}: no such directory", dir.display()))
            }
            Err(e) => return Err(format!("{}: {e}", dir.display())),
            Ok(m) if !m.is_dir() => return Err(format!("{} is not a directory", dir.display())),
            Ok(_) => {}
        }
    }
    let book = dir.join("book.toml");
    let table = if book.is_file() {
        read_table(&book)?
    } else {
        None
    };
    let (table, keys) = match table {
        Some((t, keys, text)) => (Some((t, text)), keys),
        None => (None, KeysAt::new()),
    };
    let (book, content_root, table) = match table {
        Some((t, toml)) => {
            let mdbook = mdbook_config(&toml, &clean(&book))?;
            let site_files = site_files(&dir, &toml, &mdbook)?;
            let named = t.content.clone();
            let content = dir.join(named.clone().unwrap_or_else(|| PathBuf::from("content")));
            if !content.is_dir() {
                let what = if content.exists() {
                    "is not a directory"
                } else {
                    "does not exist"
                };
                let key = match &named {
                    Some(c) => format!("`content = \"{}\"`", c.display()),
                    None => "the default `content = \"content\"`".to_string(),
                };
                let place = keys
                    .get("content")
                    .map_or_else(|| clean(&book).display().to_string(), |a| a.to_string());
                let mut msg = format!(
                    "{place}: {key} names {}, which {what}",
                    clean(&content).display()
                );
                let dirs = subdirs(&dir);
                let name = named
                    .as_ref()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "content".into());
                match crate::check::did_you_mean(&name, &dirs) {
                    Some(s) => msg.push_str(&format!("\n  = help: did you mean `content = \"{s}\"`?")),
                    None => msg.push_str(&format!(
                        "\n  = help: set `content` in [preprocessor.skillbook] to the folder that holds agents/ and skills/, relative to {}",
                        clean(&book).display()
                    )),
                }
                return Err(msg);
            }
            (
                Some(Book {
                    dir: dir.clone(),
                    toml,
                    mdbook,
                    site_files,
                }),
                content,
                t,
            )
        }
        None => {
            if !given && book.is_file() && kind(&dir).is_none() {
                return Err(format!(
                    "{} has no [preprocessor.skillbook] table naming the content, and the current directory is not a plugin\n  = help: add `[preprocessor.skillbook]` with `content = \"DIR\"` to book.toml, or name the content: `skillbook {command} PATH`",
                    clean(&book).display()
                ));
            }
            (None, dir.clone(), SkillbookTable::default())
        }
    };
    if kind(&content_root).is_none() {
        return Err(no_plugin(&content_root, given || book.is_some(), command));
    }
    from_table(book, content_root, table, keys)
}

/// book.toml as mdBook reads it (`Config::from_str` is `toml::from_str`), and `[output.html]` as the HTML renderer's
/// configuration, which mdBook keeps as a plain TOML value without spans. A syntax error or a bad key or value of
/// either is `book.toml:LINE:COL: message` with the line and a caret, found by `check` as well as `build`.
fn mdbook_config(text: &str, shown: &Path) -> Result<mdbook_core::config::Config, String> {
    #[derive(Deserialize)]
    struct Doc {
        #[allow(dead_code)]
        output: Option<Output>,
    }
    #[derive(Deserialize)]
    struct Output {
        #[allow(dead_code)]
        html: Option<mdbook_core::config::HtmlConfig>,
    }
    let located = |e: toml::de::Error| toml_error(text, shown, &e);
    let config = toml::from_str::<mdbook_core::config::Config>(text).map_err(located)?;
    toml::from_str::<Doc>(text).map_err(located)?;
    Ok(config)
}

/// The theme folder an `[output.html]` table names, as written: its `theme`, else `theme`; relative to book.toml's
/// folder. Loading leaves that folder out of the compiled plugin ([`crate::load::root_book`]).
pub fn theme_name(html: &toml::Table) -> &str {
    html.get("theme")
        .and_then(|t| t.as_str())
        .unwrap_or("theme")
}

/// Reads the book's own site files: the theme folder's files that replace the built-in theme's, and the files
/// `additional-css` and `additional-js` name. As in mdBook, a named file that is not there is an error; unlike mdBook,
/// only files inside the book's folder are read (the path becomes the file's path in the site). Either error names
/// the line of book.toml that names the file.
fn site_files(
    dir: &Path,
    toml: &str,
    mdbook: &mdbook_core::config::Config,
) -> Result<SiteFiles, String> {
    let html: toml::Table = mdbook
        .get::<toml::Table>("output.html")
        .ok()
        .flatten()
        .unwrap_or_default();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", clean(p).display()));
    let theme_dir = dir.join(theme_name(&html));
    let mut files = SiteFiles {
        theme_dir: theme_dir.clone(),
        ..SiteFiles::default()
    };
    if theme_dir.is_dir() {
        for name in crate::emit::site::render::theme_file_names() {
            let p = theme_dir.join(name);
            if p.is_file() {
                files.theme.insert(name.to_string(), read(&p)?);
            }
        }
        let fonts = theme_dir.join("fonts");
        if fonts.join("fonts.css").is_file() {
            let mut entries: Vec<_> = std::fs::read_dir(&fonts)
                .map_err(|e| format!("{}: {e}", clean(&fonts).display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                files
                    .theme
                    .insert(format!("fonts/{name}"), read(&e.path())?);
            }
        }
    }
    let lists = [
        (
            "additional-css",
            "theme/css/extra.css",
            &mut files.additional_css,
        ),
        ("additional-js", "theme/extra.js", &mut files.additional_js),
    ];
    for (key, example, kept) in lists {
        let listed = html.get(key).and_then(|v| v.as_array());
        for rel in listed.into_iter().flatten().filter_map(|v| v.as_str()) {
            let src = dir.join(rel);
            let problem = if !plain_relative(Path::new(rel)) {
                Some("which is not a relative path inside the book's folder")
            } else if !src.is_file() {
                Some("which is not a file")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!(
                    "{}: `{key}` names `{rel}`, {problem}\n  = help: name a file relative to book.toml, such as `{example}`, or remove it from the list",
                    value_at(toml, &clean(&dir.join("book.toml")), rel)
                ));
            }
            kept.push((rel.replace('\\', "/"), read(&src)?));
        }
    }
    Ok(files)
}

/// Where a string value is written in book.toml (quoted with `"` or `'`), as `book.toml:LINE:COL`; the file alone
/// when it is not found.
fn value_at(text: &str, shown: &Path, value: &str) -> String {
    let found = [format!("\"{value}\""), format!("'{value}'")]
        .iter()
        .filter_map(|q| text.find(q.as_str()))
        .min();
    match found {
        Some(offset) => key_at(text, shown, "", offset).to_string(),
        None => shown.display().to_string(),
    }
}

/// A relative path without `..`, absolute parts or prefixes: safe to join under the output root.
fn plain_relative(p: &Path) -> bool {
    !p.as_os_str().is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Where each key of `[preprocessor.skillbook]` is written in book.toml, by key.
type KeysAt = std::collections::BTreeMap<String, KeyAt>;

/// Reads the `[preprocessor.skillbook]` table of a book.toml, if it has one, with where each of its keys is. A
/// syntax error, or a key with a value of the wrong type, names the line and column and shows the line.
fn read_table(book: &Path) -> Result<Option<(SkillbookTable, KeysAt, String)>, String> {
    #[derive(Deserialize)]
    struct Doc<T> {
        preprocessor: Option<Pre<T>>,
    }
    #[derive(Deserialize)]
    struct Pre<T> {
        skillbook: Option<T>,
    }
    let shown = clean(book);
    let text = std::fs::read_to_string(book).map_err(|e| format!("{}: {e}", shown.display()))?;
    let table = toml::from_str::<Doc<SkillbookTable>>(&text)
        .map_err(|e| toml_error(&text, &shown, &e))?
        .preprocessor
        .and_then(|p| p.skillbook);
    let Some(table) = table else {
        return Ok(None);
    };
    // The same text again, each value with its span (it parsed above, so this cannot fail).
    type Spans = std::collections::BTreeMap<String, toml::Spanned<toml::Value>>;
    let spans = toml::from_str::<Doc<Spans>>(&text)
        .ok()
        .and_then(|d| d.preprocessor?.skillbook)
        .unwrap_or_default();
    let keys = spans
        .iter()
        .map(|(key, value)| (key.clone(), key_at(&text, &shown, key, value.span().start)))
        .collect();
    Ok(Some((table, keys, text)))
}

/// The 1-based line and column of byte `offset` of `text`; for a key's value, of the key when it is on that line.
pub(crate) fn key_at(text: &str, shown: &Path, key: &str, offset: usize) -> KeyAt {
    let src = crate::diagnostic::Source::new("book.toml", text);
    let (line, _) = src.line_col(offset);
    let line_start = src.line_start(line);
    let offset = offset.clamp(line_start, text.len());
    let at = text
        .get(line_start..offset)
        .filter(|_| !key.is_empty())
        .and_then(|before| before.find(key))
        .map_or(offset, |i| line_start + i);
    // Columns as diagnostics count them: in characters, a place inside the line's ending at the end of the line.
    let (line, column) = src.line_col(at);
    KeyAt {
        file: shown.to_path_buf(),
        line,
        column,
    }
}

/// A TOML error as `book.toml:LINE:COL: message`, then the line with a caret under the span (on that line).
pub(crate) fn toml_error(text: &str, shown: &Path, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return format!("{}: {message}", shown.display());
    };
    let at = key_at(text, shown, "", span.start);
    let line = crate::diagnostic::Source::new("book.toml", text).line_text(at.line);
    let room = line.chars().count() + 1 - at.column;
    let width = text
        .get(span.clone())
        .map_or(1, |s| s.lines().next().unwrap_or("").chars().count())
        .clamp(1, room.max(1));
    let gutter = " ".repeat(at.line.to_string().len());
    format!(
        "{at}: {message}\n{gutter} |\n{} | {line}\n{gutter} | {}{}",
        at.line,
        " ".repeat(at.column - 1),
        "^".repeat(width)
    )
}

/// What a directory is to Claude Code: a marketplace, a plugin, or (`None`) neither.
pub fn kind(dir: &Path) -> Option<&'static str> {
    let meta = dir.join(".claude-plugin");
    if meta.join("marketplace.json").is_file() {
        Some("marketplace")
    } else if meta.join("plugin.json").is_file()
        || ["agents", "skills", "commands"]
            .iter()
            .any(|d| dir.join(d).exists())
    {
        Some("plugin")
    } else {
        None
    }
}

/// Folder names directly inside `dir`, sorted.
fn subdirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    out
}

/// How deep below a root the search for plugins goes, and how many folders it looks at in all.
const SEARCH_DEPTH: usize = 4;
const SEARCH_LIMIT: usize = 5000;

/// Plugins and marketplaces below `root` (not `root` itself), breadth first, sorted; a found one is not searched
/// further. Hidden folders, `node_modules`, `target` and skillbook's own output directories are skipped.
pub fn find_below(root: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from([(root.to_path_buf(), 0usize)]);
    let mut seen = 0;
    while let Some((dir, depth)) = queue.pop_front() {
        seen += 1;
        if seen > SEARCH_LIMIT {
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut subs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                !name.starts_with('.')
                    && name != "node_modules"
                    && name != "target"
                    && !p.join(crate::write::MARKER).exists()
            })
            .collect();
        subs.sort();
        for sub in subs {
            match kind(&sub) {
                Some(k) => found.push((sub, k)),
                None if depth + 1 < SEARCH_DEPTH => queue.push_back((sub, depth + 1)),
                None => {}
            }
        }
    }
    found.sort();
    found
}

/// The error for a content root with no plugin in it: what was looked for, and the plugins found below it.
fn no_plugin(root: &Path, given: bool, command: &str) -> String {
    let shown = clean(root);
    let mut msg = if given {
        format!(
            "{} is not a plugin: it has no agents/, skills/, commands/ or .claude-plugin/ (plugin.json or marketplace.json)",
            shown.display()
        )
    } else {
        "no content root: the current directory has no book.toml with a [preprocessor.skillbook] table, and no agents/, skills/, commands/ or .claude-plugin/".to_string()
    };
    let below = find_below(root);
    const SHOWN: usize = 8;
    match below.as_slice() {
        [] if given => msg.push_str(
            "\n  = help: a plugin has agents/*.md or skills/<name>/SKILL.md at its root; point ROOT at that folder",
        ),
        [] => msg.push_str(&format!(
            "\n  = help: run skillbook inside a plugin, or name it: `skillbook {command} PATH`"
        )),
        [(p, k)] => msg.push_str(&format!(
            "\n  = help: did you mean {} (a {k})? `skillbook {command} {}`",
            clean(p).display(),
            clean(p).display()
        )),
        many => {
            msg.push_str(&format!(
                "\n  = help: did you mean one of these? `skillbook {command} PATH` with PATH one of"
            ));
            for (p, k) in many.iter().take(SHOWN) {
                msg.push_str(&format!("\n          {} ({k})", clean(p).display()));
            }
            if many.len() > SHOWN {
                msg.push_str(&format!("\n          and {} more", many.len() - SHOWN));
            }
        }
    }
    msg
}

fn from_table(
    book: Option<Book>,
    content_root: PathBuf,
    t: SkillbookTable,
    keys: KeysAt,
) -> Result<Config, String> {
    // Where a key is, for its error: `book.toml:LINE:COL`.
    let at = |key: &str| {
        keys.get(key)
            .map_or_else(|| "book.toml".to_string(), |a| a.to_string())
    };
    let pattern = t
        .stub_pattern
        .as_deref()
        .unwrap_or(crate::parse::DEFAULT_STUB_PATTERN);
    let stub = Regex::new(pattern).map_err(|e| {
        format!(
            "{}: `stub-pattern` is not a valid regex: {e}\n  = help: write the pattern in the syntax of Rust's regex crate, or remove the key for the default",
            at("stub-pattern")
        )
    })?;
    let budgets = t.budgets.unwrap_or_else(|| DEFAULT_BUDGETS.to_vec());
    if budgets.is_empty() || budgets.contains(&0) {
        return Err(format!(
            "{}: `budgets` must be a non-empty list of positive token counts\n  = help: for example `budgets = [2000, 8000]`, or remove the key for the default {DEFAULT_BUDGETS:?}",
            at("budgets")
        ));
    }
    let agent_budget = match t.agent_budget {
        None => DEFAULT_AGENT_BUDGET,
        Some(0) => {
            return Err(format!(
                "{}: `agent-budget = 0` leaves no room for an agent's own text\n  = help: set `agent-budget` under [preprocessor.skillbook] to a token count (the default is {DEFAULT_AGENT_BUDGET}), or remove it",
                at("agent-budget")
            ));
        }
        Some(b) => b,
    };
    let tokenizer = match t.tokenizer.as_deref() {
        None => Tokenizer::default(),
        Some(name) => Tokenizer::from_str(name, true).map_err(|_| {
            format!(
                "{}: tokenizer `{name}` is not one of claude, claude-4.6, o200k, cl100k",
                at("tokenizer")
            )
        })?,
    };
    let coverage = match t.coverage.as_deref() {
        None | Some("opt-in") => crate::check::Coverage::OptIn,
        Some("all") => crate::check::Coverage::All,
        Some(other) => {
            return Err(format!(
                "{}: coverage `{other}` is not one of `opt-in` (agents with a stub or a skill with patterns) or `all`",
                at("coverage")
            ))
        }
    };
    let mut templates = Vec::new();
    for (name, builtin) in crate::emit::bundle::BUILTIN_TEMPLATES {
        let path = book
            .as_ref()
            .map(|b| b.dir.join("theme/bundle").join(format!("{name}.hbs")));
        match path.filter(|p| p.is_file()) {
            Some(p) => {
                let source =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                templates.push((name.to_string(), source, clean(&p).display().to_string()));
            }
            None => templates.push((
                name.to_string(),
                builtin.to_string(),
                format!("(built-in {name} template)"),
            )),
        }
    }
    Ok(Config {
        book,
        content_root: clean(&content_root),
        stub,
        budgets,
        agent_budget,
        agent_budget_at: t
            .agent_budget
            .and_then(|_| keys.get("agent-budget").cloned()),
        tokenizer,
        coverage,
        templates,
    })
}

/// Drops `./` components so displayed paths read naturally.
pub fn clean(p: &Path) -> PathBuf {
    let c: PathBuf = p
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if c.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        c
    }
}
