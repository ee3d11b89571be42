//! Tokenizers: the `claude` estimates err high against the published ratios, content class by content class.
//!
//! The reference count for Claude models up to 4.6 is `ah-ah-ah` 0.1 (a dev-dependency only): greedy longest match
//! over 38,360 token strings recovered from Anthropic's `count_tokens` API, near-exact on ASCII text and code and
//! 5-10% over on Latin prose by its own measurements. The published ratios of the Claude Opus 4.7 tokenizer to
//! 4.6's, by content class, come from the write-ups cited in the README ("Tokenizers").

use crate::common::{project_dir, tests_dir};
use ah_ah_ah::{count_tokens, Backend};
use skillbook::tokenize::Tokenizer;
use std::fs;
use std::path::PathBuf;

/// Opus 4.7 tokens per 4.6 token, the highest published figure for each class a plugin holds.
const PROSE: f64 = 1.45;
const MARKDOWN: f64 = 1.47; // technical documentation; a real CLAUDE.md measured 1.45
const CODE: f64 = 1.33;
/// English characters per token, published: 4.33 for 4.6, 3.60 for 4.7.
const CHARS_46: f64 = 4.33;
const CHARS_47: f64 = 3.60;

fn legacy(text: &str) -> usize {
    count_tokens(text, None, Backend::Claude, None).count
}

fn pages() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in [
        project_dir().join("content/skills/distributed-systems/patterns"),
        tests_dir().join("fixtures/seed/skills/distributed-systems/patterns"),
        project_dir().join("content/agents"),
        tests_dir().join("fixtures/seed/agents"),
    ] {
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            out.push((f, text));
        }
    }
    out
}

/// Splits markdown into fenced code and the rest; the rest's paragraphs that are plain sentences are its prose.
fn classes(text: &str) -> (String, String, String) {
    let (mut code, mut markdown, mut prose) = (String::new(), String::new(), String::new());
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            code.push_str(line);
            code.push('\n');
        } else {
            markdown.push_str(line);
            markdown.push('\n');
            let plain = !t.is_empty()
                && !t.starts_with(['#', '-', '*', '|', '>', '`'])
                && !t.chars().next().is_some_and(|c| c.is_ascii_digit())
                && !t.contains('`')
                && !t.contains("](");
            if plain {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    (code, markdown, prose)
}

#[test]
fn claude_estimates_err_high_for_every_content_class() {
    let (mut all_code, mut all_prose) = (String::new(), String::new());
    for (path, text) in pages() {
        let (code, markdown, prose) = classes(&text);
        all_code.push_str(&code);
        all_prose.push_str(&prose);
        // Files under 2,000 characters (the seed's stubs, 30-70 tokens) vary by a token or two either way; they
        // count in the class totals below.
        if text.len() < 2000 {
            continue;
        }
        let l = legacy(&markdown) as f64;
        let name = path.display();
        assert!(
            Tokenizer::Claude46.count(&markdown) as f64 >= l,
            "{name}: claude-4.6 {} < {l}",
            Tokenizer::Claude46.count(&markdown)
        );
        assert!(
            Tokenizer::Claude.count(&markdown) as f64 >= (l * MARKDOWN).ceil(),
            "{name}: claude {} < {l} x {MARKDOWN}",
            Tokenizer::Claude.count(&markdown)
        );
        if !code.is_empty() {
            let l = legacy(&code) as f64;
            assert!(Tokenizer::Claude46.count(&code) as f64 >= l, "{name}: code");
            assert!(
                Tokenizer::Claude.count(&code) as f64 >= (l * CODE).ceil(),
                "{name}: code {} < {l} x {CODE}",
                Tokenizer::Claude.count(&code)
            );
        }
    }
    for (class, text, ratio) in [("code", &all_code, CODE), ("prose", &all_prose, PROSE)] {
        let l = legacy(text) as f64;
        assert!(Tokenizer::Claude46.count(text) as f64 >= l, "{class}");
        assert!(
            Tokenizer::Claude.count(text) as f64 >= (l * ratio).ceil(),
            "{class}: {} < {l} x {ratio}",
            Tokenizer::Claude.count(text)
        );
    }
    // English prose against the published characters per token.
    let chars = all_prose.chars().count() as f64;
    assert!(Tokenizer::Claude46.count(&all_prose) as f64 >= chars / CHARS_46);
    assert!(Tokenizer::Claude.count(&all_prose) as f64 >= chars / CHARS_47);
}

/// skillbook counts o200k from its own tables (`build.rs`, read in place by `tokenize::o200k`), with bpe-openai's
/// pre-tokenizer copied beside them: both must give exactly bpe-openai's counts and tokens, on every shipped page and
/// on text that exercises each branch of the pre-tokenizer (contractions, letters of other scripts, marks, digit runs, punctuation before line
/// breaks, trailing and inner white space).
#[test]
fn the_re_encoded_o200k_counts_as_bpe_openai_does() {
    let theirs = bpe_openai::o200k_base();
    let mut texts: Vec<String> = pages().into_iter().map(|(_, text)| text).collect();
    texts.extend(
        [
            "",
            "I'm sure they'LL say it's DONE; we've 'd and 's.",
            "Ünïcödé: naïve café, Größe, ΑΒΓ αβγ, кириллица, 日本語のテキスト, 한국어, عربى, e\u{301}",
            "123456789 3.14159 1,000,000 ٣٤٥ ½",
            "fn main() {\n    println!(\"{}\", x);\n}\r\n\r\n  \t \n",
            "a  b   c    \n\n\n   trailing   ",
            "path/to/file.ex:12:3: warning\n// comment /* x */ <tag attr=\"v\">&amp;</tag>",
            "😀👍🏽 emoji 🇫🇷 flags\u{200d}joined",
        ]
        .map(String::from),
    );
    for text in &texts {
        let start: String = text.chars().take(60).collect();
        // skillbook's own counting (block by block, each pre-tokenizer piece's count remembered): the same, the first
        // time and from its memos.
        for _ in 0..2 {
            assert_eq!(
                Tokenizer::O200k.count(text),
                theirs.count(text.as_str()),
                "Tokenizer::O200k in {start:?}..."
            );
            assert_eq!(
                Tokenizer::Cl100k.count(text),
                bpe_openai::cl100k_base().count(text.as_str()),
                "Tokenizer::Cl100k in {start:?}..."
            );
        }
        let (a, b) = (
            skillbook::tokenize::o200k_encode(text),
            theirs.encode(text.as_str()),
        );
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(
            a == b,
            "{} tokens against bpe-openai's {}, first difference at token {first:?}, in {:?}...",
            a.len(),
            b.len(),
            text.chars().take(60).collect::<String>()
        );
    }
}
