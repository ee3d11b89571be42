//! Load: the only stage that reads content. A content root becomes a [`Workspace`] of plugins and their files' text.
//!
//! Three layouts load: a plugin directory (`agents/`, `skills/`, `commands/` at its root), the same with a
//! `.claude-plugin/plugin.json` that names further paths, and a marketplace (`.claude-plugin/marketplace.json`)
//! listing several plugins by relative path. Problems with single files are diagnostics; loading goes on.

use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use crate::HashSet;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Files larger than this are refused.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Files copied as they are (scripts, assets, ...) larger than this are refused.
pub const MAX_COPY_BYTES: u64 = 64 * 1024 * 1024;

/// Folders that are never part of a plugin: version control.
pub const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".bzr", ".jj"];

/// A file of the content root that skillbook does not read as content (a script, an asset, a README, hooks, an
/// `.mcp.json`, a skill's own `references/`...): the compiled plugin carries it byte for byte, with its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    /// The path relative to the content root (`/`-separated).
    pub rel: String,
    pub bytes: Vec<u8>,
    /// Permission bits (`0o777` at most).
    pub mode: u32,
}

/// The UTF-8 byte-order mark, which loading drops from the start of every file it reads as text.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` as UTF-8 text without its BOM, as loading reads every file it parses (for the files it copies as they
/// are, whose lines and columns must be counted as every other file's); `None` if they are not UTF-8.
pub fn text_of(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes.strip_prefix(BOM).unwrap_or(bytes)).ok()
}

/// One file's text, with its path relative to the content root (always `/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub rel: String,
    pub text: String,
}

impl SourceFile {
    pub fn source(&self) -> Source<'_> {
        Source::new(&self.rel, &self.text)
    }

    /// The file name without `.md`.
    pub fn stem(&self) -> &str {
        let name = self.rel.rsplit('/').next().unwrap_or(&self.rel);
        name.strip_suffix(".md").unwrap_or(name)
    }
}

/// A skill folder: its SKILL.md and its pattern files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillFiles {
    /// The folder's name, which the spec says must equal the skill's `name`.
    pub dir_name: String,
    /// The folder, relative to the content root.
    pub dir: String,
    pub skill_md: Option<SourceFile>,
    /// Whether the folder has a SKILL.md (it may still fail to read).
    pub skill_md_present: bool,
    pub patterns: Vec<SourceFile>,
}

/// The plugin manifest fields skillbook carries into the compiled plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub rel: String,
    pub json: serde_json::Map<String, serde_json::Value>,
    /// The manifest's text, for diagnostics' lines and columns.
    pub text: String,
}

/// One plugin's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFiles {
    pub name: String,
    /// The plugin's folder relative to the content root ("" for the root itself).
    pub dir: String,
    /// True inside a marketplace: names are shown as `plugin:name`.
    pub namespaced: bool,
    pub manifest: Option<Manifest>,
    pub agents: Vec<SourceFile>,
    pub skills: Vec<SkillFiles>,
    pub commands: Vec<SourceFile>,
}

/// Everything loaded from one content root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub plugins: Vec<PluginFiles>,
    /// The marketplace manifest, when the root is a marketplace.
    pub marketplace: Option<Manifest>,
    /// Every other file under the root, in path order, except those [`left_out`] names.
    pub copies: Vec<RawFile>,
    /// How many files were read.
    pub files: usize,
}

/// When `root` holds skillbook's own `book.toml` (one with a `[preprocessor.skillbook]` table), the folder its site
/// theme is read from, relative to `root`: the folder `[output.html] theme` names, `theme` without one. `None` for
/// no such book.toml. A theme folder outside `root` is given as written (it names no path of the content).
pub fn root_book(root: &Path) -> Option<String> {
    let table = fs::read_to_string(root.join("book.toml"))
        .ok()?
        .parse::<toml::Table>()
        .ok()?;
    table.get("preprocessor")?.get("skillbook")?;
    let theme = table
        .get("output")
        .and_then(|o| o.get("html"))
        .and_then(|h| h.as_table())
        .map_or("theme", crate::config::theme_name);
    let parts: Vec<&str> = theme
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    Some(parts.join("/"))
}

/// Why a file or folder of the content root is not part of the compiled plugin, or `None` when it is. `rel` is its
/// path relative to the root; `dir` says whether it is a folder; `root_book` is [`root_book`]'s answer for the root:
/// the theme folder of skillbook's own `book.toml` there (one with a `[preprocessor.skillbook]` table), if any.
///
/// Left out: version-control folders ([`VCS_DIRS`]), `.DS_Store` and editors' temporary and backup files
/// ([`is_editor_temp`]: `.x.swp`, `x~`, `.#x`, ...) anywhere; a folder holding skillbook's output
/// marker (`.skillbook-output`, an output directory inside the root) and the temporary siblings `write` makes
/// (`.NAME.skillbook-tmp-*`, `.NAME.skillbook-trash-*`, `.NAME.skillbook-old`); and, when the root holds skillbook's
/// `book.toml`, that file, the `theme/` folder beside it (the bundle templates' `theme/bundle/` is there) and the
/// folder its `[output.html] theme` names, which configure the site rather than the plugin.
pub fn left_out(
    rel: &str,
    dir: bool,
    root_book: Option<&str>,
    has_marker: bool,
) -> Option<&'static str> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let top = !rel.contains('/');
    if dir && VCS_DIRS.contains(&name) {
        Some("a version-control folder")
    } else if !dir && name == ".DS_Store" {
        Some("Finder metadata")
    } else if !dir && is_editor_temp(name) {
        Some("an editor's temporary or backup file")
    } else if dir && has_marker {
        Some("a skillbook output directory")
    } else if name.starts_with('.')
        && (name.contains(".skillbook-tmp-")
            || name.contains(".skillbook-trash-")
            || name.ends_with(".skillbook-old"))
    {
        Some("a skillbook temporary directory")
    } else if root_book.is_some_and(|theme| {
        (top && !dir && name == "book.toml") || (dir && ((top && name == "theme") || rel == theme))
    }) {
        Some("skillbook's configuration")
    } else {
        None
    }
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

/// Where the loader gets a file's bytes: [`FsReader`] reads the disk; the watch loop's cache answers files that have
/// not changed from memory.
pub trait Reader {
    /// The bytes of the file at `path` (the content root joined with the file's relative path).
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
}

/// Reads every file from disk.
pub struct FsReader;

impl Reader for FsReader {
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
}

/// Loads a content root. Only a root that cannot be read at all is an `Err`; everything else is a diagnostic.
pub fn load(root: &Path, diags: &mut Vec<Diagnostic>) -> io::Result<Workspace> {
    load_with(root, diags, &mut FsReader)
}

/// [`load`], getting the bytes of each file from `reader`.
pub fn load_with(
    root: &Path,
    diags: &mut Vec<Diagnostic>,
    reader: &mut dyn Reader,
) -> io::Result<Workspace> {
    let meta = fs::metadata(root)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", root.display()),
        ));
    }
    let canon = fs::canonicalize(root)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
    let mut loader = Loader {
        root: root.to_path_buf(),
        canon,
        diags,
        reader,
        files: 0,
        read_paths: BTreeSet::new(),
        inside: HashSet::default(),
    };
    let marketplace_path = root.join(".claude-plugin/marketplace.json");
    let mut marketplace = None;
    let plugins = if marketplace_path.is_file() {
        let (plugins, manifest) = loader.marketplace(&marketplace_path);
        marketplace = manifest;
        plugins
    } else {
        let name = root_name(root);
        loader.plugin(root, "", name, false).into_iter().collect()
    };
    let book = root_book(root);
    let mut copies = Vec::new();
    let mut stack = vec![loader.canon.clone()];
    loader.copies(root, book.as_deref(), &mut stack, &mut copies);
    let files = loader.files;
    Ok(Workspace {
        plugins,
        marketplace,
        copies,
        files,
    })
}

fn root_name(root: &Path) -> String {
    fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "plugin".to_string())
}

struct Loader<'d> {
    root: PathBuf,
    canon: PathBuf,
    diags: &'d mut Vec<Diagnostic>,
    reader: &'d mut dyn Reader,
    files: usize,
    /// The files read as content (agents, skills, patterns, commands, manifests), by relative path.
    read_paths: BTreeSet<String>,
    /// Paths known to stay inside the root once symlinks are resolved: folders checked once, and what their listings
    /// hold that is not a symlink. Their files are read without resolving each path again.
    inside: HashSet<PathBuf>,
}

/// One entry of a folder listing. Its kind comes from the listing itself, without a `stat` per file, except for a
/// symlink, whose target is looked at.
struct Entry {
    path: PathBuf,
    link: bool,
    /// A folder, or a symlink to one.
    dir: bool,
}

/// The entries of a folder, sorted by path.
fn list(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut out: Vec<Entry> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            let (link, dir) = match e.file_type() {
                Ok(t) if !t.is_symlink() => (false, t.is_dir()),
                Ok(_) => (true, path.is_dir()),
                Err(_) => (false, path.is_dir()),
            };
            Entry { path, link, dir }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What kind of path a manifest names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Agents,
    Skills,
    Commands,
}

impl Loader<'_> {
    fn rel(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let s: Vec<String> = rel
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        s.join("/")
    }

    fn file_diag(
        &mut self,
        rel: &str,
        code: &'static str,
        severity: Severity,
        msg: String,
        help: &str,
    ) {
        let src = Source::new(rel, "");
        let d = src.diag_at(1, 1, severity, code, msg);
        self.diags
            .push(if help.is_empty() { d } else { d.help(help) });
    }

    /// Checks that a path, once symlinks are resolved, stays inside the root. Reports and refuses it otherwise.
    fn inside_root(&mut self, path: &Path) -> bool {
        let is_link = fs::symlink_metadata(path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        match fs::canonicalize(path) {
            Ok(target) if target.starts_with(&self.canon) => true,
            Ok(target) => {
                let rel = self.rel(path);
                self.file_diag(
                    &rel,
                    "symlink-escape",
                    Severity::Error,
                    format!(
                        "{} leads outside the content root (to {}); it was not read",
                        if is_link { "this symlink" } else { "this path" },
                        target.display()
                    ),
                    "copy the file into the plugin, or point the link at a file inside it",
                );
                false
            }
            Err(e) => {
                let rel = self.rel(path);
                self.file_diag(
                    &rel,
                    if is_link {
                        "broken-symlink"
                    } else {
                        "io-error"
                    },
                    if is_link {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    format!("cannot resolve this path: {e}"),
                    "",
                );
                false
            }
        }
    }

    /// Whether a folder stays inside the root once symlinks are resolved (remembered).
    fn known_inside(&mut self, dir: &Path) -> bool {
        if dir == self.root || self.inside.contains(dir) {
            return true;
        }
        let inside = fs::canonicalize(dir).is_ok_and(|t| t.starts_with(&self.canon));
        if inside {
            self.inside.insert(dir.to_path_buf());
        }
        inside
    }

    /// Sorted entries of a directory, each checked against the root; unreadable directories are reported.
    fn entries(&mut self, dir: &Path) -> Vec<Entry> {
        let mut listed = match list(dir) {
            Ok(l) => l,
            Err(e) => {
                let rel = self.rel(dir);
                self.file_diag(
                    &rel,
                    "io-error",
                    Severity::Error,
                    format!("cannot read directory: {e}"),
                    "",
                );
                return Vec::new();
            }
        };
        // Hidden entries, and skillbook's own output directories (a `build/` inside the plugin), are not content.
        listed.retain(|e| {
            let hidden = e
                .path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let output = e.dir && e.path.join(crate::write::MARKER).exists();
            !hidden && !output
        });
        let dir_inside = self.known_inside(dir);
        let mut out = Vec::new();
        for e in listed {
            // What is not a symlink in a folder inside the root is inside it too.
            if e.link && !self.inside_root(&e.path) {
                continue;
            }
            if e.link || dir_inside {
                self.inside.insert(e.path.clone());
            }
            out.push(e);
        }
        out
    }

    fn markdown_files(&mut self, dir: &Path, recursive: bool, depth: usize) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if depth > 16 {
            return out;
        }
        for e in self.entries(dir) {
            if e.dir {
                if recursive {
                    out.extend(self.markdown_files(&e.path, true, depth + 1));
                }
            } else if e.path.extension().is_some_and(|x| x == "md") {
                out.push(e.path);
            }
        }
        out
    }

    /// Reads one file as UTF-8 text, without its BOM.
    fn read(&mut self, path: &Path) -> Option<SourceFile> {
        let rel = self.rel(path);
        self.read_paths.insert(rel.clone());
        if !self.inside.contains(path) && !self.inside_root(path) {
            return None;
        }
        match fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                self.file_diag(
                    &rel,
                    "file-too-large",
                    Severity::Error,
                    format!(
                        "file is {} bytes; the limit is {} bytes",
                        m.len(),
                        MAX_FILE_BYTES
                    ),
                    "split it into smaller files",
                );
                return None;
            }
            _ => {}
        }
        let bytes = match self.reader.read(path) {
            Ok(b) => b,
            Err(e) => {
                self.file_diag(
                    &rel,
                    "io-error",
                    Severity::Error,
                    format!("cannot read file: {e}"),
                    "",
                );
                return None;
            }
        };
        self.files += 1;
        let mut bytes = bytes;
        if bytes.starts_with(BOM) {
            bytes.drain(..BOM.len());
        }
        match String::from_utf8(bytes) {
            Ok(text) => Some(SourceFile { rel, text }),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let bad = e.as_bytes()[offset];
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
                let src = Source::new(&rel, &prefix);
                let (line, column) = src.line_col(offset);
                let mut d = src.diag_at(
                    line,
                    column,
                    Severity::Error,
                    "invalid-utf8",
                    format!("file is not valid UTF-8: byte 0x{bad:02X} at byte offset {offset}"),
                );
                d.help = Some("save the file as UTF-8".to_string());
                self.diags.push(d);
                None
            }
        }
    }

    fn read_json(
        &mut self,
        path: &Path,
    ) -> Option<(SourceFile, serde_json::Map<String, serde_json::Value>)> {
        let file = self.read(path)?;
        match serde_json::from_str::<serde_json::Value>(&file.text) {
            Ok(serde_json::Value::Object(map)) => Some((file, map)),
            Ok(_) => {
                self.diags.push(file.source().diag_at(
                    1,
                    1,
                    Severity::Error,
                    "manifest-json",
                    "manifest must be a JSON object",
                ));
                None
            }
            Err(e) => {
                let src = file.source();
                let d = src.diag(
                    src.byte_line_col(e.line().max(1), e.column().max(1)),
                    Severity::Error,
                    "manifest-json",
                    format!(
                        "manifest is not valid JSON: {}",
                        strip_json_location(&e.to_string())
                    ),
                );
                self.diags
                    .push(d.help("fix the JSON syntax; the manifest was ignored"));
                None
            }
        }
    }

    /// Resolves a relative path named in a manifest, refusing absolute paths and `..`.
    fn manifest_path(
        &mut self,
        manifest: &SourceFile,
        base: &Path,
        value: &str,
        kind: Option<Kind>,
    ) -> Option<PathBuf> {
        // A `manifest-path` error at the entry (its quoted value in the manifest's text).
        let mut refuse = |message: String, help: &str| {
            let needle = format!("\"{value}\"");
            let offset = manifest.text.find(&needle).map(|i| i + 1).unwrap_or(0);
            self.diags.push(
                manifest
                    .source()
                    .diag(offset, Severity::Error, "manifest-path", message)
                    .help(help),
            );
            None
        };
        let p = Path::new(value);
        let bad = p.is_absolute()
            || p.components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        if bad {
            return refuse(
                format!("path `{value}` leaves the plugin; it was not read"),
                "manifest paths are relative to the plugin root, start with `./` and contain no `..`",
            );
        }
        let full = base.join(p);
        if !full.exists() {
            return refuse(
                format!("path `{value}` does not exist"),
                "fix the path or remove it from the manifest",
            );
        }
        if kind == Some(Kind::Skills) && !full.is_dir() {
            // A skill is a folder (with its SKILL.md); a file named here would be listed as one. The lint already
            // refuses a `.md` file here, whether it exists or not (`must name a folder`).
            if value.ends_with(".md") {
                return None;
            }
            return refuse(
                format!("`skills` path `{value}` is a file; Claude Code loads skills from folders"),
                "name a skill's folder (the one holding its SKILL.md) or a folder of skill folders",
            );
        }
        if self.inside_root(&full) {
            Some(full)
        } else {
            None
        }
    }

    fn marketplace(&mut self, path: &Path) -> (Vec<PluginFiles>, Option<Manifest>) {
        let Some((file, json)) = self.read_json(path) else {
            return (Vec::new(), None);
        };
        let plugin_root = json
            .get("metadata")
            .and_then(|m| m.get("pluginRoot"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let entries = match json.get("plugins") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            other => {
                let (offset, found) = match other {
                    Some(v) => (
                        file.text.find("\"plugins\"").map(|i| i + 1).unwrap_or(0),
                        format!("`plugins` is {}", json_kind(v)),
                    ),
                    None => (0, "there is no `plugins` key".to_string()),
                };
                self.diags.push(
                    file.source()
                        .diag(
                            offset,
                            Severity::Error,
                            "marketplace-shape",
                            format!("this is not a Claude Code marketplace: {found}, and Claude Code reads the plugins from a `plugins` list"),
                        )
                        .help("write `\"plugins\": [{\"name\": \"my-plugin\", \"source\": \"./plugins/my-plugin\"}]`, one entry per plugin, next to `name` and `owner`"),
                );
                return (Vec::new(), None);
            }
        };
        if entries.is_empty() {
            self.diags.push(file.source().diag_at(
                1,
                1,
                Severity::Warning,
                "empty-marketplace",
                "marketplace lists no plugins under `plugins`",
            ));
        }
        let mut out = Vec::new();
        // Each entry's name is looked for after the previous entry's, so that a repeated name is found where it is
        // repeated; `names` holds the names seen, with where.
        let mut from = file.text.find("\"plugins\"").unwrap_or(0);
        let mut names: Vec<(String, usize)> = Vec::new();
        for entry in entries {
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string();
            let offset = file.text[from..]
                .find(&format!("\"{name}\""))
                .map(|i| from + i + 1)
                .unwrap_or(0);
            from = from.max(offset);
            if !name.is_empty() {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
                    let src = file.source();
                    let (line, _) = src.line_col(*first);
                    self.diags.push(
                        src.diag(
                            offset,
                            Severity::Error,
                            "duplicate-plugin",
                            format!("plugin `{name}` is listed twice in the marketplace (first on line {line}); Claude Code refuses a marketplace with a repeated plugin name"),
                        )
                        .help("give each plugin its own `name`, or remove the repeated entry"),
                    );
                    continue;
                }
                names.push((name.clone(), offset));
            }
            let Some(source) = entry.get("source").and_then(|s| s.as_str()) else {
                self.diags.push(
                    file.source()
                        .diag(
                            offset,
                            Severity::Warning,
                            "remote-plugin-source",
                            format!(
                                "plugin `{name}` has no local `source` path; it was not loaded"
                            ),
                        )
                        .help("only plugins inside this repository can be compiled"),
                );
                continue;
            };
            let base = if source.starts_with("./") || plugin_root.is_empty() {
                self.root.clone()
            } else {
                let Some(b) = self.manifest_path(&file, &self.root.clone(), &plugin_root, None)
                else {
                    continue;
                };
                b
            };
            let Some(dir) = self.manifest_path(&file, &base, source, None) else {
                continue;
            };
            let rel = self.rel(&dir);
            let name = if name.is_empty() {
                root_name(&dir)
            } else {
                name
            };
            out.extend(self.plugin(&dir, &rel, name, true));
        }
        let manifest = Manifest {
            rel: file.rel,
            json,
            text: file.text,
        };
        (out, Some(manifest))
    }

    fn plugin(
        &mut self,
        dir: &Path,
        rel: &str,
        name: String,
        namespaced: bool,
    ) -> Option<PluginFiles> {
        let mut plugin = PluginFiles {
            name,
            dir: rel.to_string(),
            namespaced,
            manifest: None,
            agents: Vec::new(),
            skills: Vec::new(),
            commands: Vec::new(),
        };
        let mut extra: Vec<(Kind, PathBuf)> = Vec::new();
        let manifest_path = dir.join(".claude-plugin/plugin.json");
        if manifest_path.is_file() {
            if let Some((file, json)) = self.read_json(&manifest_path) {
                if let Some(n) = json.get("name").and_then(|n| n.as_str()) {
                    if !namespaced {
                        plugin.name = n.to_string();
                    }
                }
                for (key, kind) in [
                    ("agents", Kind::Agents),
                    ("skills", Kind::Skills),
                    ("commands", Kind::Commands),
                ] {
                    let values: Vec<String> = match json.get(key) {
                        Some(serde_json::Value::String(s)) => vec![s.clone()],
                        Some(serde_json::Value::Array(a)) => a
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                        _ => Vec::new(),
                    };
                    for v in values {
                        if let Some(p) = self.manifest_path(&file, dir, &v, Some(kind)) {
                            extra.push((kind, p));
                        }
                    }
                }
                plugin.manifest = Some(Manifest {
                    rel: file.rel,
                    json,
                    text: file.text,
                });
            }
        }
        let mut agent_paths = Vec::new();
        let mut skill_dirs = Vec::new();
        let mut command_paths = Vec::new();
        let mut defaults = Vec::new();
        for (kind, folder) in [
            (Kind::Agents, "agents"),
            (Kind::Skills, "skills"),
            (Kind::Commands, "commands"),
        ] {
            let p = dir.join(folder);
            if p.is_dir() {
                defaults.push((kind, p));
            } else if fs::symlink_metadata(&p).is_ok() {
                // `agents` (or `skills`, `commands`) exists but is not a folder: Claude Code finds nothing in it.
                let rel = self.rel(&p);
                let what = match kind {
                    Kind::Agents => "agents as `agents/<name>.md` files",
                    Kind::Skills => "skills as `skills/<name>/SKILL.md` folders",
                    Kind::Commands => "commands as `commands/<name>.md` files",
                };
                self.file_diag(
                    &rel,
                    "not-a-folder",
                    Severity::Error,
                    format!("`{folder}` is a file, not a folder; nothing in it is loaded"),
                    &format!("Claude Code loads {what}: make `{folder}` a folder, or name another path in .claude-plugin/plugin.json"),
                );
            }
        }
        let named: Vec<PathBuf> = extra
            .iter()
            .filter(|(k, _)| *k == Kind::Skills)
            .map(|(_, p)| p.clone())
            .collect();
        for (kind, base) in defaults.into_iter().chain(extra) {
            match kind {
                Kind::Agents if base.is_file() => agent_paths.push(base),
                Kind::Agents => agent_paths.extend(self.markdown_files(&base, false, 0)),
                Kind::Commands if base.is_file() => command_paths.push(base),
                Kind::Commands => command_paths.extend(self.markdown_files(&base, true, 0)),
                Kind::Skills if base.join("SKILL.md").is_file() => skill_dirs.push(base),
                Kind::Skills => {
                    for e in self.entries(&base) {
                        if !e.dir {
                            continue;
                        }
                        let p = e.path;
                        // A category folder (`skills/development/<skill>/SKILL.md`) is not a skill. Claude Code
                        // loads the skills in it only when plugin.json names the folder.
                        if !p.join("SKILL.md").exists() && has_skill_below(&p) {
                            if !named.iter().any(|n| same_dir(n, &p)) {
                                let rel = self.rel(&p);
                                self.file_diag(
                                    &rel,
                                    "nested-skills",
                                    Severity::Warning,
                                    format!("`{rel}` holds skills one folder deeper, where Claude Code does not look for them; they were not loaded"),
                                    &format!("name the folder in .claude-plugin/plugin.json: `\"skills\": [\"./{rel}\"]`, or move each skill up to skills/<name>/"),
                                );
                            }
                            continue;
                        }
                        skill_dirs.push(p);
                    }
                }
            }
        }
        for paths in [&mut agent_paths, &mut skill_dirs, &mut command_paths] {
            paths.sort();
            paths.dedup();
        }
        for p in agent_paths {
            if let Some(f) = self.read(&p) {
                plugin.agents.push(f);
            }
        }
        for p in command_paths {
            if let Some(f) = self.read(&p) {
                plugin.commands.push(f);
            }
        }
        for d in skill_dirs {
            let skill = self.skill(&d);
            plugin.skills.push(skill);
        }
        Some(plugin)
    }

    fn skill(&mut self, dir: &Path) -> SkillFiles {
        let rel = self.rel(dir);
        let dir_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let skill_md_path = dir.join("SKILL.md");
        let skill_md_present = skill_md_path.is_file();
        let skill_md = if skill_md_present {
            self.read(&skill_md_path)
        } else {
            self.file_diag(
                &rel,
                "missing-skill-md",
                Severity::Warning,
                format!("skill folder `{dir_name}` has no SKILL.md"),
                "add a SKILL.md with `name` and `description` frontmatter",
            );
            None
        };
        let patterns_dir = dir.join("patterns");
        let mut patterns = Vec::new();
        if patterns_dir.is_dir() {
            for p in self.markdown_files(&patterns_dir, false, 0) {
                if let Some(f) = self.read(&p) {
                    patterns.push(f);
                }
            }
        }
        SkillFiles {
            dir_name,
            dir: rel,
            skill_md,
            skill_md_present,
            patterns,
        }
    }
}

impl Loader<'_> {
    /// Walks `dir` for the files no other part of the loader read, which the compiled plugin copies. `stack` holds
    /// the resolved folders from the root down to `dir`, so that a symlink to one of them is not followed forever.
    fn copies(
        &mut self,
        dir: &Path,
        root_book: Option<&str>,
        stack: &mut Vec<PathBuf>,
        out: &mut Vec<RawFile>,
    ) {
        let listed = match list(dir) {
            Ok(l) => l,
            Err(e) => {
                let rel = self.rel(dir);
                self.file_diag(
                    &rel,
                    "io-error",
                    Severity::Error,
                    format!("cannot read directory: {e}"),
                    "",
                );
                return;
            }
        };
        for Entry {
            path: p,
            link: is_link,
            dir: is_dir,
        } in listed
        {
            let rel = self.rel(&p);
            let has_marker = is_dir && p.join(crate::write::MARKER).exists();
            if left_out(&rel, is_dir, root_book, has_marker).is_some() {
                continue;
            }
            if self.read_paths.contains(&rel) {
                continue;
            }
            if is_link && !self.inside_root(&p) {
                continue;
            }
            if is_dir {
                let canon = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                if stack.contains(&canon) || stack.len() > 32 {
                    self.file_diag(
                        &rel,
                        "symlink-loop",
                        Severity::Warning,
                        "this symlink leads to a folder that contains it; it was not followed"
                            .into(),
                        "remove the link, or point it at a file",
                    );
                    continue;
                }
                stack.push(canon);
                self.copies(&p, root_book, stack, out);
                stack.pop();
                continue;
            }
            if let Some(f) = self.raw(&p, rel) {
                out.push(f);
            }
        }
    }

    /// Reads one file as bytes, with its permission bits.
    fn raw(&mut self, path: &Path, rel: String) -> Option<RawFile> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.file_diag(
                    &rel,
                    "io-error",
                    Severity::Error,
                    format!("cannot read file: {e}"),
                    "",
                );
                return None;
            }
        };
        if !meta.is_file() {
            self.file_diag(
                &rel,
                "not-a-file",
                Severity::Warning,
                "this is neither a file nor a folder (a socket, pipe or device); it was not copied"
                    .into(),
                "",
            );
            return None;
        }
        if meta.len() > MAX_COPY_BYTES {
            self.file_diag(
                &rel,
                "file-too-large",
                Severity::Error,
                format!(
                    "file is {} bytes; the limit for a copied file is {} bytes",
                    meta.len(),
                    MAX_COPY_BYTES
                ),
                "keep large files out of the plugin folder",
            );
            return None;
        }
        let bytes = match self.reader.read(path) {
            Ok(b) => b,
            Err(e) => {
                self.file_diag(
                    &rel,
                    "io-error",
                    Severity::Error,
                    format!("cannot read file: {e}"),
                    "",
                );
                return None;
            }
        };
        self.files += 1;
        Some(RawFile {
            rel,
            bytes,
            mode: mode_of(&meta),
        })
    }
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_of(meta: &fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// True when a folder has a subfolder with a SKILL.md.
fn has_skill_below(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .any(|e| e.path().join("SKILL.md").is_file())
        })
        .unwrap_or(false)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn strip_json_location(msg: &str) -> &str {
    match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn left_out_names_the_files_that_do_not_ship() {
        let cases: &[(&str, bool, Option<&str>, bool, bool)] = &[
            // rel, dir, root_book, has_marker, left out
            (".git", true, None, false, true),
            ("skills/s/.hg", true, None, false, true),
            (".svn", true, None, false, true),
            (".git", false, None, false, false), // a `.git` file (worktree pointer) is not a folder
            (".DS_Store", false, None, false, true),
            ("skills/s/patterns/.raft.md.swp", false, None, false, true),
            ("README.md~", false, None, false, true),
            ("build", true, None, true, true),
            (".build.skillbook-tmp-42", true, None, false, true),
            (".build.skillbook-old", true, None, false, true),
            (".build.skillbook-trash-42-3", true, None, false, true),
            ("book.toml", false, Some("theme"), false, true),
            ("book.toml", false, None, false, false),
            ("docs/book.toml", false, Some("theme"), false, false),
            ("theme", true, Some("theme"), false, true),
            ("theme", true, None, false, false),
            // `[output.html] theme = "look"`: that folder is the site's, and `theme/` keeps the bundle templates.
            ("look", true, Some("look"), false, true),
            ("theme", true, Some("look"), false, true),
            ("look", false, Some("look"), false, false),
            ("look", true, None, false, false),
            ("site/look", true, Some("site/look"), false, true),
            ("site", true, Some("site/look"), false, false),
            ("agents/look", true, Some("look"), false, false),
            (".mcp.json", false, None, false, false),
            (".claude-plugin", true, None, false, false),
            ("hooks", true, None, false, false),
        ];
        for &(rel, dir, book, marker, out) in cases {
            assert_eq!(left_out(rel, dir, book, marker).is_some(), out, "{rel}");
        }
    }

    struct Failing(&'static str);

    impl Reader for Failing {
        fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
            if path.ends_with(self.0) {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "denied"))
            } else {
                fs::read(path)
            }
        }
    }

    #[test]
    fn every_file_is_loaded_with_its_mode_and_an_unreadable_one_is_an_error_per_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("skills/s/scripts")).unwrap();
        fs::write(
            root.join("skills/s/SKILL.md"),
            "---\nname: s\ndescription: d\n---\n",
        )
        .unwrap();
        fs::write(root.join("skills/s/scripts/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            root.join("skills/s/scripts/run.sh"),
            fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        fs::write(root.join("a.bin"), [0u8, 0xFF, 0xFE]).unwrap();
        fs::write(root.join("b.bin"), [1u8]).unwrap();
        fs::write(root.join("c.bin"), [2u8]).unwrap();
        let mut diags = Vec::new();
        let ws = load_with(root, &mut diags, &mut Failing("b.bin")).unwrap();
        let got: Vec<(&str, &[u8], u32)> = ws
            .copies
            .iter()
            .map(|f| (f.rel.as_str(), f.bytes.as_slice(), f.mode))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.bin", &[0u8, 0xFF, 0xFE][..], 0o666 & !umask()),
                ("c.bin", &[2u8][..], 0o666 & !umask()),
                ("skills/s/scripts/run.sh", &b"#!/bin/sh\n"[..], 0o750),
            ]
        );
        let codes: Vec<(&str, &str)> = diags.iter().map(|d| (d.path.as_str(), d.code)).collect();
        assert_eq!(codes, vec![("b.bin", "io-error")]);
    }

    fn umask() -> u32 {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        0o666
            & !(fs::metadata(dir.path().join("x"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777)
    }
}
