//! Full checkpoints (Flink's `CheckpointType.FULL`, a checkpoint target without a shared
//! directory) with incremental RocksDB checkpoints on: the full one needs no shared file, and
//! the next incremental one reuses nothing from before it, because retention may already have
//! deleted those files once the full checkpoint replaced the older ones.

use fjord::keygroup::KeyGroupRange;
use fjord::state::backend::{StateMeta, StateValue};
use fjord::state::{CheckpointTarget, KeyedStateBackend};
use fjord::storage::layout::SHARED_REFS_DIR;
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord_rocksdb::{RocksDbKeyedStateBackend, RocksDbOptions};
use std::any::Any;

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

fn open(dir: &tempfile::TempDir) -> RocksDbKeyedStateBackend {
    let mut b = RocksDbKeyedStateBackend::open(
        dir.path(),
        ALL,
        RocksDbOptions::default(),
        StorageOptions::default(),
    )
    .unwrap();
    b.register(StateMeta {
        name: "count".into(),
        type_name: "u64",
        serialize: ser,
        deserialize: de,
        cleanup: None,
    })
    .unwrap();
    b
}

fn write(b: &mut RocksDbKeyedStateBackend, keys: std::ops::Range<u64>, value: u64) {
    for k in keys {
        b.set_current_key(&k.to_be_bytes(), k as usize % MAX);
        b.put(0, b"", Box::new(value + k));
    }
}

fn read(b: &mut RocksDbKeyedStateBackend, k: u64) -> Option<u64> {
    b.set_current_key(&k.to_be_bytes(), k as usize % MAX);
    b.get_mut(0, b"").map(|v| *v.downcast_ref::<u64>().unwrap())
}

/// Takes and completes checkpoint `id` (full: no shared directory, as the participant asks
/// for a FULL checkpoint); returns what each key group wrote.
fn checkpoint(
    b: &mut RocksDbKeyedStateBackend,
    job: &SnapshotStore,
    id: u64,
    full: bool,
) -> Vec<(usize, Vec<u8>)> {
    let target = CheckpointTarget {
        checkpoint_id: id,
        savepoint: false,
        dir: job.child(&format!("chk-{id}")),
        shared: (!full).then(|| job.child("shared")),
    };
    b.prepare_checkpoint(&target).unwrap();
    let groups = ALL
        .iter()
        .map(|kg| (kg, b.snapshot_key_group(kg).unwrap()))
        .collect();
    if let Some(upload) = b.checkpoint_snapshotted() {
        upload().unwrap();
    }
    b.notify_checkpoint_complete(id).unwrap();
    groups
}

fn restored(groups: &[(usize, Vec<u8>)]) -> (tempfile::TempDir, RocksDbKeyedStateBackend) {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    for (g, bytes) in groups {
        b.restore_key_group(*g, bytes).unwrap();
    }
    (dir, b)
}

#[test]
fn a_full_checkpoint_stands_alone_and_the_next_incremental_one_reuses_nothing_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let job = SnapshotStore::open(
        &format!("memory://full-checkpoints-{}/job", rand::random::<u64>()),
        &StorageOptions::default(),
    )
    .unwrap();
    let mut b = open(&dir);
    write(&mut b, 0..500, 10);
    checkpoint(&mut b, &job, 1, false);
    assert!(b.last_snapshot_stats().uploaded_shared_files >= 1);

    write(&mut b, 500..600, 20);
    let full = checkpoint(&mut b, &job, 2, true);
    assert!(
        job.child("chk-2").list(SHARED_REFS_DIR).unwrap().is_empty(),
        "a full checkpoint references no shared file"
    );
    // Retention with one checkpoint retained: checkpoint 1 and the shared files only it
    // referenced are gone. The full checkpoint restores without them.
    job.child("chk-1").delete_prefix("").unwrap();
    job.child("shared").delete_prefix("").unwrap();
    let expected = |k: u64| match k {
        0..500 => Some(10 + k),
        500..600 => Some(20 + k),
        _ => None,
    };
    let (_d, mut from_full) = restored(&full);
    for k in 0..700 {
        assert_eq!(
            read(&mut from_full, k),
            expected(k),
            "key {k} from the full checkpoint"
        );
    }

    // The next incremental checkpoint uploads its files again instead of pointing at the
    // deleted ones, and restores.
    write(&mut b, 600..650, 30);
    let next = checkpoint(&mut b, &job, 3, false);
    let stats = b.last_snapshot_stats();
    assert_eq!(stats.reused_shared_files, 0, "{stats:?}");
    assert!(stats.uploaded_shared_files >= 1, "{stats:?}");
    let (_d, mut from_next) = restored(&next);
    for k in 0..700 {
        let want = if (600..650).contains(&k) {
            Some(30 + k)
        } else {
            expected(k)
        };
        assert_eq!(read(&mut from_next, k), want, "key {k} from checkpoint 3");
    }
}
