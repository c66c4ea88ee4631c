//! Fault tolerance: asynchronous barrier snapshots, their storage, restore and restarts.
//!
//! - `config`: checkpoint settings and the restart strategy (Flink's names and defaults).
//! - `participant`: what takes part in a snapshot inside a task (keyed state, source
//!   positions, user functions) and the per-task registry of participants.
//! - `metadata`: the `_metadata` document that completes a checkpoint or savepoint.
//! - `restore`: reading a completed checkpoint or savepoint and handing each subtask its part,
//!   moving keyed state by key group when parallelism changed.
//! - `shared`: files shared between incremental checkpoints, deleted when no retained
//!   checkpoint references them.
//! - `recovery`: the checkpoints a job with a stable id finds in its own directory when it
//!   starts (left by an earlier JobManager), which join its retained checkpoints.
//! - [`job_result`]: the record of a job's terminal state, so a restarted JobManager does not
//!   run a finished job again.
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
pub mod job_result;
pub(crate) mod metadata;
pub(crate) mod participant;
pub(crate) mod recovery;
pub(crate) mod restore;
pub(crate) mod shared;

pub use config::{CheckpointConfig, CheckpointFence, CheckpointingMode, RestartStrategy};
pub use coordinator::{
    CheckpointType, CompletedCheckpoint, FailedCheckpoint, InFlightCheckpoint, JobFailure,
};
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
    /// For stop-with-savepoint: sources stop after this barrier once it completes;
    /// `Some(true)` first drains (emits the final watermark, firing event-time windows).
    pub(crate) stop: Option<bool>,
    /// A full checkpoint (Flink's `CheckpointType.FULL`): backends with incremental
    /// snapshots write a self-contained one instead, and reuse nothing from before it.
    pub(crate) full: bool,
}

/// The URL of the latest completed checkpoint of job `job_id` under the checkpoint base
/// `storage` (the `chk-<n>` directory with the highest `n` that has its `_metadata`), or `None`
/// when the job has none. A JobManager that restarts resumes from it.
///
/// # Errors
/// The storage URL is malformed or cannot be listed.
pub fn latest_completed_checkpoint(
    storage: &str,
    options: &crate::storage::StorageOptions,
    job_id: &str,
) -> crate::error::Result<Option<String>> {
    use crate::storage::layout::{METADATA_FILE, checkpoint_dir, parse_checkpoint_dir};
    let base = SnapshotStore::open(storage, options)?;
    let latest = base
        .list(job_id)?
        .iter()
        .filter_map(|path| {
            let mut parts = path.rsplit('/');
            let file = parts.next()?;
            let dir = parts.next()?;
            (file == METADATA_FILE).then(|| parse_checkpoint_dir(dir))?
        })
        .max();
    Ok(latest.map(|id| base.child(&checkpoint_dir(job_id, id)).url().to_string()))
}

/// Deletes a savepoint (Flink's `savepoint --dispose`): the state files its `_metadata` lists,
/// then the `_metadata`. Refuses directories that are not completed savepoints written by
/// Fjord (no readable `_metadata`, or a checkpoint's), so a mistyped path cannot delete other
/// data; files in the directory that the savepoint does not list are left alone. An empty
/// `savepoint-*` directory (disposed of before) is not an error. Returns the number of files
/// deleted.
///
/// # Errors
/// [`FjordError::Restore`](crate::FjordError::Restore) when the directory holds no savepoint
/// (no `_metadata`, one that is not Fjord's JSON, or a checkpoint's);
/// [`FjordError::Storage`](crate::FjordError::Storage) when storage fails.
pub fn dispose_savepoint(
    url: &str,
    options: &crate::storage::StorageOptions,
) -> crate::Result<usize> {
    use crate::storage::layout::METADATA_FILE;
    let dir = SnapshotStore::open(url, options)?;
    let named_like_one = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("savepoint-"));
    if named_like_one && dir.list("")?.is_empty() {
        return Ok(0); // Disposed of before: nothing to do.
    }
    let meta = CheckpointMetadata::read(&dir).map_err(|e| match e {
        crate::FjordError::Serialization { context, message } => {
            crate::FjordError::Restore(format!(
                "{context} is not a savepoint's metadata written by Fjord ({message}); nothing was deleted"
            ))
        }
        other => other,
    })?;
    if !meta.savepoint {
        return Err(crate::FjordError::Restore(format!(
            "{url} is checkpoint {} of job '{}', not a savepoint; checkpoints are removed by retention",
            meta.checkpoint_id, meta.job_name
        )));
    }
    let mut deleted = 0;
    for file in meta
        .operators
        .values()
        .flat_map(|o| &o.subtasks)
        .map(|s| &s.file)
    {
        if dir.exists(file)? {
            dir.delete(file)?;
            deleted += 1;
        }
    }
    dir.delete(METADATA_FILE)?;
    if dir.list("")?.is_empty() {
        // Removes the empty directories a file system keeps.
        dir.delete_prefix("")?;
    }
    Ok(deleted + 1)
}
