//! Emit the compiled plugin: agents with their stubs expanded, skills with their patterns as references, and
//! frontmatter rewritten as strict YAML that decodes to the same values.

use crate::expand::{plan_agent, plugin_agent_link, render_agent, render_skill, Form};
use crate::frontmatter::{to_strict_yaml, Value};
use crate::parse::{Document, Model};
use crate::write::OutputTree;

/// Adds the compiled plugin under `prefix` (normally `plugin/`).
pub fn emit(model: &Model, prefix: &str, out: &mut OutputTree) {
    if let Some(m) = &model.marketplace {
        out.insert(
            format!("{prefix}{}", m.rel),
            json_bytes(&serde_json::Value::Object(m.json.clone())),
        );
    }
    for (pi, plugin) in model.plugins.iter().enumerate() {
        let base = if plugin.dir.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}{}/", plugin.dir)
        };
        let mut manifest = plugin
            .manifest
            .as_ref()
            .map(|m| m.json.clone())
            .unwrap_or_default();
        // The compiled plugin lays everything out in the default folders, so custom paths would point nowhere.
        for key in ["agents", "skills", "commands"] {
            manifest.remove(key);
        }
        manifest
            .entry("name")
            .or_insert_with(|| serde_json::Value::String(plugin.name.clone()));
        out.insert(
            format!("{base}.claude-plugin/plugin.json"),
            json_bytes(&serde_json::Value::Object(manifest)),
        );
        for agent in &plugin.agents {
            let body = match plan_agent(model, pi, agent) {
                Some(plan) => {
                    render_agent(model, agent, &plan, &|_| Form::Full, &plugin_agent_link)
                }
                None => agent.doc.body().to_string(),
            };
            let name = agent.doc.file.stem();
            out.insert(
                format!("{base}agents/{name}.md"),
                document(&agent.doc, &body),
            );
        }
        for command in &plugin.commands {
            let rel = command
                .doc
                .file
                .rel
                .strip_prefix(&format!("{}/", plugin.dir))
                .unwrap_or(&command.doc.file.rel);
            let rel = rel
                .split_once("commands/")
                .map(|(_, r)| r)
                .unwrap_or(command.doc.file.stem());
            out.insert(
                format!("{base}commands/{rel}"),
                document(&command.doc, command.doc.body()),
            );
        }
        for skill in &plugin.skills {
            let dir = format!("{base}skills/{}/", skill.dir_name);
            if let (Some(doc), Some(body)) = (&skill.doc, render_skill(skill)) {
                out.insert(format!("{dir}SKILL.md"), document(doc, &body));
            }
            for p in &skill.patterns {
                let body = p.doc.body().trim();
                out.insert(
                    format!("{dir}references/{}.md", p.slug),
                    format!("# {}\n\n{}\n", p.title, body).into_bytes(),
                );
            }
        }
    }
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

/// A document with its frontmatter written as strict YAML and the given body.
pub fn document(doc: &Document, body: &str) -> Vec<u8> {
    let body = body.trim_start_matches(['\n', '\r']);
    if !doc.has_frontmatter {
        return body.as_bytes().to_vec();
    }
    let fields: Vec<(String, Value)> = doc
        .frontmatter
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    format!("---\n{}---\n\n{}", to_strict_yaml(&fields), body).into_bytes()
}
