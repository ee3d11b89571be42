//! The fuzz targets' bodies on stable Rust: every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`) and
//! every markdown file of the fixtures and `content/` replayed through the same functions `cargo fuzz` runs, so the
//! targets compile against the library as it changes and a fixed crash stays fixed.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
pub mod fuzz_lib;

use crate::common::{files, project_dir, tests_dir};
use fuzz_lib::targets;
use std::fs;
use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("frontmatter", targets::frontmatter),
    ("roundtrip", targets::roundtrip),
    ("markdown", targets::markdown),
    ("manifest", targets::manifest),
    ("pipeline", targets::pipeline),
    ("site", targets::site),
    ("book", targets::book),
    ("serve", targets::serve),
    ("task", targets::task),
    ("regex", targets::regex),
];

/// A real agent and one of its skill's patterns, as `fuzz/seed.sh` pairs them, reach expansion and bundling through
/// the `markdown` target: the target names its skill after the one the agent refers to (`code-review`, `distributed-
/// systems`), so the pattern is packed. Before, the skill was always `s` and no seed of a real plugin was bundled.
#[test]
fn an_agent_and_its_pattern_are_bundled_by_the_markdown_target() {
    for (agent, pattern) in [
        (
            tests_dir().join("fixtures/clean-plugin/agents/reviewer.md"),
            tests_dir().join("fixtures/clean-plugin/skills/code-review/patterns/testing.md"),
        ),
        (
            project_dir().join("content/agents/distributed-systems-expert.md"),
            project_dir().join("content/skills/distributed-systems/patterns/raft.md"),
        ),
    ] {
        let mut input = fs::read(&agent).expect("read agent");
        input.push(0xFF);
        input.extend(fs::read(&pattern).expect("read pattern"));
        assert!(
            fuzz_lib::targets::markdown_packed(&input) > 0,
            "{} with {}: no pattern packed",
            agent.display(),
            pattern.display()
        );
    }
}

/// The `manifest` target's selector byte puts its bytes in each of the plugin's JSON files: the broken fixtures' files
/// give their own diagnostics through it, and the clean ones none of those.
#[test]
fn the_manifest_target_fuzzes_every_json_file_of_a_plugin() {
    for (selector, file, code) in [
        (
            b'0',
            "broken/manifest-invalid-json/.claude-plugin/plugin.json",
            "manifest-json",
        ),
        (b'2', "broken/hooks-json/hooks/hooks.json", "hooks-json"),
        (b'2', "broken/hooks-schema/hooks/hooks.json", "hooks-schema"),
        (b'3', "broken/mcp-json/.mcp.json", "mcp-json"),
        (b'3', "broken/mcp-schema/.mcp.json", "mcp-schema"),
        (b'2', "full-plugin/hooks/hooks.json", ""),
        (b'3', "full-plugin/.mcp.json", ""),
    ] {
        let mut input = vec![selector];
        input.extend(fs::read(tests_dir().join("fixtures").join(file)).expect("read fixture"));
        let codes = fuzz_lib::targets::manifest_codes(&input);
        if code.is_empty() {
            let json = |c: &String| c.starts_with("hooks-") || c.starts_with("mcp-");
            assert!(!codes.iter().any(json), "{file}: {codes:?}");
        } else {
            assert!(
                codes.iter().any(|c| c == code),
                "{file}: no {code} in {codes:?}"
            );
        }
    }
}

/// The files under `dir` that `keep` accepts, as paths.
fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .map(|rel| dir.join(rel))
        .filter(|p| keep(p))
        .collect()
}

/// Runs `target` on `bytes` as `cargo fuzz` does (on a thread of its own), naming the input when it panics.
fn replay(name: &str, target: Target, input: &Path) {
    let bytes = fs::read(input).expect("read fuzz input");
    if std::panic::catch_unwind(|| fuzz_lib::on_own_thread(|| target(&bytes))).is_err() {
        panic!("fuzz target `{name}` panicked on {}", input.display());
    }
}

#[test]
fn regressions_replay_through_every_target() {
    let root = project_dir().join("fuzz/regressions");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let inputs = files_under(&root.join(name), &|p| !p.ends_with(".gitkeep"));
        for input in &inputs {
            replay(name, *target, input);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
}

#[test]
fn fixture_markdown_replays_through_the_markdown_targets() {
    let md = |p: &Path| p.extension().is_some_and(|e| e == "md");
    let mut inputs = files_under(&tests_dir().join("fixtures"), &md);
    inputs.extend(files_under(&project_dir().join("content"), &md));
    assert!(
        inputs.len() > 50,
        "only {} markdown files found",
        inputs.len()
    );
    for input in &inputs {
        for (name, target) in &TARGETS[..3] {
            replay(name, *target, input);
        }
    }
}

/// The files under `dir` that `keep` accepts, as a fuzz target's content tree (by relative path).
fn pack(dir: &Path, keep: &dyn Fn(&str) -> bool) -> fuzz_lib::Tree {
    files(dir)
        .into_iter()
        .filter(|rel| keep(rel))
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).expect("read fixture");
            (rel, bytes)
        })
        .collect()
}

#[test]
fn fixture_trees_replay_through_the_site_target() {
    // The shipped content and three fixture plugins (one with gaps, one of hostile text), packed as the `site` fuzzer's seeds are (`fuzz/seed.sh`): their
    // sites are made whole, in memory, through the target's own function.
    for dir in [
        project_dir().join("content"),
        tests_dir().join("fixtures/full-plugin"),
        tests_dir().join("fixtures/gaps"),
        tests_dir().join("fixtures/torture"),
    ] {
        let tree = pack(&dir, &|rel| rel != "book.toml");
        assert!(!tree.is_empty(), "{} has files", dir.display());
        let bytes = fuzz_lib::tree_to_bytes(&tree);
        let input = dir.join("(packed)");
        if std::panic::catch_unwind(|| targets::site(&bytes)).is_err() {
            panic!("fuzz target `site` panicked on {}", input.display());
        }
    }
}

/// The `site` target passes the compiled agents' prompt sizes with the bundles, as `skillbook build` does, so an
/// agent's page shows its compiled prompt (`pages::prompt_size`). Before, it passed none and that line was never
/// fuzzed.
#[test]
fn the_site_target_shows_each_agent_s_compiled_prompt() {
    let tree = pack(&project_dir().join("content"), &|rel| rel != "book.toml");
    let out = targets::site_of_bytes(&fuzz_lib::tree_to_bytes(&tree))
        .expect("the shipped content makes a site");
    let page = out
        .files
        .get("site/agents/distributed-systems-expert.html")
        .expect("the agent's page");
    let page = String::from_utf8_lossy(page);
    assert!(
        page.contains("<dt>Compiled prompt</dt>"),
        "the agent's page shows its compiled prompt"
    );
}

#[test]
fn books_replay_through_the_book_target() {
    // The `book` target keeps book.toml and theme/. Three books, each built whole through the target's own function:
    // the repository's book settings, a fixture marketplace with its book.toml, and a plugin under a book.toml that
    // sets every key, with a theme that overrides index.hbs and a bundle template.
    // The repository's own book.toml and bundle templates over a fixture plugin in `content/` (the shipped content
    // has more files than a fuzzed tree holds).
    let repo = project_dir();
    let mut own = pack(&repo, &|rel: &str| {
        rel == "book.toml" || rel.starts_with("theme/bundle/")
    });
    for (rel, bytes) in pack(&tests_dir().join("fixtures/full-plugin"), &|_: &str| true) {
        own.insert(format!("content/{rel}"), bytes);
    }
    let mut books = vec![
        own,
        pack(
            &tests_dir().join("fixtures/marketplace-shared"),
            &|_: &str| true,
        ),
    ];
    let mut every_key = pack(&tests_dir().join("fixtures/full-plugin"), &|_: &str| true);
    every_key.insert(
        "book.toml".into(),
        b"[book]\ntitle = \"every key\"\n\n[preprocessor.skillbook]\ncontent = \".\"\nbudgets = [200, 2000]\nagent-budget = 4000\ntokenizer = \"cl100k\"\ncoverage = \"all\"\nstub-pattern = \"<!-- *expand: *([a-z0-9-]+) *-->\"\n".to_vec(),
    );
    every_key.insert(
        "theme/index.hbs".into(),
        b"<!DOCTYPE html><title>{{ title }}</title><main>{{{ content }}}</main>{{#if previous}}<a href=\"{{ path_to_root }}{{previous.link}}\">prev</a>{{/if}}".to_vec(),
    );
    every_key.insert(
        "theme/bundle/markdown.hbs".into(),
        b"# {{agent.name}}\n\n{{{body}}}\n".to_vec(),
    );
    books.push(every_key);
    // The [output.html] keys the site reads, with the files they name (the fifth book.toml of `fuzz/seed.sh`).
    let mut html = pack(&tests_dir().join("fixtures/full-plugin"), &|_: &str| true);
    for (rel, text) in [
        (
            "book.toml",
            "[book]\ntitle = \"fuzz\"\n\n[output.html]\ntheme = \"look\"\nadditional-css = [\"css/extra.css\"]\nadditional-js = [\"extra.js\"]\ngit-repository-url = \"https://example.com/fuzz\"\nedit-url-template = \"https://example.com/fuzz/edit/{path}\"\nsite-url = \"/fuzz/\"\n\n[output.html.print]\nenable = false\n\n[output.html.redirect]\n\"/old.html\" = \"index.html\"\n\"/agents/old.html\" = \"../index.html\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n",
        ),
        ("look/head.hbs", "<meta name=\"generator\" content=\"{{ title }}\">\n"),
        ("css/extra.css", "body { margin: 0; }\n"),
        ("extra.js", "console.log(\"fuzz\");\n"),
    ] {
        html.insert(rel.into(), text.as_bytes().to_vec());
    }
    books.push(html);
    for tree in books {
        assert!(tree.contains_key("book.toml"), "a book has its book.toml");
        let bytes = fuzz_lib::tree_to_bytes(&tree);
        match std::panic::catch_unwind(|| fuzz_lib::book_of_bytes(&bytes)) {
            Ok(run) => assert_eq!(
                run,
                fuzz_lib::BookRun::Built,
                "a book of {:?} is built whole",
                tree.keys().collect::<Vec<_>>()
            ),
            Err(_) => panic!(
                "fuzz target `book` panicked on a book of {} files",
                tree.len()
            ),
        }
    }
}

/// The `book` target builds only from files of its own tree: a theme folder named outside it (which the build would
/// read) makes the input skipped, one inside it is built.
#[test]
fn the_book_target_reads_no_theme_outside_its_tree() {
    let tree_with = |theme: &str| {
        let mut tree = pack(&tests_dir().join("fixtures/clean-plugin"), &|_: &str| true);
        let toml = format!(
            "[output.html]\ntheme = \"{theme}\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n"
        );
        tree.insert("book.toml".into(), toml.into_bytes());
        tree.insert("look/head.hbs".into(), b"<meta name=\"x\">".to_vec());
        fuzz_lib::tree_to_bytes(&tree)
    };
    for (theme, expect) in [
        ("look", fuzz_lib::BookRun::Built),
        ("../..", fuzz_lib::BookRun::Skipped),
        ("/", fuzz_lib::BookRun::Skipped),
    ] {
        assert_eq!(
            fuzz_lib::book_of_bytes(&tree_with(theme)),
            expect,
            "theme = {theme:?}"
        );
    }
}

/// Request targets for the `serve` target, with the status each gets on its fixture (the seeds of `fuzz/seed.sh`).
pub const SERVE_TARGETS: &[(&str, u16)] = &[
    ("/", 200),
    ("/index.html", 200),
    ("/agents/", 200),
    ("/agents/a.html?x=1#top", 200),
    ("/agents", 301),
    ("//agents", 301),
    ("http://elsewhere.example//agents?q=1", 301),
    ("/listed/", 200),
    ("/listed/%3Cb%3E.txt", 200),
    ("/d%C3%A9%20j%C3%A0/", 200),
    ("/style.css", 200),
    ("/missing.html", 404),
    ("/link.txt", 403),
    ("/up/secret.txt", 403),
    ("/../secret.txt", 403),
    ("/%2e%2e/secret.txt", 403),
    ("/agents/..%2f..%2fsecret.txt", 403),
    ("/a%5c..%5csecret.txt", 403),
    ("/a%00.html", 403),
    ("/%zz", 400),
    ("/%ff", 400),
];

#[test]
fn request_targets_replay_through_the_serve_target() {
    // Each target gets its status through the target's own function, which also checks that no answer holds the
    // secret beside the site and no redirect leaves the server.
    for (target, status) in SERVE_TARGETS {
        match std::panic::catch_unwind(|| fuzz_lib::serve_status(target.as_bytes())) {
            Ok(got) => assert_eq!(got, Some(*status), "{target}"),
            Err(_) => panic!("fuzz target `serve` panicked on {target:?}"),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// Request targets made of the pieces path tricks are made of (dot segments, encoded slashes and dots,
    /// backslashes, NUL, doubled slashes, absolute forms, the fixture's symbolic links out of the site): the `serve`
    /// target's rules hold for all of them (no secret served, a redirect only to this server, a static server's
    /// statuses).
    #[test]
    fn no_request_target_leaves_the_site(pieces in proptest::collection::vec(proptest::sample::select(vec![
        "/", "//", "..", ".", "%2e", "%2E%2e", "%2f", "%2F", "%5c", "\\", "%00", "%", "%zz", "agents", "listed",
        "up", "link.txt", "secret.txt", "index.html", "dé jà", "d%C3%A9%20j%C3%A0", "?q=1", "#x", "http://h",
        "https://h.example", ":", "C:",
    ]), 0..12)) {
        let target: String = pieces.concat();
        let status = fuzz_lib::serve_status(target.as_bytes());
        proptest::prop_assert!(status.is_some(), "{target:?}");
    }
}

/// Task texts for `bundle --for`, each with whether it is accepted: the README's example, scripts without spaces,
/// plurals, letters whose lower case is longer, marks, digits, and texts with nothing to rank by. The seeds of the
/// `task` fuzz target (`fuzz/seed.sh` reads this table).
pub const TASKS: &[(&str, bool)] = &[
    ("a Horde registry lost names after a netsplit", true),
    ("Raft leader election after a partition", true),
    ("分散システムの合意", true),
    ("การแบ่งพาร์ติชันเครือข่าย", true),
    ("İSTANBUL'S REGISTRIES", true),
    ("cafe\u{301} and café", true),
    ("Σ σ ς 42", true),
    ("netsplits, splitbrain and registries", true),
    ("", false),
    ("   \t\n", false),
    ("!?-- ... //", false),
    ("\u{301}\u{302}", false),
];

#[test]
fn tasks_replay_through_the_task_target() {
    // The target bundles for real: the README's task ranks the split-brain page (its title says "split", its body
    // "registries" and "Horde") above Raft's, at both budgets.
    let bundles = fuzz_lib::targets::task_bundles(TASKS[0].0.as_bytes()).expect("bundles");
    for b in &bundles {
        let b = b.as_ref().expect("a bundle");
        let relevance = |slug: &str| {
            b.patterns
                .iter()
                .find(|p| p.pattern == slug)
                .and_then(|p| p.relevance)
                .expect("the pattern, with its relevance")
        };
        assert!(
            relevance("split-brain") > relevance("raft"),
            "{:?}",
            b.patterns
        );
    }
    for (task, accepted) in TASKS {
        assert_eq!(
            skillbook::emit::bundle::rank::check_task(task).is_ok(),
            *accepted,
            "{task:?}"
        );
        if std::panic::catch_unwind(|| targets::task(task.as_bytes())).is_err() {
            panic!("fuzz target `task` panicked on {task:?}");
        }
        // With a third pattern after 0xFF: the pages' words are fuzzed too.
        let mut input = task.as_bytes().to_vec();
        input.push(0xFF);
        input.extend_from_slice(b"---\ntitle: Netsplit\ncovers: [Raft]\npriority: 10\nsummary: Nodes apart.\n---\n\nTask words: ");
        input.extend_from_slice(task.as_bytes());
        if std::panic::catch_unwind(|| targets::task(&input)).is_err() {
            panic!("fuzz target `task` panicked on {task:?} with a third pattern");
        }
    }
}

/// A fuzz process's scratch folder outlives it (libFuzzer exits without destructors; a crash kills it): the next
/// process removes the folders of its PID namespace's processes that are gone, and keeps its own, a live process's,
/// another namespace's (whose processes its `/proc` does not show) and anything else.
#[test]
#[cfg(target_os = "linux")]
fn scratch_folders_of_ended_processes_are_removed() {
    let base = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("run `true`");
    let gone = child.id();
    child.wait().expect("wait for `true`");
    let own = std::process::id();
    let ns =
        fuzz_lib::pid_namespace().expect("/proc/self/ns/pid names this process's PID namespace");
    let other = ns + 1;
    let names = [
        fuzz_lib::scratch_folder(Some(ns), gone),
        fuzz_lib::scratch_folder(Some(ns), own),
        fuzz_lib::scratch_folder(Some(ns), 1),
        fuzz_lib::scratch_folder(Some(other), gone),
        fuzz_lib::scratch_folder(None, gone),
        format!("skillbook-fuzz-{ns}-notapid"),
        "other".to_string(),
    ];
    assert_eq!(names[0], format!("skillbook-fuzz-{ns}-{gone}"));
    for name in &names {
        fs::create_dir_all(base.path().join(name).join("plugin/agents")).expect("create folder");
        fs::write(base.path().join(name).join("plugin/agents/a.md"), "x").expect("write file");
    }
    fuzz_lib::sweep(base.path(), None);
    assert_eq!(
        fs::read_dir(base.path()).expect("read temp dir").count(),
        names.len(),
        "without a namespace nothing is removed"
    );
    fuzz_lib::sweep(base.path(), Some(ns));
    let mut left: Vec<String> = fs::read_dir(base.path())
        .expect("read temp dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut kept = names[1..].to_vec();
    kept.sort();
    assert_eq!(left, kept);
}

/// `fuzz/plateau.sh` counts the edges a later corpus adds on skillbook's own lines over the functions both corpora
/// ran, and a function first run on a line of its own: its unrun edges are not edges lost. Run on a stand-in for the
/// AddressSanitizer build, a script that prints libFuzzer's `-print_coverage` lines for two corpora.
#[test]
#[cfg(target_os = "linux")]
fn plateau_counts_a_function_first_run_apart_from_edges_lost() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let fuzz = fuzz_scripts(root, &["plateau.sh"]);
    let host = host();
    // `cargo +nightly fuzz build`: the build is there already.
    script(&root.join("bin/cargo"), "#!/bin/sh\nexit 0\n");
    // Corpus `before` runs `a` (3 of 5 edges); `after` runs `a` (4 of 5: line 4 reached) and `b` for the first time
    // (4 of 6 edges; one unrun on its own line, one in a `Vec` inlined into it).
    let r = format!("{}/", root.display());
    script(
        &root.join(format!("asan/{host}/release/markdown")),
        &format!(
            "#!/bin/bash\nd=${{@: -1}}\necho 'INITED cov: 100'\n\
             if [ -e \"$d/later\" ]; then\n\
             echo 'COVERED_FUNC: hits: 5 edges: 4/5 skillbook::a {r}src/a.rs:1'\n\
             echo '  UNCOVERED_PC: {r}src/a.rs:3'\n\
             echo 'COVERED_FUNC: hits: 2 edges: 4/6 skillbook::b {r}src/b.rs:1'\n\
             echo '  UNCOVERED_PC: {r}src/b.rs:2'\n\
             echo '  UNCOVERED_PC: /rustc/0123abcd/library/alloc/src/vec/mod.rs:9'\n\
             else\n\
             echo 'COVERED_FUNC: hits: 5 edges: 3/5 skillbook::a {r}src/a.rs:1'\n\
             echo '  UNCOVERED_PC: {r}src/a.rs:3'\n\
             echo '  UNCOVERED_PC: {r}src/a.rs:4'\nfi\n"
        ),
    );
    for (dir, inputs) in [
        ("before", &["first"][..]),
        ("after", &["first", "later"][..]),
    ] {
        for input in inputs {
            fs::create_dir_all(root.join(dir)).expect("create corpus");
            fs::write(root.join(dir).join(input), input).expect("write input");
        }
    }
    let out = run_fuzz_script(root, &fuzz.join("plateau.sh"))
        .args(["markdown", "--corpora"])
        .arg(root.join("before"))
        .arg(root.join("after"))
        .output()
        .expect("run plateau.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).replace(&r, "ROOT/");
    assert!(
        out.status.success(),
        "plateau.sh failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "markdown ROOT/before:      1 inputs; src/ 3 edges in 1 functions; vendor/ 0 edges; libFuzzer cov (whole binary) 100
markdown ROOT/after:      2 inputs; src/ 8 edges in 2 functions; vendor/ 0 edges; libFuzzer cov (whole binary) 100
markdown: functions of src/ and vendor/ whose edges changed from ROOT/before to ROOT/after (before -> after):
  src skillbook::a src/a.rs:1: 3 -> 4
  src skillbook::b src/b.rs:1: 0 -> 4
src: +5 edges in 2 functions
markdown: new edges of src/'s functions by where their code is written, from ROOT/before to ROOT/after:
  skillbook (src/): +1
    src/a.rs:4: +1
  skillbook (src/), functions first run: 1, with 4 edges (listed above as 0 -> N)
markdown: lines with an edge no input ran at ROOT/before and none at ROOT/after: 1 (lines still with one: 2)
  src/a.rs:4
"
    );
}

/// `fuzz/corpus.sh save` offers the inputs `cargo fuzz cmin` dropped to the AddressSanitizer build `plateau.sh`
/// counts edges with, and keeps those its merge adds back: cmin keeps what covers the `-s none` build, and an input
/// it drops may be the only one to run an edge of the other (the twenty-ninth session: the committed `site` corpus ran
/// 5 fewer edges of src/ than the inputs it was minimised from). Run on stand-ins for cmin (keeps `a`) and for the
/// AddressSanitizer build's merge (adds `b`, as if it ran an edge `a` does not).
#[test]
#[cfg(target_os = "linux")]
fn corpus_save_keeps_what_the_replay_build_needs_of_what_cmin_dropped() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let fuzz = fuzz_scripts(root, &["corpus.sh"]);
    let corpus = fuzz.join("corpus/markdown");
    fs::create_dir_all(&corpus).expect("create corpus");
    for input in ["a", "b", "c"] {
        fs::write(corpus.join(input), input).expect("write input");
    }
    // `cargo +nightly fuzz cmin ... markdown corpus/markdown -- ...` keeps `a`; `cargo +nightly fuzz build`: built.
    script(
        &root.join("bin/cargo"),
        "#!/bin/bash\nif [ \"$3\" = cmin ]; then for f in \"${@: -6:1}\"/*; do \
         [ \"${f##*/}\" = a ] || rm \"$f\"; done; fi\n",
    );
    // `-merge=1 ... KEPT OFFERED`: writes down what it was offered and adds `b`.
    script(
        &root.join(format!("asan/{}/release/markdown", host())),
        &format!(
            "#!/bin/bash\nls \"${{@: -1}}\" > {}\ncp \"${{@: -1}}/b\" \"${{@: -2:1}}/\"\n",
            root.join("offered").display()
        ),
    );
    let out = run_fuzz_script(root, &fuzz.join("corpus.sh"))
        .args(["save", "markdown"])
        .output()
        .expect("run corpus.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "corpus.sh failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .starts_with("markdown: 3 inputs, 1 after cmin, 2 with those the replay build needs, "),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(root.join("offered")).expect("the merge ran"),
        "b\nc\n"
    );
    assert_eq!(files(&corpus), ["a", "b"]);
    let listing = std::process::Command::new("tar")
        .arg("-tJf")
        .arg(fuzz.join("corpora/markdown.tar.xz"))
        .output()
        .expect("run tar");
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "markdown/\nmarkdown/a\nmarkdown/b\n"
    );
}

/// `ROOT/fuzz` with `common.sh`, `fixed-random.c` and the given scripts of the repository's `fuzz/`.
#[cfg(target_os = "linux")]
fn fuzz_scripts(root: &Path, scripts: &[&str]) -> PathBuf {
    let fuzz = root.join("fuzz");
    fs::create_dir_all(&fuzz).expect("create fuzz/");
    for f in ["common.sh", "fixed-random.c"].iter().chain(scripts) {
        fs::copy(project_dir().join("fuzz").join(f), fuzz.join(f)).expect("copy a fuzz script");
    }
    fuzz
}

/// `bash SCRIPT` with `ROOT/bin` (the stand-ins for `cargo`) first on the PATH and the AddressSanitizer build in
/// `ROOT/asan`.
#[cfg(target_os = "linux")]
fn run_fuzz_script(root: &Path, script: &Path) -> std::process::Command {
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(script)
        .env("PATH", path)
        .env("ASAN_TARGET_DIR", root.join("asan"));
    cmd
}

/// An executable file with the given text.
#[cfg(target_os = "linux")]
fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
    fs::write(path, text).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The host triple, as `rustc -vV` names it (the folder of a `cargo fuzz` build).
#[cfg(target_os = "linux")]
fn host() -> String {
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host")
}
