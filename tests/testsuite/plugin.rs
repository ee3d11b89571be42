//! The compiled plugin is the whole plugin: every source file is carried over byte for byte with its mode unless
//! skillbook transforms it; clashes, escaping symlinks and files that must not ship are handled by stated rules.

use crate::common::{files, fixture, run};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The files of `full-plugin` skillbook rewrites, and where each goes in the compiled plugin.
const TRANSFORMED: &[(&str, &str)] = &[
    (".claude-plugin/plugin.json", ".claude-plugin/plugin.json"),
    ("agents/builder.md", "agents/builder.md"),
    ("commands/release.md", "commands/release.md"),
    ("skills/toolkit/SKILL.md", "skills/toolkit/SKILL.md"),
    (
        "skills/toolkit/patterns/release-checklist.md",
        "skills/toolkit/references/release-checklist.md",
    ),
    (
        "skills/toolkit/patterns/version-bumps.md",
        "skills/toolkit/references/version-bumps.md",
    ),
];

fn build(dir: &Path, out: &Path) -> crate::common::Run {
    run(dir, &["build", ".", "-q", "--out", out.to_str().unwrap()])
}

#[test]
fn every_file_is_carried_over_with_its_bytes_and_mode() {
    let dir = fixture("full-plugin");
    // Git keeps only the executable bit; give the fixture the modes the test expects.
    for (f, m) in [
        ("skills/toolkit/scripts/bump.py", 0o755),
        ("hooks/check.sh", 0o755),
        ("bin/toolkit-server", 0o755),
        (".env.example", 0o600),
        ("LICENSE", 0o644),
    ] {
        fs::set_permissions(dir.path().join(f), fs::Permissions::from_mode(m)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let r = build(dir.path(), out.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plugin = out.path().join("plugin");
    let source_files = files(dir.path());
    let mut expected = Vec::new();
    for f in &source_files {
        if let Some((_, dest)) = TRANSFORMED.iter().find(|(s, _)| s == f) {
            expected.push(dest.to_string());
            continue;
        }
        let (src, dst) = (dir.path().join(f), plugin.join(f));
        assert_eq!(
            fs::read(&src).unwrap(),
            fs::read(&dst)
                .unwrap_or_else(|e| panic!("{f} is missing from the compiled plugin: {e}")),
            "{f}: bytes differ"
        );
        assert_eq!(mode(&src), mode(&dst), "{f}: mode differs");
        expected.push(f.clone());
    }
    expected.sort();
    assert_eq!(files(&plugin), expected);
    // The fixture has all the kinds of file the issue names.
    for f in [
        "skills/toolkit/scripts/bump.py",
        "skills/toolkit/assets/logo.png",
        "skills/toolkit/references/checklist-notes.md",
        "hooks/hooks.json",
        ".mcp.json",
        "README.md",
        "LICENSE",
    ] {
        assert!(source_files.contains(&f.to_string()), "{f}");
    }
    assert_eq!(mode(&plugin.join("hooks/check.sh")), 0o755);
    assert_eq!(mode(&plugin.join(".env.example")), 0o600);
}

#[test]
fn a_reference_clashing_with_a_pattern_fails_the_build_and_keeps_the_output() {
    let dir = fixture("full-plugin");
    let out = tempfile::tempdir().unwrap();
    assert_eq!(build(dir.path(), out.path()).code, 0);
    let before = fs::read(
        out.path()
            .join("plugin/skills/toolkit/references/version-bumps.md"),
    )
    .unwrap();
    fs::write(
        dir.path()
            .join("skills/toolkit/references/version-bumps.md"),
        "# Mine\n",
    )
    .unwrap();
    let r = build(dir.path(), out.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "skills/toolkit/references/version-bumps.md:1:1: error[output-clash]: this file and \
             `skills/toolkit/patterns/version-bumps.md` would both be written to \
             `skills/toolkit/references/version-bumps.md` in the compiled plugin"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read(
            out.path()
                .join("plugin/skills/toolkit/references/version-bumps.md")
        )
        .unwrap(),
        before
    );
}

#[test]
fn symlinks_inside_the_root_become_files_and_ones_leaving_it_are_refused() {
    let dir = fixture("full-plugin");
    let scripts = dir.path().join("skills/toolkit/scripts");
    std::os::unix::fs::symlink("bump.py", scripts.join("bump-link.py")).unwrap();
    std::os::unix::fs::symlink("../../hooks", dir.path().join("skills/toolkit/hooks-link"))
        .unwrap();
    // A link to a folder that contains it is not followed forever.
    std::os::unix::fs::symlink("..", scripts.join("loop")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = build(dir.path(), out.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plugin = out.path().join("plugin");
    let link = plugin.join("skills/toolkit/scripts/bump-link.py");
    assert!(!fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read(&link).unwrap(),
        fs::read(scripts.join("bump.py")).unwrap()
    );
    assert_eq!(mode(&link), mode(&scripts.join("bump.py")));
    assert!(plugin.join("skills/toolkit/hooks-link/check.sh").is_file());
    assert!(!plugin.join("skills/toolkit/scripts/loop").exists());
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("error"),
        "{}",
        r.stderr
    );

    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("secret.txt"),
    )
    .unwrap();
    let r = build(dir.path(), out.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("secret.txt:1:1: error[symlink-escape]"),
        "{}",
        r.stderr
    );
    assert!(!plugin.join("secret.txt").exists());
}

#[test]
fn files_that_must_not_ship_are_left_out() {
    let dir = fixture("full-plugin");
    let root = dir.path();
    fs::create_dir_all(root.join(".git/objects")).unwrap();
    fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::create_dir_all(root.join("skills/.svn")).unwrap();
    fs::write(root.join("skills/.svn/entries"), "x").unwrap();
    fs::write(root.join(".DS_Store"), [0u8, 1, 2]).unwrap();
    fs::write(
        root.join("book.toml"),
        "[book]\ntitle = \"t\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("theme/css")).unwrap();
    fs::write(root.join("theme/css/skillbook.css"), "body{}").unwrap();
    // Built twice into a folder inside the root: the second build must not copy the first's output.
    for _ in 0..2 {
        let r = run(root, &["build", ".", "-q", "--out", "dist"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let got = files(&root.join("dist/plugin"));
    for f in &got {
        assert!(
            !(f.starts_with(".git/")
                || f.contains(".svn/")
                || f.starts_with("dist/")
                || f.starts_with("theme/")
                || f == ".DS_Store"
                || f == "book.toml"),
            "{f} should have been left out: {got:?}"
        );
    }
    assert!(got.contains(&"README.md".to_string()));
    // A theme folder of another name (`[output.html] theme`) is the site's too; `theme/` keeps the bundle templates.
    fs::write(
        root.join("book.toml"),
        "[book]\ntitle = \"t\"\n\n[output.html]\ntheme = \"./look/\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("look/css")).unwrap();
    fs::write(root.join("look/css/look.css"), "h1{}").unwrap();
    let r = run(root, &["build", ".", "-q", "--out", "dist"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = files(&root.join("dist/plugin"));
    assert!(
        !got.iter()
            .any(|f| f.starts_with("look/") || f.starts_with("theme/")),
        "the site's theme folders are left out: {got:?}"
    );
    assert!(got.contains(&"README.md".to_string()));
    // A book.toml that is not skillbook's is the plugin's own file, and ships.
    fs::write(root.join("book.toml"), "[book]\ntitle = \"docs\"\n").unwrap();
    let r = run(root, &["build", ".", "-q", "--out", "dist"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(root.join("dist/plugin/book.toml").is_file());
    assert!(root.join("dist/plugin/theme/css/skillbook.css").is_file());
    assert!(root.join("dist/plugin/look/css/look.css").is_file());
}

/// Every relative link and image of every markdown file under `dir` that leads to no file or folder there.
pub fn broken_links(dir: &Path) -> Vec<String> {
    let all = files(dir);
    let mut out = Vec::new();
    for f in all.iter().filter(|f| f.ends_with(".md")) {
        let text = fs::read_to_string(dir.join(f)).unwrap();
        for link in skillbook::links::relative_links(&text) {
            if link.path.is_empty() {
                continue;
            }
            let target = skillbook::links::join(skillbook::links::parent(f), &link.path);
            let ok = target.as_ref().is_some_and(|t| {
                all.contains(t) || all.iter().any(|x| x.starts_with(&format!("{t}/")))
            });
            if !ok {
                out.push(format!("{f}: ({})", link.dest));
            }
        }
    }
    out
}

/// Every `${CLAUDE_PLUGIN_ROOT}/path` in a markdown file of a compiled plugin (or marketplace) under `dir`, as
/// (file, path), with whether it names a file of the plugin that holds that markdown file: Claude Code substitutes
/// the plugin's own folder. The link check above leaves these out (they are not relative links); this is theirs.
pub fn plugin_root_paths(dir: &Path) -> Vec<(String, String, bool)> {
    let re = regex::Regex::new(r#"\$\{CLAUDE_PLUGIN_ROOT\}/([^\s`)#>"']+)"#).unwrap();
    let all = files(dir);
    let roots: Vec<&str> = all
        .iter()
        .filter_map(|f| f.strip_suffix(".claude-plugin/plugin.json"))
        .collect();
    let mut out = Vec::new();
    for f in all.iter().filter(|f| f.ends_with(".md")) {
        let root = roots
            .iter()
            .filter(|r| f.starts_with(*r))
            .max_by_key(|r| r.len())
            .copied()
            .unwrap_or_else(|| panic!("{f} is in no plugin"));
        let text = fs::read_to_string(dir.join(f)).unwrap();
        for c in re.captures_iter(&text) {
            let path = c[1].to_string();
            let ok = all.contains(&format!("{root}{path}"));
            out.push((f.clone(), path, ok));
        }
    }
    out
}

#[test]
fn compiling_never_introduces_a_broken_link() {
    let mut roots: Vec<(String, crate::common::Fixture)> = [
        "clean-plugin",
        "seed",
        "plugin-repo",
        "marketplace",
        "marketplace-shared",
        "full-plugin",
        "custom-paths",
    ]
    .iter()
    .map(|n| (n.to_string(), fixture(n)))
    .collect();
    roots.push(("content".into(), {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("content");
        crate::common::copy_dir(&crate::common::project_dir().join("content"), &path);
        crate::common::Fixture::new(tmp, path)
    }));
    for (name, dir) in &roots {
        assert!(
            broken_links(dir.path()).is_empty(),
            "{name}: the source has broken links"
        );
        let out = tempfile::tempdir().unwrap();
        let r = build(dir.path(), out.path());
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let broken = broken_links(&out.path().join("plugin"));
        assert!(
            broken.is_empty(),
            "{name}: compiling broke links: {broken:#?}"
        );
        let missing: Vec<_> = plugin_root_paths(&out.path().join("plugin"))
            .into_iter()
            .filter(|(_, _, ok)| !ok)
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: ${{CLAUDE_PLUGIN_ROOT}} paths that name no file: {missing:#?}"
        );
    }
}

/// The shipped agent compiled at the default agent budget: every pattern page of its skill is either in the prompt
/// whole or pointed at, the pointers name the compiled plugin's `references/` files, and the prompt is far smaller
/// than the whole skill.
#[test]
fn the_compiled_agent_points_at_every_page_it_does_not_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    crate::common::copy_dir(&crate::common::project_dir().join("content"), &content);
    let out = tmp.path().join("out");
    let r = build(&content, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plugin = out.join("plugin");
    let agent = fs::read_to_string(plugin.join("agents/distributed-systems-expert.md")).unwrap();
    let pointers = plugin_root_paths(&plugin);
    assert!(pointers.iter().all(|(_, _, ok)| *ok), "{pointers:#?}");
    let refs = plugin.join("skills/distributed-systems/references");
    let mut pages: Vec<String> = fs::read_dir(&refs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(pages.len(), 21);
    let mut pointed = 0;
    for page in &pages {
        let pointer = format!(
            "Full page: `${{CLAUDE_PLUGIN_ROOT}}/skills/distributed-systems/references/{page}`"
        );
        let text = fs::read_to_string(refs.join(page)).unwrap();
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        let whole = agent.contains(last);
        assert!(
            agent.matches(&pointer).count() + usize::from(whole) == 1,
            "{page}: pointed at {} times, whole: {whole}",
            agent.matches(&pointer).count()
        );
        pointed += agent.matches(&pointer).count();
    }
    assert!(pointed > 0, "nothing is pointed at");
    assert!(agent.contains(skillbook::emit::bundle::DISCLOSURE_PREAMBLE));
    // Each thing once: the skill is injected with the agent, and its SKILL.md says what each page is about, so the
    // agent holds no summary (the first 80 characters of each are nowhere in it).
    for f in fs::read_dir(content.join("skills/distributed-systems/patterns")).unwrap() {
        let src = fs::read_to_string(f.unwrap().path()).unwrap();
        let fm = src.split("\n---\n").next().unwrap();
        let summary: String = fm
            .split("summary: >-\n")
            .nth(1)
            .expect("a summary")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let head: String = summary.chars().take(80).collect();
        let flat = agent.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(!flat.contains(&head), "{head}");
    }
    // The skill it names in its text is listed for injection.
    assert!(
        agent.contains("\nskills:\n- distributed-systems\n---\n"),
        "{agent}"
    );
    let whole_skill: u64 = pages
        .iter()
        .map(|p| fs::metadata(refs.join(p)).unwrap().len())
        .sum();
    assert!(
        (agent.len() as u64) * 5 < whole_skill,
        "{} of {whole_skill}",
        agent.len()
    );
}

/// The compiled SKILL.md indexes every file of the compiled skill's `references/` (pattern pages and the skill's own
/// references) with a relative link and, where it has one, its summary.
#[test]
fn compiled_skill_md_indexes_every_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    crate::common::copy_dir(&crate::common::project_dir().join("content"), &content);
    let full = fixture("full-plugin");
    // A reference of the skill's own that its SKILL.md does not link to.
    fs::write(
        full.path().join("skills/toolkit/references/extra.md"),
        "# Extra\n\nWhat the extra says, e.g. its limits. More text that the page holds.\n",
    )
    .unwrap();
    for (name, root, skill, unlinked) in [
        // The shipped SKILL.md links every page itself: no index is added.
        ("content", content.as_path(), "distributed-systems", vec![]),
        (
            "full-plugin",
            full.path(),
            "toolkit",
            vec![
                "- [Version bumps](references/version-bumps.md): Bump the major version for breaking changes, the minor for features, the patch for fixes.",
                "- [Extra](references/extra.md): What the extra says, e.g. its limits.",
            ],
        ),
    ] {
        let out = tmp.path().join(format!("out-{name}"));
        let r = build(root, &out);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let dir = out.join("plugin/skills").join(skill);
        let text = fs::read_to_string(dir.join("SKILL.md")).unwrap();
        let refs: Vec<String> = files(&dir.join("references"));
        assert!(!refs.is_empty());
        // Every reference is linked from the compiled SKILL.md: by its own text, or by the index, not both.
        for f in &refs {
            let n = text.matches(&format!("](references/{f}")).count();
            assert!(n >= 1, "{name}: {f} is not linked:\n{text}");
        }
        let index: Vec<&str> = match text
            .split("References\n\nThe full pages, to read when a task needs one:\n\n")
            .nth(1)
        {
            Some(index) => index.lines().filter(|l| l.starts_with("- [")).collect(),
            None => vec![],
        };
        assert_eq!(index, unlinked, "{name}:\n{text}");
        for entry in &index {
            let path = &entry[entry.find("](").unwrap() + 2..entry.find(')').unwrap()];
            assert_eq!(text.matches(&format!("]({path}")).count(), 1, "{name}: {path}");
        }
    }
}
