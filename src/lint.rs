//! Lint: the plugin-level checks `check` runs besides coverage: files that would clash in the compiled plugin,
//! what Claude Code's own validator (`claude plugin validate`) reports on manifests and frontmatter, relative
//! markdown links that lead to no file, and unknown tool names.

use crate::diagnostic::{Diagnostic, Severity, Source, WithHelp};
use crate::parse::Model;
use std::collections::BTreeMap;

/// Runs every lint of this module on the model.
pub fn lint(model: &Model, diags: &mut Vec<Diagnostic>) {
    clashes(model, diags);
}

/// Two source files that the compiled plugin would write to one path (a skill's own `references/x.md` and its
/// pattern `patterns/x.md`, say): an error at the second, naming the first, so that nothing is silently lost.
fn clashes(model: &Model, diags: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (dest, source) in crate::emit::plugin::layout(model) {
        let Some(first) = seen.get(&dest) else {
            seen.insert(dest, source);
            continue;
        };
        let Some(second) = source else { continue };
        let first = first.as_deref().unwrap_or("the manifest skillbook writes");
        let src = Source::new(&second, "");
        diags.push(
            src.diag_at(
                1,
                1,
                Severity::Error,
                "output-clash",
                format!("this file and `{first}` would both be written to `{dest}` in the compiled plugin"),
            )
            .help("rename one of them: a pattern `patterns/x.md` becomes `references/x.md`, next to the skill's own references"),
        );
    }
}
