//! skillbook compiles Claude Code plugin content (agents, skills, pattern files) into a compiled plugin, a check
//! report and, in later stages, a documentation site and token-budgeted prompt bundles.
//!
//! The pipeline runs one way: [`load`] reads files, [`parse`] reads their structure, [`expand`] replaces stubs,
//! [`check`] finds problems, [`emit`] makes outputs in memory and [`write`] puts them on disk. [`driver`] runs it.

pub mod check;
pub mod config;
pub mod diagnostic;
pub mod driver;
pub mod emit;
pub mod engine;
pub mod expand;
pub mod frontmatter;
pub mod highlight;
pub mod links;
pub mod lint;
pub mod load;
pub mod memory;
pub mod parse;
pub mod scaffold;
pub mod serve;
pub mod timing;
pub mod tokenize;
pub mod watch;
pub mod write;

/// The process exit codes: 0 clean or warnings only, 1 content errors, 2 usage or I/O failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    ContentErrors = 1,
    Failure = 2,
}
