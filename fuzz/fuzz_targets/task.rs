//! A bundle for a task (`bundle --for TEXT`): the task's words in any script, BM25 relevance and the packing it
//! orders. The input is the task text, then optionally a 0xFF byte and a pattern file's text.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::task(data)));
