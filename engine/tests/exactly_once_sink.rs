//! The exactly-once file sink under failures: committed output equals a failure-free run.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::{CheckpointingMode, RestartStrategy};
use fjord::sinks::ExactlyOnceFileSink;
use fjord::sources::GeneratorSource;
use fjord::storage::StorageOptions;
use std::time::Duration;

mod failure_support;
use failure_support::FailAt;

const KEYS: u64 = 13;

/// Runs the counting job into the exactly-once file sink and returns the committed lines,
/// sorted, and the number of attempts.
fn run(
    records: u64,
    failures: Vec<u64>,
    mode: CheckpointingMode,
    parallelism: usize,
) -> (Vec<String>, u32) {
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env.enable_checkpointing(Duration::from_millis(15));
    env.checkpoint_config(|c| {
        c.mode = mode;
        c.storage = format!("memory://eo-sink-{}", rand_suffix());
    });
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 10,
        delay: Duration::from_millis(5),
    });
    env.from_source(
        GeneratorSource::new(Some(records), |i| (i % KEYS, 1u64)).with_rate(100_000.0),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .rebalance()
    .map(FailAt::at(failures))
    .uid("fail")
    .key_by(|t: &(u64, u64)| t.0)
    .sum::<1>()
    .uid("counter")
    .sink_to_transactional(ExactlyOnceFileSink::new(&url).with_part_size(4096), "files")
    .uid("files");
    let result = env.execute("exactly once").unwrap();
    let mut lines = ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default()).unwrap();
    lines.sort();
    let leftovers: Vec<String> = std::fs::read_dir(out.path().join(".pending"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        leftovers,
        Vec::<String>::new(),
        "no pending parts remain after the job finished"
    );
    (lines, result.attempts)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::process::id() as u64 * 1000 + N.fetch_add(1, Ordering::SeqCst)
}

/// Every key's running count, 1..=n: the output of a failure-free run.
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
fn without_failures_every_update_is_committed_once() {
    let (lines, attempts) = run(6_000, vec![], CheckpointingMode::ExactlyOnce, 2);
    assert_eq!(attempts, 1);
    assert_eq!(lines, expected(6_000));
}

#[test]
fn repeated_failures_at_different_points_commit_each_update_exactly_once() {
    let records = 20_000;
    // Points count the records each of the two `fail` subtasks saw in that attempt (rebalance
    // splits evenly). Even restoring from the start, 20,000 records reach every point, so
    // each attempt but the last fails once.
    let (lines, attempts) = run(
        records,
        vec![2_000, 1_500, 1_000, 2_500],
        CheckpointingMode::ExactlyOnce,
        2,
    );
    assert_eq!(attempts, 5, "four injected failures, four restarts");
    assert_eq!(
        lines.len() as u64,
        records,
        "one committed line per input record"
    );
    assert_eq!(lines, expected(records));
}

#[test]
fn a_failure_at_parallelism_three_also_recovers_exactly() {
    let records = 12_000;
    let (lines, attempts) = run(records, vec![2_000], CheckpointingMode::ExactlyOnce, 3);
    assert_eq!(attempts, 2);
    assert_eq!(lines, expected(records));
}

/// Builds numbers 0..records (a rate-limited source at parallelism 1) into the exactly-once
/// file sink at `url`, at default parallelism `parallelism`.
fn numbers_into_files(
    env: &StreamExecutionEnvironment,
    records: u64,
    rate: f64,
    parallelism: usize,
    url: &str,
) {
    env.set_parallelism(parallelism);
    env.from_source(
        GeneratorSource::new(Some(records), |i| i).with_rate(rate),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .rebalance()
    .map(|i: u64| i * 10)
    .uid("times ten")
    .sink_to_transactional(ExactlyOnceFileSink::new(url).with_part_size(512), "files")
    .uid("files");
}

#[test]
fn the_file_sink_rescales_through_a_savepoint_and_commits_every_record_once() {
    const RECORDS: u64 = 20_000;
    let out = tempfile::tempdir().unwrap();
    let savepoints = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    for (from, to) in [(2, 3), (3, 1)] {
        std::fs::remove_dir_all(out.path()).unwrap();
        std::fs::create_dir_all(out.path()).unwrap();
        // First run at `from`, stopped mid-stream with a savepoint (pending parts of every
        // instance are in it).
        let env = StreamExecutionEnvironment::new();
        env.enable_checkpointing(Duration::from_millis(50));
        env.checkpoint_config(|c| c.storage = format!("memory://eo-rescale-{}", rand_suffix()));
        numbers_into_files(&env, RECORDS, 20_000.0, from, &url);
        let client = env.execute_async("before").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while client.checkpoint_history().0.len() < 2 {
            assert!(std::time::Instant::now() < deadline, "no checkpoints");
            std::thread::sleep(Duration::from_millis(10));
        }
        let savepoint = client
            .stop_with_savepoint(&format!("file://{}", savepoints.path().display()), false)
            .unwrap();
        let before = ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default())
            .unwrap()
            .len() as u64;
        assert!(
            before < RECORDS,
            "the first run finished before the savepoint"
        );

        // Resumed at `to` until the end.
        let env = StreamExecutionEnvironment::new();
        env.enable_checkpointing(Duration::from_millis(50));
        env.checkpoint_config(|c| c.storage = format!("memory://eo-rescale-{}", rand_suffix()));
        env.restore_from(&savepoint, false);
        numbers_into_files(&env, RECORDS, 1e9, to, &url);
        env.execute("after").unwrap();

        let mut lines: Vec<u64> =
            ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default())
                .unwrap()
                .iter()
                .map(|l| l.parse().unwrap())
                .collect();
        lines.sort_unstable();
        let expected: Vec<u64> = (0..RECORDS).map(|i| i * 10).collect();
        assert_eq!(lines.len(), expected.len(), "{from} -> {to}: record count");
        assert_eq!(lines, expected, "{from} -> {to}: every record exactly once");
    }
}

/// What each writer of [`ProbeSink`] saw: its subtask, the restored checkpoint ID its context
/// gave, and how many old instances' states were restored into it.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(usize, Option<u64>, usize)>>>;

/// A transactional sink that only records what its writers were told at creation.
struct ProbeSink(Seen);

struct ProbeWriter {
    seen: Seen,
    index: usize,
}

impl fjord::sinks::TransactionalSink<u64> for ProbeSink {
    fn create_writer(
        &self,
        ctx: &fjord::RuntimeContext,
    ) -> Result<Box<dyn fjord::sinks::TransactionalWriter<u64>>, fjord::BoxError> {
        let mut seen = self.0.lock().unwrap();
        seen.push((ctx.subtask_index, ctx.restored_checkpoint_id(), 0));
        Ok(Box::new(ProbeWriter {
            seen: self.0.clone(),
            index: seen.len() - 1,
        }))
    }
}

impl fjord::sinks::TransactionalWriter<u64> for ProbeWriter {
    fn write(&mut self, _: u64, _: Option<fjord::Timestamp>) -> Result<(), fjord::BoxError> {
        Ok(())
    }
    fn pre_commit(&mut self, _: u64) -> Result<Vec<u8>, fjord::BoxError> {
        Ok(Vec::new())
    }
    fn commit(&mut self, _: &[Vec<u8>]) -> Result<(), fjord::BoxError> {
        Ok(())
    }
    fn snapshot(&mut self) -> Result<Vec<u8>, fjord::BoxError> {
        Ok(vec![1])
    }
    fn restore(&mut self, _: &[u8]) -> Result<(), fjord::BoxError> {
        self.seen.lock().unwrap()[self.index].2 += 1;
        Ok(())
    }
}

/// Restored at a higher parallelism, every writer is told the savepoint's checkpoint ID —
/// also the one that receives no state of its own (Flink's `getRestoredCheckpointId`, which
/// the Kafka sink numbers its transactional ids from); a fresh job's writers are told none.
#[test]
fn writers_restored_at_a_higher_parallelism_know_the_restored_checkpoint() {
    let savepoints = tempfile::tempdir().unwrap();
    let build = |env: &StreamExecutionEnvironment, parallelism: usize, rate: f64, seen: &Seen| {
        env.set_parallelism(parallelism);
        env.from_source(
            GeneratorSource::new(Some(1_000_000), |i| i).with_rate(rate),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .rebalance()
        .sink_to_transactional(ProbeSink(seen.clone()), "probe")
        .uid("probe");
    };
    let before: Seen = Default::default();
    let env = StreamExecutionEnvironment::new();
    env.enable_checkpointing(Duration::from_millis(50));
    env.checkpoint_config(|c| c.storage = format!("memory://eo-probe-{}", rand_suffix()));
    build(&env, 2, 1_000.0, &before);
    let client = env.execute_async("before").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while client.checkpoint_history().0.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no checkpoints");
        std::thread::sleep(Duration::from_millis(10));
    }
    let savepoint = client
        .stop_with_savepoint(&format!("file://{}", savepoints.path().display()), false)
        .unwrap();
    let store =
        fjord::storage::SnapshotStore::open(&savepoint, &StorageOptions::default()).unwrap();
    let id = fjord::checkpoint::CheckpointMetadata::read(&store)
        .unwrap()
        .checkpoint_id;
    let mut fresh = before.lock().unwrap().clone();
    fresh.sort_unstable();
    assert_eq!(fresh, vec![(0, None, 0), (1, None, 0)]);

    let after: Seen = Default::default();
    let env = StreamExecutionEnvironment::new();
    env.checkpoint_config(|c| c.storage = format!("memory://eo-probe-{}", rand_suffix()));
    env.restore_from(&savepoint, false);
    build(&env, 3, 1e9, &after);
    let client = env.execute_async("after").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while after.lock().unwrap().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers were not created"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    client.cancel();
    let _ = client.wait();
    let mut restored = after.lock().unwrap().clone();
    restored.sort_unstable();
    // Two old states for three new writers: one writer gets none, and still knows the ID.
    let states: usize = restored.iter().map(|(_, _, n)| n).sum();
    assert_eq!(states, 2, "{restored:?}");
    assert!(restored.iter().any(|(_, _, n)| *n == 0), "{restored:?}");
    assert_eq!(
        restored,
        restored
            .iter()
            .map(|(s, _, n)| (*s, Some(id), *n))
            .collect::<Vec<_>>(),
        "every writer knows savepoint {id}"
    );
}
