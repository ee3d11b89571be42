//! Highlight: server-side syntax highlighting of fenced code blocks, with syntect and two-face's syntax set.
//!
//! mdBook's bundled highlight.js knows neither Elixir nor Erlang, so the site highlights code before mdBook sees it:
//! every fenced block with a language becomes a raw `<pre><code>` block whose tokens are `<span>`s with CSS classes
//! (syntect's [`ClassStyle::SpacedPrefixed`] with the prefix [`PREFIX`]), coloured by `theme/css/syntax.css` for
//! mdBook's light and dark themes. The `<code>` element carries the class `nohighlight`, which tells highlight.js to
//! leave the block alone. A language syntect does not know is rendered as plain, escaped text. Regexes are
//! fancy-regex (pure Rust); the syntax set is loaded once, on first use.

use crate::HashMap;
use mdbook_markdown::pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use syntect::html::{line_tokens_to_classed_spans, ClassStyle};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

/// The prefix of every token class (`sy-keyword`, `sy-string`, ...).
pub const PREFIX: &str = "sy-";

/// Code blocks longer than this are shown without highlighting (a guard against pathological grammars and inputs).
pub const MAX_HIGHLIGHT_BYTES: usize = 256 * 1024;

/// two-face's syntax set (bat's syntaxes: Elixir, Erlang, TOML, ... plus syntect's defaults), loaded on first use.
pub fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(|| {
        let set = two_face::syntax::extra_newlines();
        // The compressed definitions compiled into the binary are not read again.
        crate::memory::release_read_only_data();
        set
    })
}

/// The language named by a fence's info string: its first word, lowercased, without `{.x}` or `,attr` decoration.
/// `None` for a fence without a language.
pub fn language_of(info: &str) -> Option<String> {
    let first = info.split_whitespace().next()?;
    let first = first.trim_start_matches('{').trim_start_matches('.');
    let first = first.split([',', '}']).next().unwrap_or("");
    let lang = first.to_ascii_lowercase();
    (!lang.is_empty()).then_some(lang)
}

/// Names that are not a syntax's name or file extension, mapped to one that is.
fn alias(lang: &str) -> &str {
    match lang {
        "shell" | "console" | "shell-session" | "zsh" | "sh" => "bash",
        "iex" | "exs" => "elixir",
        "erl" | "escript" => "erlang",
        "yml" => "yaml",
        "jsonc" | "json5" => "json",
        "js" => "javascript",
        "ts" => "typescript",
        "py" => "python",
        "rs" => "rust",
        "md" => "markdown",
        "docker" => "dockerfile",
        other => other,
    }
}

/// The syntax for a language token, or `None` when it is unknown (or plain text).
pub fn find(lang: &str) -> Option<&'static SyntaxReference> {
    if matches!(lang, "text" | "txt" | "plain" | "plaintext" | "none") {
        return None;
    }
    let ss = syntaxes();
    let lang = alias(lang);
    ss.find_syntax_by_token(lang)
        .or_else(|| ss.find_syntax_by_extension(lang))
        .filter(|s| s.name != "Plain Text")
}

/// Highlighted blocks by (language, code): a page that inlines other pages (an agent's expanded prompt holds every
/// pattern) highlights each block once. A block another thread is highlighting is waited for, not highlighted again:
/// pages made in parallel (an agent's page and its patterns' pages, the warm-up thread) ask for the same blocks.
/// Bounded: emptied when it holds more than [`CACHE_BYTES`].
type Cache = HashMap<(String, String), Arc<OnceLock<Option<String>>>>;

/// The most text the highlight cache keeps before it starts again.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

fn cache() -> &'static Mutex<(Cache, usize)> {
    static CACHE: OnceLock<Mutex<(Cache, usize)>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new((HashMap::default(), 0)))
}

/// Empties the cache (a build that runs once frees it when the pages are made).
pub fn forget() {
    if let Ok(mut c) = cache().lock() {
        *c = (HashMap::default(), 0);
    }
    if let Ok(mut m) = line_memo().lock() {
        *m = (HashMap::default(), 0);
    }
}

/// Highlights `code` as `lang`: HTML with token spans, or `None` when the language is unknown or the grammar fails.
pub fn highlight(lang: &str, code: &str) -> Option<String> {
    if code.len() > MAX_HIGHLIGHT_BYTES {
        return None;
    }
    let slot = {
        let Ok(mut c) = cache().lock() else {
            return highlight_uncached(lang, code);
        };
        let key = (lang.to_string(), code.to_string());
        match c.0.get(&key) {
            Some(slot) => slot.clone(),
            None => {
                // The key and the highlighted HTML, about twice the code.
                let size = code.len() * 4;
                if c.1 + size > CACHE_BYTES {
                    c.0.clear();
                    c.1 = 0;
                }
                c.1 += size;
                let slot = Arc::new(OnceLock::new());
                c.0.insert(key, slot.clone());
                slot
            }
        }
    };
    // Outside the cache's lock: the first thread to ask highlights, the others wait for its result.
    slot.get_or_init(|| highlight_uncached(lang, code)).clone()
}

fn highlight_uncached(lang: &str, code: &str) -> Option<String> {
    let syntax = find(lang)?;
    let ss = syntaxes();
    let run = || {
        // What syntect's `ClassedHTMLGenerator` does, a line at a time, with each line looked up in the line memo.
        let mut state = LineState {
            parse: ParseState::new(syntax),
            scopes: ScopeStack::new(),
        };
        let mut html = String::with_capacity(code.len() * 3);
        let mut open_spans: isize = 0;
        for line in LinesWithEndings::from(code) {
            let done = highlight_line(ss, &state, line)?;
            html.push_str(&done.html);
            open_spans += done.delta;
            state = done.after.clone();
        }
        for _ in 0..open_spans {
            html.push_str("</span>");
        }
        Some(html)
    };
    // A grammar bug must not take the build down: fall back to plain text.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .ok()
        .flatten()
}

/// Where highlighting stands at the start of a line: the grammar's parse state and the scopes open in the HTML.
#[derive(Clone, PartialEq, Eq)]
struct LineState {
    parse: ParseState,
    scopes: ScopeStack,
}

/// One highlighted line: its HTML, the change in open `<span>`s, and the state the next line starts from.
struct LineDone {
    html: String,
    delta: isize,
    after: LineState,
}

/// Highlighted lines by their text, each with the states it was highlighted from. A line's highlighting is a pure
/// function of its text and the state it starts in, and code blocks share many lines (`end`, `@impl true`, a
/// module's boilerplate), so each (text, state) is parsed once per build. Bounded like the block cache.
type LineMemo = HashMap<String, Vec<(LineState, Arc<LineDone>)>>;

/// The most text the line memo keeps before it starts again.
const LINE_MEMO_BYTES: usize = 32 * 1024 * 1024;

/// The most start states remembered for one line's text (a line seen in many states is not worth remembering).
const STATES_PER_LINE: usize = 16;

fn line_memo() -> &'static Mutex<(LineMemo, usize)> {
    static MEMO: OnceLock<Mutex<(LineMemo, usize)>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new((HashMap::default(), 0)))
}

/// One line highlighted from `state`: from the line memo, or parsed and remembered. `None` when the grammar fails.
fn highlight_line(ss: &SyntaxSet, state: &LineState, line: &str) -> Option<Arc<LineDone>> {
    if let Ok(memo) = line_memo().lock() {
        if let Some(seen) = memo.0.get(line) {
            if let Some((_, done)) = seen.iter().find(|(from, _)| from == state) {
                return Some(done.clone());
            }
        }
    }
    let mut after = state.clone();
    let ops = after.parse.parse_line(line, ss).ok()?;
    let (html, delta) = line_tokens_to_classed_spans(
        line,
        &ops,
        ClassStyle::SpacedPrefixed { prefix: PREFIX },
        &mut after.scopes,
    )
    .ok()?;
    let done = Arc::new(LineDone { html, delta, after });
    if let Ok(mut memo) = line_memo().lock() {
        let size = line.len() * 2 + done.html.len() + 256;
        if memo.1 + size > LINE_MEMO_BYTES {
            memo.0.clear();
            memo.1 = 0;
        }
        let seen = memo.0.entry(line.to_string()).or_default();
        if seen.len() < STATES_PER_LINE && !seen.iter().any(|(from, _)| from == state) {
            seen.push((state.clone(), done.clone()));
            memo.1 += size;
        }
    }
    Some(done)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One code block as HTML: `<pre class="sb-code" data-lang=".."><code class="nohighlight hljs ..">`, highlighted
/// when the language is known, plain otherwise. The code's own line breaks are kept; no newline follows `<code>`.
pub fn code_block(lang: Option<&str>, code: &str) -> String {
    let highlighted = lang.and_then(|l| highlight(l, code));
    let label = lang
        .map(|l| format!(" data-lang=\"{}\"", escape(l)))
        .unwrap_or_default();
    let (class, body) = match highlighted {
        Some(h) => ("nohighlight hljs sb-highlighted", h),
        None => ("nohighlight hljs sb-plain", escape(code)),
    };
    let body = body.strip_suffix('\n').unwrap_or(&body);
    format!("<pre class=\"sb-code\"{label}><code class=\"{class}\">{body}</code></pre>")
}

/// The fenced code blocks of `markdown` that name a language: (the fence's byte range, language, code).
fn fences(markdown: &str) -> Vec<(Range<usize>, String, String)> {
    let mut found = Vec::new();
    let mut current: Option<(Range<usize>, String, String)> = None;
    let parser = Parser::new_ext(markdown, crate::parse::markdown_options()).into_offset_iter();
    for (event, range) in parser {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                if let Some(lang) = language_of(&info) {
                    current = Some((range, lang, String::new()));
                }
            }
            Event::Text(t) => {
                if let Some((_, _, code)) = &mut current {
                    code.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => found.extend(current.take()),
            _ => {}
        }
    }
    found
}

/// The fenced code blocks of some texts, to highlight into the cache before the pages ask for them: [`Warmup::run`]
/// on a spare core while the build does other work (the engine warms the pattern files it parsed), and on the
/// build's own thread too once its other work is done, so that the two share what is left. Each block is taken by
/// one of the threads that run it; a page that asks for a block being highlighted waits for it ([`highlight`]).
pub struct Warmup<'a> {
    texts: Vec<&'a str>,
    /// (language, code) of every block, found by the first thread to run.
    blocks: OnceLock<Vec<(String, String)>>,
    next: AtomicUsize,
}

impl<'a> Warmup<'a> {
    pub fn new(texts: Vec<&'a str>) -> Self {
        Warmup {
            texts,
            blocks: OnceLock::new(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Highlights the blocks no thread has taken yet, one at a time, until none is left. The first block of each
    /// language comes first: it builds the grammar's regexes, most of a language's cost, so the blocks left for a
    /// thread that joins late are the cheap ones, and the two finish close together.
    pub fn run(&self) {
        let blocks = self
            .blocks
            .get_or_init(|| first_of_each_language_first(&self.texts));
        while let Some((lang, code)) = blocks.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            highlight(lang, code);
        }
    }
}

/// The (language, code) of the fenced blocks of `texts`: the first block of each language, then the others, each
/// group in the texts' order.
fn first_of_each_language_first(texts: &[&str]) -> Vec<(String, String)> {
    let mut seen = crate::HashSet::default();
    let (first, rest): (Vec<_>, Vec<_>) = texts
        .iter()
        .flat_map(|t| fences(t))
        .map(|(_, lang, code)| (lang, code))
        .partition(|(lang, _)| seen.insert(lang.clone()));
    first.into_iter().chain(rest).collect()
}

/// Replaces every fenced code block of `markdown` that names a language with its highlighted HTML, indented to sit
/// where the fence sat (inside list items and block quotes too). Other text is unchanged.
pub fn highlight_fences(markdown: &str) -> String {
    let edits: Vec<(Range<usize>, String)> = fences(markdown)
        .into_iter()
        .map(|(range, lang, code)| {
            let html = code_block(Some(&lang), &code);
            let block = indent_block(markdown, &range, &html);
            (range, block)
        })
        .collect();
    let mut out = String::with_capacity(markdown.len() * 2);
    let mut pos = 0;
    for (r, new) in edits {
        if r.start < pos || r.end > markdown.len() {
            continue;
        }
        out.push_str(&markdown[pos..r.start]);
        out.push_str(&new);
        pos = r.end;
    }
    out.push_str(&markdown[pos..]);
    out
}

/// Prefixes the second and later lines of `html` with the container prefix of the fence at `range` (its list
/// indentation or `>` markers), and keeps the block's trailing newline.
fn indent_block(markdown: &str, range: &Range<usize>, html: &str) -> String {
    let line_start = markdown[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let prefix: String = markdown[line_start..range.start]
        .chars()
        .map(|c| if c == '>' { '>' } else { ' ' })
        .collect();
    let mut out = String::with_capacity(html.len() + 64);
    for (i, line) in html.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&prefix);
        }
        out.push_str(line);
    }
    if markdown[range.clone()].ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_of_table() {
        for (info, expect) in [
            ("elixir", Some("elixir")),
            ("Elixir ignore", Some("elixir")),
            ("rust,ignore", Some("rust")),
            ("{.toml}", Some("toml")),
            ("", None),
            ("   ", None),
        ] {
            assert_eq!(language_of(info).as_deref(), expect, "{info:?}");
        }
    }

    #[test]
    fn required_languages_are_known() {
        for lang in [
            "elixir", "erlang", "rust", "yaml", "toml", "json", "bash", "sh", "shell",
        ] {
            assert!(find(lang).is_some(), "{lang}");
        }
        assert!(find("no-such-language").is_none());
        assert!(find("text").is_none());
    }

    #[test]
    fn the_first_block_of_each_language_is_warmed_first() {
        let texts = [
            "```rust\nfn a() {}\n```\n\n```rust\nfn b() {}\n```\n",
            "text\n\n```elixir\n:c\n```\n\n```text\nd\n```\n\n    indented\n\n```rust\nfn e() {}\n```\n",
        ];
        let order: Vec<String> = first_of_each_language_first(&texts)
            .into_iter()
            .map(|(lang, code)| format!("{lang}: {}", code.trim_end()))
            .collect();
        assert_eq!(
            order,
            [
                "rust: fn a() {}",
                "elixir: :c",
                "text: d",
                "rust: fn b() {}",
                "rust: fn e() {}"
            ]
        );
    }

    #[test]
    fn threads_sharing_a_warmup_highlight_every_block_once() {
        let texts: Vec<String> = (0..40)
            .map(|i| format!("```rust\nfn warm_{i}() {{}}\n```\n\n```elixir\n:warm_{i}\n```\n"))
            .collect();
        let warmup = Warmup::new(texts.iter().map(String::as_str).collect());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| warmup.run());
            }
        });
        // Every block is in the cache, with what highlighting it gives.
        let c = cache().lock().unwrap();
        for i in 0..40 {
            for (lang, code) in [
                ("rust", format!("fn warm_{i}() {{}}\n")),
                ("elixir", format!(":warm_{i}\n")),
            ] {
                let slot = c.0.get(&(lang.to_string(), code.clone())).expect("warmed");
                assert_eq!(slot.get().cloned().flatten(), Some(reference(lang, &code)));
            }
        }
        // Nothing is left to take.
        assert!(warmup.next.load(Ordering::Relaxed) >= 80);
    }

    #[test]
    fn threads_asking_for_one_block_get_one_result() {
        let code = "defmodule Many.Threads do\n  def go(x), do: {:ok, x}\nend\n";
        let results: Vec<Option<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| highlight("elixir", code)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let alone = highlight_uncached("elixir", code);
        assert!(alone.is_some());
        assert!(results.iter().all(|r| *r == alone), "{results:?}");
    }

    /// What syntect's own generator makes of `code`, without the line memo.
    fn reference(lang: &str, code: &str) -> String {
        let mut gen = syntect::html::ClassedHTMLGenerator::new_with_class_style(
            find(lang).unwrap(),
            syntaxes(),
            ClassStyle::SpacedPrefixed { prefix: PREFIX },
        );
        for line in LinesWithEndings::from(code) {
            gen.parse_html_for_line_which_includes_newline(line)
                .unwrap();
        }
        gen.finalize()
    }

    #[test]
    fn the_line_memo_gives_what_syntect_gives() {
        // The same line text in different states: code, inside a heredoc, a multi-line comment or string, and
        // first lines (which some grammars treat apart). Each block is highlighted after the others, so the memo
        // holds many of its lines from other states first.
        let blocks = [
            ("elixir", "defmodule A do\n  def f, do: :ok\nend\n"),
            (
                "elixir",
                "@doc \"\"\"\ndefmodule A do\n  def f, do: :ok\nend\n\"\"\"\ndef g, do: 1\nend\n",
            ),
            ("elixir", "end\ndefmodule A do\nend\n"),
            ("elixir", "x = ~S(\ndefmodule A do\n)\nend\n"),
            (
                "erlang",
                "%% end\nf(X) ->\n    case X of\n        _ -> ok\n    end.\n",
            ),
            ("rust", "/*\nfn main() {}\n*/\nfn main() {}\n"),
            (
                "python",
                "'''\ndef f():\n    pass\n'''\ndef f():\n    pass\n",
            ),
            (
                "bash",
                "cat <<EOF\nif true; then\nEOF\nif true; then\n  echo end\nfi\n",
            ),
        ];
        for (lang, code) in blocks {
            assert_eq!(
                highlight_uncached(lang, code).as_deref(),
                Some(reference(lang, code).as_str()),
                "{lang}: {code}"
            );
        }
    }

    #[test]
    fn elixir_gets_token_spans() {
        let html = code_block(Some("elixir"), "defmodule A do\n  def f, do: :ok\nend\n");
        assert!(html.starts_with("<pre class=\"sb-code\" data-lang=\"elixir\"><code class=\"nohighlight hljs sb-highlighted\">"), "{html}");
        assert!(html.contains("<span class=\"sy-"), "{html}");
        assert!(
            html.ends_with("end</span></code></pre>") || html.ends_with("</span></code></pre>"),
            "{html}"
        );
    }

    #[test]
    fn unknown_language_is_plain_escaped_text() {
        let html = code_block(Some("klingon"), "a < b && c\n");
        assert_eq!(
            html,
            "<pre class=\"sb-code\" data-lang=\"klingon\"><code class=\"nohighlight hljs sb-plain\">a &lt; b &amp;&amp; c</code></pre>"
        );
    }

    #[test]
    fn fences_are_replaced_in_place_and_indented() {
        let md = "Text\n\n- item\n\n  ```toml\n  a = 1\n\n  b = 2\n  ```\n\n```\nno language\n```\n\n> ```json\n> {}\n> ```\n";
        let out = highlight_fences(md);
        assert!(
            out.contains("- item\n\n  <pre class=\"sb-code\" data-lang=\"toml\">"),
            "{out}"
        );
        assert!(
            out.contains("\n  \n  <span") || out.contains("\n  \n  b") || out.contains("\n  \n  <"),
            "{out}"
        );
        assert!(out.contains("```\nno language\n```"), "{out}");
        assert!(
            out.contains("> <pre class=\"sb-code\" data-lang=\"json\">"),
            "{out}"
        );
        assert!(!out.contains("```toml"));
    }

    #[test]
    fn hostile_code_cannot_close_the_block() {
        let html = code_block(Some("elixir"), "x = \"</pre></code><script>\"\n");
        assert_eq!(html.matches("</pre>").count(), 1, "{html}");
        assert!(!html.contains("<script>"));
    }
}
