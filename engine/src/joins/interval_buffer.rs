//! One side's buffered elements of a key in an interval join, in timestamp order.
//!
//! Elements mostly arrive in timestamp order and leave in it (a cleanup timer per timestamp,
//! fired in order), so the buffer is a double-ended queue of `(timestamp, element)` sorted by
//! timestamp, elements of one timestamp in arrival order: appending and removing at the ends
//! move nothing, and finding the other side's elements in a range is two binary searches.
//! A `BTreeMap<Timestamp, Vec<V>>`, used before, allocated a vector per timestamp and a tree
//! node per key and spent a third of the join's time in the tree (BENCHMARKS.md, issue 14).
//!
//! It is encoded as that map was (timestamp to the list of its elements, ascending), so
//! checkpoints and savepoints of either restore into the other.

use crate::types::Timestamp;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

/// Buffered elements with their timestamps, ascending (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimedBuffer<V>(VecDeque<(Timestamp, V)>);

impl<V> Default for TimedBuffer<V> {
    fn default() -> Self {
        TimedBuffer(VecDeque::new())
    }
}

impl<V> TimedBuffer<V> {
    /// True when nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Buffers `value` at `ts`, after the elements already there; true if `ts` is new in the
    /// buffer.
    pub(crate) fn insert(&mut self, ts: Timestamp, value: V) -> bool {
        let first = match self.0.back() {
            Some((last, _)) if *last > ts => {
                let at = self.0.partition_point(|(t, _)| *t <= ts);
                let first = at == 0 || self.0[at - 1].0 != ts;
                self.0.insert(at, (ts, value));
                return first;
            }
            Some((last, _)) => *last != ts,
            None => true,
        };
        self.0.push_back((ts, value));
        first
    }

    /// The positions of the elements with timestamps in `from..=to`.
    fn positions(&self, from: Timestamp, to: Timestamp) -> Range<usize> {
        let start = self.0.partition_point(|(t, _)| *t < from);
        let end = start + self.0.range(start..).take_while(|(t, _)| *t <= to).count();
        start..end
    }

    /// The elements with timestamps in `from..=to`, in order.
    pub(crate) fn range(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = &(Timestamp, V)> {
        let at = self.positions(from, to);
        self.0.range(at)
    }

    /// Removes the elements at `ts` (mostly the front ones: nothing moves then).
    pub(crate) fn remove(&mut self, ts: Timestamp) {
        let at = self.positions(ts, ts);
        self.0.drain(at);
    }
}

/// The elements of `buffer` at positions `at`, encoded as a list.
struct Group<'a, V>(&'a VecDeque<(Timestamp, V)>, Range<usize>);

impl<V: Serialize> Serialize for Group<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.range(self.1.clone()).map(|(_, v)| v))
    }
}

impl<V: Serialize> Serialize for TimedBuffer<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let q = &self.0;
        let groups = (0..q.len())
            .filter(|&i| i == 0 || q[i - 1].0 != q[i].0)
            .count();
        let mut map = s.serialize_map(Some(groups))?;
        let mut start = 0;
        while start < q.len() {
            let ts = q[start].0;
            let end = start + q.range(start..).take_while(|(t, _)| *t == ts).count();
            map.serialize_entry(&ts, &Group(q, start..end))?;
            start = end;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for TimedBuffer<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = TimedBuffer<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of timestamps to lists of buffered elements")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut buffer = TimedBuffer::default();
                while let Some((ts, values)) = map.next_entry::<Timestamp, Vec<V>>()? {
                    for v in values {
                        buffer.insert(ts, v);
                    }
                }
                Ok(buffer)
            }
        }
        d.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Inserts `(ts, value)` pairs into a buffer and into the map it replaced.
    fn both(pairs: &[(Timestamp, u32)]) -> (TimedBuffer<u32>, BTreeMap<Timestamp, Vec<u32>>) {
        let mut buffer = TimedBuffer::default();
        let mut map: BTreeMap<Timestamp, Vec<u32>> = BTreeMap::new();
        for &(ts, v) in pairs {
            let new = !map.contains_key(&ts);
            assert_eq!(buffer.insert(ts, v), new, "insert {ts}");
            map.entry(ts).or_default().push(v);
        }
        (buffer, map)
    }

    fn flat(map: &BTreeMap<Timestamp, Vec<u32>>, from: i64, to: i64) -> Vec<(Timestamp, u32)> {
        map.range(from..=to)
            .flat_map(|(t, vs)| vs.iter().map(|v| (*t, *v)))
            .collect()
    }

    /// Out of order, repeated timestamps, negative ones.
    const PAIRS: &[(Timestamp, u32)] = &[
        (5, 1),
        (7, 2),
        (5, 3),
        (3, 4),
        (9, 5),
        (7, 6),
        (-2, 7),
        (9, 8),
        (4, 9),
        (3, 10),
    ];

    #[test]
    fn ranges_and_removals_are_those_of_a_map_of_lists() {
        let (mut buffer, mut map) = both(PAIRS);
        for (from, to) in [(-5, 20), (3, 5), (4, 4), (6, 6), (8, 9), (10, 12), (-3, -2)] {
            let got: Vec<_> = buffer.range(from, to).copied().collect();
            assert_eq!(got, flat(&map, from, to), "{from}..={to}");
        }
        for ts in [5, -2, 8, 3, 9, 7, 4] {
            buffer.remove(ts);
            map.remove(&ts);
            assert_eq!(buffer.range(-10, 10).count(), flat(&map, -10, 10).len());
            assert_eq!(
                buffer.range(-10, 10).copied().collect::<Vec<_>>(),
                flat(&map, -10, 10)
            );
        }
        assert!(buffer.is_empty());
    }

    #[test]
    fn encoded_as_the_map_of_lists_it_replaced() {
        let (buffer, map) = both(PAIRS);
        let bytes = crate::encoding::to_vec(&buffer).unwrap();
        assert_eq!(bytes, crate::encoding::to_vec(&map).unwrap());
        let back: TimedBuffer<u32> = crate::encoding::from_slice(&bytes).unwrap();
        assert_eq!(back, buffer);
        let empty = TimedBuffer::<u32>::default();
        assert_eq!(
            crate::encoding::to_vec(&empty).unwrap(),
            crate::encoding::to_vec(&BTreeMap::<Timestamp, Vec<u32>>::new()).unwrap()
        );
    }
}
