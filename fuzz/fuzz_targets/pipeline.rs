//! The whole pipeline on a small content tree made from the fuzzer's bytes (`=== path` lines, each followed by the
//! file; see `tree_from_bytes`), written to a RAM disk: load, parse, check, expand, bundle, plugin emit, report.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::pipeline(data)));
