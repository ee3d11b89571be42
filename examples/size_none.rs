//! Binary-size probe: the same program without a tokenizer, the baseline (see bench/tokenizers.sh).
fn main() {
    let text = std::env::args().nth(1).unwrap_or_default();
    println!("{}", text.split_whitespace().count());
}
