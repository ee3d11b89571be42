//! The lenient-frontmatter round trip: whatever the parser reads (strictly or leniently), the compiled plugin writes
//! as strict YAML that decodes to the same values.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skillbook_fuzz::targets::roundtrip(data));
