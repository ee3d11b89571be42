// The hashes of the o200k tables, shared by `build.rs` (which writes the tables) and `src/tokenize/o200k.rs` (which
// reads them in place), by `include!`: both must compute the same slots.

/// A slot no key holds (both tables).
pub const EMPTY: u32 = u32::MAX;

/// The value of a prefix-table key that is a proper prefix of some token but not a token itself.
pub const PREFIX_ONLY: u32 = u32::MAX - 1;

/// FNV-1a's start: the hash of no bytes.
pub const PREFIX_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a's step: the hash of a prefix one byte longer.
#[inline]
pub fn prefix_step(h: u64, byte: u8) -> u64 {
    (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// A prefix's home slot (its hash's high bits) and tag (its low 32 bits), under `seed`.
#[inline]
pub fn prefix_slot_tag(h: u64, seed: u64, mask: usize) -> (usize, u32) {
    let m = (h ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (((m >> 32) as usize) & mask, m as u32)
}

/// A token pair's home slot.
#[inline]
pub fn pair_slot(a: u32, b: u32, mask: usize) -> usize {
    let m = ((u64::from(a) << 32) | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((m >> 32) as usize) & mask
}
