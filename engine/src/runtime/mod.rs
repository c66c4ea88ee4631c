//! The runtime: from job graph to running tasks.
//!
//! `jobgraph` compiles the logical graph into chains; `deploy` wires chains into tasks
//! connected by `channel`s (or network connections) and starts them; `minicluster` runs
//! attempts, restarts and the checkpoint coordinator; `task` holds the loops a task runs; `writer` and
//! `partitioner` send records between tasks; `stream_type` erases record types for wiring;
//! `io_metrics` counts records in and out of every task subtask while the job runs.

pub(crate) use crate::exchange::channel;
pub(crate) mod deploy;
pub use crate::exchange::io_metrics;
pub mod jobgraph;
pub mod minicluster;
pub(crate) mod partitioner;
pub(crate) mod stream_type;
pub(crate) mod task;
pub(crate) mod task_runtime;
pub(crate) mod writer;
