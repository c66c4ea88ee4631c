//! Incremental checkpoints: only new SST files are uploaded, unchanged ones are shared
//! between checkpoints, and restores at the same or another parallelism see the same state.

use fjord::keygroup::KeyGroupRange;
use fjord::state::backend::{StateMeta, StateValue};
use fjord::state::{CheckpointTarget, KeyedStateBackend};
use fjord::storage::layout::SHARED_REFS_DIR;
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord_rocksdb::{RocksDbKeyedStateBackend, RocksDbOptions};
use std::any::Any;
use std::collections::BTreeSet;

const MAX: usize = 8;
const ALL: KeyGroupRange = KeyGroupRange {
    start: 0,
    end: MAX - 1,
};

fn ser(v: &(dyn Any + Send)) -> fjord::Result<Vec<u8>> {
    Ok(fjord::encoding::to_vec(v.downcast_ref::<u64>().expect("u64")).unwrap())
}
fn de(b: &[u8]) -> fjord::Result<StateValue> {
    Ok(Box::new(fjord::encoding::from_slice::<u64>(b).unwrap()))
}
fn counter() -> StateMeta {
    StateMeta {
        name: "count".into(),
        type_name: "u64",
        serialize: ser,
        deserialize: de,
        cleanup: None,
    }
}

fn open(dir: &tempfile::TempDir, range: KeyGroupRange) -> RocksDbKeyedStateBackend {
    let mut b = RocksDbKeyedStateBackend::open(
        dir.path(),
        range,
        RocksDbOptions::default(),
        StorageOptions::default(),
    )
    .unwrap();
    b.register(counter()).unwrap();
    b
}

fn kg(k: u64) -> usize {
    k as usize % MAX
}

fn write(b: &mut RocksDbKeyedStateBackend, keys: std::ops::Range<u64>, value: u64) {
    for k in keys {
        b.set_current_key(&k.to_be_bytes(), kg(k));
        b.put(0, b"", Box::new(value + k));
    }
}

fn read(b: &mut RocksDbKeyedStateBackend, k: u64) -> Option<u64> {
    b.set_current_key(&k.to_be_bytes(), kg(k));
    b.get_mut(0, b"").map(|v| *v.downcast_ref::<u64>().unwrap())
}

/// Where checkpoint `id` of the job goes.
fn target(job: &SnapshotStore, id: u64) -> CheckpointTarget {
    CheckpointTarget {
        checkpoint_id: id,
        savepoint: false,
        dir: job.child(&format!("chk-{id}")),
        shared: Some(job.child("shared")),
    }
}

/// Checkpoint `id` of the backend: (key group, bytes) as the task would write them.
fn checkpoint(
    b: &mut RocksDbKeyedStateBackend,
    job: &SnapshotStore,
    id: u64,
) -> Vec<(usize, Vec<u8>)> {
    let target = target(job, id);
    b.prepare_checkpoint(&target).unwrap();
    let groups = b
        .key_group_range()
        .iter()
        .map(|kg| (kg, b.snapshot_key_group(kg).unwrap()))
        .collect();
    if let Some(upload) = b.checkpoint_snapshotted() {
        upload().unwrap();
    }
    groups
}

fn refs(job: &SnapshotStore, id: u64) -> BTreeSet<String> {
    let dir = job.child(&format!("chk-{id}"));
    dir.list(SHARED_REFS_DIR)
        .unwrap()
        .iter()
        .flat_map(|p| {
            String::from_utf8(dir.get(p).unwrap())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn job_store() -> SnapshotStore {
    SnapshotStore::open(
        &format!("memory://incremental-{}/job", rand::random::<u64>()),
        &StorageOptions::default(),
    )
    .unwrap()
}

#[test]
fn later_checkpoints_upload_only_new_files_and_share_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_store();
    let mut b = open(&dir, ALL);

    write(&mut b, 0..1000, 0);
    checkpoint(&mut b, &job, 1);
    let first = b.last_snapshot_stats();
    assert!(first.uploaded_shared_files >= 1, "{first:?}");
    assert_eq!(first.reused_shared_files, 0);
    b.notify_checkpoint_complete(1).unwrap();

    // Nothing changed: everything is shared again, nothing uploaded.
    checkpoint(&mut b, &job, 2);
    let same = b.last_snapshot_stats();
    assert_eq!(same.uploaded_shared_files, 0, "{same:?}");
    assert_eq!(same.reused_shared_files, first.uploaded_shared_files);
    b.notify_checkpoint_complete(2).unwrap();

    // New writes: one new file, the old ones reused.
    write(&mut b, 1000..1100, 0);
    checkpoint(&mut b, &job, 3);
    let third = b.last_snapshot_stats();
    assert_eq!(third.uploaded_shared_files, 1, "{third:?}");
    assert!(third.reused_shared_files >= 1, "{third:?}");
    assert!(refs(&job, 3).is_superset(&refs(&job, 1)));
    // Every file a checkpoint lists is in shared storage.
    let shared: BTreeSet<String> = job.child("shared").list("").unwrap().into_iter().collect();
    assert!(shared.is_superset(&refs(&job, 3)));
}

#[test]
fn a_checkpoint_not_completed_is_not_trusted_for_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_store();
    let mut b = open(&dir, ALL);
    write(&mut b, 0..100, 0);
    checkpoint(&mut b, &job, 1);
    // No completion notice: checkpoint 2 uploads the file again rather than relying on it.
    checkpoint(&mut b, &job, 2);
    let stats = b.last_snapshot_stats();
    assert_eq!(stats.reused_shared_files, 0, "{stats:?}");
    assert!(stats.uploaded_shared_files >= 1, "{stats:?}");
}

#[test]
fn incremental_checkpoints_restore_at_the_same_and_other_parallelisms() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_store();
    let mut b = open(&dir, ALL);
    write(&mut b, 0..500, 10);
    checkpoint(&mut b, &job, 1);
    b.notify_checkpoint_complete(1).unwrap();
    write(&mut b, 250..750, 20); // overwrites half, adds 250
    // A value changed in place and not yet written back is part of the checkpoint.
    b.set_current_key(&3u64.to_be_bytes(), kg(3));
    *b.get_mut(0, b"").unwrap().downcast_mut::<u64>().unwrap() = 333;
    let groups = checkpoint(&mut b, &job, 2);
    b.notify_checkpoint_complete(2).unwrap();
    let expected = |k: u64| match k {
        3 => Some(333),
        0..250 => Some(10 + k),
        250..750 => Some(20 + k),
        _ => None,
    };

    // Same key groups: the instance is downloaded and used as is; the next checkpoint into
    // the same shared directory reuses its files.
    let dir2 = tempfile::tempdir().unwrap();
    let mut same = open(&dir2, ALL);
    for (g, bytes) in &groups {
        same.restore_key_group(*g, bytes).unwrap();
    }
    for k in 0..800 {
        assert_eq!(read(&mut same, k), expected(k), "key {k}");
    }
    checkpoint(&mut same, &job, 3);
    assert_eq!(same.last_snapshot_stats().uploaded_shared_files, 0);

    // Rescaled to 3: each backend copies its key groups out of the downloaded instance.
    for i in 0..3 {
        let range = KeyGroupRange::for_subtask(MAX, 3, i);
        let d = tempfile::tempdir().unwrap();
        let mut part = open(&d, range);
        for (g, bytes) in groups.iter().filter(|(g, _)| range.contains(*g)) {
            part.restore_key_group(*g, bytes).unwrap();
        }
        for k in (0..800).filter(|k| range.contains(kg(*k))) {
            assert_eq!(read(&mut part, k), expected(k), "key {k} in part {i}");
        }
        assert_eq!(
            part.len(),
            (0..750).filter(|k| range.contains(kg(*k))).count(),
            "part {i}"
        );
    }
}

#[test]
fn the_upload_is_asynchronous_and_sees_the_state_at_the_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_store();
    let mut b = open(&dir, ALL);
    write(&mut b, 0..500, 10);
    let target = target(&job, 1);
    b.prepare_checkpoint(&target).unwrap();
    let groups: Vec<(usize, Vec<u8>)> = ALL
        .iter()
        .map(|kg| (kg, b.snapshot_key_group(kg).unwrap()))
        .collect();
    let upload = b
        .checkpoint_snapshotted()
        .expect("an incremental snapshot uploads later");
    // The synchronous part wrote nothing to storage.
    assert!(job.child("shared").list("").unwrap().is_empty());
    assert!(target.dir.list("").unwrap().is_empty());

    // Processing goes on before the upload: overwrites, new keys, and even the next
    // checkpoint (which flushes the memtable into a new SST file).
    write(&mut b, 0..800, 50);
    checkpoint(&mut b, &job, 2);
    assert!(refs(&job, 1).is_empty(), "checkpoint 1 not uploaded yet");

    upload().unwrap();
    let shared: BTreeSet<String> = job.child("shared").list("").unwrap().into_iter().collect();
    assert!(!refs(&job, 1).is_empty());
    assert!(shared.is_superset(&refs(&job, 1)));

    // Checkpoint 1 holds the state at its barrier, none of the later writes.
    let dir2 = tempfile::tempdir().unwrap();
    let mut restored = open(&dir2, ALL);
    for (g, bytes) in &groups {
        restored.restore_key_group(*g, bytes).unwrap();
    }
    for k in 0..800 {
        assert_eq!(
            read(&mut restored, k),
            (k < 500).then_some(10 + k),
            "key {k}"
        );
    }
}

#[test]
fn a_dropped_upload_removes_its_local_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_store();
    let mut b = open(&dir, ALL);
    write(&mut b, 0..100, 0);
    let entries = || std::fs::read_dir(dir.path()).unwrap().count();
    let before = entries();
    let target = target(&job, 1);
    b.prepare_checkpoint(&target).unwrap();
    assert_eq!(entries(), before + 1, "the hard-linked local checkpoint");
    drop(b.checkpoint_snapshotted());
    assert_eq!(entries(), before);
    assert!(job.child("shared").list("").unwrap().is_empty());
}
