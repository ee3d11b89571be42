//! Binary-size probe: a program that counts o200k tokens with tiktoken-rs (see bench/tokenizers.sh).
fn main() {
    let text = std::env::args().nth(1).unwrap_or_default();
    println!(
        "{}",
        tiktoken_rs::o200k_base()
            .unwrap()
            .encode_ordinary(&text)
            .len()
    );
}
