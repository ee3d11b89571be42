//! The watch loop's incremental engine on its own, without the site and without writing: fills the caches from a
//! content root, then edits one file again and again and times reloading (only that file is read and parsed),
//! checking, and expanding and bundling (only the agents whose inputs changed). Shows what a save costs apart from
//! mdBook's whole-site render. Benchmark only: `bench/watch.sh` runs it.
//!
//! ```text
//! cargo run --release --example incremental -- ROOT FILE [--runs 5]
//! ```

use indicatif::ProgressBar;
use skillbook::cache::Cache;
use skillbook::config;
use skillbook::driver::{self, Compiled};
use skillbook::emit::bundle::{Bundler, Layout, Templates};
use skillbook::write::OutputTree;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Loads through the cache, then expands and bundles through it; returns (compile, emit) times and the output size.
fn round(
    root: &Path,
    cache: &mut Cache,
    changed: Option<&Path>,
) -> Result<(Duration, Duration, usize), String> {
    let config = config::resolve(Some(root))?;
    if let Some(rel) = changed {
        cache.invalidate([rel]);
    }
    cache.clear_stats();
    let t = Instant::now();
    let compiled: Compiled = driver::compile_with(config, &ProgressBar::hidden(), Some(cache))
        .map_err(|e| e.to_string())?;
    let compile = t.elapsed();
    if compiled.report.summary.errors > 0 {
        return Err(format!(
            "{} errors in the content",
            compiled.report.summary.errors
        ));
    }
    let t = Instant::now();
    let mut tree = OutputTree::new();
    cache.begin_emit(&compiled.config);
    cache.plugin(&compiled.model, "plugin/", &mut tree);
    let templates = Templates::new(&compiled.config.templates)?;
    let bundler = Bundler::new(
        &compiled.model,
        &templates,
        compiled.config.tokenizer,
        Layout::Markdown,
    );
    let budgets: Vec<usize> = compiled
        .config
        .budgets
        .iter()
        .map(|&b| b as usize)
        .collect();
    cache.bundles(&bundler, &compiled.model, &budgets, &mut tree);
    cache.end_emit();
    Ok((compile, t.elapsed(), tree.len()))
}

fn run() -> Result<(), String> {
    let mut pos = Vec::new();
    let mut runs = 5;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--runs" {
            runs = it.next().and_then(|v| v.parse().ok()).ok_or("--runs N")?;
        } else {
            pos.push(a);
        }
    }
    let [root, file] =
        <[String; 2]>::try_from(pos).map_err(|_| "usage: incremental ROOT FILE [--runs N]")?;
    let root = PathBuf::from(root);
    let config = config::resolve(Some(&root))?;
    let path = root.join(&file);
    let rel = path
        .strip_prefix(&config.content_root)
        .map_err(|_| format!("{file} is not under the content root"))?
        .to_path_buf();
    let original =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cache = Cache::new();
    let (c, e, n) = round(&root, &mut cache, None)?;
    println!(
        "cold: load+check {:.0} ms, expand+bundle {:.0} ms, {n} files",
        ms(c),
        ms(e)
    );
    let (c, e, _) = round(&root, &mut cache, Some(&rel))?;
    println!(
        "saved unchanged: load+check {:.0} ms, expand+bundle {:.0} ms",
        ms(c),
        ms(e)
    );
    let mut totals = Vec::new();
    let result = (|| {
        for i in 0..runs {
            std::fs::write(
                &path,
                format!("{original}\nEdited by the benchmark, save {i}.\n"),
            )
            .map_err(|e| e.to_string())?;
            let (c, e, _) = round(&root, &mut cache, Some(&rel))?;
            let s = cache.stats();
            println!(
                "save {i}: load+check {:.0} ms, expand+bundle {:.0} ms; read {}, parsed {}, expanded {} agents, bundled {} agents",
                ms(c),
                ms(e),
                s.read.len(),
                s.parsed.len(),
                s.expanded.len(),
                s.bundled.len()
            );
            totals.push(c + e);
        }
        Ok::<(), String>(())
    })();
    let _ = std::fs::write(&path, &original);
    result?;
    totals.sort();
    if !totals.is_empty() {
        println!(
            "median load+check+expand+bundle per save: {:.0} ms",
            ms(totals[totals.len() / 2])
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incremental: {e}");
            ExitCode::FAILURE
        }
    }
}
