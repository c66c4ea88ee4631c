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
