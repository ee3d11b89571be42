//! The lenient-frontmatter round trip: whatever the parser reads (strictly or leniently), the compiled plugin writes
//! as strict YAML that decodes to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillbook::load::SourceFile;
use skillbook::parse::{parse_document, ParseOptions};
use skillbook_fuzz::assert_round_trip;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Fuzz the YAML itself: the fences are given.
    let text = if text.starts_with("---") {
        text.to_string()
    } else {
        format!("---\n{text}\n---\nbody\n")
    };
    let file = SourceFile {
        rel: "agents/fuzz.md".to_string(),
        text,
    };
    let mut diags = Vec::new();
    if let Some(doc) = parse_document(file, &ParseOptions::default(), false, &mut diags) {
        assert_round_trip(&doc);
    }
});
