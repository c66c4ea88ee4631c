//! Checkpoints triggered on demand (Flink's manual checkpoints) on the embedded mini-cluster:
//! with periodic checkpoints off and on, queued behind the one in flight, retained like
//! periodic ones.

use fjord::checkpoint::{CheckpointMetadata, CheckpointType};
use fjord::sources::GeneratorSource;
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord::{FjordError, StreamExecutionEnvironment};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::file_url;

fn keyed_job(env: &StreamExecutionEnvironment) {
    env.from_source(
        GeneratorSource::new(None, |i| (i % 7, 1u64)).with_rate(20_000.0),
        "numbers",
    )
    .uid("numbers")
    .key_by(|t: &(u64, u64)| t.0)
    .sum::<1>()
    .uid("counter")
    .collect();
}

/// Triggers until the tasks run (a trigger before is refused with a message saying so).
fn trigger_when_running(
    client: &fjord::JobClient,
    kind: CheckpointType,
) -> fjord::checkpoint::CompletedCheckpoint {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.trigger_checkpoint(kind) {
            Err(e) if e.to_string().contains("not running") && Instant::now() < deadline => {
                std::thread::yield_now()
            }
            other => return other.expect("the manual checkpoint completes"),
        }
    }
}

fn checkpoint_dirs(base: &std::path::Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(base)
        .unwrap()
        .flat_map(|job| std::fs::read_dir(job.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("chk-"))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn a_manual_checkpoint_without_periodic_ones_completes_becomes_latest_and_is_retained() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.checkpoint_config(|c| {
        c.storage = file_url(dir.path());
        c.retain_on_cancellation = true;
    });
    keyed_job(&env);
    let client = env.execute_async("manual").unwrap();
    assert!(
        client.latest_checkpoint().is_none(),
        "no periodic checkpoints"
    );

    let first = trigger_when_running(&client, CheckpointType::Configured);
    assert_eq!(first.id, 1);
    assert!(!first.savepoint);
    assert!(first.path.ends_with("/chk-1"), "{}", first.path);
    assert_eq!(
        client.latest_checkpoint().as_deref(),
        Some(first.path.as_str())
    );
    let meta = CheckpointMetadata::read(
        &SnapshotStore::open(&first.path, &StorageOptions::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(meta.checkpoint_id, 1);
    assert!(!meta.savepoint);
    assert_eq!(meta.operators["counter"].subtasks.len(), 2);

    let second = trigger_when_running(&client, CheckpointType::Full);
    assert_eq!(second.id, 2);
    assert_eq!(client.latest_checkpoint(), Some(second.path.clone()));
    // One checkpoint retained (the default): the first is gone.
    assert_eq!(checkpoint_dirs(dir.path()), vec!["chk-2".to_string()]);
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
}

#[test]
fn manual_checkpoints_requested_at_once_queue_behind_the_one_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(50));
    env.checkpoint_config(|c| {
        c.storage = file_url(dir.path());
        c.retained = 10;
        c.max_concurrent = 1;
    });
    keyed_job(&env);
    let client = env.execute_async("queued").unwrap();
    trigger_when_running(&client, CheckpointType::Incremental);
    let ids: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| client.trigger_checkpoint(CheckpointType::Configured)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("a queued checkpoint completes").id)
            .collect()
    });
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "four distinct checkpoints: {ids:?}");
    let (history, failed) = client.checkpoint_history();
    assert_eq!(failed, 0);
    for id in &ids {
        assert!(
            history.iter().any(|c| c.id == *id && !c.savepoint),
            "checkpoint {id} is in the history"
        );
    }
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
}

#[test]
fn a_manual_checkpoint_after_the_job_ended_is_refused() {
    let env = StreamExecutionEnvironment::new();
    env.from_sequence(0, 10).collect();
    let client = env.execute_async("short").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "the job did not end");
        std::thread::yield_now();
    }
    let err = client
        .trigger_checkpoint(CheckpointType::Configured)
        .unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    client.wait().unwrap();
}
