//! Memory: gives the executable's read-only data pages back to the kernel once the data compiled into the binary
//! (the tokenizers' vocabularies, the syntax definitions) has been decoded into the heap.
//!
//! cl100k's vocabulary is `include_bytes!` data in bpe-openai (o200k is counted from tables read in place, see
//! `tokenize::o200k`, and is never decoded), and the syntax set is decoded from compiled-in data the same way. Decoding
//! touches every page of that data, and the kernel then counts them in the process's resident set for the rest of the
//! build, although nothing reads them again. [`release_read_only_data`] drops them from the process (they stay in the
//! page cache; a page read again is mapped again, from the same file, with the same bytes).

/// Drops the resident pages of the executable's read-only, never-written mappings (`r--p`, no anonymous or dirty
/// pages: the RELRO segment, written by the loader before it was made read-only, is left alone). Linux only; a no-op
/// elsewhere, or when `/proc` cannot be read.
pub fn release_read_only_data() {
    #[cfg(target_os = "linux")]
    linux::release();
}

#[cfg(target_os = "linux")]
mod linux {
    /// A mapping of the executable that can be dropped: its start and length.
    pub(super) fn droppable(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        // (start, end, whether it is the executable's r--p mapping, whether a dirty or anonymous page was seen)
        let mut current: Option<(usize, usize, bool, bool)> = None;
        let mut finish = |c: Option<(usize, usize, bool, bool)>| {
            if let Some((start, end, candidate, dirty)) = c {
                if candidate && !dirty && end > start {
                    out.push((start, end - start));
                }
            }
        };
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let Some(first) = fields.next() else { continue };
            if let Some((a, b)) = first.split_once('-') {
                if let (Ok(start), Ok(end)) =
                    (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    finish(current.take());
                    let perms = fields.next().unwrap_or("");
                    let path = fields.nth(3).unwrap_or("");
                    current = Some((start, end, perms == "r--p" && path == exe, false));
                    continue;
                }
            }
            if matches!(first, "Private_Dirty:" | "Shared_Dirty:" | "Anonymous:") {
                let kb: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(1);
                if kb != 0 {
                    if let Some(c) = current.as_mut() {
                        c.3 = true;
                    }
                }
            }
        }
        finish(current.take());
        out
    }

    pub(super) fn release() {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let Some(exe) = exe.to_str() else { return };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        for (start, len) in droppable(&smaps, exe) {
            // SAFETY: the range is a whole mapping of the executable file, read-only and private, in which no page
            // was ever written (no dirty or anonymous pages), so every page holds the file's bytes: MADV_DONTNEED
            // unmaps them, and a later read maps the same bytes again from the file. No Rust object is invalidated.
            unsafe {
                libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::droppable;

    #[test]
    fn only_clean_read_only_mappings_of_the_executable_are_dropped() {
        let smaps = "\
1000-3000 r--p 00000000 fe:00 5 /bin/sb
Rss:               8 kB
Private_Dirty:     0 kB
Anonymous:         0 kB
3000-4000 r-xp 00002000 fe:00 5 /bin/sb
Private_Dirty:     0 kB
4000-5000 r--p 00003000 fe:00 5 /bin/sb
Private_Dirty:     4 kB
Anonymous:         4 kB
5000-6000 r--p 00000000 fe:00 6 /lib/other.so
Private_Dirty:     0 kB
6000-8000 r--p 00004000 fe:00 5 /bin/sb
Private_Dirty:     0 kB
Anonymous:         0 kB
";
        assert_eq!(
            droppable(smaps, "/bin/sb"),
            vec![(0x1000, 0x2000), (0x6000, 0x2000)]
        );
    }

    #[test]
    fn releasing_keeps_the_data_readable() {
        static DATA: [u8; 64 * 1024] = [7; 64 * 1024];
        let before: u64 = DATA.iter().map(|&b| u64::from(b)).sum();
        super::release_read_only_data();
        let after: u64 = std::hint::black_box(&DATA)
            .iter()
            .map(|&b| u64::from(b))
            .sum();
        assert_eq!(before, after);
    }
}
