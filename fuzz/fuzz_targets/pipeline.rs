//! The whole pipeline on a small content tree made from the fuzzer's bytes (`=== path` lines, each followed by the
//! file; see `tree_from_bytes`), written to a RAM disk: load, parse, check, expand, bundle, plugin emit, report.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skillbook_fuzz::targets::pipeline(data));
