//! The keyed state backend a JobManager or TaskManager process gives its jobs, from its
//! configuration file as Flink reads `state.backend.type` and `state.backend.rocksdb.*` from
//! its configuration (a StreamJob's `spec.configuration` reaches the file through the
//! operator's ConfigMap). The file wins over the environment (`FJORD_STATE_BACKEND`,
//! `FJORD_ROCKSDB_*`), which applies to what the file does not set; a job's own
//! `set_state_backend` wins over both.

use crate::WorkerError;
use std::collections::BTreeMap;

/// Applies the backend settings of `file` to this process: the default backend
/// (`state.backend.type`, `state.backend.rocksdb.localdir`) and, in a binary with the RocksDB
/// backend, its memory budget (`state.backend.rocksdb.memory.*`).
///
/// # Errors
/// [`WorkerError::Config`] naming the key for an unknown backend type or a memory setting
/// that does not parse; a binary without RocksDB that is asked for it is refused when a job
/// creates its state, as before.
pub fn configure(file: &BTreeMap<String, String>) -> Result<(), WorkerError> {
    let get = |key: &str| file.get(key).cloned();
    if let Some(kind) = fjord::state::StateBackendKind::from_config(get)
        .map_err(|e| WorkerError::Config(e.to_string()))?
    {
        fjord::state::set_default_state_backend(Some(kind));
    }
    #[cfg(feature = "rocksdb")]
    if file
        .keys()
        .any(|k| k.starts_with("state.backend.rocksdb.memory."))
    {
        let from_env = |key: &str| {
            let var = match key {
                fjord_rocksdb::MEMORY_PER_INSTANCE_KEY => fjord_rocksdb::MEMORY_PER_INSTANCE_ENV,
                fjord_rocksdb::WRITE_BUFFER_RATIO_KEY => fjord_rocksdb::WRITE_BUFFER_RATIO_ENV,
                fjord_rocksdb::PARTITIONED_INDEX_FILTERS_KEY => {
                    fjord_rocksdb::PARTITIONED_INDEX_FILTERS_ENV
                }
                _ => return None,
            };
            std::env::var(var).ok().filter(|v| !v.trim().is_empty())
        };
        let memory =
            fjord_rocksdb::RocksDbMemory::from_config(|key| get(key).or_else(|| from_env(key)))
                .map_err(|e| WorkerError::Config(e.to_string()))?;
        fjord_rocksdb::register_with(fjord_rocksdb::RocksDbOptions {
            memory,
            ..fjord_rocksdb::RocksDbOptions::default()
        });
    }
    Ok(())
}

/// [`configure`] from the file at `path`, if a file is given.
///
/// # Errors
/// As [`configure`], and an unreadable file.
pub fn configure_from(path: Option<&std::path::Path>) -> Result<(), WorkerError> {
    match path {
        Some(path) => configure(&crate::jobmanager::config::read_file(path)?),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_backend_type_names_the_key() {
        let file = BTreeMap::from([("state.backend.type".to_string(), "leveldb".to_string())]);
        let err = configure(&file).unwrap_err().to_string();
        assert!(err.contains("leveldb"), "{err}");
    }
}
