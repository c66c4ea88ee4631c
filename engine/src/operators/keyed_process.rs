//! `KeyedProcessFunction`: per-key processing with keyed state and timers (Flink's
//! `KeyedProcessFunction` and `KeyedProcessOperator`).

#![allow(clippy::collapsible_if, clippy::too_many_arguments)]

use crate::api::side_output::OutputTag;
use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::output::{Lifecycle, Output, SideOutputs, guard};
use crate::operators::rolling::KeySelector;
use crate::operators::shared::KeyedParts;
use crate::timers::{InternalTimerService, TimeDomain};
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
    pub(crate) timestamp: Option<Timestamp>,
    pub(crate) domain: Option<TimeDomain>,
    pub(crate) out: &'a mut dyn Output<O>,
    pub(crate) sides: &'a mut SideOutputs,
    pub(crate) timers: &'a mut InternalTimerService<K, ()>,
    pub(crate) error: Option<FjordError>,
}

impl<K: Key, O> KeyedProcessContext<'_, K, O> {
    /// The timestamp of the current record (or of the firing timer).
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
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
        let timestamp = self.timestamp;
        self.push(StreamRecord { value, timestamp });
    }

    /// Emits a record with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        self.push(StreamRecord::with_timestamp(value, timestamp));
    }

    fn push(&mut self, record: StreamRecord<O>) {
        if self.error.is_none() {
            if let Err(e) = self.out.emit(record) {
                self.error = Some(e);
            }
        }
    }

    /// Emits a record to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        if self.error.is_none() {
            if let Err(e) = self.sides.emit(
                tag.id(),
                StreamRecord {
                    value,
                    timestamp: self.timestamp,
                },
            ) {
                self.error = Some(e);
            }
        }
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
}

/// Keyed state and timers, per key group.
impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> CheckpointParticipant
    for KeyedProcessOp<K, I, O, F>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        Ok(OperatorState {
            keyed: self.parts().snapshot(|_| Ok(Vec::new()))?,
            operator: None,
        })
    }
}

impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> KeyedProcessOp<K, I, O, F> {
    fn fire(&mut self, domain: TimeDomain, limit: Timestamp) -> Result<()> {
        loop {
            let timer = match domain {
                TimeDomain::EventTime => self.timers.event.pop_due(limit),
                TimeDomain::ProcessingTime => self.timers.processing.pop_due(limit),
            };
            let Some(timer) = timer else { break };
            let state = self.ctx.keyed.as_ref().expect("keyed");
            state.set_current_key(&timer.key);
            let mut pctx = KeyedProcessContext {
                key: &timer.key,
                timestamp: (domain == TimeDomain::EventTime).then_some(timer.timestamp),
                domain: Some(domain),
                out: self.out.as_mut(),
                sides: &mut self.sides,
                timers: &mut self.timers,
                error: None,
            };
            let f = &mut self.f;
            guard(&self.ctx, || f.on_timer(timer.timestamp, &mut pctx))?;
            if let Some(e) = pctx.error {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> Lifecycle
    for KeyedProcessOp<K, I, O, F>
{
    fn open(&mut self) -> Result<()> {
        self.out.open()?;
        self.sides.open()?;
        let ctx = &self.ctx;
        let f = &mut self.f;
        guard(ctx, || f.open(ctx))
    }
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
}

impl<K: Key, I: 'static, O: 'static, F: KeyedProcessFunction<K, I, O>> Output<I>
    for KeyedProcessOp<K, I, O, F>
{
    fn emit(&mut self, record: StreamRecord<I>) -> Result<()> {
        let key = (self.key)(&record.value);
        self.ctx
            .keyed
            .as_ref()
            .expect("keyed")
            .set_current_key(&key);
        let mut pctx = KeyedProcessContext {
            key: &key,
            timestamp: record.timestamp,
            domain: None,
            out: self.out.as_mut(),
            sides: &mut self.sides,
            timers: &mut self.timers,
            error: None,
        };
        let f = &mut self.f;
        guard(&self.ctx, || f.process_element(record.value, &mut pctx))?;
        match pctx.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
