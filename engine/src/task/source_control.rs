//! A source task's checkpoint and control handling: injecting barriers (with the reader's
//! position as the source operator's state), passing on completion and abort notices, and
//! pausing for a stop-with-savepoint.

use super::source::SourceTask;
use crate::checkpoint::CheckpointBarrier;
use crate::checkpoint::coordinator::TaskControl;
use crate::checkpoint::participant::{OperatorKey, OperatorState};
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CANCEL_POLL, CancelFlag};
use crate::operators::output::{CheckpointNotice, guard};
use crate::sources::{snapshot_position, source_failure};
use crate::task::task_runtime::TaskRuntime;
use crate::types::MAX_WATERMARK;

impl<T> SourceTask<T> {
    /// Injects a barrier (snapshotting the read position between two polls) or passes on a
    /// completion notice.
    pub(super) fn on_control(
        &mut self,
        control: TaskControl,
        rt: &TaskRuntime,
        key: &OperatorKey,
        cancel: &CancelFlag,
    ) -> Result<Option<bool>> {
        match control {
            TaskControl::Trigger(barrier) => {
                if barrier.stop == Some(true) {
                    // Drain: end event time first, so windows fire before the savepoint.
                    self.out.emit_watermark(MAX_WATERMARK)?;
                }
                self.take_checkpoint(&barrier, rt, key)?;
                match barrier.stop {
                    None => Ok(None),
                    Some(drain) => self.await_stop(barrier.id, drain, rt, key, cancel),
                }
            }
            TaskControl::Complete(id) => {
                self.notify_complete(id, rt)?;
                Ok(None)
            }
            TaskControl::Abort(id) => {
                self.notify_aborted(id, rt)?;
                Ok(None)
            }
        }
    }

    fn take_checkpoint(
        &mut self,
        barrier: &CheckpointBarrier,
        rt: &TaskRuntime,
        key: &OperatorKey,
    ) -> Result<()> {
        let extra = self.position(barrier.id, key)?;
        rt.checkpoint(barrier, self.out.as_mut(), extra)
    }

    /// The reader's position as the source operator's state in a snapshot.
    pub(super) fn position(
        &mut self,
        checkpoint_id: u64,
        key: &OperatorKey,
    ) -> Result<Option<(OperatorKey, OperatorState)>> {
        let position = snapshot_position(&self.ctx, self.reader.as_mut(), checkpoint_id)?;
        Ok(position.map(|p| {
            (
                key.clone(),
                OperatorState {
                    keyed: Vec::new(),
                    operator: Some(p),
                    ..OperatorState::default()
                },
            )
        }))
    }

    pub(super) fn notify_complete(&mut self, id: u64, rt: &TaskRuntime) -> Result<()> {
        rt.notify_complete(id)?;
        let reader = &mut self.reader;
        guard(&self.ctx, || reader.notify_checkpoint_complete(id)).map_err(source_failure)?;
        let notice = CheckpointNotice::Complete(id);
        rt.checkpointing.notify_functions(self.out.as_mut(), notice)
    }

    pub(super) fn notify_aborted(&mut self, id: u64, rt: &TaskRuntime) -> Result<()> {
        let reader = &mut self.reader;
        guard(&self.ctx, || reader.notify_checkpoint_aborted(id)).map_err(source_failure)?;
        let notice = CheckpointNotice::Aborted(id);
        rt.checkpointing.notify_functions(self.out.as_mut(), notice)
    }

    /// After the barrier of a stop-with-savepoint: reads nothing more until the savepoint
    /// completes (then the source stops: `Some(drain)`) or is given up (`None`: carry on).
    fn await_stop(
        &mut self,
        id: u64,
        drain: bool,
        rt: &TaskRuntime,
        key: &OperatorKey,
        cancel: &CancelFlag,
    ) -> Result<Option<bool>> {
        self.out.flush()?;
        loop {
            if cancel.is_cancelled() {
                return Err(FjordError::Cancelled);
            }
            match rt.control.recv_timeout(CANCEL_POLL) {
                Ok(TaskControl::Complete(done)) => {
                    self.notify_complete(done, rt)?;
                    if done == id {
                        return Ok(Some(drain));
                    }
                }
                Ok(TaskControl::Abort(aborted)) => {
                    self.notify_aborted(aborted, rt)?;
                    if aborted == id {
                        return Ok(None);
                    }
                }
                Ok(TaskControl::Trigger(barrier)) => self.take_checkpoint(&barrier, rt, key)?,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(FjordError::Cancelled);
                }
            }
        }
    }
}
