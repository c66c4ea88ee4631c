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

/// A value that goes up and down (Flink's `Gauge`), set from the task thread.
#[derive(Clone, Default, Debug)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// All counters and gauges of one job execution, by scope (`"operator (i/p)"`) and name.
#[derive(Clone, Default)]
pub struct MetricRegistry {
    counters: Arc<Mutex<Vec<(String, String, Counter)>>>,
    gauges: Arc<Mutex<Vec<(String, String, Gauge)>>>,
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

    /// Returns the gauge `name` of `scope`, creating it (at 0) on first use.
    pub fn gauge(&self, scope: &str, name: &str) -> Gauge {
        let mut all = self.gauges.lock();
        if let Some((_, _, g)) = all.iter().find(|(s, n, _)| s == scope && n == name) {
            return g.clone();
        }
        let g = Gauge::default();
        all.push((scope.to_string(), name.to_string(), g.clone()));
        g
    }

    /// Every counter and gauge as `"scope.name" -> value`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = self
            .counters
            .lock()
            .iter()
            .map(|(s, n, c)| (format!("{s}.{n}"), c.get()))
            .collect();
        all.extend(
            self.gauges
                .lock()
                .iter()
                .map(|(s, n, g)| (format!("{s}.{n}"), g.get())),
        );
        all
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_go_up_and_down_and_show_beside_counters() {
        let registry = MetricRegistry::default();
        registry.counter("src (1/1)", "records").add(3);
        let lag = registry.gauge("src (1/1)", "lag");
        lag.set(10);
        lag.set(4);
        assert_eq!(
            registry.gauge("src (1/1)", "lag").get(),
            4,
            "one gauge per name"
        );
        let snapshot = registry.snapshot();
        assert_eq!(snapshot["src (1/1).records"], 3);
        assert_eq!(snapshot["src (1/1).lag"], 4);
    }
}
