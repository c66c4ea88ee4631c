//! Shared-file retention in a running job: with incremental RocksDB checkpoints and one
//! retained checkpoint, the shared directory holds exactly the files the retained checkpoint
//! references after a cancellation that keeps it — also when the job resumed (under the same
//! job id) from checkpoints an earlier run left behind, as a restarted JobManager does.

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

/// Runs the counting job with id `job_id` on RocksDB under `base` (resuming from the job's
/// latest completed checkpoint there, if any) until `checkpoints` checkpoints completed in
/// this run, then cancels it.
fn run_and_cancel(
    base: &std::path::Path,
    local: &std::path::Path,
    job_id: &str,
    checkpoints: usize,
    retain_on_cancellation: bool,
) {
    fjord_rocksdb::register();
    let storage = format!("file://{}", base.display());
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.set_job_id(job_id);
    env.set_state_backend(StateBackendKind::RocksDb {
        dir: Some(local.to_path_buf()),
    });
    env.enable_checkpointing(Duration::from_millis(10));
    env.checkpoint_config(|c| {
        c.storage = storage.clone();
        c.retained = 1;
        c.retain_on_cancellation = retain_on_cancellation;
    });
    if let Some(latest) =
        fjord::checkpoint::latest_completed_checkpoint(&storage, &StorageOptions::default(), job_id)
            .unwrap()
    {
        env.restore_from(&latest, false);
    }
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
    while client.checkpoint_history().0.len() < checkpoints && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(
        client.checkpoint_history().0.len() >= checkpoints,
        "{checkpoints} checkpoints completed"
    );
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
}

/// The `chk-<n>` directories of the job and, for the completed ones, the shared files each
/// references.
fn checkpoints(job: &SnapshotStore) -> (BTreeSet<String>, Vec<(String, BTreeSet<String>)>) {
    let mut dirs = BTreeSet::new();
    for path in names(job, "") {
        if let Some(dir) = path.split('/').find(|p| p.starts_with("chk-")) {
            dirs.insert(dir.to_string());
        }
    }
    let completed = dirs
        .iter()
        .filter(|d| job.child(d).exists("_metadata").unwrap())
        .map(|d| {
            let chk = job.child(d);
            let refs = names(&chk, SHARED_REFS_DIR)
                .iter()
                .flat_map(|p| {
                    String::from_utf8(chk.get(p).unwrap())
                        .unwrap()
                        .lines()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            (d.clone(), refs)
        })
        .collect();
    (dirs, completed)
}

/// The regression of issue 20's RocksDB defect: a run that is killed leaves its retained
/// checkpoint; the next run of the job resumes from it, completes checkpoints of its own (whose
/// instances still reference the resumed checkpoint's shared files) and is cancelled, which
/// deletes its checkpoints. It deleted their shared files too, but left the resumed-from
/// checkpoint, so the job's latest completed checkpoint referenced files that were gone and the
/// third run could not restore (`shared/<id>.sst not found`). The resumed-from checkpoint is
/// the job's own: the cancellation removes it with the others.
#[test]
fn a_job_cancelled_after_resuming_leaves_no_checkpoint_with_missing_files() {
    let base = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // The first run stands in for a JobManager that was killed: its checkpoint stays.
    run_and_cancel(base.path(), local.path(), "resumed-then-cancelled", 3, true);
    let job = SnapshotStore::open(
        &format!("file://{}/resumed-then-cancelled", base.path().display()),
        &StorageOptions::default(),
    )
    .unwrap();
    let (_, first) = checkpoints(&job);
    assert_eq!(first.len(), 1, "the killed run left {first:?}");
    run_and_cancel(
        base.path(),
        local.path(),
        "resumed-then-cancelled",
        3,
        false,
    );

    let (dirs, completed) = checkpoints(&job);
    let shared = names(&job.child("shared"), "");
    for (dir, refs) in &completed {
        let missing: Vec<&String> = refs.difference(&shared).collect();
        assert!(
            missing.is_empty(),
            "{dir} survived the cancellation but references deleted shared files {missing:?}"
        );
    }
    assert!(
        dirs.is_empty(),
        "the cancellation deletes every checkpoint of the job, also the one it resumed from; left {dirs:?}"
    );
    assert!(shared.is_empty(), "shared files left: {shared:?}");
}

/// A resumed job owns the checkpoints it found: with one retained checkpoint, the one it
/// resumed from goes once a newer one completed, with the shared files only it used.
#[test]
fn a_resumed_job_keeps_exactly_the_shared_files_its_retained_checkpoint_needs() {
    let base = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    run_and_cancel(base.path(), local.path(), "resumed-then-kept", 3, true);
    run_and_cancel(base.path(), local.path(), "resumed-then-kept", 3, true);
    let job = SnapshotStore::open(
        &format!("file://{}/resumed-then-kept", base.path().display()),
        &StorageOptions::default(),
    )
    .unwrap();
    let (dirs, completed) = checkpoints(&job);
    assert_eq!(dirs.len(), 1, "retained 1, found {dirs:?}");
    assert_eq!(completed.len(), 1);
    let (_, referenced) = &completed[0];
    assert!(!referenced.is_empty());
    assert_eq!(&names(&job.child("shared"), ""), referenced);
}
