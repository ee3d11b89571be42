//! Frontmatter split and parse, strict YAML first and the lenient line parser second: no input panics, every span
//! is a slice of the file, every diagnostic points inside it.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::frontmatter(data)));
