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

/// The report as pretty JSON, ending in a newline.
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
    s.push('\n');
    s
}
