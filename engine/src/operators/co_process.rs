//! Process functions over connected streams: `CoProcessFunction` (two inputs, records in,
//! records and side outputs out) and `KeyedCoProcessFunction` (two keyed inputs with keyed
//! state and timers), as Flink's `CoProcessOperator` and `KeyedCoProcessOperator`.

use crate::chain::TwoInputOperator;
use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::key_selector::KeySelector;
use crate::operators::keyed_process::{KeyedProcessContext, fire_keyed_timers, keyed_call};
use crate::operators::output::{
    Lifecycle, Output, SideOutputs, guard, keyed_timer_time, process_lifecycle_common, tracked_time,
};
use crate::operators::process::{OperatorTime, ProcessContext};
use crate::operators::shared::KeyedParts;
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

/// Runs a [`CoProcessFunction`].
pub(crate) struct CoProcessOp<A, B, O, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) out: Box<dyn Output<O>>,
    pub(crate) sides: SideOutputs,
    /// The operator's current watermark.
    pub(crate) watermark: Timestamp,
    pub(crate) _in: PhantomData<fn(A, B)>,
}

impl<A: 'static, B: 'static, O: 'static, F: CoProcessFunction<A, B, O>> Lifecycle
    for CoProcessOp<A, B, O, F>
{
    process_lifecycle_common!();
    tracked_time!();
}

impl<A: 'static, B: 'static, O: 'static, F: CoProcessFunction<A, B, O>> CoProcessOp<A, B, O, F> {
    fn run(
        &mut self,
        timestamp: Option<Timestamp>,
        call: impl FnOnce(&mut F, &mut ProcessContext<'_, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        let time = OperatorTime {
            watermark: self.watermark,
            rt: &self.ctx,
        };
        let mut pctx = ProcessContext::new(self.out.as_mut(), &mut self.sides, timestamp, time);
        let f = &mut self.f;
        guard(&self.ctx, || call(f, &mut pctx))?;
        pctx.finish()
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
            op.parts().restore(&restored, |_, _, _| Ok(()))?;
        }
        Ok(op)
    }

    fn parts(&mut self) -> KeyedParts<'_, K, ()> {
        KeyedParts::of(&self.ctx, &mut self.timers)
    }

    fn run(
        &mut self,
        key: &K,
        timestamp: Option<Timestamp>,
        domain: Option<TimeDomain>,
        call: impl FnOnce(&mut F, &mut KeyedProcessContext<'_, K, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        keyed_call!(self).run(&mut self.f, key, timestamp, domain, call)
    }

    fire_keyed_timers!();
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedCoProcessFunction<K, A, B, O>> Lifecycle
    for KeyedCoProcessOp<K, A, B, O, F>
{
    process_lifecycle_common!();
    keyed_timer_time!();
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedCoProcessFunction<K, A, B, O>>
    TwoInputOperator<A, B> for KeyedCoProcessOp<K, A, B, O, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let key = (self.k1)(&record.value).into_owned();
        self.run(&key, record.timestamp, None, |f, c| {
            f.process_element1(record.value, c)
        })
    }
    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let key = (self.k2)(&record.value).into_owned();
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
            ..OperatorState::default()
        })
    }
}
