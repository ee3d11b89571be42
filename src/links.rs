//! Links: the relative links and images of a markdown text, resolved against the plugin's files, and rebased when a
//! text moves to another folder in the compiled plugin (a pattern becomes a reference, or part of an agent).

use mdbook_markdown::pulldown_cmark::{Event, Options, Parser, Tag};
use std::ops::Range;

/// A relative link or image in a markdown text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Byte range of the destination as written in the text.
    pub range: Range<usize>,
    /// The destination as written (`../scripts/run.py#x`).
    pub dest: String,
    /// Its path part, percent-decoded, without `#fragment` or `?query` (`../scripts/run.py`); empty for `#x`.
    pub path: String,
}

/// The markdown options of every other reader of markdown, so that a link is a link for all of them.
fn options() -> Options {
    crate::parse::markdown_options()
}

/// Whether a destination is a path inside the plugin: not a URL (`https:`, `mailto:`), not an anchor alone, not
/// absolute, not a placeholder (`${CLAUDE_PLUGIN_ROOT}`, `{{x}}`).
fn is_relative(dest: &str) -> bool {
    let scheme = dest.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    !(dest.is_empty()
        || scheme
        || dest.starts_with('#')
        || dest.starts_with('/')
        || dest.starts_with('\\')
        || dest.starts_with('~')
        || dest.contains("${")
        || dest.contains("{{")
        || dest.contains('<'))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            // Two hex digits, read as bytes: the text after `%` may be any character.
            let hex = |b: u8| char::from(b).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every relative link and image of `text` (outside code), in text order. A parsed document holds its body's:
/// [`crate::parse::Document::links`]. (Not in the order the parser opens them: a link in an image's description,
/// `![see [a](a.md)](b.png)`, opens after the image, and its destination comes before the image's.)
pub fn relative_links(text: &str) -> Vec<Link> {
    let mut links: Vec<Link> = Parser::new_ext(text, options())
        .into_offset_iter()
        .filter_map(|(event, range)| link_at(text, &event, range))
        .collect();
    links.sort_by_key(|l| l.range.start);
    links
}

/// The relative link or image that `event` (at `range` of `text`) opens, if it opens one: for a pass over the events
/// of a text that also does other things with them.
pub fn link_at(text: &str, event: &Event, range: Range<usize>) -> Option<Link> {
    let dest = match event {
        Event::Start(Tag::Link { dest_url, .. }) | Event::Start(Tag::Image { dest_url, .. }) => {
            dest_url
        }
        _ => return None,
    };
    if !is_relative(dest) {
        return None;
    }
    let raw = &text[range.clone()];
    let needle = format!("]({dest}");
    let i = raw.rfind(&needle)?;
    let start = range.start + i + 2;
    let path = dest.split(['#', '?']).next().unwrap_or("");
    Some(Link {
        range: start..start + dest.len(),
        dest: dest.to_string(),
        path: percent_decode(path),
    })
}

/// The destination of the inline link (not an image) that `event` (at `range` of `text`) opens, as written, and its
/// range in `text`: what a rewrite of link destinations edits. `None` for other events, and for a link whose
/// destination is not written after `](` (reference links, autolinks).
pub fn inline_link_at(
    text: &str,
    event: &Event,
    range: Range<usize>,
) -> Option<(Range<usize>, String)> {
    let Event::Start(Tag::Link { dest_url, .. }) = event else {
        return None;
    };
    let raw = &text[range.clone()];
    let needle = format!("]({dest_url}");
    let i = raw.rfind(&needle)?;
    let start = range.start + i + 2;
    Some((start..start + dest_url.len(), dest_url.to_string()))
}

/// `path` joined to the folder `dir` (both relative to one root, `/`-separated), with `.` and `..` resolved; `None`
/// when it climbs above the root.
pub fn join(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The folder of a `/`-separated path ("" at the root).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// The relative path from the folder `from_dir` to `to` (both relative to one root).
pub fn relative(from_dir: &str, to: &str) -> String {
    let from: Vec<&str> = from_dir.split('/').filter(|p| !p.is_empty()).collect();
    let to_parts: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<&str> = vec![".."; from.len() - common];
    out.extend(&to_parts[common..]);
    if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    }
}

/// Rewrites the relative links of `text`, written in the folder `src_dir`, for a copy of the text that lives in the
/// folder `out_dir`: `dest_of` maps a target (its path relative to the root, as resolved from `src_dir`) to where it
/// is in the output, or `None` to leave the link alone. Fragments and queries are kept.
pub fn rebase(
    text: &str,
    src_dir: &str,
    out_dir: &str,
    dest_of: &dyn Fn(&str) -> Option<String>,
) -> String {
    apply(text, &rebase_edits(text, src_dir, out_dir, dest_of))
}

/// The edits [`rebase`] makes: each link destination's byte range in `text` and what replaces it, in text order.
pub fn rebase_edits(
    text: &str,
    src_dir: &str,
    out_dir: &str,
    dest_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<(Range<usize>, String)> {
    edits_for(&relative_links(text), src_dir, out_dir, None, dest_of)
}

/// [`rebase`] of a parsed document's body, from the links its parse found ([`crate::parse::Document::links`]): the
/// same text, without parsing the body again.
pub fn rebase_doc(
    doc: &crate::parse::Document,
    src_dir: &str,
    out_dir: &str,
    dest_of: &dyn Fn(&str) -> Option<String>,
) -> String {
    let edits = edits_for(&doc.links, src_dir, out_dir, None, dest_of);
    apply(doc.body(), &edits)
}

/// The edits of [`rebase_edits`] for a text that becomes a system prompt (a compiled agent's body): a link whose
/// target is inside the plugin at `plugin_base` (its folder in the output, `""` or ending in `/`) becomes the path
/// Claude Code gives a plugin agent, `${CLAUDE_PLUGIN_ROOT}/<path in the plugin>`, since a path relative to the agent's
/// file means nothing to the model that reads the prompt. Other links are rebased for `out_dir` as [`rebase_edits`]
/// does.
pub fn plugin_root_edits(
    text: &str,
    src_dir: &str,
    out_dir: &str,
    plugin_base: &str,
    dest_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<(Range<usize>, String)> {
    edits_for(
        &relative_links(text),
        src_dir,
        out_dir,
        Some(plugin_base),
        dest_of,
    )
}

/// The path a plugin agent reads for `path` (relative to the plugin's folder).
pub fn plugin_root(path: &str) -> String {
    if path.is_empty() {
        "${CLAUDE_PLUGIN_ROOT}".to_string()
    } else {
        format!("${{CLAUDE_PLUGIN_ROOT}}/{path}")
    }
}

fn edits_for(
    links: &[Link],
    src_dir: &str,
    out_dir: &str,
    root: Option<&str>,
    dest_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<(Range<usize>, String)> {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for link in links {
        if link.path.is_empty() {
            continue;
        }
        let Some(target) = join(src_dir, &link.path) else {
            continue;
        };
        let Some(new_target) = dest_of(&target) else {
            continue;
        };
        let suffix = &link.dest[link.dest.find(['#', '?']).unwrap_or(link.dest.len())..];
        let inside = root.and_then(|base| {
            if base.is_empty() {
                Some(new_target.as_str())
            } else {
                new_target
                    .strip_prefix(base)
                    .or_else(|| (format!("{new_target}/") == base).then_some(""))
            }
        });
        if let Some(rest) = inside {
            let mut new = plugin_root(rest);
            if link.path.ends_with('/') && !new.ends_with('/') {
                new.push('/');
            }
            edits.push((link.range.clone(), format!("{new}{suffix}")));
            continue;
        }
        if join(out_dir, &link.path).as_deref() == Some(new_target.as_str()) {
            continue; // it still leads there from the new folder: leave it as written
        }
        let mut new = relative(out_dir, &new_target);
        if link.path.ends_with('/') && !new.ends_with('/') {
            new.push('/');
        }
        let new = format!("{new}{suffix}");
        if new != link.dest {
            edits.push((link.range.clone(), new));
        }
    }
    ordered(edits)
}

/// `edits` as [`apply`] and [`shift`] need them: sorted by position, and an edit that starts inside one kept before
/// it left out (the text there stays as written).
pub fn ordered(mut edits: Vec<(Range<usize>, String)>) -> Vec<(Range<usize>, String)> {
    edits.sort_by_key(|(r, _)| r.start);
    let mut end = 0;
    edits.retain(|(r, _)| {
        let keep = r.start >= end;
        if keep {
            end = r.end;
        }
        keep
    });
    edits
}

/// `text` with every inline link and image whose destination `drop` accepts replaced by its text (an image by its
/// alt text): for a link that cannot lead anywhere from where the text goes. Links inside code are not links.
pub fn unlink(text: &str, drop: &dyn Fn(&str) -> bool) -> String {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut open: Option<usize> = None;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        let dest = match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => dest_url,
            _ => continue,
        };
        // A link inside a link's text (an image in a link) goes with the outer one.
        if open.is_some_and(|end| range.start < end) || !drop(&dest) {
            continue;
        }
        let raw = &text[range.clone()];
        let needle = format!("]({dest}");
        let Some(close) = raw.rfind(&needle) else {
            continue;
        };
        let start = if raw.starts_with("![") { 2 } else { 1 };
        if close < start {
            continue;
        }
        open = Some(range.end);
        edits.push((range.clone(), raw[start..close].to_string()));
    }
    apply(text, &edits)
}

/// `text` with `edits` (sorted, not overlapping) applied.
pub fn apply(text: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (r, new) in edits {
        out.push_str(&text[pos..r.start]);
        out.push_str(new);
        pos = r.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Where a byte offset of `text` is once `edits` are applied (an offset inside an edited range maps to its start).
pub fn shift(offset: usize, edits: &[(Range<usize>, String)]) -> usize {
    let mut delta: isize = 0;
    for (r, new) in edits {
        if r.end <= offset {
            delta += new.len() as isize - r.len() as isize;
        } else if r.start < offset {
            return (r.start as isize + delta) as usize;
        } else {
            break;
        }
    }
    (offset as isize + delta) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_reads_two_hex_digits_and_leaves_anything_else() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        // A `%` before a character of several bytes, or before fewer than two hex digits, stays as it is.
        assert_eq!(percent_decode("%a\u{feff}x"), "%a\u{feff}x");
        assert_eq!(percent_decode("x%\u{feff}"), "x%\u{feff}");
        assert_eq!(percent_decode("%+a%zz%4"), "%+a%zz%4");
    }

    #[test]
    fn finds_relative_links_and_images_outside_code() {
        let text = "[a](x.md) ![i](img/a%20b.png) [u](https://x.org) [m](mailto:a@b) [h](#top)\n\
                    [f](../s/y.md#sec) [p](${CLAUDE_PLUGIN_ROOT}/x) `[c](no.md)`\n\n```\n[d](no.md)\n```\n";
        let got: Vec<(String, String)> = relative_links(text)
            .into_iter()
            .map(|l| (l.dest, l.path))
            .collect();
        assert_eq!(
            got,
            vec![
                ("x.md".into(), "x.md".into()),
                ("img/a%20b.png".into(), "img/a b.png".into()),
                ("../s/y.md#sec".into(), "../s/y.md".into()),
            ]
        );
    }

    /// Found by the `pipeline` fuzz target (`fuzz/regressions/pipeline/link-in-an-image-description`): the parser
    /// opens a link in an image's description after the image, so the edits came out of order and the compiled agent
    /// panicked when they were applied.
    #[test]
    fn a_link_in_an_image_description_is_rebased_in_text_order() {
        let text = "See ![the flow [run.sh](../scripts/run.sh) and page](../SKILL.md).\n";
        assert_eq!(
            relative_links(text)
                .into_iter()
                .map(|l| l.dest)
                .collect::<Vec<_>>(),
            ["../scripts/run.sh", "../SKILL.md"]
        );
        let dest_of = |t: &str| Some(format!("out/{t}"));
        assert_eq!(
            rebase(text, "skills/s/patterns", "agents", &dest_of),
            "See ![the flow [run.sh](../out/skills/s/scripts/run.sh) and page](../out/skills/s/SKILL.md).\n"
        );
        assert_eq!(
            apply(
                text,
                &plugin_root_edits(text, "skills/s/patterns", "agents", "", &|t| Some(
                    t.to_string()
                ))
            ),
            "See ![the flow [run.sh](${CLAUDE_PLUGIN_ROOT}/skills/s/scripts/run.sh) and \
             page](${CLAUDE_PLUGIN_ROOT}/skills/s/SKILL.md).\n"
        );
    }

    #[test]
    fn join_relative_and_rebase() {
        assert_eq!(
            join("skills/s/patterns", "../scripts/a.py").as_deref(),
            Some("skills/s/scripts/a.py")
        );
        assert_eq!(join("", "../x"), None);
        assert_eq!(
            relative("agents", "skills/s/scripts/a.py"),
            "../skills/s/scripts/a.py"
        );
        assert_eq!(
            relative("skills/s/references", "skills/s/references/x.md"),
            "x.md"
        );
        let text = "[a](../scripts/a.py) [b](img.png#x) [c](gone.md) [d](https://x.org) [e](./../../../agents/x.md)";
        let out = rebase(text, "skills/s/patterns", "agents", &|t| match t {
            "skills/s/scripts/a.py" => Some(t.to_string()),
            "skills/s/patterns/img.png" => Some(t.to_string()),
            "agents/x.md" => Some(t.to_string()),
            _ => None,
        });
        assert_eq!(
            out,
            "[a](../skills/s/scripts/a.py) [b](../skills/s/patterns/img.png#x) [c](gone.md) [d](https://x.org) [e](x.md)"
        );
    }

    #[test]
    fn links_into_the_plugin_become_plugin_root_paths() {
        let text = "[g](../docs/g.md#x) [d](../docs/) [o](../../other/a.md) [w](https://x.org) [h](#top) [n](gone.md)";
        let dest = |t: &str| match t {
            "plugins/b/docs/g.md" | "plugins/b/docs" => Some(t.to_string()),
            "plugins/other/a.md" => Some(t.to_string()),
            _ => None,
        };
        let edits = plugin_root_edits(
            text,
            "plugins/b/agents",
            "plugins/b/agents",
            "plugins/b/",
            &dest,
        );
        assert_eq!(
            apply(text, &edits),
            "[g](${CLAUDE_PLUGIN_ROOT}/docs/g.md#x) [d](${CLAUDE_PLUGIN_ROOT}/docs/) [o](../../other/a.md) [w](https://x.org) [h](#top) [n](gone.md)"
        );
        let edits = plugin_root_edits("[r](../README.md)", "agents", "agents", "", &|t| {
            Some(t.to_string())
        });
        assert_eq!(
            apply("[r](../README.md)", &edits),
            "[r](${CLAUDE_PLUGIN_ROOT}/README.md)"
        );
    }

    #[test]
    fn unlink_keeps_the_text() {
        let text = "[a](x.md) ![i](y.png) [k](keep.md) `[c](x.md)` [**b**](x.md#f)";
        let out = unlink(text, &|d| d != "keep.md");
        assert_eq!(out, "a i [k](keep.md) `[c](x.md)` **b**");
    }

    #[test]
    fn offsets_shift_with_the_edits() {
        let text = "[a](x.md) stub [b](y.md) end";
        let edits = vec![(4..8, "../x.md".to_string()), (19..23, "z.md".to_string())];
        let out = apply(text, &edits);
        assert_eq!(out, "[a](../x.md) stub [b](z.md) end");
        let stub = text.find("stub").unwrap();
        assert_eq!(&out[shift(stub, &edits)..shift(stub + 4, &edits)], "stub");
        assert_eq!(&out[shift(text.find("end").unwrap(), &edits)..], "end");
        assert_eq!(shift(0, &edits), 0);
        assert_eq!(shift(6, &edits), 4, "inside an edit: its start");
    }
}
