//! The site benchmark's helper: writes skillbook's generated site as a plain mdBook project, or builds such a project
//! with mdBook, so that skillbook's site build can be compared with mdBook's on the same markdown.
//!
//! ```text
//! cargo run --release --example site_book -- dump ROOT OUT_DIR   # ROOT as for `skillbook build`; OUT_DIR is replaced
//! cargo run --release --example site_book -- mdbook BOOK_DIR     # what `mdbook build BOOK_DIR` does, via mdbook-driver
//! ```

use skillbook::emit::site::{self, SiteInput};
use std::path::Path;
use std::process::ExitCode;

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd, root, out] if cmd == "dump" => {
            let config = skillbook::config::resolve(Some(Path::new(root)))?;
            let compiled = skillbook::driver::compile(config, &indicatif::ProgressBar::hidden())
                .map_err(|e| e.to_string())?;
            let out = Path::new(out);
            if out.exists() {
                std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
            }
            std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
            site::write_book(
                &SiteInput {
                    model: &compiled.model,
                    report: &compiled.report,
                    book: compiled.config.book.as_ref(),
                    bundles: None,
                },
                out,
            )
        }
        [cmd, dir] if cmd == "mdbook" => mdbook_driver::MDBook::load(dir)
            .and_then(|md| md.build())
            .map_err(|e| format!("{e:#}")),
        _ => Err("usage: site_book dump ROOT OUT_DIR | site_book mdbook BOOK_DIR".to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("site_book: {e}");
            ExitCode::from(2)
        }
    }
}
