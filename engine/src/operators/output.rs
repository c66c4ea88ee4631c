//! Where operators push their results: fan-out, side outputs and the emitter of process-style
//! functions, over the chain contract (`Output`, `Lifecycle`, `Collector`) defined in
//! [`crate::chain`] and re-exported here.
//!
//! A chain of operators is a chain of `Output`s: every operator is the `Output` of the one
//! before it and owns the `Output` after it, so passing a record down a chain is a direct call.

pub(crate) use crate::chain::{CheckpointNotice, Collector, Lifecycle, Output};
use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result, panic_message};
use crate::types::{StreamRecord, Timestamp};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Calls the checkpoint hook of user function `$f` (a rich function) for `$notice`, turning
/// its error or panic into a `FjordError` naming the operator (context `$ctx`).
macro_rules! notify_function {
    ($ctx:expr, $f:expr, $notice:expr) => {{
        let f = &mut $f;
        $crate::operators::output::guard(&$ctx, || match $notice {
            $crate::operators::output::CheckpointNotice::Complete(id) => {
                f.notify_checkpoint_complete(id)
            }
            $crate::operators::output::CheckpointNotice::Aborted(id) => {
                f.notify_checkpoint_aborted(id)
            }
        })
    }};
}
pub(crate) use notify_function;

/// A type-erased `Box<dyn Output<T>>`, used while wiring a job graph.
pub(crate) type AnyOutput = Box<dyn Any + Send>;

/// Boxes a typed output for wiring.
pub(crate) fn erase<T: 'static>(out: Box<dyn Output<T>>) -> AnyOutput {
    Box::new(out)
}

/// Recovers a typed output; fails only on a bug in graph wiring.
pub(crate) fn unerase<T: 'static>(out: AnyOutput, what: &str) -> Result<Box<dyn Output<T>>> {
    out.downcast::<Box<dyn Output<T>>>()
        .map(|b| *b)
        .map_err(|_| {
            FjordError::Internal(format!(
                "output type mismatch while wiring {what}: expected {}",
                std::any::type_name::<T>()
            ))
        })
}

/// Calls a user function, turning its error or panic into a [`FjordError`] that names the
/// operator and subtask.
#[inline]
pub(crate) fn guard<R>(
    ctx: &RuntimeContext,
    f: impl FnOnce() -> std::result::Result<R, BoxError>,
) -> Result<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(source)) => Err(FjordError::UserFunction {
            location: ctx.location(),
            source,
        }),
        Err(payload) => Err(FjordError::UserPanic {
            location: ctx.location(),
            message: panic_message(payload.as_ref()),
        }),
    }
}

/// Drops every record (an operator whose output nobody consumes).
pub(crate) struct Discard;

impl Lifecycle for Discard {
    fn open(&mut self) -> Result<()> {
        Ok(())
    }
    fn emit_watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

impl<T> Output<T> for Discard {
    #[inline]
    fn emit(&mut self, _: StreamRecord<T>) -> Result<()> {
        Ok(())
    }
}

/// Sends every record to several outputs (a stream consumed more than once).
pub(crate) struct FanOut<T> {
    pub(crate) outputs: Vec<Box<dyn Output<T>>>,
}

impl<T: Send> Lifecycle for FanOut<T> {
    fn open(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.open())
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.emit_watermark(watermark))
    }
    fn flush(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.flush())
    }
    fn finish(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.finish())
    }
    fn close(&mut self) -> Result<()> {
        close_all(
            self.outputs
                .iter_mut()
                .map(|o| o.as_mut() as &mut dyn Lifecycle),
        )
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.advance_processing_time(now))
    }
    fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.emit_watermark_status(idle))
    }
    fn notify_checkpoint(&mut self, notice: CheckpointNotice) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.notify_checkpoint(notice))
    }
}

impl<T: Clone + Send> Output<T> for FanOut<T> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let (last, rest) = self.outputs.split_last_mut().expect("fan-out has outputs");
        for o in rest {
            o.emit(record.clone())?;
        }
        last.emit(record)
    }
}

/// Closes every item even if some fail, returning the first error.
pub(crate) fn close_all<'a>(items: impl Iterator<Item = &'a mut dyn Lifecycle>) -> Result<()> {
    let mut first = Ok(());
    for item in items {
        if let Err(e) = item.close()
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

/// A side output of one type, as stored by an operator.
pub(crate) struct TypedSide<X> {
    pub(crate) output: Box<dyn Output<X>>,
}

/// A side output with its type erased, so operators can hold outputs of many types.
pub(crate) trait SideOutput: Send {
    fn lifecycle(&mut self) -> &mut dyn Lifecycle;
    fn as_any(&mut self) -> &mut dyn Any;
}

impl<X: 'static> SideOutput for TypedSide<X> {
    fn lifecycle(&mut self) -> &mut dyn Lifecycle {
        self.output.as_mut()
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// The side outputs an operator emits to, by tag id. A tag nobody selected is not here and
/// its records are dropped, as in Flink.
#[derive(Default)]
pub(crate) struct SideOutputs {
    pub(crate) outputs: Vec<(String, Box<dyn SideOutput>)>,
}

impl SideOutputs {
    /// Emits to the side output with this tag id, if anybody consumes it.
    pub(crate) fn emit<X: 'static>(&mut self, tag: &str, record: StreamRecord<X>) -> Result<()> {
        for (id, out) in &mut self.outputs {
            if id == tag {
                let typed = out.as_any().downcast_mut::<TypedSide<X>>().ok_or_else(|| {
                    FjordError::Internal(format!("side output '{tag}' has another type"))
                })?;
                return typed.output.emit(record);
            }
        }
        Ok(())
    }

    fn each(&mut self) -> impl Iterator<Item = &mut dyn Lifecycle> {
        self.outputs.iter_mut().map(|(_, o)| o.lifecycle())
    }

    pub(crate) fn open(&mut self) -> Result<()> {
        self.each().try_for_each(|o| o.open())
    }
    pub(crate) fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.each().try_for_each(|o| o.emit_watermark(watermark))
    }
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.each().try_for_each(|o| o.flush())
    }
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.each().try_for_each(|o| o.finish())
    }
    pub(crate) fn close(&mut self) -> Result<()> {
        close_all(self.each())
    }
    pub(crate) fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.each().try_for_each(|o| o.advance_processing_time(now))
    }
    pub(crate) fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.each().try_for_each(|o| o.emit_watermark_status(idle))
    }
    pub(crate) fn notify_checkpoint(&mut self, notice: CheckpointNotice) -> Result<()> {
        self.each().try_for_each(|o| o.notify_checkpoint(notice))
    }
}

/// What a user function emits to while it runs: the main output (through a [`Collector`]
/// carrying the default timestamp) and the operator's side outputs. The first downstream
/// failure is kept and reported by [`Emitter::finish`] when the function returns; records
/// after it are dropped because the job is failing anyway. Every process-style context
/// (process, keyed process, co-process, broadcast, window functions) is built on it.
pub(crate) struct Emitter<'a, O> {
    pub(crate) collector: Collector<'a, O>,
    pub(crate) sides: &'a mut SideOutputs,
}

impl<'a, O> Emitter<'a, O> {
    pub(crate) fn new(
        out: &'a mut dyn Output<O>,
        sides: &'a mut SideOutputs,
        timestamp: Option<Timestamp>,
    ) -> Self {
        Emitter {
            collector: Collector::new(out, timestamp),
            sides,
        }
    }

    /// The timestamp records get unless one is given.
    #[inline]
    pub(crate) fn timestamp(&self) -> Option<Timestamp> {
        self.collector.timestamp
    }

    /// Emits to the main output with the default timestamp.
    #[inline]
    pub(crate) fn collect(&mut self, value: O) {
        self.collector.collect(value);
    }

    /// Emits to the main output with an explicit timestamp.
    #[inline]
    pub(crate) fn collect_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        self.collector.collect_with_timestamp(value, timestamp);
    }

    /// Emits to the side output with this tag id (with the default timestamp); dropped if
    /// nobody consumes the tag.
    pub(crate) fn output<X: 'static>(&mut self, tag: &str, value: X) {
        if self.collector.error.is_none() {
            let record = StreamRecord {
                value,
                timestamp: self.collector.timestamp,
            };
            if let Err(e) = self.sides.emit(tag, record) {
                self.collector.error = Some(e);
            }
        }
    }

    /// Returns the first downstream failure, if any.
    pub(crate) fn finish(self) -> Result<()> {
        self.collector.finish()
    }

    /// Returns the first downstream failure so far, if any, and forgets it (for contexts
    /// that are reused across calls).
    pub(crate) fn take_error(&mut self) -> Result<()> {
        self.collector.error.take().map_or(Ok(()), Err)
    }
}

/// Closes an operator's main and side outputs after its own closing (`own`), all of them
/// even if some fail, returning the first error.
pub(crate) fn close_after<O>(
    own: Result<()>,
    out: &mut dyn Output<O>,
    sides: &mut SideOutputs,
) -> Result<()> {
    let main = out.close();
    let sides = sides.close();
    own.and(main).and(sides)
}

/// Implements `emit_watermark_status`, `flush` and `finish` of [`Lifecycle`] for an operator
/// with a main output `self.out` and side outputs `self.sides`: forward to both.
macro_rules! forward_to_outputs {
    () => {
        fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
            self.out.emit_watermark_status(idle)?;
            self.sides.emit_watermark_status(idle)
        }
        fn flush(&mut self) -> Result<()> {
            self.out.flush()?;
            self.sides.flush()
        }
        fn finish(&mut self) -> Result<()> {
            self.out.finish()?;
            self.sides.finish()
        }
    };
}
pub(crate) use forward_to_outputs;

/// Implements `notify_checkpoint` of [`Lifecycle`] for an operator with outputs `self.out`
/// and `self.sides`: tell the user function `self.f` when `$f` is given, then forward.
macro_rules! forward_checkpoint_notice {
    () => {
        fn notify_checkpoint(
            &mut self,
            notice: $crate::operators::output::CheckpointNotice,
        ) -> Result<()> {
            self.out.notify_checkpoint(notice)?;
            self.sides.notify_checkpoint(notice)
        }
    };
    (f) => {
        fn notify_checkpoint(
            &mut self,
            notice: $crate::operators::output::CheckpointNotice,
        ) -> Result<()> {
            $crate::operators::output::notify_function!(self.ctx, self.f, notice)?;
            self.out.notify_checkpoint(notice)?;
            self.sides.notify_checkpoint(notice)
        }
    };
}
pub(crate) use forward_checkpoint_notice;

/// Implements the parts of [`Lifecycle`] shared by the process operators (a user function
/// `self.f`, runtime context `self.ctx`, outputs `self.out` and `self.sides`): open the
/// outputs then the function, forward status, flushes and the end of input, close the
/// function then the outputs.
macro_rules! process_lifecycle_common {
    () => {
        fn open(&mut self) -> Result<()> {
            self.out.open()?;
            self.sides.open()?;
            let ctx = &self.ctx;
            let f = &mut self.f;
            guard(ctx, || f.open(ctx))
        }
        fn close(&mut self) -> Result<()> {
            let f = &mut self.f;
            let own = guard(&self.ctx, || f.close());
            $crate::operators::output::close_after(own, self.out.as_mut(), &mut self.sides)
        }
        $crate::operators::output::forward_to_outputs!();
        $crate::operators::output::forward_checkpoint_notice!(f);
    };
}
pub(crate) use process_lifecycle_common;

/// Implements `emit_watermark` and `advance_processing_time` of [`Lifecycle`] for a
/// non-keyed operator with a main output `self.out` and side outputs `self.sides`: keep the
/// watermark in `self.watermark` (the function can read it), then forward to both.
macro_rules! tracked_time {
    () => {
        fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
            self.watermark = watermark;
            self.out.emit_watermark(watermark)?;
            self.sides.emit_watermark(watermark)
        }
        fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
            self.out.advance_processing_time(now)?;
            self.sides.advance_processing_time(now)
        }
    };
}
pub(crate) use tracked_time;

/// Implements `emit_watermark` and `advance_processing_time` of [`Lifecycle`] for a keyed
/// operator with timers `self.timers` and a method `self.fire(domain, limit)` that runs the
/// due timers: fire, then forward to `self.out` and `self.sides`.
macro_rules! keyed_timer_time {
    () => {
        fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
            self.timers.watermark = watermark;
            self.fire(TimeDomain::EventTime, watermark)?;
            self.out.emit_watermark(watermark)?;
            self.sides.emit_watermark(watermark)
        }
        fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
            self.fire(TimeDomain::ProcessingTime, now)?;
            self.timers.reschedule_processing();
            self.out.advance_processing_time(now)?;
            self.sides.advance_processing_time(now)
        }
    };
}
pub(crate) use keyed_timer_time;
