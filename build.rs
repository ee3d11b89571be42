//! Build script: re-encodes the o200k vocabulary that `bpe-openai` compiles in (MessagePack, 0.35 G instructions to
//! decode at every start) as bincode, which decodes in half of that (`src/tokenize.rs` loads it).

use std::path::PathBuf;

fn main() {
    let bpe = &bpe_openai::o200k_base().bpe;
    let bytes = bincode::serialize(bpe).expect("the vocabulary serializes");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("o200k.bincode"), bytes).expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
}
