//! Emit the compiled plugin: every file of the source plugin, byte for byte with its mode, except those skillbook
//! transforms: agents with their stubs expanded, skills with their patterns as references, commands and manifests,
//! with frontmatter rewritten as strict YAML that decodes to the same values.

use crate::expand::{plan_agent, plugin_agent_link, render_agent, render_skill, Form};
use crate::frontmatter::{to_strict_yaml, Value};
use crate::parse::{Command, Document, Model, Plugin, Skill};
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
        let base = base(plugin, prefix);
        out.insert(
            format!("{base}.claude-plugin/plugin.json"),
            json_bytes(&serde_json::Value::Object(manifest(plugin))),
        );
        for agent in &plugin.agents {
            let body = match plan_agent(model, pi, agent) {
                Some(plan) => {
                    render_agent(model, agent, &plan, &|_| Form::Full, &plugin_agent_link)
                }
                None => agent.doc.body().to_string(),
            };
            out.insert(
                format!("{base}{}", agent_dest(&agent.doc)),
                document(&agent.doc, &body),
            );
        }
        for command in &plugin.commands {
            out.insert(
                format!("{base}{}", command_dest(plugin, command)),
                document(&command.doc, command.doc.body()),
            );
        }
        for skill in &plugin.skills {
            let dir = format!("{base}{}", skill_dest(skill));
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
    copies(model, prefix, out);
}

/// Adds the files the compiled plugin carries as they are ([`Model::copies`]): same bytes, same mode.
pub fn copies(model: &Model, prefix: &str, out: &mut OutputTree) {
    for f in &model.copies {
        out.insert_with_mode(
            format!("{prefix}{}", copy_dest(model, &f.rel)),
            f.bytes.clone(),
            f.mode,
        );
    }
}

/// Every path of the compiled plugin (relative to its folder) with the source file it is made from, in emit order;
/// `None` for a manifest skillbook makes. Two entries with one path are a clash (see `check`).
pub fn layout(model: &Model) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    if let Some(m) = &model.marketplace {
        out.push((m.rel.clone(), Some(m.rel.clone())));
    }
    for plugin in &model.plugins {
        let base = base(plugin, "");
        out.push((
            format!("{base}.claude-plugin/plugin.json"),
            plugin.manifest.as_ref().map(|m| m.rel.clone()),
        ));
        for agent in &plugin.agents {
            out.push((
                format!("{base}{}", agent_dest(&agent.doc)),
                Some(agent.doc.file.rel.clone()),
            ));
        }
        for command in &plugin.commands {
            out.push((
                format!("{base}{}", command_dest(plugin, command)),
                Some(command.doc.file.rel.clone()),
            ));
        }
        for skill in &plugin.skills {
            let dir = format!("{base}{}", skill_dest(skill));
            if let Some(doc) = &skill.doc {
                out.push((format!("{dir}SKILL.md"), Some(doc.file.rel.clone())));
            }
            for p in &skill.patterns {
                out.push((
                    format!("{dir}references/{}.md", p.slug),
                    Some(p.doc.file.rel.clone()),
                ));
            }
        }
    }
    for f in &model.copies {
        out.push((copy_dest(model, &f.rel), Some(f.rel.clone())));
    }
    out
}

/// Where a copied file goes: a file inside a skill's folder goes with the skill (which may have come from a custom
/// manifest path) to `skills/<folder>/`; every other file keeps its path.
pub fn copy_dest(model: &Model, rel: &str) -> String {
    for plugin in &model.plugins {
        for skill in &plugin.skills {
            if let Some(rest) = rel.strip_prefix(&format!("{}/", skill.dir)) {
                return format!("{}{}{rest}", base(plugin, ""), skill_dest(skill));
            }
        }
    }
    rel.to_string()
}

/// The plugin's folder under `prefix`, with a trailing `/` (or `prefix` itself for the root plugin).
fn base(plugin: &Plugin, prefix: &str) -> String {
    if plugin.dir.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}{}/", plugin.dir)
    }
}

fn agent_dest(doc: &Document) -> String {
    format!("agents/{}.md", doc.file.stem())
}

fn command_dest(plugin: &Plugin, command: &Command) -> String {
    let rel = command
        .doc
        .file
        .rel
        .strip_prefix(&format!("{}/", plugin.dir))
        .unwrap_or(&command.doc.file.rel);
    let rel = rel
        .split_once("commands/")
        .map(|(_, r)| r.to_string())
        .unwrap_or_else(|| format!("{}.md", command.doc.file.stem()));
    format!("commands/{rel}")
}

fn skill_dest(skill: &Skill) -> String {
    format!("skills/{}/", skill.dir_name)
}

/// The compiled plugin's manifest: the source's, without custom paths (everything is in the default folders).
fn manifest(plugin: &Plugin) -> serde_json::Map<String, serde_json::Value> {
    let mut manifest = plugin
        .manifest
        .as_ref()
        .map(|m| m.json.clone())
        .unwrap_or_default();
    for key in ["agents", "skills", "commands"] {
        manifest.remove(key);
    }
    manifest
        .entry("name")
        .or_insert_with(|| serde_json::Value::String(plugin.name.clone()));
    manifest
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
