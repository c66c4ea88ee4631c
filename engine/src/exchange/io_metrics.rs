//! Records in and out of every task subtask, readable while the job runs (what the
//! JobManager's REST API and `/metrics` report), like Flink's task-level `numRecordsIn` and
//! `numRecordsOut`, plus bytes in and out, where the task's time goes (busy, idle,
//! backpressured: Flink's `busyTimeMsPerSecond` and friends, as cumulative milliseconds) and
//! its current input and output watermarks.
//!
//! A subtask's records in are the records its chain head received from other tasks (0 for
//! sources); its records out are the records its network writers sent to other tasks (0 for a
//! chain that ends in sinks). Both are counted per batch, never per record. A record sent on
//! two outgoing edges, or broadcast to n subtasks, counts once per receiving channel. Records
//! passed between chained operators are not counted: counting them cost half of the throughput
//! of a chained job.
//!
//! Time is measured only on the blocking paths, never per record: a writer first tries to
//! enqueue a batch without blocking and starts a clock only when the channel is full
//! (backpressured time); an input task reads the clock only when no input is waiting and it
//! has to block (idle time); a source is idle from the poll that found nothing available to
//! the next one that found data. Busy time is the rest of the task's wall time since it
//! started: `busy = wall - idle - backpressured`. A wait in progress counts as soon as it
//! started, so a task blocked for good shows up as backpressured, not busy.
//!
//! Bytes: channels between tasks of one process pass record objects, not bytes, so they count
//! **0 bytes**. The network exchange (tasks in different processes) adds the bytes it writes
//! and reads through [`TaskIo::add_bytes_out`] and [`TaskIo::add_bytes_in`].
//!
//! The record and time counters are single-writer (only the subtask's thread adds), so adding
//! is a plain load and store rather than an atomic read-modify-write, and each sits on its own
//! cache line so subtasks on different cores do not slow each other down. Byte counters may be
//! added to from any thread (network threads) and use atomic additions.

use crate::types::{MIN_WATERMARK, Timestamp};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A cache-line-sized slot, so counters of different subtasks never share a line.
#[derive(Default, Debug)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl Padded {
    /// Adds `n`; only one thread may add to a given slot.
    #[inline]
    fn add_single_writer(&self, n: u64) {
        // Single writer: load + store is exact and avoids a locked instruction.
        let c = &self.0;
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Nanoseconds since a process-wide origin (0 is never returned, so 0 can mean "not waiting").
fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    (origin.elapsed().as_nanos() as u64).max(1)
}

/// What a task waits for, for [`TaskIo::timed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// An output channel is full (backpressure).
    Backpressured,
    /// No input is available.
    Idle,
}

/// Wall time of a task over its execution attempts.
#[derive(Debug, Default)]
struct Wall {
    /// Wall time of attempts that ended.
    before: Duration,
    /// Start of the running attempt.
    since: Option<Instant>,
}

impl Wall {
    fn total(&self) -> Duration {
        self.before + self.since.map_or(Duration::ZERO, |s| s.elapsed())
    }
}

/// Every metric of one task subtask.
#[derive(Debug)]
struct TaskCells {
    operator: String,
    records_in: Padded,
    records_out: Padded,
    bytes_in: Padded,
    bytes_out: Padded,
    backpressured_ns: Padded,
    idle_ns: Padded,
    /// Start (from [`now_ns`]) of a wait in progress, 0 when not waiting.
    backpressured_since: AtomicU64,
    idle_since: AtomicU64,
    /// [`MIN_WATERMARK`] until the first watermark.
    input_watermark: AtomicI64,
    output_watermark: AtomicI64,
    wall: Mutex<Wall>,
    /// The highest time values reported, so reported counters never go back when a snapshot
    /// races with the end of a wait.
    reported: Mutex<[u64; 3]>,
}

impl TaskCells {
    fn new(operator: &str) -> Self {
        TaskCells {
            operator: operator.to_string(),
            records_in: Padded::default(),
            records_out: Padded::default(),
            bytes_in: Padded::default(),
            bytes_out: Padded::default(),
            backpressured_ns: Padded::default(),
            idle_ns: Padded::default(),
            backpressured_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            input_watermark: AtomicI64::new(MIN_WATERMARK),
            output_watermark: AtomicI64::new(MIN_WATERMARK),
            wall: Mutex::new(Wall::default()),
            reported: Mutex::new([0; 3]),
        }
    }

    fn wait_cells(&self, wait: Wait) -> (&Padded, &AtomicU64) {
        match wait {
            Wait::Backpressured => (&self.backpressured_ns, &self.backpressured_since),
            Wait::Idle => (&self.idle_ns, &self.idle_since),
        }
    }

    /// Cumulative time in a wait, including one in progress.
    fn waited_ns(&self, wait: Wait, now: u64) -> u64 {
        let (total, since) = self.wait_cells(wait);
        let ongoing = match since.load(Ordering::Relaxed) {
            0 => 0,
            start => now.saturating_sub(start),
        };
        total.get() + ongoing
    }
}

/// The metrics of one task subtask: a cheap, cloneable handle that the task's thread (and, for
/// bytes, the network threads serving the task's channels) write to.
#[derive(Clone, Debug)]
pub(crate) struct TaskIo(Arc<TaskCells>);

impl Default for TaskIo {
    /// A handle that belongs to no job (for tests and tasks that are not counted).
    fn default() -> Self {
        TaskIo(Arc::new(TaskCells::new("")))
    }
}

thread_local! {
    /// The task whose network writer was last opened on this thread (see [`TaskIo::mark_started`]).
    static CURRENT: RefCell<Option<TaskIo>> = const { RefCell::new(None) };
}

impl TaskIo {
    /// Adds `n` bytes the task received from the network. Any thread may call this; channels
    /// within a process carry objects and add nothing.
    #[inline]
    pub(crate) fn add_bytes_in(&self, n: u64) {
        self.0.bytes_in.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` bytes the task sent over the network. Any thread may call this; channels
    /// within a process carry objects and add nothing.
    #[inline]
    pub(crate) fn add_bytes_out(&self, n: u64) {
        self.0.bytes_out.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Runs `f` (a blocking call) and counts the time it took as `wait`. Only the task's
    /// thread may call this, and only on a path that is known to block: it reads the clock
    /// twice.
    pub(crate) fn timed<R>(&self, wait: Wait, f: impl FnOnce() -> R) -> R {
        let start = self.begin_wait(wait);
        let result = f();
        self.end_wait(wait, start);
        result
    }

    /// Starts a wait (from the task's thread); returns its start for [`end_wait`](Self::end_wait).
    pub(crate) fn begin_wait(&self, wait: Wait) -> u64 {
        let start = now_ns();
        self.0.wait_cells(wait).1.store(start, Ordering::Relaxed);
        start
    }

    /// Ends the wait that began at `start` and adds its time.
    pub(crate) fn end_wait(&self, wait: Wait, start: u64) {
        let (total, since) = self.0.wait_cells(wait);
        total.add_single_writer(now_ns().saturating_sub(start));
        since.store(0, Ordering::Relaxed);
    }

    /// The combined watermark the task's operators see advanced to `watermark`.
    #[inline]
    pub(crate) fn set_input_watermark(&self, watermark: Timestamp) {
        self.0.input_watermark.store(watermark, Ordering::Relaxed);
    }

    /// The task sent watermark `watermark` downstream.
    #[inline]
    pub(crate) fn set_output_watermark(&self, watermark: Timestamp) {
        self.0.output_watermark.store(watermark, Ordering::Relaxed);
    }

    /// The task (of a new execution attempt) started running on this thread: its wall time
    /// runs from now, and [`take_current`](Self::take_current) on this thread returns it.
    /// Calling it again while the task runs changes nothing.
    pub(crate) fn mark_started(&self) {
        {
            let mut wall = self.0.wall.lock();
            if wall.since.is_none() {
                wall.since = Some(Instant::now());
            }
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }

    /// The task stopped (finished, failed or cancelled): its wall time stops until it starts
    /// again, and a wait in progress ends. Only the task's thread may call this; calling it
    /// again changes nothing.
    pub(crate) fn mark_ended(&self) {
        for wait in [Wait::Backpressured, Wait::Idle] {
            let start = self.0.wait_cells(wait).1.load(Ordering::Relaxed);
            if start != 0 {
                self.end_wait(wait, start);
            }
        }
        let mut wall = self.0.wall.lock();
        if let Some(since) = wall.since.take() {
            wall.before += since.elapsed();
        }
    }

    /// The task last started on this thread (by opening one of its network writers), taken.
    /// Lets a source loop find its task without the wiring handing it over.
    pub(crate) fn take_current() -> Option<TaskIo> {
        CURRENT.with(|c| c.borrow_mut().take())
    }

    fn snapshot(&self, vertex: usize, position: usize, subtask: usize) -> OperatorIo {
        let c = &self.0;
        let now = now_ns();
        let wall = c.wall.lock().total().as_nanos() as u64;
        let backpressured = c.waited_ns(Wait::Backpressured, now);
        let idle = c.waited_ns(Wait::Idle, now);
        let busy = wall.saturating_sub(backpressured + idle);
        let [bp, idle, busy] = {
            let mut reported = c.reported.lock();
            for (r, v) in reported.iter_mut().zip([backpressured, idle, busy]) {
                *r = (*r).max(v);
            }
            *reported
        };
        let watermark =
            |w: &AtomicI64| Some(w.load(Ordering::Relaxed)).filter(|w| *w != MIN_WATERMARK);
        OperatorIo {
            vertex,
            position,
            operator: c.operator.clone(),
            subtask,
            records_in: c.records_in.get(),
            records_out: c.records_out.get(),
            bytes_in: c.bytes_in.get(),
            bytes_out: c.bytes_out.get(),
            backpressured_ms: bp / 1_000_000,
            idle_ms: idle / 1_000_000,
            busy_ms: busy / 1_000_000,
            input_watermark: watermark(&c.input_watermark),
            output_watermark: watermark(&c.output_watermark),
        }
    }
}

/// Which count of its task an [`IoCounter`] adds to.
#[derive(Clone, Copy, Debug)]
enum Count {
    RecordsIn,
    RecordsOut,
}

/// A count that one thread adds to and any thread reads: the records in or out of a task.
#[derive(Clone, Debug)]
pub(crate) struct IoCounter {
    task: TaskIo,
    count: Count,
}

impl Default for IoCounter {
    /// A counter that belongs to no job.
    fn default() -> Self {
        IoCounter {
            task: TaskIo::default(),
            count: Count::RecordsIn,
        }
    }
}

impl IoCounter {
    /// Adds `n`. Only the owning subtask's thread may call this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        let cells = &self.task.0;
        match self.count {
            Count::RecordsIn => cells.records_in.add_single_writer(n),
            Count::RecordsOut => cells.records_out.add_single_writer(n),
        }
    }

    /// The task this counter belongs to, for its other metrics (time, bytes, watermarks).
    pub(crate) fn task(&self) -> &TaskIo {
        &self.task
    }
}

/// The metrics of one task subtask at the moment of a [`IoMetrics::snapshot`].
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
    /// Bytes the task received over the network; 0 for channels within a process, which carry
    /// record objects, not bytes.
    pub bytes_in: u64,
    /// Bytes the task sent over the network; 0 for channels within a process.
    pub bytes_out: u64,
    /// Cumulative milliseconds the task was blocked because an output channel was full.
    pub backpressured_ms: u64,
    /// Cumulative milliseconds the task waited for input with nothing to do (for a source:
    /// while its reader had nothing available).
    pub idle_ms: u64,
    /// Cumulative milliseconds the task worked: its wall time minus idle and backpressured time.
    pub busy_ms: u64,
    /// The combined watermark of the task's inputs (the minimum over its active channels),
    /// `None` before the first watermark and for sources.
    pub input_watermark: Option<Timestamp>,
    /// The last watermark the task sent to other tasks, `None` before the first one and for
    /// chains that end in sinks.
    pub output_watermark: Option<Timestamp>,
}

/// Metrics by (vertex, operator, subtask).
type Entries = BTreeMap<(usize, usize, usize), TaskIo>;

/// The task metrics of one job execution. Cheap to clone; clones share the counters.
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
    /// The metrics of a task subtask, created on first use. The network exchange uses it (or
    /// [`IoCounter::task`]) to reach a task's byte counters.
    pub(crate) fn task(
        &self,
        vertex: usize,
        position: usize,
        operator: &str,
        subtask: usize,
    ) -> TaskIo {
        self.entries
            .lock()
            .entry((vertex, position, subtask))
            .or_insert_with(|| TaskIo(Arc::new(TaskCells::new(operator))))
            .clone()
    }

    /// The (in, out) record counters of a task subtask, created on first use.
    pub(crate) fn counters(
        &self,
        vertex: usize,
        position: usize,
        operator: &str,
        subtask: usize,
    ) -> (IoCounter, IoCounter) {
        let task = self.task(vertex, position, operator, subtask);
        (
            IoCounter {
                task: task.clone(),
                count: Count::RecordsIn,
            },
            IoCounter {
                task,
                count: Count::RecordsOut,
            },
        )
    }

    /// Every task subtask's metrics, ordered by vertex and subtask.
    /// Empty until the job's tasks are deployed.
    pub fn snapshot(&self) -> Vec<OperatorIo> {
        self.entries
            .lock()
            .iter()
            .map(|(&(vertex, position, subtask), task)| task.snapshot(vertex, position, subtask))
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

    fn task_of(io: &IoMetrics, head: &str) -> Vec<OperatorIo> {
        io.snapshot()
            .into_iter()
            .filter(|o| o.operator == head)
            .collect()
    }

    #[test]
    fn a_full_channel_counts_backpressure_and_a_free_one_does_not() {
        let cancel = crate::exchange::channel::CancelFlag::default();
        let (tx, rx) = crate::exchange::channel::channel(1, &cancel, None);
        let metrics = IoMetrics::default();
        let task = metrics.task(0, 0, "Producer", 0);
        task.mark_started();
        tx.send_measured(crate::exchange::channel::Event::EndOfPartition, &task)
            .unwrap();
        assert_eq!(task.0.backpressured_ns.get(), 0, "the channel had room");
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            while rx.recv().is_ok() {}
        });
        let started = Instant::now();
        tx.send_measured(crate::exchange::channel::Event::EndOfPartition, &task)
            .unwrap();
        let wall = started.elapsed();
        drop(tx);
        consumer.join().unwrap();
        task.mark_ended();
        let snap = &metrics.snapshot()[0];
        assert!(snap.backpressured_ms > 0, "{snap:?}");
        assert!(
            u128::from(snap.backpressured_ms) <= wall.as_millis(),
            "{snap:?}"
        );
        assert_eq!(
            (snap.bytes_in, snap.bytes_out),
            (0, 0),
            "channels carry objects"
        );
    }

    #[test]
    fn a_wait_in_progress_counts_before_it_ends_and_counters_never_go_back() {
        let task = TaskIo::default();
        task.mark_started();
        let start = task.begin_wait(Wait::Idle);
        std::thread::sleep(Duration::from_millis(20));
        let during = task.snapshot(0, 0, 0);
        assert!(during.idle_ms > 0, "{during:?}");
        task.end_wait(Wait::Idle, start);
        let after = task.snapshot(0, 0, 0);
        assert!(after.idle_ms >= during.idle_ms && after.busy_ms >= during.busy_ms);
        // Ending the task ends a wait left open (a source idle when it was cancelled).
        task.begin_wait(Wait::Backpressured);
        task.mark_ended();
        assert_eq!(task.0.backpressured_since.load(Ordering::Relaxed), 0);
        let ended = task.snapshot(0, 0, 0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(task.snapshot(0, 0, 0), ended, "nothing grows after the end");
    }

    #[test]
    fn bytes_add_up_from_any_thread() {
        let metrics = IoMetrics::default();
        let (records_in, _) = metrics.counters(1, 0, "Net", 0);
        let task = records_in.task().clone();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let task = task.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        task.add_bytes_in(3);
                        task.add_bytes_out(1);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let snap = &metrics.snapshot()[0];
        assert_eq!((snap.bytes_in, snap.bytes_out), (12_000, 4_000));
    }

    #[test]
    fn a_slow_consumer_backpressures_its_producer() {
        let env = crate::StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        env.configure(|c| {
            c.batch_size = 1;
            c.channel_capacity = 1;
        });
        env.from_sequence(1, 60)
            .name("Numbers")
            .rebalance()
            .map(|x: i64| {
                std::thread::sleep(Duration::from_millis(2));
                x
            })
            .name("Slow")
            .collect();
        let started = Instant::now();
        let client = env.execute_async("backpressure").unwrap();
        let io = client.io_metrics();
        client.wait().unwrap();
        let wall = started.elapsed().as_millis() as u64;
        let numbers = &task_of(&io, "Numbers")[0];
        assert!(numbers.backpressured_ms > 0, "{numbers:?}");
        // At most the wall time: a producer blocked for the whole run reaches it (both are
        // truncated to whole milliseconds, so equal is possible; the suite saw 125 of 125).
        assert!(numbers.backpressured_ms <= wall, "{numbers:?} in {wall} ms");
        let slow = &task_of(&io, "Slow")[0];
        assert!(slow.busy_ms > 0, "{slow:?}");
        assert!(
            slow.busy_ms + slow.idle_ms + slow.backpressured_ms <= wall,
            "{slow:?}"
        );
        assert_eq!(slow.records_in, 60);
    }

    #[test]
    fn a_task_waiting_for_input_is_idle() {
        let env = crate::StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        env.from_iter((0..4i64).inspect(|_| std::thread::sleep(Duration::from_millis(15))))
            .name("Trickle")
            .rebalance()
            .map(|x: i64| x + 1)
            .name("Waiting")
            .collect();
        let started = Instant::now();
        let client = env.execute_async("idle").unwrap();
        let io = client.io_metrics();
        client.wait().unwrap();
        let wall = started.elapsed().as_millis() as u64;
        let waiting = &task_of(&io, "Waiting")[0];
        assert!(waiting.idle_ms > 0, "{waiting:?}");
        assert!(waiting.idle_ms <= wall, "{waiting:?} in {wall} ms");
        assert_eq!(waiting.records_in, 4);
        // Bounded sources end event time; the consumer saw it on its input.
        assert_eq!(waiting.input_watermark, Some(crate::types::MAX_WATERMARK));
        let trickle = &task_of(&io, "Trickle")[0];
        assert_eq!(trickle.output_watermark, Some(crate::types::MAX_WATERMARK));
        assert_eq!(trickle.input_watermark, None, "a source has no input");
    }
}
