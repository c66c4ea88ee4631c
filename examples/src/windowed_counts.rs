//! Counts per key and event-time window, written exactly once: the job the distributed-runtime
//! tests run across TaskManagers (keyed, windowed, checkpointed, with a transactional sink).
//!
//! ```text
//! fjord run windowed-counts [--count N] [--keys K] [--rate R] [--window-ms W] [--output url]
//! ```
//!
//! Record `i` has key `key-(i % K)` and event time `i` ms; the job counts records per key in
//! tumbling event-time windows of `W` ms (default 1000) and emits `(key,window_start,count)`.
//! With `--output file:///dir` (or `s3://bucket/dir`) results go to an exactly-once file sink:
//! after failures and restarts the committed files hold each window's count exactly once.
//! Without `--count` the job runs until stopped.

use fjord::sources::GeneratorSource;
use fjord::time::WatermarkStrategy;
use fjord::windows::TumblingEventTimeWindows;
use fjord::{FjordError, JobArgs, Result, StreamExecutionEnvironment};
use std::time::Duration;

/// Builds the job. Operators have stable uids (`events`, `windows`, `files`).
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let keys: u64 = args.get_parsed("keys", 10)?;
    let rate: f64 = args.get_parsed("rate", 10_000.0)?;
    let window_ms: i64 = args.get_parsed("window-ms", 1000)?;
    if keys == 0 || rate <= 0.0 || window_ms <= 0 {
        return Err(FjordError::BadArguments(
            "--keys, --rate and --window-ms must be positive".into(),
        ));
    }
    let count = match args.get("count") {
        None => None,
        Some(_) => Some(args.get_parsed("count", 0u64)?),
    };
    let counts = env
        .from_source(
            GeneratorSource::new(count, move |i| {
                (format!("key-{}", i % keys), i as i64, 1u64)
            })
            .with_rate(rate),
            "Source: events",
        )
        .uid("events")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(String, i64, u64), _| e.1),
        )
        .uid("timestamps")
        .key_by(|e: &(String, i64, u64)| e.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            window_ms as u64,
        )))
        .reduce(|a: (String, i64, u64), b: (String, i64, u64)| (a.0, a.1.min(b.1), a.2 + b.2))
        .uid("windows")
        .name("windows")
        .map(move |(k, first, n): (String, i64, u64)| (k, first - first.rem_euclid(window_ms), n))
        .uid("results");
    match args.get("output") {
        Some(target) => {
            counts.sink_to_files(&as_url(target)).uid("files");
        }
        None => {
            counts.print().name("Sink: counts");
        }
    }
    Ok(())
}

/// A storage URL for `target`: URLs stay, a plain path becomes `file://<absolute path>`.
fn as_url(target: &str) -> String {
    if target.contains("://") {
        return target.to_string();
    }
    let path = std::path::Path::new(target);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    format!("file://{}", absolute.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord::sinks::ExactlyOnceFileSink;
    use fjord::storage::StorageOptions;

    #[test]
    fn counts_every_window_of_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        let mut args: Vec<String> = [
            "--keys",
            "2",
            "--rate",
            "1000000",
            "--count",
            "10",
            "--window-ms",
            "4",
            "--output",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(out.display().to_string());
        build(&env, &JobArgs::parse(args).unwrap()).unwrap();
        env.execute("windowed counts").unwrap();
        let url = format!("file://{}", out.display());
        let mut lines =
            ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default()).unwrap();
        lines.sort();
        // i = 0..10, keys by parity, windows [0,4) [4,8) [8,12).
        assert_eq!(
            lines,
            vec![
                "(key-0,0,2)",
                "(key-0,4,2)",
                "(key-0,8,1)",
                "(key-1,0,2)",
                "(key-1,4,2)",
                "(key-1,8,1)",
            ]
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        let env = StreamExecutionEnvironment::new();
        let err = build(&env, &JobArgs::parse(["--window-ms", "0"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}

#[cfg(test)]
mod stop_and_resume {
    use super::*;
    use fjord::sinks::ExactlyOnceFileSink;
    use fjord::storage::StorageOptions;
    use std::collections::BTreeMap;

    /// Windows that fire after a stop-with-savepoint's barrier (on a periodic watermark of a
    /// task that is not the source) would be written by the stopped job and again by the
    /// resumed one: tasks fire no wake-ups after such a barrier.
    #[test]
    fn windows_pending_at_a_stop_with_savepoint_are_written_once_after_resume() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let out = format!("file://{}", dir.path().join("out").display());
            let sp = format!("file://{}", dir.path().join("sp").display());
            let args = |p: usize| {
                let env = StreamExecutionEnvironment::new();
                env.set_parallelism(p);
                env.enable_checkpointing(Duration::from_millis(100));
                env.checkpoint_config(|c| {
                    c.storage = format!("file://{}", dir.path().join("chk").display())
                });
                let a = [
                    "--rate",
                    "4000",
                    "--keys",
                    "8",
                    "--window-ms",
                    "400",
                    "--output",
                    &out,
                ];
                build(&env, &JobArgs::parse(a).unwrap()).unwrap();
                env
            };
            let env = args(2);
            let client = env.execute_async("before").unwrap();
            std::thread::sleep(Duration::from_millis(700 + round * 97));
            let savepoint = client.stop_with_savepoint(&sp, false).unwrap();
            // Resumed at another parallelism (windows move by key group).
            let env = args(3);
            env.restore_from(&savepoint, false);
            let client = env.execute_async("after").unwrap();
            std::thread::sleep(Duration::from_millis(700));
            client.stop_with_savepoint(&sp, false).unwrap();
            let lines =
                ExactlyOnceFileSink::read_committed(&out, &StorageOptions::default()).unwrap();
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for l in &lines {
                *seen.entry(l.as_str()).or_default() += 1;
            }
            let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "round {round}: written twice {twice:?}");
        }
    }
}
