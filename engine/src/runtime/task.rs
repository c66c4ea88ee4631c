//! What one parallel subtask runs: a source loop, or an input loop feeding a chain head.

use crate::context::RuntimeContext;
use crate::error::{FjordError, Result};
use crate::operators::output::{Lifecycle, Output, guard};
use crate::runtime::channel::{CANCEL_POLL, CancelFlag, Event};
use crate::sources::{SourceOutput, SourceReader, SourceStatus, source_failure};
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
    /// The whole chain, for open / flush / finish / close.
    fn lifecycle(&mut self) -> &mut dyn Lifecycle;
}

/// Head of a chain that starts with a one-input operator.
pub(crate) struct OneInputHead<T> {
    pub(crate) operator: Box<dyn Output<T>>,
}

impl<T: Send + 'static> TaskHead for OneInputHead<T> {
    fn process_batch(&mut self, _input: usize, batch: Box<dyn Any + Send>) -> Result<()> {
        let batch = batch.downcast::<Vec<StreamRecord<T>>>().map_err(|_| {
            FjordError::Internal(format!("batch is not of {}", std::any::type_name::<T>()))
        })?;
        for record in *batch {
            self.operator.emit(record)?;
        }
        Ok(())
    }

    fn process_watermark(&mut self, _input: usize, watermark: Timestamp) -> Result<()> {
        self.operator.emit_watermark(watermark)
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
    pub(crate) current: Timestamp,
}

impl<A, B> TwoInputHead<A, B> {
    pub(crate) fn new(operator: Box<dyn TwoInputOperator<A, B>>) -> Self {
        TwoInputHead { operator, watermarks: [MIN_WATERMARK; 2], current: MIN_WATERMARK }
    }
}

fn downcast_batch<T: 'static>(batch: Box<dyn Any + Send>) -> Result<Vec<StreamRecord<T>>> {
    batch.downcast::<Vec<StreamRecord<T>>>().map(|b| *b).map_err(|_| {
        FjordError::Internal(format!("batch is not of {}", std::any::type_name::<T>()))
    })
}

impl<A: Send + 'static, B: Send + 'static> TaskHead for TwoInputHead<A, B> {
    fn process_batch(&mut self, input: usize, batch: Box<dyn Any + Send>) -> Result<()> {
        if input == 0 {
            downcast_batch::<A>(batch)?.into_iter().try_for_each(|r| self.operator.process1(r))
        } else {
            downcast_batch::<B>(batch)?.into_iter().try_for_each(|r| self.operator.process2(r))
        }
    }

    fn process_watermark(&mut self, input: usize, watermark: Timestamp) -> Result<()> {
        self.watermarks[input] = watermark;
        let combined = self.watermarks[0].min(self.watermarks[1]);
        if combined > self.current {
            self.current = combined;
            self.operator.emit_watermark(combined)?;
        }
        Ok(())
    }

    fn lifecycle(&mut self) -> &mut dyn Lifecycle {
        self.operator.as_mut()
    }
}

/// Tracks the watermark of each channel of one logical input and yields the minimum when it
/// advances (Flink's `StatusWatermarkValve`, without idleness for now).
struct WatermarkValve {
    channels: Vec<Timestamp>,
    current: Timestamp,
}

impl WatermarkValve {
    fn new(channels: usize) -> Self {
        WatermarkValve { channels: vec![MIN_WATERMARK; channels], current: MIN_WATERMARK }
    }

    fn update(&mut self, channel: usize, watermark: Timestamp) -> Option<Timestamp> {
        if watermark <= self.channels[channel] {
            return None;
        }
        self.channels[channel] = watermark;
        let min = self.channels.iter().copied().min().unwrap_or(MAX_WATERMARK);
        (min > self.current).then(|| {
            self.current = min;
            min
        })
    }
}

/// One input channel of a task: which logical input it feeds and its receiver.
pub(crate) struct InputChannel {
    pub(crate) input: usize,
    pub(crate) receiver: Receiver<Event>,
}

/// Runs a task that reads from channels until every channel ended, then finishes the chain.
/// The caller opens nothing and must call `close` on the head afterwards, also on failure.
pub(crate) fn run_input_task(head: &mut dyn TaskHead, channels: &[InputChannel], cancel: &CancelFlag) -> Result<()> {
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

    let mut select = Select::new();
    for c in channels {
        select.recv(&c.receiver);
    }
    let mut open_channels = channels.len();
    let mut unflushed = false;
    while open_channels > 0 {
        let operation = match select.try_select() {
            Ok(op) => op,
            Err(_) => {
                // Nothing is waiting: send partial batches on so records do not linger.
                if unflushed {
                    head.lifecycle().flush()?;
                    unflushed = false;
                }
                loop {
                    match select.select_timeout(CANCEL_POLL) {
                        Ok(op) => break op,
                        Err(_) if cancel.is_cancelled() => return Err(FjordError::Cancelled),
                        Err(_) => {}
                    }
                }
            }
        };
        let k = operation.index();
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
            Ok(Event::EndOfPartition) => {
                select.remove(k);
                open_channels -= 1;
            }
            // The producer went away without finishing: it failed or was cancelled.
            Err(_) => return Err(FjordError::Cancelled),
        }
    }
    head.lifecycle().finish()
}

/// A source subtask.
pub(crate) trait SourceRunner: Send {
    /// Reads until the source is exhausted or the job is cancelled.
    fn run(&mut self, cancel: &CancelFlag) -> Result<()>;
    /// Releases the reader and the chain; called also on failure.
    fn close(&mut self) -> Result<()>;
}

/// Polls a source reader and pushes its records into the chain.
pub(crate) struct SourceTask<T> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) reader: Box<dyn SourceReader<T>>,
    pub(crate) out: Box<dyn Output<T>>,
    pub(crate) buffer_timeout: Duration,
}

impl<T: Send + 'static> SourceRunner for SourceTask<T> {
    fn run(&mut self, cancel: &CancelFlag) -> Result<()> {
        self.out.open()?;
        let ctx = &self.ctx;
        let reader = &mut self.reader;
        guard(ctx, || reader.open(ctx)).map_err(source_failure)?;
        let mut last_flush = Instant::now();
        let mut polls: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(FjordError::Cancelled);
            }
            let mut output = SourceOutput::new(self.out.as_mut());
            let reader = &mut self.reader;
            let status = guard(&self.ctx, || reader.poll_next(&mut output)).map_err(source_failure);
            if let Some(e) = output.take_error() {
                return Err(e);
            }
            match status? {
                SourceStatus::Finished => break,
                SourceStatus::NothingAvailable => {
                    self.out.flush()?;
                    last_flush = Instant::now();
                }
                SourceStatus::MoreAvailable => {
                    polls = polls.wrapping_add(1);
                    if polls % 16 == 0 && last_flush.elapsed() >= self.buffer_timeout {
                        self.out.flush()?;
                        last_flush = Instant::now();
                    }
                }
            }
        }
        // A bounded source ends event time, which fires every pending event-time timer and
        // window downstream (Flink does the same).
        self.out.emit_watermark(MAX_WATERMARK)?;
        self.out.finish()
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
    fn valve_takes_minimum_over_channels() {
        let mut v = WatermarkValve::new(2);
        assert_eq!(v.update(0, 10), None);
        assert_eq!(v.update(1, 5), Some(5));
        assert_eq!(v.update(1, 20), Some(10));
        assert_eq!(v.update(0, 8), None, "watermarks never go back");
        assert_eq!(v.update(0, 30), Some(20));
    }
}
