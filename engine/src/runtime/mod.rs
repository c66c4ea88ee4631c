//! The runtime: from job graph to running tasks.
//!
//! `jobgraph` compiles the logical graph into chains; `minicluster` wires chains into tasks
//! connected by `channel`s and runs them; `task` holds the loops a task runs; `writer` and
//! `partitioner` send records between tasks; `stream_type` erases record types for wiring;
//! `io_metrics` counts records in and out of every task subtask while the job runs.

pub(crate) mod channel;
pub mod io_metrics;
pub mod jobgraph;
pub mod minicluster;
pub(crate) mod partitioner;
pub(crate) mod stream_type;
pub(crate) mod task;
pub(crate) mod task_runtime;
pub(crate) mod writer;
