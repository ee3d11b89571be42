//! Plugin and marketplace manifests: the input is `.claude-plugin/plugin.json` of a small plugin (first byte even)
//! or `.claude-plugin/marketplace.json` of a small marketplace (odd); the tree is loaded from a RAM disk and run
//! through the pipeline.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::manifest(data)));
