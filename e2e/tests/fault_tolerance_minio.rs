//! Checkpoints, savepoints and the exactly-once file sink on a real S3-compatible server
//! (MinIO started by the project's test infrastructure).

use fjord::checkpoint::{CheckpointMetadata, RestartStrategy};
use fjord::sinks::ExactlyOnceFileSink;
use fjord::sources::GeneratorSource;
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord::{FjordError, StreamExecutionEnvironment};
use fjord_e2e::jobs::{FailOnce, running_counts};
use fjord_e2e::{ClusterOptions, TestCluster};
use std::time::{Duration, Instant};

const KEYS: u64 = 7;

fn options(s3: &fjord_e2e::S3Settings) -> StorageOptions {
    StorageOptions::from_pairs([
        ("s3.endpoint", s3.endpoint.clone()),
        ("s3.access-key", s3.access_key_id.clone()),
        ("s3.secret-key", s3.secret_access_key.clone()),
        ("s3.region", s3.region.clone()),
        ("s3.path-style-access", "true".to_string()),
    ])
}

#[test]
fn checkpoints_savepoints_and_exactly_once_output_on_minio() -> anyhow::Result<()> {
    let cluster = TestCluster::start(
        ClusterOptions::new("fault-tolerance")
            .nodes(1)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent")),
    )?;
    let s3 = cluster.s3()?;
    let opts = options(&s3);
    let base = format!("{}/fault-tolerance", s3.bucket_url());

    // The storage layer itself, and its errors.
    let store = SnapshotStore::open(&base, &opts)?;
    store.check_access()?;
    let missing = SnapshotStore::open("s3://no-such-bucket/x", &opts)?
        .check_access()
        .unwrap_err()
        .to_string();
    assert!(missing.contains("the bucket does not exist"), "{missing}");
    let mut wrong = opts.clone();
    wrong
        .values
        .insert("s3.secret-key".into(), "wrong-secret".into());
    let refused = SnapshotStore::open(&base, &wrong)?
        .check_access()
        .unwrap_err()
        .to_string();
    assert!(refused.contains("credentials were refused"), "{refused}");

    // A job checkpointing to MinIO fails once, restarts from its latest checkpoint, and its
    // exactly-once file sink on MinIO holds every update once.
    let records = 8_000;
    let output = format!("{base}/output");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(50));
    env.checkpoint_config(|c| {
        c.storage = format!("{base}/checkpoints");
        c.storage_options = opts.clone();
    });
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 2,
        delay: Duration::from_millis(10),
    });
    env.from_source(
        GeneratorSource::new(Some(records), |i| (i % KEYS, 1u64)).with_rate(20_000.0),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .map(FailOnce::at(5_000))
    .set_parallelism(1)
    .key_by(|t: &(u64, u64)| t.0)
    .sum::<1>()
    .uid("counter")
    .sink_to_transactional(
        ExactlyOnceFileSink::new(&output)
            .with_options(opts.clone())
            .with_part_size(2048),
        "files",
    )
    .uid("files");
    let result = env.execute("minio exactly once")?;
    assert_eq!(result.attempts, 2);
    assert!(result.completed_checkpoints >= 1);
    let mut lines = ExactlyOnceFileSink::read_committed(&output, &opts)?;
    lines.sort();
    assert_eq!(lines, running_counts(records, KEYS));

    // A savepoint to MinIO, restored into a job with another parallelism: the counts go on
    // from the savepoint's state and source position, and end where an uninterrupted run ends.
    let total = 3_000;
    let counting = |env: &StreamExecutionEnvironment, rate: f64| {
        env.from_source(
            GeneratorSource::new(Some(total), |i| (i % KEYS, 1u64)).with_rate(rate),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .key_by(|t: &(u64, u64)| t.0)
        .sum::<1>()
        .uid("counter")
        .collect()
    };
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.checkpoint_config(|c| c.storage_options = opts.clone());
    counting(&env, 1_000.0);
    let client = env.execute_async("savepointed")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let savepoint = loop {
        match client.trigger_savepoint(&format!("{base}/savepoints")) {
            Ok(p) => break p,
            Err(e) if e.to_string().contains("not running") && Instant::now() < deadline => {
                std::thread::yield_now()
            }
            Err(e) => return Err(e.into()),
        }
    };
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
    assert!(
        savepoint.starts_with(&format!("{base}/savepoints/savepoint-")),
        "{savepoint}"
    );
    let meta = CheckpointMetadata::read(&SnapshotStore::open(&savepoint, &opts)?)?;
    assert!(meta.savepoint && meta.operators.contains_key("counter"));

    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3);
    env.checkpoint_config(|c| c.storage_options = opts.clone());
    env.restore_from(&savepoint, false);
    let restored = counting(&env, 1e9);
    env.execute("restored")?;
    let mut finals = std::collections::BTreeMap::new();
    for (k, c) in restored.values() {
        let e = finals.entry(k).or_insert(0u64);
        *e = (*e).max(c);
    }
    let want: std::collections::BTreeMap<u64, u64> = (0..KEYS)
        .map(|k| (k, total / KEYS + u64::from(k < total % KEYS)))
        .collect();
    assert_eq!(finals, want);

    cluster.stop()?;
    Ok(())
}
