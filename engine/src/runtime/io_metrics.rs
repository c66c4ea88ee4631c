//! Records in and out of every task subtask, readable while the job runs (what the
//! JobManager's REST API and `/metrics` report), like Flink's task-level `numRecordsIn` and
//! `numRecordsOut`.
//!
//! A subtask's records in are the records its chain head received from other tasks (0 for
//! sources); its records out are the records its network writers sent to other tasks (0 for a
//! chain that ends in sinks). Both are counted per batch, never per record. A record sent on
//! two outgoing edges, or broadcast to n subtasks, counts once per receiving channel. Records
//! passed between chained operators are not counted: counting them cost half of the throughput
//! of a chained job.
//!
//! The counters are single-writer (only the subtask's thread adds), so adding is a plain load
//! and store rather than an atomic read-modify-write, and each sits on its own cache line so
//! subtasks on different cores do not slow each other down.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cache-line-sized slot, so counters of different subtasks never share a line.
#[derive(Default, Debug)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A count that one thread adds to and any thread reads.
#[derive(Clone, Default, Debug)]
pub(crate) struct IoCounter(Arc<Padded>);

impl IoCounter {
    /// Adds `n`. Only the owning subtask's thread may call this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Single writer: load + store is exact and avoids a locked instruction.
        let c = &self.0.0;
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.0.load(Ordering::Relaxed)
    }
}

/// Records in and out of one task subtask at the moment of a [`IoMetrics::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorIo {
    /// Index of the vertex (chain) in the job plan.
    pub vertex: usize,
    /// Always 0: counts are per task, and `operator` names the chain's head.
    pub position: usize,
    /// Name of the task's first operator (its chain head).
    pub operator: String,
    /// Zero-based subtask index.
    pub subtask: usize,
    /// Records the task received from other tasks (0 for sources).
    pub records_in: u64,
    /// Records the task sent to other tasks (0 for a chain that ends in sinks).
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
    /// The (in, out) counters of a task subtask, created on first use.
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

    /// Every task subtask's counts, ordered by vertex and subtask.
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

    fn totals(io: &IoMetrics, head: &str) -> (u64, u64) {
        io.snapshot()
            .iter()
            .filter(|o| o.operator == head)
            .fold((0, 0), |(i, o), e| (i + e.records_in, o + e.records_out))
    }

    #[test]
    fn a_running_job_counts_records_per_task() {
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
        // Chained Numbers -> Evens: sends the 50 evens; receives nothing.
        assert_eq!(totals(&io, "Numbers"), (0, 50));
        assert_eq!(totals(&io, "Letters"), (0, 3));
        // The two-input task receives both inputs; its chained sink sends nothing.
        assert_eq!(totals(&io, "Both"), (53, 0));
        let both: Vec<_> = io
            .snapshot()
            .into_iter()
            .filter(|o| o.operator == "Both")
            .collect();
        assert_eq!(both.len(), 2, "one entry per subtask: {both:?}");
    }

    #[test]
    fn a_keyed_one_input_task_counts_its_input() {
        let env = crate::StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.from_sequence(1, 40)
            .name("Numbers")
            .key_by(|x: &i64| x % 4)
            .map(|x: i64| x)
            .name("Keyed")
            .collect();
        let client = env.execute_async("keyed").unwrap();
        let io = client.io_metrics();
        client.wait().unwrap();
        assert_eq!(totals(&io, "Numbers"), (0, 40));
        assert_eq!(totals(&io, "Keyed"), (40, 0));
    }
}
