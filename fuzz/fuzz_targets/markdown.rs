//! Markdown structure of an agent and a pattern (expertise bullets, responsibilities, stubs, `<example>` blocks,
//! skill references, covers), then check, expansion, a bundle and the compiled plugin, all in memory. The input is
//! the agent's text, then optionally a 0xFF byte and the pattern's text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillbook::check;
use skillbook::emit;
use skillbook::emit::bundle::{Bundler, Layout, Templates};
use skillbook::load::{PluginFiles, SkillFiles, SourceFile, Workspace};
use skillbook::parse::{self, ParseOptions};
use skillbook::tokenize::Tokenizer;
use skillbook::write::OutputTree;
use skillbook_fuzz::{assert_compiled_frontmatter, assert_located, assert_model_spans, BUDGETS};

const SKILL_MD: &str =
    "---\nname: s\ndescription: A skill for fuzzing. Use it when fuzzing.\n---\n\n# S\n\nThe skill.\n";

fuzz_target!(|data: &[u8]| {
    let (agent, pattern) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(agent) = std::str::from_utf8(agent) else {
        return;
    };
    let pattern = match pattern.map(std::str::from_utf8) {
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return,
        None => None,
    };
    let file = |rel: &str, text: &str| SourceFile {
        rel: rel.to_string(),
        text: text.to_string(),
    };
    let ws = Workspace {
        plugins: vec![PluginFiles {
            name: "fuzz".to_string(),
            dir: String::new(),
            namespaced: false,
            manifest: None,
            agents: vec![file("agents/fuzz.md", agent)],
            skills: vec![SkillFiles {
                dir_name: "s".to_string(),
                dir: "skills/s".to_string(),
                skill_md: Some(file("skills/s/SKILL.md", SKILL_MD)),
                patterns: pattern
                    .map(|p| file("skills/s/patterns/p.md", p))
                    .into_iter()
                    .collect(),
            }],
            commands: vec![file("commands/fuzz.md", agent)],
        }],
        marketplace: None,
        copies: Vec::new(),
        files: 4,
    };
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
        "skills/s/patterns/p.md" => pattern.map(str::to_string),
        "skills/s/SKILL.md" => Some(SKILL_MD.to_string()),
        _ => None,
    });
    assert_model_spans(&model);
    let mut out = OutputTree::new();
    emit::plugin::emit(&model, "plugin/", &mut out);
    let templates = Templates::builtin();
    let bundler = Bundler::new(&model, &templates, Tokenizer::O200k, Layout::Xml);
    let _ = emit::bundle::emit(&bundler, BUDGETS, &mut out);
    assert_compiled_frontmatter(&model, &out);
});
