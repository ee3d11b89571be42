//! The lenient-frontmatter round trip: whatever the parser reads (strictly or leniently), the compiled plugin writes
//! as strict YAML that decodes to the same values.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::roundtrip(data)));
