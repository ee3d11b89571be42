//! Highlighting: the vendored fancy-regex's speed-ups (an ASCII form of its delegates, a regular superset searched
//! before the backtracking VM) find exactly what fancy-regex 0.16.2 finds.

use crate::common::project_dir;
use fancy_regex::{Regex, RegexBuilder};
use std::collections::BTreeSet;
use std::fs;
use syntect::parsing::syntax_definition::Pattern;

/// Every line of the fenced code blocks of the shipped content's pages, each once.
fn shipped_code_lines() -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    let mut dirs = vec![project_dir().join("content")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let mut fenced = false;
                for line in fs::read_to_string(&path).unwrap().lines() {
                    if line.trim_start().starts_with("```") {
                        fenced = !fenced;
                    } else if fenced {
                        lines.insert(format!("{line}\n"));
                    }
                }
            }
        }
    }
    lines
}

fn build(pattern: &str, speedups: bool) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .oniguruma_mode(true)
        .delegate_ascii_form(speedups)
        .superset_prefilter(speedups)
        .build()
        .ok()
}

fn groups(re: &Regex, text: &str, pos: usize) -> Option<Vec<Option<(usize, usize)>>> {
    let caps = re.captures_from_pos(text, pos).ok()??;
    Some(
        caps.iter()
            .map(|m| m.map(|m| (m.start(), m.end())))
            .collect(),
    )
}

/// The vendored fancy-regex (vendor/README.md) builds each delegate also with its classes cut to ASCII and uses that
/// form for haystacks that are all ASCII, and searches a fancy regex's regular superset before running its VM. With
/// both it must find exactly what it finds without them, groups included: every regex of the Elixir, Erlang, Bash and
/// Markdown grammars (as syntect compiles them), on a sample of the shipped code lines and on lines that reach the edges of the
/// arguments (letters and word characters, case-insensitive keywords, word boundaries at both ends, `\p{L}`
/// identifiers, atoms, sigils, back-references, look-behinds at the start position, text that is not ASCII).
#[test]
fn grammar_regexes_match_alike_with_and_without_the_speedups() {
    let set = two_face::syntax::extra_newlines().into_builder();
    let mut patterns = BTreeSet::new();
    let names = ["Elixir", "Erlang", "Bourne Again Shell (bash)", "Markdown"];
    let syntaxes: Vec<_> = set
        .syntaxes()
        .iter()
        .filter(|s| names.contains(&s.name.as_str()))
        .collect();
    assert_eq!(syntaxes.len(), names.len());
    for syntax in syntaxes {
        for context in syntax.contexts.values() {
            for pattern in &context.patterns {
                if let Pattern::Match(m) = pattern {
                    patterns.insert(m.regex.regex_str().to_string());
                }
            }
        }
    }
    assert!(patterns.len() > 300, "{} grammar regexes", patterns.len());

    let shipped = shipped_code_lines();
    let mut lines: Vec<String> = shipped
        .iter()
        .step_by(shipped.len() / 120 + 1)
        .cloned()
        .collect();
    lines.extend(
        [
            "defmodule MyApp.Worker do\n",
            "  def handle_call({:get, key}, _from, state), do: {:reply, Map.get(state, key), state}\n",
            "  defp valid?(x) when is_integer(x) and x > 0, do: true\n",
            "KEEP k K Kelvin s S long_s IF if If iF WHEN when\n",
            "x = ~w(a b c)a ++ [?a, ?\\n, 0x1F, 0b101, 1_000.5e-3] |> Enum.map(&(&1 * 2))\n",
            "%{\"key\" => 'v', key: :atom@node, \"quoted\": 1} <<1, 2>> :\"a b\" @attr __MODULE__\n",
            "case f.(a) do {:ok, _} -> :ok; _ -> raise ArgumentError, \"bad\" end # comment\n",
            "-module(m). f(X) when X > 0 -> 'Atom'; f(_) -> <<\"bin\">>. %% comment\n",
            "for f in *.md; do echo \"$f\" && grep -q 'x' \"${f%.md}\" || exit 1; done\n",
            "word_word-word.word:word::word?!word\n",
            "\n",
            "",
            "défmodule Café.Größe do :naïve ?é \"日本\" # ΑΒΓ Kelvin \u{212a} long \u{17f}\n",
            "  def état(ß), do: :été when is_atom(x) and not ü\n",
            // Markdown: fences (required literals ``` and ~~~, case-insensitive language names), spans, lists.
            "```elixir\n",
            "  ~~~ERLANG {.numberLines}\n",
            "```\n",
            "# Heading with `code` and **bold** _em_ [link](x.md#y) <b>html</b>\n",
            "- [ ] item `` a`b `` 1. two * three\n",
            "| a | b |\n|---|:-:|\n",
            "> quote ``` not a fence\n",
        ]
        .map(String::from),
    );

    let mut compared = 0;
    for pattern in &patterns {
        // Patterns with back-references to a begin match are templates syntect fills in; they do not compile here.
        let (Some(fast), Some(plain)) = (build(pattern, true), build(pattern, false)) else {
            continue;
        };
        for line in &lines {
            for pos in [0, line.len() / 3, line.len() * 2 / 3] {
                let pos = (0..=pos)
                    .rev()
                    .find(|&p| line.is_char_boundary(p))
                    .unwrap_or(0);
                assert_eq!(
                    groups(&fast, line, pos),
                    groups(&plain, line, pos),
                    "{pattern:?} on {line:?} from {pos}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 100_000, "{compared} searches compared");
}

/// The delegates fancy-regex shares between regexes (built once per process) are let go once the forms built since
/// hold more than `BUILT_MAX_BYTES`: a delegate can hold megabytes, and the `regex` fuzz target ran out of its 2 GB
/// keeping thousands of them (`fuzz/regressions/regex/delegates-kept-past-their-memory-bound`, which needed the
/// fuzzer's run of many inputs before it: alone it takes 50 MB). Here 120 distinct delegates of about a megabyte
/// each are built: what the shared ones hold stays within the bound and one delegate.
#[test]
fn shared_delegates_stay_within_their_memory_bound() {
    let one = |i: usize| {
        Regex::new(&format!("q{i}x[a-z]{{30000}}"))
            .expect("a regular pattern builds")
            .is_match(&format!("q{i}x"))
            .expect("a search of a regular regex does not fail")
    };
    assert!(!one(0));
    let mut largest = 0;
    let mut before = fancy_regex::shared_delegate_bytes();
    let mut peak = 0;
    let mut let_go = false;
    for i in 1..120 {
        one(i);
        let now = fancy_regex::shared_delegate_bytes();
        largest = largest.max(now.saturating_sub(before));
        let_go |= now < before;
        peak = peak.max(now);
        before = now;
    }
    assert!(
        largest > 200_000,
        "each delegate holds {largest} bytes: too small to test the bound"
    );
    assert!(
        let_go,
        "the shared delegates were never let go (peak {peak} bytes)"
    );
    assert!(
        peak <= fancy_regex::BUILT_MAX_BYTES + 2 * largest,
        "the shared delegates held {peak} bytes, over {} and a delegate ({largest})",
        fancy_regex::BUILT_MAX_BYTES
    );
}
