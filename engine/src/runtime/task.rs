//! What one parallel subtask runs: a source loop, or an input loop feeding a chain head.

use crate::checkpoint::coordinator::TaskControl;
use crate::checkpoint::participant::{OperatorKey, OperatorState};
use crate::checkpoint::{CheckpointBarrier, CheckpointingMode};
use crate::context::{RuntimeContext, TaskServices};
use crate::error::{FjordError, Result};
use crate::operators::output::{CheckpointNotice, Lifecycle, Output, guard};
use crate::runtime::channel::{CANCEL_POLL, CancelFlag, Event};
use crate::runtime::io_metrics::{IoCounter, TaskIo, Wait};
use crate::runtime::task_runtime::TaskRuntime;
use crate::sources::{
    SourceOutput, SourceReader, SourceStatus, restore_position, snapshot_position, source_failure,
};
use crate::types::{MAX_WATERMARK, MIN_WATERMARK, StreamRecord, Timestamp};
use crossbeam_channel::{Receiver, Select};
use std::any::Any;
use std::time::{Duration, Instant};

/// The first operator of a chain as the input loop sees it.
pub(crate) trait TaskHead: Send {
    /// Feeds a batch that arrived on logical input `input`.
    fn process_batch(&mut self, input: usize, batch: Box<dyn Any + Send>) -> Result<()>;
    /// The combined watermark of logical input `input` advanced.
    fn process_watermark(&mut self, input: usize, watermark: Timestamp) -> Result<()>;
    /// Logical input `input` became idle or active again.
    fn process_watermark_status(&mut self, input: usize, idle: bool) -> Result<()>;
    /// The whole chain, for open / flush / finish / close.
    fn lifecycle(&mut self) -> &mut dyn Lifecycle;
    /// Counts the records the head receives from now on into `counter`.
    fn count_records_in(&mut self, _counter: IoCounter) {}
    /// The metrics of the task this head runs in, once [`count_records_in`](Self::count_records_in)
    /// told it.
    fn task_io(&self) -> Option<TaskIo> {
        None
    }
}

/// Head of a chain that starts with a one-input operator.
pub(crate) struct OneInputHead<T> {
    pub(crate) operator: Box<dyn Output<T>>,
    pub(crate) records_in: Option<IoCounter>,
}

impl<T: Send + 'static> TaskHead for OneInputHead<T> {
    fn process_batch(&mut self, _input: usize, batch: Box<dyn Any + Send>) -> Result<()> {
        let batch = batch.downcast::<Vec<StreamRecord<T>>>().map_err(|_| {
            FjordError::Internal(format!("batch is not of {}", std::any::type_name::<T>()))
        })?;
        if let Some(c) = &self.records_in {
            c.add(batch.len() as u64);
        }
        for record in *batch {
            self.operator.emit(record)?;
        }
        Ok(())
    }

    fn count_records_in(&mut self, counter: IoCounter) {
        self.records_in = Some(counter);
    }

    fn task_io(&self) -> Option<TaskIo> {
        self.records_in.as_ref().map(|c| c.task().clone())
    }

    fn process_watermark(&mut self, _input: usize, watermark: Timestamp) -> Result<()> {
        if let Some(c) = &self.records_in {
            c.task().set_input_watermark(watermark);
        }
        self.operator.emit_watermark(watermark)
    }

    fn process_watermark_status(&mut self, _input: usize, idle: bool) -> Result<()> {
        self.operator.emit_watermark_status(idle)
    }

    fn lifecycle(&mut self) -> &mut dyn Lifecycle {
        self.operator.as_mut()
    }
}

/// An operator with two typed inputs (connected streams).
pub(crate) trait TwoInputOperator<A, B>: Lifecycle {
    /// A record of the first input.
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()>;
    /// A record of the second input.
    fn process2(&mut self, record: StreamRecord<B>) -> Result<()>;
}

/// Head of a chain that starts with a two-input operator; its watermark is the minimum of
/// both inputs' watermarks, as in Flink.
pub(crate) struct TwoInputHead<A, B> {
    pub(crate) operator: Box<dyn TwoInputOperator<A, B>>,
    pub(crate) watermarks: [Timestamp; 2],
    pub(crate) idle: [bool; 2],
    pub(crate) current: Timestamp,
    pub(crate) records_in: Option<IoCounter>,
}

impl<A, B> TwoInputHead<A, B> {
    pub(crate) fn new(operator: Box<dyn TwoInputOperator<A, B>>) -> Self {
        TwoInputHead {
            operator,
            watermarks: [MIN_WATERMARK; 2],
            idle: [false; 2],
            current: MIN_WATERMARK,
            records_in: None,
        }
    }

    /// The minimum over active inputs (both if both are idle).
    fn advance(&mut self) -> Result<()> {
        let combined = match self.idle {
            [false, true] => self.watermarks[0],
            [true, false] => self.watermarks[1],
            _ => self.watermarks[0].min(self.watermarks[1]),
        };
        if combined > self.current {
            self.current = combined;
            if let Some(c) = &self.records_in {
                c.task().set_input_watermark(combined);
            }
            self.operator.emit_watermark(combined)?;
        }
        Ok(())
    }
}

fn downcast_batch<T: 'static>(batch: Box<dyn Any + Send>) -> Result<Vec<StreamRecord<T>>> {
    batch
        .downcast::<Vec<StreamRecord<T>>>()
        .map(|b| *b)
        .map_err(|_| {
            FjordError::Internal(format!("batch is not of {}", std::any::type_name::<T>()))
        })
}

impl<A: Send + 'static, B: Send + 'static> TaskHead for TwoInputHead<A, B> {
    fn process_batch(&mut self, input: usize, batch: Box<dyn Any + Send>) -> Result<()> {
        if input == 0 {
            let batch = downcast_batch::<A>(batch)?;
            if let Some(c) = &self.records_in {
                c.add(batch.len() as u64);
            }
            batch
                .into_iter()
                .try_for_each(|r| self.operator.process1(r))
        } else {
            let batch = downcast_batch::<B>(batch)?;
            if let Some(c) = &self.records_in {
                c.add(batch.len() as u64);
            }
            batch
                .into_iter()
                .try_for_each(|r| self.operator.process2(r))
        }
    }

    fn count_records_in(&mut self, counter: IoCounter) {
        self.records_in = Some(counter);
    }

    fn task_io(&self) -> Option<TaskIo> {
        self.records_in.as_ref().map(|c| c.task().clone())
    }

    fn process_watermark(&mut self, input: usize, watermark: Timestamp) -> Result<()> {
        self.watermarks[input] = watermark;
        self.advance()
    }

    fn process_watermark_status(&mut self, input: usize, idle: bool) -> Result<()> {
        let was_idle = self.idle[0] && self.idle[1];
        self.idle[input] = idle;
        let now_idle = self.idle[0] && self.idle[1];
        if !idle {
            // An input coming back only counts from its next watermark on.
            self.watermarks[input] = self.watermarks[input].max(self.current);
        }
        self.advance()?;
        if was_idle != now_idle {
            self.operator.emit_watermark_status(now_idle)?;
        }
        Ok(())
    }

    fn lifecycle(&mut self) -> &mut dyn Lifecycle {
        self.operator.as_mut()
    }
}

/// One input channel as the valve sees it.
#[derive(Clone, Copy)]
struct ChannelStatus {
    watermark: Timestamp,
    idle: bool,
    /// An active channel counts for the minimum once its watermark caught up with the valve's
    /// output (a channel coming back from idleness must not pull the watermark back).
    aligned: bool,
}

/// Tracks the watermark and idleness of each channel of one logical input and yields the
/// minimum over active channels when it advances (Flink's `StatusWatermarkValve`).
pub(crate) struct WatermarkValve {
    channels: Vec<ChannelStatus>,
    current: Timestamp,
    idle: bool,
}

/// What a valve tells its task after an update.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ValveOutput {
    /// The combined watermark advanced to this value.
    pub(crate) watermark: Option<Timestamp>,
    /// The combined status changed: `Some(true)` idle, `Some(false)` active again.
    pub(crate) idle: Option<bool>,
}

impl WatermarkValve {
    pub(crate) fn new(channels: usize) -> Self {
        let status = ChannelStatus {
            watermark: MIN_WATERMARK,
            idle: false,
            aligned: true,
        };
        WatermarkValve {
            channels: vec![status; channels],
            current: MIN_WATERMARK,
            idle: false,
        }
    }

    fn advance_to_min(&mut self) -> Option<Timestamp> {
        let min = self
            .channels
            .iter()
            .filter(|c| !c.idle && c.aligned)
            .map(|c| c.watermark)
            .min()?;
        (min > self.current).then(|| {
            self.current = min;
            min
        })
    }

    /// A watermark arrived on `channel`. Watermarks of idle channels are ignored, as in Flink.
    pub(crate) fn update(&mut self, channel: usize, watermark: Timestamp) -> Option<Timestamp> {
        let c = &mut self.channels[channel];
        if c.idle || watermark <= c.watermark {
            return None;
        }
        c.watermark = watermark;
        if !c.aligned && watermark >= self.current {
            c.aligned = true;
        }
        self.advance_to_min()
    }

    /// `channel` became idle or active.
    pub(crate) fn update_status(&mut self, channel: usize, idle: bool) -> ValveOutput {
        let mut out = ValveOutput::default();
        let current = self.current;
        let c = &mut self.channels[channel];
        if idle == c.idle {
            return out;
        }
        if idle {
            c.idle = true;
            c.aligned = false;
            if self.channels.iter().all(|c| c.idle) {
                // The last active channel went idle: emit the highest watermark seen, then idle.
                let max = self
                    .channels
                    .iter()
                    .map(|c| c.watermark)
                    .max()
                    .unwrap_or(MIN_WATERMARK);
                if max > self.current {
                    self.current = max;
                    out.watermark = Some(max);
                }
                if !self.idle {
                    self.idle = true;
                    out.idle = Some(true);
                }
            } else {
                out.watermark = self.advance_to_min();
            }
        } else {
            c.idle = false;
            c.aligned = c.watermark >= current;
            if self.idle {
                self.idle = false;
                out.idle = Some(false);
            }
        }
        out
    }
}

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
            Ok(Event::Records(batch)) => {
                if cancel.is_cancelled() {
                    return Err(FjordError::Cancelled);
                }
                head.process_batch(channel.input, batch)?;
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

/// Barriers received so far for the checkpoint being aligned.
struct Alignment {
    barrier: CheckpointBarrier,
    received: Vec<bool>,
}

impl Alignment {
    /// Every channel delivered the barrier or ended.
    fn complete(&self, ended: &[bool]) -> bool {
        self.received.iter().zip(ended).all(|(r, e)| *r || *e)
    }

    /// A channel ended; returns the barrier if that completes the alignment.
    fn on_end(&mut self, _channel: usize, ended: &[bool]) -> Option<CheckpointBarrier> {
        self.complete(ended).then(|| self.barrier.clone())
    }
}

/// Rebuilds the selection over channels that have not ended and are not held back; returns
/// the channel index of each selection position.
fn reselect<'a>(
    select: &mut Select<'a>,
    channels: &'a [InputChannel],
    ended: &[bool],
    blocked: &[bool],
) -> Vec<usize> {
    *select = Select::new();
    let mut active = Vec::new();
    for (k, c) in channels.iter().enumerate() {
        if !ended[k] && !blocked[k] {
            select.recv(&c.receiver);
            active.push(k);
        }
    }
    active
}

impl<T> SourceTask<T> {
    /// Injects a barrier (snapshotting the read position between two polls) or passes on a
    /// completion notice.
    fn on_control(
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
    fn position(
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

    fn notify_complete(&mut self, id: u64, rt: &TaskRuntime) -> Result<()> {
        rt.notify_complete(id)?;
        let reader = &mut self.reader;
        guard(&self.ctx, || reader.notify_checkpoint_complete(id)).map_err(source_failure)?;
        let notice = CheckpointNotice::Complete(id);
        rt.checkpointing.notify_functions(self.out.as_mut(), notice)
    }

    fn notify_aborted(&mut self, id: u64, rt: &TaskRuntime) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_channels_do_not_hold_back_the_watermark() {
        let mut v = WatermarkValve::new(2);
        assert_eq!(v.update(0, 10), None);
        assert_eq!(
            v.update_status(1, true),
            ValveOutput {
                watermark: Some(10),
                idle: None
            }
        );
        assert_eq!(v.update(0, 15), Some(15));
        assert_eq!(
            v.update(1, 40),
            None,
            "watermarks of idle channels are ignored"
        );
        // Back from idleness behind the current watermark: not aligned, does not hold back.
        assert_eq!(v.update_status(1, false), ValveOutput::default());
        assert_eq!(v.update(0, 20), Some(20));
        assert_eq!(v.update(1, 18), None);
        assert_eq!(
            v.update(1, 25),
            None,
            "aligned again at 25, channel 0 at 20 is the minimum"
        );
        assert_eq!(v.update(0, 30), Some(25));
    }

    #[test]
    fn all_idle_emits_max_watermark_and_idle_status() {
        let mut v = WatermarkValve::new(2);
        v.update(0, 5);
        v.update(1, 9);
        assert_eq!(
            v.update_status(0, true),
            ValveOutput {
                watermark: Some(9),
                idle: None
            }
        );
        assert_eq!(
            v.update_status(1, true),
            ValveOutput {
                watermark: None,
                idle: Some(true)
            }
        );
        assert_eq!(
            v.update_status(0, false),
            ValveOutput {
                watermark: None,
                idle: Some(false)
            }
        );
    }

    #[test]
    fn valve_takes_minimum_over_channels() {
        let mut v = WatermarkValve::new(2);
        assert_eq!(v.update(0, 10), None);
        assert_eq!(v.update(1, 5), Some(5));
        assert_eq!(v.update(1, 20), Some(10));
        assert_eq!(v.update(0, 8), None, "watermarks never go back");
        assert_eq!(v.update(0, 30), Some(20));
    }
}
