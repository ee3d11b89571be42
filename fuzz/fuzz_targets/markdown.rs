//! Markdown structure of an agent and a pattern (expertise bullets, responsibilities, stubs, `<example>` blocks,
//! skill references, covers), then check, expansion, a bundle and the compiled plugin, all in memory. The input is
//! the agent's text, then optionally a 0xFF byte and the pattern's text.
#![no_main]

use skillbook_fuzz::{on_own_thread, targets};

libfuzzer_sys::fuzz_target!(|data: &[u8]| on_own_thread(|| targets::markdown(data)));
