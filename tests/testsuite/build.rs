//! `skillbook build`: the compiled plugin against golden trees, strict frontmatter, atomic and deterministic output.

use crate::common::{assert_golden, assert_tree_golden, files, fixture, run};
use skillbook::frontmatter::{parse_strict, Value};
use std::fs;

#[test]
fn compiled_plugins_match_golden() {
    for name in [
        "clean-plugin",
        "seed",
        "plugin-repo",
        "marketplace",
        "marketplace-shared",
        // Patterns with links to the plugin's own files: rebased in the compiled agents, then cut.
        "full-plugin",
        "custom-paths",
    ] {
        let dir = fixture(name);
        let out = tempfile::tempdir().unwrap();
        let out_dir = out.path().join("build");
        let r = run(
            dir.path(),
            &["build", ".", "--quiet", "--out", out_dir.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(r.stderr, "", "{name}");
        assert_tree_golden(&format!("build/{name}/plugin"), &out_dir.join("plugin"));
        let report = fs::read_to_string(out_dir.join("report.json")).unwrap();
        assert_golden(&format!("build/{name}/report.json"), &report);
        // Built again over it: the previous output is deleted (on another thread) before the process exits.
        let r = run(
            dir.path(),
            &["build", ".", "--quiet", "--out", out_dir.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let beside: Vec<String> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(beside, ["build"], "{name}");
    }
}

fn frontmatter(text: &str) -> Vec<(String, Value)> {
    let rest = text.strip_prefix("---\n").expect("opens with ---");
    let end = rest.find("\n---\n").expect("closes with ---");
    parse_strict(&rest[..end + 1]).expect("strict YAML")
}

#[test]
fn compiled_seed_frontmatter_is_strict_yaml_with_the_same_values() {
    let dir = fixture("seed");
    let r = run(dir.path(), &["build", ".", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let compiled = fs::read_to_string(
        dir.path()
            .join("build/plugin/agents/distributed-systems-expert.md"),
    )
    .unwrap();
    let fields = frontmatter(&compiled);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("name"),
        Some(Value::String("distributed-systems-expert".into()))
    );
    assert_eq!(get("model"), Some(Value::String("opus".into())));
    assert_eq!(get("color"), Some(Value::String("blue".into())));
    let seed = fs::read_to_string(dir.path().join("agents/distributed-systems-expert.md")).unwrap();
    let line = seed
        .lines()
        .find(|l| l.starts_with("description: "))
        .unwrap();
    let expected = line["description: ".len()..].replace("\\n", "\n");
    assert_eq!(get("description"), Some(Value::String(expected.clone())));
    assert!(expected.contains("\n<example>\nContext: Building distributed system\n"));
    assert_eq!(
        fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        vec!["name", "description", "model", "color", "skills"]
    );
    // The skill the seed names in its text (``See `distributed-systems` skill``) is listed for injection.
    assert_eq!(
        get("skills"),
        Some(Value::List(vec![Value::String(
            "distributed-systems".into()
        )]))
    );
    // The stub is gone, and the patterns are in, in the agent's category order.
    assert!(!compiled.contains("[Content will be expanded"));
    let order: Vec<usize> = [
        "## Consensus Algorithms",
        "## Clustering",
        "## Distributed Bugs",
        "## CAP Tradeoffs",
        "## Conflict Resolution",
        "## Procedures",
    ]
    .iter()
    .map(|h| {
        compiled
            .find(&format!("\n{h}\n"))
            .unwrap_or_else(|| panic!("no {h}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

/// The seed with a book.toml that sets `agent-budget` (and nothing else of skillbook's).
fn seed_with_agent_budget(budget: &str) -> crate::common::Fixture {
    let dir = fixture("seed");
    fs::write(
        dir.path().join("book.toml"),
        format!("[book]\ntitle = \"seed\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n   agent-budget = {budget}\n"),
    )
    .unwrap();
    dir
}

/// Under a budget too small for its patterns in full, the compiled agent is its bundle: the sections that fit, and for
/// each pattern not in whole the path of its full page; no summaries, which the injected skill's SKILL.md indexes.
#[test]
fn compiled_agent_is_its_bundle_at_the_agent_budget() {
    let dir = seed_with_agent_budget("1100");
    // The seed's patterns are a few lines each; one long page, with a checklist, makes the budget bite.
    let consensus = dir
        .path()
        .join("skills/distributed-systems/patterns/consensus.md");
    let mut text = fs::read_to_string(&consensus).unwrap();
    text.push_str("\n## How to do it\n\n");
    for i in 1..=30 {
        text.push_str(&format!(
            "Step {i}: start the ra cluster on every node and wait for a leader before writes.\n\n"
        ));
    }
    text.push_str(
        "## Checklist\n\n- [ ] Writes go through the leader.\n- [ ] A lost quorum stops writes.\n",
    );
    fs::write(&consensus, text).unwrap();
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let agent = fs::read_to_string(
        dir.path()
            .join("out/plugin/agents/distributed-systems-expert.md"),
    )
    .unwrap();
    assert_golden(
        "build/seed-agent-budget/distributed-systems-expert.md",
        &agent,
    );
    // Consensus is partial (its checklist, not its long practice section), clustering is whole, the others are their
    // title and pointer: the skill is injected with the agent, and its SKILL.md indexes the pages.
    let pointer = |p: &str| {
        format!("Full page: `${{CLAUDE_PLUGIN_ROOT}}/skills/distributed-systems/references/{p}.md`")
    };
    for p in ["consensus", "bugs", "cap", "conflicts", "learnings"] {
        assert_eq!(agent.matches(&pointer(p)).count(), 1, "{p}");
    }
    assert!(!agent.contains(&pointer("clustering")));
    assert!(agent.contains("- [ ] A lost quorum stops writes.") && !agent.contains("Step 30"));
    assert!(agent.contains(skillbook::emit::bundle::DISCLOSURE_PREAMBLE));
    let missing: Vec<_> = crate::plugin::plugin_root_paths(&dir.path().join("out/plugin"))
        .into_iter()
        .filter(|(_, _, ok)| !ok)
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    // A budget that holds everything: every pattern whole, no pointers.
    let dir = seed_with_agent_budget("100000");
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let agent = fs::read_to_string(
        dir.path()
            .join("out/plugin/agents/distributed-systems-expert.md"),
    )
    .unwrap();
    assert!(!agent.contains("Full page:"), "{agent}");
    assert!(!agent.contains(skillbook::emit::bundle::DISCLOSURE_PREAMBLE));
}

/// An agent budget below what the agent's own text needs is an error at book.toml's key, with what to set; the
/// previous output stays.
#[test]
fn an_agent_budget_below_the_agents_own_text_is_an_error() {
    let dir = seed_with_agent_budget("8000");
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let agent = dir
        .path()
        .join("out/plugin/agents/distributed-systems-expert.md");
    let before = fs::read(&agent).unwrap();
    let toml = fs::read_to_string(dir.path().join("book.toml")).unwrap();
    fs::write(
        dir.path().join("book.toml"),
        toml.replace("= 8000", "= 300"),
    )
    .unwrap();
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_golden("build/agent-budget-too-small.txt", &r.stderr);
    assert!(
        r.stderr.contains("book.toml:6:4: `agent-budget = 300`"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read(&agent).unwrap(), before);
    // Zero is refused when the configuration is read.
    fs::write(dir.path().join("book.toml"), toml.replace("= 8000", "= 0")).unwrap();
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("book.toml:6:4: `agent-budget = 0`"),
        "{}",
        r.stderr
    );
}

#[test]
fn build_is_deterministic() {
    let dir = fixture("seed");
    run(dir.path(), &["build", ".", "-q", "--out", "a"]);
    run(dir.path(), &["build", ".", "-q", "--out", "b"]);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert_eq!(files(&a), files(&b));
    for f in files(&a) {
        assert_eq!(
            fs::read(a.join(&f)).unwrap(),
            fs::read(b.join(&f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn failed_build_keeps_previous_output() {
    let dir = fixture("clean-plugin");
    let r = run(dir.path(), &["build", ".", "-q"]);
    assert_eq!(r.code, 0);
    let agent = dir.path().join("build/plugin/agents/reviewer.md");
    let before = fs::read(&agent).unwrap();
    let pattern = dir.path().join("skills/code-review/patterns/testing.md");
    fs::write(&pattern, "---\ntitle: [unclosed\ncovers: [ExUnit\n").unwrap();
    let r = run(dir.path(), &["build", ".", "-q"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[unterminated-frontmatter]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("build failed; build was left as it was"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read(&agent).unwrap(), before);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("skillbook"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn refuses_to_replace_a_directory_it_did_not_write() {
    let dir = fixture("clean-plugin");
    fs::create_dir_all(dir.path().join("docs")).unwrap();
    fs::write(dir.path().join("docs/keep.md"), "mine").unwrap();
    let r = run(dir.path(), &["build", ".", "-q", "--out", "docs"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("refusing to replace docs"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("docs/keep.md")).unwrap(),
        "mine"
    );
}

/// Gaps (an uncovered item, a `covers:` entry naming nothing, an unknown skill) still write every output: the
/// coverage page has the red rows and the pages concerned a banner, report.json lists them, and the exit code is 1.
#[test]
fn gap_only_build_writes_its_site_with_the_gaps() {
    let dir = fixture("gaps");
    let r = run(dir.path(), &["build", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_golden("build/gaps/stderr.txt", &r.stderr);
    let out = dir.path().join("build");
    let report = fs::read_to_string(out.join("report.json")).unwrap();
    assert_golden("build/gaps/report.json", &report);
    for page in [
        "coverage.md",
        "agents/queue-expert.md",
        "agents/prose.md",
        "patterns/queues/oban.md",
    ] {
        let md = fs::read_to_string(out.join("site").join(page)).unwrap();
        assert_golden(&format!("build/gaps/site/{page}"), &md);
    }
    let coverage = fs::read_to_string(out.join("site/coverage.html")).unwrap();
    assert!(
        coverage.contains("<tr class=\"sb-uncovered\">"),
        "no red row"
    );
    let uncovered = coverage.split("Uncovered items").nth(1).unwrap_or_default();
    assert!(uncovered.contains("queue-expert"), "the gap is not listed");
    assert!(coverage.contains("class=\"sb-gaps\""), "no banner");
    let agent = fs::read_to_string(out.join("site/agents/queue-expert.html")).unwrap();
    assert!(
        agent.contains("class=\"sb-gaps\""),
        "no banner on the agent page"
    );
    let prose = fs::read_to_string(out.join("site/agents/prose.html")).unwrap();
    assert!(!prose.contains("sb-uncovered") && prose.contains("not tracked"));
    assert!(out.join("plugin/agents/queue-expert.md").is_file());
    assert!(out.join("bundles/queue-expert/2000.md").is_file());

    // Breakage on top of the gaps keeps that output as it was.
    let before = fs::read(out.join("report.json")).unwrap();
    fs::write(
        dir.path().join("skills/queues/patterns/genstage.md"),
        "---\ntitle: x\n",
    )
    .unwrap();
    let r = run(dir.path(), &["build", ".", "-q"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("build failed"), "{}", r.stderr);
    assert_eq!(fs::read(out.join("report.json")).unwrap(), before);
}

/// In a marketplace, an agent that includes another plugin's skill (`skills: ["alpha:shared"]`) points at pages its
/// own plugin carries: an installed plugin is a copy of its own folder, so `${CLAUDE_PLUGIN_ROOT}` of beta's agent is
/// beta's folder. The pages are copied to `references/alpha/shared/`, their sibling links kept, their links to alpha's
/// other files left as text; the agent's own relative links become `${CLAUDE_PLUGIN_ROOT}/...` paths.
#[test]
fn an_agent_using_another_plugins_skill_points_into_its_own_plugin() {
    let dir = fixture("marketplace-shared");
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = dir.path().join("out/plugin/plugins");
    let agent = fs::read_to_string(out.join("beta/agents/reviewer.md")).unwrap();
    let pointers: Vec<&str> = agent
        .lines()
        .filter_map(|l| l.strip_prefix("Full page: `"))
        .collect();
    assert_eq!(
        pointers,
        [
            "${CLAUDE_PLUGIN_ROOT}/references/alpha/shared/restart-strategies.md`",
            "${CLAUDE_PLUGIN_ROOT}/references/alpha/shared/restart-intensity.md`",
            "${CLAUDE_PLUGIN_ROOT}/skills/local/references/timeouts.md`",
        ]
    );
    // Every path the agent names is a file of beta's own folder.
    for p in crate::plugin::plugin_root_paths(&dir.path().join("out/plugin")) {
        assert!(p.2, "{p:?}");
    }
    assert!(agent.contains(
        "[restart intensity](${CLAUDE_PLUGIN_ROOT}/references/alpha/shared/restart-intensity.md#the-limits)"
    ));
    // Alpha's patterns keep their summaries (alpha may not be installed to inject its SKILL.md); beta's own skill is
    // injected, so its pattern has none in the agent.
    assert!(agent.contains("one_for_one restarts the child that died;"));
    assert!(!agent.contains("A GenServer.call waits"));
    // Alpha's script is not in beta: the link keeps its text only.
    assert!(agent
        .contains("- [ ] Children that share state restart together: the script prints the tree."));
    assert!(agent.starts_with("---\nname: reviewer\n"));
    assert!(agent.contains(
        "Follow [the review notes](${CLAUDE_PLUGIN_ROOT}/docs/notes.md#order) and the [local skill](${CLAUDE_PLUGIN_ROOT}/skills/local/SKILL.md); a\n\
         [timeouts page](${CLAUDE_PLUGIN_ROOT}/skills/local/references/timeouts.md) says how long to wait. Nothing links to\n\
         [the web](https://example.org/otp) or [this section](#your-expertise) differently."
    ), "{agent}");
    // The copies are alpha's pages as its own plugin compiles them, but for the links that leave the skill's pages.
    let own = fs::read_to_string(out.join("alpha/skills/shared/references/restart-strategies.md"))
        .unwrap();
    let copy =
        fs::read_to_string(out.join("beta/references/alpha/shared/restart-strategies.md")).unwrap();
    assert_eq!(
        copy,
        own.replace("[the script](../scripts/tree.sh)", "the script")
    );
    // Alpha's own agent reaches its script, at its plugin's root.
    let supervisor = fs::read_to_string(out.join("alpha/agents/supervisor.md")).unwrap();
    assert!(
        supervisor.contains("[the script](${CLAUDE_PLUGIN_ROOT}/skills/shared/scripts/tree.sh)")
    );
}

/// A file of beta's own at the path where beta carries alpha's page is a clash, never a silent overwrite.
#[test]
fn a_file_at_the_path_of_a_carried_page_is_a_clash() {
    let dir = fixture("marketplace-shared");
    let own = dir
        .path()
        .join("plugins/beta/references/alpha/shared/restart-strategies.md");
    fs::create_dir_all(own.parent().unwrap()).unwrap();
    fs::write(&own, "# Beta's own notes\n").unwrap();
    let r = run(dir.path(), &["build", ".", "-q", "--out", "out"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[output-clash]: this file and `plugins/alpha/skills/shared/patterns/restart-strategies.md` would both be written to `plugins/beta/references/alpha/shared/restart-strategies.md` in the compiled plugin"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("out/plugin").exists());
}
