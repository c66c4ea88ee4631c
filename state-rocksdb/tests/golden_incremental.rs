//! An incremental checkpoint written by Debian's RocksDB 7.8.3 restores with the RocksDB linked
//! now (still that one; the test is there for the move to a RocksDB built from source).
//!
//! Incremental checkpoints hold RocksDB's own table files, so they are the snapshots a RocksDB
//! upgrade can break (savepoints hold Fjord's canonical format; `golden_savepoints.rs` pins
//! those). `tests/golden/rocksdb-7.8-incremental/` holds two incremental checkpoints of one
//! backend, the second sharing the first's files, written with Debian's RocksDB 7.8.3 (the
//! `rocksdb` crate 0.20.1, linked dynamically) by `write_golden_incremental_checkpoint`
//! (ignored) at commit c8b7c0a, the last one linking that RocksDB:
//!
//! ```text
//! git worktree add /tmp/old c8b7c0a && cp state-rocksdb/tests/golden_incremental.rs /tmp/old/state-rocksdb/tests/
//! cd /tmp/old && ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu FJORD_WRITE_GOLDEN=1 \
//!     cargo test -p fjord-rocksdb --test golden_incremental -- --ignored
//! cp -r /tmp/fjord-golden-rocksdb-incremental/. <repo>/state-rocksdb/tests/golden/rocksdb-7.8-incremental/
//! ```
//!
//! A checkpoint names its files by absolute URL (`file:///tmp/fjord-golden-rocksdb-incremental/...`),
//! as checkpoints do (they are not relocatable, as in Flink), so the test copies the golden
//! files to that path before restoring.

use fjord::keygroup::KeyGroupRange;
use fjord::state::backend::{StateMeta, StateValue};
use fjord::state::{CheckpointTarget, KeyedStateBackend};
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord_rocksdb::{RocksDbKeyedStateBackend, RocksDbOptions};
use std::any::Any;
use std::path::{Path, PathBuf};

const MAX: usize = 8;
const ALL: KeyGroupRange = KeyGroupRange {
    start: 0,
    end: MAX - 1,
};
/// Where the checkpoints were written, and where the test puts them back.
const WRITTEN_AT: &str = "/tmp/fjord-golden-rocksdb-incremental";
/// The key-group handles of checkpoint 2, as the task writes them into its state files.
const GROUPS_FILE: &str = "groups.bin";

fn ser(v: &(dyn Any + Send)) -> fjord::Result<Vec<u8>> {
    Ok(fjord::encoding::to_vec(v.downcast_ref::<u64>().expect("u64")).unwrap())
}
fn de(b: &[u8]) -> fjord::Result<StateValue> {
    Ok(Box::new(fjord::encoding::from_slice::<u64>(b).unwrap()))
}

fn open(dir: &Path, range: KeyGroupRange) -> RocksDbKeyedStateBackend {
    let mut b = RocksDbKeyedStateBackend::open(
        dir,
        range,
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

/// The state checkpoint 2 holds.
fn expected(k: u64) -> Option<u64> {
    match k {
        0..250 => Some(10 + k),
        250..750 => Some(20 + k),
        _ => None,
    }
}

fn checkpoint(
    b: &mut RocksDbKeyedStateBackend,
    job: &SnapshotStore,
    id: u64,
) -> Vec<(usize, Vec<u8>)> {
    let target = CheckpointTarget {
        checkpoint_id: id,
        savepoint: false,
        dir: job.child(&format!("chk-{id}")),
        shared: Some(job.child("shared")),
    };
    b.prepare_checkpoint(&target).unwrap();
    let groups = b
        .key_group_range()
        .iter()
        .map(|kg| (kg, b.snapshot_key_group(kg).unwrap()))
        .collect();
    if let Some(upload) = b.checkpoint_snapshotted() {
        upload().unwrap();
    }
    b.notify_checkpoint_complete(id).unwrap();
    groups
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rocksdb-7.8-incremental")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
#[ignore = "writes the golden files; run only with the RocksDB they are to be written by"]
fn write_golden_incremental_checkpoint() {
    assert_eq!(
        std::env::var("FJORD_WRITE_GOLDEN").as_deref(),
        Ok("1"),
        "set FJORD_WRITE_GOLDEN=1 to overwrite {WRITTEN_AT}"
    );
    if Path::new(WRITTEN_AT).exists() {
        std::fs::remove_dir_all(WRITTEN_AT).unwrap();
    }
    let job = SnapshotStore::open(
        &format!("file://{WRITTEN_AT}/job"),
        &StorageOptions::default(),
    )
    .unwrap();
    let local = tempfile::tempdir().unwrap();
    let mut b = open(local.path(), ALL);
    write(&mut b, 0..500, 10);
    checkpoint(&mut b, &job, 1);
    write(&mut b, 250..750, 20);
    let groups = checkpoint(&mut b, &job, 2);
    std::fs::write(
        Path::new(WRITTEN_AT).join(GROUPS_FILE),
        fjord::encoding::to_vec(&groups).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_incremental_checkpoint_of_rocksdb_7_8_restores_at_the_same_and_other_parallelisms() {
    if Path::new(WRITTEN_AT).exists() {
        std::fs::remove_dir_all(WRITTEN_AT).unwrap();
    }
    copy_dir(&golden_dir(), Path::new(WRITTEN_AT));
    let groups: Vec<(usize, Vec<u8>)> = fjord::encoding::from_slice(
        &std::fs::read(Path::new(WRITTEN_AT).join(GROUPS_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(groups.len(), MAX);

    // Same key groups: the old instance is downloaded and opened as it is.
    let same_dir = tempfile::tempdir().unwrap();
    let mut same = open(same_dir.path(), ALL);
    for (g, bytes) in &groups {
        same.restore_key_group(*g, bytes).unwrap();
    }
    for k in 0..800 {
        assert_eq!(read(&mut same, k), expected(k), "key {k}");
    }
    // The restored instance keeps working: new writes and a new incremental checkpoint
    // (into another directory) on top of the old table files.
    write(&mut same, 750..760, 30);
    let next = SnapshotStore::open(
        &format!("memory://golden-incremental-{}/job", rand::random::<u64>()),
        &StorageOptions::default(),
    )
    .unwrap();
    let again = checkpoint(&mut same, &next, 3);
    let again_dir = tempfile::tempdir().unwrap();
    let mut reopened = open(again_dir.path(), ALL);
    for (g, bytes) in &again {
        reopened.restore_key_group(*g, bytes).unwrap();
    }
    for k in 0..800 {
        let want = if (750..760).contains(&k) {
            Some(30 + k)
        } else {
            expected(k)
        };
        assert_eq!(
            read(&mut reopened, k),
            want,
            "key {k} after a checkpoint of the restored state"
        );
    }

    // Rescaled to 3: each backend copies its key groups out of the old instance.
    for i in 0..3 {
        let range = KeyGroupRange::for_subtask(MAX, 3, i);
        let d = tempfile::tempdir().unwrap();
        let mut part = open(d.path(), range);
        for (g, bytes) in groups.iter().filter(|(g, _)| range.contains(*g)) {
            part.restore_key_group(*g, bytes).unwrap();
        }
        for k in (0..800).filter(|k| range.contains(kg(*k))) {
            assert_eq!(read(&mut part, k), expected(k), "key {k} in part {i}");
        }
    }
}
