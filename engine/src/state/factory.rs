//! Choosing the keyed state backend of a job (Flink's `state.backend.type`).
//!
//! The engine knows only the [`KeyedStateBackendFactory`] trait and the heap backend; other
//! backends live in their own crates (RocksDB in `fjord-rocksdb`, so the engine builds without
//! a C++ toolchain) and register a factory under a name with
//! [`register_state_backend_factory`]. A job picks its backend like in Flink, first match wins:
//!
//! 1. in code: [`StreamExecutionEnvironment::set_state_backend`](crate::StreamExecutionEnvironment::set_state_backend)
//!    (or [`ExecutionConfig::state_backend`](crate::ExecutionConfig));
//! 2. the process default set by whoever reads the configuration file (the worker reads
//!    `state.backend.type` and calls [`set_default_state_backend`]);
//! 3. the environment: `FJORD_STATE_BACKEND=heap|rocksdb` and `FJORD_STATE_BACKEND_DIR`;
//! 4. the heap backend.

use crate::error::{FjordError, Result};
use crate::keygroup::KeyGroupRange;
use crate::state::backend::{HeapKeyedStateBackend, KeyedStateBackend};
use crate::storage::StorageOptions;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Configuration key of the backend type (`heap`, `hashmap` or `rocksdb`).
pub const STATE_BACKEND_TYPE_KEY: &str = "state.backend.type";
/// Configuration key of the directory where local backends (RocksDB) keep their files.
pub const STATE_BACKEND_DIR_KEY: &str = "state.backend.rocksdb.localdir";
/// Environment variable with the backend type.
pub const STATE_BACKEND_ENV: &str = "FJORD_STATE_BACKEND";
/// Environment variable with the local directory of local backends.
pub const STATE_BACKEND_DIR_ENV: &str = "FJORD_STATE_BACKEND_DIR";

/// Name under which the RocksDB backend registers its factory.
pub const ROCKSDB: &str = "rocksdb";
/// Name of the heap backend.
pub const HEAP: &str = "heap";

/// What a factory knows when it creates the backend of one keyed operator subtask.
#[derive(Debug, Clone)]
pub struct BackendContext {
    /// The job's name.
    pub job_name: String,
    /// The operator's id in snapshots (its uid or a derived id).
    pub operator_id: String,
    /// Zero-based subtask index.
    pub subtask: usize,
    /// The key groups the subtask owns.
    pub key_groups: KeyGroupRange,
    /// Number of key groups of the operator.
    pub max_parallelism: usize,
    /// Where a local backend keeps its files; `None` means a directory under the system's
    /// temporary directory.
    pub local_dir: Option<PathBuf>,
    /// Credentials and endpoint settings of the job's checkpoint storage, for backends that
    /// read files of earlier checkpoints themselves (incremental restore).
    pub storage_options: StorageOptions,
}

/// Creates keyed state backends; implemented by each backend crate and registered by name.
pub trait KeyedStateBackendFactory: Send + Sync + fmt::Debug {
    /// The backend's name (`heap`, `rocksdb`), used in messages and configuration.
    fn name(&self) -> &str;

    /// A new, empty backend for one operator subtask.
    ///
    /// # Errors
    /// [`FjordError::StateBackend`] when the backend cannot be created (for example its local
    /// directory cannot be written).
    fn create(&self, context: &BackendContext) -> Result<Box<dyn KeyedStateBackend>>;
}

/// The in-memory backend's factory (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct HeapBackendFactory;

impl KeyedStateBackendFactory for HeapBackendFactory {
    fn name(&self) -> &str {
        HEAP
    }

    fn create(&self, context: &BackendContext) -> Result<Box<dyn KeyedStateBackend>> {
        Ok(Box::new(HeapKeyedStateBackend::new(context.key_groups)))
    }
}

/// Which keyed state backend a job uses.
#[derive(Clone)]
pub enum StateBackendKind {
    /// Values on the heap, full snapshots (Flink's `HashMapStateBackend`).
    Heap,
    /// RocksDB in `dir` (needs the `fjord-rocksdb` crate linked in and registered with
    /// `fjord_rocksdb::register()`).
    RocksDb {
        /// Local working directory of the RocksDB instances.
        dir: Option<PathBuf>,
    },
    /// Any backend by its factory.
    Custom(Arc<dyn KeyedStateBackendFactory>),
}

impl fmt::Debug for StateBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateBackendKind::Heap => write!(f, "Heap"),
            StateBackendKind::RocksDb { dir } => write!(f, "RocksDb({dir:?})"),
            StateBackendKind::Custom(factory) => write!(f, "Custom({})", factory.name()),
        }
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<dyn KeyedStateBackendFactory>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<dyn KeyedStateBackendFactory>>>> =
        OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn process_default() -> &'static Mutex<Option<StateBackendKind>> {
    static DEFAULT: OnceLock<Mutex<Option<StateBackendKind>>> = OnceLock::new();
    DEFAULT.get_or_init(Default::default)
}

/// Makes a backend available under `name` (`fjord_rocksdb::register()` calls this with
/// `"rocksdb"`). Registering a name again replaces the factory.
pub fn register_state_backend_factory(name: &str, factory: Arc<dyn KeyedStateBackendFactory>) {
    registry().lock().insert(name.to_string(), factory);
}

/// The factory registered under `name`, if any.
pub fn registered_state_backend_factory(name: &str) -> Option<Arc<dyn KeyedStateBackendFactory>> {
    registry().lock().get(name).cloned()
}

/// Sets the backend of jobs that do not choose one in code (the worker calls this with the
/// backend of its configuration file); `None` goes back to the environment and the heap.
pub fn set_default_state_backend(kind: Option<StateBackendKind>) {
    *process_default().lock() = kind;
}

impl StateBackendKind {
    /// The kind named by configuration entries: [`STATE_BACKEND_TYPE_KEY`] and
    /// [`STATE_BACKEND_DIR_KEY`], read through `get`. `None` when the type is not set.
    ///
    /// # Errors
    /// [`FjordError::StateBackend`] for a type that is neither `heap`, `hashmap`, `rocksdb`
    /// nor the name of a registered factory.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(name) = get(STATE_BACKEND_TYPE_KEY) else {
            return Ok(None);
        };
        let dir = get(STATE_BACKEND_DIR_KEY)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        Self::parse(name.trim(), dir).map(Some)
    }

    /// The kind named by `FJORD_STATE_BACKEND` and `FJORD_STATE_BACKEND_DIR`; `None` when
    /// the variable is not set.
    ///
    /// # Errors
    /// As [`from_config`](Self::from_config).
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_config(|key| {
            let var = match key {
                STATE_BACKEND_TYPE_KEY => STATE_BACKEND_ENV,
                STATE_BACKEND_DIR_KEY => STATE_BACKEND_DIR_ENV,
                _ => return None,
            };
            std::env::var(var).ok().filter(|v| !v.is_empty())
        })
    }

    /// The kind a name stands for (case-insensitive).
    ///
    /// # Errors
    /// As [`from_config`](Self::from_config).
    pub fn parse(name: &str, dir: Option<PathBuf>) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "heap" | "hashmap" | "memory" => Ok(StateBackendKind::Heap),
            "rocksdb" => Ok(StateBackendKind::RocksDb { dir }),
            other => match registered_state_backend_factory(other) {
                Some(factory) => Ok(StateBackendKind::Custom(factory)),
                None => Err(FjordError::StateBackend {
                    backend: name.to_string(),
                    message: format!(
                        "unknown state backend type; set {STATE_BACKEND_TYPE_KEY} (or {STATE_BACKEND_ENV}) to heap or rocksdb"
                    ),
                }),
            },
        }
    }

    /// The backend of a job that chose `chosen` in code: that, else the process default,
    /// else the environment, else the heap.
    ///
    /// # Errors
    /// An invalid `FJORD_STATE_BACKEND`.
    pub fn effective(chosen: Option<&StateBackendKind>) -> Result<StateBackendKind> {
        if let Some(kind) = chosen {
            return Ok(kind.clone());
        }
        if let Some(kind) = process_default().lock().clone() {
            return Ok(kind);
        }
        Ok(Self::from_env()?.unwrap_or(StateBackendKind::Heap))
    }

    /// The factory that creates this kind's backends, and the local directory to give it.
    ///
    /// # Errors
    /// [`FjordError::StateBackend`] when RocksDB is chosen but no factory is registered
    /// under `rocksdb` (the binary does not link `fjord-rocksdb` or never called its
    /// `register()`).
    pub fn factory(&self) -> Result<(Arc<dyn KeyedStateBackendFactory>, Option<PathBuf>)> {
        match self {
            StateBackendKind::Heap => Ok((Arc::new(HeapBackendFactory), None)),
            StateBackendKind::Custom(factory) => Ok((factory.clone(), None)),
            StateBackendKind::RocksDb { dir } => match registered_state_backend_factory(ROCKSDB)
            {
                Some(factory) => Ok((factory, dir.clone())),
                None => Err(FjordError::StateBackend {
                    backend: ROCKSDB.into(),
                    message: "the RocksDB backend is not available in this binary; add the fjord-rocksdb crate and call fjord_rocksdb::register() before running the job, or choose the heap backend".into(),
                }),
            },
        }
    }
}

/// The backend a job's tasks create: its kind and the storage settings to give factories.
#[derive(Debug, Clone)]
pub(crate) struct StateBackendSettings {
    pub(crate) kind: StateBackendKind,
    pub(crate) storage_options: StorageOptions,
}

impl Default for StateBackendSettings {
    fn default() -> Self {
        StateBackendSettings {
            kind: StateBackendKind::Heap,
            storage_options: StorageOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_names_the_backend() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (&[], None),
            (&[(STATE_BACKEND_TYPE_KEY, "heap")], Some("Heap")),
            (&[(STATE_BACKEND_TYPE_KEY, "hashmap")], Some("Heap")),
            (
                &[(STATE_BACKEND_TYPE_KEY, "RocksDB")],
                Some("RocksDb(None)"),
            ),
            (
                &[
                    (STATE_BACKEND_TYPE_KEY, "rocksdb"),
                    (STATE_BACKEND_DIR_KEY, "/var/fjord"),
                ],
                Some("RocksDb(Some(\"/var/fjord\"))"),
            ),
        ];
        for (pairs, expected) in cases {
            let kind = StateBackendKind::from_config(config(pairs)).unwrap();
            assert_eq!(
                kind.map(|k| format!("{k:?}")).as_deref(),
                *expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn unknown_type_is_refused_with_a_hint() {
        let err = StateBackendKind::from_config(config(&[(STATE_BACKEND_TYPE_KEY, "leveldb")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("heap or rocksdb"), "{err}");
    }

    #[test]
    fn code_choice_wins_and_heap_is_the_default() {
        let chosen = StateBackendKind::RocksDb { dir: None };
        let kind = StateBackendKind::effective(Some(&chosen)).unwrap();
        assert!(matches!(kind, StateBackendKind::RocksDb { .. }));
        let (factory, _) = StateBackendKind::Heap.factory().unwrap();
        assert_eq!(factory.name(), HEAP);
    }
}
