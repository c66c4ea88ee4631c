//! Key groups: how keys are spread over parallel subtasks, as in Flink.
//!
//! # How a key maps to its key group
//!
//! The key group of a key is `key_hash(key) % max_parallelism`, where `key_hash` is a stable
//! 64-bit hash of the key's **canonical bytes**: its [`crate::encoding`] (the bytes of
//! bincode 1.x's default options), the very bytes keyed state backends store the key as and savepoints carry (see
//! [`key_hash`](mod@key_hash) for the encoding and the hash). [`KeyHasher`] streams the
//! key's serde serialization into the hash without building the bytes, so partitioning a
//! record by its key costs one pass over the key and no allocation; [`key_group_of_bytes`]
//! gives the same key group from stored key bytes alone, which is what lets a restore put a
//! stored entry in its key group without knowing the key's type.
//!
//! The function depends only on the bytes, not on `std::hash::Hash` (whose calls into a
//! `Hasher` Rust does not promise to keep between compiler versions), nor on the platform or
//! the process. It is part of the snapshot format (format version 3 on, see
//! [`FORMAT_VERSION`](crate::storage::layout::FORMAT_VERSION)): golden tests pin the key group
//! of every built-in key type, and changing it needs a new format version with a migration.
//! Snapshots of format versions 1 and 2 were bucketed by the key's `Hash` fed to
//! [`StableHasher`]; restoring one re-buckets every keyed entry by the key group of its key
//! bytes (each subtask reads all key groups and keeps the entries of its own).
//!
//! A key whose `Serialize` fails (or serializes a sequence of unknown length) has no key
//! group; it could not be stored in keyed state either, and [`assign_to_key_group`] panics
//! on it, failing the task.
//!
//! # Ranges
//!
//! Subtask `i` of `p` owns the contiguous range of key groups given by
//! [`KeyGroupRange::for_subtask`], with Flink's formulas, so rescaling moves whole key groups.
//!
//! The runtime's in-memory hash maps hash with [`MapHasher`]: [`StableHasher`] with a
//! finalizer, which needs no stability and decides no key groups.

#[cfg(test)]
mod golden;
pub mod key_hash;

pub use key_hash::{KeyHasher, hash_bytes, hash_key};

use serde::Serialize;
use std::hash::Hasher;
use std::ops::RangeInclusive;

/// The default maximum parallelism (number of key groups), as in Flink for small jobs.
pub const DEFAULT_MAX_PARALLELISM: usize = 128;

/// The largest supported maximum parallelism (Flink's upper bound).
pub const UPPER_BOUND_MAX_PARALLELISM: usize = 1 << 15;

/// Flink's default max parallelism for a given parallelism:
/// `min(max(next_power_of_two(p + p/2), 128), 32768)`.
pub fn default_max_parallelism(parallelism: usize) -> usize {
    (parallelism + parallelism / 2)
        .next_power_of_two()
        .clamp(DEFAULT_MAX_PARALLELISM, UPPER_BOUND_MAX_PARALLELISM)
}

/// A fast, deterministic 64-bit hasher (FxHash-style multiply-rotate), the hash format
/// versions 1 and 2 bucketed keys by (see the module docs). Unlike
/// `std::collections::hash_map::DefaultHasher` it has no random seed. Hash maps use
/// [`MapHasher`], which finalizes it.
#[derive(Default, Clone, Copy)]
pub struct StableHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl StableHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for StableHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// The hasher of the runtime's in-memory hash maps (keyed state, timers, operator state):
/// [`StableHasher`] followed by the `fmix64` finalizer.
///
/// [`StableHasher`]'s last step is a multiplication, so the low bits of its hash — the bits a
/// hash table picks a bucket by — depend only on the low bits of the last word it was fed.
/// Keys that differ only in the high bytes of their last word then share a few buckets: the
/// encoded keys `"word0"` to `"word4999"` (an 8-byte length, then the bytes) take 4 of the
/// 128 values of the hash's low 7 bits, so a map of them probes long chains (BENCHMARKS.md,
/// issue 14). The finalizer spreads every input bit over the whole hash: 128 of 128. Not
/// stable across versions, and deciding no key groups.
#[derive(Default, Clone, Copy)]
pub struct MapHasher(StableHasher);

impl Hasher for MapHasher {
    #[inline]
    fn finish(&self) -> u64 {
        key_hash::fmix64(self.0.finish())
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }
}

/// A hash map of the runtime's in-memory state (keyed state, operator state), hashed with
/// [`MapHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<MapHasher>>;

/// A hash set of the runtime's in-memory state (timers), hashed with [`MapHasher`].
pub type FastSet<T> = std::collections::HashSet<T, std::hash::BuildHasherDefault<MapHasher>>;

/// The key hash of a key (see the module docs): the hash of its canonical bytes.
///
/// # Panics
/// When the key cannot be serialized (see [`hash_key`] for the fallible form).
#[inline]
pub fn key_hash<K: Serialize + ?Sized>(key: &K) -> u64 {
    hash_key(key).unwrap_or_else(|e| panic!("a key must serialize to have a key group: {e}"))
}

/// The key group a key belongs to: `key_hash(key) % max_parallelism`. Equal to
/// [`key_group_of_bytes`] of the key's encoded bytes ([`crate::encoding`]).
///
/// # Panics
/// When the key cannot be serialized (see the module docs).
#[inline]
pub fn assign_to_key_group<K: Serialize + ?Sized>(key: &K, max_parallelism: usize) -> usize {
    key_group_of_hash(key_hash(key), max_parallelism)
}

/// The key group of a key given by its canonical (encoded) bytes, as keyed state backends
/// and snapshots store it.
#[inline]
pub fn key_group_of_bytes(key_bytes: &[u8], max_parallelism: usize) -> usize {
    key_group_of_hash(hash_bytes(key_bytes), max_parallelism)
}

/// The key group of a key given by its [`hash_bytes`].
#[inline]
pub fn key_group_of_hash(key_hash: u64, max_parallelism: usize) -> usize {
    let m = max_parallelism as u64;
    // A division per record shows at millions of records per second; the maximum
    // parallelism is usually a power of two (Flink's default is), where a mask is the same.
    if m.is_power_of_two() {
        (key_hash & (m - 1)) as usize
    } else {
        (key_hash % m) as usize
    }
}

/// Restored keyed state whose key groups came from the hash of format versions 1 and 2: every
/// entry is put in the key group of its key's bytes, and a subtask keeps only the entries of
/// its own key groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rehash {
    /// The key groups of the restoring subtask.
    pub range: KeyGroupRange,
    /// The operator's max parallelism.
    pub max_parallelism: usize,
}

impl Rehash {
    /// The key group of stored key bytes, if the restoring subtask owns it.
    pub fn owned_group_of_bytes(&self, key_bytes: &[u8]) -> Option<usize> {
        let kg = key_group_of_bytes(key_bytes, self.max_parallelism);
        self.range.contains(kg).then_some(kg)
    }

    /// Whether the restoring subtask owns a key.
    pub fn keeps<K: Serialize + ?Sized>(&self, key: &K) -> bool {
        self.range
            .contains(assign_to_key_group(key, self.max_parallelism))
    }
}

/// The subtask that owns a key group (Flink's `computeOperatorIndexForKeyGroup`).
#[inline]
pub fn operator_index_for_key_group(
    max_parallelism: usize,
    parallelism: usize,
    key_group: usize,
) -> usize {
    let product = key_group * parallelism;
    if max_parallelism.is_power_of_two() {
        // A power of two (Flink's default maximum parallelism is): a shift, not a division.
        product >> max_parallelism.trailing_zeros()
    } else {
        product / max_parallelism
    }
}

/// A contiguous, inclusive range of key groups owned by one subtask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyGroupRange {
    /// First key group of the range.
    pub start: usize,
    /// Last key group of the range (inclusive).
    pub end: usize,
}

impl KeyGroupRange {
    /// The range subtask `index` of `parallelism` owns (Flink's
    /// `computeKeyGroupRangeForOperatorIndex`).
    pub fn for_subtask(max_parallelism: usize, parallelism: usize, index: usize) -> Self {
        let start = (index * max_parallelism).div_ceil(parallelism);
        let end = ((index + 1) * max_parallelism - 1) / parallelism;
        KeyGroupRange { start, end }
    }

    /// Number of key groups in the range.
    pub fn len(&self) -> usize {
        self.end + 1 - self.start
    }

    /// True for an empty range (never produced by `for_subtask` when parallelism <= max).
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// Whether the range holds a key group.
    pub fn contains(&self, key_group: usize) -> bool {
        (self.start..=self.end).contains(&key_group)
    }

    /// The key groups as a Rust range.
    pub fn iter(&self) -> RangeInclusive<usize> {
        self.start..=self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_partition_all_key_groups_and_agree_with_operator_index() {
        for max in [1usize, 7, 128, 1000] {
            for p in 1..=max.min(17) {
                let mut next = 0;
                for i in 0..p {
                    let r = KeyGroupRange::for_subtask(max, p, i);
                    assert_eq!(r.start, next, "max {max} p {p} i {i}");
                    for kg in r.iter() {
                        assert_eq!(operator_index_for_key_group(max, p, kg), i);
                    }
                    next = r.end + 1;
                }
                assert_eq!(next, max);
            }
        }
    }

    #[test]
    fn key_groups_and_subtasks_are_the_remainder_and_the_quotient() {
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for max in [1usize, 2, 7, 128, 1000, 4096, 32768] {
            for _ in 0..1000 {
                h = key_hash::fmix64(h.wrapping_add(1));
                let kg = key_group_of_hash(h, max);
                assert_eq!(kg as u64, h % max as u64, "max {max}");
                for p in [1, 2, 3, 5, max] {
                    assert_eq!(operator_index_for_key_group(max, p, kg), kg * p / max);
                }
            }
        }
    }

    #[test]
    fn default_max_parallelism_follows_flink() {
        assert_eq!(default_max_parallelism(1), 128);
        assert_eq!(default_max_parallelism(100), 256);
        assert_eq!(default_max_parallelism(100_000), 32768);
    }

    #[test]
    fn keys_spread_over_groups() {
        let mut counts = vec![0usize; 128];
        for k in 0..100_000u64 {
            counts[assign_to_key_group(&k, 128)] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 600 && *max < 950, "uneven spread: {min}..{max}");
    }

    #[test]
    fn map_hasher_spreads_keys_that_differ_in_high_bytes_over_a_tables_low_bits() {
        // Encoded string keys, as the heap backend's maps hold them: StableHasher alone gives
        // them 4 of the 128 values of the low 7 bits (hashbrown's bucket index for 128 buckets).
        fn low_bits<H: Hasher + Default>() -> usize {
            let mut seen = std::collections::HashSet::new();
            for i in 0..5_000 {
                let key = crate::encoding::to_vec(&format!("word{i}")).unwrap();
                let mut h = H::default();
                std::hash::Hash::hash(key.as_slice(), &mut h);
                seen.insert(h.finish() & 127);
            }
            seen.len()
        }
        let stable = low_bits::<StableHasher>();
        let map = low_bits::<MapHasher>();
        assert!(stable <= 8, "StableHasher spread them after all: {stable}");
        assert_eq!(map, 128);
    }
}
