//! The RocksDB keyed state backend of Fjord (Flink's `EmbeddedRocksDBStateBackend`), in its own
//! crate so the engine builds without RocksDB.
//!
//! - `backend`: [`RocksDbKeyedStateBackend`], the [`KeyedStateBackend`] on one RocksDB
//!   instance per operator subtask: one column family per state, keys laid out as key group
//!   (2 bytes, big-endian) + key length (4 bytes) + key + namespace, so every key group is a
//!   contiguous range; values are the bytes of the state's serializer.
//! - `incremental`: incremental checkpoints (RocksDB checkpoints whose SST files go once into
//!   the job's `shared/` directory and are referenced by later checkpoints) and their restore.
//! - `list_append`: the merge operator that appends to a list state without reading it.
//! - `memory`: [`RocksDbMemory`], the memory budget of each instance (block cache and write
//!   buffers from one number, like Flink's managed memory for RocksDB).
//! - `error`: the crate's error type.
//!
//! `backend` uses `incremental` and `memory`; `error` depends on nothing. Use it from a job:
//!
//! ```no_run
//! use fjord::StreamExecutionEnvironment;
//! use fjord::state::StateBackendKind;
//! fjord_rocksdb::register();
//! let env = StreamExecutionEnvironment::new();
//! env.set_state_backend(StateBackendKind::RocksDb { dir: Some("/var/lib/fjord".into()) });
//! ```
//!
//! or register it in the worker and select it with `state.backend.type: rocksdb` /
//! `FJORD_STATE_BACKEND=rocksdb`.

mod backend;
mod error;
mod incremental;
mod list_append;
mod memory;

pub use backend::{RocksDbKeyedStateBackend, SnapshotStats};
pub use error::RocksDbStateError;
pub use memory::{
    MEMORY_PER_INSTANCE_ENV, MEMORY_PER_INSTANCE_KEY, PARTITIONED_INDEX_FILTERS_ENV,
    PARTITIONED_INDEX_FILTERS_KEY, RocksDbMemory, WRITE_BUFFER_RATIO_ENV, WRITE_BUFFER_RATIO_KEY,
    parse_size,
};

use fjord::state::factory::{BackendContext, KeyedStateBackendFactory, ROCKSDB};
use fjord::state::{KeyedStateBackend, register_state_backend_factory};
use std::path::PathBuf;
use std::sync::Arc;

/// Settings of the RocksDB backend.
#[derive(Debug, Clone)]
pub struct RocksDbOptions {
    /// Take incremental checkpoints (upload only new SST files). When false, checkpoints use
    /// the canonical per-key-group format like savepoints do. Default true.
    pub incremental: bool,
    /// Memory of each instance (block cache and write buffers).
    pub memory: RocksDbMemory,
}

impl Default for RocksDbOptions {
    fn default() -> Self {
        RocksDbOptions {
            incremental: true,
            memory: RocksDbMemory::default(),
        }
    }
}

/// Creates [`RocksDbKeyedStateBackend`]s; registered under `rocksdb` by [`register`].
#[derive(Debug, Clone, Default)]
pub struct RocksDbBackendFactory {
    /// Settings of every backend this factory creates.
    pub options: RocksDbOptions,
}

impl KeyedStateBackendFactory for RocksDbBackendFactory {
    fn name(&self) -> &str {
        ROCKSDB
    }

    fn create(&self, context: &BackendContext) -> fjord::Result<Box<dyn KeyedStateBackend>> {
        let dir = context.local_dir.clone().unwrap_or_else(default_local_dir);
        let backend = RocksDbKeyedStateBackend::open(
            &dir,
            context.key_groups,
            self.options.clone(),
            context.storage_options.clone(),
        )?;
        Ok(Box::new(backend))
    }
}

/// Where instances live when no directory is configured.
pub fn default_local_dir() -> PathBuf {
    std::env::temp_dir().join("fjord-rocksdb")
}

/// Makes the RocksDB backend available to `StateBackendKind::RocksDb`,
/// `state.backend.type: rocksdb` and `FJORD_STATE_BACKEND=rocksdb` in this process, with
/// incremental checkpoints and the memory budget of `FJORD_ROCKSDB_MEMORY` and
/// `FJORD_ROCKSDB_WRITE_BUFFER_RATIO` (defaults: 128 MiB per instance, half for write
/// buffers) and `FJORD_ROCKSDB_PARTITIONED_INDEX_FILTERS` (default `true`). Call once before
/// running jobs; calling again is harmless.
///
/// # Panics
/// When those variables are set to values that are not a size of at least 16 MiB or a
/// ratio between 0 and 1 (the message says which and what to write): a binary should not
/// start with memory settings it silently ignores.
pub fn register() {
    let memory = RocksDbMemory::from_env().unwrap_or_else(|e| panic!("{e}"));
    register_with(RocksDbOptions {
        memory,
        ..RocksDbOptions::default()
    });
}

/// [`register`] with other settings.
pub fn register_with(options: RocksDbOptions) {
    register_state_backend_factory(ROCKSDB, Arc::new(RocksDbBackendFactory { options }));
}
