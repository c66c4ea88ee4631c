//! The input loop: what a task fed by channels runs. It reads events from every input channel,
//! feeds records and watermarks (through a [`WatermarkValve`] per logical input) to the chain
//! head, aligns barriers ([`Alignment`]), passes on checkpoint notices and fires
//! processing-time wake-ups, then finishes the chain and waits for its final checkpoint.

use super::alignment::{Alignment, reselect};
use super::head::TaskHead;
use super::valve::WatermarkValve;
use crate::checkpoint::CheckpointingMode;
use crate::checkpoint::coordinator::TaskControl;
use crate::context::TaskServices;
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CANCEL_POLL, CancelFlag, Event};
use crate::exchange::io_metrics::{TaskIo, Wait};
use crate::operators::output::CheckpointNotice;
use crate::task::task_runtime::TaskRuntime;
use crossbeam_channel::{Receiver, Select};
use std::time::Duration;

/// One input channel of a task: which logical input it feeds and its receiver.
pub(crate) struct InputChannel {
    pub(crate) input: usize,
    pub(crate) receiver: Receiver<Event>,
}

/// Fires processing-time wake-ups that are due. Cheap when none is scheduled.
#[inline]
fn fire_due_wakeups(head: &mut dyn TaskHead, services: &TaskServices) -> Result<bool> {
    let Some(next) = services.wakeups.next() else {
        return Ok(false);
    };
    let now = services.clock.now();
    if now < next {
        return Ok(false);
    }
    services.wakeups.take_due(now);
    head.lifecycle().advance_processing_time(now)?;
    Ok(true)
}

/// How long the loop may block: until the next wake-up, at most `CANCEL_POLL`.
fn wait_time(services: &TaskServices) -> Duration {
    match services.wakeups.next() {
        None => CANCEL_POLL,
        Some(deadline) => services.clock.wait_until(deadline).min(CANCEL_POLL),
    }
}

/// Marks a task ended when the input loop returns, also on failure.
struct EndTask(Option<TaskIo>);

impl Drop for EndTask {
    fn drop(&mut self) {
        if let Some(io) = &self.0 {
            io.mark_ended();
        }
    }
}

/// Runs a task that reads from channels until every channel ended, then finishes the chain.
/// The caller opens nothing and must call `close` on the head afterwards, also on failure.
///
/// Between events the loop fires processing-time wake-ups that operators registered in
/// `services`; with none registered the loop costs one uncontended lock per batch. The clock
/// is read only when the loop has to block for input (idle time).
pub(crate) fn run_input_task(
    head: &mut dyn TaskHead,
    channels: &[InputChannel],
    cancel: &CancelFlag,
    services: &TaskServices,
    rt: &TaskRuntime,
) -> Result<()> {
    let io = head.task_io();
    if let Some(io) = &io {
        io.mark_started();
    }
    let _end = EndTask(io.clone());
    head.lifecycle().open()?;
    let inputs = channels.iter().map(|c| c.input).max().map_or(0, |m| m + 1);
    // Per logical input: a valve, and the position of each channel within it.
    let mut valves: Vec<WatermarkValve> = (0..inputs)
        .map(|i| WatermarkValve::new(channels.iter().filter(|c| c.input == i).count()))
        .collect();
    let mut slot = vec![0usize; channels.len()];
    let mut seen = vec![0usize; inputs];
    for (k, c) in channels.iter().enumerate() {
        slot[k] = seen[c.input];
        seen[c.input] += 1;
    }

    // Channels read from: all that have not ended, minus those held back while barriers
    // align (exactly-once).
    let mut ended = vec![false; channels.len()];
    let mut blocked = vec![false; channels.len()];
    let mut alignment: Option<Alignment> = None;
    let mut active: Vec<usize> = (0..channels.len()).collect();
    let mut select = Select::new();
    for c in channels {
        select.recv(&c.receiver);
    }
    let mut open_channels = channels.len();
    let mut unflushed = false;
    // Set after the barrier of a stop-with-savepoint went through: until the savepoint is
    // given up, no processing-time wake-up fires (periodic watermarks, timers), so nothing
    // reaches the output that the savepoint's state would produce again after a resume (as
    // Flink's synchronous savepoint suspends the task).
    let mut stopping: Option<u64> = None;
    while open_channels > 0 {
        while let Ok(control) = rt.control.try_recv() {
            match control {
                TaskControl::Complete(id) => {
                    rt.notify_complete(id)?;
                    let notice = CheckpointNotice::Complete(id);
                    rt.checkpointing
                        .notify_functions(head.lifecycle(), notice)?;
                }
                TaskControl::Abort(id) => {
                    if stopping == Some(id) {
                        stopping = None;
                    }
                    let notice = CheckpointNotice::Aborted(id);
                    rt.checkpointing
                        .notify_functions(head.lifecycle(), notice)?;
                }
                // Only sources receive triggers.
                TaskControl::Trigger(_) => {}
            }
        }
        let operation = match select.try_select() {
            Ok(op) => op,
            Err(_) => {
                // Nothing is waiting: send partial batches on so records do not linger.
                if unflushed {
                    head.lifecycle().flush()?;
                    unflushed = false;
                }
                loop {
                    let timeout = match stopping {
                        None => wait_time(services),
                        Some(_) => CANCEL_POLL,
                    };
                    let selected = match &io {
                        Some(io) => io.timed(Wait::Idle, || select.select_timeout(timeout)),
                        None => select.select_timeout(timeout),
                    };
                    match selected {
                        Ok(op) => break op,
                        Err(_) if cancel.is_cancelled() => return Err(FjordError::Cancelled),
                        Err(_) if stopping.is_some() => {}
                        Err(_) => {
                            if fire_due_wakeups(head, services)? {
                                head.lifecycle().flush()?;
                            }
                        }
                    }
                }
            }
        };
        let k = active[operation.index()];
        let channel = &channels[k];
        match operation.recv(&channel.receiver) {
            Ok(event @ (Event::Records(_) | Event::Encoded(_))) => {
                if cancel.is_cancelled() {
                    return Err(FjordError::Cancelled);
                }
                head.process_batch(channel.input, event.into_batch()?)?;
                unflushed = true;
            }
            Ok(Event::Watermark(w)) => {
                if let Some(advanced) = valves[channel.input].update(slot[k], w) {
                    head.process_watermark(channel.input, advanced)?;
                    unflushed = true;
                }
            }
            Ok(Event::WatermarkStatus { idle }) => {
                let out = valves[channel.input].update_status(slot[k], idle);
                if let Some(w) = out.watermark {
                    head.process_watermark(channel.input, w)?;
                }
                if let Some(idle) = out.idle {
                    head.process_watermark_status(channel.input, idle)?;
                }
                unflushed = true;
            }
            Ok(Event::EndOfPartition) => {
                ended[k] = true;
                open_channels -= 1;
                if let Some(done) = alignment.as_mut().and_then(|a| a.on_end(k, &ended)) {
                    alignment = None;
                    blocked.iter_mut().for_each(|b| *b = false);
                    rt.checkpoint(&done, head.lifecycle(), None)?;
                    if done.stop.is_some() {
                        stopping = Some(done.id);
                    }
                }
                active = reselect(&mut select, channels, &ended, &blocked);
            }
            Ok(Event::Barrier(barrier)) => {
                let current = alignment.as_ref().map(|a| a.barrier.id);
                if current.is_some_and(|id| barrier.id < id) {
                    continue; // A late barrier of an alignment already given up.
                }
                if current.is_some_and(|id| barrier.id > id) || current.is_none() {
                    // A newer checkpoint supersedes an unfinished alignment (it was aborted).
                    blocked.iter_mut().for_each(|b| *b = false);
                    alignment = Some(Alignment {
                        barrier: barrier.clone(),
                        received: vec![false; channels.len()],
                    });
                }
                let a = alignment.as_mut().expect("aligning");
                a.received[k] = true;
                if a.complete(&ended) {
                    let done = alignment.take().expect("aligning").barrier;
                    blocked.iter_mut().for_each(|b| *b = false);
                    rt.checkpoint(&done, head.lifecycle(), None)?;
                    if done.stop.is_some() {
                        stopping = Some(done.id);
                    }
                } else if rt.mode == CheckpointingMode::ExactlyOnce {
                    blocked[k] = true;
                }
                active = reselect(&mut select, channels, &ended, &blocked);
            }
            // The producer went away without finishing: it failed or was cancelled.
            Err(_) => return Err(FjordError::Cancelled),
        }
        if stopping.is_none() {
            unflushed |= fire_due_wakeups(head, services)?;
        }
    }
    if stopping.is_some() {
        // Stopped by a savepoint: that savepoint is the last snapshot.
        rt.checkpointing.skip_final_checkpoint();
    }
    head.lifecycle().finish()?;
    rt.finished();
    rt.await_final_checkpoint(cancel, |control| match control {
        TaskControl::Trigger(barrier) => rt.final_checkpoint(barrier, None),
        TaskControl::Complete(id) => {
            rt.notify_complete(*id)?;
            let notice = CheckpointNotice::Complete(*id);
            rt.checkpointing.notify_functions(head.lifecycle(), notice)
        }
        TaskControl::Abort(id) => {
            let notice = CheckpointNotice::Aborted(*id);
            rt.checkpointing.notify_functions(head.lifecycle(), notice)
        }
    })
}
