//! Shared-file retention in a running job: with incremental RocksDB checkpoints and one
//! retained checkpoint, the shared directory holds exactly the files the retained checkpoint
//! references after a cancellation that keeps it.

use fjord::FjordError;
use fjord::StreamExecutionEnvironment;
use fjord::sources::GeneratorSource;
use fjord::state::StateBackendKind;
use fjord::storage::layout::SHARED_REFS_DIR;
use fjord::storage::{SnapshotStore, StorageOptions};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod common;
use common::Count;

fn names(store: &SnapshotStore, prefix: &str) -> BTreeSet<String> {
    store.list(prefix).unwrap().into_iter().collect()
}

#[test]
fn a_cancelled_job_keeps_exactly_the_shared_files_its_retained_checkpoint_needs() {
    fjord_rocksdb::register();
    let base = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.set_state_backend(StateBackendKind::RocksDb {
        dir: Some(local.path().to_path_buf()),
    });
    env.enable_checkpointing(Duration::from_millis(10));
    env.checkpoint_config(|c| {
        c.storage = format!("file://{}", base.path().display());
        c.retained = 1;
        c.retain_on_cancellation = true;
    });
    env.from_source(
        GeneratorSource::new(None, |i| (i % 5_000, i)).with_rate(50_000.0),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .key_by(|t: &(u64, u64)| t.0)
    .process(Count::default())
    .uid("count")
    .for_each(|_| {});
    let client = env.execute_async("retention").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.checkpoint_history().0.len() < 5 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(
        client.checkpoint_history().0.len() >= 5,
        "five checkpoints completed"
    );
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));

    let jobs: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
    assert_eq!(jobs.len(), 1);
    let job_path = jobs[0].as_ref().unwrap().path();
    let job = SnapshotStore::open(
        &format!("file://{}", job_path.display()),
        &StorageOptions::default(),
    )
    .unwrap();
    let dirs: BTreeSet<String> = std::fs::read_dir(&job_path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let chk: Vec<&String> = dirs.iter().filter(|d| d.starts_with("chk-")).collect();
    assert_eq!(chk.len(), 1, "retained 1, found {dirs:?}");
    let retained = job.child(chk[0]);
    assert!(retained.exists("_metadata").unwrap());
    let referenced: BTreeSet<String> = names(&retained, SHARED_REFS_DIR)
        .iter()
        .flat_map(|p| {
            String::from_utf8(retained.get(p).unwrap())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!referenced.is_empty());
    assert_eq!(names(&job.child("shared"), ""), referenced);
}
