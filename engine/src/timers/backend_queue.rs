//! A timer queue held by the keyed state backend (RocksDB), with a small cache in memory —
//! Flink's `KeyGroupPartitionedPriorityQueue` over `RocksDBCachingPriorityQueueSet`.
//!
//! The backend keeps, per key group, the ordered set of the timers' bytes (timestamp, key,
//! namespace; see [`encode`]). In memory there are, per key group, at most [`CACHED`] of its
//! first timers, and a min-heap of the key groups by their first timer. Invariant per key
//! group: every timer the backend holds that is not cached sorts after the last cached one,
//! and the cache is empty only when the key group has no timer (`complete`). So the heap's
//! top is the queue's first timer, memory is bounded by `CACHED` × key groups whatever the
//! number of timers, and refilling a cache scans on from its last timer (past the tombstones
//! of timers already fired).
//!
//! Timers with equal timestamps fire in the order of their serialized key and namespace
//! (Flink's RocksDB timers do the same), not in registration order as on the heap.

use crate::error::{FjordError, Result};
use crate::keygroup::{KeyGroupRange, assign_to_key_group};
use crate::state::{KeyedStateHandle, TimerQueueKind};
use crate::timers::Timer;
use crate::types::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::Hash;
use std::marker::PhantomData;

/// Timers cached per key group.
pub(crate) const CACHED: usize = 64;

/// The bytes of a timer: timestamp (big-endian with the sign bit flipped, so bytes sort as
/// numbers), then the key's and the namespace's encoding ([`crate::encoding`]).
pub(crate) fn encode<K: Serialize, N: Serialize>(ts: Timestamp, key: &K, ns: &N) -> Vec<u8> {
    let mut out = ((ts as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    crate::encoding::write_into(&mut out, key).expect("serializing into memory does not fail");
    crate::encoding::write_into(&mut out, ns).expect("serializing into memory does not fail");
    out
}

/// The timestamp of a timer's bytes.
fn timestamp(bytes: &[u8]) -> Timestamp {
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&bytes[..8]);
    (u64::from_be_bytes(ts) ^ (1 << 63)) as i64
}

/// Reads the bytes of [`encode`].
pub(crate) fn decode<K: DeserializeOwned, N: DeserializeOwned>(
    bytes: &[u8],
) -> Result<Timer<K, N>> {
    let err = |e: crate::encoding::EncodingError| FjordError::Serialization {
        context: "a timer of the state backend".into(),
        message: e.to_string(),
    };
    if bytes.len() < 8 {
        return Err(FjordError::Serialization {
            context: "a timer of the state backend".into(),
            message: "shorter than its timestamp".into(),
        });
    }
    let mut rest = &bytes[8..];
    let key = crate::encoding::take_from(&mut rest).map_err(err)?;
    let namespace = crate::encoding::take_from(&mut rest).map_err(err)?;
    Ok(Timer {
        timestamp: timestamp(bytes),
        key,
        namespace,
    })
}

#[derive(Default)]
struct GroupCache {
    /// The key group's first timers, in order (at most [`CACHED`]).
    first: Vec<Vec<u8>>,
    /// True when `first` holds every timer of the key group.
    complete: bool,
}

/// The timers of one domain of a keyed operator subtask, in its backend (see the module docs).
pub(crate) struct BackendTimerQueue<K, N> {
    h: KeyedStateHandle,
    kind: TimerQueueKind,
    range: KeyGroupRange,
    max_parallelism: usize,
    groups: Vec<GroupCache>,
    /// (first timestamp, key group); entries that no longer match the cache are skipped.
    heads: BinaryHeap<Reverse<(Timestamp, usize)>>,
    _t: PhantomData<fn() -> (K, N)>,
}

impl<K, N> BackendTimerQueue<K, N>
where
    K: Hash + Serialize + DeserializeOwned,
    N: Serialize + DeserializeOwned,
{
    /// An empty queue of `kind` in `h`'s backend for the key groups of `range`.
    pub(crate) fn new(
        h: KeyedStateHandle,
        kind: TimerQueueKind,
        range: KeyGroupRange,
        max_parallelism: usize,
    ) -> Self {
        BackendTimerQueue {
            h,
            kind,
            range,
            max_parallelism,
            groups: (0..range.len())
                .map(|_| GroupCache {
                    first: Vec::new(),
                    complete: true,
                })
                .collect(),
            heads: BinaryHeap::new(),
            _t: PhantomData,
        }
    }

    fn slot(&self, key_group: usize) -> usize {
        key_group - self.range.start
    }

    /// Pushes the key group's first timestamp onto the heap (if it has a timer). Entries
    /// that went stale are dropped by rebuilding the heap once they outnumber the key groups
    /// four to one, so the heap stays bounded too.
    fn push_head(&mut self, key_group: usize) {
        if let Some(first) = self.groups[self.slot(key_group)].first.first() {
            self.heads.push(Reverse((timestamp(first), key_group)));
        }
        if self.heads.len() > 4 * self.groups.len() + 16 {
            let range = self.range;
            self.heads = self
                .groups
                .iter()
                .zip(range.iter())
                .filter_map(|(g, kg)| g.first.first().map(|b| Reverse((timestamp(b), kg))))
                .collect();
        }
    }

    /// Refills an emptied cache from the backend, on from `after`.
    fn refill(&mut self, key_group: usize, after: Option<&[u8]>) {
        let kind = self.kind;
        let first = self
            .h
            .with(|inner| inner.backend.timer_scan(kind, key_group, after, CACHED));
        let slot = self.slot(key_group);
        self.groups[slot].complete = first.len() < CACHED;
        self.groups[slot].first = first;
    }

    /// Registers a timer; false if it already existed.
    pub(crate) fn register(&mut self, key: &K, ns: &N, ts: Timestamp) -> bool {
        let kg = assign_to_key_group(key, self.max_parallelism);
        let bytes = encode(ts, key, ns);
        let kind = self.kind;
        let new = self
            .h
            .with(|inner| inner.backend.timer_insert(kind, kg, &bytes));
        // Even a timer the backend held already may be missing from the cache (a restore
        // that brought the backend's files): the cache learns it either way.
        let slot = self.slot(kg);
        let cache = &mut self.groups[slot];
        let pos = match cache.first.binary_search(&bytes) {
            Ok(_) => return new,
            Err(pos) => pos,
        };
        if pos == cache.first.len() && !cache.complete {
            // Sorts after the cached ones: stays in the backend only.
            return new;
        }
        cache.first.insert(pos, bytes);
        if cache.first.len() > CACHED {
            cache.first.pop();
            cache.complete = false;
        }
        if pos == 0 {
            self.push_head(kg);
        }
        new
    }

    /// Deletes a timer if it exists.
    pub(crate) fn delete(&mut self, key: &K, ns: &N, ts: Timestamp) {
        let kg = assign_to_key_group(key, self.max_parallelism);
        let bytes = encode(ts, key, ns);
        let kind = self.kind;
        let removed = self
            .h
            .with(|inner| inner.backend.timer_remove(kind, kg, &bytes));
        if !removed {
            return;
        }
        let slot = self.slot(kg);
        let cache = &mut self.groups[slot];
        if let Ok(pos) = cache.first.binary_search(&bytes) {
            cache.first.remove(pos);
            if cache.first.is_empty() && !cache.complete {
                self.refill(kg, Some(&bytes));
            }
            if pos == 0 {
                self.push_head(kg);
            }
        }
    }

    /// The key group holding the first timer, and that timer's timestamp.
    fn top(&mut self) -> Option<(Timestamp, usize)> {
        while let Some(Reverse((ts, kg))) = self.heads.peek().copied() {
            let current = self.groups[self.slot(kg)]
                .first
                .first()
                .map(|b| timestamp(b));
            if current == Some(ts) {
                return Some((ts, kg));
            }
            self.heads.pop();
        }
        None
    }

    /// The earliest timer's timestamp.
    pub(crate) fn peek(&mut self) -> Option<Timestamp> {
        self.top().map(|(ts, _)| ts)
    }

    /// Removes and returns the earliest timer due at `limit`.
    pub(crate) fn pop_due(&mut self, limit: Timestamp) -> Result<Option<Timer<K, N>>> {
        let Some((ts, kg)) = self.top() else {
            return Ok(None);
        };
        if ts > limit {
            return Ok(None);
        }
        self.heads.pop();
        let slot = self.slot(kg);
        let bytes = self.groups[slot].first.remove(0);
        let kind = self.kind;
        self.h
            .with(|inner| inner.backend.timer_remove(kind, kg, &bytes));
        if self.groups[slot].first.is_empty() && !self.groups[slot].complete {
            self.refill(kg, Some(&bytes));
        }
        self.push_head(kg);
        decode(&bytes).map(Some)
    }

    /// The timers grouped by key group, each group serialized in timestamp order in the
    /// format of the in-memory queue's snapshots (so savepoints do not depend on where
    /// timers were kept).
    pub(crate) fn snapshot_groups(&self) -> Result<BTreeMap<usize, Vec<u8>>>
    where
        K: Serialize,
        N: Serialize,
    {
        let mut out = BTreeMap::new();
        let kind = self.kind;
        for kg in self.range.iter() {
            let all = self
                .h
                .with(|inner| inner.backend.timer_scan(kind, kg, None, usize::MAX));
            if all.is_empty() {
                continue;
            }
            let timers = all
                .iter()
                .map(|b| decode::<K, N>(b).map(|t| (t.key, t.namespace, t.timestamp)))
                .collect::<Result<Vec<_>>>()?;
            let bytes =
                crate::encoding::to_vec(&timers).expect("serializing into memory does not fail");
            out.insert(kg, bytes);
        }
        Ok(out)
    }
}
