//! The whole pipeline on a small content tree made from the fuzzer's bytes (`=== path` lines, each followed by the
//! file; see `tree_from_bytes`), written to a RAM disk: load, parse, check, expand, bundle, plugin emit, report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillbook_fuzz::{materialize, pipeline, scratch, tree_from_bytes};

fuzz_target!(|data: &[u8]| {
    let tree = tree_from_bytes(data);
    if tree.is_empty() {
        return;
    }
    let root = scratch("pipeline").join("plugin");
    materialize(&tree, &root);
    pipeline(&root);
});
