//! The engine on its own, in one process and without the watcher's wait for quiet: a first build of a content root
//! into a temporary output, then saves of one file again and again, each followed by the same build the watch loop
//! runs (the site's pages first, committed, then the rest: `Engine::defer`). Prints where each build's time went and
//! what it redid. Benchmark only: `bench/watch.sh` runs it.
//!
//! ```text
//! cargo run --release --example incremental -- ROOT FILE [--runs 5]
//! ```

use skillbook::engine::{Engine, Outcome, Plan};
use skillbook::{config, watch};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, outcome: &Outcome) -> Result<Duration, String> {
    match outcome {
        Outcome::Built(b) => {
            println!(
                "{what}: {:.0} ms ({}); {}; wrote {} of {} files",
                ms(b.elapsed),
                b.timings,
                watch::describe_stats(&b.stats),
                b.written,
                b.files
            );
            Ok(b.elapsed)
        }
        Outcome::Unchanged(t) => {
            println!("{what}: nothing to rebuild ({:.0} ms)", ms(*t));
            Ok(*t)
        }
        Outcome::Failed(f) => Err(format!("{what}: the build failed:\n{}", f.text)),
    }
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
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut engine = Engine::new(Some(root.clone()), tmp.path().join("out"))
        .background_cleanup(true)
        .defer(true);
    report("cold", &engine.build(&Plan::everything()))?;
    let plan = Plan {
        content: [rel].into(),
        ..Plan::default()
    };
    report("saved unchanged", &engine.build(&plan))?;
    let mut totals = Vec::new();
    let mut firsts = Vec::new();
    let result = (|| {
        for i in 0..runs {
            std::fs::write(
                &path,
                format!("{original}\nEdited by the benchmark, save {i}.\n"),
            )
            .map_err(|e| e.to_string())?;
            let first = report(&format!("save {i}"), &engine.build(&plan))?;
            match engine.finish() {
                Some(rest) => {
                    firsts.push(first);
                    totals.push(report(&format!("save {i}, the rest"), &rest)?);
                }
                None => totals.push(first),
            }
        }
        Ok::<(), String>(())
    })();
    let _ = std::fs::write(&path, &original);
    result?;
    totals.sort();
    firsts.sort();
    if !firsts.is_empty() {
        println!(
            "median per save until the pages are in: {:.0} ms",
            ms(firsts[firsts.len() / 2])
        );
    }
    if !totals.is_empty() {
        println!(
            "median build per save: {:.0} ms",
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
