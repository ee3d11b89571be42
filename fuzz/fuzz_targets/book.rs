//! A book: a content tree with its own `book.toml` and `theme/`, built in memory as `skillbook build` builds it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skillbook_fuzz::targets::book(data));
