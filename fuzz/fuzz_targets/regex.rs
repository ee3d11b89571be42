//! The vendored fancy-regex's speed-ups change no result: a pattern and a haystack, searched with and without them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skillbook_fuzz::targets::regex(data));
