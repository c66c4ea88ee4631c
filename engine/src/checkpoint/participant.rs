//! What takes part in a snapshot inside a task, and the per-task registry of participants.

use crate::chain::{CheckpointNotice, Lifecycle};
use crate::checkpoint::CheckpointBarrier;
use crate::checkpoint::restore::RestoredJob;
use crate::encoding::byte_string::Bytes;
use crate::encoding::{EncodingError, write_into};
use crate::error::Result;
use crate::keygroup::KeyGroupRange;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The state of one operator subtask in a snapshot, in the canonical (backend-independent)
/// form: keyed state per key group, and opaque operator state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct OperatorState {
    /// Keyed state: (key group, that key group's serialized entries).
    #[serde(with = "crate::encoding::byte_string::indexed")]
    pub(crate) keyed: Vec<(usize, Vec<u8>)>,
    /// Non-keyed state of this subtask (for example a source's read position).
    #[serde(with = "crate::encoding::byte_string::option")]
    pub(crate) operator: Option<Vec<u8>>,
    /// Set on restore (never stored) when `keyed` comes from a snapshot of format version 1 or
    /// 2, whose key groups came from the keys' `std::hash::Hash`: `keyed` then holds *every*
    /// key group of the operator, and the restoring subtask keeps the entries whose key (by
    /// its bytes) falls in its own key groups (see [`crate::keygroup`]).
    #[serde(skip)]
    pub(crate) rehash_keys: bool,
}

impl OperatorState {
    /// The bytes of this state's file: its encoding, as `encoding::to_vec(&self)` gives it,
    /// built while each key group's bytes are freed once copied, so that a large state is not
    /// held twice (the snapshot's copy and the file) until the file is written.
    pub(crate) fn into_file_bytes(self) -> std::result::Result<Vec<u8>, EncodingError> {
        let keyed: usize = self.keyed.iter().map(|(_, b)| 16 + b.len()).sum();
        let operator = self.operator.as_ref().map_or(0, |o| 8 + o.len());
        let mut out = Vec::with_capacity(8 + keyed + 1 + operator);
        write_into(&mut out, &(self.keyed.len() as u64))?;
        for (key_group, bytes) in self.keyed {
            write_into(&mut out, &(key_group, Bytes(&bytes)))?;
        }
        write_into(&mut out, &self.operator.as_deref().map(Bytes))?;
        Ok(out)
    }
}

/// Something whose state goes into checkpoints.
pub(crate) trait CheckpointParticipant: Send {
    /// Copies the current state (the synchronous part of a snapshot).
    fn snapshot(&mut self, checkpoint_id: u64) -> Result<OperatorState>;

    /// The checkpoint completed everywhere (Flink's `notifyCheckpointComplete`).
    fn notify_complete(&mut self, _checkpoint_id: u64) -> Result<()> {
        Ok(())
    }
}

/// Identity of one operator subtask in snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperatorKey {
    /// The operator id (uid or derived).
    pub(crate) id: String,
    /// The operator's name, for metadata and messages.
    pub(crate) name: String,
    /// Whether `id` is a user-given uid.
    pub(crate) has_uid: bool,
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) max_parallelism: usize,
}

impl OperatorKey {
    pub(crate) fn key_groups(&self) -> KeyGroupRange {
        KeyGroupRange::for_subtask(self.max_parallelism, self.parallelism, self.subtask)
    }
}

/// The synchronous result of a task's snapshot.
pub(crate) struct TaskSnapshot {
    /// The copied state of every operator subtask of the task.
    pub(crate) states: Vec<(OperatorKey, OperatorState)>,
    /// Uploads the keyed state backends left to do before the checkpoint is acknowledged.
    pub(crate) uploads: Vec<crate::state::AsyncSnapshotPart>,
}

struct Registered {
    key: OperatorKey,
    participant: Box<dyn CheckpointParticipant>,
}

/// The participants of one task and the state it was restored from. Shared by the operators
/// of the task's chain through their runtime context.
#[derive(Clone, Default)]
pub(crate) struct TaskCheckpointing {
    participants: Arc<Mutex<Vec<Registered>>>,
    restored: Option<Arc<RestoredJob>>,
    /// Keyed state backends of the task's operators, told before and after each snapshot
    /// (native snapshots) and when a checkpoint completes.
    keyed: Arc<Mutex<Vec<crate::state::KeyedStateHandle>>>,
    /// Background uploads of the task's snapshots still running.
    uploads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    /// The latest checkpoint whose completion the chain's user functions were told of.
    notified: Arc<AtomicU64>,
    /// Whether the task takes part in a final checkpoint after its input ended (Flink's
    /// FLIP-147): true with periodic checkpoints, until a stop-with-savepoint stops the task
    /// (the savepoint is then the last snapshot).
    final_checkpoint: Arc<AtomicBool>,
}

impl std::fmt::Debug for TaskCheckpointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TaskCheckpointing({} participants)",
            self.participants.lock().len()
        )
    }
}

impl TaskCheckpointing {
    /// The checkpointing of a task restored from `restored`; `final_checkpoint` when the job
    /// takes periodic checkpoints (a final one then follows the end of input).
    pub(crate) fn new(restored: Option<Arc<RestoredJob>>, final_checkpoint: bool) -> Self {
        TaskCheckpointing {
            participants: Arc::default(),
            restored,
            keyed: Arc::default(),
            uploads: Arc::default(),
            notified: Arc::default(),
            final_checkpoint: Arc::new(AtomicBool::new(final_checkpoint)),
        }
    }

    /// Whether a final checkpoint follows the end of input: transactional sinks then leave
    /// their last transaction to it instead of committing it at the end of input.
    pub(crate) fn awaits_final_checkpoint(&self) -> bool {
        self.final_checkpoint.load(Ordering::Acquire)
    }

    /// The task was stopped by a stop-with-savepoint: no final checkpoint follows.
    pub(crate) fn skip_final_checkpoint(&self) {
        self.final_checkpoint.store(false, Ordering::Release);
    }

    /// Adds a participant for an operator subtask.
    pub(crate) fn register(&self, key: OperatorKey, participant: Box<dyn CheckpointParticipant>) {
        self.participants
            .lock()
            .push(Registered { key, participant });
    }

    /// The state restored for an operator subtask, if the job was restored and the snapshot
    /// has state for it.
    pub(crate) fn restored(&self, key: &OperatorKey) -> Result<Option<OperatorState>> {
        match &self.restored {
            None => Ok(None),
            Some(job) => job.state_for(key),
        }
    }

    /// The ID of the checkpoint the task was restored from, if it was.
    pub(crate) fn restored_checkpoint_id(&self) -> Option<u64> {
        self.restored.as_ref().map(|job| job.metadata.checkpoint_id)
    }

    /// Adds a keyed state backend to prepare before snapshots and notify of completions.
    pub(crate) fn register_keyed(&self, handle: crate::state::KeyedStateHandle) {
        self.keyed.lock().push(handle);
    }

    /// Snapshots every participant, with the keyed state backends prepared for `barrier`:
    /// the synchronous part of the task's snapshot. Returns the copied states and the
    /// asynchronous parts of the keyed state backends (uploads of native snapshots), which
    /// the caller runs off the processing thread.
    pub(crate) fn snapshot_all(&self, barrier: &CheckpointBarrier) -> Result<TaskSnapshot> {
        let keyed = self.keyed.lock().clone();
        if !keyed.is_empty() {
            let target = crate::state::backend::CheckpointTarget {
                checkpoint_id: barrier.id,
                savepoint: barrier.savepoint,
                dir: barrier.target.clone(),
                // A full checkpoint shares no files: the backend writes it canonically.
                shared: if barrier.savepoint || barrier.full {
                    None
                } else {
                    barrier
                        .target
                        .parent()
                        .map(|job| job.child(crate::storage::layout::SHARED_DIR))
                },
            };
            for handle in &keyed {
                if let Err(e) = handle.prepare_checkpoint(&target) {
                    // Dropping the asynchronous parts cleans up what was prepared.
                    keyed.iter().for_each(|h| drop(h.checkpoint_snapshotted()));
                    return Err(e);
                }
            }
        }
        let result = self.snapshot_participants(barrier.id);
        let uploads = keyed
            .iter()
            .filter_map(|h| h.checkpoint_snapshotted())
            .collect();
        Ok(TaskSnapshot {
            states: result?,
            uploads,
        })
    }

    fn snapshot_participants(
        &self,
        checkpoint_id: u64,
    ) -> Result<Vec<(OperatorKey, OperatorState)>> {
        let mut participants = self.participants.lock();
        let mut out: Vec<(OperatorKey, OperatorState)> = Vec::with_capacity(participants.len());
        for r in participants.iter_mut() {
            let state = r.participant.snapshot(checkpoint_id)?;
            // Several participants of one operator (keyed state and a source position, say)
            // share one file.
            match out.iter_mut().find(|(k, _)| k.id == r.key.id) {
                Some((_, existing)) => {
                    existing.keyed.extend(state.keyed);
                    if state.operator.is_some() {
                        existing.operator = state.operator;
                    }
                }
                None => out.push((r.key.clone(), state)),
            }
        }
        Ok(out)
    }

    /// Remembers a running background upload; finished ones are forgotten.
    pub(crate) fn track_upload(&self, upload: std::thread::JoinHandle<()>) {
        let mut uploads = self.uploads.lock();
        uploads.retain(|u| !u.is_finished());
        uploads.push(upload);
    }

    /// Waits for every background upload of the task to end.
    pub(crate) fn join_uploads(&self) {
        let uploads: Vec<_> = self.uploads.lock().drain(..).collect();
        for u in uploads {
            if let Err(payload) = u.join() {
                // It sent neither ack nor decline: its checkpoint fails only by timing out.
                tracing::warn!(
                    error = %crate::error::panic_message(payload.as_ref()),
                    "a snapshot upload panicked; its checkpoint is not acknowledged"
                );
            }
        }
    }

    /// Releases what the task's checkpointing holds once the task ended: waits for its
    /// background uploads, then drops its participants and keyed state backends. A
    /// participant shares its operator's core, and the core's runtime context shares this
    /// `TaskCheckpointing`, so without this the two keep each other alive and an ended
    /// attempt's state (heap values, RocksDB instances with their open files and local
    /// directories) would stay in the process for good.
    pub(crate) fn release(&self) {
        self.join_uploads();
        let participants = std::mem::take(&mut *self.participants.lock());
        drop(participants);
        let keyed = std::mem::take(&mut *self.keyed.lock());
        drop(keyed);
    }

    /// Tells the user functions of a chain that a checkpoint completed or was given up
    /// (Flink's `CheckpointListener`), in increasing order of completed ids: a completion not
    /// newer than the last one told is skipped (the newer checkpoint subsumes it), and so is an
    /// abort of a checkpoint older than that. Call after [`notify_all`](Self::notify_all).
    pub(crate) fn notify_functions(
        &self,
        chain: &mut dyn Lifecycle,
        notice: CheckpointNotice,
    ) -> Result<()> {
        let newer = match notice {
            CheckpointNotice::Complete(id) => self.notified.fetch_max(id, Ordering::AcqRel) < id,
            CheckpointNotice::Aborted(id) => self.notified.load(Ordering::Acquire) < id,
        };
        if newer {
            chain.notify_checkpoint(notice)?;
        }
        Ok(())
    }

    /// Tells every participant that a checkpoint completed.
    pub(crate) fn notify_all(&self, checkpoint_id: u64) -> Result<()> {
        for r in self.participants.lock().iter_mut() {
            r.participant.notify_complete(checkpoint_id)?;
        }
        for handle in self.keyed.lock().iter() {
            handle.notify_checkpoint_complete(checkpoint_id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::OperatorState;

    #[test]
    fn a_states_file_bytes_are_its_encoding() {
        let keyed = vec![
            (0, Vec::new()),
            (5, (0..=255).collect()),
            (127, vec![7; 70_000]),
        ];
        for operator in [None, Some(Vec::new()), Some(vec![1, 2, 3])] {
            let state = OperatorState {
                keyed: keyed.clone(),
                operator,
                rehash_keys: false,
            };
            let encoded = crate::encoding::to_vec(&state).unwrap();
            assert_eq!(state.into_file_bytes().unwrap(), encoded);
        }
        let empty = OperatorState::default();
        let encoded = crate::encoding::to_vec(&empty).unwrap();
        assert_eq!(empty.into_file_bytes().unwrap(), encoded);
    }
}
