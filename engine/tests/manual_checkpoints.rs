//! Checkpoints triggered on demand (Flink's manual checkpoints) on the embedded mini-cluster:
//! with periodic checkpoints off and on, queued behind the one in flight, retained like
//! periodic ones.

use fjord::checkpoint::{CheckpointMetadata, CheckpointType, RestartStrategy};
use fjord::sources::GeneratorSource;
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord::{BoxError, FjordError, MapFunction, RuntimeContext, StreamExecutionEnvironment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Passes `(key, index)` on as `(key, 1)`, counts the records the first attempt saw, and notes
/// the lowest index a restarted attempt saw first (where its source resumed).
#[derive(Clone)]
struct ResumedAt {
    lowest: Arc<AtomicU64>,
    first_attempt_seen: Arc<AtomicU64>,
    restarted: bool,
}

impl MapFunction<(u64, u64), (u64, u64)> for ResumedAt {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.restarted = ctx.attempt_number > 0;
        Ok(())
    }

    fn map(&mut self, (key, index): (u64, u64)) -> Result<(u64, u64), BoxError> {
        if self.restarted {
            self.lowest.fetch_min(index, Ordering::SeqCst);
        } else {
            self.first_attempt_seen.fetch_add(1, Ordering::SeqCst);
        }
        Ok((key, 1))
    }
}

/// Passes records through; in the first attempt, fails at the first record after the test
/// armed it (once the manual checkpoint completed), so the failure always comes after the
/// checkpoint however slow the machine is.
#[derive(Clone)]
struct FailWhenArmed {
    armed: Arc<std::sync::atomic::AtomicBool>,
    first_attempt: bool,
}

impl<T: Send + 'static> MapFunction<T, T> for FailWhenArmed {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.first_attempt = ctx.attempt_number == 0;
        Ok(())
    }

    fn map(&mut self, v: T) -> Result<T, BoxError> {
        if self.first_attempt && self.armed.load(Ordering::SeqCst) {
            panic!("injected failure after the manual checkpoint");
        }
        Ok(v)
    }
}

#[test]
fn without_periodic_checkpoints_a_restart_resumes_from_the_manual_checkpoint() {
    const KEYS: u64 = 7;
    let records = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.checkpoint_config(|c| c.storage = file_url(dir.path()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 1,
        delay: Duration::from_millis(10),
    });
    let lowest = Arc::new(AtomicU64::new(u64::MAX));
    let first_attempt_seen = Arc::new(AtomicU64::new(0));
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let out = env
        .from_source(
            GeneratorSource::new(Some(records), |i| (i % KEYS, i)).with_rate(10_000.0),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .map(ResumedAt {
            lowest: lowest.clone(),
            first_attempt_seen: first_attempt_seen.clone(),
            restarted: false,
        })
        .set_parallelism(1)
        .map(FailWhenArmed {
            armed: armed.clone(),
            first_attempt: true,
        })
        .set_parallelism(1)
        .key_by(|t: &(u64, u64)| t.0)
        .sum::<1>()
        .uid("counter")
        .collect();
    let client = env.execute_async("manual restore").unwrap();
    // Checkpoint once the source has emitted something (a checkpoint at position 0 could not
    // tell a resume from a fresh start), then fail the job.
    let deadline = Instant::now() + Duration::from_secs(60);
    while first_attempt_seen.load(Ordering::SeqCst) < 1_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let manual = trigger_when_running(&client, CheckpointType::Configured);
    armed.store(true, Ordering::SeqCst);
    let result = client.wait().unwrap();
    assert_eq!(result.attempts, 2, "one restart");
    // The restarted source resumed where the manual checkpoint was taken, not at 0.
    let resumed = lowest.load(Ordering::SeqCst);
    assert!(
        resumed > 0 && resumed < records,
        "the restart resumed at record {resumed}, not from checkpoint {}",
        manual.id
    );
    // And the counts from the checkpoint's state plus the replay are exact.
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, c) in out.values() {
        let e = counts.entry(k).or_insert(0);
        *e = (*e).max(c);
    }
    let expected: BTreeMap<u64, u64> = (0..KEYS)
        .map(|k| (k, records / KEYS + u64::from(k < records % KEYS)))
        .collect();
    assert_eq!(counts, expected);
}
