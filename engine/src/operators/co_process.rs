//! Process functions over connected streams: `CoProcessFunction` (two inputs, records in,
//! records and side outputs out) and `KeyedCoProcessFunction` (two keyed inputs with keyed
//! state and timers), as Flink's `CoProcessOperator` and `KeyedCoProcessOperator`.

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::keyed_process::KeyedProcessContext;
use crate::operators::output::{Collector, Lifecycle, Output, SideOutputs, guard};
use crate::operators::process::ProcessContext;
use crate::operators::rolling::KeySelector;
use crate::operators::shared::KeyedParts;
use crate::runtime::task::TwoInputOperator;
use crate::timers::{InternalTimerService, TimeDomain};
use crate::types::{Key, StreamRecord, Timestamp};
use std::marker::PhantomData;

/// Processes the records of two connected streams, one method per input (Flink's
/// `CoProcessFunction`). The context gives the record's timestamp, the main output and side
/// outputs; timers need keyed streams ([`KeyedCoProcessFunction`]).
pub trait CoProcessFunction<I1, I2, O>: Send + 'static {
    /// Processes a record of the first input.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut ProcessContext<'_, O>,
    ) -> Result<(), BoxError>;

    /// Processes a record of the second input.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut ProcessContext<'_, O>,
    ) -> Result<(), BoxError>;

    lifecycle_hooks!();
}

/// Processes the records of two connected keyed streams with keyed state (from the
/// [`RuntimeContext`] in `open`, shared by both inputs) and timers (Flink's
/// `KeyedCoProcessFunction`). Records of both inputs with the same key see the same state.
pub trait KeyedCoProcessFunction<K, I1, I2, O>: Send + 'static {
    /// Processes a record of the first input; `ctx.current_key()` is its key.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError>;

    /// Processes a record of the second input.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError>;

    /// A timer of `ctx.current_key()` fired at `timestamp` (records emitted here carry the
    /// timer's timestamp for event-time timers and none for processing-time timers).
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    lifecycle_hooks!();
}

/// Implements the parts of `Lifecycle` shared by the process operators here: open the
/// outputs then the function, forward everything, close the function then the outputs.
macro_rules! process_lifecycle_common {
    () => {
        fn open(&mut self) -> Result<()> {
            self.out.open()?;
            self.sides.open()?;
            let ctx = &self.ctx;
            let f = &mut self.f;
            guard(ctx, || f.open(ctx))
        }
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
        fn close(&mut self) -> Result<()> {
            let f = &mut self.f;
            let own = guard(&self.ctx, || f.close());
            let main = self.out.close();
            let sides = self.sides.close();
            own.and(main).and(sides)
        }
    };
}
pub(crate) use process_lifecycle_common;

/// Runs a [`CoProcessFunction`].
pub(crate) struct CoProcessOp<A, B, O, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<O>>,
    pub(crate) sides: SideOutputs,
    pub(crate) _in: PhantomData<fn(A, B)>,
}

impl<A: 'static, B: 'static, O: 'static, F: CoProcessFunction<A, B, O>> Lifecycle
    for CoProcessOp<A, B, O, F>
{
    process_lifecycle_common!();
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.out.emit_watermark(watermark)?;
        self.sides.emit_watermark(watermark)
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.out.advance_processing_time(now)?;
        self.sides.advance_processing_time(now)
    }
}

impl<A: 'static, B: 'static, O: 'static, F: CoProcessFunction<A, B, O>> CoProcessOp<A, B, O, F> {
    fn run(
        &mut self,
        timestamp: Option<Timestamp>,
        call: impl FnOnce(&mut F, &mut ProcessContext<'_, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        let mut pctx = ProcessContext {
            collector: Collector::new(self.out.as_mut(), timestamp),
            sides: &mut self.sides,
            side_error: None,
        };
        let f = &mut self.f;
        guard(&self.ctx, || call(f, &mut pctx))?;
        if let Some(e) = pctx.side_error {
            return Err(e);
        }
        pctx.collector.finish()
    }
}

impl<A: 'static, B: 'static, O: 'static, F: CoProcessFunction<A, B, O>> TwoInputOperator<A, B>
    for CoProcessOp<A, B, O, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        self.run(record.timestamp, |f, c| f.process_element1(record.value, c))
    }
    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        self.run(record.timestamp, |f, c| f.process_element2(record.value, c))
    }
}

/// Runs a [`KeyedCoProcessFunction`]; its keyed state and timers go into checkpoints.
pub(crate) struct KeyedCoProcessOp<K, A, B, O, F> {
    ctx: RuntimeContext,
    f: F,
    k1: KeySelector<A, K>,
    k2: KeySelector<B, K>,
    timers: InternalTimerService<K, ()>,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedCoProcessFunction<K, A, B, O>>
    KeyedCoProcessOp<K, A, B, O, F>
{
    /// A new operator subtask, restored from the job's snapshot if there is one. Register
    /// it with `Shared::register`.
    pub(crate) fn new(
        ctx: &RuntimeContext,
        f: F,
        (k1, k2): (KeySelector<A, K>, KeySelector<B, K>),
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
    ) -> Result<Self> {
        let ctx = ctx.with_unregistered_keyed_state()?;
        let mut op = KeyedCoProcessOp {
            timers: InternalTimerService::new(&ctx),
            ctx,
            f,
            k1,
            k2,
            out,
            sides,
        };
        if let Some(restored) = op.ctx.restored_state()? {
            op.parts().restore(&restored, |_, _| Ok(()))?;
        }
        Ok(op)
    }

    fn parts(&mut self) -> KeyedParts<'_, K, ()> {
        KeyedParts {
            range: self.ctx.key_group_range(),
            max_parallelism: self.ctx.max_parallelism,
            backend: self.ctx.keyed.as_ref(),
            timers: &mut self.timers,
        }
    }

    fn run(
        &mut self,
        key: &K,
        timestamp: Option<Timestamp>,
        domain: Option<TimeDomain>,
        call: impl FnOnce(&mut F, &mut KeyedProcessContext<'_, K, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        self.ctx
            .keyed
            .as_ref()
            .expect("keyed co-process has keyed state")
            .set_current_key(key);
        let mut pctx = KeyedProcessContext {
            key,
            timestamp,
            domain,
            out: self.out.as_mut(),
            sides: &mut self.sides,
            timers: &mut self.timers,
            error: None,
        };
        let f = &mut self.f;
        guard(&self.ctx, || call(f, &mut pctx))?;
        match pctx.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fire(&mut self, domain: TimeDomain, limit: Timestamp) -> Result<()> {
        loop {
            let timer = match domain {
                TimeDomain::EventTime => self.timers.event.pop_due(limit),
                TimeDomain::ProcessingTime => self.timers.processing.pop_due(limit),
            };
            let Some(timer) = timer else { break };
            let ts = (domain == TimeDomain::EventTime).then_some(timer.timestamp);
            self.run(&timer.key, ts, Some(domain), |f, c| {
                f.on_timer(timer.timestamp, c)
            })?;
        }
        Ok(())
    }
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedCoProcessFunction<K, A, B, O>> Lifecycle
    for KeyedCoProcessOp<K, A, B, O, F>
{
    process_lifecycle_common!();
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
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedCoProcessFunction<K, A, B, O>>
    TwoInputOperator<A, B> for KeyedCoProcessOp<K, A, B, O, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let key = (self.k1)(&record.value);
        self.run(&key, record.timestamp, None, |f, c| {
            f.process_element1(record.value, c)
        })
    }
    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let key = (self.k2)(&record.value);
        self.run(&key, record.timestamp, None, |f, c| {
            f.process_element2(record.value, c)
        })
    }
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedCoProcessFunction<K, A, B, O>>
    CheckpointParticipant for KeyedCoProcessOp<K, A, B, O, F>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        Ok(OperatorState {
            keyed: self.parts().snapshot(|_| Ok(Vec::new()))?,
            operator: None,
        })
    }
}
