//! The lookup's partial cache (Flink's `lookup.cache` = `PARTIAL`): rows by key, at most
//! `max_rows` keys (the least recently used goes first), each expiring a fixed time after it
//! was written (and, if set, after it was last read).

use crate::value::{PgRow, PgValue};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Entry {
    rows: Arc<[PgRow]>,
    written: Instant,
    read: Instant,
    /// The entry's place in `order`.
    tick: u64,
}

/// Cached rows by key.
pub(crate) struct PartialCache {
    max_rows: usize,
    expire_after_write: Option<Duration>,
    expire_after_access: Option<Duration>,
    entries: HashMap<Vec<PgValue>, Entry>,
    /// Keys by last use, oldest first.
    order: BTreeMap<u64, Vec<PgValue>>,
    next_tick: u64,
}

impl PartialCache {
    pub(crate) fn new(
        max_rows: usize,
        expire_after_write: Option<Duration>,
        expire_after_access: Option<Duration>,
    ) -> Self {
        PartialCache {
            max_rows: max_rows.max(1),
            expire_after_write,
            expire_after_access,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    /// The rows cached for `key` at `now`, if any are and have not expired (an expired entry
    /// is dropped).
    pub(crate) fn get(&mut self, key: &[PgValue], now: Instant) -> Option<Arc<[PgRow]>> {
        let entry = self.entries.get(key)?;
        let expired = self
            .expire_after_write
            .is_some_and(|d| now.duration_since(entry.written) >= d)
            || self
                .expire_after_access
                .is_some_and(|d| now.duration_since(entry.read) >= d);
        if expired {
            let tick = entry.tick;
            self.order.remove(&tick);
            self.entries.remove(key);
            return None;
        }
        let tick = self.tick();
        let entry = self.entries.get_mut(key).expect("present");
        let old = std::mem::replace(&mut entry.tick, tick);
        entry.read = now;
        let rows = entry.rows.clone();
        let k = self.order.remove(&old).expect("in order");
        self.order.insert(tick, k);
        Some(rows)
    }

    /// Caches `rows` for `key`, evicting the least recently used keys beyond `max_rows`.
    pub(crate) fn put(&mut self, key: Vec<PgValue>, rows: Arc<[PgRow]>, now: Instant) {
        let tick = self.tick();
        if let Some(old) = self.entries.insert(
            key.clone(),
            Entry {
                rows,
                written: now,
                read: now,
                tick,
            },
        ) {
            self.order.remove(&old.tick);
        }
        self.order.insert(tick, key);
        while self.entries.len() > self.max_rows {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    /// Keys cached.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: i64) -> Vec<PgValue> {
        vec![PgValue::Int8(i)]
    }

    fn rows(n: usize) -> Arc<[PgRow]> {
        let cols: Arc<[crate::PgColumn]> = Arc::from(Vec::new());
        (0..n)
            .map(|_| PgRow::new(cols.clone(), Vec::new()))
            .collect()
    }

    #[test]
    fn the_least_recently_used_key_is_evicted_first() {
        let now = Instant::now();
        let mut c = PartialCache::new(2, None, None);
        c.put(key(1), rows(1), now);
        c.put(key(2), rows(2), now);
        assert!(c.get(&key(1), now).is_some());
        c.put(key(3), rows(0), now);
        assert_eq!(c.len(), 2);
        assert!(
            c.get(&key(2), now).is_none(),
            "2 was the least recently used"
        );
        assert_eq!(c.get(&key(1), now).unwrap().len(), 1);
        assert_eq!(
            c.get(&key(3), now).unwrap().len(),
            0,
            "a cached missing key"
        );
    }

    #[test]
    fn entries_expire_after_write_and_after_access() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = PartialCache::new(10, Some(s(10)), None);
        c.put(key(1), rows(1), t0);
        assert!(
            c.get(&key(1), t0 + s(9)).is_some(),
            "reads do not extend it"
        );
        assert!(c.get(&key(1), t0 + s(10)).is_none());
        assert_eq!(c.len(), 0);

        let mut c = PartialCache::new(10, None, Some(s(5)));
        c.put(key(1), rows(1), t0);
        assert!(c.get(&key(1), t0 + s(4)).is_some());
        assert!(
            c.get(&key(1), t0 + s(8)).is_some(),
            "read at 4 s: alive until 9 s"
        );
        assert!(c.get(&key(1), t0 + s(14)).is_none());
    }

    #[test]
    fn writing_a_key_again_replaces_its_rows() {
        let now = Instant::now();
        let mut c = PartialCache::new(1, None, None);
        c.put(key(1), rows(1), now);
        c.put(key(1), rows(3), now);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&key(1), now).unwrap().len(), 3);
    }
}
