//! The Bundles pages (one per agent): for each token budget, which patterns went in full, as a summary, or were
//! left out, with token counts as bars.
//!
//! HOOK: the site shows these pages only when it is given a [`BundleSummary`]. `driver::outputs` passes `None` until
//! the bundles work (`emit::bundle`) is wired in; then it converts each agent's bundle manifest into an
//! [`AgentBundles`] (the fields map one to one) and passes `Some(&summary)` in [`super::SiteInput::bundles`]. With
//! `None` the pages are absent, not faked.

use super::index::Index;
use super::pages::Page;
use super::util::{bar, escape, md_escape, rel, slugify, Unique};
use crate::expand::Form;
use std::fmt::Write as _;

/// What the bundle stage made, as the site shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BundleSummary {
    /// The tokenizer the counts come from (`o200k`, ...).
    pub tokenizer: String,
    /// False for an estimate (the `claude` mode); the page says so.
    pub exact: bool,
    pub agents: Vec<AgentBundles>,
}

/// One agent's bundles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentBundles {
    /// The agent's name as the site shows it (`plugin:agent` inside a marketplace).
    pub agent: String,
    pub budgets: Vec<BudgetBundle>,
}

/// One budget of one agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetBundle {
    pub budget: usize,
    /// Tokens of the bundle; `None` when it could not be made.
    pub tokens: Option<usize>,
    /// Tokens of the agent's own text alone.
    pub base_tokens: Option<usize>,
    /// Why there is no bundle for this budget.
    pub error: Option<String>,
    pub patterns: Vec<BundlePattern>,
}

/// One pattern in a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct BundlePattern {
    pub title: String,
    pub priority: u8,
    pub form: Form,
    pub full_tokens: usize,
    pub summary_tokens: Option<usize>,
}

/// The bundles pages, one per agent that has bundles, or none without a summary.
pub fn pages(ix: &Index, summary: Option<&BundleSummary>) -> Vec<Page> {
    let Some(summary) = summary else {
        return Vec::new();
    };
    let mut paths = Unique::default();
    summary
        .agents
        .iter()
        .map(|ab| {
            agent_page(
                ix,
                summary,
                ab,
                &paths.take(&format!("bundles/{}.md", slugify(&ab.agent))),
            )
        })
        .collect()
}

fn form_name(f: Form) -> &'static str {
    match f {
        Form::Full => "full",
        Form::Summary => "summary",
        Form::Omit => "left out",
    }
}

fn agent_page(ix: &Index, s: &BundleSummary, ab: &AgentBundles, path: &str) -> Page {
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
        md_escape(&s.tokenizer),
        if s.exact { "" } else { " (an estimate)" }
    );
    let _ = write!(md, "{intro}\n\n");
    let _ = write!(ch, "{intro}\n\n");
    for b in &ab.budgets {
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
            "{used} of {} tokens used (the agent's own text: {}).\n\n| Pattern | Form | Tokens |\n|---|---|--:|\n",
            b.budget,
            b.base_tokens.unwrap_or(0)
        );
        let mut t = format!(
            "<p class=\"sb-note\">{} <span class=\"sb-bar-label\">{used} / {} tokens</span></p>\n<table class=\"sb-bundle\">\n<thead><tr><th>Pattern</th><th>Form</th><th>Tokens</th><th></th></tr></thead>\n<tbody>\n",
            bar(used, b.budget, "sb-bar-ok", &format!("{used} of {} tokens", b.budget)),
            b.budget
        );
        for p in &b.patterns {
            let tokens = match p.form {
                Form::Full => p.full_tokens,
                Form::Summary => p.summary_tokens.unwrap_or(0),
                Form::Omit => 0,
            };
            let _ = writeln!(
                md,
                "| {} | {} | {tokens} |",
                md_escape(&p.title),
                form_name(p.form)
            );
            let _ = writeln!(
                t,
                "<tr class=\"sb-form-{}\"><td>{}</td><td>{}</td><td class=\"sb-num\">{tokens}</td><td>{}</td></tr>",
                form_name(p.form).replace(' ', "-"),
                escape(&p.title),
                form_name(p.form),
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
