//! The window operator (Flink's `WindowOperator` and `EvictingWindowOperator`): assigns
//! elements to windows, asks the trigger, evaluates the window function, handles allowed
//! lateness, late data and window merging.

#![allow(clippy::collapsible_if, clippy::too_many_arguments)]

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::Result;
use crate::keygroup::KeyGroupRange;
use crate::metrics::Counter;
use crate::operators::key_selector::KeySelector;
use crate::operators::output::{
    Lifecycle, Output, SideOutputs, close_after, forward_to_outputs, guard,
};
use crate::operators::shared::KeyedParts;
use crate::state::KeyedStateHandle;
use crate::state::internal::InternalKeyedValue;
use crate::timers::{InternalTimerService, TimeDomain, Timer};
use crate::types::{Data, Key, MAX_WATERMARK, MIN_WATERMARK, StreamRecord, Timestamp};
use crate::windows::assigners::WindowAssigner;
use crate::windows::functions::{WindowContext, WindowLogic};
use crate::windows::triggers::{Trigger, TriggerContext, TriggerResult, TriggerServices};
use crate::windows::window::Window;
use smallvec::SmallVec;
use std::marker::PhantomData;
use std::sync::Arc;

/// Flink's metric name for elements dropped because they were too late.
pub const LATE_ELEMENTS_DROPPED: &str = "numLateRecordsDropped";

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Slot<W, A> {
    window: W,
    acc: Option<A>,
    /// The last event-time timer registered for this window (skips repeated registrations).
    timer: Timestamp,
}

/// A key's windows and their contents. Most keys have one window at a time (tumbling
/// windows, sessions): it is kept inline, in the state value itself, so a record costs one
/// memory access less than with a separately allocated list (the window benchmark with
/// 10,000 keys spends its time waiting for such accesses). Encoded as a list, like the `Vec`
/// it replaced, so savepoints are unchanged.
pub(crate) type Slots<W, A> = smallvec::SmallVec<[Slot<W, A>; 1]>;

/// Everything a window operator needs that the API decides.
pub(crate) struct WindowSpec<T, W> {
    pub(crate) assigner: Arc<dyn WindowAssigner<T, W>>,
    pub(crate) trigger: Box<dyn Trigger<T, W>>,
    pub(crate) lateness: i64,
    pub(crate) late_tag: Option<String>,
}

pub(crate) struct WindowOperator<T, K, W: Window, O, L: WindowLogic<T, K, W, O>> {
    ctx: RuntimeContext,
    key_sel: KeySelector<T, K>,
    assigner: Arc<dyn WindowAssigner<T, W>>,
    trigger: Box<dyn Trigger<T, W>>,
    logic: L,
    lateness: i64,
    late_tag: Option<String>,
    dropped: Counter,
    event_time: bool,
    merging: bool,
    /// Each window has one timer, at its end, which fires and removes it (see
    /// [`fire_at_end`](Self::fire_at_end)); when windows do not merge, elements may also go
    /// straight into their window's accumulator, in place (see
    /// [`add_in_place`](Self::add_in_place)).
    owner_tracked: bool,
    /// The windows of each key with their contents, in the keyed state backend
    /// (`_fjord.windows`).
    windows: InternalKeyedValue<K, Slots<W, L::Acc>>,
    timers: InternalTimerService<K, W>,
    buf: Vec<W>,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
    _t: PhantomData<fn(T)>,
}

struct Services<'a, K, W> {
    key: &'a K,
    timers: &'a mut InternalTimerService<K, W>,
    state: &'a KeyedStateHandle,
    key_set: bool,
    cache: Option<&'a mut Timestamp>,
}

impl<K: Key, W: Window> TriggerServices<W> for Services<'_, K, W> {
    fn watermark(&self) -> Timestamp {
        self.timers.watermark
    }
    fn processing_time(&self) -> Timestamp {
        self.timers.current_processing_time()
    }
    #[inline]
    fn register_event_time(&mut self, window: &W, time: Timestamp) {
        if let Some(c) = self.cache.as_deref_mut() {
            if *c == time {
                return;
            }
            *c = time;
        }
        self.timers.register_event_time(self.key, window, time);
    }
    fn register_processing_time(&mut self, window: &W, time: Timestamp) {
        self.timers.register_processing_time(self.key, window, time);
    }
    fn delete_event_time(&mut self, window: &W, time: Timestamp) {
        if let Some(c) = self.cache.as_deref_mut() {
            if *c == time {
                *c = MIN_WATERMARK;
            }
        }
        self.timers.event.delete(self.key, window, time);
    }
    fn delete_processing_time(&mut self, window: &W, time: Timestamp) {
        self.timers.processing.delete(self.key, window, time);
    }
    fn keyed_state(&mut self) -> &KeyedStateHandle {
        if !self.key_set {
            self.state.set_current_key(self.key);
            self.key_set = true;
        }
        self.state
    }
}

impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>>
    WindowOperator<T, K, W, O, L>
{
    pub(crate) fn new(
        ctx: &RuntimeContext,
        key_sel: KeySelector<T, K>,
        spec: WindowSpec<T, W>,
        logic: L,
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
    ) -> Result<Self> {
        let ctx = ctx.with_unregistered_keyed_state()?;
        let range =
            KeyGroupRange::for_subtask(ctx.max_parallelism, ctx.parallelism, ctx.subtask_index);
        // Without lateness, an event-time window whose trigger fires only at the window's end
        // has one timer, registered once (its slot caches it) and fired once (the window is
        // removed then and later elements for it are late): its timers need no
        // de-duplication, and a timer without its window is ignored. That holds for merging
        // windows (sessions) too: the timer of a window merged away finds no window when it
        // fires, and a window equal to it cannot come back before then (an element that
        // would create it is merged into the window that absorbed it, or is late).
        let (event_time, merging) = (spec.assigner.is_event_time(), spec.assigner.is_merging());
        let owner_tracked =
            event_time && spec.lateness == 0 && spec.trigger.fires_only_at_window_end();
        let mut op = WindowOperator {
            event_time,
            merging,
            owner_tracked,
            dropped: ctx.counter(LATE_ELEMENTS_DROPPED),
            timers: if owner_tracked {
                InternalTimerService::owner_tracked(&ctx)
            } else {
                InternalTimerService::new(&ctx)
            },
            windows: InternalKeyedValue::new(ctx.keyed.as_ref().expect("just created"), "windows")?,
            ctx,
            key_sel,
            assigner: spec.assigner,
            trigger: spec.trigger,
            logic,
            lateness: spec.lateness,
            late_tag: spec.late_tag,
            buf: Vec::new(),
            out,
            sides,
            _t: PhantomData,
        };
        if let Some(restored) = op.ctx.restored_state()? {
            let WindowOperator {
                ctx,
                timers,
                windows,
                ..
            } = &mut op;
            KeyedParts {
                range,
                max_parallelism: ctx.max_parallelism,
                backend: ctx.keyed.as_ref(),
                timers,
            }
            .restore(&restored, |kg, bytes, rehash| {
                windows.restore_legacy_group(range, kg, bytes, rehash)
            })?;
        }
        Ok(op)
    }

    #[inline]
    fn cleanup_time(&self, w: &W) -> Timestamp {
        if self.event_time {
            w.max_timestamp().saturating_add(self.lateness)
        } else {
            w.max_timestamp()
        }
    }

    #[inline]
    fn is_window_late(&self, w: &W) -> bool {
        self.event_time && self.cleanup_time(w) <= self.timers.watermark
    }

    fn state(&self) -> &KeyedStateHandle {
        self.ctx
            .keyed
            .as_ref()
            .expect("window operators have keyed state")
    }

    fn emit_window(
        ctx: &RuntimeContext,
        logic: &mut L,
        out: &mut dyn Output<O>,
        sides: &mut SideOutputs,
        watermark: Timestamp,
        key: &K,
        window: &W,
        acc: &mut L::Acc,
    ) -> Result<()> {
        if let Some(keyed) = &ctx.keyed {
            // Window and global state of the process function belong to this key.
            keyed.set_current_key(key);
        }
        let mut wctx = WindowContext::new(window, watermark, ctx, out, sides, ctx.keyed.as_ref());
        logic.emit(ctx, key, acc, &mut wctx)
    }

    /// Registers the timer that removes the window once it can no longer receive elements.
    fn register_cleanup(&mut self, key: &K, window: &W, cache: &mut Timestamp) {
        let t = self.cleanup_time(window);
        if t == MAX_WATERMARK {
            return;
        }
        if self.event_time {
            if *cache != t {
                self.timers.register_event_time(key, window, t);
                if *cache == MIN_WATERMARK {
                    *cache = t;
                }
            }
        } else {
            self.timers.register_processing_time(key, window, t);
        }
    }

    fn late(&mut self, record: StreamRecord<T>) -> Result<()> {
        match &self.late_tag {
            Some(tag) => self.sides.emit(tag, record),
            None => {
                self.dropped.inc();
                Ok(())
            }
        }
    }

    /// Adds an element to the slot at `idx` of the key's windows, then runs the trigger.
    fn add_to_slot(
        &mut self,
        key: &K,
        slots: &mut [Slot<W, L::Acc>],
        idx: usize,
        record: StreamRecord<T>,
        ts: Timestamp,
    ) -> Result<()> {
        let Self {
            ctx,
            timers,
            trigger,
            logic,
            out,
            sides,
            ..
        } = self;
        let state = ctx.keyed.as_ref().expect("keyed");
        let slot = &mut slots[idx];
        let window = slot.window.clone();
        let result = {
            let mut services = Services {
                key,
                timers,
                state,
                key_set: false,
                cache: Some(&mut slot.timer),
            };
            let mut tctx = TriggerContext {
                window: &window,
                services: &mut services,
                merged: &[],
            };
            guard(ctx, || {
                trigger.on_element(&record.value, ts, &window, &mut tctx)
            })?
        };
        slot.acc = Some(logic.add(ctx, slot.acc.take(), record)?);
        if result.is_fire() {
            let acc = slot.acc.as_mut().expect("just added");
            Self::emit_window(
                ctx,
                logic,
                out.as_mut(),
                sides,
                timers.watermark,
                key,
                &window,
                acc,
            )?;
        }
        if result.is_purge() {
            slot.acc = None;
        }
        let mut cache = slot.timer;
        self.register_cleanup(key, &window, &mut cache);
        slots[idx].timer = cache;
        Ok(())
    }

    /// Removes the window at `idx` from the key's windows, back inline when one is left.
    fn remove_slot(slots: &mut Slots<W, L::Acc>, idx: usize) -> Slot<W, L::Acc> {
        let slot = slots.swap_remove(idx);
        if slots.spilled() && slots.len() <= slots.inline_size() {
            // Back inline: the key's other window went.
            slots.shrink_to_fit();
        }
        slot
    }

    fn slot_index(slots: &mut Slots<W, L::Acc>, window: &W) -> usize {
        match slots.iter().position(|s| s.window == *window) {
            Some(i) => i,
            None => {
                slots.push(Slot {
                    window: window.clone(),
                    acc: None,
                    timer: MIN_WATERMARK,
                });
                slots.len() - 1
            }
        }
    }

    fn process(&mut self, record: StreamRecord<T>) -> Result<()> {
        let key = (self.key_sel)(&record.value).into_owned();
        let ts = if self.event_time {
            self.ctx.event_time(record.timestamp)?
        } else {
            self.ctx.current_processing_time()
        };
        let mut windows = std::mem::take(&mut self.buf);
        windows.clear();
        self.assigner
            .assign_windows(&record.value, ts, &mut windows);
        let mut record = Some(record);
        if self.owner_tracked
            && !self.merging
            && let [window] = windows.as_slice()
        {
            record = self.add_in_place(&key, window, record)?;
            if record.is_none() {
                self.buf = windows;
                return Ok(());
            }
        }
        let mut skipped = true;
        let n = windows.len();
        let mut taken = self.windows.take(&key);
        for (i, w) in windows.iter().enumerate() {
            let slots = &mut taken.value;
            let idx = if self.merging {
                match self.merge_into(&key, slots, w)? {
                    Some(idx) => idx,
                    None => continue,
                }
            } else {
                if self.is_window_late(w) {
                    continue;
                }
                Self::slot_index(slots, w)
            };
            skipped = false;
            let rec = if i + 1 == n {
                record.take().expect("record")
            } else {
                record.clone().expect("record")
            };
            self.add_to_slot(&key, slots, idx, rec, ts)?;
        }
        let empty = taken.value.is_empty();
        self.windows.store(&key, taken, empty);
        self.buf = windows;
        if skipped && self.event_time && ts.saturating_add(self.lateness) <= self.timers.watermark {
            if let Some(r) = record {
                return self.late(r);
            }
        }
        Ok(())
    }

    /// The path of most elements of a window that fires only at its end (tumbling event-time
    /// windows with the default trigger and no lateness): when the key already has the
    /// element's window and its timer is registered, the trigger has nothing left to do for
    /// the element (it would register the same timer and continue), so the element goes
    /// straight into the accumulator, changed in place in the backend. Hands the record back
    /// when that is not the case (a new window, a late one), for the general path.
    fn add_in_place(
        &mut self,
        key: &K,
        window: &W,
        mut record: Option<StreamRecord<T>>,
    ) -> Result<Option<StreamRecord<T>>> {
        if self.is_window_late(window) {
            return Ok(record);
        }
        let end = window.max_timestamp();
        let Self {
            ctx,
            logic,
            windows,
            ..
        } = self;
        // Adding runs the user's reduce or aggregate function, which has no access to keyed
        // state, so the value may stay borrowed meanwhile.
        windows
            .update(key, |slots| {
                let slot = slots
                    .iter_mut()
                    .find(|s| s.timer == end && s.window == *window)?;
                let r = record.take().expect("the record is added once");
                Some(
                    logic
                        .add(ctx, slot.acc.take(), r)
                        .map(|acc| slot.acc = Some(acc)),
                )
            })
            .flatten()
            .transpose()?;
        Ok(record)
    }

    /// Merging assigners: merges `window` with the key's windows it intersects and returns the
    /// slot of the result, or `None` if the result is late.
    ///
    /// As Flink's `MergingWindowSet`: the contents of the merged windows are merged into the
    /// result, the trigger's `on_merge` runs for the result and its `clear` for each window
    /// merged away (the element's own window included when it is not the result), and their
    /// cleanup timers are deleted.
    fn merge_into(
        &mut self,
        key: &K,
        slots: &mut Slots<W, L::Acc>,
        window: &W,
    ) -> Result<Option<usize>> {
        let (event_time, lateness, watermark) =
            (self.event_time, self.lateness, self.timers.watermark);
        // A key's windows are disjoint; an element meets one of them at most, mostly.
        let mut overlapping: SmallVec<[usize; 2]> = SmallVec::new();
        let mut merged = window.clone();
        for (i, s) in slots.iter().enumerate() {
            if s.window.intersects(window) {
                overlapping.push(i);
                merged = merged.cover(&s.window);
            }
        }
        if event_time && merged.max_timestamp().saturating_add(lateness) <= watermark {
            return Ok(None);
        }
        if let [i] = overlapping[..]
            && slots[i].window == merged
        {
            return Ok(Some(i));
        }
        if overlapping.is_empty() {
            slots.push(Slot {
                window: merged,
                acc: None,
                timer: MIN_WATERMARK,
            });
            return Ok(Some(slots.len() - 1));
        }
        let mut removed: SmallVec<[Slot<W, L::Acc>; 2]> = SmallVec::new();
        for &i in overlapping.iter().rev() {
            removed.push(slots.swap_remove(i));
        }
        removed.sort_by_key(|s| s.window.max_timestamp());
        let mut acc: Option<L::Acc> = None;
        let mut merged_windows: SmallVec<[W; 3]> = SmallVec::new();
        for s in removed {
            if let Some(a) = s.acc {
                acc = Some(match acc {
                    Some(prev) => self.logic.merge(&self.ctx, prev, a)?,
                    None => a,
                });
            }
            merged_windows.push(s.window);
        }
        if !merged_windows.contains(window) {
            merged_windows.push(window.clone());
        }
        merged_windows.retain(|w| *w != merged);
        let mut slot = Slot {
            window: merged,
            acc,
            timer: MIN_WATERMARK,
        };
        let Self {
            ctx,
            timers,
            trigger,
            ..
        } = self;
        let state = ctx.keyed.as_ref().expect("keyed");
        {
            // The result's timer is cached in its slot, so the element's trigger call that
            // follows does not register it again.
            let mut services = Services {
                key,
                timers,
                state,
                key_set: false,
                cache: Some(&mut slot.timer),
            };
            let mut tctx = TriggerContext {
                window: &slot.window,
                services: &mut services,
                merged: &merged_windows,
            };
            guard(ctx, || trigger.on_merge(&slot.window, &mut tctx))?;
        }
        for m in &merged_windows {
            let mut services = Services {
                key,
                timers,
                state,
                key_set: false,
                cache: None,
            };
            let mut tctx = TriggerContext {
                window: m,
                services: &mut services,
                merged: &[],
            };
            guard(ctx, || trigger.clear(m, &mut tctx))?;
        }
        for m in &merged_windows {
            let t = self.cleanup_time(m);
            if self.event_time {
                self.timers.event.delete(key, m, t);
            } else {
                self.timers.processing.delete(key, m, t);
            }
        }
        slots.push(slot);
        Ok(Some(slots.len() - 1))
    }

    /// The firing of a window whose trigger fires only at the window's end, without lateness
    /// (`owner_tracked`): the timer at the window's end fires the window and removes it, at
    /// one lookup of the key, and any other timer (a window merged away, a second
    /// registration) finds nothing. What the trigger's `on_event_time` and `clear` would do
    /// (fire at the end, delete the timer that just fired) is done here without calling them.
    fn fire_at_end(&mut self, timer: Timer<K, W>) -> Result<()> {
        let Timer {
            timestamp: t,
            key,
            namespace: window,
        } = timer;
        if t != window.max_timestamp() {
            return Ok(());
        }
        let mut acc = None;
        self.windows.change(&key, |slots| {
            if let Some(i) = slots.iter().position(|s| s.window == window) {
                acc = Self::remove_slot(slots, i).acc;
            }
            slots.is_empty()
        });
        let Some(mut acc) = acc else {
            return Ok(());
        };
        let Self {
            ctx,
            logic,
            out,
            sides,
            timers,
            ..
        } = self;
        Self::emit_window(
            ctx,
            logic,
            out.as_mut(),
            sides,
            timers.watermark,
            &key,
            &window,
            &mut acc,
        )
    }

    fn on_timer(&mut self, timer: Timer<K, W>, domain: TimeDomain) -> Result<()> {
        if self.owner_tracked && domain == TimeDomain::EventTime {
            return self.fire_at_end(timer);
        }
        let Timer {
            timestamp: t,
            key,
            namespace: window,
        } = timer;
        let cleanup = (self.event_time == (domain == TimeDomain::EventTime))
            && t == self.cleanup_time(&window);
        let Self {
            ctx,
            windows,
            timers,
            trigger,
            logic,
            out,
            sides,
            ..
        } = self;
        let state = ctx.keyed.as_ref().expect("keyed");
        let mut taken = windows.take(&key);
        let slots = &mut taken.value;
        let Some(idx) = slots.iter().position(|s| s.window == window) else {
            let empty = slots.is_empty();
            windows.store(&key, taken, empty);
            return Ok(());
        };
        let slot = &mut slots[idx];
        if slot.timer == t {
            slot.timer = MIN_WATERMARK;
        }
        if slot.acc.is_some() {
            let result = {
                let mut services = Services {
                    key: &key,
                    timers,
                    state,
                    key_set: false,
                    cache: Some(&mut slot.timer),
                };
                let mut tctx = TriggerContext {
                    window: &window,
                    services: &mut services,
                    merged: &[],
                };
                match domain {
                    TimeDomain::EventTime => {
                        guard(ctx, || trigger.on_event_time(t, &window, &mut tctx))?
                    }
                    TimeDomain::ProcessingTime => {
                        guard(ctx, || trigger.on_processing_time(t, &window, &mut tctx))?
                    }
                }
            };
            if result.is_fire() {
                let acc = slot.acc.as_mut().expect("present");
                Self::emit_window(
                    ctx,
                    logic,
                    out.as_mut(),
                    sides,
                    timers.watermark,
                    &key,
                    &window,
                    acc,
                )?;
            }
            if result.is_purge() {
                slot.acc = None;
            }
        }
        if cleanup {
            {
                let mut services = Services {
                    key: &key,
                    timers,
                    state,
                    key_set: false,
                    cache: None,
                };
                let mut tctx = TriggerContext {
                    window: &window,
                    services: &mut services,
                    merged: &[],
                };
                guard(ctx, || trigger.clear(&window, &mut tctx))?;
            }
            Self::remove_slot(slots, idx);
        }
        let empty = taken.value.is_empty();
        windows.store(&key, taken, empty);
        Ok(())
    }
}

impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>> Lifecycle
    for WindowOperator<T, K, W, O, L>
{
    fn open(&mut self) -> Result<()> {
        self.out.open()?;
        self.sides.open()?;
        // Not a `Result`: fails fast (panics) here when the keyed state is missing.
        let _ = self.state();
        self.logic.open(&self.ctx)
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.timers.watermark = watermark;
        {
            let state = self.windows.handle().clone();
            let _held = state.hold();
            while let Some(timer) = self.timers.event.pop_due(watermark) {
                self.on_timer(timer, TimeDomain::EventTime)?;
            }
        }
        self.out.emit_watermark(watermark)?;
        self.sides.emit_watermark(watermark)
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        while let Some(timer) = self.timers.processing.pop_due(now) {
            self.on_timer(timer, TimeDomain::ProcessingTime)?;
        }
        self.timers.reschedule_processing();
        self.out.advance_processing_time(now)?;
        self.sides.advance_processing_time(now)
    }
    forward_to_outputs!();
    crate::operators::output::forward_checkpoint_notice!();
    fn close(&mut self) -> Result<()> {
        let own = self.logic.close(&self.ctx);
        close_after(own, self.out.as_mut(), &mut self.sides)
    }
}

impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>> Output<T>
    for WindowOperator<T, K, W, O, L>
{
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        self.process(record)
    }
    fn emit_batch(&mut self, batch: Vec<StreamRecord<T>>) -> Result<()> {
        let state = self.windows.handle().clone();
        state.for_each_held(batch, |record| self.process(record))
    }
}

/// Window contents, timers and the keyed state of triggers and process functions, per key
/// group.
impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>> CheckpointParticipant
    for WindowOperator<T, K, W, O, L>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        let Self { ctx, timers, .. } = self;
        let parts = KeyedParts::of(ctx, timers);
        Ok(OperatorState {
            keyed: parts.snapshot(|_| Ok(Vec::new()))?,
            operator: None,
            ..OperatorState::default()
        })
    }
}

// Keeps TriggerResult in the public docs of this module's users.
#[allow(dead_code)]
const _: Option<TriggerResult> = None;
