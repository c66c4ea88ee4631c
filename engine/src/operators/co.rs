//! Two-input operators over connected streams: CoMap and CoFlatMap.

use crate::chain::TwoInputOperator;
use crate::context::RuntimeContext;
use crate::error::Result;
use crate::functions::{CoFlatMapFunction, CoMapFunction};
use crate::operators::basic::forwarding_lifecycle;
use crate::operators::output::{Collector, Lifecycle, Output, guard};
use crate::types::{StreamRecord, Timestamp};
use std::marker::PhantomData;

/// Runs a [`CoMapFunction`].
pub(crate) struct CoMapOp<A, B, U, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<U>>,
    pub(crate) _in: PhantomData<fn(A, B)>,
}

forwarding_lifecycle!(CoMapOp<A, B, U, F> where F: CoMapFunction<A, B, U>, A: 'static, B: 'static, U: 'static);

impl<A: 'static, B: 'static, U: 'static, F: CoMapFunction<A, B, U>> TwoInputOperator<A, B>
    for CoMapOp<A, B, U, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let f = &mut self.f;
        let value = guard(&self.ctx, || f.map1(record.value))?;
        self.out.emit(StreamRecord {
            value,
            timestamp: record.timestamp,
        })
    }

    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let f = &mut self.f;
        let value = guard(&self.ctx, || f.map2(record.value))?;
        self.out.emit(StreamRecord {
            value,
            timestamp: record.timestamp,
        })
    }
}

/// Runs a [`CoFlatMapFunction`].
pub(crate) struct CoFlatMapOp<A, B, U, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<U>>,
    pub(crate) _in: PhantomData<fn(A, B)>,
}

forwarding_lifecycle!(CoFlatMapOp<A, B, U, F> where F: CoFlatMapFunction<A, B, U>, A: 'static, B: 'static, U: 'static);

impl<A: 'static, B: 'static, U: 'static, F: CoFlatMapFunction<A, B, U>> TwoInputOperator<A, B>
    for CoFlatMapOp<A, B, U, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let mut collector = Collector::new(self.out.as_mut(), record.timestamp);
        let f = &mut self.f;
        guard(&self.ctx, || f.flat_map1(record.value, &mut collector))?;
        collector.finish()
    }

    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let mut collector = Collector::new(self.out.as_mut(), record.timestamp);
        let f = &mut self.f;
        guard(&self.ctx, || f.flat_map2(record.value, &mut collector))?;
        collector.finish()
    }
}
