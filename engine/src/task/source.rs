//! The source loop: what a source subtask runs. It polls the reader, pushes its records into
//! the chain, fires processing-time wake-ups and flushes; checkpoint control is handled
//! between polls (see [`source_control`](super::source_control)).

use crate::checkpoint::coordinator::TaskControl;
use crate::checkpoint::participant::OperatorState;
use crate::context::{RuntimeContext, TaskServices};
use crate::error::{FjordError, Result};
use crate::exchange::channel::CancelFlag;
use crate::exchange::io_metrics::{TaskIo, Wait};
use crate::operators::output::{Output, guard};
use crate::sources::{SourceOutput, SourceReader, SourceStatus, restore_position, source_failure};
use crate::task::task_runtime::TaskRuntime;
use crate::types::MAX_WATERMARK;
use std::time::{Duration, Instant};

/// A source subtask.
pub(crate) trait SourceRunner: Send {
    /// Reads until the source is exhausted or the job is cancelled.
    fn run(&mut self, cancel: &CancelFlag, rt: &TaskRuntime) -> Result<()>;
    /// Releases the reader and the chain; called also on failure.
    fn close(&mut self) -> Result<()>;
}

/// Polls a source reader and pushes its records into the chain.
pub(crate) struct SourceTask<T> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) services: TaskServices,
    pub(crate) reader: Box<dyn SourceReader<T>>,
    pub(crate) out: Box<dyn Output<T>>,
    pub(crate) buffer_timeout: Duration,
}

impl<T: Send + 'static> SourceRunner for SourceTask<T> {
    fn run(&mut self, cancel: &CancelFlag, rt: &TaskRuntime) -> Result<()> {
        TaskIo::take_current(); // Forget a task this thread ran before.
        self.out.open()?;
        let key = self.ctx.operator_key();
        if let Some(OperatorState {
            operator: Some(position),
            ..
        }) = rt.checkpointing.restored(&key)?
        {
            restore_position(&self.ctx, self.reader.as_mut(), &position)?;
        }
        let ctx = &self.ctx;
        let reader = &mut self.reader;
        guard(ctx, || reader.open(ctx)).map_err(source_failure)?;
        // The task's metrics, found through its network writers (none if the chain ends in
        // sinks), and the start of the idle spell in progress: from the first poll that found
        // nothing to the next that found data.
        let io = TaskIo::take_current();
        let mut idle_since: Option<u64> = None;
        let mut last_flush = Instant::now();
        let mut polls: u32 = 0;
        // Set when a stop-with-savepoint completed: `Some(drain)`.
        let mut stopped: Option<bool> = None;
        loop {
            if cancel.is_cancelled() {
                return Err(FjordError::Cancelled);
            }
            while let Ok(control) = rt.control.try_recv() {
                if let Some(drain) = self.on_control(control, rt, &key, cancel)? {
                    stopped = Some(drain);
                }
            }
            if stopped.is_some() {
                break;
            }
            let mut output = SourceOutput::new(self.out.as_mut());
            let reader = &mut self.reader;
            let status = guard(&self.ctx, || reader.poll_next(&mut output)).map_err(source_failure);
            if let Some(e) = output.take_error() {
                return Err(e);
            }
            let status = status?;
            if let (Some(io), Some(start)) = (&io, idle_since)
                && status != SourceStatus::NothingAvailable
            {
                io.end_wait(Wait::Idle, start);
                idle_since = None;
            }
            match status {
                SourceStatus::Finished => break,
                SourceStatus::NothingAvailable => {
                    self.fire_due_wakeups()?;
                    self.out.flush()?;
                    last_flush = Instant::now();
                    if let (Some(io), None) = (&io, idle_since) {
                        idle_since = Some(io.begin_wait(Wait::Idle));
                    }
                }
                SourceStatus::MoreAvailable => {
                    if self.fire_due_wakeups()? {
                        self.out.flush()?;
                        last_flush = Instant::now();
                    }
                    polls = polls.wrapping_add(1);
                    if polls.is_multiple_of(16) && last_flush.elapsed() >= self.buffer_timeout {
                        self.out.flush()?;
                        last_flush = Instant::now();
                    }
                }
            }
        }
        rt.finished();
        if stopped.is_none() {
            // A bounded source ends event time, which fires every pending event-time timer
            // and window downstream (Flink does the same). A stopped job does not, unless it
            // drained (which emitted the final watermark before the savepoint).
            self.out.emit_watermark(MAX_WATERMARK)?;
        } else {
            // Stopped by a savepoint: that savepoint is the last snapshot.
            rt.checkpointing.skip_final_checkpoint();
        }
        self.out.finish()?;
        rt.await_final_checkpoint(cancel, |control| match control {
            TaskControl::Trigger(barrier) => {
                let extra = self.position(barrier.id, &key)?;
                rt.final_checkpoint(barrier, extra)
            }
            TaskControl::Complete(id) => self.notify_complete(*id, rt),
            TaskControl::Abort(id) => self.notify_aborted(*id, rt),
        })
    }

    fn close(&mut self) -> Result<()> {
        let reader = &mut self.reader;
        let own = guard(&self.ctx, || reader.close()).map_err(source_failure);
        let chain = self.out.close();
        own.and(chain)
    }
}

impl<T> SourceTask<T> {
    /// Fires processing-time wake-ups of the chain that are due (periodic watermarks,
    /// idleness detection). Cheap when none is scheduled.
    #[inline]
    fn fire_due_wakeups(&mut self) -> Result<bool> {
        let Some(next) = self.services.wakeups.next() else {
            return Ok(false);
        };
        let now = self.services.clock.now();
        if now < next {
            return Ok(false);
        }
        self.services.wakeups.take_due(now);
        self.out.advance_processing_time(now)?;
        Ok(true)
    }
}
