//! Emit: turns the checked model into output files and printed reports.

pub mod bundle;
pub mod plugin;
pub mod report;
pub mod sarif;
pub mod site;
