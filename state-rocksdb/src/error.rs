//! The one error type of `fjord-rocksdb`.

use std::path::PathBuf;

/// What can fail in the RocksDB backend. Converted into
/// [`FjordError::StateBackend`](fjord::FjordError::StateBackend) at the backend trait.
#[derive(Debug, thiserror::Error)]
pub enum RocksDbStateError {
    /// RocksDB refused an operation.
    #[error(
        "RocksDB at {path}: {operation} failed: {source}; check free disk space and that no other process uses the directory"
    )]
    Db {
        /// The instance's directory.
        path: PathBuf,
        /// What was being done.
        operation: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Snapshot files could not be read or written.
    #[error("checkpoint storage: {0}")]
    Storage(#[source] fjord::FjordError),
    /// A state's serializer failed on a stored value.
    #[error("state value: {0}")]
    Serializer(#[source] fjord::FjordError),
    /// Bytes that should be a snapshot are not.
    #[error("{what} is not a readable RocksDB backend snapshot: {message}")]
    Format {
        /// What was read.
        what: String,
        /// The decoder's message.
        message: String,
    },
    /// A setting of the backend is invalid.
    #[error("{key}: {message}")]
    Config {
        /// The configuration key (or the environment variable's key).
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A key group outside this backend's range was asked for.
    #[error("key group {key_group} is not in this backend's key groups {start}..={end}")]
    KeyGroupOutOfRange {
        /// The key group asked for.
        key_group: usize,
        /// First key group of the backend.
        start: usize,
        /// Last key group of the backend.
        end: usize,
    },
}

impl From<RocksDbStateError> for fjord::FjordError {
    fn from(e: RocksDbStateError) -> Self {
        fjord::FjordError::StateBackend {
            backend: "rocksdb".into(),
            message: e.to_string(),
        }
    }
}

pub(crate) type Result<T, E = RocksDbStateError> = std::result::Result<T, E>;
