//! Stateful operators in checkpoints: window contents and panes, timers, keyed process state,
//! operator list state; restarts after an injected failure and savepoints restored at other
//! parallelisms, with exact results.

use fjord::checkpoint::{CheckpointMetadata, RestartStrategy};
use fjord::functions::{
    CheckpointedFunction, FunctionInitializationContext, FunctionSnapshotContext,
};
use fjord::sinks::CollectedOutput;
use fjord::sources::GeneratorSource;
use fjord::state::{MapStateDescriptor, OperatorListState};
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord::time::WatermarkStrategy;
use fjord::windows::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    WindowContext,
};
use fjord::{
    BoxError, FjordError, JobClient, KeyedProcessContext, KeyedProcessFunction, MapFunction,
    RuntimeContext, StreamExecutionEnvironment,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::{FailAt, file_url};

const KEYS: u64 = 7;

/// (key, window end, count, sum) of a tumbling 1 s window.
type Tumbling = (u64, i64, u64, u64);
/// (key, window end, sum) of a sliding 2 s / 0.5 s window.
type Sliding = (u64, i64, u64);
/// (key, timer time, count) of the keyed process function.
type Timed = (u64, i64, u64);
/// (key, window start, window end, count, sum) of a session window with a 10 ms gap.
type Session = (u64, i64, i64, u64, u64);

/// The session window's gap, in milliseconds.
const SESSION_GAP: i64 = 10;

/// Whether record `i` goes to the session window: each key's records come 7 ms apart, 40
/// in a row, then 10 are left out (a 77 ms pause), so every record but a session's first
/// extends its session (a merge), and sessions end within the run.
fn in_session(i: u64) -> bool {
    (i / KEYS) % 50 < 40
}

struct Outputs {
    /// Tumbling results seen so far (counted as they arrive, for progress checks).
    progress: Arc<AtomicUsize>,
    tumbling: CollectedOutput<Tumbling>,
    sliding: CollectedOutput<Sliding>,
    timed: CollectedOutput<Timed>,
    sessions: CollectedOutput<Session>,
}

/// Counts records per key and 5 s bucket of event time in keyed map state; an event-time
/// timer at the bucket end emits and removes the bucket's count.
#[derive(Clone, Default)]
struct BucketCount {
    rt: Option<RuntimeContext>,
}

fn bucket_state() -> MapStateDescriptor<i64, u64> {
    MapStateDescriptor::new("bucket counts")
}

fn bucket_end(ts: i64) -> i64 {
    (ts / 5000 + 1) * 5000
}

impl KeyedProcessFunction<u64, (u64, u64), Timed> for BucketCount {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }
    fn process_element(
        &mut self,
        (_, i): (u64, u64),
        ctx: &mut KeyedProcessContext<'_, u64, Timed>,
    ) -> Result<(), BoxError> {
        let state = self.rt.as_ref().unwrap().get_map_state(&bucket_state())?;
        let end = bucket_end(i as i64);
        state.put(end, state.get(&end).unwrap_or(0) + 1);
        ctx.timer_service().register_event_time_timer(end - 1);
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedProcessContext<'_, u64, Timed>,
    ) -> Result<(), BoxError> {
        let state = self.rt.as_ref().unwrap().get_map_state(&bucket_state())?;
        let key = *ctx.current_key();
        ctx.collect((key, t + 1, state.get(&(t + 1)).unwrap_or(0)));
        state.remove(&(t + 1));
        Ok(())
    }
}

/// Record `i` is `(i % KEYS, i)` with event time `i` ms, from a parallelism-1 source; three
/// keyed, event-time, stateful operators at the environment's parallelism read it.
fn windowed_job(
    env: &StreamExecutionEnvironment,
    records: u64,
    rate: f64,
    fail_at: Option<u64>,
) -> Outputs {
    let input = env
        .from_source(
            GeneratorSource::new(Some(records), |i| (i % KEYS, i)).with_rate(rate),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(u64, u64), _| e.1 as i64),
        )
        .set_parallelism(1)
        .map(FailAt::at(fail_at.into_iter().collect()))
        .set_parallelism(1);
    let sessions = input
        .filter(|e: &(u64, u64)| in_session(e.1))
        .set_parallelism(1)
        .key_by(|e: &(u64, u64)| e.0)
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            SESSION_GAP as u64,
        )))
        .aggregate_with_process(
            SumCount,
            |key: &u64, ctx: &mut WindowContext<'_, TimeWindow, Session>, r: Vec<(u64, u64)>| {
                let w = *ctx.window();
                ctx.collect((*key, w.start, w.end, r[0].0, r[0].1));
            },
        )
        .uid("sessions")
        .collect();
    let input = input.key_by(|e: &(u64, u64)| e.0);
    let tumbling = input
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .process(
            |key: &u64, ctx: &mut WindowContext<'_, TimeWindow, Tumbling>, els: Vec<(u64, u64)>| {
                let sum = els.iter().map(|e| e.1).sum();
                let end = ctx.window().end;
                ctx.collect((*key, end, els.len() as u64, sum));
            },
        )
        .uid("tumbling");
    let progress = Arc::new(AtomicUsize::new(0));
    let counter = progress.clone();
    tumbling.for_each(move |_: Tumbling| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let tumbling = tumbling.collect();
    let sliding = input
        .window(SlidingEventTimeWindows::of(
            Duration::from_secs(2),
            Duration::from_millis(500),
        ))
        .reduce_with_process(
            |a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1),
            |key: &u64, ctx: &mut WindowContext<'_, TimeWindow, Sliding>, r: Vec<(u64, u64)>| {
                let end = ctx.window().end;
                ctx.collect((*key, end, r[0].1));
            },
        )
        .uid("sliding")
        .collect();
    let timed = input
        .process(BucketCount::default())
        .uid("buckets")
        .collect();
    Outputs {
        progress,
        tumbling,
        sliding,
        timed,
        sessions,
    }
}

/// Counts and sums a window's records: (count, sum).
#[derive(Clone)]
struct SumCount;

impl fjord::AggregateFunction<(u64, u64), (u64, u64), (u64, u64)> for SumCount {
    fn create_accumulator(&mut self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&mut self, e: (u64, u64), acc: (u64, u64)) -> (u64, u64) {
        (acc.0 + 1, acc.1 + e.1)
    }
    fn get_result(&mut self, acc: &(u64, u64)) -> (u64, u64) {
        *acc
    }
    fn merge(&mut self, a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

struct Expected {
    tumbling: BTreeSet<Tumbling>,
    sliding: BTreeSet<Sliding>,
    timed: BTreeSet<Timed>,
    sessions: BTreeSet<Session>,
}

/// The results computed directly from the input.
fn expected(records: u64) -> Expected {
    let mut tumbling: BTreeMap<(u64, i64), (u64, u64)> = BTreeMap::new();
    let mut sliding: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut timed: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    // Per key, the open session: (start, latest timestamp, count, sum).
    let mut open: BTreeMap<u64, (i64, i64, u64, u64)> = BTreeMap::new();
    let mut sessions = BTreeSet::new();
    for i in (0..records).filter(|&i| in_session(i)) {
        let (k, ts) = (i % KEYS, i as i64);
        match open.get_mut(&k) {
            // Windows that touch merge, as in Flink: [start, last + gap) meets [ts, ts + gap).
            Some(s) if ts <= s.1 + SESSION_GAP => *s = (s.0, ts, s.2 + 1, s.3 + i),
            _ => {
                if let Some((start, last, count, sum)) = open.insert(k, (ts, ts, 1, i)) {
                    sessions.insert((k, start, last + SESSION_GAP, count, sum));
                }
            }
        }
    }
    for (k, (start, last, count, sum)) in open {
        sessions.insert((k, start, last + SESSION_GAP, count, sum));
    }
    for i in 0..records {
        let (k, ts) = (i % KEYS, i as i64);
        let t = tumbling.entry((k, (ts / 1000 + 1) * 1000)).or_default();
        t.0 += 1;
        t.1 += i;
        let mut end = (ts / 500 + 1) * 500;
        while end - 2000 <= ts {
            *sliding.entry((k, end)).or_default() += i;
            end += 500;
        }
        *timed.entry((k, bucket_end(ts))).or_default() += 1;
    }
    Expected {
        tumbling: tumbling
            .into_iter()
            .map(|((k, e), (c, s))| (k, e, c, s))
            .collect(),
        sliding: sliding.into_iter().map(|((k, e), s)| (k, e, s)).collect(),
        timed: timed.into_iter().map(|((k, e), c)| (k, e, c)).collect(),
        sessions,
    }
}

/// Distinct results, checking that no window has two different results (a replayed window
/// may be emitted twice by the at-least-once collect sink, always with the same value).
fn distinct<T: Ord + Clone, W: Ord + std::fmt::Debug>(
    values: Vec<T>,
    window: impl Fn(&T) -> W,
) -> BTreeSet<T> {
    let set: BTreeSet<T> = values.into_iter().collect();
    let windows: BTreeSet<W> = set.iter().map(&window).collect();
    assert_eq!(
        windows.len(),
        set.len(),
        "a window has two different results"
    );
    set
}

#[test]
fn a_windowed_event_time_job_restarted_after_a_failure_gives_the_failure_free_results() {
    let records = 40_000;
    // Failure-free run: exactly the expected results, each once.
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let clean = windowed_job(&env, records, 1e9, None);
    env.execute("clean").unwrap();
    let want = expected(records);
    assert_eq!(
        sorted(clean.tumbling.values()),
        want.tumbling.iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        sorted(clean.sliding.values()),
        want.sliding.iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        sorted(clean.timed.values()),
        want.timed.iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        sorted(clean.sessions.values()),
        want.sessions.iter().cloned().collect::<Vec<_>>()
    );

    // With checkpoints and a failure at record 30,000: the job restarts from the latest
    // checkpoint (window contents, panes, timers and keyed state restored, the source
    // rewound) and every result is the failure-free one.
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(20));
    env.checkpoint_config(|c| c.storage = "memory://windowed-failure".into());
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(10),
    });
    let failing = windowed_job(&env, records, 80_000.0, Some(30_000));
    let result = env.execute("failing").unwrap();
    assert_eq!(result.attempts, 2, "one restart");
    assert!(
        result.completed_checkpoints >= 1,
        "the restart had a checkpoint to restore"
    );
    assert_eq!(
        distinct(failing.tumbling.values(), |t| (t.0, t.1)),
        want.tumbling
    );
    assert_eq!(
        distinct(failing.sliding.values(), |t| (t.0, t.1)),
        want.sliding
    );
    assert_eq!(distinct(failing.timed.values(), |t| (t.0, t.1)), want.timed);
    assert_eq!(
        distinct(failing.sessions.values(), |t| (t.0, t.1)),
        want.sessions
    );
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Waits until `ready` (bounded), triggers a savepoint, then cancels the job.
fn savepoint_and_cancel(
    client: JobClient,
    dir: &std::path::Path,
    ready: impl Fn() -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "the job made no progress");
        std::thread::yield_now();
    }
    let savepoint = loop {
        match client.trigger_savepoint(&file_url(dir)) {
            Ok(p) => break p,
            Err(e) if Instant::now() < deadline && e.to_string().contains("not running") => {
                std::thread::yield_now()
            }
            Err(e) => panic!("{e}"),
        }
    };
    client.cancel();
    let end = client.wait();
    assert!(matches!(end, Err(FjordError::Cancelled)), "{end:?}");
    savepoint
}

#[test]
fn a_windowed_job_moves_through_savepoints_at_parallelism_2_3_1_with_exact_results() {
    let records = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let mut tumbling = Vec::new();
    let mut sliding = Vec::new();
    let mut timed = Vec::new();
    let mut sessions = Vec::new();
    let mut restore: Option<String> = None;
    for (run, parallelism) in [2usize, 3, 1].into_iter().enumerate() {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism);
        if let Some(path) = &restore {
            env.restore_from(path, false);
        }
        let last = run == 2;
        let out = windowed_job(&env, records, if last { 1e9 } else { 20_000.0 }, None);
        if last {
            env.execute("last").unwrap();
        } else {
            let client = env.execute_async("savepointed").unwrap();
            let sub = dir.path().join(format!("run-{run}"));
            std::fs::create_dir_all(&sub).unwrap();
            // Savepoint in mid-stream: after some windows fired, so others hold contents.
            let fired = out.progress.clone();
            let savepoint = savepoint_and_cancel(client, &sub, || {
                fired.load(Ordering::SeqCst) >= KEYS as usize
            });
            let meta = CheckpointMetadata::read(
                &SnapshotStore::open(&savepoint, &StorageOptions::default()).unwrap(),
            )
            .unwrap();
            for uid in ["tumbling", "sliding", "buckets", "sessions"] {
                assert_eq!(meta.operators[uid].parallelism, parallelism, "{uid}");
            }
            restore = Some(savepoint);
        }
        tumbling.extend(out.tumbling.values());
        sliding.extend(out.sliding.values());
        timed.extend(out.timed.values());
        sessions.extend(out.sessions.values());
    }
    let want = expected(records);
    assert_eq!(distinct(tumbling, |t| (t.0, t.1)), want.tumbling);
    assert_eq!(distinct(sliding, |t| (t.0, t.1)), want.sliding);
    assert_eq!(distinct(timed, |t| (t.0, t.1)), want.timed);
    assert_eq!(distinct(sessions, |t| (t.0, t.1)), want.sessions);
}

/// What an instance of [`Counting`] was initialized with: (run, subtask, even-split list,
/// union list).
type Init = (u32, usize, Vec<u64>, Vec<u64>);

/// Every initialization of a [`Counting`] instance.
static INITIALIZED: Mutex<Vec<Init>> = Mutex::new(Vec::new());

/// Counts the records of its instance in a field; at checkpoints the count goes into an
/// even-split list state ("count") and a union list state ("all counts").
#[derive(Clone)]
struct Counting {
    run: u32,
    count: u64,
    list: Option<OperatorListState<u64>>,
    union: Option<OperatorListState<u64>>,
    subtask: usize,
}

impl CheckpointedFunction for Counting {
    fn initialize_state(
        &mut self,
        ctx: &mut FunctionInitializationContext<'_>,
    ) -> Result<(), BoxError> {
        let list = ctx.operator_state.get_list_state::<u64>("count")?;
        let union = ctx
            .operator_state
            .get_union_list_state::<u64>("all counts")?;
        self.subtask = ctx.runtime.subtask_index;
        self.count = list.get().iter().sum();
        INITIALIZED
            .lock()
            .unwrap()
            .push((self.run, self.subtask, list.get(), union.get()));
        self.list = Some(list);
        self.union = Some(union);
        Ok(())
    }
    fn snapshot_state(&mut self, _: &FunctionSnapshotContext) -> Result<(), BoxError> {
        self.list.as_ref().unwrap().update(vec![self.count]);
        self.union.as_ref().unwrap().update(vec![self.count]);
        Ok(())
    }
}

impl MapFunction<u64, (usize, u64)> for Counting {
    fn map(&mut self, _: u64) -> Result<(usize, u64), BoxError> {
        self.count += 1;
        Ok((self.subtask, self.count))
    }
}

#[test]
fn operator_list_state_is_split_evenly_and_union_state_goes_to_every_instance() {
    let records = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let progress = Arc::new(AtomicUsize::new(0));
    let job = |env: &StreamExecutionEnvironment, run: u32, rate: f64| {
        let counted = env
            .from_source(
                GeneratorSource::new(Some(records), |i| i).with_rate(rate),
                "numbers",
            )
            .uid("numbers")
            .set_parallelism(1)
            .rebalance()
            .map_checkpointed(Counting {
                run,
                count: 0,
                list: None,
                union: None,
                subtask: 0,
            })
            .uid("counting");
        let counter = progress.clone();
        counted.for_each(move |_: (usize, u64)| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        counted.collect()
    };
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let _before = job(&env, 1, 20_000.0);
    // Savepoint after both instances counted something.
    let savepoint = savepoint_and_cancel(env.execute_async("two").unwrap(), dir.path(), || {
        progress.load(Ordering::SeqCst) >= 1000
    });

    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3);
    env.restore_from(&savepoint, false);
    let after = job(&env, 2, 1e9);
    env.execute("three").unwrap();

    let mut init: Vec<_> = INITIALIZED
        .lock()
        .unwrap()
        .iter()
        .filter(|i| i.0 == 2)
        .cloned()
        .collect();
    init.sort_by_key(|i| i.1);
    assert_eq!(init.len(), 3);
    // Union: every instance has the counts of both old instances.
    let union = init[0].3.clone();
    assert_eq!(union.len(), 2, "{init:?}");
    assert!(
        union.iter().all(|c| *c > 0),
        "both old instances counted: {init:?}"
    );
    assert!(init.iter().all(|i| i.3 == union), "{init:?}");
    // Even split of the two old elements over three instances: one, one, none, in order.
    assert_eq!(init[0].2, vec![union[0]]);
    assert_eq!(init[1].2, vec![union[1]]);
    assert_eq!(init[2].2, Vec::<u64>::new());
    // Counts continue: the restored counts plus the records after the savepoint make all
    // records, each counted once.
    let mut last: BTreeMap<usize, u64> = BTreeMap::new();
    for (subtask, count) in after.values() {
        let e = last.entry(subtask).or_default();
        *e = (*e).max(count);
    }
    for i in &init {
        last.entry(i.1).or_insert(i.2.iter().sum());
    }
    assert_eq!(last.values().sum::<u64>(), records);
}
