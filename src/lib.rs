//! skillbook compiles Claude Code plugin content (agents, skills, pattern files) into a compiled plugin, a check
//! report and, in later stages, a documentation site and token-budgeted prompt bundles.
//!
//! The pipeline runs one way: [`load`] reads files, [`parse`] reads their structure, [`expand`] replaces stubs,
//! [`check`] finds problems, [`emit`] makes outputs in memory and [`write`] puts them on disk. [`driver`] runs it.

pub mod check;
pub mod config;
pub mod diagnostic;
pub mod driver;
pub mod emit;
pub mod engine;
pub mod expand;
pub mod frontmatter;
pub mod highlight;
pub mod links;
pub mod lint;
pub mod load;
pub mod memory;
pub mod parse;
pub mod scaffold;
pub mod serve;
pub mod timing;
pub mod tokenize;
pub mod watch;
pub mod write;

/// skillbook's hash maps and sets: hashed with foldhash and a fixed seed instead of std's SipHash with a seed drawn
/// at every start. Their order is never what an output is sorted by, but it decides which code runs (a map's probes, the
/// first of two equal keys met), and with a fixed seed the same input runs the same code in every process: libFuzzer
/// needs that to tell an input that reaches new code from one that drew another seed, and `fuzz/plateau.sh` to count
/// a corpus's edges exactly. Faster, too, for the short keys skillbook hashes. No map is keyed by what a network peer
/// sends (`serve` keeps none), so a fixed seed opens no collision attack.
#[allow(clippy::disallowed_types)]
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
/// A set hashed as [`HashMap`] is.
#[allow(clippy::disallowed_types)]
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::FixedState>;

/// The process exit codes: 0 clean or warnings only, 1 content errors, 2 usage or I/O failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    ContentErrors = 1,
    Failure = 2,
}

#[cfg(test)]
mod tests {
    /// std's maps seed each map differently (a process's seed, advanced per map), so two maps filled alike would
    /// list their keys in different orders; skillbook's must not.
    #[test]
    fn two_maps_filled_alike_list_their_keys_alike() {
        let fill = || {
            let mut m = crate::HashMap::default();
            for i in 0..200u32 {
                m.insert(format!("key {i}"), i);
            }
            m.into_keys().collect::<Vec<_>>()
        };
        assert_eq!(fill(), fill());
        let set = || {
            (0..200u32)
                .collect::<crate::HashSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(set(), set());
    }
}
