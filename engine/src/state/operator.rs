//! Operator state: state of a parallel operator instance rather than of a key (Flink's
//! `OperatorStateStore`). The hooks a function implements to snapshot and restore it (Flink's
//! `CheckpointedFunction`) are user function traits, in [`crate::functions`].
//!
//! List state is stored element by element, serialized, so that on rescaling the elements of
//! all old instances can be redistributed without knowing their type: *even split* hands each
//! new instance a contiguous, nearly equal share; *union* hands every new instance all
//! elements. Broadcast state is a map that is identical on every instance.

#![allow(clippy::type_complexity)] // closures and nested maps read clearer inline here

use crate::error::{FjordError, Result};
use crate::keygroup::FastMap;
use crate::types::{Data, Key};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// How a list state is redistributed when parallelism changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RedistributionMode {
    /// Elements are split evenly over the new instances (`getListState`).
    EvenSplit,
    /// Every new instance gets all elements (`getUnionListState`).
    Union,
    /// The same map on every instance; one copy is restored (broadcast state).
    Broadcast,
}

/// A list of values kept by one operator instance.
pub struct OperatorListState<V> {
    items: Arc<Mutex<Vec<V>>>,
}

impl<V> Clone for OperatorListState<V> {
    fn clone(&self) -> Self {
        OperatorListState {
            items: self.items.clone(),
        }
    }
}

impl<V: Clone> OperatorListState<V> {
    /// All elements.
    pub fn get(&self) -> Vec<V> {
        self.items.lock().clone()
    }
    /// Appends an element.
    pub fn add(&self, value: V) {
        self.items.lock().push(value);
    }
    /// Replaces all elements.
    pub fn update(&self, values: Vec<V>) {
        *self.items.lock() = values;
    }
    /// Removes all elements.
    pub fn clear(&self) {
        self.items.lock().clear();
    }
}

/// A map that is the same on all instances of an operator (Flink's `BroadcastState`):
/// writable only where broadcast elements are processed, read-only elsewhere.
pub struct BroadcastState<K, V> {
    pub(crate) map: Arc<Mutex<FastMap<K, V>>>,
}

impl<K, V> Clone for BroadcastState<K, V> {
    fn clone(&self) -> Self {
        BroadcastState {
            map: self.map.clone(),
        }
    }
}

impl<K: Key, V: Data> BroadcastState<K, V> {
    pub(crate) fn new() -> Self {
        BroadcastState {
            map: Arc::new(Mutex::new(FastMap::default())),
        }
    }
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.map.lock().get(key).cloned()
    }
    /// True if `key` is present.
    pub fn contains(&self, key: &K) -> bool {
        self.map.lock().contains_key(key)
    }
    /// All entries (in no particular order).
    pub fn entries(&self) -> Vec<(K, V)> {
        self.map
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    /// Sets `key` (broadcast side only).
    pub fn put(&self, key: K, value: V) {
        self.map.lock().insert(key, value);
    }
    /// Removes `key` (broadcast side only).
    pub fn remove(&self, key: &K) {
        self.map.lock().remove(key);
    }
    /// Removes everything (broadcast side only).
    pub fn clear(&self) {
        self.map.lock().clear();
    }
}

type SnapshotFn = Box<dyn Fn() -> Result<Vec<Vec<u8>>> + Send>;

/// The operator state of one operator instance: named list states and broadcast states.
#[derive(Default)]
pub struct OperatorStateStore {
    states: Vec<(String, RedistributionMode, SnapshotFn)>,
    restored: HashMap<String, Vec<Vec<u8>>>,
    restoring: bool,
}

fn ser<V: serde::Serialize>(v: &V) -> Result<Vec<u8>> {
    crate::encoding::to_vec(v).map_err(|e| FjordError::Serialization {
        context: "operator state".into(),
        message: e.to_string(),
    })
}

fn de<V: serde::de::DeserializeOwned>(b: &[u8]) -> Result<V> {
    crate::encoding::from_slice(b).map_err(|e| FjordError::Serialization {
        context: "operator state".into(),
        message: e.to_string(),
    })
}

impl OperatorStateStore {
    /// A store that restores the given states (name → serialized elements, already
    /// redistributed for this instance).
    pub fn restored(states: HashMap<String, Vec<Vec<u8>>>) -> Self {
        OperatorStateStore {
            states: Vec::new(),
            restored: states,
            restoring: true,
        }
    }

    /// True when this instance starts from a snapshot.
    pub fn is_restored(&self) -> bool {
        self.restoring
    }

    fn list<V: Data>(
        &mut self,
        name: &str,
        mode: RedistributionMode,
    ) -> Result<OperatorListState<V>> {
        if self.states.iter().any(|(n, _, _)| n == name) {
            return Err(FjordError::StateTypeMismatch {
                name: name.to_string(),
                registered: "an operator state".into(),
                requested: std::any::type_name::<V>().into(),
            });
        }
        let initial = match self.restored.remove(name) {
            Some(items) => items
                .iter()
                .map(|b| de::<V>(b))
                .collect::<Result<Vec<V>>>()?,
            None => Vec::new(),
        };
        let items = Arc::new(Mutex::new(initial));
        let snap = items.clone();
        self.states.push((
            name.to_string(),
            mode,
            Box::new(move || snap.lock().iter().map(ser).collect::<Result<Vec<_>>>()),
        ));
        Ok(OperatorListState { items })
    }

    /// A list state redistributed by even split on rescaling (Flink's `getListState`).
    pub fn get_list_state<V: Data>(&mut self, name: &str) -> Result<OperatorListState<V>> {
        self.list(name, RedistributionMode::EvenSplit)
    }

    /// A list state of which every instance gets all elements on restore (Flink's
    /// `getUnionListState`).
    pub fn get_union_list_state<V: Data>(&mut self, name: &str) -> Result<OperatorListState<V>> {
        self.list(name, RedistributionMode::Union)
    }

    /// Registers a broadcast state so it is snapshotted and restored.
    pub fn register_broadcast_state<K: Key, V: Data>(
        &mut self,
        name: &str,
        state: &BroadcastState<K, V>,
    ) -> Result<()> {
        if let Some(items) = self.restored.remove(name) {
            let mut map = state.map.lock();
            for b in items {
                let (k, v): (K, V) = de(&b)?;
                map.insert(k, v);
            }
        }
        let snap = state.map.clone();
        self.states.push((
            name.to_string(),
            RedistributionMode::Broadcast,
            Box::new(move || {
                snap.lock()
                    .iter()
                    .map(|e| ser(&e))
                    .collect::<Result<Vec<_>>>()
            }),
        ));
        Ok(())
    }

    /// Snapshot of every state: name, redistribution mode and serialized elements.
    pub fn snapshot(&self) -> Result<Vec<(String, RedistributionMode, Vec<Vec<u8>>)>> {
        self.states
            .iter()
            .map(|(n, m, f)| Ok((n.clone(), *m, f()?)))
            .collect()
    }
}

/// Marks operator state written by [`OperatorStateStore::snapshot_bytes`], so a restore can
/// tell it from opaque operator state (a source's read position) and redistribute it.
const STORE_MAGIC: &[u8] = b"FJORD-OPERATOR-STATE/1\0";

/// The canonical snapshot of one instance's [`OperatorStateStore`]: every named state with
/// its redistribution mode and serialized elements.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoreSnapshot {
    pub(crate) states: Vec<(String, RedistributionMode, Vec<Vec<u8>>)>,
}

impl StoreSnapshot {
    /// Serializes with the marker in front.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = STORE_MAGIC.to_vec();
        out.extend(ser(self)?);
        Ok(out)
    }

    /// Reads a snapshot; `None` when the bytes are not an operator state store's.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Result<StoreSnapshot>> {
        bytes.strip_prefix(STORE_MAGIC).map(de::<StoreSnapshot>)
    }

    /// The states of new instance `subtask` of `parallelism`, from the snapshots of all old
    /// instances (in old subtask order): even-split lists are split, union lists and
    /// broadcast states go to every instance (broadcast state from the first old instance,
    /// as all are equal). With unchanged parallelism every instance keeps its own state,
    /// except union lists, which every instance still gets all of (as in Flink: a union list
    /// is what all instances knew together, whatever the parallelism).
    pub(crate) fn redistribute(
        old: &[StoreSnapshot],
        subtask: usize,
        parallelism: usize,
    ) -> StoreSnapshot {
        if old.len() == parallelism {
            let mut own = old.get(subtask).cloned().unwrap_or_default();
            for (name, mode, items) in &mut own.states {
                if *mode == RedistributionMode::Union {
                    *items = old
                        .iter()
                        .flat_map(|s| s.states.iter())
                        .filter(|(n, _, _)| n == &*name)
                        .flat_map(|(_, _, items)| items.iter().cloned())
                        .collect();
                }
            }
            return own;
        }
        let mut names: Vec<(String, RedistributionMode)> = Vec::new();
        for s in old {
            for (n, m, _) in &s.states {
                if !names.iter().any(|(x, _)| x == n) {
                    names.push((n.clone(), *m));
                }
            }
        }
        let states = names
            .into_iter()
            .map(|(name, mode)| {
                let per_old: Vec<Vec<Vec<u8>>> = old
                    .iter()
                    .map(|s| {
                        s.states
                            .iter()
                            .find(|(n, _, _)| *n == name)
                            .map(|(_, _, items)| items.clone())
                            .unwrap_or_default()
                    })
                    .collect();
                let items = match mode {
                    RedistributionMode::EvenSplit => redistribute_even_split(&per_old, parallelism)
                        .swap_remove(subtask.min(parallelism.max(1) - 1)),
                    RedistributionMode::Union => per_old.concat(),
                    RedistributionMode::Broadcast => per_old
                        .into_iter()
                        .find(|v| !v.is_empty())
                        .unwrap_or_default(),
                };
                (name, mode, items)
            })
            .collect();
        StoreSnapshot { states }
    }
}

impl OperatorStateStore {
    /// A store restored from bytes written by [`snapshot_bytes`](Self::snapshot_bytes)
    /// (already redistributed for this instance), or an empty store for `None`.
    ///
    /// # Errors
    /// Bytes that are not an operator state store's snapshot.
    pub(crate) fn from_restored(bytes: Option<&[u8]>) -> Result<Self> {
        let Some(bytes) = bytes else {
            return Ok(OperatorStateStore::default());
        };
        let snap = StoreSnapshot::decode(bytes).ok_or_else(|| {
            FjordError::Restore(
                "the operator's snapshot holds no operator state store; was the operator replaced by another kind?".into(),
            )
        })??;
        Ok(OperatorStateStore::restored(
            snap.states
                .into_iter()
                .map(|(n, _, items)| (n, items))
                .collect(),
        ))
    }

    /// The canonical snapshot of every state, serialized.
    pub(crate) fn snapshot_bytes(&self) -> Result<Vec<u8>> {
        StoreSnapshot {
            states: self.snapshot()?,
        }
        .encode()
    }
}

/// Splits the elements of all old instances (in instance order) into `parallelism` contiguous
/// shares whose sizes differ by at most one (Flink's even-split redistribution).
pub fn redistribute_even_split<E: Clone>(old: &[Vec<E>], parallelism: usize) -> Vec<Vec<E>> {
    let all: Vec<E> = old.iter().flatten().cloned().collect();
    let p = parallelism.max(1);
    let (base, extra) = (all.len() / p, all.len() % p);
    let mut out = Vec::with_capacity(p);
    let mut start = 0;
    for i in 0..p {
        let n = base + usize::from(i < extra);
        out.push(all[start..start + n].to_vec());
        start += n;
    }
    out
}

/// Gives every new instance all elements of all old instances (union redistribution).
pub fn redistribute_union<E: Clone>(old: &[Vec<E>], parallelism: usize) -> Vec<Vec<E>> {
    let all: Vec<E> = old.iter().flatten().cloned().collect();
    vec![all; parallelism.max(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_and_union() {
        let old = vec![vec![1, 2, 3], vec![4], vec![5, 6, 7]];
        assert_eq!(
            redistribute_even_split(&old, 2),
            vec![vec![1, 2, 3, 4], vec![5, 6, 7]]
        );
        assert_eq!(
            redistribute_even_split(&old, 3),
            vec![vec![1, 2, 3], vec![4, 5], vec![6, 7]]
        );
        assert_eq!(
            redistribute_even_split(&old, 4),
            vec![vec![1, 2], vec![3, 4], vec![5, 6], vec![7]]
        );
        assert_eq!(
            redistribute_union(&old, 2),
            vec![vec![1, 2, 3, 4, 5, 6, 7]; 2]
        );
    }

    #[test]
    fn list_state_snapshot_redistribute_restore() {
        let mut stores: Vec<OperatorStateStore> =
            (0..2).map(|_| OperatorStateStore::default()).collect();
        let a = stores[0].get_list_state::<String>("offsets").unwrap();
        let b = stores[1].get_list_state::<String>("offsets").unwrap();
        a.update(vec!["a".into(), "b".into(), "c".into()]);
        b.add("d".into());
        let old: Vec<Vec<Vec<u8>>> = stores
            .iter()
            .map(|s| s.snapshot().unwrap().remove(0).2)
            .collect();
        let new = redistribute_even_split(&old, 3);
        let restored: Vec<Vec<String>> = new
            .into_iter()
            .map(|items| {
                let mut s =
                    OperatorStateStore::restored(HashMap::from([("offsets".to_string(), items)]));
                assert!(s.is_restored());
                s.get_list_state::<String>("offsets").unwrap().get()
            })
            .collect();
        assert_eq!(restored, vec![vec!["a", "b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn union_lists_are_merged_also_at_unchanged_parallelism() {
        let snap = |split: &[u8], union: &[u8]| StoreSnapshot {
            states: vec![
                (
                    "splits".into(),
                    RedistributionMode::EvenSplit,
                    vec![split.to_vec()],
                ),
                (
                    "known".into(),
                    RedistributionMode::Union,
                    vec![union.to_vec()],
                ),
            ],
        };
        let old = vec![snap(b"s0", b"u0"), snap(b"s1", b"u1")];
        for parallelism in [2, 3] {
            for subtask in 0..parallelism {
                let mine = StoreSnapshot::redistribute(&old, subtask, parallelism);
                let union = &mine.states.iter().find(|(n, _, _)| n == "known").unwrap().2;
                assert_eq!(
                    union,
                    &vec![b"u0".to_vec(), b"u1".to_vec()],
                    "subtask {subtask} of {parallelism}"
                );
            }
        }
        // Even-split lists stay where they were when the parallelism is unchanged.
        let mine = StoreSnapshot::redistribute(&old, 1, 2);
        assert_eq!(mine.states[0].2, vec![b"s1".to_vec()]);
    }

    #[test]
    fn broadcast_state_round_trip() {
        let mut s = OperatorStateStore::default();
        let state = BroadcastState::<String, u32>::new();
        s.register_broadcast_state("rules", &state).unwrap();
        state.put("x".into(), 1);
        let snap = s.snapshot().unwrap().remove(0);
        assert_eq!(snap.1, RedistributionMode::Broadcast);
        let mut r = OperatorStateStore::restored(HashMap::from([("rules".to_string(), snap.2)]));
        let restored = BroadcastState::<String, u32>::new();
        r.register_broadcast_state("rules", &restored).unwrap();
        assert_eq!(restored.get(&"x".to_string()), Some(1));
    }
}
