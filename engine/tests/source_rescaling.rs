//! Source read positions across a change of parallelism: split-based sources (sequence ranges,
//! text-file splits) are redistributed like operator list state, so every record is read
//! exactly once overall; a source that cannot be rescaled refuses with a clear error.

use fjord::sources::GeneratorSource;
use fjord::{FjordError, StreamExecutionEnvironment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::file_url;

const KEYS: u64 = 7;
/// The sequence source emits `1..=SEQUENCE`.
const SEQUENCE: i64 = 20_000;
/// The text files hold `SEQUENCE + 1 ..= SEQUENCE + FILES * LINES`, one number per line.
const FILES: i64 = 5;
const LINES: i64 = 4_000;
const TOTAL: i64 = SEQUENCE + FILES * LINES;

/// Writes the input files (of different sizes, so their splits differ).
fn write_files(dir: &std::path::Path) {
    let mut next = SEQUENCE + 1;
    for f in 0..FILES {
        // File f holds LINES - 300 + 150 * f lines; together FILES * LINES.
        let lines = LINES - 300 + 150 * f;
        let text: String = (next..next + lines).map(|v| format!("{v}\n")).collect();
        std::fs::write(dir.join(format!("part-{f}.txt")), text).unwrap();
        next += lines;
    }
    assert_eq!(next, TOTAL + 1);
    // Skipped by the source, as in Flink.
    std::fs::write(dir.join("_ignored.txt"), "not a number\n").unwrap();
}

/// Slows every record down while `slow` is set (so a savepoint lands mid-stream), in the
/// source's chain.
fn throttle<T>(slow: Arc<AtomicBool>) -> impl FnMut(T) -> T + Clone + Send + 'static {
    move |v| {
        if slow.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_micros(300));
        }
        v
    }
}

/// Sequence and text files, unioned, keyed by `value % KEYS`, with a running (count, sum) per
/// key in keyed state.
fn job(
    env: &StreamExecutionEnvironment,
    dir: &std::path::Path,
    slow: &Arc<AtomicBool>,
) -> fjord::sinks::CollectedOutput<(u64, u64, i64)> {
    let numbers = env
        .from_sequence(1, SEQUENCE)
        .uid("sequence")
        .map(throttle::<i64>(slow.clone()));
    let lines = env
        .read_text_file(dir)
        .uid("files")
        .map(throttle::<String>(slow.clone()))
        .map(|line: String| line.parse::<i64>().expect("a number"));
    numbers
        .union(&[&lines])
        .map(|v: i64| (v as u64 % KEYS, 1u64, v))
        .key_by(|t: &(u64, u64, i64)| t.0)
        .reduce(|a: (u64, u64, i64), b: (u64, u64, i64)| (a.0, a.1 + b.1, a.2 + b.2))
        .uid("totals")
        .collect()
}

/// The final (count, sum) per key: counts only grow, so the update with the largest count is
/// the last one.
fn finals(updates: Vec<(u64, u64, i64)>) -> BTreeMap<u64, (u64, i64)> {
    let mut m: BTreeMap<u64, (u64, i64)> = BTreeMap::new();
    for (k, c, s) in updates {
        let e = m.entry(k).or_default();
        if c > e.0 {
            *e = (c, s);
        }
    }
    m
}

fn expected() -> BTreeMap<u64, (u64, i64)> {
    let mut m: BTreeMap<u64, (u64, i64)> = BTreeMap::new();
    for v in 1..=TOTAL {
        let e = m.entry(v as u64 % KEYS).or_default();
        e.0 += 1;
        e.1 += v;
    }
    m
}

fn wait_for_output<T: Clone>(client: &fjord::JobClient, out: &fjord::sinks::CollectedOutput<T>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.is_running() || out.is_empty() {
        assert!(Instant::now() < deadline, "the job produced nothing");
        assert!(!client.is_finished(), "the job ended before the savepoint");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn split_based_sources_resume_at_another_parallelism_reading_every_record_once() {
    let input = tempfile::tempdir().unwrap();
    write_files(input.path());
    let savepoints = tempfile::tempdir().unwrap();

    // Parallelism 2, stopped with a savepoint while both sources are mid-stream.
    let slow = Arc::new(AtomicBool::new(true));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let out = job(&env, input.path(), &slow);
    let client = env.execute_async("at parallelism 2").unwrap();
    wait_for_output(&client, &out);
    let savepoint = client
        .stop_with_savepoint(&file_url(savepoints.path()), false)
        .unwrap();
    let before: u64 = finals(out.values()).values().map(|(c, _)| c).sum();
    assert!(
        before > 0 && before < TOTAL as u64,
        "stopped mid-stream, after {before} of {TOTAL} records"
    );

    // Resumed from the same savepoint at 3 (more instances than some sources have splits)
    // and at 1 (one instance takes every split): the keyed totals, which include what was
    // counted before the savepoint, equal the totals of the whole input.
    for parallelism in [3, 1] {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism);
        env.restore_from(&savepoint, false);
        let out = job(&env, input.path(), &Arc::new(AtomicBool::new(false)));
        env.execute(&format!("at parallelism {parallelism}"))
            .unwrap();
        let after = finals(out.values());
        let resumed: u64 = after.values().map(|(c, _)| c).sum();
        assert_eq!(
            after,
            expected(),
            "at parallelism {parallelism}: every element counted exactly once ({before} before the savepoint, {resumed} in total)"
        );
    }
}

#[test]
fn a_source_that_cannot_be_rescaled_refuses_another_parallelism_and_says_what_to_do() {
    let savepoints = tempfile::tempdir().unwrap();
    let job = |env: &StreamExecutionEnvironment, rate: f64| {
        env.from_source(
            GeneratorSource::new(Some(1_000_000), |i| i).with_rate(rate),
            "generator",
        )
        .uid("generator")
        .collect()
    };
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let out = job(&env, 20_000.0);
    let client = env.execute_async("generator at 2").unwrap();
    wait_for_output(&client, &out);
    let savepoint = client
        .stop_with_savepoint(&file_url(savepoints.path()), false)
        .unwrap();

    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3);
    env.restore_from(&savepoint, false);
    job(&env, 1e9);
    let err = env.execute("generator at 3").unwrap_err();
    assert!(matches!(err, FjordError::Restore(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("'generator'")
            && message.contains("cannot be rescaled")
            && message.contains("ran at parallelism 2")
            && message.contains(".set_parallelism(2)")
            && message.contains("allow_non_restored_state"),
        "{message}"
    );

    // At its old parallelism it continues where it stopped.
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.restore_from(&savepoint, false);
    let rest = env
        .from_source(GeneratorSource::new(Some(1_000_000), |i| i), "generator")
        .uid("generator")
        .collect();
    env.execute("generator at 2 again").unwrap();
    let mut all: Vec<u64> = out.values();
    all.extend(rest.values());
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 1_000_000, "nothing lost across the savepoint");
}
