//! Tokenizers: exact o200k and cl100k counts with compiled-in vocabularies (bpe-openai), and estimates of Claude's
//! counts that err high: `claude` for the current tokenizer (Claude Opus 4.7 and later), `claude-4.6` for the models
//! before it.

use crate::HashMap;
use bpe_openai::Tokenizer as Bpe;
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};

pub mod o200k;

/// `claude` counts are o200k counts times this factor, rounded up. Calibrated to err high for Claude Opus 4.7 and
/// later: see the README's "Tokenizers" section and `bench/calibrate-claude.sh`.
pub const CLAUDE_FACTOR: f64 = 1.85;

/// `claude-4.6` counts are o200k counts times this factor, rounded up. Calibrated to err high for Claude models up
/// to 4.6: see the README's "Tokenizers" section.
pub const CLAUDE_46_FACTOR: f64 = 1.30;

/// Which tokenizer counts a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// OpenAI's o200k_base, exact.
    O200k,
    /// OpenAI's cl100k_base, exact.
    Cl100k,
    /// An estimate of the count of Claude Opus 4.7 and later models: o200k times a calibrated factor, erring high.
    #[default]
    Claude,
    /// An estimate of the count of Claude models up to 4.6: o200k times a calibrated factor, erring high.
    #[value(name = "claude-4.6")]
    #[serde(rename = "claude-4.6")]
    Claude46,
}

impl Tokenizer {
    /// Every tokenizer, in the order help texts list them.
    pub const ALL: [Tokenizer; 4] = [
        Tokenizer::Claude,
        Tokenizer::Claude46,
        Tokenizer::O200k,
        Tokenizer::Cl100k,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tokenizer::O200k => "o200k",
            Tokenizer::Cl100k => "cl100k",
            Tokenizer::Claude => "claude",
            Tokenizer::Claude46 => "claude-4.6",
        }
    }

    /// The tokenizer of this name.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// True when counts are exact; false for the Claude estimates.
    pub fn exact(self) -> bool {
        self.factor().is_none()
    }

    /// The factor applied to o200k counts, for the estimates.
    pub fn factor(self) -> Option<f64> {
        match self {
            Tokenizer::Claude => Some(CLAUDE_FACTOR),
            Tokenizer::Claude46 => Some(CLAUDE_46_FACTOR),
            _ => None,
        }
    }

    /// Which models an estimate is for.
    pub fn models(self) -> Option<&'static str> {
        match self {
            Tokenizer::Claude => Some("Claude Opus 4.7 and later"),
            Tokenizer::Claude46 => Some("Claude models up to 4.6"),
            _ => None,
        }
    }

    /// Which vocabulary this tokenizer counts with: 0 for o200k (also behind the Claude estimates, which scale its
    /// counts), 1 for cl100k. The decoded vocabularies and the count memos are kept per vocabulary.
    fn vocabulary(self) -> usize {
        usize::from(matches!(self, Tokenizer::Cl100k))
    }

    /// The pre-tokenizer and vocabulary: for o200k, bpe-openai's o200k pre-tokenizer with an empty vocabulary (its
    /// pieces are counted by [`o200k`], which reads its tables in place); cl100k is bpe-openai's own, decoded on first
    /// use from the bytes compiled into the binary, which are then given back to the kernel
    /// ([`crate::memory::release_read_only_data`]): nothing reads them again.
    fn bpe(self) -> &'static Bpe {
        static CELLS: [OnceLock<&'static Bpe>; 2] = [OnceLock::new(), OnceLock::new()];
        const LOADS: [fn() -> &'static Bpe; 2] = [o200k_pre_tokenizer, bpe_openai::cl100k_base];
        let v = self.vocabulary();
        CELLS[v].get_or_init(|| {
            let bpe = LOADS[v]();
            if v == 1 {
                crate::memory::release_read_only_data();
            }
            bpe
        })
    }

    fn memo(self) -> MutexGuard<'static, Memo> {
        static MEMOS: LazyLock<[Mutex<Memo>; 2]> = LazyLock::new(Default::default);
        MEMOS[self.vocabulary()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn scale(self, n: usize) -> usize {
        match self.factor() {
            Some(f) => (n as f64 * f).ceil() as usize,
            None => n,
        }
    }

    /// The exact count of the vocabulary (o200k or cl100k) of one block, remembered.
    fn block_count(self, block: &str) -> usize {
        if let Some(&n) = self.memo().map.get(block) {
            return n;
        }
        let v = self.vocabulary();
        let n = PIECES.with(|pieces| {
            let memo = &mut pieces.borrow_mut()[v];
            // What `Bpe::count` does, with each piece's count remembered.
            if v == 0 {
                // o200k does not normalize; its pre-tokenizer's regex is built only for text that is not all ASCII.
                if block.is_ascii() {
                    return o200k_ascii_pieces(block)
                        .map(|piece| memo.piece(piece, o200k::count))
                        .sum();
                }
                return self
                    .bpe()
                    .split(block)
                    .map(|piece| memo.piece(piece, o200k::count))
                    .sum();
            }
            let bpe = self.bpe();
            let text = bpe.normalize(block);
            bpe.split(text.as_str())
                .map(|piece| memo.piece(piece, |p| bpe.bpe.count(p)))
                .sum()
        });
        self.memo().insert(block, n, MEMO_BYTES);
        n
    }

    /// The vocabulary's exact count of `text`, block by block, stopping once it passes `limit`.
    fn raw_count(self, text: &str, limit: usize) -> Option<usize> {
        let mut sum = 0;
        for block in blocks(text) {
            sum += self.block_count(block);
            if sum > limit {
                return None;
            }
        }
        Some(sum)
    }

    /// The number of tokens in `text`.
    pub fn count(self, text: &str) -> usize {
        self.scale(self.raw_count(text, usize::MAX).unwrap_or(usize::MAX))
    }

    /// The number of tokens in `text` if it is at most `limit`, else `None`; stops counting past the limit.
    pub fn count_within(self, text: &str, limit: usize) -> Option<usize> {
        let raw_limit = match self.factor() {
            // Any raw count above this scales to more than `limit`.
            Some(f) => (limit as f64 / f).floor() as usize,
            None => limit,
        };
        let n = self.scale(self.raw_count(text, raw_limit)?);
        (n <= limit).then_some(n)
    }
}

/// Empties the memos of block counts (a build that runs once frees them when its bundles are made).
pub fn forget() {
    for t in [Tokenizer::O200k, Tokenizer::Cl100k] {
        *t.memo() = Memo::default();
    }
    PIECES.with(|p| *p.borrow_mut() = Default::default());
}

/// Counts of text blocks already made, so that a text counted again (a bundle measured at another cutoff, a pattern
/// in another agent's bundle, the same pattern after a save) costs a lookup per block. Bounded: cleared when the
/// blocks it holds pass [`MEMO_BYTES`] (a piece memo: [`PIECE_MEMO_BYTES`]).
#[derive(Default)]
struct Memo {
    map: HashMap<Box<str>, usize>,
    bytes: usize,
}

const MEMO_BYTES: usize = 64 << 20;

/// The most piece text one thread's piece memo holds before it starts again.
const PIECE_MEMO_BYTES: usize = 4 << 20;

impl Memo {
    fn insert(&mut self, block: &str, n: usize, limit: usize) {
        if self.bytes + block.len() > limit {
            self.map.clear();
            self.bytes = 0;
        }
        if self.map.insert(block.into(), n).is_none() {
            self.bytes += block.len();
        }
    }

    /// The count of one pre-tokenizer piece, remembered.
    fn piece(&mut self, piece: &str, count: impl Fn(&[u8]) -> usize) -> usize {
        if let Some(&n) = self.map.get(piece) {
            return n;
        }
        let n = count(piece.as_bytes());
        self.insert(piece, n, PIECE_MEMO_BYTES);
        n
    }
}

thread_local! {
    /// Each thread's counts of pre-tokenizer pieces (words with their leading space, numbers, punctuation runs), by
    /// vocabulary: a block not counted before is mostly pieces counted before, and a lookup costs a fraction of a BPE
    /// encoding (which allocates an encoder per piece).
    static PIECES: std::cell::RefCell<[Memo; 2]> = Default::default();
}

/// Splits `text` where its tokens cannot straddle: after a `\n` that a character other than whitespace or `/`
/// follows. No piece of o200k's or cl100k's pre-tokenizer crosses such a point (a newline ends every piece that
/// holds one, except punctuation runs, which may go on with newlines and `/`), and BPE works within pieces, so the
/// count of the text is the sum of its blocks' counts. `tests::blocks_add_up_to_the_whole` checks this against
/// the whole text's count.
fn blocks(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            // The next line break (one search for the whole line, not a test per byte).
            let Some(at) = memchr::memchr(b'\n', &bytes[i..]).map(|n| i + n) else {
                i = bytes.len();
                break;
            };
            i = at + 1;
            if i < bytes.len() {
                let next = bytes[i];
                // An ASCII byte that is not whitespace or `/`, or the first byte of a multi-byte character that is
                // not whitespace (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
                let cut = if next.is_ascii() {
                    !next.is_ascii_whitespace() && next != b'/' && next != 0x0B
                } else {
                    text[i..].chars().next().is_some_and(|c| !c.is_whitespace())
                };
                if cut {
                    let block = &text[start..i];
                    start = i;
                    return Some(block);
                }
            }
        }
        (start < bytes.len()).then(|| {
            let block = &text[start..];
            start = bytes.len();
            block
        })
    })
}

/// o200k's pre-tokenizer (the patterns in [`o200k_pre_tokenizer`]) on text that is all ASCII, without the regex: the same pieces
/// as `o200k_pre_tokenizer().split(text)` (property test `ascii_pieces_are_the_regex_pieces`), for a fraction of the instructions
/// (the regex search per piece was most of a count). On ASCII text the patterns' classes are: letters `[A-Za-z]`
/// (upper `[A-Z]`, lower `[a-z]`: titlecase, modifier and other letters and marks have no ASCII members), numbers
/// `[0-9]`, white space `[\t\n\x0B\x0C\r ]`, and the contractions' case folding stays within ASCII. Each piece is
/// the leftmost-first match at its start of `pat1|\s+\s|\s+`, the look-ahead pattern giving back its last character.
fn o200k_ascii_pieces(text: &str) -> impl Iterator<Item = &str> {
    let t = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= t.len() {
            return None;
        }
        let end = o200k_ascii_piece_end(t, at);
        let piece = &text[at..end];
        at = end;
        Some(piece)
    })
}

/// The end of the o200k piece that starts at `i` (`i < t.len()`, `t` all ASCII): the patterns in their order.
fn o200k_ascii_piece_end(t: &[u8], i: usize) -> usize {
    let n = t.len();
    let space = |b: u8| matches!(b, b'\t'..=b'\r' | b' ');
    let letter_or_digit = |b: u8| b.is_ascii_alphanumeric();
    let run = |from: usize, f: &dyn Fn(u8) -> bool| {
        from + t[from..].iter().take_while(|&&b| f(b)).count()
    };
    // A contraction `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `p`, if any: where it ends.
    let contraction = |p: usize| -> usize {
        let at = |k: usize| t.get(p + k).map(u8::to_ascii_lowercase);
        if at(0) != Some(b'\'') {
            return p;
        }
        match (at(1), at(2)) {
            (Some(b's' | b't' | b'm' | b'd'), _) => p + 2,
            (Some(b'r' | b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => p + 3,
            _ => p,
        }
    };
    // `[^\r\n\p{L}\p{N}]?` then `[upper]*[lower]+` or `[upper]+[lower]*`, then a contraction. Without the optional
    // character the letters would have to start at `i`, which then is not a letter: taking it is the only way.
    let j = if t[i] != b'\r' && t[i] != b'\n' && !letter_or_digit(t[i]) {
        i + 1
    } else {
        i
    };
    let upper = run(j, &|b| b.is_ascii_uppercase());
    let lower = run(upper, &|b| b.is_ascii_lowercase());
    if lower > upper || upper > j {
        return contraction(lower);
    }
    // `\p{N}{1,3}`.
    if t[i].is_ascii_digit() {
        return i + t[i..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`.
    let j = if t[i] == b' ' { i + 1 } else { i };
    let punct = |b: u8| !space(b) && !letter_or_digit(b);
    if j < n && punct(t[j]) {
        let e = run(j, &punct);
        return run(e, &|b| matches!(b, b'\r' | b'\n' | b'/'));
    }
    // What is left starts with white space: `\s*[\r\n]+` (up to the run's last line break), `\s+$`, `\s+\s` less
    // its last character, `\s+`.
    let e = run(i, &space);
    if let Some(p) = (i..e).rev().find(|&p| t[p] == b'\r' || t[p] == b'\n') {
        return p + 1;
    }
    if e == n || e - i == 1 {
        e
    } else {
        e - 1
    }
}

/// bpe-openai's pre-tokenizer for o200k (`bpe_openai::o200k_base`, version 0.3.2, its patterns copied: the crate does
/// not export them), around an empty vocabulary: only its `split` is used; [`o200k`] counts the pieces.
fn o200k_pre_tokenizer() -> &'static Bpe {
    static O200K: OnceLock<Bpe> = OnceLock::new();
    O200K.get_or_init(|| {
        static EMPTY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/empty.bincode"));
        let bpe = bincode::deserialize(EMPTY).expect("build.rs wrote a valid vocabulary");
        let pat1 = [
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "\\p{N}{1,3}",
            " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
            "\\s*[\\r\\n]+",
            "\\s+$",
        ]
        .join("|");
        let pat2 = "\\s+\\s";
        let pat3 = "\\s+";
        Bpe::new_lookahead(bpe, &[(&pat1, false), (pat2, true), (pat3, false)], false)
            .expect("bpe-openai's o200k patterns compile")
    })
}

/// o200k's tokens of `text`: bpe-openai's o200k pre-tokenizer, then [`o200k::encode`] per piece.
pub fn o200k_encode(text: &str) -> Vec<u32> {
    o200k_pre_tokenizer()
        .split(text)
        .flat_map(|piece| o200k::encode(piece.as_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bpe-openai's own tokenizer of `t`'s vocabulary.
    fn reference(t: Tokenizer) -> &'static Bpe {
        match t.vocabulary() {
            0 => bpe_openai::o200k_base(),
            _ => bpe_openai::cl100k_base(),
        }
    }

    #[test]
    fn known_counts() {
        // Counts as tiktoken gives them.
        assert_eq!(Tokenizer::O200k.count("hello world"), 2);
        assert_eq!(Tokenizer::Cl100k.count("hello world"), 2);
        assert_eq!(Tokenizer::O200k.count(""), 0);
        assert_eq!(Tokenizer::Claude.count("hello world"), 4);
        assert_eq!(Tokenizer::Claude46.count("hello world"), 3);
    }

    #[test]
    fn names_round_trip() {
        for t in Tokenizer::ALL {
            assert_eq!(Tokenizer::named(t.name()), Some(t));
            assert_eq!(
                <Tokenizer as clap::ValueEnum>::from_str(t.name(), false),
                Ok(t)
            );
        }
        assert_eq!(Tokenizer::default(), Tokenizer::Claude);
    }

    #[test]
    fn count_within_agrees_with_count() {
        let text = "Raft is a consensus algorithm. ".repeat(50);
        for t in Tokenizer::ALL {
            let n = t.count(&text);
            assert_eq!(t.count_within(&text, n), Some(n), "{t:?}");
            assert_eq!(t.count_within(&text, n - 1), None, "{t:?}");
            assert_eq!(t.count_within(&text, n + 10), Some(n), "{t:?}");
        }
    }

    /// Texts made of the characters where pre-tokenizers differ: newlines before words, spaces, `/`, punctuation
    /// runs, digits, apostrophes, CJK, accents, emoji, tabs, CR, non-breaking and other Unicode spaces.
    fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
        let atoms = proptest::sample::select(vec![
            "\n",
            "\n\n",
            "\r\n",
            "\r",
            " ",
            "  ",
            "\t",
            "/",
            "//",
            "```",
            "- ",
            "**",
            "# ",
            "'s",
            "'T",
            "I'm",
            "word",
            "Word",
            "WORD",
            "é",
            "über",
            "数据",
            "こんにちは",
            "😀",
            "123",
            "4567",
            ".",
            ",",
            ":",
            "(",
            ")",
            "\u{a0}",
            "\u{3000}",
            "\u{2028}",
            "\u{85}",
            "\u{b}",
            "\u{c}",
            "x",
            "<example>",
            "${CLAUDE_PLUGIN_ROOT}",
        ]);
        proptest::collection::vec(atoms, 0..80).prop_map(|v| v.concat())
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn blocks_add_up_to_the_whole(text in tricky()) {
            prop_assert_eq!(blocks(&text).collect::<String>(), text.clone());
            for t in [Tokenizer::O200k, Tokenizer::Cl100k] {
                let whole = reference(t).count(text.as_str());
                let sum: usize = blocks(&text).map(|b| reference(t).count(b)).sum();
                prop_assert_eq!(sum, whole, "{:?} {:?}", t, blocks(&text).collect::<Vec<_>>());
                prop_assert_eq!(t.count(&text), whole);
            }
        }
    }

    /// ASCII text made of what the o200k patterns tell apart: each case of letter, digits, each white space, line
    /// breaks, apostrophes and the contractions' letters, `/`, punctuation and control characters.
    fn ascii_tricky() -> impl proptest::strategy::Strategy<Value = String> {
        let atoms = proptest::sample::select(vec![
            "\n", "\r", "\r\n", " ", "  ", "\t", "\u{b}", "\u{c}", "/", "'", "'s", "'S", "'t",
            "'re", "'RE", "'Ve", "'m", "'ll", "'lL", "'d", "'x", "'r", "'v", "'l", "s", "t", "r",
            "v", "m", "d", "x", "re", "l", "L", "e", "E", "a", "Z", "AB", "Ab", "aB", "word",
            "Word", "WORD", "1", "12", "1234", ".", "(", "-", "_", "#", "*", "\u{0}", "\u{1c}",
            "\u{1f}", "\u{7f}", "~",
        ]);
        proptest::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn ascii_pieces_are_the_regex_pieces(text in ascii_tricky()) {
            let ours: Vec<&str> = o200k_ascii_pieces(&text).collect();
            let regex: Vec<&str> = o200k_pre_tokenizer().split(&text).collect();
            prop_assert_eq!(ours, regex);
        }

        #[test]
        fn ascii_pieces_of_any_ascii_are_the_regex_pieces(text in "[\\x00-\\x7f]{0,40}") {
            let ours: Vec<&str> = o200k_ascii_pieces(&text).collect();
            let regex: Vec<&str> = o200k_pre_tokenizer().split(&text).collect();
            prop_assert_eq!(ours, regex);
        }
    }

    #[test]
    fn blocks_add_up_on_every_shipped_and_fixture_file() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "md") {
                    out.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        walk(&root.join("content"), &mut files);
        walk(&root.join("tests/fixtures"), &mut files);
        assert!(files.len() > 50);
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            for t in [Tokenizer::O200k, Tokenizer::Cl100k] {
                assert_eq!(
                    t.count(&text),
                    reference(t).count(text.as_str()),
                    "{}",
                    f.display()
                );
            }
        }
    }
}
