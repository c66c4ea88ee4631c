//! The low-level `ProcessFunction`: records in, any number of records and side-output
//! records out, with access to the record's timestamp.

use crate::api::side_output::OutputTag;
use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::output::{Collector, Lifecycle, Output, SideOutputs, guard};
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
    pub(crate) collector: Collector<'a, U>,
    pub(crate) sides: &'a mut SideOutputs,
    pub(crate) side_error: Option<FjordError>,
}

impl<U> ProcessContext<'_, U> {
    /// The event-time timestamp of the current record, if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.collector.timestamp
    }

    /// Emits a record to the main output, with the current record's timestamp.
    pub fn collect(&mut self, value: U) {
        self.collector.collect(value);
    }

    /// Emits a record to the main output with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: U, timestamp: Timestamp) {
        self.collector.collect_with_timestamp(value, timestamp);
    }

    /// Emits a record to the side output identified by `tag`. Records for a tag that no
    /// downstream operator selected with `get_side_output` are dropped, as in Flink.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        if self.side_error.is_none() {
            let record = StreamRecord {
                value,
                timestamp: self.collector.timestamp,
            };
            if let Err(e) = self.sides.emit(tag.id(), record) {
                self.side_error = Some(e);
            }
        }
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
    fn open(&mut self) -> Result<()> {
        self.out.open()?;
        self.sides.open()?;
        let ctx = &self.ctx;
        let f = &mut self.f;
        guard(ctx, || f.open(ctx))
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.out.emit_watermark(watermark)?;
        self.sides.emit_watermark(watermark)
    }
    fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        self.sides.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.out.finish()?;
        self.sides.finish()
    }
    fn close(&mut self) -> Result<()> {
        let f = &mut self.f;
        let own = guard(&self.ctx, || f.close());
        let main = self.out.close();
        let sides = self.sides.close();
        own.and(main).and(sides)
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.out.advance_processing_time(now)?;
        self.sides.advance_processing_time(now)
    }
    fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.out.emit_watermark_status(idle)?;
        self.sides.emit_watermark_status(idle)
    }
}

impl<T: 'static, U: 'static, F: ProcessFunction<T, U>> Output<T> for ProcessOp<T, U, F> {
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let mut pctx = ProcessContext {
            collector: Collector::new(self.out.as_mut(), record.timestamp),
            sides: &mut self.sides,
            side_error: None,
        };
        let f = &mut self.f;
        guard(&self.ctx, || f.process_element(record.value, &mut pctx))?;
        if let Some(e) = pctx.side_error {
            return Err(e);
        }
        pctx.collector.finish()
    }
}
