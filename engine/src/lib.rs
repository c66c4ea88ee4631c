//! # Fjord
//!
//! A distributed, stateful stream processor in the spirit of Apache Flink. This crate is the
//! library jobs are written against (the DataStream API) and the runtime that executes them.
//!
//! ```
//! use fjord::StreamExecutionEnvironment;
//!
//! let env = StreamExecutionEnvironment::new();
//! env.set_parallelism(2);
//! let counts = env
//!     .from_collection(vec!["to be".to_string(), "or not to be".to_string()])
//!     .flat_map(|line: String| line.split(' ').map(|w| (w.to_string(), 1u64)).collect::<Vec<_>>())
//!     .key_by(|(word, _): &(String, u64)| word.clone())
//!     .sum::<1>()
//!     .collect();
//! env.execute("word count").unwrap();
//! let mut final_counts = std::collections::BTreeMap::new();
//! for (word, count) in counts.values() {
//!     final_counts.insert(word, count); // the last update per word is the total
//! }
//! assert_eq!(final_counts["be"], 2);
//! ```
//!
//! ## Modules and their dependencies
//!
//! The modules are layered: each refers only to its own layer and the layers below
//! (docs/architecture.md, "Module layers"; `tests/module_layers.rs` checks it). From the
//! foundation up:
//!
//! 1. [`error`], [`types`], [`printable`], [`metrics`], [`encoding`] (the binary encoding of
//!    every persistent and wire format: snapshots, RocksDB keys and values, network batches),
//!    [`time`] (processing-time clocks, event-time watermarks and their strategies, durations
//!    as Flink's configuration writes them: [`time::parse_duration`], a bare number is
//!    milliseconds), and `chain` (internal): the `Output` an operator pushes records into,
//!    its `Lifecycle`, and the [`Collector`] user functions emit through.
//! 2. [`keygroup`]: key groups (the stable hash of a key's serialized bytes, part of the
//!    snapshot format) and their ranges; [`storage`]: checkpoint and savepoint storage on
//!    `object_store` (file, S3, memory); [`tls`]: certificates, keys and CAs into rustls
//!    configurations (mutual TLS between processes, server TLS for the REST API).
//! 3. [`state`]: keyed state organised by key group, operator and broadcast state, backends.
//! 4. [`checkpoint`]: barriers, snapshots, restore, restart strategies and savepoints.
//! 5. [`context`]: the [`RuntimeContext`] user functions see; [`functions`]: user function
//!    traits (map, filter, reduce, ...), closures included; `timers` (internal): the timer
//!    service of keyed operators.
//! 6. `operators` (internal): the operator implementations, one file per family, chained as
//!    direct calls through `Output`.
//! 7. [`sources`] and [`sinks`]: the `Source`/`Sink` traits and built-in connectors.
//! 8. `exchange` (internal, re-exported in [`runtime`]): the in-process channel and the I/O
//!    metrics of tasks; [`network`]: the data plane between TaskManagers, channels over TCP
//!    with credit-based flow control.
//! 9. `task` (internal): what a subtask runs (its loops, chain heads, record writer and
//!    partitioners); `graph` (internal, re-exported as [`graph_plan`]): the logical graph
//!    the API builds.
//! 10. [`runtime`]: job graph (chaining), deployment, mini-cluster, and the `Deployer` its
//!     restart loop drives; [`cluster`]: running one job across processes, the contract of
//!     the JobManager's `Deployer` and the subtasks a TaskManager runs.
//! 11. [`windows`]: window assigners, triggers, evictors and the window operator; [`api`]:
//!     what programs call (environment, streams, keyed and connected streams, side outputs,
//!     tuple field access); [`joins`]: window and interval joins built on them and on keyed
//!     state; [`job`]: named jobs and their arguments (the registry a worker binary carries).

pub mod api;
pub(crate) mod chain;
pub mod checkpoint;
pub mod cluster;
pub mod context;
pub mod encoding;
pub mod error;
pub(crate) mod exchange;
pub mod functions;
pub mod graph_plan {
    //! Re-exports of the job plan types (how a job is chained and partitioned).
    pub use crate::runtime::jobgraph::{DEFAULT_SLOT_SHARING_GROUP, EdgePlan, JobPlan, VertexPlan};
}
pub(crate) mod graph;
pub mod job;
pub mod joins;
pub mod keygroup;
pub mod metrics;
pub mod network;
pub(crate) mod operators;
pub mod printable;
pub mod runtime;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod storage;
pub(crate) mod task;
pub mod time;
pub(crate) mod timers;
pub mod tls;
pub mod types;
pub mod windows;

pub use api::broadcast::{
    BroadcastConnectedStream, BroadcastStream, KeyedBroadcastConnectedStream,
};
pub use api::connected::{ConnectedStreams, KeyedConnectedStreams};
pub use api::datastream::{DataStream, DataStreamSink, SingleOutputStreamOperator};
pub use api::env::{ExecutionConfig, JobClient, StreamExecutionEnvironment};
pub use api::keyed::KeyedStream;
pub use api::side_output::OutputTag;
pub use api::tuple::Field;
pub use api::windowed::WindowedStream;
pub use chain::Collector;
pub use context::RuntimeContext;
pub use error::{BoxError, FjordError, Result, TaskLocation};
pub use functions::{
    AggregateFunction, CoFlatMapFunction, CoFns, CoMapFunction, FilterFunction, FlatMapFunction,
    MapFunction, ReduceFunction,
};
pub use job::{JobArgs, JobFn, JobRegistry};
pub use operators::broadcast::{
    BroadcastContext, BroadcastProcessFunction, BroadcastStateDescriptor,
    KeyedBroadcastProcessFunction, KeyedReadOnlyContext, ReadOnlyBroadcastState, ReadOnlyContext,
};
pub use operators::co_process::{CoProcessFunction, KeyedCoProcessFunction};
pub use operators::keyed_process::{KeyedProcessContext, KeyedProcessFunction, TimerService};
pub use operators::process::{ProcessContext, ProcessFunction, ProcessTimerService};
pub use printable::Printable;
pub use runtime::jobgraph::JobPlan;
pub use runtime::minicluster::JobExecutionResult;
pub use sinks::{Sink, SinkError, SinkWriter, WriteMode};
pub use sources::{Source, SourceError, SourceOutput, SourceReader, SourceStatus};
pub use timers::TimeDomain;
pub use types::{Data, Key, StreamRecord, Timestamp};

/// The Rust examples of the user documentation, compiled and run as doc tests so they stay
/// true as the API changes (docs whose Rust blocks are fragments are not included yet).
#[cfg(doctest)]
pub mod doc_examples {
    #[doc = include_str!("../../docs/datastream.md")]
    pub struct DataStreamDoc;
    #[doc = include_str!("../../docs/time-windows-state.md")]
    pub struct TimeWindowsStateDoc;
}
