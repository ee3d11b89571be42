//! Build script: writes the o200k vocabulary that `bpe-openai` compiles in as the tables `src/tokenize/o200k.rs`
//! counts from, read in place (`bpe-openai` decodes its MessagePack copy at every start, 0.35 G instructions; a
//! bincode copy of what counting reads still took 0.07 G and 34 MB of fresh pages).
//!
//! Counting (bpe's backtracking encoder) reads the token boundaries, a longest-match search, the split table, the
//! pair table and the next-prefix table. Each is written as little-endian 32-bit words: the boundaries, the token
//! bytes, the split and next-prefix tables as they are; the pair table as an open-addressing hash table; and in place
//! of bpe's longest-match automaton, a table of every prefix of every token by hash (`prefix_table`). The hashes are
//! in `src/tokenize/o200k_hash.rs`, which both sides include. Also written: an empty vocabulary, for bpe-openai's
//! pre-tokenizer, which needs one. The test `the_re_encoded_o200k_counts_as_bpe_openai_does` and the property tests of
//! `tokenize::o200k` compare counts and tokens with `bpe-openai`'s own.

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

include!("src/tokenize/o200k_hash.rs");

/// `words` as little-endian bytes.
fn le(words: impl IntoIterator<Item = u32>) -> Vec<u8> {
    words.into_iter().flat_map(u32::to_le_bytes).collect()
}

/// The smallest power of two at least `n` times `factor`.
fn slots_for(n: usize, factor: usize) -> usize {
    (n * factor).next_power_of_two()
}

/// The pair table: open addressing with linear probing, `[first, second, merged]` per slot, `first == EMPTY` when
/// free; at most half full.
fn pair_table(pairs: &[((u32, u32), u32)]) -> Vec<u32> {
    let slots = slots_for(pairs.len(), 2);
    let mut table = vec![EMPTY; slots * 3];
    for &((a, b), v) in pairs {
        let mut s = pair_slot(a, b, slots - 1);
        while table[s * 3] != EMPTY {
            s = (s + 1) & (slots - 1);
        }
        table[s * 3..s * 3 + 3].copy_from_slice(&[a, b, v]);
    }
    table
}

/// The prefix table: every prefix of every token (a token itself: its id; a proper prefix only: `PREFIX_ONLY`), by
/// its FNV-1a hash, `[tag, value]` per slot, `value == EMPTY` when free; at most half full. Only the tags are kept,
/// not the prefixes, so a seed is chosen under which no key's probe sequence, from its home slot to its own slot,
/// passes another key with its tag: then a key of the table is always found at its own entry, and a lookup that
/// meets its tag elsewhere is for a text that is not a key (the reader checks a token's bytes; see `o200k.rs`).
// std's map, whose seed changes with every run: its entries are sorted before anything is made of them.
#[allow(clippy::disallowed_types)]
fn prefix_table(all_tokens: &[u8], starts: &[u32]) -> (Vec<u32>, u64) {
    let mut keys: std::collections::HashMap<u64, (Vec<u8>, u32)> = std::collections::HashMap::new();
    for t in 0..starts.len() - 1 {
        let bytes = &all_tokens[starts[t] as usize..starts[t + 1] as usize];
        let mut h = PREFIX_START;
        for (i, &b) in bytes.iter().enumerate() {
            h = prefix_step(h, b);
            let entry = keys
                .entry(h)
                .or_insert_with(|| (bytes[..=i].to_vec(), PREFIX_ONLY));
            assert_eq!(
                entry.0,
                bytes[..=i],
                "two token prefixes with one 64-bit hash"
            );
            if i + 1 == bytes.len() {
                assert_eq!(entry.1, PREFIX_ONLY, "a token listed twice");
                entry.1 = t as u32;
            }
        }
    }
    let mut keys: Vec<(u64, u32)> = keys.into_iter().map(|(h, (_, v))| (h, v)).collect();
    keys.sort_unstable();
    let slots = slots_for(keys.len(), 2);
    let mask = slots - 1;
    'seeds: for seed in 0u64.. {
        let mut table = vec![EMPTY; slots * 2];
        for &(h, v) in &keys {
            let (home, tag) = prefix_slot_tag(h, seed, mask);
            let mut s = home;
            while table[s * 2 + 1] != EMPTY {
                if table[s * 2] == tag {
                    continue 'seeds;
                }
                s = (s + 1) & mask;
            }
            table[s * 2] = tag;
            table[s * 2 + 1] = v;
        }
        // A key's way from its home slot to its own crossed only slots taken before it, so no key placed later
        // lands on it: each key is still the first entry with its tag on its way.
        return (table, seed);
    }
    unreachable!("a seed is found")
}

fn main() {
    let full =
        bincode::serialize(&bpe_openai::o200k_base().bpe).expect("the vocabulary serializes");
    let v: Vocabulary = bincode::deserialize(&full).expect("bincode reads back what it wrote");
    assert!(
        bincode::serialize(&v).expect("serializes") == full,
        "the mirror of BytePairEncoding is out of date"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes).expect("OUT_DIR is writable")
    };
    write("o200k.bytes", &v.all_tokens);
    write("o200k.starts", &le(v.token_starts.iter().copied()));
    write(
        "o200k.splits",
        &le(v.split_table.iter().flat_map(|&(a, b)| [a, b])),
    );
    write("o200k.next", &le(v.next_prefix_match.iter().copied()));
    write("o200k.pairs", &le(pair_table(&v.pair_lookup)));
    let (prefixes, seed) = prefix_table(&v.all_tokens, &v.token_starts);
    write("o200k.prefixes", &le(prefixes));
    write(
        "o200k_seed.rs",
        format!("/// The prefix table's seed (`build.rs`).\nconst PREFIX_SEED: u64 = {seed};\n")
            .as_bytes(),
    );
    // A vocabulary of no tokens, for bpe-openai's pre-tokenizer, which comes with one (`tokenize::o200k`).
    let empty_automaton = daachorse::DoubleArrayAhoCorasick::<u32>::new([[0u8]])
        .expect("an automaton of one pattern")
        .serialize();
    let empty = Vocabulary {
        all_tokens: Vec::new(),
        token_starts: vec![0],
        bytes_hash_to_token: Vec::new(),
        split_table: Vec::new(),
        pair_lookup: Vec::new(),
        longest_searcher: empty_automaton.clone(),
        overlapping_searcher: empty_automaton.clone(),
        overlapping_searcher_rev: empty_automaton,
        next_prefix_match: Vec::new(),
        hash_factor: v.hash_factor,
    };
    write(
        "empty.bincode",
        &bincode::serialize(&empty).expect("the vocabulary serializes"),
    );
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tokenize/o200k_hash.rs");
}
