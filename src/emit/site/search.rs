//! Site search: an inverted index split into fragments that a query loads on demand, and the script that queries it.
//!
//! - [`document`] turns one rendered page into its search document (a section per heading, as mdBook's search has):
//!   a pure function of the page, so a caller can remember it per page.
//! - [`index`] folds the documents into files under `search/`: `meta.js` (counts, which fragments exist),
//!   `t/<key>.js` (the postings of every term starting with the two characters `key` names, hex-encoded) and
//!   `d/<n>.js` (the pages' titles, headings and text, for the result list and its teasers, a few hundred KB each).
//!   A query loads `meta.js`, one term fragment per query word, and the document fragments of its best results.
//! - [`assets`] are the scripts every page names: `searchindex.js` holds only the `[output.html.search]` settings,
//!   so its name never changes with the content; `searcher.js` is mdBook's searcher with the fragment loader.
//!
//! Fragments are loaded as `<script>` elements (JSONP style), so search also works from `file://`.

use super::render::{closing_tag, decode_attr, tag_name, RenderedPage, SearchSettings};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The index's term maps, hashed with foldhash: a lookup per word of every page (their order is never used).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// The searcher (mdBook's `searcher.js`, MPL-2.0, with elasticlunr replaced by the fragment index).
const SEARCHER_JS: &str = include_str!("searcher.js");

/// Longest section text kept for teasers, in bytes.
const TEXT_MAX: usize = 6_000;
/// A document fragment is closed once it holds this many bytes.
const CHUNK_BYTES: usize = 256 * 1024;
/// Words longer than this are not indexed (hashes, base64, long identifiers).
const TERM_MAX: usize = 40;

/// One page's search document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchDoc {
    /// The page's HTML path (`agents/x.html`).
    pub url: String,
    pub title: String,
    pub sections: Vec<Section>,
}

/// The text under one heading (or before the first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Section {
    /// The heading's id (empty: the top of the page).
    pub anchor: String,
    pub heading: String,
    pub text: String,
}

/// The search document of a rendered page (its `<main>` content), split at every `h1`-`h3` that has an id.
pub fn document(html_path: &str, title: &str, page: &RenderedPage) -> SearchDoc {
    let mut sections = vec![Section {
        anchor: String::new(),
        heading: String::new(),
        text: String::new(),
    }];
    let html = page.content.as_str();
    let b = html.as_bytes();
    let mut i = 0;
    let mut in_heading: Option<String> = None;
    while i < b.len() {
        if b[i] != b'<' {
            let end = html[i..].find('<').map_or(b.len(), |e| i + e);
            let raw = &html[i..end];
            if let Some(s) = sections.last_mut() {
                let target = if in_heading.is_some() {
                    &mut s.heading
                } else {
                    &mut s.text
                };
                if raw.contains('&') {
                    push_text(target, &decode_attr(raw));
                } else {
                    push_text(target, raw);
                }
            }
            i = end;
            continue;
        }
        if html[i..].starts_with("<!--") {
            i = html[i..].find("-->").map_or(b.len(), |e| i + e + 3);
            continue;
        }
        let end = tag_end(html, i);
        // Without its `>`, which an unclosed tag at the end of the content does not have (the byte before the end
        // may then be inside a character).
        let close = if b[end - 1] == b'>' { end - 1 } else { end };
        let tag = &html[i + 1..close.max(i + 1)];
        let closing = tag.starts_with('/');
        let raw = tag.trim_start_matches('/');
        let name = tag_name(&raw[..raw.bytes().take_while(u8::is_ascii_alphanumeric).count()]);
        let name = name.as_ref();
        i = end;
        match (name, closing) {
            ("h1" | "h2" | "h3", false) => {
                if let Some(id) = attr(tag, "id") {
                    sections.push(Section {
                        anchor: decode_attr(id),
                        heading: String::new(),
                        text: String::new(),
                    });
                    in_heading = Some(name.to_string());
                }
            }
            ("h1" | "h2" | "h3", true) if in_heading.as_deref() == Some(name) => {
                in_heading = None;
            }
            ("script" | "style", false) => {
                i = closing_tag(html, i, name);
            }
            _ => {
                // Block boundaries separate words.
                if let Some(s) = sections.last_mut() {
                    let target = if in_heading.is_some() {
                        &mut s.heading
                    } else {
                        &mut s.text
                    };
                    if !target.ends_with(' ') && !target.is_empty() && is_block(name) {
                        target.push(' ');
                    }
                }
            }
        }
    }
    for s in &mut sections {
        s.heading = s.heading.trim().to_string();
        s.text = s.text.trim().to_string();
    }
    sections.retain(|s| !(s.anchor.is_empty() && s.text.is_empty()));
    SearchDoc {
        url: html_path.to_string(),
        title: title.to_string(),
        sections,
    }
}

fn is_block(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "div"
            | "br"
            | "li"
            | "td"
            | "th"
            | "tr"
            | "dt"
            | "dd"
            | "pre"
            | "blockquote"
            | "h4"
            | "h5"
            | "h6"
            | "table"
            | "ul"
            | "ol"
            | "section"
            | "span"
    )
}

/// Appends `text` with runs of whitespace made one space.
fn push_text(out: &mut String, text: &str) {
    for (k, part) in text.split_whitespace().enumerate() {
        if (k > 0 || text.starts_with(char::is_whitespace))
            && !out.is_empty()
            && !out.ends_with(' ')
        {
            out.push(' ');
        }
        out.push_str(part);
    }
    if text.ends_with(char::is_whitespace) && !out.is_empty() && !out.ends_with(' ') {
        out.push(' ');
    }
}

/// The index of the `>` ending the tag that starts at `start`, plus one (quotes respected).
fn tag_end(html: &str, start: usize) -> usize {
    let b = html.as_bytes();
    let mut q: Option<u8> = None;
    for (k, &c) in b.iter().enumerate().skip(start + 1) {
        match q {
            Some(x) if c == x => q = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => q = Some(c),
            None if c == b'>' => return k + 1,
            None => {}
        }
    }
    b.len()
}

/// The raw value of attribute `name` in a tag's text.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(k) = rest.find(name) {
        let before = rest[..k].chars().last();
        let after = &rest[k + name.len()..];
        if before.is_some_and(char::is_whitespace) {
            if let Some(v) = after.trim_start().strip_prefix('=') {
                let v = v.trim_start();
                let q = v.chars().next()?;
                if q == '"' || q == '\'' {
                    let v = &v[1..];
                    return v.find(q).map(|e| &v[..e]);
                }
                return v.split(|c: char| c.is_whitespace() || c == '>').next();
            }
        }
        rest = after;
    }
    None
}

/// The words of a text as the index and the searcher split them: lowercase runs of letters, digits and `_`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && w.chars().count() <= TERM_MAX)
        .map(str::to_lowercase)
}

/// [`words`] without a copy of the words that are lowercase already.
fn word_slices(text: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && w.chars().count() <= TERM_MAX)
        .map(|w| {
            if w.is_ascii() && !w.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Borrowed(w)
            } else {
                std::borrow::Cow::Owned(w.to_lowercase())
            }
        })
}

/// The fragment a term's postings live in: its first two characters, as hex of their UTF-8 bytes.
pub fn fragment_key(term: &str) -> String {
    let prefix: String = term.chars().take(2).collect();
    let mut out = String::with_capacity(prefix.len() * 2);
    for b in prefix.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The files of the index, by path under the site root (`search/...`), from every page's document in navigation
/// order.
pub fn index<D: std::borrow::Borrow<SearchDoc>>(docs: &[D]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    index_with(docs, &mut |name, bytes| {
        files.insert(name, bytes);
    });
    files
}

/// [`index`], each file handed to `put` as soon as it is complete instead of all of them at the end, so that the
/// whole index is never held at once (it is made when every page's text is held: the build's peak memory).
pub fn index_with<D: std::borrow::Borrow<SearchDoc>>(
    docs: &[D],
    put: &mut dyn FnMut(String, Vec<u8>),
) {
    let docs: Vec<&SearchDoc> = docs.iter().map(|d| d.borrow()).collect();
    // The documents' chunks first: written and dropped before the term maps are made.
    let mut chunks: Vec<usize> = Vec::new();
    let mut chunk: Vec<Value> = Vec::new();
    let mut chunk_bytes = 0usize;
    let mut first = 0usize;
    let mut flush = |chunk: &mut Vec<Value>, n: usize| {
        let key = format!("d{n}");
        put(
            format!("search/d/{n}.js"),
            fragment_js(&key, &Value::Array(std::mem::take(chunk))),
        );
    };
    for (p, doc) in docs.iter().enumerate() {
        if chunk.is_empty() {
            first = p;
        }
        let secs: Vec<Value> = doc
            .sections
            .iter()
            .map(|s| json!([s.anchor, s.heading, clip(&s.text, TEXT_MAX)]))
            .collect();
        let v = json!([doc.url, doc.title, secs]);
        chunk_bytes += doc
            .sections
            .iter()
            .map(|s| s.text.len().min(TEXT_MAX))
            .sum::<usize>()
            + 64;
        chunk.push(v);
        if chunk_bytes >= CHUNK_BYTES {
            flush(&mut chunk, chunks.len());
            chunks.push(first);
            chunk_bytes = 0;
        }
    }
    if !chunk.is_empty() {
        flush(&mut chunk, chunks.len());
        chunks.push(first);
    }
    // term -> postings (page, section, weight), in page order. Each term occurs once per section, so the order in
    // which a section's terms are visited does not matter.
    let mut terms: HashMap<String, Vec<u32>> = HashMap::default();
    let mut sections = 0usize;
    let mut tf: HashMap<std::borrow::Cow<str>, u32> = HashMap::default();
    for (p, doc) in docs.iter().enumerate() {
        for (s, sec) in doc.sections.iter().enumerate() {
            sections += 1;
            tf.clear();
            for w in word_slices(&sec.heading) {
                *tf.entry(w).or_default() += 3;
            }
            if s == 0 || sec.anchor.is_empty() {
                for w in word_slices(&doc.title) {
                    *tf.entry(w).or_default() += 3;
                }
            }
            for w in word_slices(&sec.text) {
                *tf.entry(w).or_default() += 1;
            }
            for (w, &n) in &tf {
                let postings = [p as u32, s as u32, n];
                match terms.get_mut(w.as_ref()) {
                    Some(list) => list.extend(postings),
                    None => {
                        terms.insert(w.to_string(), postings.to_vec());
                    }
                }
            }
        }
    }
    drop(tf);
    // Each fragment's JSON object, its terms in order (written as serde_json writes a map of them). The terms of a
    // fragment (those that share their first two characters) are next to each other in sorted order, so each
    // fragment is complete, and handed on, when the next begins.
    let mut sorted: Vec<(String, Vec<u32>)> = terms.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut keys: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut done = |key: &str, text: &mut String| {
        text.push('}');
        put(format!("search/t/{key}.js"), fragment_js_text(key, text));
        text.clear();
    };
    for (term, postings) in sorted {
        let key = fragment_key(&term);
        if keys.last() != Some(&key) {
            if let Some(last) = keys.last() {
                done(last, &mut text);
            }
            keys.push(key);
        }
        text.push(if text.is_empty() { '{' } else { ',' });
        text.push_str(&serde_json::to_string(&term).unwrap_or_default());
        text.push_str(":[");
        for (i, n) in postings.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{n}");
        }
        text.push(']');
    }
    if let Some(last) = keys.last() {
        done(last, &mut text);
    }
    // `keys` is in sorted order: hex of the first bytes sorts as the bytes do.
    let meta = json!({
        "pages": docs.len(),
        "sections": sections,
        "chunks": chunks,
        "fragments": keys,
    });
    put("search/meta.js".to_string(), fragment_js("meta", &meta));
}

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `window.search.fragment("key", data);`: a fragment as a script that hands its data to the searcher. `<` is
/// escaped so that no text can close a script element.
fn fragment_js(key: &str, data: &Value) -> Vec<u8> {
    fragment_js_text(key, &serde_json::to_string(data).unwrap_or_default())
}

/// [`fragment_js`] of data already written as JSON.
fn fragment_js_text(key: &str, json: &str) -> Vec<u8> {
    let text = json.replace('<', "\\u003c");
    format!("window.search.fragment({},{text});\n", json!(key)).into_bytes()
}

/// The search scripts every page names: `searchindex.js` (the settings only: its bytes, and so its name, change only
/// with `[output.html.search]`), `searcher.js`, and an empty `elasticlunr.min.js` for themes whose `index.hbs` still
/// names it.
pub fn assets(settings: &SearchSettings) -> Vec<(&'static str, Vec<u8>)> {
    let config = json!({
        "results_options": {
            "limit_results": settings.limit_results,
            "teaser_word_count": settings.teaser_word_count,
        },
        "search_options": {
            "bool": if settings.use_boolean_and { "AND" } else { "OR" },
            "expand": settings.expand,
        },
        "index_version": 1,
    });
    let index = format!(
        "Object.assign(window.search, {});\n",
        serde_json::to_string(&config).unwrap_or_default()
    );
    vec![
        ("searchindex.js", index.into_bytes()),
        ("searcher.js", SEARCHER_JS.as_bytes().to_vec()),
        (
            "elasticlunr.min.js",
            b"/* skillbook's search does not use elasticlunr; see searcher.js. */\n".to_vec(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(content: &str) -> RenderedPage {
        RenderedPage {
            html: Vec::new(),
            content: content.to_string(),
        }
    }

    #[test]
    fn an_unclosed_tag_at_the_end_is_no_panic() {
        for content in [
            "<p>a</p><div title=\"é",
            "<p>a</p><div é",
            "<é",
            "<p>a</p><h2 id=\"x\">é",
        ] {
            let doc = document("p.html", "P", &page(content));
            assert!(
                doc.sections.iter().all(|s| !s.text.contains('<')),
                "{content}: {doc:?}"
            );
        }
    }

    #[test]
    fn a_page_splits_at_headings_with_ids() {
        let doc = document(
            "a/b.html",
            "Raft",
            &page("<h1 id=\"raft\"><a class=\"header\" href=\"#raft\">Raft</a></h1>\n<p>Leader &amp; log.</p><script>x</script>\n<h2 id=\"safety\"><a href=\"#safety\">Safety</a></h2><ul><li>one</li><li>two</li></ul>"),
        );
        assert_eq!(doc.sections.len(), 2, "{doc:?}");
        assert_eq!(doc.sections[0].anchor, "raft");
        assert_eq!(doc.sections[0].heading, "Raft");
        assert_eq!(doc.sections[0].text, "Leader & log.");
        assert_eq!(doc.sections[1].heading, "Safety");
        assert_eq!(doc.sections[1].text, "one two");
    }

    #[test]
    fn every_term_is_in_the_fragment_its_prefix_names() {
        let docs = vec![document(
            "x.html",
            "X",
            &page("<h1 id=\"x\">Quorum</h1><p>Quorums über alles</p>"),
        )];
        let files = index(&docs);
        let q =
            String::from_utf8(files[&format!("search/t/{}.js", fragment_key("quorum"))].clone())
                .unwrap();
        assert!(
            q.contains("\"quorum\":[0,0,") && q.contains("\"quorums\""),
            "{q}"
        );
        let u = String::from_utf8(files[&format!("search/t/{}.js", fragment_key("über"))].clone())
            .unwrap();
        assert!(u.contains("\"über\""), "{u}");
        let meta = String::from_utf8(files["search/meta.js"].clone()).unwrap();
        assert!(
            meta.starts_with("window.search.fragment(\"meta\","),
            "{meta}"
        );
    }

    #[test]
    fn settings_file_does_not_depend_on_content() {
        let s = SearchSettings {
            enable: true,
            limit_results: 30,
            teaser_word_count: 30,
            use_boolean_and: true,
            expand: true,
            copy_js: true,
        };
        assert_eq!(assets(&s), assets(&s));
    }
}
