//! Operator metrics: named counters registered per operator and subtask.
//!
//! This is the small counter API the windowing and state code needs now (for example Flink's
//! `numLateRecordsDropped`); exporting metrics (Prometheus) builds on the same registry.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count, cheap to increment from the task thread.
#[derive(Clone, Default, Debug)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// All counters of one job execution, by scope (`"operator (i/p)"`) and name.
#[derive(Clone, Default)]
pub struct MetricRegistry {
    counters: Arc<Mutex<Vec<(String, String, Counter)>>>,
}

impl fmt::Debug for MetricRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl MetricRegistry {
    /// Returns the counter `name` of `scope`, creating it on first use.
    pub fn counter(&self, scope: &str, name: &str) -> Counter {
        let mut all = self.counters.lock();
        if let Some((_, _, c)) = all.iter().find(|(s, n, _)| s == scope && n == name) {
            return c.clone();
        }
        let c = Counter::default();
        all.push((scope.to_string(), name.to_string(), c.clone()));
        c
    }

    /// Every counter as `"scope.name" -> value`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counters
            .lock()
            .iter()
            .map(|(s, n, c)| (format!("{s}.{n}"), c.get()))
            .collect()
    }

    /// The sum of counter `name` over all subtasks of the operator named `operator`.
    pub fn total(&self, operator: &str, name: &str) -> u64 {
        let prefix = format!("{operator} (");
        self.counters
            .lock()
            .iter()
            .filter(|(s, n, _)| n == name && s.starts_with(&prefix))
            .map(|(_, _, c)| c.get())
            .sum()
    }
}
