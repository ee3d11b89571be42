//! Tokenizers: exact o200k and cl100k counts with compiled-in vocabularies (bpe-openai), and estimates of Claude's
//! counts that err high: `claude` for the current tokenizer (Claude Opus 4.7 and later), `claude-4.6` for the models
//! before it.

use bpe_openai::Tokenizer as Bpe;

/// `claude` counts are o200k counts times this factor, rounded up. Calibrated to err high for Claude Opus 4.7 and
/// later: see the README's "Tokenizers" section and `bench/calibrate-claude.sh`.
pub const CLAUDE_FACTOR: f64 = 1.85;

/// `claude-4.6` counts are o200k counts times this factor, rounded up. Calibrated to err high for Claude models up
/// to 4.6: see the README's "Tokenizers" section.
pub const CLAUDE_46_FACTOR: f64 = 1.30;

/// Which tokenizer counts a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, clap::ValueEnum)]
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

    fn bpe(self) -> &'static Bpe {
        match self {
            Tokenizer::Cl100k => bpe_openai::cl100k_base(),
            _ => bpe_openai::o200k_base(),
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
}
