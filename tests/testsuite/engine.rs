//! The engine's central property: whatever sequence of edits an author makes, the output of an engine kept between
//! builds (what `watch` and `serve` write after each save) is byte-identical to a fresh build of the content as it
//! is then (what `skillbook build` writes); and when the content has breakage, the build fails and the last good
//! output stays as it was. Run over every clean fixture and a small generated corpus, with proptest choosing the
//! edits: bodies, titles, priorities, new, deleted and restored patterns, renamed skill folders, unchanged saves.

use crate::common::copy_dir;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use skillbook::engine::{Engine, Outcome, Plan};
use skillbook::{driver, write};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../../examples/gen_corpus.rs"]
pub(crate) mod gen_corpus;

type Tree = BTreeMap<String, Vec<u8>>;

/// The output directory as it is on disk, without the marker.
fn read_tree(out: &Path) -> Tree {
    fn walk(base: &Path, dir: &Path, tree: &mut Tree) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, tree);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel != write::MARKER {
                    tree.insert(rel, fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut tree = Tree::new();
    walk(out, out, &mut tree);
    tree
}

/// What a fresh `skillbook build` makes of `root` now: its outputs, or `None` when the content has breakage (errors
/// that keep the previous output; gaps build).
fn fresh(root: &Path) -> Option<Tree> {
    let config = skillbook::config::resolve(Some(root)).unwrap();
    let compiled = driver::compile(config, &indicatif::ProgressBar::hidden()).unwrap();
    if skillbook::diagnostic::has_breakage(&compiled.report.diagnostics) {
        return None;
    }
    Some(driver::outputs(&compiled).unwrap().0.files)
}

/// Every file under `root` (relative, `/`-separated) whose name ends with `.md`.
fn markdown_files(root: &Path) -> Vec<String> {
    crate::common::files(root)
        .into_iter()
        .filter(|f| f.ends_with(".md"))
        .collect()
}

/// One edit, chosen by proptest: a kind, and numbers that pick a file and vary the text.
#[derive(Debug, Clone, Copy)]
struct Edit {
    kind: u8,
    pick: usize,
    salt: u16,
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        (0u8..9, any::<usize>(), any::<u16>()).prop_map(|(kind, pick, salt)| Edit {
            kind,
            pick,
            salt,
        }),
        1..6,
    )
}

/// The project being edited, with what can be undone.
struct Project {
    root: PathBuf,
    /// Deleted files and their text, to restore.
    deleted: Vec<(String, String)>,
    /// Renamed skill folders (old, new), to rename back.
    renamed: Vec<(String, String)>,
}

impl Project {
    fn pick(&self, pred: impl Fn(&str) -> bool, n: usize) -> Option<String> {
        let list: Vec<String> = markdown_files(&self.root)
            .into_iter()
            .filter(|f| pred(f))
            .collect();
        (!list.is_empty()).then(|| list[n % list.len()].clone())
    }

    fn text(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn save(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // As editors do: a temporary file renamed over the old one.
        let tmp = path.with_extension("md.tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }

    /// Applies an edit; returns the changed paths (relative to the content root), as the watcher reports them.
    fn apply(&mut self, e: Edit) -> Vec<String> {
        let is_pattern = |f: &str| f.contains("/patterns/");
        match e.kind {
            // A paragraph added to any markdown file.
            0 => match self.pick(|_| true, e.pick) {
                Some(f) => {
                    let t = self.text(&f);
                    self.save(&f, &format!("{t}\nAn edited paragraph {}.\n", e.salt));
                    vec![f]
                }
                None => vec![],
            },
            // A pattern's body changed, its frontmatter kept.
            1 => match self.pick(is_pattern, e.pick) {
                Some(f) => {
                    let t = self.text(&f);
                    let t = t.replacen("\n\n", &format!("\n\nBody edit {}.\n\n", e.salt), 1);
                    self.save(&f, &t);
                    vec![f]
                }
                None => vec![],
            },
            // A pattern's title.
            2 => match self.pick(is_pattern, e.pick) {
                Some(f) => {
                    let t = self.text(&f);
                    let t = t.replacen("\ntitle: ", &format!("\ntitle: T{} ", e.salt), 1);
                    self.save(&f, &t);
                    vec![f]
                }
                None => vec![],
            },
            // A pattern's priority.
            3 => match self.pick(is_pattern, e.pick) {
                Some(f) => {
                    let t = self.text(&f);
                    let re = regex::Regex::new(r"\npriority: *\d+").unwrap();
                    let t = re
                        .replace(&t, format!("\npriority: {}", e.salt % 101))
                        .into_owned();
                    self.save(&f, &t);
                    vec![f]
                }
                None => vec![],
            },
            // A pattern deleted (it may leave items uncovered: a gap, shown on the site).
            4 => match self.pick(is_pattern, e.pick) {
                Some(f) => {
                    self.deleted.push((f.clone(), self.text(&f)));
                    fs::remove_file(self.root.join(&f)).unwrap();
                    vec![f]
                }
                None => vec![],
            },
            // The last deleted file restored (into its folder's new name, if the folder was renamed since: restoring
            // it under the old name would make that folder again, and the rename could not be undone).
            5 => match self.deleted.pop() {
                Some((f, t)) => {
                    let f = self.renamed.iter().fold(f, |f, (old, new)| {
                        match f.strip_prefix(&format!("{old}/")) {
                            Some(rest) => format!("{new}/{rest}"),
                            None => f,
                        }
                    });
                    self.save(&f, &t);
                    vec![f]
                }
                None => vec![],
            },
            // A new pattern: a copy of another one under a new name.
            6 => match self.pick(is_pattern, e.pick) {
                Some(f) => {
                    let new = f.replace(".md", &format!("-copy{}.md", e.salt));
                    let t = self.text(&f);
                    self.save(&new, &t);
                    vec![new]
                }
                None => vec![],
            },
            // Saved without a change.
            7 => match self.pick(|_| true, e.pick) {
                Some(f) => {
                    let t = self.text(&f);
                    self.save(&f, &t);
                    vec![f]
                }
                None => vec![],
            },
            // A skill folder renamed, or the last rename undone.
            _ => {
                if let Some((old, new)) = self.renamed.pop() {
                    fs::rename(self.root.join(&new), self.root.join(&old)).unwrap();
                    return vec![old, new];
                }
                let Some(f) = self.pick(|f| f.ends_with("/SKILL.md"), e.pick) else {
                    return vec![];
                };
                let old = f.trim_end_matches("/SKILL.md").to_string();
                let new = format!("{old}-moved{}", e.salt);
                fs::rename(self.root.join(&old), self.root.join(&new)).unwrap();
                self.renamed.push((old.clone(), new.clone()));
                vec![old, new]
            }
        }
    }
}

/// Copies `source` into a temporary project, builds it, applies `edits` one by one, and after each checks the
/// property against a fresh build.
fn incremental_equals_fresh(source: &Path, edits: &[Edit]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    copy_dir(source, &root);
    let out = tmp.path().join("out");
    // Half the cases build as the watch loop does: the pages first, the rest after, the next staging directory kept
    // as a mirror of the output.
    let deferred = edits.len().is_multiple_of(2);
    let mut engine = Engine::new(Some(root.clone()), out.clone())
        .background_cleanup(deferred)
        .defer(deferred);
    let content = skillbook::config::resolve(Some(&root))
        .unwrap()
        .content_root;
    let mut project = Project {
        root: content,
        deleted: Vec::new(),
        renamed: Vec::new(),
    };
    let first = engine.build(&Plan::everything());
    prop_assert!(matches!(first, Outcome::Built(_)), "{first:?}");
    let mut good = read_tree(&out);
    prop_assert!(Some(&good) == fresh(&root).as_ref(), "first build");
    for (i, &e) in edits.iter().enumerate() {
        let changed = project.apply(e);
        let plan = Plan {
            content: changed.iter().map(PathBuf::from).collect(),
            ..Plan::default()
        };
        let mut outcome = engine.build(&plan);
        if engine.pending() {
            // The pages first: every file but the site's pages is the previous output's (report.json too).
            let now = read_tree(&out);
            let kept = |k: &str| {
                k.strip_prefix("site/")
                    .is_none_or(skillbook::emit::site::holds_every_page)
            };
            let moved: Vec<&String> = good
                .keys()
                .chain(now.keys())
                .filter(|k| kept(k) && good.get(*k) != now.get(*k))
                .collect();
            prop_assert!(
                moved.is_empty(),
                "edit {i} {e:?}: the first part changed {moved:?}"
            );
            outcome = engine.finish().expect("the rest");
        }
        let now = read_tree(&out);
        match fresh(&root) {
            Some(expected) => {
                prop_assert!(
                    !matches!(outcome, Outcome::Failed(_)),
                    "edit {i} {e:?} ({changed:?}): the engine failed where a fresh build does not: {outcome:?}"
                );
                if now != expected {
                    let differ: Vec<&String> = expected
                        .keys()
                        .chain(now.keys())
                        .filter(|k| expected.get(*k) != now.get(*k))
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "edit {i} {e:?} ({changed:?}): the output differs from a fresh build in {differ:?}"
                    )));
                }
                good = now;
            }
            None => {
                prop_assert!(
                    matches!(outcome, Outcome::Failed(_)),
                    "edit {i} {e:?} ({changed:?}): a fresh build fails, the engine did not"
                );
                prop_assert!(
                    now == good,
                    "edit {i} {e:?}: a failed build changed the output"
                );
            }
        }
    }
    Ok(())
}

fn check_property(source: &Path, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        // Each case builds the site a dozen times; shrinking a failure is worth it, but not forever.
        max_shrink_iters: 32,
        ..Config::default()
    });
    runner
        .run(&edits(), |edits| incremental_equals_fresh(source, &edits))
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
}

#[test]
fn incremental_build_equals_fresh_build_on_every_fixture() {
    for name in [
        "clean-plugin",
        "seed",
        "plugin-repo",
        "marketplace",
        "marketplace-shared",
    ] {
        check_property(&crate::common::tests_dir().join("fixtures").join(name), 2);
    }
}

#[test]
fn incremental_build_equals_fresh_build_on_a_generated_corpus() {
    let corpus = tempfile::tempdir().unwrap();
    gen_corpus::generate(corpus.path(), 6, 3, 12, 7).unwrap();
    check_property(corpus.path(), 3);
}

#[test]
fn incremental_build_equals_fresh_build_on_the_shipped_content() {
    let project = crate::common::project_dir();
    let copy = tempfile::tempdir().unwrap();
    fs::copy(project.join("book.toml"), copy.path().join("book.toml")).unwrap();
    for dir in ["content", "theme"] {
        copy_dir(&project.join(dir), &copy.path().join(dir));
    }
    check_property(copy.path(), 1);
}

/// Every link and image on every HTML page of a generated corpus's site resolves: to a file of the site, and when it
/// names an anchor, to an element with that id on the target page (print.html's links stay within it).
#[test]
fn every_page_and_anchor_resolves_on_a_generated_corpus() {
    let corpus = tempfile::tempdir().unwrap();
    gen_corpus::generate(corpus.path(), 24, 4, 60, 3).unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_every_link_resolves(corpus.path(), &out.path().join("build"), 24 + 4 + 60);
}

/// The same on a generated marketplace (`gen_corpus --plugins`): pages one folder deeper, under each plugin's name.
#[test]
fn every_page_and_anchor_resolves_on_a_generated_marketplace() {
    let corpus = tempfile::tempdir().unwrap();
    gen_corpus::generate_marketplace(corpus.path(), 20, 8, 30, 5, 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("build");
    assert_every_link_resolves(corpus.path(), &out, 20 + 8 + 30);
    // Five plugins, every item claimed and covered, each agent's pages under its plugin's name.
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["errors"], 0, "{}", report["diagnostics"]);
    assert_eq!(report["summary"]["agents"], 20);
    assert!(report["summary"]["items"].as_u64().unwrap() > 20);
    assert_eq!(
        report["summary"]["covered_items"],
        report["summary"]["items"]
    );
    let plugins: std::collections::BTreeSet<&str> = report["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(plugins.len(), 5, "{plugins:?}");
    assert!(out.join("site/agents/plugin-01/agent-0001.html").is_file());
}

/// Builds `corpus` into `out` and checks every link of its site.
fn assert_every_link_resolves(corpus: &std::path::Path, out: &std::path::Path, min_pages: usize) {
    use skillbook::emit::site::render::{decode_attr, scan_tags};
    let out = out.to_path_buf();
    let outcome = Engine::new(Some(corpus.to_path_buf()), out.clone()).build(&Plan::everything());
    assert!(matches!(outcome, Outcome::Built(_)), "{outcome:?}");
    let tree = read_tree(&out.join("site"));
    let html: BTreeMap<&str, String> = tree
        .iter()
        .filter(|(p, _)| p.ends_with(".html"))
        .map(|(p, b)| (p.as_str(), String::from_utf8_lossy(b).into_owned()))
        .collect();
    let mut ids: BTreeMap<&str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (p, text) in &html {
        let set = ids.entry(p).or_default();
        scan_tags(text, |_, attrs| {
            for (n, v) in attrs {
                if *n == "id" {
                    set.insert(decode_attr(v));
                }
            }
        });
    }
    assert!(html.len() > min_pages, "{} pages", html.len());
    let mut links = 0;
    let mut broken = Vec::new();
    for (page, text) in &html {
        if *page == "404.html" {
            continue; // Its links are relative to wherever the server shows it.
        }
        let base: Vec<&str> = page.split('/').collect();
        let base = &base[..base.len() - 1];
        scan_tags(text, |tag, attrs| {
            for (n, v) in attrs {
                if !matches!(
                    (tag, *n),
                    ("a", "href") | ("img", "src") | ("link", "href") | ("script", "src")
                ) {
                    continue;
                }
                let dest = decode_attr(v);
                if dest.is_empty() || dest.contains(':') || dest.starts_with('/') {
                    continue;
                }
                links += 1;
                let (path, anchor) = match dest.split_once('#') {
                    Some((p, a)) => (p.to_string(), Some(a.to_string())),
                    None => (dest.clone(), None),
                };
                let target = if path.is_empty() {
                    page.to_string()
                } else {
                    let mut parts: Vec<&str> = base.to_vec();
                    for c in path.split('/') {
                        match c {
                            ".." => {
                                parts.pop();
                            }
                            "." | "" => {}
                            c => parts.push(c),
                        }
                    }
                    parts.join("/")
                };
                let target = target.split('?').next().unwrap_or_default().to_string();
                if !tree.contains_key(&target) {
                    broken.push(format!("{page}: {dest} (no file {target})"));
                    continue;
                }
                if let Some(a) = anchor.filter(|a| !a.is_empty()) {
                    if !ids.get(target.as_str()).is_some_and(|s| s.contains(&a)) {
                        broken.push(format!("{page}: {dest} (no id {a} on {target})"));
                    }
                }
            }
        });
    }
    assert!(links > 1000, "{links} links");
    assert!(
        broken.is_empty(),
        "{} broken links of {links}:\n{}",
        broken.len(),
        broken
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
