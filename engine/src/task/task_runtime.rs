//! The checkpoint side of a running task: its control channel from the coordinator, the
//! channels its barriers go out on, and the background upload of its snapshots.

use crate::checkpoint::coordinator::{CoordinatorEvent, TaskControl, WrittenState};
use crate::checkpoint::participant::{OperatorKey, OperatorState, TaskCheckpointing, TaskSnapshot};
use crate::checkpoint::{CheckpointBarrier, CheckpointingMode};
use crate::error::{FjordError, Result};
use crate::exchange::channel::{ChannelSender, Event};
use crate::operators::output::Lifecycle;
use crate::storage::layout::state_file;
use crossbeam_channel::{Receiver, Sender};

/// What a task needs to take part in checkpoints.
pub(crate) struct TaskRuntime {
    /// Index of the task in its execution (for acknowledgements).
    pub(crate) index: usize,
    pub(crate) control: Receiver<TaskControl>,
    pub(crate) coordinator: Sender<CoordinatorEvent>,
    /// Every channel the task's chain writes to: barriers go out on all of them.
    pub(crate) outputs: Vec<ChannelSender>,
    pub(crate) checkpointing: TaskCheckpointing,
    pub(crate) mode: CheckpointingMode,
}

impl TaskRuntime {
    /// Takes this task's part of a checkpoint at the current position of the stream: sends
    /// the records before the barrier on, forwards the barrier on every output, copies the
    /// state of every participant, and uploads it in the background (processing continues),
    /// acknowledging to the coordinator when done. The background upload first runs the
    /// asynchronous parts of the keyed state backends (RocksDB's SST uploads).
    pub(crate) fn checkpoint(
        &self,
        barrier: &CheckpointBarrier,
        chain: &mut dyn Lifecycle,
        extra: Option<(OperatorKey, OperatorState)>,
    ) -> Result<()> {
        chain.flush()?;
        for output in &self.outputs {
            output.send(Event::Barrier(barrier.clone()))?;
        }
        self.snapshot(barrier, extra)
    }

    /// Takes this task's part of the final checkpoint, after its input ended and its chain
    /// finished: the outputs ended, so no barrier goes out; the coordinator triggered every
    /// task directly.
    pub(crate) fn final_checkpoint(
        &self,
        barrier: &CheckpointBarrier,
        extra: Option<(OperatorKey, OperatorState)>,
    ) -> Result<()> {
        self.snapshot(barrier, extra)
    }

    /// Copies the state of every participant and uploads it in the background.
    fn snapshot(
        &self,
        barrier: &CheckpointBarrier,
        extra: Option<(OperatorKey, OperatorState)>,
    ) -> Result<()> {
        let TaskSnapshot {
            mut states,
            uploads,
        } = self.checkpointing.snapshot_all(barrier)?;
        if let Some((key, state)) = extra {
            match states.iter_mut().find(|(k, _)| k.id == key.id) {
                Some((_, existing)) => existing.operator = state.operator,
                None => states.push((key, state)),
            }
        }
        let coordinator = self.coordinator.clone();
        let target = barrier.target.clone();
        let (checkpoint_id, task) = (barrier.id, self.index);
        let upload = move || {
            for part in uploads {
                part()?;
            }
            let mut written = Vec::with_capacity(states.len());
            for (key, state) in states {
                let file = state_file(&sanitize(&key.id), key.subtask);
                let bytes = state
                    .into_file_bytes()
                    .map_err(|e| FjordError::Serialization {
                        context: format!("state of '{}'", key.name),
                        message: e.to_string(),
                    })?;
                let size = bytes.len() as u64;
                let checksum = crate::storage::checksum::checksum(&bytes);
                target.put(&file, bytes)?;
                written.push(WrittenState {
                    key,
                    file,
                    size,
                    checksum,
                });
            }
            Ok::<_, FjordError>(written)
        };
        let handle = std::thread::Builder::new()
            .name(format!("snapshot upload {checkpoint_id}"))
            .spawn(move || {
                let event = match upload() {
                    Ok(states) => CoordinatorEvent::Ack {
                        checkpoint_id,
                        task,
                        states,
                    },
                    Err(e) => CoordinatorEvent::Decline {
                        checkpoint_id,
                        task,
                        reason: e.to_string(),
                    },
                };
                // Fails only once the coordinator ended (attempt over): nobody waits for it.
                let _ = coordinator.send(event);
            })
            .map_err(|e| FjordError::io("cannot start a snapshot upload", e))?;
        self.checkpointing.track_upload(handle);
        Ok(())
    }

    /// Handles a checkpoint-complete notification.
    pub(crate) fn notify_complete(&self, checkpoint_id: u64) -> Result<()> {
        self.checkpointing.notify_all(checkpoint_id)
    }

    /// Tells the coordinator that this task's input ended.
    pub(crate) fn finished(&self) {
        // Fails only once the coordinator ended (attempt over): nobody waits for it.
        let _ = self
            .coordinator
            .send(CoordinatorEvent::TaskFinished { task: self.index });
    }

    /// After the end of input (the chain finished): waits for the final checkpoint and hands
    /// every control message to `handle` (a trigger takes this task's part of the final
    /// checkpoint; completions and aborts are passed on), and returns once the final
    /// checkpoint completed, so that transactional sinks commit their last transaction only
    /// when a checkpoint holds the end of the input (Flink's FLIP-147). Returns at once when
    /// no final checkpoint follows.
    ///
    /// A trigger that reaches the task here is taken as the final checkpoint; a periodic one
    /// sent just before the coordinator learned of the end of input is aborted by it and
    /// never completes, so the task waits on for the final one.
    ///
    /// # Errors
    /// The snapshot or a notification failed, or the attempt was cancelled.
    pub(crate) fn await_final_checkpoint(
        &self,
        cancel: &crate::exchange::channel::CancelFlag,
        mut handle: impl FnMut(&TaskControl) -> Result<()>,
    ) -> Result<()> {
        use crossbeam_channel::RecvTimeoutError;
        if !self.checkpointing.awaits_final_checkpoint() {
            return Ok(());
        }
        let mut triggered: Option<u64> = None;
        loop {
            if cancel.is_cancelled() {
                return Err(FjordError::Cancelled);
            }
            let control = match self
                .control
                .recv_timeout(crate::exchange::channel::CANCEL_POLL)
            {
                Ok(control) => control,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(FjordError::Cancelled),
            };
            handle(&control)?;
            match control {
                TaskControl::Trigger(barrier) => triggered = Some(barrier.id),
                TaskControl::Complete(id) if triggered.is_some_and(|t| id >= t) => return Ok(()),
                TaskControl::Complete(_) | TaskControl::Abort(_) => {}
            }
        }
    }
}

impl Drop for TaskRuntime {
    /// A task ends only when its uploads did, so once every task of an attempt ended nothing
    /// writes into checkpoint storage any more (the coordinator then cleans up what never
    /// completed). Then its state is released (see [`TaskCheckpointing::release`]): an ended
    /// task keeps nothing of its attempt alive.
    ///
    /// [`TaskCheckpointing::release`]: crate::checkpoint::participant::TaskCheckpointing::release
    fn drop(&mut self) {
        self.checkpointing.release();
    }
}

/// Operator ids become directory names.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
