//! Interval join of two keyed streams (Flink's `KeyedStream.intervalJoin`).
//!
//! Both sides' buffered elements of a key are one value in the operator's keyed state
//! backend (`_fjord.interval_join`, see [`InternalKeyedValue`]) and their cleanup timers
//! are in the backend's timer queues, as Flink keeps the join's `MapState`s and timers in
//! its backend: with RocksDB no buffer stays on the heap, and incremental checkpoints carry
//! them.

use crate::api::Template;
use crate::api::connected::ConnectedStreams;
use crate::api::datastream::SingleOutputStreamOperator;
use crate::api::keyed::KeyedStream;
use crate::api::side_output::OutputTag;
use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::functions::lifecycle_hooks;
use crate::joins::interval_buffer::TimedBuffer;
use crate::keygroup::KeyGroupRange;
use crate::operators::key_selector::KeySelector;
use crate::operators::output::{
    Emitter, Lifecycle, Output, SideOutputs, guard, process_lifecycle_common,
};
use crate::operators::shared::{KeyedParts, Shared};
use crate::runtime::task::TwoInputOperator;
use crate::state::internal::InternalKeyedValue;
use crate::timers::InternalTimerService;
use crate::types::{Data, Key, MIN_WATERMARK, StreamRecord, Timestamp};
use std::time::Duration;

/// What a [`ProcessJoinFunction`] sees for a matching pair (Flink's
/// `ProcessJoinFunction.Context`).
pub struct IntervalJoinContext<'a, O> {
    left: Timestamp,
    right: Timestamp,
    emit: Emitter<'a, O>,
}

impl<O> IntervalJoinContext<'_, O> {
    /// The left element's timestamp.
    pub fn left_timestamp(&self) -> Timestamp {
        self.left
    }
    /// The right element's timestamp.
    pub fn right_timestamp(&self) -> Timestamp {
        self.right
    }
    /// The timestamp of the pair's results: the larger of the two elements' timestamps
    /// (Flink's `getTimestamp`).
    pub fn timestamp(&self) -> Timestamp {
        self.left.max(self.right)
    }
    /// Emits a result with the pair's [`timestamp`](Self::timestamp).
    pub fn collect(&mut self, value: O) {
        self.emit.collect(value);
    }
    /// Emits a record to the side output `tag`, with the pair's timestamp (Flink's
    /// `output(OutputTag, X)`); dropped if no downstream operator selected the tag.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.emit.output(tag.id(), value);
    }
}

/// Processes a matching pair of an interval join (Flink's `ProcessJoinFunction`).
pub trait ProcessJoinFunction<A, B, O>: Send + 'static {
    /// Called once for every pair within the bounds.
    fn process_element(
        &mut self,
        left: &A,
        right: &B,
        ctx: &mut IntervalJoinContext<'_, O>,
    ) -> Result<(), BoxError>;
    lifecycle_hooks!();
}

impl<A, B, O, F: FnMut(&A, &B, &mut IntervalJoinContext<'_, O>) + Send + 'static>
    ProcessJoinFunction<A, B, O> for F
{
    fn process_element(
        &mut self,
        left: &A,
        right: &B,
        ctx: &mut IntervalJoinContext<'_, O>,
    ) -> Result<(), BoxError> {
        self(left, right, ctx);
        Ok(())
    }
}

/// Two keyed streams to be joined on an interval: `a.interval_join(&b)`.
pub struct IntervalJoin<A, B, K> {
    left: KeyedStream<A, K>,
    right: KeyedStream<B, K>,
}

/// An interval join with its bounds (Flink's `IntervalJoined`).
pub struct IntervalJoined<A, B, K> {
    join: IntervalJoin<A, B, K>,
    lower: i64,
    upper: i64,
    lower_exclusive: bool,
    upper_exclusive: bool,
    /// Side-output tag ids of late left and right elements.
    late: LateTags,
}

/// Where late elements of either side go: the id of a side-output tag, or dropped.
#[derive(Clone, Default)]
struct LateTags {
    left: Option<String>,
    right: Option<String>,
}

impl<A: Data, K: Key> KeyedStream<A, K> {
    /// Joins with another keyed stream on time intervals (Flink's `intervalJoin`): pairs
    /// with `left.ts + lower <= right.ts <= left.ts + upper`.
    pub fn interval_join<B: Data>(&self, other: &KeyedStream<B, K>) -> IntervalJoin<A, B, K> {
        IntervalJoin {
            left: self.clone(),
            right: other.clone(),
        }
    }
}

fn signed_ms(d: Duration, negative: bool) -> i64 {
    let m = d.as_millis() as i64;
    if negative { -m } else { m }
}

impl<A: Data, B: Data, K: Key> IntervalJoin<A, B, K> {
    /// The inclusive bounds, in milliseconds relative to the left element (negative allowed).
    pub fn between_millis(self, lower: i64, upper: i64) -> IntervalJoined<A, B, K> {
        IntervalJoined {
            join: self,
            lower,
            upper,
            lower_exclusive: false,
            upper_exclusive: false,
            late: LateTags::default(),
        }
    }

    /// The inclusive bounds as durations; `lower_negative` makes the lower bound `-lower`
    /// (Flink's `between(Time.milliseconds(-2), Time.milliseconds(1))`).
    pub fn between(
        self,
        lower: Duration,
        lower_negative: bool,
        upper: Duration,
    ) -> IntervalJoined<A, B, K> {
        self.between_millis(signed_ms(lower, lower_negative), upper.as_millis() as i64)
    }
}

impl<A: Data, B: Data, K: Key> IntervalJoined<A, B, K> {
    /// Makes the lower bound exclusive.
    pub fn lower_bound_exclusive(mut self) -> Self {
        self.lower_exclusive = true;
        self
    }

    /// Makes the upper bound exclusive.
    pub fn upper_bound_exclusive(mut self) -> Self {
        self.upper_exclusive = true;
        self
    }

    /// Sends left elements that arrive behind the watermark to the side output `tag`
    /// instead of dropping them (Flink's `sideOutputLeftLateData`).
    pub fn side_output_left_late_data(mut self, tag: &OutputTag<A>) -> Self {
        self.late.left = Some(tag.id().to_string());
        self
    }

    /// Sends right elements that arrive behind the watermark to the side output `tag`
    /// instead of dropping them (Flink's `sideOutputRightLateData`).
    pub fn side_output_right_late_data(mut self, tag: &OutputTag<B>) -> Self {
        self.late.right = Some(tag.id().to_string());
        self
    }

    /// Runs the join with a function called for every matching pair.
    pub fn process<O: Data, F: ProcessJoinFunction<A, B, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let lower = self.lower + i64::from(self.lower_exclusive);
        let upper = self.upper - i64::from(self.upper_exclusive);
        let (kl, kr) = (self.join.left.selector(), self.join.right.selector());
        let connected = ConnectedStreams {
            first: self.join.left.stream(),
            second: self.join.right.stream(),
        };
        let template = Template::new(f);
        let late = self.late.clone();
        connected.two_input(
            "IntervalJoin",
            Box::new(move |ctx, out, sides| {
                if lower > upper {
                    return Err(FjordError::InvalidGraph(format!(
                        "interval join lower bound {lower} is greater than upper bound {upper}"
                    )));
                }
                let op = IntervalJoinOp::new(
                    ctx,
                    template.instance(),
                    kl.clone(),
                    kr.clone(),
                    (lower, upper),
                    out,
                    (sides, late.clone()),
                )?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        )
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Buffers<A, B> {
    left: TimedBuffer<A>,
    right: TimedBuffer<B>,
}

impl<A, B> Default for Buffers<A, B> {
    fn default() -> Self {
        Buffers {
            left: TimedBuffer::default(),
            right: TimedBuffer::default(),
        }
    }
}

impl<A, B> Buffers<A, B> {
    fn is_empty(&self) -> bool {
        self.left.is_empty() && self.right.is_empty()
    }
}

/// Buffers `value` at `ts` in its side's buffer `own` and returns the elements of the other
/// side's buffer with timestamps in `from..=to` (to join with it), and whether `ts` is new in
/// `own` (then its cleanup timer is to be registered). The value is moved into the buffer
/// when it meets nothing (most elements), else a copy is, and it is handed back.
fn buffer_and_match<X: Clone, Y: Clone>(
    own: &mut TimedBuffer<X>,
    other: &TimedBuffer<Y>,
    ts: Timestamp,
    value: &mut Option<X>,
    (from, to): (Timestamp, Timestamp),
) -> (Vec<(Timestamp, Y)>, bool) {
    let matches: Vec<(Timestamp, Y)> = other.range(from, to).cloned().collect();
    let v = value.take().expect("buffered once");
    let first = if matches.is_empty() {
        own.insert(ts, v)
    } else {
        let first = own.insert(ts, v.clone());
        *value = Some(v);
        first
    };
    (matches, first)
}

/// Timer namespaces: which side's buffer a cleanup timer is for.
const LEFT: u8 = 0;
const RIGHT: u8 = 1;

pub(crate) struct IntervalJoinOp<A, B, K, O, F> {
    ctx: RuntimeContext,
    f: F,
    kl: KeySelector<A, K>,
    kr: KeySelector<B, K>,
    lower: i64,
    upper: i64,
    /// Per key, in the keyed state backend.
    buffers: InternalKeyedValue<K, Buffers<A, B>>,
    /// The cleanup timers, one per key, side and timestamp buffered: registered when a
    /// side's buffer gets an entry for a timestamp, which its firing removes. Each is
    /// registered once that way, so the queue needs no de-duplication (owner-tracked); a
    /// firing that finds nothing to remove is harmless.
    timers: InternalTimerService<K, u8>,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
    late: LateTags,
}

impl<A: Data, B: Data, K: Key, O: 'static, F: ProcessJoinFunction<A, B, O>>
    IntervalJoinOp<A, B, K, O, F>
{
    fn new(
        ctx: &RuntimeContext,
        f: F,
        kl: KeySelector<A, K>,
        kr: KeySelector<B, K>,
        (lower, upper): (i64, i64),
        out: Box<dyn Output<O>>,
        (sides, late): (SideOutputs, LateTags),
    ) -> Result<Self> {
        let ctx = &ctx.with_unregistered_keyed_state()?;
        let range =
            KeyGroupRange::for_subtask(ctx.max_parallelism, ctx.parallelism, ctx.subtask_index);
        let handle = ctx.keyed.clone().expect("just created");
        let mut op = IntervalJoinOp {
            ctx: ctx.clone(),
            f,
            kl,
            kr,
            lower,
            upper,
            buffers: InternalKeyedValue::new(&handle, "interval_join")?,
            timers: InternalTimerService::owner_tracked(ctx),
            out,
            sides,
            late,
        };
        if let Some(restored) = ctx.restored_state()? {
            let IntervalJoinOp {
                timers, buffers, ..
            } = &mut op;
            KeyedParts {
                range,
                max_parallelism: ctx.max_parallelism,
                backend: Some(&handle),
                timers,
            }
            // Snapshots taken while the buffers lived on the heap carry them as the
            // operator's own part of each key group.
            .restore(&restored, |kg, bytes, rehash| {
                buffers.restore_legacy_group(range, kg, bytes, rehash)
            })?;
        }
        Ok(op)
    }

    /// The record's timestamp, or `None` if it is behind the watermark: then it goes to
    /// the side's late-data output `late_tag` if there is one, else it is dropped, as in
    /// Flink.
    fn admit<X: 'static>(
        &mut self,
        record: &mut Option<StreamRecord<X>>,
        late_tag: Option<&str>,
    ) -> Result<Option<Timestamp>> {
        let Some(r) = record.as_ref() else {
            return Ok(None);
        };
        let ts = self.ctx.event_time(r.timestamp)?;
        let late = self.timers.watermark != MIN_WATERMARK && ts < self.timers.watermark;
        if !late {
            return Ok(Some(ts));
        }
        if let (Some(tag), Some(r)) = (late_tag, record.take()) {
            self.sides.emit(tag, r)?;
        }
        Ok(None)
    }

    fn emit_pair(&mut self, left: &A, lts: Timestamp, right: &B, rts: Timestamp) -> Result<()> {
        let mut jctx = IntervalJoinContext {
            left: lts,
            right: rts,
            emit: Emitter::new(self.out.as_mut(), &mut self.sides, Some(lts.max(rts))),
        };
        let f = &mut self.f;
        guard(&self.ctx, || f.process_element(left, right, &mut jctx))?;
        jctx.emit.finish()
    }
}

impl<A: Data, B: Data, K: Key, O: 'static, F: ProcessJoinFunction<A, B, O>> TwoInputOperator<A, B>
    for IntervalJoinOp<A, B, K, O, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let tag = self.late.left.clone();
        let mut slot = Some(record);
        let Some(ts) = self.admit(&mut slot, tag.as_deref())? else {
            return Ok(());
        };
        let record = slot.expect("admitted");
        let key = (self.kl)(&record.value).into_owned();
        let (lower, upper) = (self.lower, self.upper);
        let mut value = Some(record.value);
        // The buffers are changed in place: nothing here uses keyed state.
        let (matches, first) = self.buffers.upsert(&key, |b| {
            buffer_and_match(
                &mut b.left,
                &b.right,
                ts,
                &mut value,
                (ts + lower, ts + upper),
            )
        });
        if let Some(value) = value {
            for (rts, r) in matches {
                self.emit_pair(&value, ts, &r, rts)?;
            }
        }
        if first {
            // The cleanup timer of the buffer's entry at `ts`, registered when the entry is
            // made (see `timers` on the type).
            let cleanup = if upper > 0 { ts + upper } else { ts };
            self.timers.register_event_time(&key, &LEFT, cleanup);
        }
        Ok(())
    }

    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let tag = self.late.right.clone();
        let mut slot = Some(record);
        let Some(ts) = self.admit(&mut slot, tag.as_deref())? else {
            return Ok(());
        };
        let record = slot.expect("admitted");
        let key = (self.kr)(&record.value).into_owned();
        let (lower, upper) = (self.lower, self.upper);
        let mut value = Some(record.value);
        // The buffers are changed in place: nothing here uses keyed state.
        let (matches, first) = self.buffers.upsert(&key, |b| {
            buffer_and_match(
                &mut b.right,
                &b.left,
                ts,
                &mut value,
                (ts - upper, ts - lower),
            )
        });
        if let Some(value) = value {
            for (lts, l) in matches {
                self.emit_pair(&l, lts, &value, ts)?;
            }
        }
        if first {
            // The cleanup timer of the buffer's entry at `ts`, registered when the entry is
            // made (see `timers` on the type).
            let cleanup = if lower < 0 { ts - lower } else { ts };
            self.timers.register_event_time(&key, &RIGHT, cleanup);
        }
        Ok(())
    }
}

impl<A: Data, B: Data, K: Key, O: 'static, F: ProcessJoinFunction<A, B, O>> Lifecycle
    for IntervalJoinOp<A, B, K, O, F>
{
    process_lifecycle_common!();
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.timers.watermark = watermark;
        let (lower, upper) = (self.lower, self.upper);
        while let Some(t) = self.timers.event.pop_due(watermark) {
            // One lookup: the entry goes when its buffers are empty.
            self.buffers.change(&t.key, |b| {
                if t.namespace == LEFT {
                    b.left.remove(if upper > 0 {
                        t.timestamp - upper
                    } else {
                        t.timestamp
                    });
                } else {
                    b.right.remove(if lower < 0 {
                        t.timestamp + lower
                    } else {
                        t.timestamp
                    });
                }
                b.is_empty()
            });
        }
        self.out.emit_watermark(watermark)?;
        self.sides.emit_watermark(watermark)
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.out.advance_processing_time(now)?;
        self.sides.advance_processing_time(now)
    }
}

/// The keyed state backend (both sides' buffers) and the cleanup timers, per key group.
impl<A: Data, B: Data, K: Key, O: 'static, F: ProcessJoinFunction<A, B, O>> CheckpointParticipant
    for IntervalJoinOp<A, B, K, O, F>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        let Self { ctx, timers, .. } = self;
        Ok(OperatorState {
            keyed: KeyedParts::of(ctx, timers).snapshot(|_| Ok(Vec::new()))?,
            operator: None,
            ..OperatorState::default()
        })
    }
}
