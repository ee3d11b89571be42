//! The documentation site of a small content tree made from the fuzzer's bytes (as `pipeline`): every page generated
//! and rendered with the built-in theme, the search index, `print.html` and `llms-full.txt`, in memory.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::site(data)));
