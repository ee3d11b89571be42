//! Timing: per-stage wall time (and the process's peak memory so far) printed to stderr when the environment
//! variable `SKILLBOOK_TIMINGS` is set, for profiling a build. Off by default; it never changes any output.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

/// Whether `SKILLBOOK_TIMINGS` is set (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SKILLBOOK_TIMINGS").is_some_and(|v| !v.is_empty()))
}

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The nesting of the stage being timed on this thread.
pub fn depth() -> usize {
    DEPTH.with(Cell::get)
}

/// Runs `f` (on another thread) as if nested `depth` deep, so that its stages print indented where they belong.
pub fn nested<T>(depth: usize, f: impl FnOnce() -> T) -> T {
    let before = DEPTH.with(|d| d.replace(depth));
    let value = f();
    DEPTH.with(|d| d.set(before));
    value
}

/// Runs `f`, and when timings are on prints `name` with its wall time, indented by nesting.
pub fn time<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let depth = DEPTH.with(|d| {
        let v = d.get();
        d.set(v + 1);
        v
    });
    let start = Instant::now();
    let cpu = cpu_time();
    let value = f();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let cpu = cpu_time().zip(cpu).map(|(b, a)| (b.0 - a.0, b.1 - a.1));
    DEPTH.with(|d| d.set(depth));
    eprintln!(
        "timing: {:indent$}{name}: {ms:.1} ms (end {:.1}){}{}",
        "",
        process_start().elapsed().as_secs_f64() * 1000.0,
        cpu.map(|(u, s)| format!(" (cpu: user {u:.0} ms, sys {s:.0} ms)"))
            .unwrap_or_default(),
        peak_memory()
            .map(|kb| format!(" (peak RSS {} MB)", kb / 1024))
            .unwrap_or_default(),
        indent = depth * 2
    );
    value
}

/// The process's peak resident set size so far, in KiB (Linux).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The process's user and system CPU time so far, in milliseconds (all threads).
#[cfg(unix)]
fn cpu_time() -> Option<(f64, f64)> {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value to start from.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    (rc == 0).then(|| (ms(usage.ru_utime), ms(usage.ru_stime)))
}

#[cfg(not(unix))]
fn cpu_time() -> Option<(f64, f64)> {
    None
}

/// When the process started, as far as timings are concerned: the first call (the binary makes it first thing in
/// `main`), so that each timing line can say when its stage ended.
pub fn process_start() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}
