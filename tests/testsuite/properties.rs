//! Properties that hold for all inputs (proptest, a few seconds each): the frontmatter round trip (what the parser
//! reads, strictly or leniently, the compiled plugin writes as strict YAML that decodes to the same values);
//! diagnostics point inside their file, at the text they name; and no bytes in any content file make `check` panic.

use crate::common::{copy_dir, tests_dir};
use crate::fuzz::fuzz_lib::same_fields;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use skillbook::config;
use skillbook::diagnostic::{render_human, Diagnostic, Source, Style};
use skillbook::driver;
use skillbook::emit;
use skillbook::frontmatter::{self, Split, Value};
use skillbook::load::SourceFile;
use skillbook::parse::{parse_document, ParseOptions};
use std::fs;
use std::path::Path;

/// Parses `text` as an agent file and checks the round trip through the compiled plugin's writer. Returns whether
/// the strict parser read it (false: the lenient fallback did).
fn round_trip(text: &str) -> Result<bool, TestCaseError> {
    let file = SourceFile {
        rel: "agents/a.md".into(),
        text: text.into(),
    };
    let mut diags = Vec::new();
    let Some(doc) = parse_document(file, &ParseOptions::default(), true, &mut diags) else {
        return Err(TestCaseError::fail(format!(
            "not parsed: {diags:?}\n{text}"
        )));
    };
    let fields: Vec<(String, Value)> = doc
        .frontmatter
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    let written = String::from_utf8(emit::plugin::document(&doc, doc.body())).unwrap();
    let Split::Found { yaml, body_start } = frontmatter::split(&written) else {
        return Err(TestCaseError::fail(format!("no frontmatter in\n{written}")));
    };
    let decoded = frontmatter::parse_strict(&written[yaml.clone()])
        .map_err(|e| TestCaseError::fail(format!("not strict YAML ({e}):\n{written}")))?;
    prop_assert!(
        same_fields(&fields, &decoded),
        "source:\n{text}\nread as {fields:?}\nwritten:\n{written}\ndecoded as {decoded:?}"
    );
    prop_assert_eq!(written[body_start..].trim(), doc.body().trim());
    // Read again by skillbook itself, the compiled file parses strictly (no fallback warning) to the same values.
    let again = SourceFile {
        rel: "agents/a.md".into(),
        text: written.clone(),
    };
    let mut diags2 = Vec::new();
    let doc2 = parse_document(again, &ParseOptions::default(), true, &mut diags2).unwrap();
    prop_assert!(doc2.frontmatter.strict, "{written}");
    prop_assert!(diags2.is_empty(), "{diags2:?}");
    Ok(doc.frontmatter.strict)
}

/// Plain text of the kind agents' descriptions hold: words, `: `, `#`, quotes, `\n` escapes, non-ASCII.
fn prose() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z]{1,8}",
        Just(": ".to_string()),
        Just("\\n".to_string()),
        Just(" #".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just(", ".to_string()),
        Just("- ".to_string()),
        Just("[x]".to_string()),
        Just("{y}".to_string()),
        Just("<example>".to_string()),
        Just("é日本".to_string()),
        Just("\\u00e9".to_string()),
        Just("%".to_string()),
        Just("@".to_string()),
        Just("`".to_string()),
        "[0-9]{1,3}",
        Just(".".to_string()),
    ];
    prop::collection::vec(piece, 1..12).prop_map(|v| v.join(" ").trim().to_string())
}

/// One value as a frontmatter line writes it (after `key:`), in the forms seen in published plugins.
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Plain scalars, often invalid YAML (the seed's description).
        prose().prop_map(|s| format!(" {s}")),
        // Double- and single-quoted.
        prose().prop_map(|s| format!(" \"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
        prose().prop_map(|s| format!(" '{}'", s.replace('\'', "''"))),
        // Flow lists.
        prop::collection::vec("[a-z][a-z0-9-]{0,8}", 0..4)
            .prop_map(|v| format!(" [{}]", v.join(", "))),
        // Block lists.
        prop::collection::vec("[a-z][a-z0-9 -]{0,8}", 1..4).prop_map(|v| v
            .iter()
            .map(|s| format!("\n  - {}", s.trim()))
            .collect::<String>()),
        // Block scalars.
        (
            prop::sample::select(vec!["|", ">", "|-", ">-"]),
            prop::collection::vec(prose(), 1..3)
        )
            .prop_map(|(ind, lines)| format!(
                " {ind}{}",
                lines.iter().map(|l| format!("\n  {l}")).collect::<String>()
            )),
        // Scalars of other types.
        prop::sample::select(vec![
            " 12", " 1.5", " -3", " true", " false", " null", " ~", " 007", " 1.10", " 0.0"
        ])
        .prop_map(str::to_string),
        Just(String::new()),
    ]
}

fn frontmatter_text() -> impl Strategy<Value = String> {
    let keys = prop::sample::subsequence(
        vec![
            "name",
            "description",
            "model",
            "color",
            "tools",
            "skills",
            "version",
            "x-extra",
        ],
        1..6,
    );
    (keys, prop::collection::vec(value_text(), 6)).prop_map(|(keys, values)| {
        let mut s = String::from("---\n");
        for (k, v) in keys.iter().zip(values) {
            s.push_str(&format!("{k}:{v}\n"));
        }
        s.push_str("---\n\n# Body\n\nText.\n");
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever frontmatter the parser reads, strictly or through the lenient fallback, the compiled plugin writes
    /// as strict YAML that decodes to the same values.
    #[test]
    fn frontmatter_round_trip(text in frontmatter_text()) {
        round_trip(&text)?;
    }
}

/// The round trip meets both parsers: some generated frontmatter is strict YAML and some needs the fallback.
#[test]
fn round_trip_generator_reaches_both_parsers() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut strict, mut lenient) = (0, 0);
    for _ in 0..200 {
        let text = frontmatter_text().new_tree(&mut runner).unwrap().current();
        if round_trip(&text).unwrap() {
            strict += 1;
        } else {
            lenient += 1;
        }
    }
    assert!(
        strict > 20 && lenient > 20,
        "strict {strict}, lenient {lenient}"
    );
}

/// The line quoted by a diagnostic is its line of the file, and its column is on that line (or just past its end).
fn assert_inside(d: &Diagnostic, text: &str) -> Result<(), TestCaseError> {
    let src = Source::new(&d.path, text);
    prop_assert!(d.line >= 1 && d.column >= 1, "{d:?}");
    prop_assert!(
        d.line <= text.split('\n').count(),
        "line past the end: {d:?}"
    );
    let line = src.line_text(d.line);
    prop_assert_eq!(&d.source_line, line, "{:?}", d);
    prop_assert!(
        d.column <= line.chars().count() + 1,
        "column past the end: {d:?}"
    );
    let _ = render_human(d, &d.path, Style { color: false });
    Ok(())
}

/// The text a diagnostic's line and column point at.
fn text_at<'t>(d: &Diagnostic, text: &'t str) -> &'t str {
    let src = Source::new(&d.path, text);
    let start = src.line_start(d.line);
    let line = &text[start..];
    let offset: usize = line.chars().take(d.column - 1).map(char::len_utf8).sum();
    &line[offset..]
}

/// The first `name` quoted in a message.
fn named(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Expertise items and cover names, with the punctuation and scripts real ones have.
fn item_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z][a-z]{2,8}( [A-Za-z]{2,6}){0,2}",
        "[A-Z][a-z]{2,6} \\([a-z]{2,5}\\)",
        Just("CRDTs (G-Counter, OR-Set)".to_string()),
        Just("Café état".to_string()),
        Just("日本語 item".to_string()),
        Just("C++ & Rust".to_string()),
        Just("gen_statem".to_string()),
    ]
}

#[derive(Debug, Clone)]
struct Content {
    categories: Vec<(String, Vec<String>)>,
    /// Which items each pattern covers (indices into all items), and unknown names it covers too.
    patterns: Vec<(Vec<prop::sample::Index>, Vec<String>, bool)>,
    skill_refs: Vec<String>,
    text_refs: Vec<String>,
    model: Option<String>,
    color: Option<String>,
    crlf: bool,
}

fn content() -> impl Strategy<Value = Content> {
    (
        prop::collection::vec(
            ("[A-Z][a-z]{2,8}", prop::collection::vec(item_name(), 1..4)),
            1..4,
        ),
        prop::collection::vec(
            (
                prop::collection::vec(any::<prop::sample::Index>(), 0..4),
                prop::collection::vec(item_name(), 0..2),
                any::<bool>(),
            ),
            0..4,
        ),
        prop::collection::vec(prop::sample::select(vec!["s", "t", "missing", "S-2"]), 0..3),
        prop::collection::vec(prop::sample::select(vec!["s", "gone", "dist-sys"]), 0..2),
        prop::option::of(prop::sample::select(vec!["sonnet", "gpt-5", "Opus 4"])),
        prop::option::of(prop::sample::select(vec!["green", "mauve", "Dark Red"])),
        any::<bool>(),
    )
        .prop_map(
            |(categories, patterns, skill_refs, text_refs, model, color, crlf)| Content {
                categories,
                patterns,
                skill_refs: skill_refs.into_iter().map(str::to_string).collect(),
                text_refs: text_refs.into_iter().map(str::to_string).collect(),
                model: model.map(str::to_string),
                color: color.map(str::to_string),
                crlf,
            },
        )
}

/// Writes the content as a plugin under `root`; returns the files by relative path.
fn write_content(c: &Content, root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut agent = String::from("---\nname: agent\ndescription: An agent. Use it when testing.\n");
    if let Some(m) = &c.model {
        agent.push_str(&format!("model: {m}\n"));
    }
    if let Some(col) = &c.color {
        agent.push_str(&format!("color: {col}\n"));
    }
    if !c.skill_refs.is_empty() {
        agent.push_str(&format!("skills: [{}]\n", c.skill_refs.join(", ")));
    }
    agent.push_str("---\n\n# Agent\n\n## Your Expertise\n\n");
    let mut all = Vec::new();
    for (cat, items) in &c.categories {
        agent.push_str(&format!("- **{cat}**: {}\n", items.join(", ")));
        all.extend(items.iter().cloned());
    }
    agent.push('\n');
    for r in &c.text_refs {
        agent.push_str(&format!("See `{r}` skill for more.\n\n"));
    }
    agent.push_str("[Content will be expanded in follow-up - this stub enables plugin loading]\n");
    files.push(("agents/agent.md".to_string(), agent));
    files.push((
        "skills/s/SKILL.md".to_string(),
        "---\nname: s\ndescription: The skill. Use it when testing.\n---\n\n# S\n".to_string(),
    ));
    for (i, (covers, unknown, block)) in c.patterns.iter().enumerate() {
        let mut names: Vec<String> = covers.iter().map(|ix| ix.get(&all).clone()).collect();
        names.extend(unknown.iter().cloned());
        let covers = if *block {
            names
                .iter()
                .map(|n| format!("\n  - \"{n}\""))
                .collect::<String>()
        } else {
            format!(
                " [{}]",
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        files.push((
            format!("skills/s/patterns/p{i}.md"),
            format!("---\ntitle: P{i}\ncovers:{covers}\npriority: 50\nsummary: Short.\n---\n\nBody {i}.\n"),
        ));
    }
    if c.crlf {
        for (_, text) in &mut files {
            *text = text.replace('\n', "\r\n");
        }
    }
    for (rel, text) in &files {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    files
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every diagnostic points inside its file; one about a name (an uncovered item, an unknown cover or skill)
    /// points at that name; one about a field's value (model, colour) is on that field's line.
    #[test]
    fn diagnostics_point_at_the_named_text(c in content()) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("plugin");
        let files = write_content(&c, &root);
        let config = config::resolve(Some(&root)).unwrap();
        let compiled = driver::compile(config, &indicatif::ProgressBar::hidden()).unwrap();
        for d in &compiled.report.diagnostics {
            let text = &files.iter().find(|(rel, _)| *rel == d.path).unwrap().1;
            assert_inside(d, text)?;
            let Some(name) = named(&d.message) else { continue };
            match d.code {
                "uncovered-item" | "unknown-cover" | "unknown-skill" => {
                    let at = text_at(d, text);
                    prop_assert!(at.starts_with(name), "{d:?} points at {:?}, not at `{name}`", &at[..at.len().min(40)]);
                }
                "agent-model" | "agent-color" => {
                    prop_assert!(d.source_line.contains(name), "{d:?} is not on the line of `{name}`");
                }
                _ => {}
            }
        }
        // Every uncovered item and unknown name was reported.
        let count = |code: &str| compiled.report.diagnostics.iter().filter(|d| d.code == code).count();
        let unknown_model = c.model.as_deref().is_some_and(|m| m != "sonnet");
        prop_assert_eq!(count("agent-model"), usize::from(unknown_model));
        let unknown_color = c.color.as_deref().is_some_and(|m| m != "green");
        prop_assert_eq!(count("agent-color"), usize::from(unknown_color));
    }
}

/// Copies `fixture` to a temporary plugin and lists its files.
fn plugin_copy(fixture: &str) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugin");
    copy_dir(&tests_dir().join("fixtures").join(fixture), &root);
    let files = crate::common::files(&root);
    (dir, root, files)
}

/// A content file's bytes, damaged: arbitrary bytes, or the original with bytes replaced, inserted and cut.
fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400).prop_map(Damage::Replace),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                prop::collection::vec(any::<u8>(), 0..6)
            ),
            1..8
        )
        .prop_map(Damage::Edit),
    ]
}

#[derive(Debug, Clone)]
enum Damage {
    Replace(Vec<u8>),
    /// At each position: 0 replace a byte, 1 insert the bytes, 2 cut as many bytes.
    Edit(Vec<(prop::sample::Index, u8, Vec<u8>)>),
}

impl Damage {
    fn apply(&self, original: &[u8]) -> Vec<u8> {
        match self {
            Damage::Replace(b) => b.clone(),
            Damage::Edit(edits) => {
                let mut out = original.to_vec();
                for (at, op, bytes) in edits {
                    let i = at.index(out.len() + 1);
                    match op {
                        0 if i < out.len() => out[i] = bytes.first().copied().unwrap_or(0),
                        1 => {
                            out.splice(i..i, bytes.iter().copied());
                        }
                        _ => {
                            let end = (i + bytes.len()).min(out.len());
                            out.drain(i..end);
                        }
                    }
                }
                out
            }
        }
    }
}

fn check_survives(
    fixture: &str,
    file: prop::sample::Index,
    damage: &Damage,
) -> Result<(), TestCaseError> {
    let (_dir, root, files) = plugin_copy(fixture);
    let rel = file.get(&files);
    let path = root.join(rel);
    let bytes = damage.apply(&fs::read(&path).unwrap());
    fs::write(&path, &bytes).unwrap();
    let config = config::resolve(Some(&root)).unwrap();
    let compiled = driver::compile(config, &indicatif::ProgressBar::hidden()).unwrap();
    let _ = emit::report::human(&compiled.report, "plugin", Style { color: true });
    let _ = emit::report::json(&compiled.report, "plugin");
    for d in &compiled.report.diagnostics {
        if d.code == "invalid-utf8" {
            continue;
        }
        if let Ok(raw) = fs::read(root.join(&d.path)) {
            if let Ok(text) =
                String::from_utf8(raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&raw).to_vec())
            {
                assert_inside(d, &text)?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// No bytes in any content file of a plugin (agents, skills, patterns, commands, the manifest) make `check`
    /// panic, and every diagnostic still points inside its file.
    #[test]
    fn check_never_panics_on_damaged_plugin(file in any::<prop::sample::Index>(), damage in damage()) {
        check_survives("clean-plugin", file, &damage)?;
    }

    /// The same for a marketplace (its manifest and each plugin's files).
    #[test]
    fn check_never_panics_on_damaged_marketplace(file in any::<prop::sample::Index>(), damage in damage()) {
        check_survives("marketplace", file, &damage)?;
    }

    /// The same for a plugin with hooks and MCP servers (`hooks/hooks.json`, `.mcp.json`, scripts, assets).
    #[test]
    fn check_never_panics_on_damaged_full_plugin(file in any::<prop::sample::Index>(), damage in damage()) {
        check_survives("full-plugin", file, &damage)?;
    }
}
