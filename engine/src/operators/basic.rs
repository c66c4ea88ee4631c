//! Stateless one-input operators: map, flat_map, filter.

use crate::context::RuntimeContext;
use crate::error::Result;
use crate::functions::{FilterFunction, FlatMapFunction, MapFunction};
use crate::operators::output::{Collector, Lifecycle, Output, guard};
use crate::types::{StreamRecord, Timestamp};
use std::marker::PhantomData;

/// Implements `Lifecycle` for an operator struct with fields `ctx`, `f` (a rich function) and
/// `out` (the downstream output): open downstream then the function, close the function then
/// downstream, tell the function of checkpoints then downstream, forward everything else.
macro_rules! forwarding_lifecycle {
    ($ty:ident < $($p:ident),* > where $($bounds:tt)*) => {
        impl<$($p),*> Lifecycle for $ty<$($p),*> where $($bounds)* {
            fn open(&mut self) -> Result<()> {
                self.out.open()?;
                let ctx = &self.ctx;
                let f = &mut self.f;
                guard(ctx, || f.open(ctx))
            }
            fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
                self.out.emit_watermark(watermark)
            }
            fn flush(&mut self) -> Result<()> {
                self.out.flush()
            }
            fn finish(&mut self) -> Result<()> {
                self.out.finish()
            }
            fn close(&mut self) -> Result<()> {
                let f = &mut self.f;
                let own = guard(&self.ctx, || f.close());
                let downstream = self.out.close();
                own.and(downstream)
            }
            fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
                self.out.advance_processing_time(now)
            }
            fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
                self.out.emit_watermark_status(idle)
            }
            fn notify_checkpoint(
                &mut self,
                notice: $crate::operators::output::CheckpointNotice,
            ) -> Result<()> {
                $crate::operators::output::notify_function!(self.ctx, self.f, notice)?;
                self.out.notify_checkpoint(notice)
            }
        }
    };
}
pub(crate) use forwarding_lifecycle;

/// Applies a [`MapFunction`] to every record.
pub(crate) struct MapOp<T, U, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<U>>,
    pub(crate) _in: PhantomData<fn(T)>,
}

forwarding_lifecycle!(MapOp<T, U, F> where F: MapFunction<T, U>, U: 'static, T: 'static);

impl<T: 'static, U: 'static, F: MapFunction<T, U>> Output<T> for MapOp<T, U, F> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let timestamp = record.timestamp;
        let f = &mut self.f;
        let value = guard(&self.ctx, || f.map(record.value))?;
        self.out.emit(StreamRecord { value, timestamp })
    }
}

/// Applies a [`FlatMapFunction`] to every record.
pub(crate) struct FlatMapOp<T, U, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<U>>,
    pub(crate) _in: PhantomData<fn(T)>,
}

forwarding_lifecycle!(FlatMapOp<T, U, F> where F: FlatMapFunction<T, U>, U: 'static, T: 'static);

impl<T: 'static, U: 'static, F: FlatMapFunction<T, U>> Output<T> for FlatMapOp<T, U, F> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let mut collector = Collector::new(self.out.as_mut(), record.timestamp);
        let f = &mut self.f;
        guard(&self.ctx, || f.flat_map(record.value, &mut collector))?;
        collector.finish()
    }
}

/// Keeps the records a [`FilterFunction`] accepts.
pub(crate) struct FilterOp<T, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<T>>,
}

forwarding_lifecycle!(FilterOp<T, F> where F: FilterFunction<T>, T: 'static);

impl<T: 'static, F: FilterFunction<T>> Output<T> for FilterOp<T, F> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let f = &mut self.f;
        if guard(&self.ctx, || f.filter(&record.value))? {
            self.out.emit(record)
        } else {
            Ok(())
        }
    }
}
