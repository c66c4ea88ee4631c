//! Fault tolerance: asynchronous barrier snapshots, their storage, restore and restarts.
//!
//! - `config`: checkpoint settings and the restart strategy (Flink's names and defaults).
//! - `participant`: what takes part in a snapshot inside a task (keyed state, source
//!   positions, user functions) and the per-task registry of participants.
//! - `metadata`: the `_metadata` document that completes a checkpoint or savepoint.
//! - `restore`: reading a completed checkpoint or savepoint and handing each subtask its part,
//!   moving keyed state by key group when parallelism changed.
//! - `coordinator`: triggers checkpoints, collects acknowledgements, completes, notifies and
//!   retains checkpoints, and takes savepoints.
//!
//! A checkpoint flows like this: the coordinator sends a trigger to every source task; a source
//! task snapshots its reader and chain between two polls and sends the barrier downstream on
//! every output channel. A task with inputs aligns barriers (exactly-once: a channel that
//! delivered the barrier is not read until all have) and then snapshots its chain and forwards
//! the barrier. Snapshots are copied synchronously and uploaded by a background thread, so
//! processing continues during the upload; the upload acknowledges to the coordinator, which
//! writes `_metadata` last.

pub(crate) mod config;
pub(crate) mod coordinator;
pub(crate) mod metadata;
pub(crate) mod participant;
pub(crate) mod restore;

pub use config::{CheckpointConfig, CheckpointingMode, RestartStrategy};
pub use metadata::{CheckpointMetadata, OperatorMetadata, SubtaskStateHandle};

use crate::storage::SnapshotStore;

/// The marker that flows with the records and separates the records before a checkpoint from
/// those after it.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointBarrier {
    /// Checkpoint id, increasing within a job.
    pub(crate) id: u64,
    /// When the checkpoint was triggered (milliseconds since the epoch).
    pub(crate) timestamp: i64,
    /// Where the snapshot files go: `<checkpoint base>/<job>/chk-<id>` or a savepoint directory.
    pub(crate) target: SnapshotStore,
    /// True for savepoints (kept until disposed, canonical, mapped by uid).
    pub(crate) savepoint: bool,
}
