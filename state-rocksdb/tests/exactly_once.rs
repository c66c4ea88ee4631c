//! The exactly-once failure-injection scenario of engine/tests/exactly_once_sink.rs with the
//! count kept in RocksDB keyed state: committed output equals a failure-free run, record for
//! record, with incremental checkpoints restored after each injected failure. The same for an
//! interval join, whose buffers are RocksDB state: a pair of a record before the restored
//! checkpoint and one after it is committed only if the restore brought the first back. And
//! for list states, whose appends RocksDB merges without reading the list.

use fjord::checkpoint::RestartStrategy;
use fjord::joins::IntervalJoinContext;
use fjord::sinks::ExactlyOnceFileSink;
use fjord::sources::GeneratorSource;
use fjord::state::StateBackendKind;
use fjord::storage::StorageOptions;
use fjord::time::WatermarkStrategy;
use fjord::{BoxError, MapFunction, RuntimeContext, StreamExecutionEnvironment};
use std::time::Duration;

const KEYS: u64 = 13;

#[derive(Clone)]
struct FailAt {
    points: Vec<u64>,
    attempt: usize,
    seen: u64,
}

impl MapFunction<(u64, u64), (u64, u64)> for FailAt {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.attempt = ctx.attempt_number as usize;
        self.seen = 0;
        Ok(())
    }
    fn map(&mut self, v: (u64, u64)) -> Result<(u64, u64), BoxError> {
        self.seen += 1;
        if self.points.get(self.attempt) == Some(&self.seen) {
            return Err(format!("injected failure in attempt {}", self.attempt).into());
        }
        Ok(v)
    }
}

mod common;
use common::Count;

/// A job's environment on RocksDB: its local directory, the exactly-once sink's directory and
/// URL, incremental checkpoints every 15 ms into memory, up to ten restarts 5 ms apart.
struct RocksDbJob {
    env: StreamExecutionEnvironment,
    url: String,
    _out: tempfile::TempDir,
    _local: tempfile::TempDir,
}

impl RocksDbJob {
    fn new(parallelism: usize, storage: &str) -> Self {
        fjord_rocksdb::register();
        let out = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        let url = format!("file://{}", out.path().display());
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism);
        env.set_state_backend(StateBackendKind::RocksDb {
            dir: Some(local.path().to_path_buf()),
        });
        env.enable_checkpointing(Duration::from_millis(15));
        let storage = format!("memory://{storage}-{}", rand::random::<u64>());
        env.checkpoint_config(|c| c.storage = storage);
        env.set_restart_strategy(RestartStrategy::FixedDelay {
            attempts: 10,
            delay: Duration::from_millis(5),
        });
        RocksDbJob {
            env,
            url,
            _out: out,
            _local: local,
        }
    }

    /// The sink's committed lines, sorted.
    fn committed(&self) -> Vec<String> {
        let mut lines =
            ExactlyOnceFileSink::read_committed(&self.url, &StorageOptions::default()).unwrap();
        lines.sort();
        lines
    }
}

fn run(records: u64, failures: Vec<u64>, parallelism: usize) -> (Vec<String>, u32, u64) {
    let job = RocksDbJob::new(parallelism, "rocksdb-eo");
    let (env, url) = (&job.env, &job.url);
    env.from_source(
        GeneratorSource::new(Some(records), |i| (i % KEYS, 1u64)).with_rate(100_000.0),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .rebalance()
    .map(FailAt {
        points: failures,
        attempt: 0,
        seen: 0,
    })
    .uid("fail")
    .key_by(|t: &(u64, u64)| t.0)
    .process(Count::default())
    .uid("counter")
    .sink_to_transactional(ExactlyOnceFileSink::new(url).with_part_size(4096), "files")
    .uid("files");
    let result = env.execute("exactly once on rocksdb").unwrap();
    (
        job.committed(),
        result.attempts,
        result.completed_checkpoints,
    )
}

fn expected(records: u64) -> Vec<String> {
    let mut v: Vec<String> = (0..KEYS)
        .flat_map(|k| {
            let n = records / KEYS + u64::from(k < records % KEYS);
            (1..=n).map(move |c| format!("({k},{c})"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn repeated_failures_commit_each_update_exactly_once_with_rocksdb_state() {
    let records = 6_000;
    // Each attempt fails at its 300th record: an attempt restores from a position at most
    // 300 records per earlier attempt into the input, so every failure point is reached
    // however often checkpoints complete.
    let (lines, attempts, _) = run(records, vec![300, 300, 300], 2);
    assert_eq!(attempts, 4, "three injected failures, three restarts");
    assert_eq!(lines, expected(records));
}

/// Record `i` of the interval join scenario is `(i % KEYS, i)` at event time `i` ms; each is
/// joined with the records of its key divisible by 3 within 50 ms either way.
fn run_interval_join(records: u64, failures: Vec<u64>) -> (Vec<String>, u32, u64) {
    let job = RocksDbJob::new(2, "rocksdb-join");
    let (env, url) = (&job.env, &job.url);
    let events = env
        .from_source(
            GeneratorSource::new(Some(records), |i| (i % KEYS, i)).with_rate(20_000.0),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(u64, u64), _| e.1 as i64),
        )
        .set_parallelism(1)
        .map(FailAt {
            points: failures,
            attempt: 0,
            seen: 0,
        })
        .uid("fail")
        .set_parallelism(1);
    let thirds = events
        .filter(|e: &(u64, u64)| e.1.is_multiple_of(3))
        .uid("thirds")
        .key_by(|e: &(u64, u64)| e.0);
    events
        .key_by(|e: &(u64, u64)| e.0)
        .interval_join(&thirds)
        .between_millis(-50, 50)
        .process(
            |l: &(u64, u64), r: &(u64, u64), ctx: &mut IntervalJoinContext<'_, String>| {
                ctx.collect(format!("{} {} {}", l.0, l.1, r.1))
            },
        )
        .uid("join")
        .sink_to_transactional(ExactlyOnceFileSink::new(url).with_part_size(4096), "files")
        .uid("files");
    let result = env.execute("interval join on rocksdb").unwrap();
    (
        job.committed(),
        result.attempts,
        result.completed_checkpoints,
    )
}

fn expected_pairs(records: u64) -> Vec<String> {
    let mut v: Vec<String> = (0..records)
        .flat_map(|i| {
            (i.saturating_sub(50)..=(i + 50).min(records - 1))
                .filter(move |j| j % KEYS == i % KEYS && j.is_multiple_of(3))
                .map(move |j| format!("{} {i} {j}", i % KEYS))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_interval_join_restored_from_incremental_checkpoints_commits_every_pair_exactly_once() {
    let records = 8_000;
    // Each attempt fails at its 2,000th record (100 ms at the source's rate, several
    // checkpoint intervals), so the restarts restore join buffers from checkpoints.
    let (lines, attempts, checkpoints) = run_interval_join(records, vec![2_000, 2_000]);
    assert_eq!(attempts, 3, "two injected failures, two restarts");
    assert!(checkpoints > 0, "no checkpoint completed");
    let want = expected_pairs(records);
    assert!(want.len() as u64 > 2 * records, "{} pairs", want.len());
    assert_eq!(lines.len(), want.len(), "pairs committed vs expected");
    assert_eq!(lines, want);
}

/// Appends each record's number to its key's `ListState` (in RocksDB: merges, the list never
/// read) and, at every 40th record of a key, reads the list and emits `(key, count, sum)`; the
/// lists are never cleared, so they span checkpoints and restores.
#[derive(Clone, Default)]
struct Appends {
    list: Option<fjord::state::ListState<u64>>,
    count: Option<fjord::state::ValueState<u64>>,
}

impl fjord::KeyedProcessFunction<u64, (u64, u64), String> for Appends {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.list = Some(ctx.get_list_state(&fjord::state::ListStateDescriptor::new("numbers"))?);
        self.count = Some(ctx.get_state(&fjord::state::ValueStateDescriptor::new("count"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        (key, i): (u64, u64),
        ctx: &mut fjord::KeyedProcessContext<'_, u64, String>,
    ) -> Result<(), BoxError> {
        let (list, count) = (self.list.as_ref().unwrap(), self.count.as_ref().unwrap());
        list.add(i);
        let n = count.value().unwrap_or(0) + 1;
        count.update(n);
        if n.is_multiple_of(40) {
            let numbers = list.get();
            assert_eq!(
                numbers.len() as u64,
                n,
                "key {key}: the list has every append"
            );
            ctx.collect(format!("{key} {n} {}", numbers.iter().sum::<u64>()));
        }
        Ok(())
    }
}

#[test]
fn list_appends_merged_in_rocksdb_survive_incremental_restores_exactly_once() {
    let records = 8_000u64;
    let job = RocksDbJob::new(2, "rocksdb-lists");
    let (env, url) = (&job.env, &job.url);
    env.from_source(
        GeneratorSource::new(Some(records), |i| (i % KEYS, i)).with_rate(20_000.0),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .map(FailAt {
        points: vec![2_000, 2_000],
        attempt: 0,
        seen: 0,
    })
    .uid("fail")
    .set_parallelism(1) // one upstream: each key's numbers arrive in order
    .key_by(|t: &(u64, u64)| t.0)
    .process(Appends::default())
    .uid("appends")
    .sink_to_transactional(ExactlyOnceFileSink::new(url).with_part_size(4096), "files")
    .uid("files");
    let result = env.execute("list appends on rocksdb").unwrap();
    assert_eq!(result.attempts, 3, "two injected failures, two restarts");
    assert!(result.completed_checkpoints > 0, "no checkpoint completed");
    let lines = job.committed();
    // Key k's numbers are k, k + KEYS, k + 2 KEYS, ...: after n of them their sum is
    // n k + KEYS n (n - 1) / 2.
    let mut want: Vec<String> = (0..KEYS)
        .flat_map(|k| {
            let total = records / KEYS + u64::from(k < records % KEYS);
            (1..=total)
                .filter(|n| n % 40 == 0)
                .map(move |n| format!("{k} {n} {}", n * k + KEYS * n * (n - 1) / 2))
        })
        .collect();
    want.sort();
    assert_eq!(want.len(), 13 * 15, "the scenario's size");
    assert_eq!(lines, want);
}
