//! State kept by operators, organised by key group so it can be snapshotted and moved by key
//! group when a job is rescaled.
//!
//! - [`backend`]: the [`KeyedStateBackend`] trait and the heap backend (one map per key group).
//! - [`factory`]: choosing a job's backend (code, configuration, environment) and the
//!   factories other backend crates (RocksDB) register.
//! - [`keyed`]: descriptors and the keyed state handles user functions use.
//! - [`ttl`]: state time-to-live.
//! - [`operator`]: operator (non-keyed) state — list state with even-split or union
//!   redistribution, broadcast state — that a
//!   [`CheckpointedFunction`](crate::functions::CheckpointedFunction) creates and snapshots.
//! - `internal`: an operator's own per-key contents (window contents, pane accumulators,
//!   rolling aggregates, interval join buffers) kept in its keyed state backend, so RocksDB
//!   holds them too.
//! - `namespaces`: a key's namespaces in the heap backend (one inline, more in a map).
//! - `KeyGroupedMap`: typed per-key maps by key group, for state kept outside a backend.

pub mod backend;
pub mod factory;
pub(crate) mod internal;
mod key_table;
pub mod keyed;
mod keyed_map;
mod namespaces;
pub mod operator;
pub mod ttl;
pub(crate) mod typed_table;

pub use backend::{
    AsyncSnapshotPart, CheckpointTarget, GroupSnapshot, HeapKeyedStateBackend, KeyedStateBackend,
    TimerQueueKind,
};
pub use factory::{
    BackendContext, HeapBackendFactory, KeyedStateBackendFactory, StateBackendKind,
    register_state_backend_factory, set_default_state_backend,
};
pub use keyed::{
    AggregatingState, AggregatingStateDescriptor, KeyedStateDescriptor, KeyedStateHandle,
    KeyedStateStore, ListState, ListStateDescriptor, MapState, MapStateDescriptor, ReducingState,
    ReducingStateDescriptor, ValueState, ValueStateDescriptor,
};
pub use keyed_map::KeyGroupedMap;
pub use operator::{
    BroadcastState, OperatorListState, OperatorStateStore, redistribute_even_split,
    redistribute_union,
};
pub use ttl::{StateTtlConfig, StateVisibility, UpdateType};

pub(crate) use keyed::encode as keyed_encode;
