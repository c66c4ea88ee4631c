//! The checkpoint fence (`CheckpointConfig::fence`, what a highly available JobManager passes):
//! while it answers `Ok(epoch)` checkpoints complete with `leader_epoch` in their `_metadata`;
//! once it refuses, checkpoints are aborted (none completes, the job keeps running: an abort is
//! not a failure of the job).

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::{CheckpointFence, CheckpointMetadata};
use fjord::sources::GeneratorSource;
use fjord::storage::{SnapshotStore, StorageOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::file_url;

fn checkpoint_id(url: &str) -> u64 {
    url.rsplit("chk-").next().unwrap().parse().unwrap()
}

/// Waits (bounded) until `done`, yielding in between.
fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_fence_records_its_epoch_and_a_refusing_fence_completes_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let leading = Arc::new(AtomicBool::new(true));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(30));
    let fence = {
        let leading = leading.clone();
        CheckpointFence::new(move || {
            if leading.load(Ordering::SeqCst) {
                Ok(7)
            } else {
                Err("not the leader".into())
            }
        })
    };
    env.checkpoint_config(|c| {
        c.storage = file_url(dir.path());
        c.retain_on_cancellation = true;
        c.fence = Some(fence);
    });
    env.from_source(
        GeneratorSource::new(None, |i| (i % 10, 1u64)).with_rate(10_000.0),
        "numbers",
    )
    .uid("numbers")
    .key_by(|t: &(u64, u64)| t.0)
    .sum::<1>()
    .uid("counter")
    .collect();
    let client = env.execute_async("fenced").unwrap();
    wait("two checkpoints", || {
        client
            .latest_checkpoint()
            .is_some_and(|l| checkpoint_id(&l) >= 2)
    });
    let latest = client.latest_checkpoint().unwrap();
    let meta = CheckpointMetadata::read(
        &SnapshotStore::open(&latest, &StorageOptions::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(meta.leader_epoch, Some(7));

    leading.store(false, Ordering::SeqCst);
    // A checkpoint in flight may still complete if it passed the fence before the flip.
    let (completed, failed) = client.checkpoint_counts();
    wait("three refused checkpoints", || {
        client.checkpoint_counts().1 >= failed + 3
    });
    let fenced_from = client.latest_checkpoint().unwrap();
    let (completed_after, _) = client.checkpoint_counts();
    assert!(
        completed_after <= completed + 1,
        "at most the checkpoint in flight completed: {completed} then {completed_after}"
    );
    wait("three more refused checkpoints", || {
        client.checkpoint_counts().1 >= failed + 6
    });
    assert_eq!(
        client.latest_checkpoint().unwrap(),
        fenced_from,
        "no checkpoint completes while the fence refuses"
    );
    assert_eq!(client.checkpoint_counts().0, completed_after);
    client.cancel();
    let _ = client.wait();
}
