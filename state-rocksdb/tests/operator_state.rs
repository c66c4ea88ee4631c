//! Every keyed state of an operator in the configured backend: window contents (tumbling with
//! and without an evictor, sliding panes, merging session windows), rolling aggregates,
//! interval join buffers and keyed process state with timers give, on RocksDB, the heap
//! backend's output record for
//! record; savepoints move between the two backends at other parallelisms, and a RocksDB job
//! restarted from incremental checkpoints after a failure gives the failure-free results.

use fjord::checkpoint::RestartStrategy;
use fjord::joins::IntervalJoinContext;
use fjord::sinks::CollectedOutput;
use fjord::sources::GeneratorSource;
use fjord::state::{MapStateDescriptor, StateBackendKind};
use fjord::time::WatermarkStrategy;
use fjord::windows::{
    CountEvictor, EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow,
    TumblingEventTimeWindows, WindowContext,
};
use fjord::{
    AggregateFunction, BoxError, FjordError, JobClient, KeyedProcessContext, KeyedProcessFunction,
    MapFunction, RuntimeContext, StreamExecutionEnvironment,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEYS: u64 = 11;

/// Event time of record `i`: `i` ms, with a 2 s pause after every 3,000 records, so session
/// windows (gap 300 ms) close and new ones start.
fn event_time(i: u64) -> i64 {
    (i + 2000 * (i / 3000)) as i64
}

/// (key, window end, count, sum) of the tumbling windows and session windows.
type Windowed = (u64, i64, u64, u64);
/// (key, running sum) of the rolling aggregate.
type Rolling = (u64, u64);
/// (key, bucket end, count) of the keyed process function.
type Timed = (u64, i64, u64);
/// (key, left record, right record) of the interval join.
type Joined = (u64, u64, u64);

struct Outputs {
    progress: Arc<AtomicUsize>,
    tumbling: CollectedOutput<Windowed>,
    evicting: CollectedOutput<Windowed>,
    sliding: CollectedOutput<(u64, i64, u64)>,
    sessions: CollectedOutput<Windowed>,
    rolling: CollectedOutput<Rolling>,
    timed: CollectedOutput<Timed>,
    joined: CollectedOutput<Joined>,
}

/// All outputs of one run, sorted, for record-for-record comparison.
#[derive(Debug, PartialEq, Eq, Default)]
struct Results {
    tumbling: Vec<Windowed>,
    evicting: Vec<Windowed>,
    sliding: Vec<(u64, i64, u64)>,
    sessions: Vec<Windowed>,
    rolling: Vec<Rolling>,
    timed: Vec<Timed>,
    joined: Vec<Joined>,
}

impl Results {
    fn add(&mut self, out: &Outputs) {
        self.tumbling.extend(out.tumbling.values());
        self.evicting.extend(out.evicting.values());
        self.sliding.extend(out.sliding.values());
        self.sessions.extend(out.sessions.values());
        self.rolling.extend(out.rolling.values());
        self.timed.extend(out.timed.values());
        self.joined.extend(out.joined.values());
    }

    fn sorted(mut self) -> Self {
        self.tumbling.sort();
        self.evicting.sort();
        self.sliding.sort();
        self.sessions.sort();
        self.rolling.sort();
        self.timed.sort();
        self.joined.sort();
        self
    }

    /// Distinct results (a replayed record may be emitted twice by the at-least-once collect
    /// sink, always with the same value).
    fn distinct(self) -> Self {
        fn d<T: Ord>(v: Vec<T>) -> Vec<T> {
            v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
        }
        Results {
            tumbling: d(self.tumbling),
            evicting: d(self.evicting),
            sliding: d(self.sliding),
            sessions: d(self.sessions),
            rolling: d(self.rolling),
            timed: d(self.timed),
            joined: d(self.joined),
        }
    }
}

/// Counts and sums a session's records.
#[derive(Clone)]
struct CountSum;

impl AggregateFunction<(u64, u64), (u64, u64), (u64, u64)> for CountSum {
    fn create_accumulator(&mut self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&mut self, v: (u64, u64), acc: (u64, u64)) -> (u64, u64) {
        (acc.0 + 1, acc.1 + v.1)
    }
    fn get_result(&mut self, acc: &(u64, u64)) -> (u64, u64) {
        *acc
    }
    fn merge(&mut self, a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

/// Counts records per key and 5 s bucket of event time in map state; an event-time timer
/// at the bucket's end emits and removes the count.
#[derive(Clone, Default)]
struct BucketCount {
    rt: Option<RuntimeContext>,
}

fn buckets() -> MapStateDescriptor<i64, u64> {
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
        let state = self
            .rt
            .as_ref()
            .ok_or("not opened")?
            .get_map_state(&buckets())?;
        let end = bucket_end(event_time(i));
        state.put(end, state.get(&end).unwrap_or(0) + 1);
        ctx.timer_service().register_event_time_timer(end - 1);
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedProcessContext<'_, u64, Timed>,
    ) -> Result<(), BoxError> {
        let state = self
            .rt
            .as_ref()
            .ok_or("not opened")?
            .get_map_state(&buckets())?;
        let key = *ctx.current_key();
        ctx.collect((key, t + 1, state.get(&(t + 1)).unwrap_or(0)));
        state.remove(&(t + 1));
        Ok(())
    }
}

/// Passes records through and fails the first attempt at record `at` (if any).
#[derive(Clone)]
struct FailOnce {
    at: Option<u64>,
    attempt: u32,
    seen: u64,
}

impl MapFunction<(u64, u64), (u64, u64)> for FailOnce {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.attempt = ctx.attempt_number;
        self.seen = 0;
        Ok(())
    }
    fn map(&mut self, v: (u64, u64)) -> Result<(u64, u64), BoxError> {
        self.seen += 1;
        if self.attempt == 0 && self.at == Some(self.seen) {
            return Err(format!("injected failure at record {}", self.seen).into());
        }
        Ok(v)
    }
}

fn windowed(key: &u64, ctx: &mut WindowContext<'_, TimeWindow, Windowed>, els: Vec<(u64, u64)>) {
    let sum = els.iter().map(|e| e.1).sum();
    let end = ctx.window().end;
    ctx.collect((*key, end, els.len() as u64, sum));
}

/// Record `i` is `(i % KEYS, i)` at [`event_time`]`(i)`, from a parallelism-1 source, read by
/// seven keyed operators at the environment's parallelism.
fn job(env: &StreamExecutionEnvironment, records: u64, rate: f64, fail_at: Option<u64>) -> Outputs {
    let events = env
        .from_source(
            GeneratorSource::new(Some(records), |i| (i % KEYS, i)).with_rate(rate),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(u64, u64), _| event_time(e.1)),
        )
        .set_parallelism(1)
        .map(FailOnce {
            at: fail_at,
            attempt: 0,
            seen: 0,
        })
        .uid("fail")
        .set_parallelism(1);
    let input = events.key_by(|e: &(u64, u64)| e.0);
    let tumbling = input
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .process(windowed)
        .uid("tumbling");
    let progress = Arc::new(AtomicUsize::new(0));
    let counter = progress.clone();
    tumbling.for_each(move |_: Windowed| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let tumbling = tumbling.collect();
    let evicting = input
        .window(TumblingEventTimeWindows::of(Duration::from_millis(700)))
        .evictor(CountEvictor::of(5))
        .process(windowed)
        .uid("evicting")
        .collect();
    let sliding = input
        .window(SlidingEventTimeWindows::of(
            Duration::from_secs(2),
            Duration::from_millis(500),
        ))
        .reduce_with_process(
            |a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1),
            |key: &u64,
             ctx: &mut WindowContext<'_, TimeWindow, (u64, i64, u64)>,
             r: Vec<(u64, u64)>| {
                let end = ctx.window().end;
                ctx.collect((*key, end, r[0].1));
            },
        )
        .uid("sliding")
        .collect();
    let sessions = input
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            300,
        )))
        .aggregate_with_process(
            CountSum,
            |key: &u64, ctx: &mut WindowContext<'_, TimeWindow, Windowed>, r: Vec<(u64, u64)>| {
                let end = ctx.window().end;
                ctx.collect((*key, end, r[0].0, r[0].1));
            },
        )
        .uid("sessions")
        .collect();
    let rolling = input.sum::<1>().uid("rolling").collect();
    let timed = input
        .process(BucketCount::default())
        .uid("buckets")
        .collect();
    // Every record with the records of its key divisible by 3 within 50 ms of event time
    // either way (about 3 each): both sides stay buffered for 50 ms of event time, so a
    // restore that lost them would lose the pairs across it.
    let thirds = events
        .filter(|e: &(u64, u64)| e.1.is_multiple_of(3))
        .uid("thirds")
        .key_by(|e: &(u64, u64)| e.0);
    let joined = input
        .interval_join(&thirds)
        .between_millis(-50, 50)
        .process(
            |l: &(u64, u64), r: &(u64, u64), ctx: &mut IntervalJoinContext<'_, Joined>| {
                ctx.collect((l.0, l.1, r.1))
            },
        )
        .uid("interval")
        .collect();
    Outputs {
        progress,
        tumbling,
        evicting,
        sliding,
        sessions,
        rolling,
        timed,
        joined,
    }
}

fn backend(kind: &str, local: &Path) -> StateBackendKind {
    match kind {
        "heap" => StateBackendKind::Heap,
        _ => StateBackendKind::RocksDb {
            dir: Some(local.to_path_buf()),
        },
    }
}

/// Names of the column families of every RocksDB instance under `dir`.
fn column_families(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.join("CURRENT").exists() {
            if let Ok(names) = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path) {
                out.extend(names);
            }
        } else if path.is_dir() {
            out.extend(column_families(&path));
        }
    }
    out
}

fn run_to_end(kind: &str, records: u64) -> Results {
    fjord_rocksdb::register();
    let local = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.set_state_backend(backend(kind, local.path()));
    let out = job(&env, records, 1e9, None);
    env.execute(&format!("all state on {kind}")).unwrap();
    let mut r = Results::default();
    r.add(&out);
    r.sorted()
}

#[test]
fn every_keyed_state_on_rocksdb_gives_the_heap_results_record_for_record() {
    let records = 30_000;
    let heap = run_to_end("heap", records);
    let rocks = run_to_end("rocksdb", records);
    assert!(
        !heap.tumbling.is_empty()
            && !heap.evicting.is_empty()
            && !heap.sliding.is_empty()
            && !heap.sessions.is_empty()
            && !heap.timed.is_empty(),
        "every operator emitted"
    );
    // Within 50 ms of a record are 9 records of its key (one every 11 ms), itself included,
    // 3 of them divisible by 3 (fewer at the edges of the input and around the pauses).
    let per_record = heap.joined.len() as f64 / records as f64;
    assert!(
        (2.5..=3.5).contains(&per_record),
        "{} joined pairs for {records} records",
        heap.joined.len()
    );
    assert_eq!(heap.rolling.len() as u64, records, "one update per record");
    // Sessions: 10 pauses split each key's input into 10 sessions.
    assert_eq!(heap.sessions.len() as u64, KEYS * records.div_ceil(3000));
    assert_eq!(rocks, heap);
}

/// Every file under `dir`, read.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push(bytes);
        }
    }
    out
}

#[test]
fn window_contents_rolling_aggregates_and_panes_are_states_of_the_rocksdb_backend() {
    fjord_rocksdb::register();
    let local = tempfile::tempdir().unwrap();
    let savepoints = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.set_state_backend(backend("rocksdb", local.path()));
    let out = job(&env, 1_000_000, 50_000.0, None);
    let client = env.execute_async("column families").unwrap();
    let names = [
        "_fjord.windows",
        "_fjord.panes",
        "_fjord.rolling",
        "_fjord.interval_join",
    ];
    let wanted: BTreeSet<String> = names.iter().map(|n| format!("s:{n}")).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = BTreeSet::new();
    while !wanted.is_subset(&seen) {
        assert!(
            Instant::now() < deadline && !client.is_finished(),
            "column families seen: {seen:?}"
        );
        // Look again once the job made progress (a window fired).
        let fired = out.progress.load(Ordering::SeqCst);
        while out.progress.load(Ordering::SeqCst) == fired && Instant::now() < deadline {
            std::thread::yield_now();
        }
        seen = column_families(local.path());
    }
    // The savepoint holds the contents as entries of those states of the backend (the
    // operators' own parts of the snapshot are empty).
    let fired = out.progress.clone();
    let savepoint = savepoint_and_cancel(client, savepoints.path(), || {
        fired.load(Ordering::SeqCst) >= 3 * KEYS as usize
    });
    let contents = files(Path::new(savepoint.trim_start_matches("file://")));
    for name in names {
        assert!(
            contents
                .iter()
                .any(|f| f.windows(name.len()).any(|w| w == name.as_bytes())),
            "no entry of {name} in the savepoint {savepoint}"
        );
    }
}

/// Waits until `ready` (bounded), triggers a savepoint, then cancels the job.
fn savepoint_and_cancel(client: JobClient, dir: &Path, ready: impl Fn() -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "the job made no progress");
        std::thread::yield_now();
    }
    let url = format!("file://{}", dir.display());
    let savepoint = loop {
        match client.trigger_savepoint(&url) {
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

/// Runs the job through savepoints, switching backend and parallelism at each step.
fn through_savepoints(steps: &[(&str, usize)], records: u64) -> Results {
    fjord_rocksdb::register();
    let dir = tempfile::tempdir().unwrap();
    let mut results = Results::default();
    let mut restore: Option<String> = None;
    for (run, (kind, parallelism)) in steps.iter().enumerate() {
        let local = tempfile::tempdir().unwrap();
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(*parallelism);
        env.set_state_backend(backend(kind, local.path()));
        if let Some(path) = &restore {
            env.restore_from(path, false);
        }
        let last = run + 1 == steps.len();
        let out = job(&env, records, if last { 1e9 } else { 20_000.0 }, None);
        if last {
            env.execute("last").unwrap();
        } else {
            let client = env.execute_async("savepointed").unwrap();
            let sub = dir.path().join(format!("run-{run}"));
            std::fs::create_dir_all(&sub).unwrap();
            // In mid-stream: some windows fired, others hold contents.
            let fired = out.progress.clone();
            restore = Some(savepoint_and_cancel(client, &sub, || {
                fired.load(Ordering::SeqCst) >= KEYS as usize
            }));
        }
        results.add(&out);
    }
    results.distinct()
}

#[test]
fn savepoints_move_every_state_between_heap_and_rocksdb_at_other_parallelisms() {
    let records = 40_000;
    let want = run_to_end("heap", records).distinct();
    let a = through_savepoints(&[("heap", 2), ("rocksdb", 3), ("heap", 1)], records);
    assert_eq!(a, want, "heap -> rocksdb -> heap");
    let b = through_savepoints(&[("rocksdb", 2), ("heap", 3), ("rocksdb", 1)], records);
    assert_eq!(b, want, "rocksdb -> heap -> rocksdb");
}

#[test]
fn a_rocksdb_job_restarted_from_incremental_checkpoints_gives_the_failure_free_results() {
    fjord_rocksdb::register();
    let records = 40_000;
    let want = run_to_end("heap", records).distinct();
    let local = tempfile::tempdir().unwrap();
    let storage = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.set_state_backend(backend("rocksdb", local.path()));
    env.enable_checkpointing(Duration::from_millis(50));
    env.checkpoint_config(|c| c.storage = format!("file://{}", storage.path().display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(5),
    });
    // Slow enough that checkpoints complete before the failure at record 25,000.
    let out = job(&env, records, 20_000.0, Some(25_000));
    let result = env.execute("restarted on rocksdb").unwrap();
    assert_eq!(result.attempts, 2, "one injected failure, one restart");
    assert!(result.completed_checkpoints > 0);
    let mut got = Results::default();
    got.add(&out);
    assert_eq!(got.distinct(), want);
}

/// Registers several event-time timers per record, deletes some of them again, and emits
/// (key, time) when one fires: thousands of timers per key group, so the RocksDB timer queue
/// refills its cache of each key group's first timers many times.
#[derive(Clone, Default)]
struct ManyTimers;

impl KeyedProcessFunction<u64, (u64, u64), (u64, i64)> for ManyTimers {
    fn process_element(
        &mut self,
        (_, i): (u64, u64),
        ctx: &mut KeyedProcessContext<'_, u64, (u64, i64)>,
    ) -> Result<(), BoxError> {
        let now = i as i64;
        let mut timers = ctx.timer_service();
        for d in [1 + (i * 7919) % 3000, 500, 2500] {
            timers.register_event_time_timer(now + d as i64);
        }
        if i % 3 == 0 {
            timers.delete_event_time_timer(now + 500);
        }
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedProcessContext<'_, u64, (u64, i64)>,
    ) -> Result<(), BoxError> {
        let key = *ctx.current_key();
        ctx.collect((key, t));
        Ok(())
    }
}

fn timers_run(kind: &str, records: u64) -> Vec<(u64, i64)> {
    fjord_rocksdb::register();
    let local = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.set_state_backend(backend(kind, local.path()));
    let fired = env
        .from_source(
            GeneratorSource::new(Some(records), |i| (i % 5000, i)),
            "numbers",
        )
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(u64, u64), _| e.1 as i64),
        )
        .set_parallelism(1)
        .key_by(|e: &(u64, u64)| e.0)
        .process(ManyTimers)
        .collect();
    env.execute(&format!("timers on {kind}")).unwrap();
    let mut v = fired.values();
    v.sort();
    v
}

#[test]
fn many_timers_per_key_group_fire_on_rocksdb_as_on_the_heap() {
    let records = 60_000;
    let heap = timers_run("heap", records);
    // Every record's timers fire at the end of input, except deleted ones.
    assert!(heap.len() as u64 > 2 * records, "{}", heap.len());
    let rocks = timers_run("rocksdb", records);
    assert_eq!(rocks.len(), heap.len());
    assert_eq!(rocks, heap);
}

/// Sliding windows' panes with elements out of order: an element whose window ends before the
/// key's pending timer moves that timer earlier while the key's panes are changed in place.
/// On RocksDB the timers live in the same backend as the panes (CI of Nexmark q5 on RocksDB
/// found the timer registered while the panes were still borrowed: a panic). The results
/// must equal the heap's.
#[test]
fn sliding_panes_with_out_of_order_elements_on_rocksdb_give_the_heap_results() {
    fjord_rocksdb::register();
    let run = |kind: &str| {
        let local = tempfile::tempdir().unwrap();
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.set_state_backend(backend(kind, local.path()));
        // Record i at i ms, every third one 400 ms late: within the 500 ms bound, so none is
        // dropped, and many end a window before the key's pending timer.
        let out = env
            .from_source(
                GeneratorSource::new(Some(6_000), |i| (i % KEYS, i)).with_rate(1e9),
                "numbers",
            )
            .uid("numbers")
            .set_parallelism(1)
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(500))
                    .with_timestamp_assigner(|e: &(u64, u64), _| {
                        e.1 as i64 - if e.1.is_multiple_of(3) { 400 } else { 0 }
                    }),
            )
            .set_parallelism(1)
            .key_by(|e: &(u64, u64)| e.0)
            .window(SlidingEventTimeWindows::of(
                Duration::from_millis(300),
                Duration::from_millis(100),
            ))
            .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
            .uid("sliding")
            .collect();
        env.execute(&format!("sliding panes on {kind}")).unwrap();
        let mut v = out.values();
        v.sort();
        v
    };
    let heap = run("heap");
    assert!(heap.len() > 500, "{} windows", heap.len());
    assert_eq!(run("rocksdb"), heap);
}
