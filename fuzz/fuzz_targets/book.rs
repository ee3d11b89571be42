//! A book: a content tree with its own `book.toml` and `theme/`, built in memory as `skillbook build` builds it.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::book(data)));
