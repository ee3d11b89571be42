//! The check report: human diagnostics with source lines and carets, or one JSON document.

use crate::check::Report;
use crate::diagnostic::{render_human, summary_line, Style};

/// How a diagnostic's path is shown: joined to the content root as the user named it.
pub fn display_path(root: &str, rel: &str) -> String {
    if root.is_empty() || root == "." {
        rel.to_string()
    } else {
        format!("{}/{}", root.trim_end_matches('/'), rel)
    }
}

/// Every diagnostic, then the one-line summary.
pub fn human(report: &Report, root: &str, style: Style) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        out.push_str(&render_human(d, &display_path(root, &d.path), style));
    }
    let s = &report.summary;
    out.push_str(&format!(
        "{}; {} of {} expertise items covered\n",
        summary_line(&report.diagnostics, s.files),
        s.covered_items,
        s.items
    ));
    out
}

/// The report as pretty JSON, ending in a newline, naming the content root its paths are relative to (`root`, as
/// the user named it, right after `schema_version`).
pub fn json(report: &Report, root: &str) -> String {
    let mut doc = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(report) {
        for (k, v) in fields {
            doc.insert(k.clone(), v);
            if k == "schema_version" {
                doc.insert("root".into(), root.into());
            }
        }
    }
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
