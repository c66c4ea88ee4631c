//! The low-level `ProcessFunction`: records in, any number of records and side-output
//! records out, with access to the record's timestamp.

use crate::api::side_output::OutputTag;
use crate::context::RuntimeContext;
use crate::error::{BoxError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::output::{
    Emitter, Lifecycle, Output, SideOutputs, forward_time, guard, process_lifecycle_common,
};
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
}

impl<'a, U> ProcessContext<'a, U> {
    /// A context emitting to `out` and `sides`, records stamped with `timestamp`.
    pub(crate) fn new(
        out: &'a mut dyn Output<U>,
        sides: &'a mut SideOutputs,
        timestamp: Option<Timestamp>,
    ) -> Self {
        ProcessContext {
            emit: Emitter::new(out, sides, timestamp),
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
}

/// Runs a [`ProcessFunction`].
pub(crate) struct ProcessOp<T, U, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<U>>,
    pub(crate) sides: SideOutputs,
    pub(crate) _in: PhantomData<fn(T)>,
}

impl<T: 'static, U: 'static, F: ProcessFunction<T, U>> Lifecycle for ProcessOp<T, U, F> {
    process_lifecycle_common!();
    forward_time!();
}

impl<T: 'static, U: 'static, F: ProcessFunction<T, U>> Output<T> for ProcessOp<T, U, F> {
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let mut pctx = ProcessContext::new(self.out.as_mut(), &mut self.sides, record.timestamp);
        let f = &mut self.f;
        guard(&self.ctx, || f.process_element(record.value, &mut pctx))?;
        pctx.finish()
    }
}
