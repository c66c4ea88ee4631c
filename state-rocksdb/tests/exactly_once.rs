//! The exactly-once failure-injection scenario of engine/tests/exactly_once_sink.rs with the
//! count kept in RocksDB keyed state: committed output equals a failure-free run, record for
//! record, with incremental checkpoints restored after each injected failure.

use fjord::checkpoint::RestartStrategy;
use fjord::sinks::ExactlyOnceFileSink;
use fjord::sources::GeneratorSource;
use fjord::state::StateBackendKind;
use fjord::storage::StorageOptions;
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

fn run(records: u64, failures: Vec<u64>, parallelism: usize) -> (Vec<String>, u32, u64) {
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
    env.checkpoint_config(|c| {
        c.storage = format!("memory://rocksdb-eo-{}", rand::random::<u64>());
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
    .map(FailAt {
        points: failures,
        attempt: 0,
        seen: 0,
    })
    .uid("fail")
    .key_by(|t: &(u64, u64)| t.0)
    .process(Count::default())
    .uid("counter")
    .sink_to_transactional(ExactlyOnceFileSink::new(&url).with_part_size(4096), "files")
    .uid("files");
    let result = env.execute("exactly once on rocksdb").unwrap();
    let mut lines = ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default()).unwrap();
    lines.sort();
    (lines, result.attempts, result.completed_checkpoints)
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
