//! Sliding event-time windows computed from panes.
//!
//! A sliding window of `size` every `slide` is the union of non-overlapping panes of length
//! `gcd(size, slide)`. Each element is added to exactly one pane's accumulator, and each key
//! has one pending timer (the end of its next window, kept in the key's state), so the cost per
//! element is constant whatever `size / slide` is; a firing merges the `size / pane` pane
//! accumulators of its window and registers the key's next window end. The timers are
//! owner-tracked (no de-duplication set; a timer that is not the key's pending one is
//! ignored). Used for `reduce`/`aggregate` with the default trigger, no evictor and no allowed
//! lateness; everything else goes through the general window operator, with the same
//! results.

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{FjordError, Result};
use crate::keygroup::KeyGroupRange;
use crate::metrics::Counter;
use crate::operators::key_selector::KeySelector;
use crate::operators::output::{Lifecycle, Output, SideOutputs, close_after, forward_to_outputs};
use crate::operators::shared::KeyedParts;
use crate::state::internal::InternalKeyedValue;
use crate::timers::InternalTimerService;
use crate::types::{Data, Key, MIN_WATERMARK, StreamRecord, Timestamp};
use crate::windows::functions::{WindowContext, WindowLogic};
use crate::windows::operator::LATE_ELEMENTS_DROPPED;
use crate::windows::window::{TimeWindow, Window};
use std::any::Any;
use std::marker::PhantomData;

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct KeyPanes<A> {
    /// (pane start, accumulator), in ascending start order.
    panes: Vec<(Timestamp, Option<A>)>,
    /// The key's pending timer (the end of its next window to fire, minus one); a timer of
    /// the key at any other time is ignored when it fires.
    timer: Timestamp,
}

impl<A> Default for KeyPanes<A> {
    fn default() -> Self {
        KeyPanes {
            panes: Vec::new(),
            timer: MIN_WATERMARK,
        }
    }
}

pub(crate) struct PaneOperator<T, K, W: Window, O, L: WindowLogic<T, K, W, O>> {
    ctx: RuntimeContext,
    key_sel: KeySelector<T, K>,
    size: i64,
    slide: i64,
    offset: i64,
    pane: i64,
    late_tag: Option<String>,
    dropped: Counter,
    /// Per key, in the keyed state backend (`_fjord.panes`).
    state: InternalKeyedValue<K, KeyPanes<L::Acc>>,
    timers: InternalTimerService<K, ()>,
    logic: L,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
    _t: PhantomData<fn(T, W)>,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The end of the earliest window of `size` every `slide` (from `offset`) containing `x`.
fn first_end(x: Timestamp, size: i64, slide: i64, offset: i64) -> Timestamp {
    let last_start = TimeWindow::window_start_with_offset(x, offset, slide);
    let k = (last_start - (x - size) - 1) / slide;
    last_start - k * slide + size
}

impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>>
    PaneOperator<T, K, W, O, L>
{
    pub(crate) fn new(
        ctx: &RuntimeContext,
        key_sel: KeySelector<T, K>,
        (size, slide, offset): (i64, i64, i64),
        late_tag: Option<String>,
        logic: L,
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
    ) -> Result<Self> {
        let ctx = &ctx.with_unregistered_keyed_state()?;
        let range =
            KeyGroupRange::for_subtask(ctx.max_parallelism, ctx.parallelism, ctx.subtask_index);
        let handle = ctx.keyed.clone().expect("just created");
        let mut op = PaneOperator {
            ctx: ctx.clone(),
            key_sel,
            size,
            slide,
            offset,
            pane: gcd(size, slide),
            late_tag,
            dropped: ctx.counter(LATE_ELEMENTS_DROPPED),
            state: InternalKeyedValue::new(&handle, "panes")?,
            timers: InternalTimerService::owner_tracked(ctx),
            logic,
            out,
            sides,
            _t: PhantomData,
        };
        if let Some(restored) = op.ctx.restored_state()? {
            let PaneOperator {
                ctx, timers, state, ..
            } = &mut op;
            KeyedParts {
                range,
                max_parallelism: ctx.max_parallelism,
                backend: Some(&handle),
                timers,
            }
            .restore(&restored, |kg, bytes, rehash| {
                state.restore_legacy_group(range, kg, bytes, rehash)
            })?;
        }
        Ok(op)
    }

    /// The end of the earliest window containing `x` that has not fired yet.
    fn next_end(&self, x: Timestamp, watermark: Timestamp) -> Timestamp {
        let mut e = first_end(x, self.size, self.slide, self.offset);
        if e - 1 <= watermark {
            let behind = watermark + 1 - (e - 1);
            e += (behind + self.slide - 1) / self.slide * self.slide;
        }
        e
    }

    fn window(start: Timestamp, end: Timestamp) -> Result<W> {
        // Through an `Option` on the stack: no allocation per firing.
        let mut tw = Some(TimeWindow::new(start, end));
        (&mut tw as &mut dyn Any)
            .downcast_mut::<Option<W>>()
            .and_then(Option::take)
            .ok_or_else(|| FjordError::Internal("pane windows must be time windows".into()))
    }

    /// The accumulators of the panes that start in `starts`, merged (`None` when none has
    /// one).
    fn merge_panes(
        ctx: &RuntimeContext,
        logic: &mut L,
        panes: &[(Timestamp, Option<L::Acc>)],
        starts: std::ops::Range<Timestamp>,
    ) -> Result<Option<L::Acc>> {
        let mut acc: Option<L::Acc> = None;
        for (ps, a) in panes {
            let Some(a) = a else { continue };
            if starts.contains(ps) {
                acc = Some(match acc {
                    None => a.clone(),
                    Some(prev) => logic.merge(ctx, prev, a.clone())?,
                });
            }
        }
        Ok(acc)
    }

    /// Fires the key's window ending at `t + 1` when `t` is its pending timer: merges the
    /// window's panes, drops the panes no later window needs and moves the pending timer to
    /// the next window's end, changing the key's panes in place at one lookup (merging runs
    /// the user's reduce or aggregate function, which has no access to keyed state); the
    /// window is emitted and the next timer registered after.
    fn fire(&mut self, key: K, t: Timestamp) -> Result<()> {
        let (end, start) = (t + 1, t + 1 - self.size);
        let (slide, offset, size) = (self.slide, self.offset, self.size);
        let Self {
            ctx,
            state,
            logic,
            out,
            sides,
            timers,
            ..
        } = self;
        let mut fired: Result<Option<L::Acc>> = Ok(None);
        let mut next_timer = None;
        state.change(&key, |entry| {
            if entry.panes.is_empty() {
                return true;
            }
            if entry.timer != t {
                // Not the key's pending timer: one registered before an earlier one replaced
                // it, or a second registration of a timer that fired already. The pending
                // timer's firing goes on to every later window of the key.
                return false;
            }
            fired = Self::merge_panes(ctx, logic, &entry.panes, start..end);
            if fired.is_err() {
                return false;
            }
            let keep_from = start + slide;
            entry.panes.retain(|(ps, _)| *ps >= keep_from);
            match entry.panes.first().map(|(ps, _)| *ps) {
                None => true,
                Some(min_ps) => {
                    let first = first_end(min_ps, size, slide, offset);
                    let next = first.max(end + slide) - 1;
                    entry.timer = next;
                    next_timer = Some(next);
                    false
                }
            }
        });
        if let Some(mut acc) = fired? {
            let window = Self::window(start, end)?;
            let mut wctx =
                WindowContext::new(&window, timers.watermark, ctx, out.as_mut(), sides, None);
            logic.emit(ctx, &key, &mut acc, &mut wctx)?;
        }
        if let Some(next) = next_timer {
            timers.register_event_time(&key, &(), next);
        }
        Ok(())
    }
}

impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>> Lifecycle
    for PaneOperator<T, K, W, O, L>
{
    fn open(&mut self) -> Result<()> {
        self.out.open()?;
        self.sides.open()?;
        self.logic.open(&self.ctx)
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.timers.watermark = watermark;
        {
            let state = self.state.handle().clone();
            let _held = state.hold();
            while let Some(timer) = self.timers.event.pop_due(watermark) {
                self.fire(timer.key, timer.timestamp)?;
            }
        }
        self.out.emit_watermark(watermark)?;
        self.sides.emit_watermark(watermark)
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
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
    for PaneOperator<T, K, W, O, L>
{
    fn emit_batch(&mut self, batch: Vec<StreamRecord<T>>) -> Result<()> {
        let state = self.state.handle().clone();
        state.for_each_held(batch, |record| self.emit(record))
    }
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let ts = self.ctx.event_time(record.timestamp)?;
        let watermark = self.timers.watermark;
        let last_end =
            TimeWindow::window_start_with_offset(ts, self.offset, self.slide) + self.size;
        if last_end - 1 <= watermark {
            // Every window of the element already fired (no allowed lateness here).
            return match &self.late_tag {
                Some(tag) => self.sides.emit(tag, record),
                None => {
                    self.dropped.inc();
                    Ok(())
                }
            };
        }
        let key = (self.key_sel)(&record.value).into_owned();
        let pane = TimeWindow::window_start_with_offset(ts, self.offset % self.pane, self.pane);
        let next = self.next_end(ts, watermark) - 1;
        let Self {
            ctx,
            logic,
            timers,
            state,
            ..
        } = self;
        let mut record = Some(record);
        // Returns whether the key's timer moved earlier: registered after the state is no
        // longer borrowed (the RocksDB backend keeps timers in the same backend).
        let add = |entry: &mut KeyPanes<L::Acc>| -> Result<bool> {
            let record = record.take().expect("the record is added once");
            let pos = entry.panes.iter().rposition(|(ps, _)| *ps <= pane);
            match pos {
                Some(i) if entry.panes[i].0 == pane => {
                    let acc = &mut entry.panes[i].1;
                    let taken = acc.take();
                    *acc = Some(logic.add(ctx, taken, record)?);
                }
                _ => {
                    let acc = logic.add(ctx, None, record)?;
                    let at = pos.map_or(0, |i| i + 1);
                    entry.panes.insert(at, (pane, Some(acc)));
                }
            }
            // The key's pending timer is its earliest window end; firing it registers the
            // next (see `fire`), so only an element that brings an earlier end registers one.
            let earlier = entry.timer == MIN_WATERMARK || next < entry.timer;
            if earlier {
                entry.timer = next;
            }
            Ok(earlier)
        };
        // The key's panes are changed in place (adding runs the user's reduce or aggregate
        // function, which has no access to keyed state).
        if state.upsert(&key, add)? {
            timers.register_event_time(&key, &(), next);
        }
        Ok(())
    }
}

/// Pane accumulators and timers, per key group.
impl<T: Data, K: Key, W: Window, O: 'static, L: WindowLogic<T, K, W, O>> CheckpointParticipant
    for PaneOperator<T, K, W, O, L>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        let Self {
            ctx, timers, state, ..
        } = self;
        let parts = KeyedParts {
            range: ctx.key_group_range(),
            max_parallelism: ctx.max_parallelism,
            backend: Some(state.handle()),
            timers,
        };
        Ok(OperatorState {
            keyed: parts.snapshot(|_| Ok(Vec::new()))?,
            operator: None,
            ..OperatorState::default()
        })
    }
}
