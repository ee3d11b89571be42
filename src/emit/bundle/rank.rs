//! Relevance of an agent's patterns to a task text: Okapi BM25 over each pattern's title, covers, summary and body,
//! with a tokenizer that reads any script.
//!
//! Words are runs of letters and digits (Unicode's alphabetic and numeric classes), lower-cased. Scripts written
//! without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) give overlapping character
//! pairs instead, the usual way to index them without a dictionary. English plurals of longer ASCII words are folded
//! (`netsplits` finds `netsplit`, `registries` finds `registry`). Text is read in Unicode's composed form (NFC), so
//! a decomposed `é` or Hangul written as jamo finds the composed word. Each field is scored on its own (BM25F-style, its own
//! length normalisation) and weighted: the title three times, the covered items and the summary twice, the body
//! once. A query word made of two known words (`netsplit`) also searches for its parts.

use crate::expand::{PatternKey, Plan};
use crate::parse::Model;
use crate::HashMap;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalisation.
const B: f64 = 0.75;

/// True for characters of scripts that do not separate words with spaces.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF       // Thai, Lao
        | 0x1000..=0x109F     // Myanmar
        | 0x1780..=0x17FF     // Khmer
        | 0x3040..=0x30FF     // Hiragana, Katakana
        | 0x31F0..=0x31FF     // Katakana extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0x20000..=0x3134F   // CJK extensions B-G
    )
}

/// The terms of a text, in order.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            let w = std::mem::take(word);
            let n = w.chars().count();
            let stem = if n > 4 && w.ends_with("ies") && w.is_ascii() {
                format!("{}y", &w[..w.len() - 3])
            } else if n > 3
                && w.ends_with('s')
                && !w.ends_with("ss")
                && !w.ends_with("us")
                && w.is_ascii()
            {
                w[..w.len() - 1].to_string()
            } else {
                w
            };
            out.push(stem);
        }
    };
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.push(run[0].to_string()),
            _ => {
                for pair in run.windows(2) {
                    out.push(pair.iter().collect());
                }
            }
        }
        run.clear();
    };
    // Canonically equivalent texts give the same terms: `é` written as `e` and a combining accent is `é`, Hangul
    // written as jamo is its syllables. A mark with no composed form stays in the word it follows.
    for c in text.nfc() {
        if unspaced(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if c.is_alphanumeric() || (!word.is_empty() && is_combining_mark(c)) {
            flush_run(&mut run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_run(&mut run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// Checks a task text: it must have at least one word to rank by.
pub fn check_task(task: &str) -> Result<(), String> {
    if task.trim().is_empty() {
        return Err("the task text is empty".into());
    }
    if terms(task).is_empty() {
        return Err(format!(
            "the task text `{}` has no words to rank by",
            task.trim()
        ));
    }
    Ok(())
}

/// BM25 scores of `docs` (each a list of terms) for `query`, in the order of `docs`.
pub fn bm25(docs: &[Vec<String>], query: &[String]) -> Vec<f64> {
    let n = docs.len() as f64;
    if docs.is_empty() {
        return Vec::new();
    }
    let avg = docs.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let tfs: Vec<HashMap<&str, usize>> = docs
        .iter()
        .map(|d| {
            let mut m = HashMap::default();
            for t in d {
                *m.entry(t.as_str()).or_insert(0) += 1;
            }
            m
        })
        .collect();
    let mut q: Vec<&str> = query.iter().map(String::as_str).collect();
    q.sort_unstable();
    q.dedup();
    let mut scores = vec![0.0; docs.len()];
    for term in q {
        let df = tfs.iter().filter(|m| m.contains_key(term)).count() as f64;
        if df == 0.0 {
            continue;
        }
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for (i, m) in tfs.iter().enumerate() {
            let Some(&tf) = m.get(term) else { continue };
            let tf = tf as f64;
            let len = docs[i].len() as f64;
            let norm = if avg > 0.0 { len / avg } else { 1.0 };
            scores[i] += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * norm));
        }
    }
    scores
}

/// The fields of a pattern that relevance reads, and their weights: the title three times, the covered items and
/// the summary twice, the body once.
const FIELDS: [f64; 4] = [3.0, 2.0, 2.0, 1.0];

/// A query word made of two words of the documents' vocabulary (`netsplit`, `netzwerkpartition`) also searches for
/// its parts, each at least three characters long; the split with the longest first part wins.
pub fn expand_query(query: &[String], vocabulary: &crate::HashSet<&str>) -> Vec<String> {
    let mut out: Vec<String> = query.to_vec();
    for q in query {
        let chars: Vec<(usize, char)> = q.char_indices().collect();
        if chars.len() < 6 {
            continue;
        }
        // The split with the longest first part whose two halves are both known.
        for i in (3..=chars.len() - 3).rev() {
            let at = chars[i].0;
            let (a, b) = (&q[..at], &q[at..]);
            if vocabulary.contains(a) && vocabulary.contains(b) {
                out.push(a.to_string());
                out.push(b.to_string());
                break;
            }
        }
    }
    out
}

/// Each planned pattern's relevance to `task`: the weighted sum of the BM25 scores of its fields (0 when no term
/// matches).
pub fn relevance(model: &Model, plan: &Plan, task: &str) -> HashMap<PatternKey, f64> {
    let keys: Vec<PatternKey> = plan.patterns().collect();
    let fields: Vec<[Vec<String>; 4]> = keys
        .iter()
        .map(|k| {
            let (_, p) = k.get(model);
            let covers: Vec<String> = p.covers.iter().flat_map(|c| terms(&c.name)).collect();
            [
                terms(&p.title),
                covers,
                terms(p.summary.as_deref().unwrap_or("")),
                terms(p.doc.body()),
            ]
        })
        .collect();
    let vocabulary: crate::HashSet<&str> = fields
        .iter()
        .flat_map(|f| f.iter().flatten())
        .map(String::as_str)
        .collect();
    let query = expand_query(&terms(task), &vocabulary);
    let mut scores = vec![0.0; keys.len()];
    for (f, weight) in FIELDS.iter().enumerate() {
        let docs: Vec<Vec<String>> = fields.iter().map(|d| d[f].clone()).collect();
        for (i, s) in bm25(&docs, &query).into_iter().enumerate() {
            scores[i] += weight * s;
        }
    }
    keys.into_iter().zip(scores).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        terms(s)
    }

    #[test]
    fn terms_table() {
        assert_eq!(
            t("A Horde registry lost names"),
            ["a", "horde", "registry", "lost", "name"]
        );
        assert_eq!(t("split-brain, `:global`!"), ["split", "brain", "global"]);
        assert_eq!(t("class pass consensus"), ["class", "pass", "consensus"]);
        assert_eq!(t("registries Registry"), ["registry", "registry"]);
        assert_eq!(
            t("Netzwerkpartitionen über Knoten"),
            ["netzwerkpartitionen", "über", "knoten"]
        );
        assert_eq!(t("РАЗДЕЛЕНИЕ сети"), ["разделение", "сети"]);
        assert_eq!(t("分散システム"), ["分散", "散シ", "シス", "ステ", "テム"]);
        assert_eq!(t("脑裂 after"), ["脑裂", "after"]);
        assert_eq!(t("x"), ["x"]);
        assert!(t("  !!! ... ").is_empty());
    }

    #[test]
    fn canonically_equivalent_texts_give_the_same_terms() {
        // Composed and decomposed (a letter, then a combining accent): one word either way.
        assert_eq!(t("caf\u{e9} r\u{e9}seau"), ["caf\u{e9}", "r\u{e9}seau"]);
        assert_eq!(t("cafe\u{301} re\u{301}seau"), ["caf\u{e9}", "r\u{e9}seau"]);
        // Hangul as jamo is its syllables.
        assert_eq!(t("\u{1100}\u{1161}\u{11a8}"), t("\u{ac01}"));
        // A mark with no composed form stays in its word; alone, it is no word.
        assert_eq!(t("x\u{301}y"), ["x\u{301}y"]);
        assert!(t("\u{301}\u{302}").is_empty());
    }

    #[test]
    fn bm25_prefers_matching_rarer_terms() {
        let docs = vec![
            t("raft leader election log replication"),
            t("split brain netsplit registry horde duplicate names"),
            t("clock drift time leader"),
        ];
        let s = bm25(&docs, &t("horde registry lost names after a netsplit"));
        assert!(s[1] > 0.0 && s[0] == 0.0 && s[2] == 0.0, "{s:?}");
        let s = bm25(&docs, &t("leader"));
        assert!(s[0] > 0.0 && s[2] > 0.0 && s[1] == 0.0, "{s:?}");
        // The shorter document with the same match ranks higher.
        assert!(s[2] > s[0], "{s:?}");
        assert!(bm25(&[], &t("x")).is_empty());
        assert_eq!(bm25(&docs, &[]), vec![0.0; 3]);
    }
}
