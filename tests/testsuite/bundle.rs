//! Bundles: golden bundles of the shipped agent at each default budget, the `bundle` command, and properties that
//! hold for all inputs (never over budget, monotone in the budget, deterministic).

use crate::common::{assert_golden, fixture, project_dir, run, tests_dir};
use proptest::prelude::*;
use skillbook::emit::bundle::{rank, BundleError, Bundler, Layout, Templates};
use skillbook::expand::Form;
use skillbook::load::{PluginFiles, SkillFiles, SourceFile, Workspace};
use skillbook::parse::{self, Model};
use skillbook::tokenize::Tokenizer;
use std::fs;

#[test]
fn shipped_agent_bundles_match_golden() {
    let out = tempfile::tempdir().unwrap();
    let r = run(
        &project_dir(),
        &[
            "build",
            "-q",
            "--out",
            out.path().join("build").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dir = out.path().join("build/bundles/distributed-systems-expert");
    for budget in [2000, 4000, 8000, 16000] {
        let text = fs::read_to_string(dir.join(format!("{budget}.md"))).unwrap();
        assert!(Tokenizer::default().count(&text) <= budget, "{budget}");
        assert_golden(
            &format!("bundles/distributed-systems-expert/{budget}.md"),
            &text,
        );
    }
    let manifest = fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert_golden(
        "bundles/distributed-systems-expert/manifest.json",
        &manifest,
    );
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let forms = |i: usize| -> Vec<String> {
        m["bundles"][i]["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["form"].as_str().unwrap().to_string())
            .collect()
    };
    let rank = |f: &str| {
        ["omit", "summary", "partial", "full"]
            .iter()
            .position(|x| *x == f)
    };
    for (a, b) in forms(0).iter().zip(forms(3)) {
        assert!(rank(a) <= rank(&b), "more budget, never less of a pattern");
    }
    assert!(forms(3).iter().any(|f| f == "partial" || f == "full"));
    // Schema 2: what each pattern is, once; per budget, what of each went in, in the same order. A pattern that
    // went in part lists the form of each of its sections; the others take all or none of them.
    assert_eq!(m["schema_version"], 2);
    let info = m["patterns"].as_array().unwrap();
    assert!(!info.is_empty());
    let mut partial = 0;
    for b in m["bundles"].as_array().unwrap() {
        let picks = b["patterns"].as_array().unwrap();
        assert_eq!(picks.len(), info.len());
        for (i, p) in info.iter().zip(picks) {
            let sections = i["sections"].as_array().unwrap();
            match p["form"].as_str().unwrap() {
                "partial" => {
                    partial += 1;
                    let forms = p["sections"].as_array().unwrap();
                    assert_eq!(forms.len(), sections.len(), "{p}");
                    assert!(forms.iter().any(|f| f != "omit"), "{p}");
                }
                "omit" => {
                    assert!(p.get("sections").is_none(), "{p}");
                    assert_eq!(p["tokens"], 0);
                }
                "full" => {
                    assert!(p.get("sections").is_none(), "{p}");
                    assert_eq!(p["tokens"], i["full_tokens"]);
                }
                _ => assert!(p.get("sections").is_none(), "{p}"),
            }
        }
    }
    assert!(partial > 0);
}

#[test]
fn bundle_command_formats_and_errors() {
    let root = project_dir();
    let md = run(
        &root,
        &[
            "bundle",
            "distributed-systems-expert",
            "--budget",
            "3000",
            "-q",
        ],
    );
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(Tokenizer::Claude.count(&md.stdout) <= 3000);
    assert!(
        md.stdout
            .starts_with("# Distributed Systems Expert Agent\n"),
        "{}",
        &md.stdout[..80]
    );
    let xml = run(
        &root,
        &[
            "bundle",
            "distributed-systems-expert",
            "--budget",
            "3000",
            "--format",
            "xml",
            "-q",
        ],
    );
    assert_eq!(xml.code, 0);
    assert!(
        xml.stdout.starts_with(
            "<agent name=\"distributed-systems-expert\">\n<instructions>\n# Distributed"
        ),
        "{}",
        &xml.stdout[..120]
    );
    assert!(xml
        .stdout
        .contains("<pattern name=\"raft\" form=\"summary\">"));
    assert!(xml.stdout.trim_end().ends_with("</agent>"));
    let json = run(
        &root,
        &[
            "bundle",
            "distributed-systems-expert",
            "--budget",
            "3000",
            "--format",
            "json",
            "--tokenizer",
            "claude",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["tokenizer"]["name"], "claude");
    assert_eq!(v["tokenizer"]["exact"], false);
    assert!(v["tokenizer"]["note"]
        .as_str()
        .unwrap()
        .contains("estimate"));
    assert!(v["bundles"][0]["tokens"].as_u64().unwrap() <= 3000);
    // Too small: exit 1 and the minimum.
    let small = run(
        &root,
        &["bundle", "distributed-systems-expert", "--budget", "100"],
    );
    assert_eq!(small.code, 1);
    // The minimum is the agent's own text, whatever the shipped agent's length: a number above the budget.
    let needs: u64 = small
        .stderr
        .split("the agent's own text needs ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", small.stderr));
    assert!(
        needs > 100 && small.stderr.contains("more than the budget of 100"),
        "{}",
        small.stderr
    );
    // Unknown agent: usage error with a suggestion.
    let unknown = run(&root, &["bundle", "distributed-system-expert"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("did you mean `distributed-systems-expert`?"),
        "{}",
        unknown.stderr
    );
    // -o writes the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.md");
    let r = run(
        &root,
        &[
            "bundle",
            "distributed-systems-expert",
            "-q",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "");
    assert!(fs::read_to_string(file)
        .unwrap()
        .contains("## Consensus Algorithms"));
}

#[test]
fn user_template_overrides_and_template_errors_are_located() {
    let dir = fixture("clean-plugin");
    fs::write(
        dir.path().join("book.toml"),
        "[book]\ntitle = \"t\"\n\n[preprocessor.skillbook]\ncontent = \".\"\n",
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("theme/bundle")).unwrap();
    fs::write(dir.path().join("theme/bundle/markdown.hbs"), "AGENT {{agent.name}} ({{tokenizer}}, {{budget}})\n{{#each patterns}}- {{name}}: {{form}}\n{{/each}}").unwrap();
    let r = run(dir.path(), &["bundle", "reviewer", "--budget", "500", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "AGENT reviewer (claude, 500)\n- genserver-state: full\n- testing: full\n- review-procedure: full\n");
    fs::write(
        dir.path().join("theme/bundle/markdown.hbs"),
        "ok\n{{#each patterns}\n",
    )
    .unwrap();
    let r = run(dir.path(), &["bundle", "reviewer"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("theme/bundle/markdown.hbs:2:"),
        "{}",
        r.stderr
    );
}

const WORDS: &[&str] = &[
    "raft",
    "quorum",
    "node",
    "partition",
    "leader",
    "the",
    "a",
    "GenServer",
    "`:global`",
    "term",
    "log",
    "lease",
    "clock",
    "12",
    "=>",
    "é",
    "\n\n",
    "- item",
    "## Head",
];

#[derive(Debug, Clone)]
struct Spec {
    priority: u8,
    /// Sections: a heading (an index into HEADINGS) and paragraphs of words.
    sections: Vec<(usize, Vec<Vec<usize>>)>,
    summary: Option<Vec<usize>>,
}

const HEADINGS: &[&str] = &[
    "The problem",
    "Checklist",
    "How it fails",
    "How to do it",
    "Sources",
    "Notes",
];

fn body(spec: &Spec) -> String {
    let mut out = String::new();
    for (h, paras) in &spec.sections {
        out.push_str(&format!("## {}\n\n", HEADINGS[h % HEADINGS.len()]));
        for (i, p) in paras.iter().enumerate() {
            if i % 3 == 2 {
                for w in p.chunks(7) {
                    out.push_str(&format!("- {}\n", text(w).replace('\n', " ")));
                }
                out.push('\n');
            } else {
                out.push_str(&text(p));
                out.push_str("\n\n");
            }
        }
    }
    out
}

fn text(words: &[usize]) -> String {
    words
        .iter()
        .map(|&i| WORDS[i % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// An in-memory plugin: one agent with one category per pattern and a stub, one skill with the patterns.
fn model(specs: &[Spec]) -> Model {
    let items: Vec<String> = (0..specs.len()).map(|i| format!("item{i}")).collect();
    let agent = format!(
        "---\nname: a\ndescription: d\nskills: [s]\n---\n\n# Agent\n\nYou help.\n\n## Your Expertise\n\n{}\n\n[Content will be expanded in follow-up - this stub enables plugin loading]\n",
        items.iter().enumerate().map(|(i, it)| format!("- **Cat{}**: {it}", i % 3)).collect::<Vec<_>>().join("\n")
    );
    let patterns = specs
        .iter()
        .enumerate()
        .map(|(i, s)| SourceFile {
            rel: format!("skills/s/patterns/p{i:02}.md"),
            text: format!(
                "---\ntitle: P{i}\ncovers: [item{i}]\npriority: {}\n{}---\n\n{}\n",
                s.priority,
                s.summary
                    .as_ref()
                    .map(|w| format!(
                        "summary: \"{}\"\n",
                        text(w).replace('\n', " ").replace('"', "")
                    ))
                    .unwrap_or_default(),
                body(s)
            ),
        })
        .collect();
    let ws = Workspace {
        plugins: vec![PluginFiles {
            name: "p".into(),
            dir: String::new(),
            namespaced: false,
            manifest: None,
            agents: vec![SourceFile {
                rel: "agents/a.md".into(),
                text: agent,
            }],
            skills: vec![SkillFiles {
                dir_name: "s".into(),
                dir: "skills/s".into(),
                skill_md: Some(SourceFile {
                    rel: "skills/s/SKILL.md".into(),
                    text: "---\nname: s\ndescription: d\n---\n".into(),
                }),
                skill_md_present: true,
                patterns,
            }],
            commands: vec![],
        }],
        marketplace: None,
        copies: vec![],
        files: 0,
    };
    let mut diags = Vec::new();
    parse::parse(ws, &Default::default(), &mut diags)
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..=100,
        prop::collection::vec(
            (
                0usize..6,
                prop::collection::vec(prop::collection::vec(0usize..100, 1..120), 0..6),
            ),
            0..6,
        ),
        prop::option::of(prop::collection::vec(0usize..100, 1..30)),
    )
        .prop_map(|(priority, sections, summary)| Spec {
            priority,
            sections,
            summary,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn never_over_budget_monotone_and_deterministic(
        specs in prop::collection::vec(spec(), 0..10),
        budgets in prop::collection::vec(20usize..4000, 1..5),
        xml in any::<bool>(),
        tok in prop::sample::select(vec![Tokenizer::O200k, Tokenizer::Cl100k, Tokenizer::Claude]),
        task in prop::option::of(prop::collection::vec(0usize..100, 1..6).prop_map(|w| text(&w))),
        disclosure in any::<bool>(),
    ) {
        let m = model(&specs);
        let templates = Templates::builtin();
        // With disclosure (the compiled agent), markdown with a pointer to every page not in whole.
        let layout = if xml && !disclosure { Layout::Xml } else { Layout::Markdown };
        let agent = &m.plugins[0].agents[0];
        let mut sorted = budgets.clone();
        sorted.sort();
        let fresh = || if disclosure {
            Bundler::for_plugin(&m, &templates, tok)
        } else {
            Bundler::new(&m, &templates, tok, layout)
        };
        let bundler = fresh();
        let results = bundler.bundles_for(0, agent, &sorted, task.as_deref());
        if task.as_deref().is_some_and(|t| rank::check_task(t).is_err()) {
            for r in &results {
                prop_assert!(matches!(r, Err(BundleError::Task(_))), "{:?}", r.as_ref().err());
            }
            return Ok(());
        }
        let mut previous: Option<Vec<(Form, usize, Vec<Form>)>> = None;
        let mut previous_held: Option<Held> = None;
        for (&budget, r) in sorted.iter().zip(&results) {
            match r {
                Ok(b) => {
                    prop_assert!(b.tokens <= budget);
                    prop_assert_eq!(b.tokens, tok.count(&b.text));
                    prop_assert!(b.text.contains("You help."), "the agent's own text is always in");
                    let now = held(b);
                    if let Some(prev) = &previous_held {
                        assert_grows(prev, &now, &format!("budget {budget}"))?;
                    }
                    previous_held = Some(now);
                    let now: Vec<(Form, usize, Vec<Form>)> = b
                        .patterns
                        .iter()
                        .map(|p| (p.form, p.tokens, p.sections.iter().map(|s| s.form).collect()))
                        .collect();
                    if let Some(prev) = &previous {
                        for (a, c) in prev.iter().zip(&now) {
                            // Nothing is removed or shortened: the form, each section's form and the pattern's own
                            // count never go down.
                            prop_assert!(c.0 >= a.0, "a pattern was downgraded: {:?} -> {:?}", prev, now);
                            // With disclosure a pattern completing drops its pointer line: its own count may go down
                            // by that line while its text only grows (checked chunk by chunk above).
                            prop_assert!(disclosure || c.1 >= a.1, "a pattern got shorter: {:?} -> {:?}", prev, now);
                            for (x, y) in a.2.iter().zip(&c.2) {
                                prop_assert!(y >= x, "a section was downgraded: {:?} -> {:?}", prev, now);
                            }
                        }
                    }
                    previous = Some(now);
                }
                Err(BundleError::TooSmall { minimum, budget: b }) => {
                    prop_assert!(*minimum > *b);
                    prop_assert!(previous.is_none(), "a larger budget failed after a smaller one fit");
                }
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
        // Fresh bundler, same input: byte-identical.
        let again = fresh().bundles_for(0, agent, &sorted, task.as_deref());
        for (a, b) in results.iter().zip(&again) {
            prop_assert_eq!(a.as_ref().map(|x| &x.text).ok(), b.as_ref().map(|x| &x.text).ok());
        }
    }
}

/// Every bundle of the shipped agent and of the seed fills at least 90% of its budget, unless the agent's whole
/// content fits.
#[test]
fn bundles_fill_their_budget() {
    for root in [
        project_dir().join("content"),
        tests_dir().join("fixtures/seed"),
    ] {
        let mut diags = Vec::new();
        let ws = skillbook::load::load(&root, &mut diags).unwrap();
        let m = parse::parse(ws, &Default::default(), &mut diags);
        let templates = Templates::builtin();
        let agent = &m.plugins[0].agents[0];
        for tok in [Tokenizer::default(), Tokenizer::O200k] {
            let bundler = Bundler::new(&m, &templates, tok, Layout::Markdown);
            let budgets = [2000, 4000, 8000, 16000];
            for (budget, b) in budgets.iter().zip(bundler.bundles(0, agent, &budgets)) {
                let b = b.unwrap();
                let whole = b.patterns.iter().all(|p| p.form == Form::Full);
                assert!(
                    whole || b.tokens * 10 >= budget * 9,
                    "{}: {} tokens of {budget} ({})",
                    root.display(),
                    b.tokens,
                    tok.name()
                );
                assert!(b.tokens <= *budget);
            }
        }
    }
}

#[test]
fn bundle_for_a_task_puts_the_relevant_pages_in_full() {
    let root = project_dir();
    let task = "a Horde registry lost names after a netsplit";
    let r = run(
        &root,
        &[
            "bundle",
            "distributed-systems-expert",
            "--for",
            task,
            "--budget",
            "12000",
            "--tokenizer",
            "o200k",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // What each pattern is, with what of it went into the bundle (the same order).
    let info = v["patterns"].as_array().unwrap();
    let picks = v["bundles"][0]["patterns"].as_array().unwrap();
    assert_eq!(info.len(), picks.len());
    let patterns: Vec<serde_json::Value> = info
        .iter()
        .zip(picks)
        .map(|(i, p)| {
            let mut m = i.clone();
            m["form"] = p["form"].clone();
            m
        })
        .collect();
    let form = |name: &str| {
        patterns
            .iter()
            .find(|p| p["pattern"] == name)
            .unwrap_or_else(|| panic!("{name}"))["form"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(form("split-brain"), "full");
    // Relevance is in the manifest; split-brain ranks first, and the pages in full are the most relevant ones.
    let mut ranked: Vec<(f64, &str, &str)> = patterns
        .iter()
        .map(|p| {
            (
                p["relevance"].as_f64().unwrap(),
                p["pattern"].as_str().unwrap(),
                p["form"].as_str().unwrap(),
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert_eq!(ranked[0].1, "split-brain", "{ranked:?}");
    let full: Vec<f64> = ranked
        .iter()
        .filter(|r| r.2 == "full")
        .map(|r| r.0)
        .collect();
    let rest: Vec<f64> = ranked
        .iter()
        .filter(|r| r.2 != "full")
        .map(|r| r.0)
        .collect();
    assert!(full.len() >= 2, "{ranked:?}");
    assert!(
        full.iter().all(|f| rest.iter().all(|r| f >= r)),
        "{ranked:?}"
    );
    // Every other pattern is in at least as its summary.
    assert!(patterns.iter().all(|p| p["form"] != "omit"), "{patterns:?}");
    // Deterministic.
    let again = run(
        &root,
        &[
            "bundle",
            "distributed-systems-expert",
            "--for",
            task,
            "--budget",
            "12000",
            "--tokenizer",
            "o200k",
            "--format",
            "json",
        ],
    );
    assert_eq!(again.stdout, r.stdout);
    // Without a task, the manifest has no relevance.
    let plain = run(
        &root,
        &["bundle", "distributed-systems-expert", "--format", "json"],
    );
    assert!(!plain.stdout.contains("\"relevance\""));
    // Any script: Japanese and Russian task texts work.
    for task in [
        "ネットワーク分断の後でレジストリが名前を失った",
        "реестр Horde потерял имена после разделения сети",
    ] {
        let r = run(
            &root,
            &["bundle", "distributed-systems-expert", "--for", task, "-q"],
        );
        assert_eq!(r.code, 0, "{task}: {}", r.stderr);
    }
    // An empty task, or one without words, is a usage error.
    for task in ["", "   ", "?!"] {
        let r = run(
            &root,
            &["bundle", "distributed-systems-expert", "--for", task],
        );
        assert_eq!(r.code, 2, "{task:?}");
        assert!(
            r.stderr.contains("--for: the task text") && r.stderr.contains("help:"),
            "{}",
            r.stderr
        );
    }
}

/// What a bundle holds of each pattern: its form, whether its summary went in, and how many chunks of each section.
type Held = Vec<(String, Form, bool, Vec<usize>)>;

fn held(b: &skillbook::emit::bundle::Bundle) -> Held {
    b.patterns
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.skill, p.pattern),
                p.form,
                p.with_summary,
                p.sections.iter().map(|s| s.chunks.0).collect(),
            )
        })
        .collect()
}

/// A larger budget never removes or shortens anything: every summary and chunk present at a budget is present at
/// every larger one, so each section holds at least as many of its blocks.
fn assert_grows(smaller: &Held, larger: &Held, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(smaller.len(), larger.len());
    for (a, b) in smaller.iter().zip(larger) {
        prop_assert_eq!(&a.0, &b.0);
        prop_assert!(
            b.1 >= a.1,
            "{}: {} went from {:?} to {:?}",
            what,
            a.0,
            a.1,
            b.1
        );
        prop_assert!(b.2 || !a.2, "{}: {} lost its summary", what, a.0);
        for (s, (x, y)) in a.3.iter().zip(&b.3).enumerate() {
            prop_assert!(
                y >= x,
                "{}: {} section {} went from {} to {} chunks",
                what,
                a.0,
                s,
                x,
                y
            );
        }
    }
    Ok(())
}

/// The compiled agent's packing (with a pointer to each page not in whole, which the text drops when a pattern
/// completes) is monotone in the budget, for the shipped agent and an agent of a generated corpus, over budgets
/// from its smallest to past its whole content; and never over budget.
#[test]
fn compiled_agent_packing_is_monotone_in_the_budget() {
    use proptest::test_runner::{Config, TestRunner};
    let corpus = tempfile::tempdir().unwrap();
    crate::engine::gen_corpus::generate(corpus.path(), 2, 2, 10, 11).unwrap();
    for root in [project_dir().join("content"), corpus.path().to_path_buf()] {
        let mut diags = Vec::new();
        let ws = skillbook::load::load(&root, &mut diags).unwrap();
        let m = parse::parse(ws, &Default::default(), &mut diags);
        let templates = Templates::builtin();
        let (pi, agent) = m
            .plugins
            .iter()
            .enumerate()
            .flat_map(|(pi, p)| p.agents.iter().map(move |a| (pi, a)))
            .find(|(pi, a)| skillbook::expand::plan_agent(&m, *pi, a).is_some())
            .expect("an agent with a stub");
        for tok in [Tokenizer::Claude, Tokenizer::O200k] {
            let bundler = Bundler::for_plugin(&m, &templates, tok);
            // From the smallest budget that holds the agent to past its whole content.
            let min = match bundler.bundle(pi, agent, 1) {
                Err(BundleError::TooSmall { minimum, .. }) => minimum,
                other => panic!("{other:?}"),
            };
            let whole = bundler.bundle(pi, agent, 10_000_000).unwrap().tokens;
            let mut runner = TestRunner::new(Config {
                cases: 12,
                failure_persistence: None,
                ..Config::default()
            });
            let budgets = prop::collection::vec(min..whole + 200, 2..6);
            runner
                .run(&budgets, |mut budgets| {
                    budgets.sort();
                    let bundles = bundler.bundles(pi, agent, &budgets);
                    let mut previous: Option<(usize, Held)> = None;
                    for (&budget, b) in budgets.iter().zip(&bundles) {
                        let b = b.as_ref().map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert!(b.tokens <= budget);
                        prop_assert_eq!(b.tokens, tok.count(&b.text));
                        let now = held(b);
                        if let Some((smaller, prev)) = &previous {
                            assert_grows(prev, &now, &format!("{} -> {budget}", smaller))?;
                        }
                        previous = Some((budget, now));
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{} ({}): {e}", root.display(), tok.name()));
        }
    }
}

/// Pages with tiny sections, where the pattern that completes drops a pointer line longer than the section it takes:
/// the text is shorter at the larger cutoff. Every budget of a range, for 40 random plugins, never takes less at a
/// larger budget; and the case proptest found (a pattern whole at 121 tokens and left out at 122, when the search
/// probed only cutoffs, not the ones before each completion) stays fixed.
#[test]
fn compiled_agent_packing_is_monotone_at_every_budget() {
    use proptest::test_runner::{Config, TestRunner};
    let scan = |specs: &[Spec], budgets: &[usize]| -> Result<(), TestCaseError> {
        let m = model(specs);
        let templates = Templates::builtin();
        let agent = &m.plugins[0].agents[0];
        let bundler = Bundler::for_plugin(&m, &templates, Tokenizer::O200k);
        let mut prev: Option<(usize, Held)> = None;
        for (&b, r) in budgets.iter().zip(bundler.bundles(0, agent, budgets)) {
            if let Ok(r) = r {
                prop_assert!(r.tokens <= b);
                let now = held(&r);
                if let Some((pb, p)) = &prev {
                    assert_grows(p, &now, &format!("{pb} -> {b}"))?;
                }
                prev = Some((b, now));
            } else {
                prop_assert!(
                    prev.is_none(),
                    "a larger budget failed after a smaller one fit"
                );
            }
        }
        Ok(())
    };
    let found = [
        Spec {
            priority: 59,
            sections: vec![(0, vec![vec![57]]), (0, vec![vec![0]])],
            summary: None,
        },
        Spec {
            priority: 48,
            sections: vec![
                (
                    0,
                    vec![vec![
                        0, 0, 0, 0, 0, 0, 13, 0, 0, 17, 32, 0, 0, 0, 17, 0, 45, 17, 0, 0, 0, 0, 45,
                        13, 8, 0, 55, 0, 0, 0, 45, 45, 0, 45, 0, 13, 84, 0,
                    ]],
                ),
                (1, vec![vec![0]]),
            ],
            summary: None,
        },
    ];
    scan(&found, &(100..140).collect::<Vec<_>>()).unwrap();
    let tiny = (
        0u8..=100,
        prop::collection::vec(
            (
                0usize..6,
                prop::collection::vec(prop::collection::vec(0usize..100, 1..4), 1..3),
            ),
            1..4,
        ),
        prop::option::of(prop::collection::vec(0usize..100, 1..30)),
    )
        .prop_map(|(priority, sections, summary)| Spec {
            priority,
            sections,
            summary,
        });
    let mut runner = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &prop::collection::vec(prop_oneof![spec(), tiny], 1..8),
            |specs| scan(&specs, &(20..700).collect::<Vec<_>>()),
        )
        .unwrap();
}
