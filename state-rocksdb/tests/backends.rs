//! The backend contract, run against the heap and the RocksDB backend alike (table-driven),
//! and savepoint round trips between them with rescaling.

use fjord::keygroup::KeyGroupRange;
use fjord::state::backend::{StateMeta, StateValue};
use fjord::state::{CheckpointTarget, HeapKeyedStateBackend, KeyedStateBackend};
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord_rocksdb::{RocksDbKeyedStateBackend, RocksDbOptions};
use std::any::Any;
use std::collections::BTreeMap;

const MAX_PARALLELISM: usize = 16;

/// A key's count, count in namespace `ns`, and name.
type Row = (Option<u64>, Option<u64>, Option<String>);

fn ser(v: &(dyn Any + Send)) -> fjord::Result<Vec<u8>> {
    Ok(fjord::encoding::to_vec(v.downcast_ref::<u64>().expect("u64")).unwrap())
}
fn de(b: &[u8]) -> fjord::Result<StateValue> {
    Ok(Box::new(fjord::encoding::from_slice::<u64>(b).unwrap()))
}
fn ser_s(v: &(dyn Any + Send)) -> fjord::Result<Vec<u8>> {
    Ok(fjord::encoding::to_vec(v.downcast_ref::<String>().expect("String")).unwrap())
}
fn de_s(b: &[u8]) -> fjord::Result<StateValue> {
    Ok(Box::new(fjord::encoding::from_slice::<String>(b).unwrap()))
}

fn counter(name: &str) -> StateMeta {
    StateMeta {
        name: name.into(),
        type_name: "u64",
        serialize: ser,
        deserialize: de,
        cleanup: None,
    }
}

fn text(name: &str) -> StateMeta {
    StateMeta {
        name: name.into(),
        type_name: "String",
        serialize: ser_s,
        deserialize: de_s,
        cleanup: None,
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Heap,
    RocksDb,
}

struct Made {
    backend: Box<dyn KeyedStateBackend>,
    _dir: Option<tempfile::TempDir>,
}

fn make(kind: Kind, range: KeyGroupRange) -> Made {
    match kind {
        Kind::Heap => Made {
            backend: Box::new(HeapKeyedStateBackend::new(range)),
            _dir: None,
        },
        Kind::RocksDb => {
            let dir = tempfile::tempdir().unwrap();
            let b = RocksDbKeyedStateBackend::open(
                dir.path(),
                range,
                RocksDbOptions::default(),
                StorageOptions::default(),
            )
            .unwrap();
            Made {
                backend: Box::new(b),
                _dir: Some(dir),
            }
        }
    }
}

fn key(k: u64) -> (Vec<u8>, usize) {
    (k.to_be_bytes().to_vec(), (k as usize * 7) % MAX_PARALLELISM)
}

fn get(b: &mut dyn KeyedStateBackend, state: usize, k: u64, ns: &[u8]) -> Option<u64> {
    let (bytes, kg) = key(k);
    b.set_current_key(&bytes, kg);
    b.get_mut(state, ns)
        .map(|v| *v.downcast_ref::<u64>().unwrap())
}

fn put(b: &mut dyn KeyedStateBackend, state: usize, k: u64, ns: &[u8], v: u64) {
    let (bytes, kg) = key(k);
    b.set_current_key(&bytes, kg);
    b.put(state, ns, Box::new(v));
}

/// The backend among `backends` whose key groups hold key `k`, with `k` its current key.
fn holder(backends: &mut [Made], k: u64) -> &mut dyn KeyedStateBackend {
    let (bytes, kg) = key(k);
    let m = backends
        .iter_mut()
        .find(|m| m.backend.key_group_range().contains(kg))
        .unwrap();
    m.backend.set_current_key(&bytes, kg);
    m.backend.as_mut()
}

const ALL: KeyGroupRange = KeyGroupRange {
    start: 0,
    end: MAX_PARALLELISM - 1,
};

#[test]
fn the_contract_holds_for_every_backend() {
    for kind in [Kind::Heap, Kind::RocksDb] {
        let mut m = make(kind, ALL);
        let b = m.backend.as_mut();
        let c = b.register(counter("count")).unwrap();
        let t = b.register(text("name")).unwrap();
        assert_eq!(b.register(counter("count")).unwrap(), c, "{kind:?}");
        assert!(
            b.register(text("count")).is_err(),
            "{kind:?}: type mismatch"
        );
        assert!(b.is_empty(), "{kind:?}");

        put(b, c, 1, b"", 10);
        put(b, c, 2, b"", 20);
        put(b, c, 2, b"w1", 21);
        let (k3, g3) = key(3);
        b.set_current_key(&k3, g3);
        b.put(t, b"", Box::new("three".to_string()));
        assert_eq!(b.current_key(), k3.as_slice(), "{kind:?}");
        assert_eq!(b.len(), 4, "{kind:?}");

        // In-place changes through get_mut survive a key switch.
        let (k1, g1) = key(1);
        b.set_current_key(&k1, g1);
        *b.get_mut(c, b"").unwrap().downcast_mut::<u64>().unwrap() += 5;
        assert_eq!(get(b, c, 2, b""), Some(20), "{kind:?}");
        assert_eq!(get(b, c, 1, b""), Some(15), "{kind:?}");
        assert_eq!(get(b, c, 1, b"w1"), None, "{kind:?}");
        assert_eq!(get(b, c, 4, b""), None, "{kind:?}");

        let mut keys = b.keys(c, b"");
        keys.sort();
        let mut expected = vec![key(1), key(2)];
        expected.sort();
        assert_eq!(keys, expected, "{kind:?}");
        assert_eq!(b.keys(c, b"w1"), vec![key(2)], "{kind:?}");

        // remove returns the value, including one changed in place and not yet written back.
        b.set_current_key(&k1, g1);
        *b.get_mut(c, b"").unwrap().downcast_mut::<u64>().unwrap() += 1;
        let removed = b.remove(c, b"").map(|v| *v.downcast::<u64>().unwrap());
        assert_eq!(removed, Some(16), "{kind:?}");
        assert!(b.remove(c, b"").is_none(), "{kind:?}");
        assert_eq!(get(b, c, 1, b""), None, "{kind:?}");
        assert_eq!(b.len(), 3, "{kind:?}");
    }
}

#[test]
fn snapshots_include_values_changed_in_place() {
    for kind in [Kind::Heap, Kind::RocksDb] {
        let mut m = make(kind, ALL);
        let b = m.backend.as_mut();
        let c = b.register(counter("count")).unwrap();
        put(b, c, 5, b"", 1);
        let (k, g) = key(5);
        b.set_current_key(&k, g);
        *b.get_mut(c, b"").unwrap().downcast_mut::<u64>().unwrap() = 99;
        // Still the current key: the snapshot must see 99.
        let bytes = b.snapshot_key_group(g).unwrap();
        let mut fresh = make(Kind::Heap, ALL);
        fresh.backend.restore_key_group(g, &bytes).unwrap();
        let c2 = fresh.backend.register(counter("count")).unwrap();
        assert_eq!(
            get(fresh.backend.as_mut(), c2, 5, b""),
            Some(99),
            "{kind:?}"
        );
    }
}

/// Key -> (count, namespace count, name) for keys 0..n.
fn fill(backends: &mut [Made], n: u64) {
    for m in backends.iter_mut() {
        m.backend.register(counter("count")).unwrap();
        m.backend.register(text("name")).unwrap();
    }
    for k in 0..n {
        let b = holder(backends, k);
        b.put(0, b"", Box::new(k * 3));
        b.put(0, b"ns", Box::new(k + 1));
        b.put(1, b"", Box::new(format!("key-{k}")));
    }
}

fn contents(backends: &mut [Made], n: u64) -> BTreeMap<u64, Row> {
    let mut out = BTreeMap::new();
    for m in backends.iter_mut() {
        m.backend.register(counter("count")).unwrap();
        m.backend.register(text("name")).unwrap();
    }
    for k in 0..n {
        let b = holder(backends, k);
        let c = b.get_mut(0, b"").map(|v| *v.downcast_ref::<u64>().unwrap());
        let ns = b
            .get_mut(0, b"ns")
            .map(|v| *v.downcast_ref::<u64>().unwrap());
        let name = b
            .get_mut(1, b"")
            .map(|v| v.downcast_ref::<String>().unwrap().clone());
        out.insert(k, (c, ns, name));
    }
    out
}

/// Takes a savepoint of `from` (canonical format through the checkpoint path) and restores
/// it into `parallelism` new backends of `kind`.
fn savepoint_into(from: &mut [Made], kind: Kind, parallelism: usize) -> Vec<Made> {
    let dir = SnapshotStore::open(
        &format!("memory://savepoints-{}/sp", rand::random::<u64>()),
        &StorageOptions::default(),
    )
    .unwrap();
    let target = CheckpointTarget {
        checkpoint_id: 1,
        savepoint: true,
        dir,
        shared: None,
    };
    let mut groups = Vec::new();
    for m in from.iter_mut() {
        m.backend.prepare_checkpoint(&target).unwrap();
        for kg in m.backend.key_group_range().iter() {
            groups.push((kg, m.backend.snapshot_key_group(kg).unwrap()));
        }
        assert!(
            m.backend.checkpoint_snapshotted().is_none(),
            "savepoints are canonical: nothing to upload"
        );
    }
    (0..parallelism)
        .map(|i| {
            let range = KeyGroupRange::for_subtask(MAX_PARALLELISM, parallelism, i);
            let mut m = make(kind, range);
            for (kg, bytes) in groups.iter().filter(|(kg, _)| range.contains(*kg)) {
                m.backend.restore_key_group(*kg, bytes).unwrap();
            }
            m
        })
        .collect()
}

fn at(kind: Kind, parallelism: usize) -> Vec<Made> {
    (0..parallelism)
        .map(|i| {
            make(
                kind,
                KeyGroupRange::for_subtask(MAX_PARALLELISM, parallelism, i),
            )
        })
        .collect()
}

#[test]
fn savepoints_move_between_backends_and_parallelisms() {
    const N: u64 = 500;
    let cases = [
        // heap(2) -> RocksDB(3) -> heap(1)
        [(Kind::Heap, 2), (Kind::RocksDb, 3), (Kind::Heap, 1)],
        // RocksDB(2) -> heap(3) -> RocksDB(1)
        [(Kind::RocksDb, 2), (Kind::Heap, 3), (Kind::RocksDb, 1)],
    ];
    for case in cases {
        let mut current = at(case[0].0, case[0].1);
        fill(&mut current, N);
        let expected = contents(&mut current, N);
        assert_eq!(expected[&7], (Some(21), Some(8), Some("key-7".into())));
        for (kind, parallelism) in &case[1..] {
            current = savepoint_into(&mut current, *kind, *parallelism);
            assert_eq!(
                contents(&mut current, N),
                expected,
                "{case:?} at {kind:?}({parallelism})"
            );
        }
    }
}

/// Canonical key group snapshots of format 1 or 2 (key groups by the keys' old hash, faked
/// here as `k % MAX_PARALLELISM`) are re-bucketed by the key group of their key bytes when
/// every subtask restores all of them with `restore_rehashed`: each key lands in exactly the
/// subtask owning its new key group, in both backends.
#[test]
fn old_format_groups_are_rehashed_by_key_bytes_in_both_backends() {
    use fjord::keygroup::{Rehash, key_group_of_bytes};
    use fjord::state::GroupSnapshot;
    const N: u64 = 300;
    let bytes_of = |k: u64| fjord::encoding::to_vec(&format!("key-{k}")).unwrap();
    let mut old: BTreeMap<usize, GroupSnapshot> = BTreeMap::new();
    for k in 0..N {
        let g = old
            .entry(k as usize % MAX_PARALLELISM)
            .or_insert_with(|| GroupSnapshot {
                states: vec![("count".into(), Vec::new()), ("name".into(), Vec::new())],
            });
        g.states[0].1.push((
            bytes_of(k),
            Vec::new(),
            fjord::encoding::to_vec(&(k * 3)).unwrap(),
        ));
        g.states[1].1.push((
            bytes_of(k),
            Vec::new(),
            fjord::encoding::to_vec(&format!("v{k}")).unwrap(),
        ));
    }
    let moved = (0..N)
        .filter(|k| {
            key_group_of_bytes(&bytes_of(*k), MAX_PARALLELISM) != *k as usize % MAX_PARALLELISM
        })
        .count();
    assert!(moved > N as usize / 2, "the fake old key groups differ");
    for kind in [Kind::Heap, Kind::RocksDb] {
        let mut subtasks = at(kind, 3);
        for m in &mut subtasks {
            let rehash = Rehash {
                range: m.backend.key_group_range(),
                max_parallelism: MAX_PARALLELISM,
            };
            for (kg, snap) in &old {
                m.backend
                    .restore_rehashed(*kg, &snap.encode(*kg).unwrap(), rehash)
                    .unwrap();
            }
            m.backend.register(counter("count")).unwrap();
            m.backend.register(text("name")).unwrap();
        }
        let total: usize = subtasks.iter().map(|m| m.backend.len()).sum();
        assert_eq!(total, 2 * N as usize, "{kind:?}: every entry restored once");
        for k in 0..N {
            let bytes = bytes_of(k);
            let kg = key_group_of_bytes(&bytes, MAX_PARALLELISM);
            let m = subtasks
                .iter_mut()
                .find(|m| m.backend.key_group_range().contains(kg))
                .unwrap();
            let b = m.backend.as_mut();
            b.set_current_key(&bytes, kg);
            let count = b.get_mut(0, b"").map(|v| *v.downcast_ref::<u64>().unwrap());
            let name = b
                .get_mut(1, b"")
                .map(|v| v.downcast_ref::<String>().unwrap().clone());
            assert_eq!(
                (count, name),
                (Some(k * 3), Some(format!("v{k}"))),
                "{kind:?} key {k}"
            );
        }
    }
}

/// An incremental RocksDB checkpoint of format 1 or 2 cannot be re-bucketed: the restore fails
/// with an error that says to restore from a savepoint.
#[test]
fn old_format_incremental_checkpoints_are_refused_with_a_pointer_to_savepoints() {
    let job = SnapshotStore::open(
        &format!("memory://rehash-{}/job", rand::random::<u64>()),
        &StorageOptions::default(),
    )
    .unwrap();
    let mut m = make(Kind::RocksDb, ALL);
    m.backend.register(counter("count")).unwrap();
    put(m.backend.as_mut(), 0, 1, b"", 10);
    let target = CheckpointTarget {
        checkpoint_id: 1,
        savepoint: false,
        dir: job.child("chk-1"),
        shared: Some(job.child("shared")),
    };
    m.backend.prepare_checkpoint(&target).unwrap();
    let reference = m.backend.snapshot_key_group(0).unwrap();
    drop(m.backend.checkpoint_snapshotted());
    let mut fresh = make(Kind::RocksDb, ALL);
    let rehash = fjord::keygroup::Rehash {
        range: ALL,
        max_parallelism: MAX_PARALLELISM,
    };
    let err = fresh
        .backend
        .restore_rehashed(0, &reference, rehash)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("incremental RocksDB checkpoint") && err.contains("savepoint"),
        "{err}"
    );
}

fn ser_list(v: &(dyn Any + Send)) -> fjord::Result<Vec<u8>> {
    Ok(fjord::encoding::to_vec(v.downcast_ref::<Vec<u64>>().expect("Vec<u64>")).unwrap())
}
fn de_list(b: &[u8]) -> fjord::Result<StateValue> {
    Ok(Box::new(
        fjord::encoding::from_slice::<Vec<u64>>(b).unwrap(),
    ))
}
fn extend_list(list: &mut (dyn Any + Send), more: StateValue) {
    let more = more.downcast::<Vec<u64>>().unwrap();
    list.downcast_mut::<Vec<u64>>().unwrap().extend(*more);
}
fn numbers() -> StateMeta {
    StateMeta {
        name: "numbers".into(),
        type_name: "Vec<u64>",
        serialize: ser_list,
        deserialize: de_list,
        cleanup: None,
    }
}

/// Key -> its list of `numbers`, for keys 0..n, from whichever backend holds the key.
fn lists(backends: &mut [Made], n: u64) -> BTreeMap<u64, Option<Vec<u64>>> {
    (0..n)
        .map(|k| {
            let b = holder(backends, k);
            let id = b.register(numbers()).unwrap();
            let list = b
                .get_mut(id, b"")
                .map(|v| v.downcast_ref::<Vec<u64>>().unwrap().clone());
            (k, list)
        })
        .collect()
}

/// `append` (RocksDB: a merge, or the cached list when the key's list was read) gives the
/// lists of every append in order, read back directly, after a native flush of the
/// memtables, and through savepoints into the other backend.
#[test]
fn appended_lists_read_back_and_move_through_savepoints() {
    const N: u64 = 60;
    for (kind, other) in [(Kind::Heap, Kind::RocksDb), (Kind::RocksDb, Kind::Heap)] {
        let mut m = make(kind, ALL);
        let b = m.backend.as_mut();
        let id = b.register(numbers()).unwrap();
        let mut want: BTreeMap<u64, Option<Vec<u64>>> = (0..N).map(|k| (k, None)).collect();
        for round in 0..4u64 {
            for k in (0..N).filter(|k| k % 5 != 4) {
                let (bytes, kg) = key(k);
                b.set_current_key(&bytes, kg);
                if k % 7 == 0 && round == 2 {
                    // Read first: the next appends go to the cached list.
                    assert_eq!(
                        b.get_mut(id, b"")
                            .map(|v| v.downcast_ref::<Vec<u64>>().unwrap().clone()),
                        want[&k],
                        "{kind:?} key {k}"
                    );
                }
                let new: Vec<u64> = (0..=round).map(|j| k * 1000 + round * 10 + j).collect();
                want.get_mut(&k)
                    .unwrap()
                    .get_or_insert_default()
                    .extend(&new);
                b.append(id, b"", Box::new(new), extend_list);
            }
        }
        // A list replaced by `put` after appends, and one removed.
        let (bytes, kg) = key(3);
        b.set_current_key(&bytes, kg);
        b.put(id, b"", Box::new(vec![7u64]));
        *want.get_mut(&3).unwrap() = Some(vec![7]);
        let (bytes, kg) = key(6);
        b.set_current_key(&bytes, kg);
        assert!(b.remove(id, b"").is_some(), "{kind:?}");
        *want.get_mut(&6).unwrap() = None;
        let mut current = vec![m];
        assert_eq!(lists(&mut current, N), want, "{kind:?}");
        for (to, parallelism) in [(other, 3), (kind, 1)] {
            current = savepoint_into(&mut current, to, parallelism);
            assert_eq!(
                lists(&mut current, N),
                want,
                "{kind:?} -> {to:?}({parallelism})"
            );
        }
    }
}
