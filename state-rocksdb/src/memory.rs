//! The memory of RocksDB instances, sized from one budget (Flink's
//! `state.backend.rocksdb.memory.fixed-per-slot` and `write-buffer-ratio`).
//!
//! Each instance (one per keyed operator subtask) gets `fixed_per_instance` bytes, shared as
//! Flink shares a slot's managed memory (`RocksDBMemoryControllerUtils`):
//! - one LRU block cache of `(3 - write_buffer_ratio) / 3` of the budget holds data blocks
//!   *and* index and filter blocks (`cache_index_and_filter_blocks`), so reading a large state
//!   does not grow memory outside the budget; level-0 filter and index blocks stay pinned for
//!   fast point lookups;
//! - a `WriteBufferManager` of `2 * write_buffer_ratio / 3` of the budget caps the memtables of
//!   all column families of the instance together and *charges them to that cache* (it inserts
//!   dummy entries as memtables grow), so memtables and cached blocks share one limit. RocksDB
//!   flushes when the mutable memtables pass 7/8 of the manager's size, and memtables can run
//!   past it by up to half while they flush: the 2/3 factor leaves that room inside the budget,
//!   as in Flink. Each column family's memtable is at most half of the manager's size.
//!
//! Index and filter blocks are partitioned by default (Flink's
//! `state.backend.rocksdb.memory.partitioned-index-filters`): a table file's bloom filter and
//! index are cut into blocks of `metadata_block_size` behind a small top-level index that stays
//! pinned. Without partitioning each file has one filter block of 10 bits per key: for a file
//! of a few million keys that is larger than one shard of the block cache (the cache is split
//! in 64 shards, 1 MiB each at the default budget), so it is never cached and every point
//! lookup read and checksummed the whole filter from the file again — 10 M keys ran at 6.5 k
//! records/s instead of 27 k, most of it copying filter blocks (BENCHMARKS.md).
//!
//! What is not counted (as in Flink): iterators' pinned blocks during a snapshot scan, and the
//! values of the current key the backend keeps deserialized (one key's worth).

use crate::error::{Result, RocksDbStateError};
use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, Options, WriteBufferManager};

/// Configuration key of the per-instance budget (bytes, or a size such as `256mb`).
pub const MEMORY_PER_INSTANCE_KEY: &str = "state.backend.rocksdb.memory.fixed-per-instance";
/// Configuration key of the write buffers' share of the budget (0 < ratio < 1).
pub const WRITE_BUFFER_RATIO_KEY: &str = "state.backend.rocksdb.memory.write-buffer-ratio";
/// Environment variable with the per-instance budget.
pub const MEMORY_PER_INSTANCE_ENV: &str = "FJORD_ROCKSDB_MEMORY";
/// Environment variable with the write buffers' share.
pub const WRITE_BUFFER_RATIO_ENV: &str = "FJORD_ROCKSDB_WRITE_BUFFER_RATIO";
/// Configuration key of partitioned index and filter blocks (`true`/`false`).
pub const PARTITIONED_INDEX_FILTERS_KEY: &str =
    "state.backend.rocksdb.memory.partitioned-index-filters";
/// Environment variable of partitioned index and filter blocks.
pub const PARTITIONED_INDEX_FILTERS_ENV: &str = "FJORD_ROCKSDB_PARTITIONED_INDEX_FILTERS";

/// The smallest budget accepted: below it RocksDB flushes tiny memtables constantly.
pub const MIN_MEMORY: u64 = 16 << 20;

/// Memory of each RocksDB instance (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocksDbMemory {
    /// Bytes for the block cache and write buffers of one instance. Default 128 MiB.
    pub fixed_per_instance: u64,
    /// Share of `fixed_per_instance` for write buffers (memtables). Default 0.5.
    pub write_buffer_ratio: f64,
    /// Index and filter blocks partitioned behind a pinned top-level index (see the module
    /// docs). Default `true` (Flink's default is `false`).
    pub partitioned_index_filters: bool,
}

impl Default for RocksDbMemory {
    fn default() -> Self {
        RocksDbMemory {
            fixed_per_instance: 128 << 20,
            write_buffer_ratio: 0.5,
            partitioned_index_filters: true,
        }
    }
}

/// Parses a size: a number of bytes, or a number with `kb`, `mb`, `gb` (binary multiples,
/// case-insensitive, optional `b`/`ib`, as Flink's `MemorySize`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

impl RocksDbMemory {
    /// The settings named by configuration entries ([`MEMORY_PER_INSTANCE_KEY`],
    /// [`WRITE_BUFFER_RATIO_KEY`], [`PARTITIONED_INDEX_FILTERS_KEY`]) read through `get`;
    /// defaults for entries not set.
    ///
    /// # Errors
    /// [`RocksDbStateError::Config`] for a size that does not parse or is below
    /// [`MIN_MEMORY`], a ratio outside (0, 1), or a flag other than `true`/`false`.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut memory = RocksDbMemory::default();
        if let Some(text) = get(MEMORY_PER_INSTANCE_KEY) {
            memory.fixed_per_instance = parse_size(&text)
                .filter(|n| *n >= MIN_MEMORY)
                .ok_or_else(|| RocksDbStateError::Config {
                    key: MEMORY_PER_INSTANCE_KEY.into(),
                    message: format!(
                        "'{text}' is not a size of at least 16mb; write bytes or a size such as 256mb"
                    ),
                })?;
        }
        if let Some(text) = get(WRITE_BUFFER_RATIO_KEY) {
            memory.write_buffer_ratio = text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && *r < 1.0)
                .ok_or_else(|| RocksDbStateError::Config {
                    key: WRITE_BUFFER_RATIO_KEY.into(),
                    message: format!("'{text}' is not a number between 0 and 1, such as 0.5"),
                })?;
        }
        if let Some(text) = get(PARTITIONED_INDEX_FILTERS_KEY) {
            memory.partitioned_index_filters = match text.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(RocksDbStateError::Config {
                        key: PARTITIONED_INDEX_FILTERS_KEY.into(),
                        message: format!("'{text}' is neither true nor false"),
                    });
                }
            };
        }
        Ok(memory)
    }

    /// The settings of [`MEMORY_PER_INSTANCE_ENV`] and [`WRITE_BUFFER_RATIO_ENV`].
    ///
    /// # Errors
    /// As [`from_config`](Self::from_config).
    pub fn from_env() -> Result<Self> {
        Self::from_config(|key| {
            let var = match key {
                MEMORY_PER_INSTANCE_KEY => MEMORY_PER_INSTANCE_ENV,
                WRITE_BUFFER_RATIO_KEY => WRITE_BUFFER_RATIO_ENV,
                PARTITIONED_INDEX_FILTERS_KEY => PARTITIONED_INDEX_FILTERS_ENV,
                _ => return None,
            };
            std::env::var(var).ok().filter(|v| !v.trim().is_empty())
        })
    }

    /// Bytes of the write buffer manager of one instance: `2 * ratio / 3` of the budget (the
    /// memtables it admits are charged to the block cache; see the module docs).
    pub fn write_buffer_bytes(&self) -> usize {
        (self.fixed_per_instance as f64 * self.write_buffer_ratio * 2.0 / 3.0) as usize
    }

    /// Capacity of the block cache of one instance, memtables included: `(3 - ratio) / 3` of
    /// the budget.
    pub fn block_cache_bytes(&self) -> usize {
        (self.fixed_per_instance as f64 * (3.0 - self.write_buffer_ratio) / 3.0) as usize
    }

    /// Database and column family options of one instance under this budget.
    pub(crate) fn options(&self) -> Options {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let write = self.write_buffer_bytes();
        let cache = Cache::new_lru_cache(self.block_cache_bytes());
        // No stall: when the memtables reach the limit RocksDB flushes; writes never block.
        let manager =
            WriteBufferManager::new_write_buffer_manager_with_cache(write, false, cache.clone());
        opts.set_write_buffer_manager(&manager);
        opts.set_write_buffer_size((write / 2).max(1 << 20));
        opts.set_max_write_buffer_number(2);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);
        if self.partitioned_index_filters {
            table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
            table.set_partition_filters(true);
            table.set_pin_top_level_index_and_filter(true);
        }
        opts.set_block_based_table_factory(&table);
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sizes_parse_like_flink_memory_sizes() {
        let cases = [
            ("1024", Some(1024)),
            ("64mb", Some(64 << 20)),
            ("64 MB", Some(64 << 20)),
            ("2g", Some(2 << 30)),
            ("512KiB", Some(512 << 10)),
            ("lots", None),
            ("12tb", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), want, "{text}");
        }
    }

    #[test]
    fn configuration_sets_the_budget_and_refuses_nonsense() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            let map: HashMap<&str, &str> = pairs.iter().copied().collect();
            move |k: &str| map.get(k).map(|v| v.to_string())
        };
        let m = RocksDbMemory::from_config(get(&[
            (MEMORY_PER_INSTANCE_KEY, "256mb"),
            (WRITE_BUFFER_RATIO_KEY, "0.25"),
            (PARTITIONED_INDEX_FILTERS_KEY, "False"),
        ]))
        .unwrap();
        assert!(!m.partitioned_index_filters);
        // Flink's split: 2 * 0.25 / 3 of 256 MiB for memtables, (3 - 0.25) / 3 for the cache
        // they are charged to.
        assert_eq!(m.write_buffer_bytes(), (256 << 20) / 6);
        assert_eq!(m.block_cache_bytes(), (256 << 20) * 11 / 12);
        assert_eq!(
            RocksDbMemory::from_config(get(&[])).unwrap(),
            RocksDbMemory::default()
        );
        for bad in [
            &[(MEMORY_PER_INSTANCE_KEY, "1mb")][..],
            &[(MEMORY_PER_INSTANCE_KEY, "much")][..],
            &[(WRITE_BUFFER_RATIO_KEY, "1.5")][..],
            &[(WRITE_BUFFER_RATIO_KEY, "NaN")][..],
            &[(PARTITIONED_INDEX_FILTERS_KEY, "yes")][..],
        ] {
            let err = RocksDbMemory::from_config(get(bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("state.backend.rocksdb.memory"), "{err}");
        }
    }
}
