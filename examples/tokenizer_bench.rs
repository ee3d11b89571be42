//! Compares bpe-openai (what skillbook uses) with tiktoken-rs on the same text: agreement, start-up and throughput.
//!
//! `cargo run --release --example tokenizer_bench -- [startup-bpe|startup-tiktoken|throughput]`
//! Start-up is timed per process with hyperfine (`bench/tokenizers.sh`); throughput is timed here, median of runs.

use std::time::Instant;

fn corpus() -> String {
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("content")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .expect("run from the repository root")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "throughput".into());
    match mode.as_str() {
        "startup-bpe" => println!("{}", bpe_openai::o200k_base().count("hello world")),
        "startup-tiktoken" => println!(
            "{}",
            tiktoken_rs::o200k_base()
                .unwrap()
                .encode_ordinary("hello world")
                .len()
        ),
        _ => {
            let text = corpus();
            let mb = text.len() as f64 / 1e6;
            let bpe = bpe_openai::o200k_base();
            let tik = tiktoken_rs::o200k_base().unwrap();
            let a = bpe.count(text.as_str());
            let b = tik.encode_ordinary(&text).len();
            let c1 = bpe_openai::cl100k_base().count(text.as_str());
            let c2 = tiktoken_rs::cl100k_base()
                .unwrap()
                .encode_ordinary(&text)
                .len();
            println!(
                "text: {:.2} MB; o200k bpe-openai {a} / tiktoken-rs {b}; cl100k {c1} / {c2}",
                mb
            );
            assert_eq!((a, c1), (b, c2), "the two tokenizers disagree");
            let runs = 15;
            let time = |f: &dyn Fn() -> usize| {
                median(
                    (0..runs)
                        .map(|_| {
                            let t = Instant::now();
                            std::hint::black_box(f());
                            t.elapsed().as_secs_f64()
                        })
                        .collect(),
                )
            };
            let t_bpe = time(&|| bpe.count(text.as_str()));
            let t_tik = time(&|| tik.encode_ordinary(&text).len());
            println!("o200k count, median of {runs}: bpe-openai {:.1} ms ({:.1} MB/s); tiktoken-rs {:.1} ms ({:.1} MB/s)",
                t_bpe * 1e3, mb / t_bpe, t_tik * 1e3, mb / t_tik);
        }
    }
}
