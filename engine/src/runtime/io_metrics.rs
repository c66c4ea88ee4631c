//! Records in and out of every operator subtask, readable while the job runs (what the
//! JobManager's REST API and `/metrics` report).
//!
//! Every one-input operator is wrapped in a [`Counted`] output that counts the records it
//! receives; the main output of every operator (sources included) is wrapped too, counting the
//! records it emits once each, however many consumers they fan out to. Side outputs are not
//! counted. Two-input heads count their input batches themselves.
//!
//! The counters are single-writer (only the subtask's thread adds), so adding is a plain load
//! and store rather than an atomic read-modify-write; readers on other threads see a value at
//! most a few records old.

use crate::error::Result;
use crate::operators::output::{Lifecycle, Output};
use crate::types::{StreamRecord, Timestamp};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A count that one thread adds to and any thread reads.
#[derive(Clone, Default, Debug)]
pub(crate) struct IoCounter(Arc<AtomicU64>);

impl IoCounter {
    /// Adds `n`. Only the owning subtask's thread may call this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Single writer: load + store is exact and avoids a locked instruction per record.
        let c = &self.0;
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Records in and out of one operator subtask at the moment of a [`IoMetrics::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorIo {
    /// Index of the vertex (chain) in the job plan.
    pub vertex: usize,
    /// Position of the operator in its chain (0 = head).
    pub position: usize,
    /// Operator name.
    pub operator: String,
    /// Zero-based subtask index.
    pub subtask: usize,
    /// Records the operator received (0 for sources).
    pub records_in: u64,
    /// Records the operator emitted on its main output (0 for sinks).
    pub records_out: u64,
}

struct Entry {
    operator: String,
    records_in: IoCounter,
    records_out: IoCounter,
}

/// Counters by (vertex, operator, subtask).
type Entries = BTreeMap<(usize, usize, usize), Entry>;

/// The record counters of one job execution. Cheap to clone; clones share the counters.
#[derive(Clone, Default)]
pub struct IoMetrics {
    entries: Arc<Mutex<Entries>>,
}

impl std::fmt::Debug for IoMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

impl IoMetrics {
    /// The (in, out) counters of an operator subtask, created on first use.
    pub(crate) fn counters(
        &self,
        vertex: usize,
        position: usize,
        operator: &str,
        subtask: usize,
    ) -> (IoCounter, IoCounter) {
        let mut entries = self.entries.lock();
        let e = entries
            .entry((vertex, position, subtask))
            .or_insert_with(|| Entry {
                operator: operator.to_string(),
                records_in: IoCounter::default(),
                records_out: IoCounter::default(),
            });
        (e.records_in.clone(), e.records_out.clone())
    }

    /// Every operator subtask's counts, ordered by vertex, position in the chain, subtask.
    /// Empty until the job's tasks are deployed.
    pub fn snapshot(&self) -> Vec<OperatorIo> {
        self.entries
            .lock()
            .iter()
            .map(|(&(vertex, position, subtask), e)| OperatorIo {
                vertex,
                position,
                operator: e.operator.clone(),
                subtask,
                records_in: e.records_in.get(),
                records_out: e.records_out.get(),
            })
            .collect()
    }
}

/// An output that counts the records passing through it.
///
/// Delegates every [`Lifecycle`] method; a new `Lifecycle` method with a default must be
/// forwarded here too.
pub(crate) struct Counted<T> {
    pub(crate) inner: Box<dyn Output<T>>,
    pub(crate) counter: IoCounter,
}

impl<T: Send> Lifecycle for Counted<T> {
    fn open(&mut self) -> Result<()> {
        self.inner.open()
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.inner.emit_watermark(watermark)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.inner.advance_processing_time(now)
    }
    fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.inner.emit_watermark_status(idle)
    }
}

impl<T: Send> Output<T> for Counted<T> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        self.counter.add(1);
        self.inner.emit(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_shared_per_operator_subtask() {
        let io = IoMetrics::default();
        let (a_in, a_out) = io.counters(0, 1, "Map", 0);
        let (again, _) = io.counters(0, 1, "Map", 0);
        a_in.add(2);
        again.add(3);
        a_out.add(1);
        io.counters(0, 0, "Source", 1).1.add(7);
        let snap = io.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(
            (snap[0].operator.as_str(), snap[0].records_out),
            ("Source", 7)
        );
        assert_eq!((snap[1].records_in, snap[1].records_out), (5, 1));
    }

    fn totals(io: &IoMetrics, operator: &str) -> (u64, u64) {
        io.snapshot()
            .iter()
            .filter(|o| o.operator == operator)
            .fold((0, 0), |(i, o), e| (i + e.records_in, o + e.records_out))
    }

    #[test]
    fn a_running_job_counts_records_per_operator() {
        let env = crate::StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        let evens = env
            .from_sequence(1, 100)
            .name("Numbers")
            .filter(|x: &i64| x % 2 == 0)
            .name("Evens");
        let letters = env.from_collection(vec!['a', 'b', 'c']).name("Letters");
        let out = evens
            .rebalance()
            .connect(&letters.rebalance())
            .map(|x: i64| x, |c: char| c as i64)
            .name("Both")
            .collect();
        let client = env.execute_async("io").unwrap();
        let io = client.io_metrics();
        client.wait().unwrap();
        assert_eq!(out.values().len(), 53);
        assert_eq!(totals(&io, "Numbers"), (0, 100));
        assert_eq!(totals(&io, "Evens"), (100, 50));
        assert_eq!(totals(&io, "Letters"), (0, 3));
        assert_eq!(totals(&io, "Both"), (53, 53));
        let both: Vec<_> = io
            .snapshot()
            .into_iter()
            .filter(|o| o.operator == "Both")
            .collect();
        assert_eq!(both.len(), 2, "one entry per subtask: {both:?}");
        assert!(both.iter().all(|o| o.position == 0));
    }
}
