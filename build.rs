//! Build script: writes the o200k vocabulary that `bpe-openai` compiles in as bincode, trimmed to what counting reads
//! (`src/tokenize.rs` loads it). `bpe-openai` decodes its MessagePack copy at every start, 0.35 G instructions; this
//! decodes in about a third of that.
//!
//! Counting (`BytePairEncoding::count` and `encode_via_backtracking`, the backtracking encoder) reads the token
//! starts, the longest-match automaton, the split table, the pair table and the next-prefix table. It never reads
//! the token bytes, their hash table or the two overlapping-match automata (those are for decoding and the appendable,
//! prependable and interval encoders, which skillbook does not use): they are written empty (an automaton of one
//! one-byte pattern), which makes the vocabulary 3x smaller to decode and to hold. The test
//! `the_re_encoded_o200k_counts_as_bpe_openai_does` compares counts and tokens with `bpe-openai`'s own.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `bpe::byte_pair_encoding::BytePairEncoding` 0.2 field by field, as bincode writes it: a map is its length and its
/// entries (as a list of pairs), bytes are their length and the bytes (as a list of `u8`).
#[derive(Serialize, Deserialize)]
struct Vocabulary {
    all_tokens: Vec<u8>,
    token_starts: Vec<u32>,
    bytes_hash_to_token: Vec<(u32, u32)>,
    split_table: Vec<(u32, u32)>,
    pair_lookup: Vec<((u32, u32), u32)>,
    longest_searcher: Vec<u8>,
    overlapping_searcher: Vec<u8>,
    overlapping_searcher_rev: Vec<u8>,
    next_prefix_match: Vec<u32>,
    hash_factor: u64,
}

fn main() {
    let full =
        bincode::serialize(&bpe_openai::o200k_base().bpe).expect("the vocabulary serializes");
    let mut v: Vocabulary = bincode::deserialize(&full).expect("bincode reads back what it wrote");
    assert!(
        bincode::serialize(&v).expect("serializes") == full,
        "the mirror of BytePairEncoding is out of date"
    );
    let empty = daachorse::DoubleArrayAhoCorasick::<u32>::new([[0u8]])
        .expect("an automaton of one pattern")
        .serialize();
    v.all_tokens = Vec::new();
    v.bytes_hash_to_token = Vec::new();
    v.overlapping_searcher = empty.clone();
    v.overlapping_searcher_rev = empty;
    let bytes = bincode::serialize(&v).expect("the vocabulary serializes");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("o200k.bincode"), bytes).expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
}
