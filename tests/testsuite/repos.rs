//! Real plugin repositories as they are: a large collection in category folders with the legacy of published
//! agents, and `skillbook new` starting content that checks clean.

use crate::common::{assert_golden, fixture, run};
use std::fs;

/// One plugin in the shape of a large public collection: agents in category folders, each named by plugin.json (Claude
/// Code reads only files there, not folders), skills in a category folder, invalid YAML, CRLF, tabs, Title-Case names, a file without frontmatter, `- **Category**: prose`
/// bullets in agents with no stub. It checks with no errors (the file without frontmatter loads, as in Claude Code,
/// with a warning); no agent that did not opt in to coverage gets a coverage diagnostic.
#[test]
fn torture_collection_builds_with_warnings_only() {
    let dir = fixture("torture");
    let r = run(dir.path(), &["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_golden("repos/torture-check.txt", &r.transcript());
    assert!(!r.stdout.contains(": error["), "{}", r.stdout);
    // The agent without frontmatter loads, as in Claude Code, named after its file.
    assert!(
        r.stdout.contains("agents/data-ai/prompt-engineer.md:1:1: warning[no-frontmatter]: this agent has no frontmatter: Claude Code loads it as agent `prompt-engineer`"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("uncovered-item"), "{}", r.stdout);

    // The collection builds, its prose agents shown as not tracked.
    let r = run(dir.path(), &["build", ".", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = dir.path().join("build");
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["errors"], 0);
    assert_eq!(
        report["summary"]["items"], 3,
        "only the opted-in agent's items are claims"
    );
    assert_eq!(report["summary"]["covered_items"], 3);
    assert!(report["summary"]["untracked_items"].as_u64().unwrap() > 20);
    let tracked: Vec<(&str, bool)> = report["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["agent"].as_str().unwrap(),
                c["tracked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(tracked.contains(&("elixir-reviewer", true)), "{tracked:?}");
    assert!(tracked.contains(&("Shopify Expert", false)), "{tracked:?}");
    assert!(
        tracked.contains(&("content-marketer", false)),
        "{tracked:?}"
    );
    let coverage = fs::read_to_string(out.join("site/coverage.md")).unwrap();
    assert!(coverage.contains("| not tracked |"), "{coverage}");
    assert!(!coverage.contains("not covered"), "{coverage}");
    assert!(
        out.join("plugin/agents/development-team/backend-architect.md")
            .is_file()
            || out.join("plugin/agents/backend-architect.md").is_file()
    );

    // `coverage = "all"` makes every agent's bullets claims.
    fs::write(
        dir.path().join("book.toml"),
        "[book]\ntitle = \"t\"\n\n[preprocessor.skillbook]\ncontent = \".\"\ncoverage = \"all\"\n",
    )
    .unwrap();
    let r = run(dir.path(), &["check", ".", "--format", "json"]);
    assert_eq!(r.code, 1);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["summary"]["untracked_items"], 0);
    assert!(r.stdout.contains("\"uncovered-item\""));
    fs::write(
        dir.path().join("book.toml"),
        "[preprocessor.skillbook]\ncontent = \".\"\ncoverage = \"some\"\n",
    )
    .unwrap();
    let r = run(dir.path(), &["check", "."]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("coverage `some` is not one of"),
        "{}",
        r.stderr
    );
}

/// `skillbook new` writes files that check clean, refuses to overwrite, and checks a pattern's `covers`.
#[test]
fn new_writes_content_that_checks_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("my-plugin");
    let root_s = root.to_str().unwrap();
    let r = run(tmp.path(), &["new", "skill", "queues", root_s]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("wrote {root_s}/skills/queues/SKILL.md\n"));
    let r = run(
        tmp.path(),
        &["new", "agent", "queue-expert", root_s, "--skill", "queues"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_golden(
        "repos/new-agent.md",
        &fs::read_to_string(root.join("agents/queue-expert.md")).unwrap(),
    );
    assert_golden(
        "repos/new-skill.md",
        &fs::read_to_string(root.join("skills/queues/SKILL.md")).unwrap(),
    );
    let r = run(tmp.path(), &["check", root_s]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.starts_with("0 errors, 0 warnings"), "{}", r.stdout);

    // The agent claims an item; a pattern must name it as the agent writes it.
    let agent = root.join("agents/queue-expert.md");
    let text = fs::read_to_string(&agent).unwrap().replace(
        "## Responsibilities",
        "- **Job Queues**: Oban, unique jobs\n\n## Responsibilities",
    );
    fs::write(&agent, text).unwrap();
    let r = run(
        tmp.path(),
        &[
            "new",
            "pattern",
            "queues",
            "Oban: jobs in Postgres",
            root_s,
            "--covers",
            "Obam",
        ],
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "skillbook: error: `Obam` is not an expertise item of any agent that uses skill `queues`; did you mean `Oban`?\n"
    );
    let r = run(
        tmp.path(),
        &[
            "new", "pattern", "queuez", "Oban", root_s, "--covers", "Oban",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("no skill named `queuez`; did you mean `queues`?"),
        "{}",
        r.stderr
    );
    for (title, covers) in [
        ("Oban: jobs in Postgres", "Oban"),
        ("Unique jobs", "unique jobs"),
    ] {
        let r = run(
            tmp.path(),
            &[
                "new", "pattern", "queues", title, root_s, "--covers", covers,
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let pattern = root.join("skills/queues/patterns/oban-jobs-in-postgres.md");
    assert_golden(
        "repos/new-pattern.md",
        &fs::read_to_string(&pattern).unwrap(),
    );
    let r = run(tmp.path(), &["check", root_s]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.starts_with("0 errors, 0 warnings"), "{}", r.stdout);
    assert!(
        r.stdout.contains("2 of 2 expertise items covered"),
        "{}",
        r.stdout
    );

    // Never overwrites; bad names are refused with the name Claude Code wants.
    fs::write(&pattern, "mine").unwrap();
    let r = run(
        tmp.path(),
        &[
            "new",
            "pattern",
            "queues",
            "Oban: jobs in Postgres",
            root_s,
            "--covers",
            "Oban",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("already exists; skillbook new never overwrites a file"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(&pattern).unwrap(), "mine");
    let r = run(tmp.path(), &["new", "agent", "Queue Expert", root_s]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("try `queue-expert`"), "{}", r.stderr);
}

/// `skillbook new` in a book whose `stub-pattern` does not match the placeholder it writes says so, with the line,
/// and still writes the file; with the default pattern it says nothing.
#[test]
fn new_warns_when_the_books_stub_pattern_misses_its_placeholder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let root_s = root.to_str().unwrap();
    assert_eq!(run(tmp.path(), &["new", "skill", "queues", root_s]).code, 0);
    let r = run(
        tmp.path(),
        &["new", "agent", "a", root_s, "--skill", "queues"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    fs::write(
        root.join("book.toml"),
        "[book]\ntitle = \"p\"\n\n[preprocessor.skillbook]\ncontent = \".\"\nstub-pattern = \"TODO: expand\"\n",
    )
    .unwrap();
    let r = run(
        tmp.path(),
        &["new", "agent", "b", root_s, "--skill", "queues"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let agent = root.join("agents/b.md");
    let text = fs::read_to_string(&agent).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("[Content will be expanded"))
        .unwrap()
        + 1;
    assert_eq!(
        r.stderr,
        format!(
            "{}:{line}:1: warning[stub-pattern]: book.toml's stub-pattern `TODO: expand` does not match this placeholder, so it will not be expanded\n  = help: replace the placeholder with the stub text your stub-pattern matches\n",
            agent.display()
        )
    );
}
