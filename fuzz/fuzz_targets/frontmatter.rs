//! Frontmatter split and parse, strict YAML first and the lenient line parser second: no input panics, every span
//! is a slice of the file, every diagnostic points inside it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skillbook_fuzz::targets::frontmatter(data));
