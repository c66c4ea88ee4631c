//! The chain contract: what an operator pushes its records into.
//!
//! A chain of operators is a chain of [`Output`]s: every operator is the `Output` of the one
//! before it and owns the `Output` after it, so passing a record down a chain is a direct call.
//! [`Lifecycle`] holds the parts that do not depend on the record type (open, watermarks,
//! flushes, end of input, close, checkpoint notices) and [`Collector`] is how a user function
//! emits into an `Output`. A [`TwoInputOperator`] is the first operator of a chain with two
//! inputs.
//!
//! These sit below `checkpoint` (which tells a chain about completed checkpoints) and
//! `functions` (whose `flat_map` receives a `Collector`); the operators themselves, fan-out and
//! side outputs are in `operators::output`.

use crate::error::{FjordError, Result};
use crate::types::{StreamRecord, Timestamp};

/// The parts of an output that do not depend on the record type.
pub(crate) trait Lifecycle: Send {
    /// Opens everything downstream, then this operator (downstream must be ready first).
    fn open(&mut self) -> Result<()>;
    /// Passes an event-time watermark downstream.
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()>;
    /// Sends partly filled batches on, so records do not wait for more to come.
    fn flush(&mut self) -> Result<()>;
    /// End of input: emit what is pending and tell downstream that this stream ended.
    fn finish(&mut self) -> Result<()>;
    /// Releases resources. Called on success and on failure; must not fail on a half-open
    /// operator.
    fn close(&mut self) -> Result<()>;
    /// Processing time reached `now` and some operator of the chain asked to be woken then:
    /// fire due processing-time timers, then pass it on. Operators that forward records must
    /// forward this too; the default (for ends of chains) does nothing.
    fn advance_processing_time(&mut self, _now: Timestamp) -> Result<()> {
        Ok(())
    }
    /// The stream became idle (`true`) or active again (Flink's `WatermarkStatus`): idle
    /// streams do not hold back the watermark downstream. Forwarding operators pass it on;
    /// network writers send it to every channel.
    fn emit_watermark_status(&mut self, _idle: bool) -> Result<()> {
        Ok(())
    }
    /// A checkpoint completed everywhere or was given up: tell this operator's user function
    /// (Flink's `CheckpointListener`), then pass it on. Operators that forward records must
    /// forward this too; the default (for ends of chains) does nothing.
    fn notify_checkpoint(&mut self, _notice: CheckpointNotice) -> Result<()> {
        Ok(())
    }
}

/// What the task tells the operators of its chain about a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckpointNotice {
    /// The checkpoint completed on every task.
    Complete(u64),
    /// The checkpoint was given up.
    Aborted(u64),
}

/// Something records of type `T` are pushed into.
pub(crate) trait Output<T>: Lifecycle {
    /// Pushes one record.
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()>;

    /// Pushes the records of a batch from an input channel, in order: one call through the
    /// chain head's `dyn Output` per batch instead of per record, and operators behind a lock
    /// ([`crate::operators::shared::Shared`]) take it once per batch.
    fn emit_batch(&mut self, batch: Vec<StreamRecord<T>>) -> Result<()> {
        batch.into_iter().try_for_each(|record| self.emit(record))
    }
}

/// An operator with two typed inputs (connected streams): the head of a
/// two-input chain, fed by the task's input loop.
pub(crate) trait TwoInputOperator<A, B>: Lifecycle {
    /// A record of the first input.
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()>;
    /// A record of the second input.
    fn process2(&mut self, record: StreamRecord<B>) -> Result<()>;
}

/// Hands records from a user function to the next operator (Flink's `Collector`).
///
/// Records keep the timestamp of the input record they were produced from.
pub struct Collector<'a, U> {
    pub(crate) out: &'a mut dyn Output<U>,
    pub(crate) timestamp: Option<Timestamp>,
    pub(crate) error: Option<FjordError>,
}

impl<'a, U> Collector<'a, U> {
    pub(crate) fn new(out: &'a mut dyn Output<U>, timestamp: Option<Timestamp>) -> Self {
        Collector {
            out,
            timestamp,
            error: None,
        }
    }

    /// Emits one record downstream.
    ///
    /// If downstream fails, the failure is remembered and reported when the user function
    /// returns; later records are dropped because the job is failing anyway.
    #[inline]
    pub fn collect(&mut self, value: U) {
        if self.error.is_none() {
            let record = StreamRecord {
                value,
                timestamp: self.timestamp,
            };
            if let Err(e) = self.out.emit(record) {
                self.error = Some(e);
            }
        }
    }

    /// Emits one record with an explicit event-time timestamp.
    pub fn collect_with_timestamp(&mut self, value: U, timestamp: Timestamp) {
        if self.error.is_none()
            && let Err(e) = self
                .out
                .emit(StreamRecord::with_timestamp(value, timestamp))
        {
            self.error = Some(e);
        }
    }

    /// Returns the downstream failure, if any.
    pub(crate) fn finish(self) -> Result<()> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
