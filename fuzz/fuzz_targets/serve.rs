//! The development server's answer to a request target: no panic, nothing outside the site, no redirect elsewhere.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::serve(data)));
