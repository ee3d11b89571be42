//! The development server's answer to a request target: no panic, nothing outside the site, no redirect elsewhere.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skillbook_fuzz::targets::serve(data));
