//! skillbook's integration tests: one binary. Each test copies a fixture from `tests/fixtures/` to a temporary
//! directory, runs the real `skillbook` binary there, and compares what it printed and wrote with the expected
//! files under `tests/expected/`. Run with `SNAPSHOTS=overwrite` to rewrite the expected files after a deliberate
//! change, then review the diff.

mod broken;
mod build;
mod bundle;
mod check;
mod claude;
mod common;
mod content;
mod engine;
mod fuzz;
mod highlight;
mod kill;
mod plugin;
mod properties;
mod repos;
mod sarif;
mod serve_load;
mod site;
mod tokenize;
mod ux;
mod watch;
