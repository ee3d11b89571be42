//! Binary-size probe: a program that counts o200k tokens with bpe-openai (see bench/tokenizers.sh).
fn main() {
    let text = std::env::args().nth(1).unwrap_or_default();
    println!("{}", bpe_openai::o200k_base().count(text.as_str()));
}
