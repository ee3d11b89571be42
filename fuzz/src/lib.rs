//! Shared pieces of skillbook's fuzz targets: content trees made from the fuzzer's bytes, the pipeline run on them,
//! and the invariants every run must keep (diagnostics located inside their file, spans on character boundaries,
//! compiled frontmatter that strict YAML decodes to the values the source was read as).

use skillbook::config;
use skillbook::diagnostic::{render_human, Diagnostic, Source, Style};
use skillbook::driver::{self, Compiled};
use skillbook::emit;
use skillbook::emit::bundle::{Bundler, Layout, Templates};
use skillbook::frontmatter::{self, Split, Value};
use skillbook::parse::{Document, Model};
use skillbook::tokenize::Tokenizer;
use skillbook::write::OutputTree;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Files of a content tree, by `/`-separated relative path.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// At most this many files in a tree.
pub const MAX_FILES: usize = 24;

/// Reads a content tree from the fuzzer's bytes: a sequence of `=== relative/path\n` lines, each followed by the
/// file's bytes up to the next such line. Paths are cleaned (no `..`, no absolute paths, at most six components);
/// a root `book.toml` is dropped, since it could name a content root outside the tree.
pub fn tree_from_bytes(data: &[u8]) -> Tree {
    read_tree(data, false)
}

/// [`tree_from_bytes`], keeping a root `book.toml` (for the `book` target, which checks where it points).
pub fn book_from_bytes(data: &[u8]) -> Tree {
    read_tree(data, true)
}

fn read_tree(data: &[u8], keep_book: bool) -> Tree {
    let mut tree = Tree::new();
    let mut rest = data;
    // Skip to the first header.
    match find(rest, b"=== ") {
        Some(0) => {}
        _ => match find(rest, b"\n=== ") {
            Some(i) => rest = &rest[i + 1..],
            None => return tree,
        },
    }
    while let Some(after) = rest.strip_prefix(b"=== ") {
        let line_end = after
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(after.len());
        let path = &after[..line_end];
        let body_start = (line_end + 1).min(after.len());
        let body = &after[body_start..];
        let (content, next) = match find(body, b"\n=== ") {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, &body[body.len()..]),
        };
        if let Some(p) = clean_path(path).filter(|p| keep_book || p != "book.toml") {
            if tree.len() < MAX_FILES {
                tree.insert(p, content.to_vec());
            }
        }
        rest = next;
    }
    tree
}

/// The bytes [`tree_from_bytes`] reads back as `tree` (for seed corpora).
pub fn tree_to_bytes(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, bytes) in tree {
        out.extend_from_slice(b"=== ");
        out.extend_from_slice(path.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn clean_path(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let parts: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty()
        || parts.len() > 6
        || parts
            .iter()
            .any(|c| *c == ".." || c.len() > 64 || c.contains('\0') || c.contains('\\'))
    {
        return None;
    }
    Some(parts.join("/"))
}

/// Runs one input on a thread of its own, with 8 MiB of stack (the main thread's under the usual `ulimit -s`), so that
/// what an input runs does not depend on the inputs before it. std seeds a thread's hash keys once and then counts up
/// for every map made on it (`RandomState`), and the crates skillbook calls hash with those keys (serde_json's `Map`):
/// on one thread the keys an input's maps get, and so which of the hash table's branches its lookups take (a probe
/// meeting another key's tag), depend on how many maps the inputs before it made. The tokenizer's memo of counted
/// pieces is per thread too.
/// A replay with std's seed fixed (`plateau.sh`, `fixed-random.c`) then counts the same edges for an input wherever
/// it comes in the corpus; a fuzzing run, unseeded, draws new keys per input, as it did per map before.
pub fn on_own_thread(run: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(s, run)
            .expect("a thread for the input (the system is out of threads or memory)");
    });
}

/// A scratch directory for this process on a RAM file system (falls back to the temp dir). A process's folder
/// outlives it (libFuzzer ends with `exit`, which runs no destructors, and a crash or a timeout kills it), so the
/// first call in a process removes the folders of processes that are gone ([`sweep`]). The folder is found once per
/// process: targets call this for every input.
pub fn scratch(name: &str) -> PathBuf {
    static FOLDER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOLDER
        .get_or_init(|| {
            let base = if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            let ns = pid_namespace();
            sweep(&base, ns);
            base.join(scratch_folder(ns, std::process::id()))
        })
        .join(name)
}

/// The name of a process's scratch folder: `skillbook-fuzz-NS-PID`, NS the PID namespace the PID is counted in
/// (`skillbook-fuzz-PID` where the namespace cannot be read).
pub fn scratch_folder(ns: Option<u64>, pid: u32) -> String {
    format!("{}{pid}", scratch_prefix(ns))
}

/// What the scratch folders of namespace `ns`'s processes begin with, before the PID.
fn scratch_prefix(ns: Option<u64>) -> String {
    match ns {
        Some(ns) => format!("skillbook-fuzz-{ns}-"),
        None => "skillbook-fuzz-".to_string(),
    }
}

/// This process's PID namespace: the inode in `/proc/self/ns/pid`'s link (`pid:[4026531836]`).
pub fn pid_namespace() -> Option<u64> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    link.to_str()?
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Removes the scratch folders under `base` of processes of namespace `ns` (this process's) that are gone (no
/// `/proc/PID`); a folder it may not remove is left. A folder of another PID namespace is kept, whatever its PID: this
/// process's `/proc` does not show that namespace's processes (a `/dev/shm` shared between a host and a container).
/// Without `/proc` or a namespace it removes nothing.
pub fn sweep(base: &Path, ns: Option<u64>) {
    let proc = Path::new("/proc");
    let Some(ns) = ns else {
        return;
    };
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let prefix = scratch_prefix(Some(ns));
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix.as_str()))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !proc.join(pid.to_string()).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Writes `tree` under `root`, replacing what was there. Files whose path clashes with another's folder are skipped.
pub fn materialize(tree: &Tree, root: &Path) {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root).expect("create scratch root");
    for (rel, bytes) in tree {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            if fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        let _ = fs::write(&path, bytes);
    }
}

/// The bundle budgets the pipeline targets use: one tight, one roomy.
pub const BUDGETS: &[usize] = &[300, 3000];

/// Loads, parses and checks the content root, then emits the compiled plugin, the bundles and the report, in
/// memory; asserts the invariants on the way. `None` when the tree is not a plugin at all (no agents/, skills/,
/// commands/ or manifest): skillbook refuses such a root with a usage error before it reads anything.
pub fn pipeline(root: &Path) -> Option<Piped> {
    let config = config::resolve(Some(root)).ok()?;
    let compiled = compile_checked(config);
    let mut tree = OutputTree::new();
    let prompts = emit::plugin::emit(&compiled.model, "plugin/", &mut tree)
        .into_iter()
        .map(Result::ok)
        .collect();
    let templates = Templates::builtin();
    let bundler = Bundler::new(
        &compiled.model,
        &templates,
        Tokenizer::O200k,
        Layout::Markdown,
    );
    let (manifests, _) = emit::bundle::emit(&bundler, BUDGETS, &mut tree);
    let json = emit::report::json(&compiled.report, "root");
    serde_json::from_str::<serde_json::Value>(&json).expect("report.json is JSON");
    let _ = emit::report::human(&compiled.report, "root", Style { color: false });
    // `skillbook build` writes no output when the content has breakage (an error that would make an output wrong,
    // such as a pattern whose frontmatter is not YAML); the compiled files made in memory here are then not an output.
    if !compiled.report.diagnostics.iter().any(|d| d.is_breakage()) {
        assert_compiled_frontmatter(&compiled.model, &tree);
    }
    Some(Piped {
        compiled,
        tree,
        manifests,
        prompts,
    })
}

/// What [`pipeline`] made: the compiled content, the compiled plugin and bundles (in one tree), and the bundles'
/// manifests, typed, as the site's bundles pages take them.
pub struct Piped {
    pub compiled: Compiled,
    pub tree: OutputTree,
    pub manifests: Vec<emit::bundle::Manifest>,
    /// Each agent's compiled prompt (in the manifests' order); `None` for an agent that does not fit its budget.
    pub prompts: Vec<Option<emit::plugin::PromptSize>>,
}

/// Loads, parses and checks `config`'s content; asserts that every diagnostic is located in its file and every
/// span of the model is a slice of its file.
pub fn compile_checked(config: config::Config) -> Compiled {
    let root = config.content_root.clone();
    let compiled = driver::compile(config, &indicatif::ProgressBar::hidden())
        .expect("the scratch root is readable");
    assert_located(&compiled.report.diagnostics, &|rel| {
        let bytes = fs::read(root.join(rel)).ok()?;
        let bytes = bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&bytes)
            .to_vec();
        String::from_utf8(bytes).ok()
    });
    assert_model_spans(&compiled.model);
    compiled
}

/// Every diagnostic on a file whose text `text_of` knows has a line in that file and a column at most one past
/// the end of that line, and quotes that line; rendering it does not panic.
pub fn assert_located(diags: &[Diagnostic], text_of: &dyn Fn(&str) -> Option<String>) {
    for d in diags {
        let _ = render_human(d, &d.path, Style { color: true });
        assert!(d.line >= 1 && d.column >= 1, "unlocated diagnostic: {d:?}");
        // Diagnostics about a path rather than its text (a file where a folder belongs, two files written to one
        // path) quote nothing.
        if matches!(d.code, "invalid-utf8" | "not-a-folder" | "output-clash") {
            continue;
        }
        let Some(text) = text_of(&d.path) else {
            continue;
        };
        let src = Source::new(&d.path, &text);
        let lines = text.split('\n').count();
        assert!(
            d.line <= lines,
            "diagnostic on line {} of a {lines}-line file: {d:?}",
            d.line
        );
        let line = src.line_text(d.line);
        assert_eq!(d.source_line, line, "diagnostic quotes another line: {d:?}");
        assert!(
            d.column <= line.chars().count() + 1,
            "diagnostic column {} past the end of line {:?}: {d:?}",
            d.column,
            line
        );
    }
}

/// Asserts that `range` is a slice of `text` (in order, on character boundaries).
pub fn assert_span_of(text: &str, range: std::ops::Range<usize>, what: &str) {
    assert!(
        range.start <= range.end && text.get(range.clone()).is_some(),
        "{what} span {range:?} is not a slice of a {}-byte text",
        text.len()
    );
}

fn assert_offset(text: &str, offset: usize, what: &str) {
    assert!(
        text.is_char_boundary(offset),
        "{what} offset {offset} is not a character boundary of a {}-byte text",
        text.len()
    );
}

/// The spans the parser keeps are slices of their file.
pub fn assert_document_spans(doc: &Document) {
    let text = &doc.file.text;
    assert_offset(text, doc.body_start, "body");
    assert_span_of(text, doc.frontmatter.yaml.clone(), "frontmatter");
    for f in &doc.frontmatter.fields {
        assert_offset(text, f.key_offset, "key");
        assert_span_of(text, f.region.clone(), "field region");
        let _ = doc.frontmatter.locate(text, &f.key, "a", 0);
    }
    for (i, h) in doc.headings.iter().enumerate() {
        assert_span_of(text, h.range.clone(), "heading");
        assert_span_of(text, doc.section(i), "section");
    }
    for s in &doc.stubs {
        assert_span_of(text, s.range.clone(), "stub");
    }
    for c in &doc.code {
        assert_span_of(text, c.clone(), "code block");
    }
}

/// Every span of every parsed document of the model.
pub fn assert_model_spans(model: &Model) {
    for p in &model.plugins {
        for a in &p.agents {
            assert_document_spans(&a.doc);
            let text = &a.doc.file.text;
            for c in &a.expertise {
                assert_offset(text, c.offset, "category");
                for i in &c.items {
                    assert_offset(text, i.offset, "expertise item");
                }
            }
            for r in &a.responsibilities {
                assert_offset(text, r.offset, "responsibility");
            }
            for r in &a.skill_refs {
                assert_offset(text, r.offset, "skill reference");
            }
        }
        for s in &p.skills {
            if let Some(d) = &s.doc {
                assert_document_spans(d);
            }
            for pat in &s.patterns {
                assert_document_spans(&pat.doc);
                for c in &pat.covers {
                    assert_offset(&pat.doc.file.text, c.offset, "cover");
                }
            }
        }
        for c in &p.commands {
            assert_document_spans(&c.doc);
        }
    }
}

/// YAML values compared as YAML means them: numbers by value (`1.0` and `1.00` are one number), the rest exactly.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (yaml_float(x), yaml_float(y)) {
                    (Some(p), Some(q)) => p == q || (p.is_nan() && q.is_nan()),
                    _ => false,
                }
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Map(x), Value::Map(y)) => same_fields(x, y),
        _ => a == b,
    }
}

/// A number's value as a float: Rust's spelling, or YAML's for the infinities and NaN, which the strict reader gives
/// (`.inf` for `6.e333`, a float too large for an `f64`, which the lenient reader keeps as written).
fn yaml_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        ".inf" | "+.inf" => Some(f64::INFINITY),
        "-.inf" => Some(f64::NEG_INFINITY),
        ".nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Two field lists hold the same keys, in the same order, with the same values.
pub fn same_fields(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && same_value(v1, v2))
}

/// The round trip of one parsed document: the frontmatter the compiled plugin writes for it is strict YAML, and
/// decodes to the values the document was read as.
pub fn assert_round_trip(doc: &Document) {
    if !doc.has_frontmatter {
        return;
    }
    let fields: Vec<(String, Value)> = doc
        .frontmatter
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    let written = emit::plugin::document(doc, doc.body());
    let written = String::from_utf8(written).expect("compiled documents are UTF-8");
    let Split::Found { yaml, .. } = frontmatter::split(&written) else {
        panic!("compiled document has no frontmatter block:\n{written}");
    };
    let decoded = frontmatter::parse_strict(&written[yaml.clone()]).unwrap_or_else(|e| {
        panic!(
            "compiled frontmatter is not strict YAML ({e}):\n{}\nsource:\n{}",
            &written[yaml.clone()],
            &doc.file.text[doc.frontmatter.yaml.clone()]
        )
    });
    assert!(
        same_fields(&fields, &decoded),
        "compiled frontmatter decodes to other values\nsource:\n{}\nread as: {fields:?}\nwritten:\n{}\ndecoded: {decoded:?}",
        &doc.file.text[doc.frontmatter.yaml.clone()],
        &written[yaml]
    );
}

/// Every document the compiled plugin rewrites keeps its values; every compiled markdown file with frontmatter is
/// strict YAML.
pub fn assert_compiled_frontmatter(model: &Model, out: &OutputTree) {
    for p in &model.plugins {
        for a in &p.agents {
            assert_round_trip(&a.doc);
        }
        for s in &p.skills {
            if let Some(d) = &s.doc {
                assert_round_trip(d);
            }
        }
        for c in &p.commands {
            assert_round_trip(&c.doc);
        }
    }
    for (path, bytes) in out.iter() {
        if !path.starts_with("plugin/") || !path.ends_with(".md") {
            continue;
        }
        // A file skillbook does not transform (markdown outside agents/, skills/ and commands/) is copied byte for
        // byte, whatever it holds; only what skillbook writes must be UTF-8 with strict-YAML frontmatter.
        let rel = &path["plugin/".len()..];
        if model
            .copies
            .iter()
            .any(|c| emit::plugin::copy_dest(model, &c.rel) == rel && &c.bytes == bytes)
        {
            continue;
        }
        let text = std::str::from_utf8(bytes)
            .unwrap_or_else(|e| panic!("{path}: compiled markdown is not UTF-8 ({e})"));
        if let Split::Found { yaml, .. } = frontmatter::split(text) {
            if text.starts_with("---\n") {
                frontmatter::parse_strict(&text[yaml]).unwrap_or_else(|e| {
                    panic!("{path}: compiled frontmatter is not strict YAML: {e}\n{text}")
                });
            }
        }
    }
}

/// The targets' bodies: each fuzz target is `fuzz_target!(|data| targets::NAME(data))`, and the ordinary test suite
/// replays the committed regression inputs through these same functions on stable Rust, so they cannot rot.
pub mod targets {
    use super::*;
    use skillbook::check;
    use skillbook::diagnostic::Source;
    use skillbook::emit;
    use skillbook::emit::bundle::{Bundler, Layout, Templates};
    use skillbook::frontmatter::{self, Split};
    use skillbook::load::{PluginFiles, SkillFiles, SourceFile, Workspace};
    use skillbook::parse::{self, parse_document, ParseOptions};
    use skillbook::tokenize::Tokenizer;
    use skillbook::write::OutputTree;

    /// Frontmatter split and parse, as an agent's (strict YAML first, the lenient line parser second) and as a pattern
    /// file's (strict YAML only): no input panics, every span is a slice of the file, every diagnostic points inside
    /// it.
    pub fn frontmatter(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let mut diags = Vec::new();
        match frontmatter::split(text) {
            Split::Found { yaml, body_start } => {
                assert_span_of(text, yaml.clone(), "yaml");
                assert!(yaml.end <= body_start && text.is_char_boundary(body_start));
                // As an agent's (invalid YAML read leniently, with a warning) and as a pattern file's (invalid YAML
                // is an error at its place, or where an unclosed list or quote opened).
                for (rel, mode) in [
                    ("agents/fuzz.md", frontmatter::Yaml::Lenient),
                    ("skills/s/patterns/fuzz.md", frontmatter::Yaml::Strict),
                ] {
                    let src = Source::new(rel, text);
                    let fm = frontmatter::parse_as(&src, yaml.clone(), mode, &mut diags);
                    for f in &fm.fields {
                        assert_span_of(text, f.region.clone(), "region");
                        assert!(text.is_char_boundary(f.key_offset));
                        let _ = fm.locate(text, &f.key, &f.key, 0);
                        if let Some(v) = f.value.scalar_text() {
                            let _ = fm.locate(text, &f.key, &v, 0);
                        }
                    }
                }
            }
            Split::Unterminated | Split::None => {}
        }
        assert_located(&diags, &|_| Some(text.to_string()));
    }

    /// The lenient-frontmatter round trip: whatever the parser reads (strictly or leniently), the compiled plugin writes
    /// as strict YAML that decodes to the same values.
    pub fn roundtrip(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        // Fuzz the YAML itself: the fences are given.
        let text = if text.starts_with("---") {
            text.to_string()
        } else {
            format!("---\n{text}\n---\nbody\n")
        };
        let file = SourceFile {
            rel: "agents/fuzz.md".to_string(),
            text,
        };
        let mut diags = Vec::new();
        if let Some(doc) = parse_document(file, &ParseOptions::default(), false, &mut diags) {
            assert_round_trip(&doc);
        }
    }

    /// The SKILL.md of the skill named `name`.
    fn skill_md(name: &str) -> String {
        format!("---\nname: {name}\ndescription: A skill for fuzzing. Use it when fuzzing.\n---\n\n# S\n\nThe skill.\n")
    }

    /// An input of two texts: the first, then optionally a 0xFF byte and the second; `None` unless both are UTF-8.
    fn two_texts(data: &[u8]) -> Option<(&str, Option<&str>)> {
        let (first, second) = match data.iter().position(|&b| b == 0xFF) {
            Some(i) => (&data[..i], Some(&data[i + 1..])),
            None => (data, None),
        };
        let first = std::str::from_utf8(first).ok()?;
        let second = match second.map(std::str::from_utf8) {
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => return None,
            None => None,
        };
        Some((first, second))
    }

    fn source(rel: &str, text: &str) -> SourceFile {
        SourceFile {
            rel: rel.to_string(),
            text: text.to_string(),
        }
    }

    /// A workspace of one plugin: `agent`, the skill `s` (its SKILL.md is [`skill_md`]) with `patterns`, and
    /// `commands`.
    fn one_skill_plugin(
        agent: SourceFile,
        patterns: Vec<SourceFile>,
        commands: Vec<SourceFile>,
    ) -> Workspace {
        skill_plugin("s", agent, patterns, commands)
    }

    /// [`one_skill_plugin`] with the skill named `skill` (its folder and its SKILL.md's `name`). The patterns' paths
    /// are under `skills/<skill>/patterns/`.
    fn skill_plugin(
        skill: &str,
        agent: SourceFile,
        patterns: Vec<SourceFile>,
        commands: Vec<SourceFile>,
    ) -> Workspace {
        let files = 2 + patterns.len() + commands.len();
        Workspace {
            plugins: vec![PluginFiles {
                name: "fuzz".to_string(),
                dir: String::new(),
                namespaced: false,
                manifest: None,
                agents: vec![agent],
                skills: vec![SkillFiles {
                    dir_name: skill.to_string(),
                    dir: format!("skills/{skill}"),
                    skill_md: Some(source(
                        &format!("skills/{skill}/SKILL.md"),
                        &skill_md(skill),
                    )),
                    skill_md_present: true,
                    patterns,
                }],
                commands,
            }],
            marketplace: None,
            copies: Vec::new(),
            files,
        }
    }

    /// The skill an agent's text refers to first, when it is not `s` and can name a folder: the markdown target names
    /// its skill after it, so that agents taken from real plugins (`skills: [code-review]`) resolve to the fuzzed
    /// pattern and are expanded and bundled, not only reported as referring to an unknown skill.
    fn referred_skill(agent: &str) -> Option<String> {
        let ws = one_skill_plugin(source("agents/fuzz.md", agent), Vec::new(), Vec::new());
        let model = parse::parse(ws, &ParseOptions::default(), &mut Vec::new());
        let refs = &model.plugins.first()?.agents.first()?.skill_refs;
        if refs.iter().any(|r| r.name == "s") {
            return None;
        }
        let name = &refs.first()?.name;
        let plain = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        plain.then(|| name.clone())
    }

    /// Markdown structure of an agent and a pattern (expertise bullets, responsibilities, stubs, `<example>` blocks,
    /// skill references, covers), then check, expansion, a bundle and the compiled plugin, all in memory. The input is
    /// the agent's text, then optionally a 0xFF byte and the pattern's text. The pattern belongs to the skill the
    /// agent refers to ([`referred_skill`]), else to `s`.
    pub fn markdown(data: &[u8]) {
        let _ = markdown_packed(data);
    }

    /// [`markdown`]'s run: how many patterns its bundles packed in all (0 when the input is not two UTF-8 texts).
    pub fn markdown_packed(data: &[u8]) -> usize {
        let Some((agent, pattern)) = two_texts(data) else {
            return 0;
        };
        let skill = referred_skill(agent).unwrap_or_else(|| "s".to_string());
        let pattern_rel = format!("skills/{skill}/patterns/p.md");
        let skill_md_rel = format!("skills/{skill}/SKILL.md");
        let ws = skill_plugin(
            &skill,
            source("agents/fuzz.md", agent),
            pattern
                .map(|p| source(&pattern_rel, p))
                .into_iter()
                .collect(),
            vec![source("commands/fuzz.md", agent)],
        );
        let mut diags = Vec::new();
        let model = parse::parse(ws, &ParseOptions::default(), &mut diags);
        for p in &model.plugins {
            for a in &p.agents {
                let _ = parse::examples(&a.description);
            }
        }
        let report = check::check(&model, diags);
        assert_located(&report.diagnostics, &|rel| match rel {
            "agents/fuzz.md" | "commands/fuzz.md" => Some(agent.to_string()),
            r if r == pattern_rel => pattern.map(str::to_string),
            r if r == skill_md_rel => Some(skill_md(&skill)),
            _ => None,
        });
        assert_model_spans(&model);
        let mut out = OutputTree::new();
        emit::plugin::emit(&model, "plugin/", &mut out);
        let templates = Templates::builtin();
        let bundler = Bundler::new(&model, &templates, Tokenizer::O200k, Layout::Xml);
        let (manifests, _) = emit::bundle::emit(&bundler, BUDGETS, &mut out);
        assert_compiled_frontmatter(&model, &out);
        manifests
            .iter()
            .flat_map(|m| &m.bundles)
            .map(|b| b.patterns.len())
            .sum()
    }

    const T_AGENT: &str = "---\nname: a\ndescription: An agent. Use it when fuzzing.\nskills: [s]\n---\n\n## Your Expertise\n\n- **Things**: Raft, Split brain, Registries\n\n## Patterns\n\n[Content will be expanded in follow-up - this stub enables plugin loading]\n";
    const T_RAFT: &str = "---\ntitle: Raft\ncovers: [Raft]\npriority: 60\nsummary: Leader-based log replication.\n---\n\n## When\n\nA leader replicates its log; terms order the leaders. 分散システムの合意。\n";
    const T_SPLIT: &str = "---\ntitle: Split brain\ncovers: [Split brain, Registries]\npriority: 40\nsummary: Two sides of a netsplit both act.\n---\n\n## Net split\n\nAfter a net split, Horde registries merge their names; processes register again.\n";

    /// A bundle for a task (`bundle --for TEXT`): the task's words (any script), the check of the task, BM25
    /// relevance of the agent's patterns to it and the packing it orders. The input is the task text, then optionally
    /// a 0xFF byte and the text of a third pattern file (so the pages' words are fuzzed too). Invariants: every term
    /// is non-empty and holds no separator; a task is refused exactly when it has no terms; every relevance is a
    /// finite number not below 0; no bundle is over its budget; the same task gives the same bundles.
    pub fn task(data: &[u8]) {
        let _ = task_bundles(data);
    }

    /// [`task`]'s run: the bundles for [`BUDGETS`], `None` when the input is not UTF-8 or has no agent.
    pub fn task_bundles(
        data: &[u8],
    ) -> Option<Vec<Result<emit::bundle::Bundle, emit::bundle::BundleError>>> {
        use skillbook::emit::bundle::rank;
        let (task, pattern) = two_texts(data)?;
        let terms = rank::terms(task);
        for t in &terms {
            // Lower-casing may add a combining mark (`İ` is `i` and U+0307), so a term is checked for separators
            // rather than for letters and digits only.
            assert!(
                !t.is_empty()
                    && !t
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_ascii_punctuation()),
                "term {t:?} of {task:?}"
            );
        }
        let checked = rank::check_task(task);
        assert_eq!(checked.is_ok(), !terms.is_empty(), "{task:?}: {checked:?}");
        let mut patterns = vec![
            source("skills/s/patterns/raft.md", T_RAFT),
            source("skills/s/patterns/split-brain.md", T_SPLIT),
        ];
        patterns.extend(pattern.map(|p| source("skills/s/patterns/p.md", p)));
        let ws = one_skill_plugin(source("agents/a.md", T_AGENT), patterns, Vec::new());
        let mut diags = Vec::new();
        let model = parse::parse(ws, &ParseOptions::default(), &mut diags);
        let agent = model.plugins[0].agents.first()?;
        let templates = Templates::builtin();
        let bundler = Bundler::new(&model, &templates, Tokenizer::O200k, Layout::Xml);
        let first = bundler.bundles_for(0, agent, BUDGETS, Some(task));
        for (result, &budget) in first.iter().zip(BUDGETS) {
            match result {
                Ok(b) => {
                    assert!(checked.is_ok(), "{task:?} was refused, yet bundled");
                    assert!(b.tokens <= budget, "{} tokens over {budget}", b.tokens);
                    for p in &b.patterns {
                        let r = p
                            .relevance
                            .expect("a bundle for a task gives each pattern's relevance");
                        assert!(r.is_finite() && r >= 0.0, "relevance {r} of {}", p.pattern);
                    }
                }
                Err(emit::bundle::BundleError::Task(_)) => assert!(checked.is_err()),
                Err(_) => {}
            }
        }
        let again = bundler.bundles_for(0, agent, BUDGETS, Some(task));
        assert!(first == again, "the same task gave other bundles: {task:?}");
        Some(first)
    }

    const M_AGENT: &str = "---\nname: a\ndescription: An agent. Use it when fuzzing.\nskills: [s]\n---\n\n## Your Expertise\n\n- **Things**: Raft, Paxos\n";
    const M_SKILL_MD: &str =
        "---\nname: s\ndescription: A skill. Use it when fuzzing.\n---\n\n# S\n";
    const M_PATTERN: &str =
        "---\ntitle: Raft\ncovers: [Raft, Paxos]\npriority: 60\nsummary: Consensus.\n---\n\nText.\n";

    fn manifest_plugin(tree: &mut Tree, base: &str) {
        tree.insert(format!("{base}agents/a.md"), M_AGENT.into());
        tree.insert(
            format!("{base}extra/b.md"),
            M_AGENT.replace("name: a", "name: b").into(),
        );
        tree.insert(format!("{base}skills/s/SKILL.md"), M_SKILL_MD.into());
        tree.insert(format!("{base}skills/s/patterns/raft.md"), M_PATTERN.into());
        tree.insert(
            format!("{base}more/t/SKILL.md"),
            M_SKILL_MD.replace("name: s", "name: t").into(),
        );
        tree.insert(format!("{base}commands/go.md"), "Run it.\n".into());
    }

    /// Plugin and marketplace manifests and the plugin's other JSON configuration: the input is a selector byte, then
    /// the file. Selector mod 4: 0, `.claude-plugin/plugin.json` of a small plugin; 1, `.claude-plugin/marketplace.json`
    /// of a small marketplace; 2, the plugin's `hooks/hooks.json`; 3, its `.mcp.json` (both read by `lint::config`
    /// with its own JSON scanner for locations). The tree is loaded from a RAM disk and run through the pipeline, whose
    /// diagnostics must each point inside the file they name.
    pub fn manifest(data: &[u8]) {
        let _ = manifest_codes(data);
    }

    /// [`manifest`]'s run: the codes of the pipeline's diagnostics (none for an empty input).
    pub fn manifest_codes(data: &[u8]) -> Vec<String> {
        let Some((&selector, json)) = data.split_first() else {
            return Vec::new();
        };
        let mut tree = Tree::new();
        match selector % 4 {
            0 => {
                manifest_plugin(&mut tree, "");
                tree.insert(".claude-plugin/plugin.json".into(), json.to_vec());
            }
            1 => {
                manifest_plugin(&mut tree, "plugins/one/");
                manifest_plugin(&mut tree, "plugins/two/");
                tree.insert(
                    "plugins/two/.claude-plugin/plugin.json".into(),
                    br#"{"name": "two", "agents": "./extra/b.md"}"#.to_vec(),
                );
                tree.insert(".claude-plugin/marketplace.json".into(), json.to_vec());
            }
            2 => {
                manifest_plugin(&mut tree, "");
                tree.insert("hooks/hooks.json".into(), json.to_vec());
            }
            _ => {
                manifest_plugin(&mut tree, "");
                tree.insert(".mcp.json".into(), json.to_vec());
            }
        }
        let root = scratch("manifest").join("plugin");
        materialize(&tree, &root);
        let Some(piped) = super::pipeline(&root) else {
            return Vec::new();
        };
        let diagnostics = piped.compiled.report.diagnostics.iter();
        diagnostics.map(|d| d.code.to_string()).collect()
    }

    /// The whole pipeline on a small content tree made from the fuzzer's bytes (`=== path` lines, each followed by the
    /// file; see `tree_from_bytes`), written to a RAM disk: load, parse, check, expand, bundle, plugin emit, report.
    pub fn pipeline(data: &[u8]) {
        pipeline_of_bytes(data, "pipeline");
    }

    /// [`super::pipeline`] on the content tree in `data`, written under the scratch folder `name`; `None` for no
    /// tree or no plugin.
    fn pipeline_of_bytes(data: &[u8], name: &str) -> Option<super::Piped> {
        let tree = tree_from_bytes(data);
        if tree.is_empty() {
            return None;
        }
        let root = scratch(name).join("plugin");
        materialize(&tree, &root);
        super::pipeline(&root)
    }

    /// The documentation site of a small content tree made from the fuzzer's bytes (as `pipeline`): the pipeline,
    /// then every page generated and rendered with the built-in theme (markdown, highlighting, links, the sidebar),
    /// the search index, `print.html` and `llms-full.txt`, in memory. Content makes diagnostics, never a failure of
    /// the site: the site is made (as `skillbook build` makes it) whenever the content has no breakage.
    pub fn site(data: &[u8]) {
        let _ = site_of_bytes(data);
    }

    /// [`site`]'s work: the site in memory, `None` when no site is made (no tree, no plugin, breakage).
    pub fn site_of_bytes(data: &[u8]) -> Option<OutputTree> {
        let piped = pipeline_of_bytes(data, "site")?;
        let compiled = &piped.compiled;
        if compiled.report.diagnostics.iter().any(|d| d.is_breakage()) {
            return None;
        }
        // The bundles pages, one per agent, from the bundles and compiled agents the pipeline made (as `skillbook
        // build` passes them).
        let bundles: Vec<emit::site::AgentBundles> = piped
            .manifests
            .iter()
            .zip(&piped.prompts)
            .enumerate()
            .map(|(i, (manifest, prompt))| emit::site::AgentBundles {
                manifest,
                compiled: prompt.as_ref(),
                key: i as u64,
            })
            .collect();
        let input = emit::site::SiteInput {
            model: &compiled.model,
            report: &compiled.report,
            book: None,
            bundles: Some(&bundles),
        };
        let mut out = OutputTree::new();
        if let Err(e) = emit::site::emit(&input, "site/", &mut out) {
            panic!("the site failed on content without breakage: {e}");
        }
        assert!(
            out.files.contains_key("site/index.html") && out.files.contains_key("site/print.html"),
            "the site has an index and a print page"
        );
        search_index_finds_every_term(&out);
        for path in emit::site::bundles::paths(Some(&bundles)) {
            // One `.md` off: a page of an agent named `x.md` is `bundles/x.md.md`, made as `bundles/x.md.html`.
            let html = format!("site/{}.html", path.strip_suffix(".md").unwrap_or(&path));
            assert!(
                out.files.contains_key(&html),
                "the bundles page {html} is made"
            );
        }
        Some(out)
    }

    /// The search index's term fragments as the searcher reads them: `meta.js` lists every fragment, in order of
    /// first word, each term is in one fragment, and the lookup (searcher.js's `termFragments`: the last fragment
    /// whose first word is not after the term) names the one that holds it.
    fn search_index_finds_every_term(out: &OutputTree) {
        let script = |path: &str| -> serde_json::Value {
            let bytes = out
                .files
                .get(path)
                .unwrap_or_else(|| panic!("{path} is made"));
            emit::site::search::read_fragment(bytes)
                .unwrap_or_else(|| panic!("{path} is a fragment script"))
                .1
        };
        let meta = script("site/search/meta.js");
        let list: Vec<(String, String)> =
            serde_json::from_value(meta["fragments"].clone()).expect("meta.js lists the fragments");
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0),
            "fragments in order: {list:?}"
        );
        let made = out
            .files
            .keys()
            .filter(|k| k.starts_with("site/search/t/"))
            .count();
        assert_eq!(made, list.len(), "meta.js lists every term fragment");
        for (first, name) in &list {
            let terms = script(&format!("site/search/t/{name}.js"));
            let terms = terms.as_object().expect("a term fragment is an object");
            assert!(terms.contains_key(first), "{name} begins with {first}");
            for term in terms.keys() {
                let at = list
                    .iter()
                    .rposition(|(f, _)| f.as_str() <= term.as_str())
                    .map(|i| &list[i].1);
                assert_eq!(at, Some(name), "the lookup of {term:?}");
            }
        }
    }

    /// The development server's answer to a request target (the path and query of a GET as the HTTP library hands
    /// it over) on [`served_fixture`]: never a panic, only the statuses a static server gives, never a byte of a file
    /// outside the site (a secret beside it, reached through `..`, encodings or symbolic links), and a redirect only
    /// to a path on this server.
    pub fn serve(data: &[u8]) {
        let _ = super::serve_status(data);
    }

    /// The vendored fancy-regex's speed-ups (vendor/README.md: the ASCII form of delegates, the regular superset
    /// searched before the backtracking VM) change no result: the input's first line is a pattern (built as syntect
    /// builds it, in Oniguruma mode), the rest a haystack; with the speed-ups on and off the pattern builds or fails
    /// alike (but the form as written may exceed a size limit the ASCII form does not: then there is nothing to
    /// compare), and a search from every character boundary finds the same groups. A search that fails at run time
    /// (the backtracking limit) is not compared: the superset lets the VM start later, so it backtracks less.
    pub fn regex(data: &[u8]) {
        if let Some(difference) = super::regex_differences(data) {
            panic!("{difference}");
        }
    }

    /// At most this many budgets in a fuzzed book.toml: each is a bundle of every agent.
    pub const MAX_BUDGETS: usize = 8;

    /// A book: a content tree from the fuzzer's bytes (as `pipeline`) that keeps its root `book.toml` and `theme/`,
    /// built as `skillbook build` builds it: the configuration read from book.toml (`[preprocessor.skillbook]`'s
    /// content root, stub pattern, budgets, agent budget, tokenizer, coverage), the book's own bundle templates and
    /// site theme, then every output in memory (`driver::outputs`, what `build` writes). A bad book.toml or theme is
    /// a usage error with a message, never a panic. A content root outside the tree, and more than [`MAX_BUDGETS`]
    /// budgets, are not run.
    pub fn book(data: &[u8]) {
        let _ = super::book_of_bytes(data);
    }
}

/// The first difference the `regex` target finds between fancy-regex with its speed-ups and without, if any.
pub fn regex_differences(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let (pattern, haystack) = text.split_once('\n').unwrap_or((text, ""));
    // Long inputs only slow the fuzzer down: the constructs fit in a short pattern and a line or two.
    if pattern.len() > 256 || haystack.len() > 512 {
        return None;
    }
    let build = |speedups: bool| {
        fancy_regex::RegexBuilder::new(pattern)
            .oniguruma_mode(true)
            .delegate_ascii_form(speedups)
            .superset_prefilter(speedups)
            .backtrack_limit(20_000)
            .build()
            .map_err(|e| e.to_string())
    };
    let (fast, plain) = match (build(true), build(false)) {
        (Ok(fast), Ok(plain)) => (fast, plain),
        (Err(_), Err(_)) | (Ok(_), Err(_)) => return None,
        (Err(e), Ok(_)) => {
            return Some(format!(
                "{pattern:?} fails to build only with the speed-ups: {e}"
            ))
        }
    };
    // `None`: the search failed at run time (the backtracking limit).
    let groups = |re: &fancy_regex::Regex, pos: usize| {
        re.captures_from_pos(haystack, pos).ok().map(|c| {
            c.map(|c| {
                c.iter()
                    .map(|m| m.map(|m| (m.start(), m.end())))
                    .collect::<Vec<_>>()
            })
        })
    };
    for pos in (0..=haystack.len()).filter(|&p| haystack.is_char_boundary(p)) {
        if let (Some(a), Some(b)) = (groups(&fast, pos), groups(&plain, pos)) {
            if a != b {
                return Some(format!(
                    "{pattern:?} on {haystack:?} from {pos}: {a:?} with the speed-ups, {b:?} without"
                ));
            }
        }
    }
    None
}

/// What the secret file beside the served site holds; no answer of the server may contain it.
pub const SECRET: &[u8] = b"skillbook-fuzz: this file is outside the site";

/// An output folder for the `serve` target, made once per process: a site with pages, a folder of pages, a folder
/// without `index.html` (listed), a 404 page, a folder with a name of several-byte characters, symbolic links out of
/// the site (to a file and to the output folder), and beside the site a file holding [`SECRET`].
pub fn served_fixture() -> &'static Path {
    static OUT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    OUT.get_or_init(|| {
        let out = scratch("serve").join("build");
        let _ = fs::remove_dir_all(&out);
        let site = out.join("site");
        for dir in ["agents", "listed/inner", "dé jà"] {
            fs::create_dir_all(site.join(dir)).expect("create fixture folder");
        }
        for (rel, text) in [
            ("index.html", "<p>start</p>"),
            ("404.html", "<p>not here</p>"),
            ("agents/index.html", "<p>agents</p>"),
            ("agents/a.html", "<p>a</p>"),
            ("listed/x.txt", "x"),
            ("listed/<b>.txt", "b"),
            ("dé jà/index.html", "<p>déjà</p>"),
            ("style.css", "p{}"),
        ] {
            fs::write(site.join(rel), text).expect("write fixture page");
        }
        fs::write(out.join("secret.txt"), SECRET).expect("write secret");
        #[cfg(unix)]
        {
            let _ = std::os::unix::fs::symlink("../secret.txt", site.join("link.txt"));
            let _ = std::os::unix::fs::symlink("..", site.join("up"));
        }
        out
    })
}

/// The `serve` target's body: the status of the answer, `None` for bytes that are not UTF-8 (the HTTP library hands
/// over only text).
pub fn serve_status(data: &[u8]) -> Option<u16> {
    use std::io::Read;
    let Ok(target) = std::str::from_utf8(data) else {
        return None;
    };
    let reply = skillbook::serve::respond_to(target, served_fixture());
    let status = reply.status_code().0;
    assert!(
        matches!(status, 200 | 301 | 400 | 403 | 404),
        "status {status} for {target:?}"
    );
    let locations: Vec<String> = reply
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Location"))
        .map(|h| h.value.as_str().to_string())
        .collect();
    assert_eq!(
        locations.len(),
        usize::from(status == 301),
        "a redirect has one Location, other answers none: {target:?} gave {status} {locations:?}"
    );
    for l in &locations {
        assert!(
            l.starts_with('/') && !l.starts_with("//") && !l.starts_with("/\\"),
            "redirect off this server: {target:?} to {l:?}"
        );
    }
    let mut body = Vec::new();
    reply
        .into_reader()
        .read_to_end(&mut body)
        .expect("read the body");
    assert!(
        !body.windows(SECRET.len()).any(|w| w == SECRET),
        "{target:?} served the file outside the site"
    );
    Some(status)
}

/// A usage error about `root/book.toml` at `LINE:COL` points inside that file: the line exists, and the column is
/// at most one past its end.
fn assert_book_toml_located(root: &Path, msg: &str) {
    let book = root.join("book.toml");
    let Some(rest) = msg.strip_prefix(&format!("{}:", book.display())) else {
        return;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(line), Some(column)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(line), Ok(column)) = (line.parse::<usize>(), column.parse::<usize>()) else {
        return;
    };
    let text =
        String::from_utf8_lossy(&fs::read(&book).expect("book.toml was written")).into_owned();
    // The line as diagnostics show it (`assert_located`'s rule).
    let lines = text.split('\n').count();
    assert!(
        line >= 1 && line <= lines,
        "book.toml error on line {line} of a {lines}-line file: {msg}"
    );
    let width = Source::new("book.toml", &text)
        .line_text(line)
        .chars()
        .count();
    assert!(
        column >= 1 && column <= width + 1,
        "book.toml error at column {column} of a {width}-character line: {msg}"
    );
}

/// How far the `book` target got with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookRun {
    /// No file in the input.
    NoTree,
    /// book.toml or the content root was refused with a usage error (a message, checked).
    Refused,
    /// The content root is outside the tree, or there are too many budgets: not run.
    Skipped,
    /// The content has breakage: `build` would write nothing.
    Breakage,
    /// Making the outputs failed with a message (a broken theme template, say).
    OutputError,
    /// Every output was made.
    Built,
}

/// The `book` target's body, saying how far it got.
pub fn book_of_bytes(data: &[u8]) -> BookRun {
    let tree = book_from_bytes(data);
    if tree.is_empty() {
        return BookRun::NoTree;
    }
    let root = scratch("book").join("book");
    materialize(&tree, &root);
    let config = match config::resolve_for(Some(&root), "build") {
        Ok(c) => c,
        Err(msg) => {
            assert!(!msg.trim().is_empty(), "a usage error with no message");
            assert_book_toml_located(&root, &msg);
            return BookRun::Refused;
        }
    };
    // A content root or theme folder outside the tree (`content = "/"`, `theme = "../.."`) would make the run depend
    // on this machine's files: such a book is skipped. A theme folder that does not exist reads nothing.
    let within = |p: &Path| match (fs::canonicalize(p), fs::canonicalize(&root)) {
        (Ok(p), Ok(root)) => p.starts_with(root),
        _ => false,
    };
    let theme = config.book.as_ref().map(|b| &b.site_files.theme_dir);
    let inside = within(&config.content_root) && theme.is_none_or(|t| !t.exists() || within(t));
    if !inside || config.budgets.len() > targets::MAX_BUDGETS {
        return BookRun::Skipped;
    }
    let compiled = compile_checked(config);
    if compiled.report.diagnostics.iter().any(|d| d.is_breakage()) {
        return BookRun::Breakage;
    }
    match driver::outputs(&compiled) {
        Ok((out, _skipped)) => {
            assert_compiled_frontmatter(&compiled.model, &out);
            assert!(
                out.files.contains_key("site/index.html"),
                "the site has an index"
            );
            BookRun::Built
        }
        Err(msg) => {
            assert!(!msg.trim().is_empty(), "an output error with no message");
            BookRun::OutputError
        }
    }
}
