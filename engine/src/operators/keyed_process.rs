//! `KeyedProcessFunction`: per-key processing with keyed state and timers (Flink's
//! `KeyedProcessFunction` and `KeyedProcessOperator`).

#![allow(clippy::too_many_arguments)]

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::key_selector::KeySelector;
use crate::operators::output::{
    Emitter, Lifecycle, Output, SideOutputs, guard, keyed_timer_time, process_lifecycle_common,
};
use crate::operators::shared::KeyedParts;
use crate::timers::{InternalTimerService, TimeDomain};
use crate::types::OutputTag;
use crate::types::{Data, Key, StreamRecord, Timestamp};
use std::marker::PhantomData;

/// Processes the records of a keyed stream one by one, with keyed state (from the
/// [`RuntimeContext`] in `open`) and timers (Flink's `KeyedProcessFunction`).
pub trait KeyedProcessFunction<K, I, O>: Send + 'static {
    /// Processes one record; `ctx` gives its timestamp and key, timers and outputs.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError>;

    /// A timer registered for `ctx.current_key()` fired at `timestamp`. Records emitted here
    /// carry the timer's timestamp for event-time timers and none for processing-time timers.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    lifecycle_hooks!();
}

/// What a [`KeyedProcessFunction`] can do while processing a record or a timer.
pub struct KeyedProcessContext<'a, K, O> {
    pub(crate) key: &'a K,
    pub(crate) domain: Option<TimeDomain>,
    pub(crate) timers: &'a mut InternalTimerService<K, ()>,
    pub(crate) emit: Emitter<'a, O>,
}

impl<'a, K, O> KeyedProcessContext<'a, K, O> {
    /// A context for `key` emitting to `out` and `sides`, records stamped with `timestamp`;
    /// `domain` is the domain of the firing timer, if a timer fired.
    pub(crate) fn new(
        key: &'a K,
        timestamp: Option<Timestamp>,
        domain: Option<TimeDomain>,
        out: &'a mut dyn Output<O>,
        sides: &'a mut SideOutputs,
        timers: &'a mut InternalTimerService<K, ()>,
    ) -> Self {
        KeyedProcessContext {
            key,
            domain,
            timers,
            emit: Emitter::new(out, sides, timestamp),
        }
    }

    /// Returns the first downstream failure, if any.
    pub(crate) fn finish(self) -> Result<()> {
        self.emit.finish()
    }
}

impl<K: Key, O> KeyedProcessContext<'_, K, O> {
    /// The timestamp of the current record (or of the firing timer).
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.emit.timestamp()
    }

    /// The key of the current record or timer.
    pub fn current_key(&self) -> &K {
        self.key
    }

    /// In `on_timer`: whether an event-time or a processing-time timer fired.
    pub fn time_domain(&self) -> Option<TimeDomain> {
        self.domain
    }

    /// Emits a record with the current timestamp.
    pub fn collect(&mut self, value: O) {
        self.emit.collect(value);
    }

    /// Emits a record with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        self.emit.collect_with_timestamp(value, timestamp);
    }

    /// Emits a record to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.emit.output(tag.id(), value);
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.timers.watermark
    }

    /// The current processing time.
    pub fn current_processing_time(&self) -> Timestamp {
        self.timers.current_processing_time()
    }

    /// The timer service of the current key (Flink's `ctx.timerService()`).
    pub fn timer_service(&mut self) -> TimerService<'_, K> {
        TimerService {
            key: self.key,
            timers: self.timers,
        }
    }
}

/// Registers and deletes timers of the current key, and tells the current times.
pub struct TimerService<'a, K> {
    key: &'a K,
    timers: &'a mut InternalTimerService<K, ()>,
}

impl<K: Key> TimerService<'_, K> {
    /// The current watermark of the operator.
    pub fn current_watermark(&self) -> Timestamp {
        self.timers.watermark
    }

    /// The current processing time (the job's clock).
    pub fn current_processing_time(&self) -> Timestamp {
        self.timers.current_processing_time()
    }

    /// Fires `on_timer` when the watermark reaches `time`. One timer per key and timestamp.
    pub fn register_event_time_timer(&mut self, time: Timestamp) {
        self.timers.register_event_time(self.key, &(), time);
    }

    /// Fires `on_timer` when processing time reaches `time`. One timer per key and timestamp.
    pub fn register_processing_time_timer(&mut self, time: Timestamp) {
        self.timers.register_processing_time(self.key, &(), time);
    }

    /// Deletes an event-time timer of the current key.
    pub fn delete_event_time_timer(&mut self, time: Timestamp) {
        self.timers.event.delete(self.key, &(), time);
    }

    /// Deletes a processing-time timer of the current key.
    pub fn delete_processing_time_timer(&mut self, time: Timestamp) {
        self.timers.processing.delete(self.key, &(), time);
    }
}

/// The borrowed parts of a keyed process-style operator (keyed process, keyed co-process,
/// keyed broadcast process) needed to call its function for one key.
pub(crate) struct KeyedCall<'a, K, O> {
    pub(crate) ctx: &'a RuntimeContext,
    pub(crate) timers: &'a mut InternalTimerService<K, ()>,
    pub(crate) out: &'a mut dyn Output<O>,
    pub(crate) sides: &'a mut SideOutputs,
}

impl<K: Key, O> KeyedCall<'_, K, O> {
    /// Sets `key` as the current key of keyed state, calls the function through `call` with
    /// a [`KeyedProcessContext`], and returns its error, panic or downstream failure.
    pub(crate) fn run<F>(
        self,
        f: &mut F,
        key: &K,
        timestamp: Option<Timestamp>,
        domain: Option<TimeDomain>,
        call: impl FnOnce(&mut F, &mut KeyedProcessContext<'_, K, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        self.ctx
            .keyed
            .as_ref()
            .expect("keyed process operators have keyed state")
            .set_current_key(key);
        let mut pctx =
            KeyedProcessContext::new(key, timestamp, domain, self.out, self.sides, self.timers);
        guard(self.ctx, || call(f, &mut pctx))?;
        pctx.finish()
    }
}

/// The [`KeyedCall`] of an operator with fields `ctx`, `timers`, `out` and `sides` (borrowed
/// apart from the function `f`, so `keyed_call!(self).run(&mut self.f, ..)` works).
macro_rules! keyed_call {
    ($op:ident) => {
        $crate::operators::keyed_process::KeyedCall {
            ctx: &$op.ctx,
            timers: &mut $op.timers,
            out: $op.out.as_mut(),
            sides: &mut $op.sides,
        }
    };
}
pub(crate) use keyed_call;

/// Implements `fn fire(&mut self, domain, limit)` for a keyed process-style operator with
/// timers `self.timers` and `fn run(&mut self, key, timestamp, domain, call)`: calls
/// `on_timer` for every due timer in timestamp order. Records emitted there carry the timer's
/// timestamp for event time and none for processing time.
macro_rules! fire_keyed_timers {
    () => {
        fn fire(&mut self, domain: TimeDomain, limit: Timestamp) -> Result<()> {
            while let Some(timer) = self.timers.pop_due(domain, limit) {
                let ts = (domain == TimeDomain::EventTime).then_some(timer.timestamp);
                self.run(&timer.key, ts, Some(domain), |f, c| {
                    f.on_timer(timer.timestamp, c)
                })?;
            }
            Ok(())
        }
    };
}
pub(crate) use fire_keyed_timers;

/// Runs a [`KeyedProcessFunction`].
pub(crate) struct KeyedProcessOp<K, I, O, F> {
    ctx: RuntimeContext,
    f: F,
    key: KeySelector<I, K>,
    timers: InternalTimerService<K, ()>,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
    _t: PhantomData<fn(I)>,
}

impl<K: Key, I, O, F> KeyedProcessOp<K, I, O, F> {
    pub(crate) fn new(
        ctx: &RuntimeContext,
        f: F,
        key: KeySelector<I, K>,
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
    ) -> Result<Self> {
        let ctx = ctx.with_unregistered_keyed_state()?;
        let mut op = KeyedProcessOp {
            timers: InternalTimerService::new(&ctx),
            ctx,
            f,
            key,
            out,
            sides,
            _t: PhantomData,
        };
        if let Some(restored) = op.ctx.restored_state()? {
            op.parts().restore(&restored, |_, _, _| Ok(()))?;
        }
        Ok(op)
    }

    fn parts(&mut self) -> KeyedParts<'_, K, ()> {
        KeyedParts::of(&self.ctx, &mut self.timers)
    }
}

/// Keyed state and timers, per key group.
impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> CheckpointParticipant
    for KeyedProcessOp<K, I, O, F>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        Ok(OperatorState {
            keyed: self.parts().snapshot(|_| Ok(Vec::new()))?,
            operator: None,
            ..OperatorState::default()
        })
    }
}

impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> KeyedProcessOp<K, I, O, F> {
    /// Calls the function for `key` (set as the current key of keyed state).
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

impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> Lifecycle
    for KeyedProcessOp<K, I, O, F>
{
    process_lifecycle_common!();
    keyed_timer_time!();
}

impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> Output<I>
    for KeyedProcessOp<K, I, O, F>
{
    fn emit(&mut self, record: StreamRecord<I>) -> Result<()> {
        let key = (self.key)(&record.value).into_owned();
        self.run(&key, record.timestamp, None, |f, c| {
            f.process_element(record.value, c)
        })
    }
    fn emit_batch(&mut self, batch: Vec<StreamRecord<I>>) -> Result<()> {
        let state = self
            .ctx
            .keyed
            .clone()
            .expect("keyed process operators have keyed state");
        state.for_each_held(batch, |record| self.emit(record))
    }
}
