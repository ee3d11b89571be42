//! Configuration: the `[preprocessor.skillbook]` table of a book.toml, and where the content root is.

use crate::tokenize::Tokenizer;
use clap::ValueEnum;
use regex::Regex;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The default token budgets of bundles.
pub const DEFAULT_BUDGETS: &[u32] = &[2000, 4000, 8000, 16000];

/// skillbook's settings, as written under `[preprocessor.skillbook]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SkillbookTable {
    /// The content root, relative to book.toml.
    pub content: Option<PathBuf>,
    /// The regex that finds stub paragraphs.
    pub stub_pattern: Option<String>,
    /// Token budgets of bundles.
    pub budgets: Option<Vec<u32>>,
    /// The tokenizer `build` counts bundles with: o200k (default), cl100k or claude.
    pub tokenizer: Option<String>,
    /// Left for mdBook: the command it would run for this preprocessor.
    pub command: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory holding book.toml, when there is one.
    pub book_dir: Option<PathBuf>,
    pub content_root: PathBuf,
    pub stub: Regex,
    pub budgets: Vec<u32>,
    pub tokenizer: Tokenizer,
    /// Bundle templates as (format, source, origin): overrides from `theme/bundle/` next to book.toml, else built in.
    pub templates: Vec<(String, String, String)>,
}

/// Finds the content root and settings: ROOT when given (its own book.toml, if any, may point into it), else the
/// content named by `./book.toml`.
pub fn resolve(root: Option<&Path>) -> Result<Config, String> {
    let (dir, required) = match root {
        Some(r) => (r.to_path_buf(), false),
        None => (PathBuf::from("."), true),
    };
    let book = dir.join("book.toml");
    if !book.is_file() {
        if required {
            return Err("no content root: give ROOT, or run where a book.toml has a [preprocessor.skillbook] table".into());
        }
        return from_table(None, dir, SkillbookTable::default());
    }
    let text = std::fs::read_to_string(&book).map_err(|e| format!("{}: {e}", book.display()))?;
    let value: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", book.display()))?;
    let table = value
        .get("preprocessor")
        .and_then(|p| p.get("skillbook"))
        .cloned();
    match table {
        Some(t) => {
            let table: SkillbookTable = t
                .try_into()
                .map_err(|e| format!("{}: [preprocessor.skillbook]: {e}", book.display()))?;
            let content = dir.join(
                table
                    .content
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("content")),
            );
            from_table(Some(dir), content, table)
        }
        None if required => Err(format!(
            "{} has no [preprocessor.skillbook] table naming the content",
            book.display()
        )),
        None => from_table(None, dir, SkillbookTable::default()),
    }
}

fn from_table(
    book_dir: Option<PathBuf>,
    content_root: PathBuf,
    t: SkillbookTable,
) -> Result<Config, String> {
    let pattern = t
        .stub_pattern
        .as_deref()
        .unwrap_or(crate::parse::DEFAULT_STUB_PATTERN);
    let stub =
        Regex::new(pattern).map_err(|e| format!("stub-pattern is not a valid regex: {e}"))?;
    let budgets = t.budgets.unwrap_or_else(|| DEFAULT_BUDGETS.to_vec());
    if budgets.is_empty() || budgets.contains(&0) {
        return Err("budgets must be a non-empty list of positive token counts".into());
    }
    let tokenizer = match t.tokenizer.as_deref() {
        None => Tokenizer::default(),
        Some(name) => Tokenizer::from_str(name, true)
            .map_err(|_| format!("tokenizer `{name}` is not one of o200k, cl100k, claude"))?,
    };
    let mut templates = Vec::new();
    for (name, builtin) in crate::emit::bundle::BUILTIN_TEMPLATES {
        let path = book_dir
            .as_ref()
            .map(|d| d.join("theme/bundle").join(format!("{name}.hbs")));
        match path.filter(|p| p.is_file()) {
            Some(p) => {
                let source =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                templates.push((name.to_string(), source, clean(&p).display().to_string()));
            }
            None => templates.push((
                name.to_string(),
                builtin.to_string(),
                format!("(built-in {name} template)"),
            )),
        }
    }
    Ok(Config {
        book_dir,
        content_root: clean(&content_root),
        stub,
        budgets,
        tokenizer,
        templates,
    })
}

/// Drops `./` components so displayed paths read naturally.
fn clean(p: &Path) -> PathBuf {
    let c: PathBuf = p
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if c.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        c
    }
}
