//! Triggers: when a window's function is evaluated and when its contents are purged
//! (Flink's `Trigger` and the built-in triggers).

use crate::error::{BoxError, Result as FjordResult};
use crate::state::keyed::Scoped;
use crate::state::{KeyedStateHandle, ReducingState, ReducingStateDescriptor};
use crate::types::{Data, Timestamp};
use crate::windows::window::Window;

/// What a trigger decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerResult {
    /// Do nothing.
    Continue,
    /// Evaluate the window function and keep the contents.
    Fire,
    /// Drop the contents without evaluating.
    Purge,
    /// Evaluate, then drop the contents.
    FireAndPurge,
}

impl TriggerResult {
    /// True for `Fire` and `FireAndPurge`.
    pub fn is_fire(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }
    /// True for `Purge` and `FireAndPurge`.
    pub fn is_purge(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// What the window operator offers a trigger (implemented per key by the operator).
pub(crate) trait TriggerServices<W> {
    fn watermark(&self) -> Timestamp;
    fn processing_time(&self) -> Timestamp;
    fn register_event_time(&mut self, window: &W, time: Timestamp);
    fn register_processing_time(&mut self, window: &W, time: Timestamp);
    fn delete_event_time(&mut self, window: &W, time: Timestamp);
    fn delete_processing_time(&mut self, window: &W, time: Timestamp);
    /// The keyed state, with the current key set.
    fn keyed_state(&mut self) -> &KeyedStateHandle;
}

/// What a trigger can do: read the times, register timers for its window, and keep state
/// per key and window.
pub struct TriggerContext<'a, W> {
    pub(crate) window: &'a W,
    pub(crate) services: &'a mut dyn TriggerServices<W>,
    pub(crate) merged: &'a [W],
}

impl<W: Window> TriggerContext<'_, W> {
    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.services.watermark()
    }
    /// The current processing time.
    pub fn current_processing_time(&self) -> Timestamp {
        self.services.processing_time()
    }
    /// Calls `on_event_time` for this window when the watermark reaches `time`.
    pub fn register_event_time_timer(&mut self, time: Timestamp) {
        self.services.register_event_time(self.window, time);
    }
    /// Calls `on_processing_time` for this window when processing time reaches `time`.
    pub fn register_processing_time_timer(&mut self, time: Timestamp) {
        self.services.register_processing_time(self.window, time);
    }
    /// Deletes an event-time timer of this window.
    pub fn delete_event_time_timer(&mut self, time: Timestamp) {
        self.services.delete_event_time(self.window, time);
    }
    /// Deletes a processing-time timer of this window.
    pub fn delete_processing_time_timer(&mut self, time: Timestamp) {
        self.services.delete_processing_time(self.window, time);
    }

    fn window_bytes(w: &W) -> Vec<u8> {
        let mut b = Vec::new();
        crate::state::keyed::encode(w, &mut b);
        b
    }

    /// A reducing state of the current key and this window (Flink's
    /// `getPartitionedState`).
    pub fn get_partitioned_state<V: Data>(
        &mut self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> FjordResult<ReducingState<V>> {
        let ns = Self::window_bytes(self.window);
        let state = self.services.keyed_state();
        Ok(ReducingState::new(state, descriptor)?.scoped(ns))
    }

    /// In `on_merge`: merges the state of the merged windows into this window (Flink's
    /// `mergePartitionedState`).
    pub fn merge_partitioned_state<V: Data>(
        &mut self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> FjordResult<()> {
        let sources: Vec<Vec<u8>> = self.merged.iter().map(Self::window_bytes).collect();
        let state = self.get_partitioned_state(descriptor)?;
        state.merge_namespaces(&sources);
        Ok(())
    }

    /// In `on_merge`: the windows that were merged into this one.
    pub fn merged_windows(&self) -> &[W] {
        self.merged
    }
}

/// Implements the named timer callbacks (`on_event_time`, `on_processing_time`) of a
/// trigger that does nothing on those timers.
macro_rules! continue_on_timers {
    ($($method:ident),+) => {
        $(
            fn $method(
                &mut self,
                _: Timestamp,
                _: &W,
                _: &mut TriggerContext<'_, W>,
            ) -> Result<TriggerResult, BoxError> {
                Ok(TriggerResult::Continue)
            }
        )+
    };
}

/// Decides when a window fires and purges (Flink's `Trigger`).
pub trait Trigger<T, W: Window>: Send + 'static {
    /// Called for every element added to a window.
    fn on_element(
        &mut self,
        element: &T,
        timestamp: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError>;
    /// An event-time timer of this window fired.
    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError>;
    /// A processing-time timer of this window fired.
    fn on_processing_time(
        &mut self,
        time: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError>;
    /// Whether the trigger supports merging windows.
    fn can_merge(&self) -> bool {
        false
    }
    /// Whether the only timer this trigger registers for a window is the event-time timer at
    /// the window's max timestamp, and it fires only there (what [`EventTimeTrigger`] does).
    /// The window operator then needs no de-duplication of its timers when it also allows no
    /// lateness, and once that timer is registered it does not call
    /// [`on_element`](Self::on_element) for the window's further elements, nor
    /// [`on_event_time`](Self::on_event_time) and [`clear`](Self::clear) when the window
    /// fires at its end. Leave the default (`false`) for your own triggers.
    fn fires_only_at_window_end(&self) -> bool {
        false
    }
    /// Windows were merged into `window` (`ctx.merged_windows()`).
    fn on_merge(&mut self, _window: &W, _ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        Err("this trigger does not support merging windows".into())
    }
    /// The window is removed: delete its timers and state.
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError>;
}

/// Fires once the watermark passes the window's end; later (allowed-late) elements fire the
/// window again right away (Flink's `EventTimeTrigger`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventTimeTrigger;

impl<T, W: Window> Trigger<T, W> for EventTimeTrigger {
    #[inline]
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        if window.max_timestamp() <= ctx.current_watermark() {
            // A late element within the allowed lateness: fire immediately.
            Ok(TriggerResult::Fire)
        } else {
            ctx.register_event_time_timer(window.max_timestamp());
            Ok(TriggerResult::Continue)
        }
    }
    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        Ok(if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        })
    }
    continue_on_timers!(on_processing_time);
    fn can_merge(&self) -> bool {
        true
    }
    fn fires_only_at_window_end(&self) -> bool {
        true
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        if window.max_timestamp() > ctx.current_watermark() {
            ctx.register_event_time_timer(window.max_timestamp());
        }
        Ok(())
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        ctx.delete_event_time_timer(window.max_timestamp());
        Ok(())
    }
}

/// Fires when processing time passes the window's end (Flink's `ProcessingTimeTrigger`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessingTimeTrigger;

impl<T, W: Window> Trigger<T, W> for ProcessingTimeTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        ctx.register_processing_time_timer(window.max_timestamp());
        Ok(TriggerResult::Continue)
    }
    continue_on_timers!(on_event_time);
    fn on_processing_time(
        &mut self,
        _: Timestamp,
        _: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        Ok(TriggerResult::Fire)
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        if window.max_timestamp() > ctx.current_processing_time() {
            ctx.register_processing_time_timer(window.max_timestamp());
        }
        Ok(())
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        ctx.delete_processing_time_timer(window.max_timestamp());
        Ok(())
    }
}

/// Fires every `n` elements of a window, keeping the contents (Flink's `CountTrigger`).
#[derive(Clone)]
pub struct CountTrigger {
    max: u64,
    count: ReducingStateDescriptor<u64>,
}

impl CountTrigger {
    /// Fires when a window holds `n` more elements than at the last firing.
    pub fn of(n: u64) -> Self {
        CountTrigger {
            max: n,
            count: ReducingStateDescriptor::new("count", |a: u64, b: u64| a + b),
        }
    }
}

impl<T, W: Window> Trigger<T, W> for CountTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        _: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        let count = ctx.get_partitioned_state(&self.count)?;
        count.add(1);
        if count.get().unwrap_or(0) >= self.max {
            count.clear();
            return Ok(TriggerResult::Fire);
        }
        Ok(TriggerResult::Continue)
    }
    continue_on_timers!(on_event_time, on_processing_time);
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, _: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        ctx.merge_partitioned_state(&self.count)?;
        Ok(())
    }
    fn clear(&mut self, _: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        ctx.get_partitioned_state(&self.count)?.clear();
        Ok(())
    }
}

/// Turns every `Fire` of the wrapped trigger into `FireAndPurge` (Flink's `PurgingTrigger`).
#[derive(Clone)]
pub struct PurgingTrigger<X> {
    inner: X,
}

impl<X> PurgingTrigger<X> {
    /// Wraps a trigger.
    pub fn of(inner: X) -> Self {
        PurgingTrigger { inner }
    }
}

fn purging(r: TriggerResult) -> TriggerResult {
    if r.is_fire() {
        TriggerResult::FireAndPurge
    } else {
        r
    }
}

impl<T: 'static, W: Window, X: Trigger<T, W>> Trigger<T, W> for PurgingTrigger<X> {
    fn on_element(
        &mut self,
        e: &T,
        ts: Timestamp,
        w: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        self.inner.on_element(e, ts, w, ctx).map(purging)
    }
    fn on_event_time(
        &mut self,
        t: Timestamp,
        w: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        self.inner.on_event_time(t, w, ctx).map(purging)
    }
    fn on_processing_time(
        &mut self,
        t: Timestamp,
        w: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        self.inner.on_processing_time(t, w, ctx).map(purging)
    }
    fn can_merge(&self) -> bool {
        self.inner.can_merge()
    }
    fn on_merge(&mut self, w: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        self.inner.on_merge(w, ctx)
    }
    fn clear(&mut self, w: &W, ctx: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        self.inner.clear(w, ctx)
    }
}

/// Never fires (the default of global windows).
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverTrigger;

impl<T, W: Window> Trigger<T, W> for NeverTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        _: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, BoxError> {
        Ok(TriggerResult::Continue)
    }
    continue_on_timers!(on_event_time, on_processing_time);
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, _: &W, _: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        Ok(())
    }
    fn clear(&mut self, _: &W, _: &mut TriggerContext<'_, W>) -> Result<(), BoxError> {
        Ok(())
    }
}
