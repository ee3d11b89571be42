//! Frontmatter split and parse, strict YAML first and the lenient line parser second: no input panics, every span
//! is a slice of the file, every diagnostic points inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillbook::diagnostic::Source;
use skillbook::frontmatter::{self, Split};
use skillbook_fuzz::{assert_located, assert_span_of};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let src = Source::new("agents/fuzz.md", text);
    let mut diags = Vec::new();
    match frontmatter::split(text) {
        Split::Found { yaml, body_start } => {
            assert_span_of(text, yaml.clone(), "yaml");
            assert!(yaml.end <= body_start && text.is_char_boundary(body_start));
            let fm = frontmatter::parse(&src, yaml, &mut diags);
            for f in &fm.fields {
                assert_span_of(text, f.region.clone(), "region");
                assert!(text.is_char_boundary(f.key_offset));
                let _ = fm.locate(text, &f.key, &f.key, 0);
                if let Some(v) = f.value.scalar_text() {
                    let _ = fm.locate(text, &f.key, &v, 0);
                }
            }
        }
        Split::Unterminated | Split::None => {}
    }
    assert_located(&diags, &|_| Some(text.to_string()));
});
