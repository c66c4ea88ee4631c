//! Chain heads: the first operator of a chain as the input loop sees it ([`TaskHead`]), for
//! one-input chains ([`OneInputHead`]) and two-input chains ([`TwoInputHead`], whose watermark
//! is the minimum of both inputs').

use crate::chain::TwoInputOperator;
use crate::error::{FjordError, Result};
use crate::exchange::io_metrics::{IoCounter, TaskIo};
use crate::operators::output::{Lifecycle, Output};
use crate::types::{MIN_WATERMARK, StreamRecord, Timestamp};
use std::any::Any;

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
        self.operator.emit_batch(*batch)
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
