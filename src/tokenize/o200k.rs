//! o200k's byte-pair encoding, counted from tables read in place: nothing is decoded at start-up.
//!
//! The encoder is bpe's backtracking encoder (`bpe::BytePairEncoding::count`, which bpe-openai's counts use): take
//! the longest token that starts the text, step back to shorter ones where the pair with the token before is not one
//! BPE would make, and back out a token when none fits. It reads four things of the vocabulary, each written by
//! `build.rs` as a table of little-endian words that this module indexes where the binary holds it:
//!
//! - the token boundaries (`token_starts`) and bytes, for a token's length and, to check a match, its bytes;
//! - the split table (the two tokens each token was merged from) and the next-prefix table (the longest token that
//!   is a proper prefix of each token);
//! - the pair table: which token BPE makes of two adjacent tokens, open addressing by [`pair_slot`];
//! - the prefix table, in place of bpe's longest-match automaton: every prefix of every token by its FNV-1a hash,
//!   holding the token's id when the prefix is a token. The longest token starting a text is found by hashing the
//!   text one byte longer at a time until the prefix is none of a token's (see [`next_match`]).
//!
//! bpe-openai decodes its vocabulary into hash maps and an automaton at every start: 0.07 G instructions and 34 MB
//! of fresh pages for a build of the shipped content, however little it counts. Here a count touches only the pages
//! of the tables it reads. The test `the_re_encoded_o200k_counts_as_bpe_openai_does` and the property tests below
//! compare counts and tokens with bpe-openai's.

include!("o200k_hash.rs");
include!(concat!(env!("OUT_DIR"), "/o200k_seed.rs"));

/// Every token's bytes, one after the other.
static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.bytes"));
/// Where each token's bytes start in [`BYTES`], and the end of the last.
static STARTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.starts"));
/// The two tokens each token was merged from (a byte's token: itself twice).
static SPLITS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.splits"));
/// The longest token that is a proper prefix of each token, or `u32::MAX`.
static NEXT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.next"));
/// `[first, second, merged]` per slot.
static PAIRS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.pairs"));
/// `[tag, token or PREFIX_ONLY]` per slot.
static PREFIXES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.prefixes"));

/// The `i`th little-endian word of `table`.
#[inline]
fn word(table: &[u8], i: usize) -> u32 {
    let b = &table[i * 4..i * 4 + 4];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The number of tokens of the vocabulary.
pub fn tokens() -> usize {
    STARTS.len() / 4 - 1
}

fn token_range(token: u32) -> std::ops::Range<usize> {
    word(STARTS, token as usize) as usize..word(STARTS, token as usize + 1) as usize
}

/// A token's bytes.
pub fn token_bytes(token: u32) -> &'static [u8] {
    &BYTES[token_range(token)]
}

fn token_len(token: u32) -> usize {
    token_range(token).len()
}

/// The longest token that is a proper prefix of `token`.
fn next_prefix(token: u32) -> Option<u32> {
    let t = word(NEXT, token as usize);
    (t != u32::MAX).then_some(t)
}

fn split(token: u32) -> (u32, u32) {
    (
        word(SPLITS, token as usize * 2),
        word(SPLITS, token as usize * 2 + 1),
    )
}

/// The token BPE makes of `a` followed by `b`, if any.
fn pair(a: u32, b: u32) -> Option<u32> {
    let mask = PAIRS.len() / 12 - 1;
    let mut s = pair_slot(a, b, mask);
    loop {
        let first = word(PAIRS, s * 3);
        if first == EMPTY {
            return None;
        }
        if first == a && word(PAIRS, s * 3 + 1) == b {
            return Some(word(PAIRS, s * 3 + 2));
        }
        s = (s + 1) & mask;
    }
}

/// What the prefix table says of a text.
enum Prefix {
    /// No token starts with it.
    None,
    /// Some token starts with it; it is no token itself.
    Some,
    /// It is this token.
    Token(u32),
}

/// Looks `text` up by its hash `h`. `build.rs` chose the seed so that a key is the first entry with its tag on its
/// way from its home slot: an entry with the tag that is a token whose bytes differ means `text` is no key. An entry
/// with the tag that is a prefix only is taken as `text`'s without checking (its bytes are not kept): were it another
/// text's, by a 32-bit tag, the caller would hash one more byte and stop there, and a token is only ever taken after
/// its bytes are compared.
fn lookup(h: u64, text: &[u8]) -> Prefix {
    let mask = PREFIXES.len() / 8 - 1;
    let (mut s, tag) = prefix_slot_tag(h, PREFIX_SEED, mask);
    loop {
        let value = word(PREFIXES, s * 2 + 1);
        if value == EMPTY {
            return Prefix::None;
        }
        if word(PREFIXES, s * 2) == tag {
            return match value {
                PREFIX_ONLY => Prefix::Some,
                t if token_bytes(t) == text => Prefix::Token(t),
                _ => Prefix::None,
            };
        }
        s = (s + 1) & mask;
    }
}

/// The longest token that starts `text` (bpe's leftmost-longest match: every byte is a token, so the leftmost match
/// starts at 0). `None` only for empty text.
fn next_match(text: &[u8]) -> Option<u32> {
    let mut h = PREFIX_START;
    let mut best = None;
    for (i, &b) in text.iter().enumerate() {
        h = prefix_step(h, b);
        match lookup(h, &text[..=i]) {
            Prefix::None => break,
            Prefix::Some => {}
            Prefix::Token(t) => best = Some(t),
        }
    }
    best
}

/// Whether BPE, merging `token1` and `token2`'s bytes, would keep the two apart: bpe's `is_valid_token_pair`.
fn is_valid_token_pair(mut token1: u32, mut token2: u32) -> bool {
    // The largest token that can still be chosen across the split point.
    let mut limit = u32::MAX;
    loop {
        // Would BPE choose a different token across the split point?
        if pair(token1, token2).is_some_and(|combined| combined < limit) {
            return false;
        }
        // Undo a merge: of the later-made token.
        if token1 > token2 {
            limit = token1;
            token1 = split(token1).1;
            if token1 == limit {
                limit = token2 + 1;
                token2 = split(token2).0;
                if token2 + 1 == limit {
                    return true;
                }
            }
        } else {
            limit = token2 + 1;
            token2 = split(token2).0;
            if token2 + 1 == limit {
                limit = token1;
                token1 = split(token1).1;
                if token1 == limit {
                    return true;
                }
            }
        }
    }
}

/// Bits, one per byte boundary, all set at first: a boundary is cleared when no encoding of the text before it can
/// be continued from it.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![u64::MAX; n.div_ceil(64)])
    }
    fn is_set(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The tokens of one pre-tokenizer piece (any bytes), by bpe's backtracking encoder.
pub fn encode(text: &[u8]) -> Vec<u32> {
    let mut tokens: Vec<u32> = Vec::with_capacity(text.len() / 3);
    let mut bits = Bits::new(text.len() + 1);
    let mut pos = 0;
    let mut next = next_match(text);
    while let Some(mut token) = next {
        let last = tokens.last().copied();
        loop {
            let end = pos + token_len(token);
            if bits.is_set(end) && last.is_none_or(|l| is_valid_token_pair(l, token)) {
                tokens.push(token);
                pos = end;
                next = next_match(&text[end..]);
                break;
            } else if let Some(shorter) = next_prefix(token) {
                token = shorter;
            } else {
                bits.clear(pos);
                tokens.pop();
                pos -= last.map_or(0, token_len);
                next = last;
                break;
            }
        }
    }
    tokens
}

/// The number of tokens of one pre-tokenizer piece.
pub fn count(text: &[u8]) -> usize {
    encode(text).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn theirs() -> &'static bpe_openai::byte_pair_encoding::BytePairEncoding {
        &bpe_openai::o200k_base().bpe
    }

    #[test]
    fn the_tables_hold_the_vocabulary() {
        let theirs = theirs();
        assert_eq!(tokens(), theirs.num_tokens());
        for t in (0..tokens() as u32).step_by(97) {
            assert_eq!(token_bytes(t), theirs.token_bytes(t), "token {t}");
            // A token is its own longest match.
            assert_eq!(next_match(token_bytes(t)), Some(t), "token {t}");
        }
        assert_eq!(next_match(b""), None);
    }

    /// Text made of what BPE's merges turn on: common words and their pieces, spaces, digits, punctuation,
    /// multi-byte characters (whole and cut).
    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let atom = prop_oneof![
            Just(b" the".to_vec()),
            Just(b"ing".to_vec()),
            Just(b" distributed".to_vec()),
            Just(b"ation".to_vec()),
            Just(b"    ".to_vec()),
            Just(b"\n\n".to_vec()),
            Just(b"12345".to_vec()),
            Just(b"::".to_vec()),
            Just("é日本".as_bytes().to_vec()),
            Just(vec![0xe6]),
            any::<u8>().prop_map(|b| vec![b]),
            "[a-z]{1,6}".prop_map(String::into_bytes),
        ];
        prop::collection::vec(atom, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn counts_and_tokens_are_bpes(text in pieces()) {
            prop_assert_eq!(encode(&text), theirs().encode_via_backtracking(&text));
        }

        #[test]
        fn any_bytes_count_as_bpe_counts(text in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(count(&text), theirs().count(&text));
        }
    }
}
