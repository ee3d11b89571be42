//! Load: the only stage that reads content. A content root becomes a [`Workspace`] of plugins and their files' text.
//!
//! Three layouts load: a plugin directory (`agents/`, `skills/`, `commands/` at its root), the same with a
//! `.claude-plugin/plugin.json` that names further paths, and a marketplace (`.claude-plugin/marketplace.json`)
//! listing several plugins by relative path. Problems with single files are diagnostics; loading goes on.

use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Files larger than this are refused.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

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
    pub patterns: Vec<SourceFile>,
}

/// The plugin manifest fields skillbook carries into the compiled plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub rel: String,
    pub json: serde_json::Map<String, serde_json::Value>,
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
    /// How many files were read.
    pub files: usize,
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
    let meta = fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", root.display()),
        ));
    }
    let canon = fs::canonicalize(root)?;
    let mut loader = Loader {
        root: root.to_path_buf(),
        canon,
        diags,
        reader,
        files: 0,
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
    let files = loader.files;
    Ok(Workspace {
        plugins,
        marketplace,
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

    /// Sorted entries of a directory, each checked against the root; unreadable directories are reported.
    fn entries(&mut self, dir: &Path) -> Vec<PathBuf> {
        let read = match fs::read_dir(dir) {
            Ok(r) => r,
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
        let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        paths.retain(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden
        });
        let mut out = Vec::new();
        for p in paths {
            let is_link = fs::symlink_metadata(&p)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if !is_link || self.inside_root(&p) {
                out.push(p);
            }
        }
        out
    }

    fn markdown_files(&mut self, dir: &Path, recursive: bool, depth: usize) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if depth > 16 {
            return out;
        }
        for p in self.entries(dir) {
            if p.is_dir() {
                if recursive {
                    out.extend(self.markdown_files(&p, true, depth + 1));
                }
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
        out
    }

    /// Reads one file as UTF-8 text, without its BOM.
    fn read(&mut self, path: &Path) -> Option<SourceFile> {
        let rel = self.rel(path);
        if !self.inside_root(path) {
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
        let bytes = bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&bytes)
            .to_vec();
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
                let d = file.source().diag_at(
                    e.line().max(1),
                    e.column().max(1),
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
    ) -> Option<PathBuf> {
        let p = Path::new(value);
        let bad = p.is_absolute()
            || p.components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        if bad {
            let needle = format!("\"{value}\"");
            let offset = manifest.text.find(&needle).map(|i| i + 1).unwrap_or(0);
            self.diags.push(
                manifest
                    .source()
                    .diag(
                        offset,
                        Severity::Error,
                        "manifest-path",
                        format!("path `{value}` leaves the plugin; it was not read"),
                    )
                    .help("manifest paths are relative to the plugin root, start with `./` and contain no `..`"),
            );
            return None;
        }
        let full = base.join(p);
        if !full.exists() {
            let needle = format!("\"{value}\"");
            let offset = manifest.text.find(&needle).map(|i| i + 1).unwrap_or(0);
            self.diags.push(
                manifest
                    .source()
                    .diag(
                        offset,
                        Severity::Error,
                        "manifest-path",
                        format!("path `{value}` does not exist"),
                    )
                    .help("fix the path or remove it from the manifest"),
            );
            return None;
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
        let entries = json
            .get("plugins")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
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
        for entry in entries {
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string();
            let offset = file
                .text
                .find(&format!("\"{name}\""))
                .map(|i| i + 1)
                .unwrap_or(0);
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
                let Some(b) = self.manifest_path(&file, &self.root.clone(), &plugin_root) else {
                    continue;
                };
                b
            };
            let Some(dir) = self.manifest_path(&file, &base, source) else {
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
                        if let Some(p) = self.manifest_path(&file, dir, &v) {
                            extra.push((kind, p));
                        }
                    }
                }
                plugin.manifest = Some(Manifest {
                    rel: file.rel,
                    json,
                });
            }
        }
        let mut agent_paths = Vec::new();
        let mut skill_dirs = Vec::new();
        let mut command_paths = Vec::new();
        for (kind, base) in [
            (Kind::Agents, dir.join("agents")),
            (Kind::Skills, dir.join("skills")),
            (Kind::Commands, dir.join("commands")),
        ]
        .into_iter()
        .filter(|(_, p)| p.is_dir())
        .chain(extra)
        {
            match kind {
                Kind::Agents if base.is_file() => agent_paths.push(base),
                Kind::Agents => agent_paths.extend(self.markdown_files(&base, false, 0)),
                Kind::Commands if base.is_file() => command_paths.push(base),
                Kind::Commands => command_paths.extend(self.markdown_files(&base, true, 0)),
                Kind::Skills if base.join("SKILL.md").is_file() => skill_dirs.push(base),
                Kind::Skills => {
                    for p in self.entries(&base) {
                        if p.is_dir() {
                            skill_dirs.push(p);
                        }
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
        let skill_md = if skill_md_path.is_file() {
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
            patterns,
        }
    }
}

fn strip_json_location(msg: &str) -> &str {
    match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}
