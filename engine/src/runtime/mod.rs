//! The runtime: from job graph to running tasks.
//!
//! `jobgraph` compiles the logical graph into chains; `deploy` wires chains into tasks
//! connected by `channel`s (or network connections) and starts them; `minicluster` runs
//! attempts, restarts and the checkpoint coordinator, running each attempt through a
//! `deployer` (in process, or the JobManager's across TaskManagers) with the attempt's `plan`
//! and the `messages` between coordinator and tasks; `crate::cluster` re-exports those three.
//!
//! What a task runs (`task`: its loops and chain heads, `partitioner`, `stream_type`, the
//! record writer) lives in `crate::task`, and the in-process `channel` and `io_metrics` in
//! `crate::exchange`, below the network; they are re-exported here under their old paths.

pub(crate) use crate::exchange::channel;
pub(crate) mod deploy;
pub(crate) mod deployer;
pub use crate::exchange::io_metrics;
pub mod jobgraph;
pub(crate) mod messages;
pub mod minicluster;
pub(crate) mod plan;
pub(crate) use crate::task;
pub(crate) use crate::task::{partitioner, stream_type, task_runtime};
