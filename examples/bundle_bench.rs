//! Times the bundle stage alone: every agent of a content root at the default four budgets (o200k, markdown).
//!
//! `cargo run --release --example bundle_bench -- /tmp/corpus [runs]` prints the median of the runs, the number of
//! bundles and their total size. Loading, parsing and checking happen once, before the timed runs.

use skillbook::emit::bundle::{emit, Bundler, Layout, Templates};
use skillbook::tokenize::Tokenizer;
use std::time::Instant;

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "content".into());
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut diags = Vec::new();
    let ws = skillbook::load::load(std::path::Path::new(&root), &mut diags).expect("content root");
    let model = skillbook::parse::parse(ws, &Default::default(), &mut diags);
    let templates = Templates::builtin();
    let budgets = [2000, 4000, 8000, 16000];
    let mut times = Vec::new();
    let mut summary = (0, 0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let bundler = Bundler::new(&model, &templates, Tokenizer::O200k, Layout::Markdown);
        let mut out = skillbook::write::OutputTree::new();
        let (_, failed) = emit(&bundler, &budgets, &mut out);
        times.push(t.elapsed().as_secs_f64());
        let md = out.keys().filter(|k| k.ends_with(".md")).count();
        summary = (md, out.values().map(Vec::len).sum::<usize>(), failed.len());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{root}: {} bundles ({} bytes with manifests, {} too small) at budgets {budgets:?}; median of {runs}: {:.2} s",
        summary.0,
        summary.1,
        summary.2,
        times[runs / 2]
    );
}
