//! The Bundles pages (one per agent): for each token budget, which patterns went in full, as a summary, or were
//! left out, with token counts as bars.
//!
//! The pages are made from the bundle stage's own typed result, the agents' [`Manifest`]s (the same values that
//! are written as `manifest.json`), passed in [`super::SiteInput::bundles`]. Without them the pages are absent, not
//! faked.

use super::index::Index;
use super::pages::Page;
use super::util::{bar, escape, md_escape, rel, slugify, Unique};
use crate::emit::bundle::{Manifest, PatternEntry};
use crate::expand::Form;
use std::fmt::Write as _;

/// The paths of the bundles pages, one per agent's manifest, in their order (unique, from the agents' names).
pub fn paths(manifests: Option<&[super::AgentBundles]>) -> Vec<String> {
    let mut paths = Unique::default();
    manifests
        .unwrap_or_default()
        .iter()
        .map(|b| paths.take(&format!("bundles/{}.md", slugify(&b.manifest.agent))))
        .collect()
}

/// The bundles page of one agent's manifest, at `path` (from [`paths`]).
pub fn page(ix: &Index, bundles: &super::AgentBundles, path: &str) -> Page {
    agent_page(ix, bundles.manifest, path)
}

fn form_name(f: Form) -> &'static str {
    match f {
        Form::Full => "full",
        Form::Summary => "summary",
        Form::Partial => "part",
        Form::Omit => "left out",
    }
}

/// The sections of a pattern that went in, as the table shows them: `Checklist, How it fails (part)`.
fn sections_cell(p: &PatternEntry) -> String {
    if p.form == Form::Full {
        return "all".to_string();
    }
    let taken: Vec<String> = p
        .sections
        .iter()
        .filter(|s| s.form != Form::Omit)
        .map(|s| {
            let t = s.title.as_deref().unwrap_or("(introduction)");
            if s.form == Form::Partial {
                format!("{t} (part)")
            } else {
                t.to_string()
            }
        })
        .collect();
    if taken.is_empty() {
        "none".to_string()
    } else {
        taken.join(", ")
    }
}

fn agent_page(ix: &Index, ab: &Manifest, path: &str) -> Page {
    let title = format!("Bundles: {}", ab.agent);
    let mut md = format!("# {}\n\n", md_escape(&title));
    let mut ch = md.clone();
    let agent_link = ix
        .agents
        .iter()
        .find(|a| a.display == ab.agent)
        .map(|a| rel(path, &a.path));
    let intro = format!(
        "Prompt bundles of {}: for each token budget, the agent's prompt with its patterns packed by priority. Counts are {} tokens{}.",
        match &agent_link {
            Some(l) => format!("[{}]({l})", md_escape(&ab.agent)),
            None => md_escape(&ab.agent),
        },
        md_escape(ab.tokenizer.name),
        if ab.tokenizer.exact { "" } else { " (an estimate)" }
    );
    let _ = write!(md, "{intro}\n\n");
    let _ = write!(ch, "{intro}\n\n");
    for b in &ab.bundles {
        let _ = write!(md, "## {} tokens\n\n", b.budget);
        let _ = write!(ch, "## {} tokens\n\n", b.budget);
        if let Some(e) = &b.error {
            let _ = write!(md, "No bundle: {}\n\n", md_escape(e));
            let _ = write!(ch, "<p class=\"sb-flag\">No bundle: {}</p>\n\n", escape(e));
            continue;
        }
        let used = b.tokens.unwrap_or(0);
        let _ = write!(
            md,
            "{used} of {} tokens used (the agent's own text: {}).\n\n| Pattern | Form | Sections | Tokens |\n|---|---|---|--:|\n",
            b.budget,
            b.base_tokens.unwrap_or(0)
        );
        let mut t = format!(
            "<p class=\"sb-note\">{} <span class=\"sb-bar-label\">{used} / {} tokens</span></p>\n<table class=\"sb-bundle\">\n<thead><tr><th>Pattern</th><th>Form</th><th>Sections</th><th>Tokens</th><th></th></tr></thead>\n<tbody>\n",
            bar(used, b.budget, "sb-bar-ok", &format!("{used} of {} tokens", b.budget)),
            b.budget
        );
        for p in &b.patterns {
            let tokens = p.tokens;
            let sections = if p.form == Form::Omit || p.form == Form::Summary {
                String::new()
            } else {
                sections_cell(p)
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {tokens} |",
                md_escape(&p.title),
                form_name(p.form),
                md_escape(&sections)
            );
            let _ = writeln!(
                t,
                "<tr class=\"sb-form-{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"sb-num\">{tokens}</td><td>{}</td></tr>",
                form_name(p.form).replace(' ', "-"),
                escape(&p.title),
                form_name(p.form),
                escape(&sections),
                bar(tokens, b.budget.max(1), "sb-bar-tokens", &format!("{tokens} tokens"))
            );
        }
        t.push_str("</tbody>\n</table>");
        md.push('\n');
        ch.push_str(&t);
        ch.push_str("\n\n");
    }
    Page {
        path: path.to_string(),
        title: ab.agent.clone(),
        markdown: md,
        chapter: ch,
        note: format!(
            "what went into {}'s prompt bundles at each budget",
            ab.agent
        ),
    }
}
