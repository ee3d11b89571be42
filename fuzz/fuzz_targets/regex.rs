//! The vendored fancy-regex's speed-ups change no result: a pattern and a haystack, searched with and without them.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::regex(data)));
