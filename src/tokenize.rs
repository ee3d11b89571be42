//! Tokenizers: exact o200k and cl100k counts with compiled-in vocabularies (bpe-openai), and a `claude` estimate.

use bpe_openai::Tokenizer as Bpe;

/// `claude` counts are o200k counts times this factor, rounded up. Calibrated on this project's content against
/// Anthropic's published offline tokenizer (`@anthropic-ai/tokenizer`) with a margin so that it errs high: see the
/// README's "Tokenizers" section and `bench/calibrate-claude.sh`.
pub const CLAUDE_FACTOR: f64 = 1.30;

/// Which tokenizer counts a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// OpenAI's o200k_base, exact.
    #[default]
    O200k,
    /// OpenAI's cl100k_base, exact.
    Cl100k,
    /// An estimate of Claude's count: o200k times a calibrated factor, erring high.
    Claude,
}

impl Tokenizer {
    pub fn name(self) -> &'static str {
        match self {
            Tokenizer::O200k => "o200k",
            Tokenizer::Cl100k => "cl100k",
            Tokenizer::Claude => "claude",
        }
    }

    /// True when counts are exact; false for the `claude` estimate.
    pub fn exact(self) -> bool {
        self != Tokenizer::Claude
    }

    /// The factor applied to o200k counts, for the estimate.
    pub fn factor(self) -> Option<f64> {
        (self == Tokenizer::Claude).then_some(CLAUDE_FACTOR)
    }

    fn bpe(self) -> &'static Bpe {
        match self {
            Tokenizer::O200k | Tokenizer::Claude => bpe_openai::o200k_base(),
            Tokenizer::Cl100k => bpe_openai::cl100k_base(),
        }
    }

    fn scale(self, n: usize) -> usize {
        match self.factor() {
            Some(f) => (n as f64 * f).ceil() as usize,
            None => n,
        }
    }

    /// The number of tokens in `text`.
    pub fn count(self, text: &str) -> usize {
        self.scale(self.bpe().count(text))
    }

    /// The number of tokens in `text` if it is at most `limit`, else `None`; stops counting past the limit.
    pub fn count_within(self, text: &str, limit: usize) -> Option<usize> {
        let bpe = self.bpe();
        let raw_limit = match self.factor() {
            // Any raw count above this scales to more than `limit`.
            Some(f) => (limit as f64 / f).floor() as usize,
            None => limit,
        };
        let raw = bpe.count_till_limit(&bpe.normalize(text), raw_limit)?;
        let n = self.scale(raw);
        (n <= limit).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts() {
        // Counts as tiktoken gives them.
        assert_eq!(Tokenizer::O200k.count("hello world"), 2);
        assert_eq!(Tokenizer::Cl100k.count("hello world"), 2);
        assert_eq!(Tokenizer::O200k.count(""), 0);
        assert_eq!(Tokenizer::Claude.count("hello world"), 3);
    }

    #[test]
    fn count_within_agrees_with_count() {
        let text = "Raft is a consensus algorithm. ".repeat(50);
        for t in [Tokenizer::O200k, Tokenizer::Cl100k, Tokenizer::Claude] {
            let n = t.count(&text);
            assert_eq!(t.count_within(&text, n), Some(n), "{t:?}");
            assert_eq!(t.count_within(&text, n - 1), None, "{t:?}");
            assert_eq!(t.count_within(&text, n + 10), Some(n), "{t:?}");
        }
    }
}
