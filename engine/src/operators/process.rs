//! The low-level `ProcessFunction`: records in, any number of records and side-output
//! records out, with access to the record's timestamp.

use crate::context::RuntimeContext;
use crate::error::{BoxError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::output::{
    Emitter, Lifecycle, Output, SideOutputs, guard, process_lifecycle_common, tracked_time,
};
#[allow(unused_imports)] // named by the docs
use crate::types::MIN_WATERMARK;
use crate::types::OutputTag;
use crate::types::{Data, StreamRecord, Timestamp};
use std::marker::PhantomData;

/// A function that sees each record with its context and may emit to the main output and to
/// side outputs (Flink's `ProcessFunction`).
pub trait ProcessFunction<T, U>: Send + 'static {
    /// Processes one record.
    fn process_element(
        &mut self,
        value: T,
        ctx: &mut ProcessContext<'_, U>,
    ) -> Result<(), BoxError>;
    lifecycle_hooks!();
}

impl<T, U, F> ProcessFunction<T, U> for F
where
    F: FnMut(T, &mut ProcessContext<'_, U>) + Send + 'static,
{
    fn process_element(
        &mut self,
        value: T,
        ctx: &mut ProcessContext<'_, U>,
    ) -> Result<(), BoxError> {
        self(value, ctx);
        Ok(())
    }
}

/// What a [`ProcessFunction`] can do while processing a record.
pub struct ProcessContext<'a, U> {
    pub(crate) emit: Emitter<'a, U>,
    time: OperatorTime<'a>,
}

/// An operator's clocks as its function sees them: the operator's current watermark and
/// the job's processing-time clock.
#[derive(Clone, Copy)]
pub(crate) struct OperatorTime<'a> {
    /// The operator's current watermark ([`MIN_WATERMARK`] before the first one).
    pub(crate) watermark: Timestamp,
    /// The operator's runtime context (its processing-time clock).
    pub(crate) rt: &'a RuntimeContext,
}

impl<'a, U> ProcessContext<'a, U> {
    /// A context emitting to `out` and `sides`, records stamped with `timestamp`, telling the
    /// operator's times `time`.
    pub(crate) fn new(
        out: &'a mut dyn Output<U>,
        sides: &'a mut SideOutputs,
        timestamp: Option<Timestamp>,
        time: OperatorTime<'a>,
    ) -> Self {
        ProcessContext {
            emit: Emitter::new(out, sides, timestamp),
            time,
        }
    }

    /// Returns the first downstream failure, if any.
    pub(crate) fn finish(self) -> Result<()> {
        self.emit.finish()
    }
}

impl<U> ProcessContext<'_, U> {
    /// The event-time timestamp of the current record, if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.emit.timestamp()
    }

    /// Emits a record to the main output, with the current record's timestamp.
    pub fn collect(&mut self, value: U) {
        self.emit.collect(value);
    }

    /// Emits a record to the main output with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: U, timestamp: Timestamp) {
        self.emit.collect_with_timestamp(value, timestamp);
    }

    /// Emits a record to the side output identified by `tag`. Records for a tag that no
    /// downstream operator selected with `get_side_output` are dropped, as in Flink.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.emit.output(tag.id(), value);
    }

    /// The operator's current watermark ([`MIN_WATERMARK`] before the first one).
    pub fn current_watermark(&self) -> Timestamp {
        self.time.watermark
    }

    /// The current processing time (the job's clock).
    pub fn current_processing_time(&self) -> Timestamp {
        self.time.rt.current_processing_time()
    }

    /// The current times, as Flink's `ctx.timerService()` of a non-keyed function tells
    /// them. Registering timers needs a keyed stream (`key_by(..).process(..)`): Flink throws
    /// `UnsupportedOperationException` at run time, here the methods do not exist.
    pub fn timer_service(&self) -> ProcessTimerService {
        ProcessTimerService {
            watermark: self.time.watermark,
            processing_time: self.current_processing_time(),
        }
    }
}

/// The times a non-keyed process function can read (Flink's `TimerService` outside a keyed
/// stream, without timers), as of the call to [`ProcessContext::timer_service`].
#[derive(Debug, Clone, Copy)]
pub struct ProcessTimerService {
    watermark: Timestamp,
    processing_time: Timestamp,
}

impl ProcessTimerService {
    /// The operator's current watermark ([`MIN_WATERMARK`] before the first one).
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The processing time when the service was taken.
    pub fn current_processing_time(&self) -> Timestamp {
        self.processing_time
    }
}

/// Runs a [`ProcessFunction`].
pub(crate) struct ProcessOp<T, U, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<U>>,
    pub(crate) sides: SideOutputs,
    /// The operator's current watermark.
    pub(crate) watermark: Timestamp,
    pub(crate) _in: PhantomData<fn(T)>,
}

impl<T: 'static, U: 'static, F: ProcessFunction<T, U>> Lifecycle for ProcessOp<T, U, F> {
    process_lifecycle_common!();
    tracked_time!();
}

impl<T: 'static, U: 'static, F: ProcessFunction<T, U>> Output<T> for ProcessOp<T, U, F> {
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let time = OperatorTime {
            watermark: self.watermark,
            rt: &self.ctx,
        };
        let mut pctx =
            ProcessContext::new(self.out.as_mut(), &mut self.sides, record.timestamp, time);
        let f = &mut self.f;
        guard(&self.ctx, || f.process_element(record.value, &mut pctx))?;
        pctx.finish()
    }
}
