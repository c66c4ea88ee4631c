//! Timers of keyed operators (Flink's `InternalTimerService`).
//!
//! A timer belongs to a key and a namespace (the window for window operators, `()` for
//! process functions) and fires once at its timestamp: event-time timers when the watermark
//! reaches it, processing-time timers when the job's clock does. Registering the same
//! (key, namespace, timestamp) twice yields one timer; timers fire in timestamp order, and
//! in registration order for equal timestamps.
//!
//! Where timers live follows the operator's keyed state backend (Flink's
//! `state.backend.rocksdb.timer-service.factory: ROCKSDB`): a backend that
//! [holds timers](crate::state::KeyedStateBackend::holds_timers) (RocksDB) keeps them, with a
//! bounded cache in memory (`backend_queue`); otherwise (the heap backend) they are in an
//! in-memory priority queue (`HeapQueue`). Snapshots write both in one format.

mod backend_queue;

use crate::context::RuntimeContext;
use crate::error::{FjordError, Result};
use crate::keygroup::{FastSet, Rehash, assign_to_key_group};
use crate::state::TimerQueueKind;
use crate::types::{MIN_WATERMARK, Timestamp};
use backend_queue::BackendTimerQueue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

/// A timer that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timer<K, N> {
    pub(crate) timestamp: Timestamp,
    pub(crate) key: K,
    pub(crate) namespace: N,
}

/// A priority queue of timers with deduplication; deletion is lazy (a deleted timer's queue
/// entry is skipped when it comes up).
///
/// Timers fire by timestamp, then in registration order. Window and process-function timers
/// are mostly registered at a timestamp at or after the latest one registered (the next window
/// end, the element's time plus a delay): those are appended to `in_order` and taken from its
/// front, both O(1) on memory that stays in the cache. Any other timer goes into `out_of_order`,
/// a B-tree of per-timestamp lists in registration order: timers of many keys share a few
/// timestamps (window ends), so a registration finds its list among a few and appends to it.
/// The earliest timer is the smaller of the two fronts. A binary heap, used before, walked
/// `log2(n)` levels scattered over memory on every pop: a twentieth of a sliding-window job's
/// CPU time with 10^5 keys (BENCHMARKS.md, issue 14).
///
/// An operator that keeps the timestamp of each key's pending timer in its own state, and
/// ignores a timer that is not that one when it fires, can do without the de-duplication
/// ([`HeapQueue::owner_tracked`]): no set of live timers is kept, a registration only appends,
/// a deletion does nothing and every queue entry fires. That set's insert and remove were a
/// tenth of the CPU time of Nexmark q5's sliding window (one cache miss each per key and
/// window).
pub(crate) struct HeapQueue<K, N> {
    /// (timestamp, registration number, key, namespace), ascending.
    in_order: VecDeque<(Timestamp, u64, K, N)>,
    /// Per timestamp, (registration number, key, namespace) in registration order.
    out_of_order: BTreeMap<Timestamp, VecDeque<(u64, K, N)>>,
    /// The live timers; `None` when the owner tracks its timers (every entry is live).
    live: Option<FastSet<(K, N, Timestamp)>>,
    seq: u64,
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone> HeapQueue<K, N> {
    pub(crate) fn new() -> Self {
        HeapQueue {
            in_order: VecDeque::new(),
            out_of_order: BTreeMap::new(),
            live: Some(FastSet::default()),
            seq: 0,
        }
    }

    /// A queue without de-duplication or deletion, for an operator that ignores the timers
    /// it did not expect (see the type's documentation).
    pub(crate) fn owner_tracked() -> Self {
        HeapQueue {
            live: None,
            ..HeapQueue::new()
        }
    }

    /// Registers a timer; false if it already existed (always true for an owner-tracked
    /// queue).
    #[inline]
    pub(crate) fn register(&mut self, key: &K, ns: &N, ts: Timestamp) -> bool {
        if let Some(live) = &mut self.live
            && !live.insert((key.clone(), ns.clone(), ts))
        {
            return false;
        }
        self.seq += 1;
        if self.in_order.back().is_none_or(|last| last.0 <= ts) {
            self.in_order
                .push_back((ts, self.seq, key.clone(), ns.clone()));
        } else {
            self.out_of_order
                .entry(ts)
                .or_default()
                .push_back((self.seq, key.clone(), ns.clone()));
        }
        true
    }

    /// Deletes a timer if it exists. An owner-tracked queue keeps it: its owner ignores the
    /// timer when it fires (a window operator deletes the timer of a window it removes).
    pub(crate) fn delete(&mut self, key: &K, ns: &N, ts: Timestamp) {
        if let Some(live) = &mut self.live {
            live.remove(&(key.clone(), ns.clone(), ts));
        }
    }

    /// The earliest queue entry (live or deleted): its timestamp, and whether it is the front
    /// of `in_order`.
    #[inline]
    fn front(&self) -> Option<(Timestamp, bool)> {
        let ordered = self.in_order.front().map(|e| (e.0, e.1));
        let tree = self
            .out_of_order
            .first_key_value()
            .map(|(ts, list)| (*ts, list.front().expect("lists are not empty").0));
        match (ordered, tree) {
            (Some(o), Some(t)) if t < o => Some((t.0, false)),
            (Some(o), _) => Some((o.0, true)),
            (None, Some(t)) => Some((t.0, false)),
            (None, None) => None,
        }
    }

    /// Removes the earliest queue entry that `front` found.
    #[inline]
    fn take_front(&mut self, in_order: bool) -> (K, N, Timestamp) {
        if in_order {
            let (ts, _, key, ns) = self.in_order.pop_front().expect("front found it");
            (key, ns, ts)
        } else {
            let mut first = self.out_of_order.first_entry().expect("front found it");
            let ts = *first.key();
            let (_, key, ns) = first.get_mut().pop_front().expect("lists are not empty");
            if first.get().is_empty() {
                first.remove();
            }
            (key, ns, ts)
        }
    }

    /// Whether the earliest queue entry that `front` found is a live timer.
    fn front_is_live(&self, in_order: bool) -> bool {
        let Some(live) = &self.live else {
            return true;
        };
        if in_order {
            let e = self.in_order.front().expect("front found it");
            live.contains(&(e.2.clone(), e.3.clone(), e.0))
        } else {
            let (ts, list) = self.out_of_order.first_key_value().expect("front found it");
            let (_, key, ns) = list.front().expect("lists are not empty");
            live.contains(&(key.clone(), ns.clone(), *ts))
        }
    }

    /// The earliest live timer's timestamp.
    pub(crate) fn peek(&mut self) -> Option<Timestamp> {
        while let Some((ts, in_order)) = self.front() {
            if self.front_is_live(in_order) {
                return Some(ts);
            }
            self.take_front(in_order);
        }
        None
    }

    /// Removes and returns the earliest live timer due at `limit`.
    #[inline]
    pub(crate) fn pop_due(&mut self, limit: Timestamp) -> Option<Timer<K, N>> {
        while let Some((ts, in_order)) = self.front() {
            if ts > limit {
                return None;
            }
            let id = self.take_front(in_order);
            if self.live.as_mut().is_none_or(|live| live.remove(&id)) {
                return Some(Timer {
                    timestamp: id.2,
                    key: id.0,
                    namespace: id.1,
                });
            }
        }
        None
    }

    /// Number of live timers (queue entries of an owner-tracked queue).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match &self.live {
            Some(live) => live.len(),
            None => {
                self.in_order.len() + self.out_of_order.values().map(VecDeque::len).sum::<usize>()
            }
        }
    }

    /// The live timers grouped by the key group of their key, each group serialized in
    /// timestamp order (for snapshots). Key groups without timers are absent. An
    /// owner-tracked queue writes each of its distinct entries once.
    pub(crate) fn snapshot_groups(&self, max_parallelism: usize) -> BTreeMap<usize, Vec<u8>>
    where
        K: Serialize,
        N: Serialize,
    {
        let queued: FastSet<(K, N, Timestamp)>;
        let timers = match &self.live {
            Some(live) => live,
            None => {
                let tree = self.out_of_order.iter().flat_map(|(ts, list)| {
                    list.iter().map(|(_, k, n)| (k.clone(), n.clone(), *ts))
                });
                queued = self
                    .in_order
                    .iter()
                    .map(|(ts, _, k, n)| (k.clone(), n.clone(), *ts))
                    .chain(tree)
                    .collect();
                &queued
            }
        };
        let mut groups: BTreeMap<usize, Vec<&(K, N, Timestamp)>> = BTreeMap::new();
        for t in timers {
            groups
                .entry(assign_to_key_group(&t.0, max_parallelism))
                .or_default()
                .push(t);
        }
        groups
            .into_iter()
            .map(|(kg, mut timers)| {
                timers.sort_by_key(|t| t.2);
                let bytes = crate::encoding::to_vec(&timers)
                    .expect("serializing into memory does not fail");
                (kg, bytes)
            })
            .collect()
    }
}

/// The timers of one domain: in memory, or in the keyed state backend.
pub(crate) enum TimerQueue<K, N> {
    /// An in-memory priority queue (heap backend, operators without keyed state).
    Heap(HeapQueue<K, N>),
    /// The backend's ordered sets with a bounded cache.
    Backend(BackendTimerQueue<K, N>),
}

impl<K, N> TimerQueue<K, N>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    N: Hash + Eq + Clone + Serialize + DeserializeOwned,
{
    /// Registers a timer; false if it already existed.
    #[inline]
    pub(crate) fn register(&mut self, key: &K, ns: &N, ts: Timestamp) -> bool {
        match self {
            TimerQueue::Heap(q) => q.register(key, ns, ts),
            TimerQueue::Backend(q) => q.register(key, ns, ts),
        }
    }

    /// Deletes a timer if it exists.
    pub(crate) fn delete(&mut self, key: &K, ns: &N, ts: Timestamp) {
        match self {
            TimerQueue::Heap(q) => q.delete(key, ns, ts),
            TimerQueue::Backend(q) => q.delete(key, ns, ts),
        }
    }

    /// The earliest live timer's timestamp.
    pub(crate) fn peek(&mut self) -> Option<Timestamp> {
        match self {
            TimerQueue::Heap(q) => q.peek(),
            TimerQueue::Backend(q) => q.peek(),
        }
    }

    /// Removes and returns the earliest live timer due at `limit`.
    ///
    /// # Panics
    /// When a timer the backend holds does not deserialize (its bytes were written by this
    /// queue, so the disk is broken): the task fails and restarts from its last checkpoint.
    #[inline]
    pub(crate) fn pop_due(&mut self, limit: Timestamp) -> Option<Timer<K, N>> {
        match self {
            TimerQueue::Heap(q) => q.pop_due(limit),
            TimerQueue::Backend(q) => q
                .pop_due(limit)
                .unwrap_or_else(|e| panic!("timer service failed: {e}")),
        }
    }

    /// The live timers grouped by the key group of their key, each group serialized in
    /// timestamp order (for snapshots). Key groups without timers are absent.
    ///
    /// # Errors
    /// A timer of the backend that does not deserialize.
    pub(crate) fn snapshot_groups(
        &self,
        max_parallelism: usize,
    ) -> Result<BTreeMap<usize, Vec<u8>>> {
        match self {
            TimerQueue::Heap(q) => Ok(q.snapshot_groups(max_parallelism)),
            TimerQueue::Backend(q) => q.snapshot_groups(),
        }
    }
}

/// Reads timers written by [`TimerQueue::snapshot_groups`].
fn decode_timers<K: DeserializeOwned, N: DeserializeOwned>(
    bytes: &[u8],
) -> Result<Vec<(K, N, Timestamp)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    crate::encoding::from_slice(bytes).map_err(|e| FjordError::Serialization {
        context: "restoring timers".into(),
        message: e.to_string(),
    })
}

/// Event-time and processing-time timers of one keyed operator subtask.
pub(crate) struct InternalTimerService<K, N> {
    pub(crate) event: TimerQueue<K, N>,
    pub(crate) processing: TimerQueue<K, N>,
    pub(crate) watermark: Timestamp,
    ctx: RuntimeContext,
}

impl<K, N> InternalTimerService<K, N>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    N: Hash + Eq + Clone + Serialize + DeserializeOwned,
{
    /// The timers of `ctx`'s operator: in its keyed state backend when that holds timers.
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        Self::with_heap_queues(ctx, HeapQueue::new)
    }

    /// The timers of an operator that keeps each key's pending timer in its state and ignores
    /// the others when they fire: in memory without de-duplication and deletion (see
    /// [`HeapQueue::owner_tracked`]); in the keyed state backend when that holds timers.
    pub(crate) fn owner_tracked(ctx: &RuntimeContext) -> Self {
        Self::with_heap_queues(ctx, HeapQueue::owner_tracked)
    }

    fn with_heap_queues(ctx: &RuntimeContext, heap: fn() -> HeapQueue<K, N>) -> Self {
        let queue = |kind| match &ctx.keyed {
            Some(h) if h.with(|inner| inner.backend.holds_timers()) => TimerQueue::Backend(
                BackendTimerQueue::new(h.clone(), kind, ctx.key_group_range(), ctx.max_parallelism),
            ),
            _ => TimerQueue::Heap(heap()),
        };
        InternalTimerService {
            event: queue(TimerQueueKind::EventTime),
            processing: queue(TimerQueueKind::ProcessingTime),
            watermark: MIN_WATERMARK,
            ctx: ctx.clone(),
        }
    }

    /// Registers an event-time timer.
    #[inline]
    pub(crate) fn register_event_time(&mut self, key: &K, ns: &N, ts: Timestamp) {
        self.event.register(key, ns, ts);
    }

    /// Registers a processing-time timer and makes sure the task wakes up for it.
    pub(crate) fn register_processing_time(&mut self, key: &K, ns: &N, ts: Timestamp) {
        let earliest = self.processing.peek();
        if self.processing.register(key, ns, ts) && earliest.is_none_or(|e| ts < e) {
            self.ctx.request_wakeup(ts);
        }
    }

    /// Removes and returns the earliest timer of `domain` due at `limit` (a watermark or a
    /// processing time), if any.
    #[inline]
    pub(crate) fn pop_due(&mut self, domain: TimeDomain, limit: Timestamp) -> Option<Timer<K, N>> {
        match domain {
            TimeDomain::EventTime => self.event.pop_due(limit),
            TimeDomain::ProcessingTime => self.processing.pop_due(limit),
        }
    }

    /// Asks for a wake-up at the earliest processing-time timer (after some fired).
    pub(crate) fn reschedule_processing(&mut self) {
        if let Some(ts) = self.processing.peek() {
            self.ctx.request_wakeup(ts);
        }
    }

    pub(crate) fn current_processing_time(&self) -> Timestamp {
        self.ctx.current_processing_time()
    }

    /// Re-registers event-time timers of one key group from a snapshot; with `rehash`, only
    /// those whose key now belongs to this subtask.
    pub(crate) fn restore_event(&mut self, bytes: &[u8], rehash: Option<Rehash>) -> Result<()> {
        for (k, n, ts) in decode_timers::<K, N>(bytes)? {
            if rehash.is_none_or(|r| r.keeps(&k)) {
                self.event.register(&k, &n, ts);
            }
        }
        Ok(())
    }

    /// Re-registers processing-time timers of one key group from a snapshot (and asks for a
    /// wake-up at the earliest); with `rehash`, only those whose key now belongs to this
    /// subtask.
    pub(crate) fn restore_processing(
        &mut self,
        bytes: &[u8],
        rehash: Option<Rehash>,
    ) -> Result<()> {
        for (k, n, ts) in decode_timers::<K, N>(bytes)? {
            if rehash.is_none_or(|r| r.keeps(&k)) {
                self.register_processing_time(&k, &n, ts);
            }
        }
        Ok(())
    }
}

/// Which clock a timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeDomain {
    /// Fired by the watermark.
    EventTime,
    /// Fired by the job's clock.
    ProcessingTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_are_deduplicated_and_fire_in_order() {
        let mut q: HeapQueue<&str, ()> = HeapQueue::new();
        assert!(q.register(&"b", &(), 20));
        assert!(q.register(&"a", &(), 10));
        assert!(
            !q.register(&"a", &(), 10),
            "same key and timestamp is one timer"
        );
        assert!(q.register(&"c", &(), 10));
        q.register(&"d", &(), 15);
        q.delete(&"d", &(), 15);
        assert_eq!(q.len(), 3);
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_due(100))
            .map(|t| (t.key, t.timestamp))
            .collect();
        assert_eq!(fired, vec![("a", 10), ("c", 10), ("b", 20)]);
    }

    #[test]
    fn deleted_then_registered_fires_once() {
        let mut q: HeapQueue<u8, ()> = HeapQueue::new();
        q.register(&1, &(), 5);
        q.delete(&1, &(), 5);
        q.register(&1, &(), 5);
        assert_eq!(q.pop_due(5).map(|t| t.timestamp), Some(5));
        assert_eq!(q.pop_due(5), None);
        assert_eq!(q.peek(), None);
    }

    #[test]
    fn owner_tracked_queue_keeps_every_registration_in_order() {
        let mut q: HeapQueue<&str, ()> = HeapQueue::owner_tracked();
        assert!(q.register(&"b", &(), 20));
        assert!(q.register(&"a", &(), 10));
        assert!(q.register(&"a", &(), 10), "no de-duplication");
        assert!(q.register(&"c", &(), 10));
        assert!(q.register(&"d", &(), 30));
        assert!(q.register(&"e", &(), 20));
        assert_eq!(q.len(), 6);
        let snapshot = q.snapshot_groups(128);
        let written: usize = snapshot
            .values()
            .map(|b| decode_timers::<String, ()>(b).unwrap().len())
            .sum();
        assert_eq!(written, 5, "a snapshot holds each distinct timer once");
        // A deletion does nothing: the owner ignores the timers it did not expect.
        q.delete(&"c", &(), 10);
        assert_eq!(q.peek(), Some(10));
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_due(25))
            .map(|t| (t.key, t.timestamp))
            .collect();
        assert_eq!(
            fired,
            vec![("a", 10), ("a", 10), ("c", 10), ("b", 20), ("e", 20)]
        );
        assert_eq!(q.peek(), Some(30));
    }

    #[test]
    fn pop_due_respects_the_limit() {
        let mut q: HeapQueue<u8, u8> = HeapQueue::new();
        q.register(&1, &0, 9);
        assert_eq!(q.pop_due(8), None);
        assert_eq!(q.peek(), Some(9));
    }

    #[test]
    fn many_timers_fire_by_timestamp_then_registration() {
        // Timestamps out of order with many ties, some deleted and registered again.
        let mut q: HeapQueue<u32, ()> = HeapQueue::new();
        let mut expected = Vec::new();
        for key in 0..2000u32 {
            let ts = i64::from((key * 7919) % 37);
            q.register(&key, &(), ts);
            expected.push((ts, key));
        }
        for key in (0..2000u32).step_by(5) {
            let ts = i64::from((key * 7919) % 37);
            q.delete(&key, &(), ts);
            expected.retain(|e| *e != (ts, key));
        }
        // Registered again after its deletion: it fires once, at its first registration's
        // place among its timestamp's timers (its old queue entry comes up first).
        q.register(&10, &(), i64::from((10 * 7919) % 37));
        expected.push((i64::from((10 * 7919) % 37), 10));
        expected.sort_by_key(|&(ts, key)| (ts, key));
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_due(36))
            .map(|t| (t.timestamp, t.key))
            .collect();
        assert_eq!(fired, expected);
        assert_eq!(q.peek(), None);
    }
}
