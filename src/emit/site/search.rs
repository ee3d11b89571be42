//! Site search: an inverted index split into fragments that a query loads on demand, and the script that queries it.
//!
//! - [`document`] turns one rendered page into its search document (a section per heading, as mdBook's search has):
//!   a pure function of the page, so a caller can remember it per page.
//! - [`index`] folds the documents into files under `search/`: `meta.js` (counts, which fragments exist),
//!   `t/<name>.js` (the postings of a run of consecutive terms in sorted order, from 16 KB to 128 KB unless one term's
//!   postings are longer; `meta.js` lists each fragment's first term, and the name is its first bytes in hex) and
//!   `d/<n>.js` (the pages' titles, headings and text, for the result list and its teasers, a few hundred KB each).
//!   A query loads `meta.js`, the term fragment each query word falls in (and, when it expands words, the fragments
//!   after it that begin with the word), and the document fragments of its best results.
//! - [`assets`] are the scripts every page names: `searchindex.js` holds only the `[output.html.search]` settings,
//!   so its name never changes with the content; `searcher.js` is mdBook's searcher with the fragment loader.
//!
//! Fragments are loaded as `<script>` elements (JSONP style), so search also works from `file://`.

use super::render::{closing_tag, decode_attr, tag_name, RenderedPage, SearchSettings};
use crate::HashMap;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The searcher (mdBook's `searcher.js`, MPL-2.0, with elasticlunr replaced by the fragment index).
const SEARCHER_JS: &str = include_str!("searcher.js");

/// Longest section text kept for teasers, in bytes.
const TEXT_MAX: usize = 6_000;
/// A document fragment is closed once it holds this many bytes.
const CHUNK_BYTES: usize = 256 * 1024;
/// A term fragment is closed, at the first term that [`closes_fragment`] picks, once it holds this many bytes...
const FRAGMENT_MIN: usize = 16 * 1024;
/// ...and at the latest once it holds this many.
const FRAGMENT_MAX: usize = 128 * 1024;
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

/// Whether the term fragment that `term` ends, now `bytes` long, is closed after it: at [`FRAGMENT_MAX`] bytes, or
/// past [`FRAGMENT_MIN`] at about one term in eight, chosen by the term's own hash (FNV-1a), so that where fragments
/// end does not move when terms far from there come or go.
fn closes_fragment(term: &str, bytes: usize) -> bool {
    if bytes >= FRAGMENT_MAX {
        return true;
    }
    if bytes < FRAGMENT_MIN {
        return false;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in term.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h >> 61 == 0
}

/// A term fragment's name: the hex of its first term's first 12 bytes, with `-2` (`-3`...) after it when the fragment
/// before has the same (two first terms that share their first 12 bytes).
fn fragment_name(first: &str, previous: Option<&str>) -> String {
    let mut name = String::with_capacity(24);
    for b in first.bytes().take(12) {
        let _ = write!(name, "{b:02x}");
    }
    if let Some(prev) = previous {
        let (base, n) = match prev.split_once('-') {
            Some((b, n)) => (b, n.parse::<u32>().unwrap_or(1)),
            None => (prev, 1),
        };
        if base == name {
            let _ = write!(name, "-{}", n + 1);
        }
    }
    name
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
    // Fragments of consecutive terms, each closed at a term that [`closes_fragment`] picks once it holds
    // [`FRAGMENT_MIN`] bytes: a boundary depends only on the terms near it, so an edit that adds or drops terms
    // changes the fragments that hold them, not every fragment after them.
    let mut fragments: Vec<(String, String)> = Vec::new();
    let mut first = String::new();
    let mut text = String::new();
    let mut done = |first: &str, text: &mut String, fragments: &mut Vec<(String, String)>| {
        text.push('}');
        let name = fragment_name(first, fragments.last().map(|f| f.1.as_str()));
        put(
            format!("search/t/{name}.js"),
            fragment_js_text(&format!("t{name}"), text),
        );
        fragments.push((first.to_string(), name));
        text.clear();
    };
    for (term, postings) in sorted {
        if text.is_empty() {
            first.clone_from(&term);
            text.push('{');
        } else {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(&term).unwrap_or_default());
        text.push_str(":[");
        let mut digits = itoa::Buffer::new();
        for (i, &n) in postings.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(digits.format(n));
        }
        text.push(']');
        if closes_fragment(&term, text.len()) {
            done(&first, &mut text, &mut fragments);
        }
    }
    if !text.is_empty() {
        done(&first, &mut text, &mut fragments);
    }
    // `fragments` is in term order: each entry is the first term a fragment holds and its name.
    let meta = json!({
        "pages": docs.len(),
        "sections": sections,
        "chunks": chunks,
        "fragments": fragments,
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

/// The key and data of a fragment script as [`fragment_js`] writes it, as the searcher receives them; `None` for
/// anything else. For readers of the index outside the browser (tests, the fuzz targets).
pub fn read_fragment(script: &[u8]) -> Option<(String, Value)> {
    let args = std::str::from_utf8(script)
        .ok()?
        .strip_prefix("window.search.fragment(")?
        .strip_suffix(");\n")?;
    serde_json::from_str(&format!("[{args}]")).ok()
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

    /// Each term fragment's terms (with their postings), by the fragment's path.
    type TermMaps = BTreeMap<String, serde_json::Map<String, Value>>;

    /// An index's meta list of (first term, name), and each term fragment's terms by its path.
    fn fragments_of(files: &BTreeMap<String, Vec<u8>>) -> (Vec<(String, String)>, TermMaps) {
        let (key, meta) =
            read_fragment(&files["search/meta.js"]).expect("meta.js is a fragment script");
        assert_eq!(key, "meta");
        let list: Vec<(String, String)> =
            serde_json::from_value(meta["fragments"].clone()).unwrap();
        let terms = files
            .iter()
            .filter(|(k, _)| k.starts_with("search/t/"))
            .map(|(k, v)| {
                let (_, data) = read_fragment(v).expect("a term fragment is a fragment script");
                (k.clone(), data.as_object().expect("an object").clone())
            })
            .collect();
        (list, terms)
    }

    /// Where the searcher looks for `term` (searcher.js's `termFragments`, without expansion): the last fragment whose
    /// first term is not after it.
    fn lookup<'a>(list: &'a [(String, String)], term: &str) -> Option<&'a str> {
        list.iter()
            .rev()
            .find(|(first, _)| first.as_str() <= term)
            .map(|(_, name)| name.as_str())
    }

    /// A page of `n` made-up words (of Latin and Cyrillic letters), each `seed`-dependent.
    fn many_words(n: usize, seed: u64) -> String {
        let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyzабвгдежз".chars().collect();
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut out = String::new();
        for _ in 0..n {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = 3 + (x >> 60) as usize;
            for k in 0..len {
                out.push(letters[((x >> (k * 5 % 55)) as usize) % letters.len()]);
            }
            out.push(' ');
        }
        out
    }

    #[test]
    fn every_term_is_in_the_fragment_the_meta_names_for_it() {
        let docs: Vec<SearchDoc> = (0..40)
            .map(|i| {
                document(
                    &format!("p{i}.html"),
                    "P",
                    &page(&format!(
                        "<h1 id=\"x\">Quorum</h1><p>Quorums über alles {}</p>",
                        many_words(400, i)
                    )),
                )
            })
            .collect();
        let files = index(&docs);
        let (list, fragments) = fragments_of(&files);
        assert!(list.len() > 3, "several fragments: {}", list.len());
        assert_eq!(list.len(), fragments.len(), "the meta lists every fragment");
        assert!(list.windows(2).all(|w| w[0].0 < w[1].0), "in term order");
        for path in fragments.keys() {
            assert!(
                files[path].len() <= FRAGMENT_MAX + 4096,
                "{}",
                files[path].len()
            );
        }
        let mut terms = std::collections::BTreeSet::new();
        for d in &docs {
            for s in &d.sections {
                terms.extend(words(&s.text));
            }
        }
        // Which fragments hold each term.
        let mut holds: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, terms) in &fragments {
            for term in terms.keys() {
                holds.entry(term.clone()).or_default().push(path.clone());
            }
        }
        for term in ["quorum", "quorums", "über", "alles"]
            .iter()
            .map(|t| t.to_string())
            .chain(terms)
        {
            let name = lookup(&list, &term).unwrap_or_else(|| panic!("no fragment for {term}"));
            assert_eq!(holds[&term], [format!("search/t/{name}.js")], "{term}");
        }
    }

    #[test]
    fn a_new_word_changes_only_the_fragments_near_it() {
        let docs = |extra: &str| -> Vec<SearchDoc> {
            (0..40)
                .map(|i| {
                    let more = if i == 7 { extra } else { "" };
                    document(
                        &format!("p{i}.html"),
                        "P",
                        &page(&format!("<p>{} {more}</p>", many_words(400, i))),
                    )
                })
                .collect()
        };
        let before = index(&docs(""));
        let after = index(&docs("mmmnewword"));
        let (list, _) = fragments_of(&before);
        let changed: Vec<&String> = before
            .keys()
            .filter(|k| k.starts_with("search/t/") && before.get(*k) != after.get(*k))
            .collect();
        // The word is on page 7, which appears in the postings of many terms, all after page 7's number... the
        // postings name pages by number, so only the fragment that takes the word changes, with the meta.
        assert!(list.len() > 3, "{}", list.len());
        assert_eq!(changed.len(), 1, "{changed:?} of {}", list.len());
    }

    #[test]
    fn a_fragment_script_reads_back() {
        let data = json!({"a<b": [1, 2], "über": "</script>"});
        assert_eq!(
            read_fragment(&fragment_js("t61", &data)),
            Some(("t61".to_string(), data))
        );
        assert_eq!(read_fragment(b"window.search.fragment(\"x\",{);\n"), None);
    }

    #[test]
    fn fragment_names_are_hex_and_unique() {
        assert_eq!(fragment_name("quorum", None), "71756f72756d");
        assert_eq!(fragment_name("über", None), "c3bc626572");
        let long = "abcdefghijklmnop";
        let first = fragment_name(long, None);
        assert_eq!(first, "6162636465666768696a6b6c");
        let second = fragment_name("abcdefghijklzzz", Some(&first));
        assert_eq!(second, "6162636465666768696a6b6c-2");
        assert_eq!(
            fragment_name("abcdefghijklzzzz", Some(&second)),
            "6162636465666768696a6b6c-3"
        );
        assert_eq!(fragment_name("b", Some(&second)), "62");
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
