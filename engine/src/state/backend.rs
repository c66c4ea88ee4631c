//! The keyed state backend: the trait the runtime talks to, and the heap implementation.
//!
//! Keys and namespaces (the window, for window state; nothing for process functions) reach
//! the backend serialized, so one backend holds the states of any key type, and a later
//! backend that keeps bytes (RocksDB-style) fits the same trait. The heap backend keeps values
//! as typed objects, one map per key group, like Flink's `HeapKeyedStateBackend`; snapshots
//! are written per key group so a rescaled job can move whole key groups.

#![allow(clippy::type_complexity)] // closures and nested maps read clearer inline here

use crate::error::{FjordError, Result};
pub(crate) use crate::keygroup::FastMap;
use crate::keygroup::{KeyGroupRange, Rehash};
use crate::types::Timestamp;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::HashMap;

/// A state value as the backend stores it.
pub type StateValue = Box<dyn Any + Send>;

/// Index of a registered state in its backend.
pub type StateId = usize;

/// Serializes a stored value (for snapshots).
pub type SerializeFn = fn(&(dyn Any + Send)) -> Result<Vec<u8>>;
/// Deserializes a stored value (on restore).
pub type DeserializeFn = fn(&[u8]) -> Result<StateValue>;
/// Appends the second list to the first, both of one list state's stored type (a `Vec`, whose
/// encoding is its length then its elements): [`KeyedStateBackend::append`].
pub type ExtendFn = fn(&mut (dyn Any + Send), StateValue);
/// Drops expired parts of a stored value; returns true when nothing is left (TTL cleanup).
pub type CleanupFn = Box<dyn Fn(&mut (dyn Any + Send), Timestamp) -> bool + Send>;

/// What the backend knows about one registered state.
pub struct StateMeta {
    /// The descriptor's name, unique per operator.
    pub name: String,
    /// The stored type's name; registering a name twice with another type is an error.
    pub type_name: &'static str,
    /// Serializer of the stored value.
    pub serialize: SerializeFn,
    /// Deserializer of the stored value.
    pub deserialize: DeserializeFn,
    /// Present when the state has a time-to-live and background cleanup.
    pub cleanup: Option<CleanupFn>,
}

/// The id and stored type of the state named `name` among `metas`, given in registration
/// order (ids are positions): [`KeyedStateBackend::registered`] for a backend that keeps its
/// states in a vector.
pub fn registered_in<'a>(
    metas: impl IntoIterator<Item = &'a StateMeta>,
    name: &str,
) -> Option<(StateId, &'static str)> {
    metas
        .into_iter()
        .enumerate()
        .find(|(_, m)| m.name == name)
        .map(|(id, m)| (id, m.type_name))
}

/// Keyed state storage for the key groups of one operator subtask.
///
/// All accesses are scoped to the current key (set with
/// [`set_current_key`](Self::set_current_key)) and a namespace.
pub trait KeyedStateBackend: Send {
    /// The key groups this backend holds.
    fn key_group_range(&self) -> KeyGroupRange;
    /// Registers a state, or returns the id of the state already registered under that name.
    ///
    /// # Errors
    /// [`FjordError::StateTypeMismatch`] when the name is taken by a state of another type.
    fn register(&mut self, meta: StateMeta) -> Result<StateId>;
    /// The id and stored type of the state registered under `name`, if there is one.
    fn registered(&self, name: &str) -> Option<(StateId, &'static str)>;
    /// Sets the key (serialized) and its key group for the following accesses.
    fn set_current_key(&mut self, key: &[u8], key_group: usize);
    /// [`set_current_key`](Self::set_current_key) with the key's
    /// [`hash_bytes`](crate::keygroup::hash_bytes), which the caller computed for its key
    /// group: a backend that hashes keys may use it instead of hashing the key again.
    fn set_current_key_hashed(&mut self, key: &[u8], key_group: usize, key_hash: u64) {
        let _ = key_hash;
        self.set_current_key(key, key_group);
    }
    /// The current key, serialized.
    fn current_key(&self) -> &[u8];
    /// The value of the current key in `namespace`.
    fn get_mut(&mut self, state: StateId, namespace: &[u8]) -> Option<&mut (dyn Any + Send)>;
    /// Stores the value of the current key in `namespace`.
    fn put(&mut self, state: StateId, namespace: &[u8], value: StateValue);
    /// Appends `values`, a non-empty list of a list state (a `Vec` of its stored element type),
    /// to the current key's list in `namespace`; `extend` appends such a list to another.
    ///
    /// The default changes the stored list in place through [`get_mut`](Self::get_mut), or
    /// puts `values` when the key has none. A backend that stores bytes can add to a list
    /// without reading it, since a list's encoding is its length then its elements (RocksDB
    /// merges, as Flink's RocksDB list state does): appending then costs the new elements,
    /// not the whole list.
    fn append(&mut self, state: StateId, namespace: &[u8], values: StateValue, extend: ExtendFn) {
        match self.get_mut(state, namespace) {
            Some(list) => extend(list, values),
            None => self.put(state, namespace, values),
        }
    }
    /// Removes and returns the value of the current key in `namespace`.
    fn remove(&mut self, state: StateId, namespace: &[u8]) -> Option<StateValue>;
    /// Every key (serialized, with its key group) that has a value for `state` in `namespace`.
    fn keys(&self, state: StateId, namespace: &[u8]) -> Vec<(Vec<u8>, usize)>;
    /// Runs TTL cleanup over one key group (round robin); returns the entries removed.
    fn cleanup_step(&mut self, now: Timestamp) -> usize;
    /// Number of entries of all states (for tests and metrics).
    fn len(&self) -> usize;
    /// True when no state has an entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The state of one key group, serialized (for checkpoints and savepoints).
    fn snapshot_key_group(&self, key_group: usize) -> Result<Vec<u8>>;
    /// Restores one key group written by [`snapshot_key_group`](Self::snapshot_key_group).
    /// States not yet registered are kept as bytes and restored when registered.
    fn restore_key_group(&mut self, key_group: usize, bytes: &[u8]) -> Result<()>;

    /// Restores key group `old_key_group` of a snapshot of format version 1 or 2, whose key
    /// groups came
    /// from the keys' `std::hash::Hash`: each entry goes to the key group of its key's bytes
    /// (see [`crate::keygroup`]), and only the entries of `rehash.range` are kept. A subtask
    /// restoring such a snapshot is given every key group of it, so each entry lands in
    /// exactly one subtask. Called with the same new key group several times (entries of
    /// several old key groups), a backend must add to what it holds.
    ///
    /// The default reads `bytes` as a canonical [`GroupSnapshot`] and restores its entries
    /// with [`restore_key_group`](Self::restore_key_group), group by new key group.
    ///
    /// # Errors
    /// Bytes that are not a canonical snapshot (a backend's native snapshot cannot be
    /// re-bucketed: the backend should say to restore from a savepoint), or what
    /// `restore_key_group` fails with.
    fn restore_rehashed(
        &mut self,
        old_key_group: usize,
        bytes: &[u8],
        rehash: Rehash,
    ) -> Result<()> {
        for (kg, snap) in GroupSnapshot::decode(old_key_group, bytes)?.rehash(rehash) {
            self.restore_key_group(kg, &snap.encode(kg)?)?;
        }
        Ok(())
    }

    /// Called for every checkpoint and savepoint right before the task asks for the state of
    /// each key group with [`snapshot_key_group`](Self::snapshot_key_group), and followed by
    /// [`checkpoint_snapshotted`](Self::checkpoint_snapshotted).
    ///
    /// The heap backend does nothing. A backend with native snapshots (RocksDB's incremental
    /// checkpoints) may take one here, upload its files under `target`, and answer the
    /// following `snapshot_key_group` calls with references to them that its own
    /// [`restore_key_group`](Self::restore_key_group) understands. Savepoints
    /// (`target.savepoint`) must stay canonical so they restore into any backend.
    ///
    /// # Errors
    /// A failed native snapshot or upload (the checkpoint is declined).
    fn prepare_checkpoint(&mut self, target: &CheckpointTarget) -> Result<()> {
        let _ = target;
        Ok(())
    }

    /// The task took its snapshot; `snapshot_key_group` answers canonically again.
    ///
    /// A backend whose native snapshot still has files to upload returns that work here as an
    /// [`AsyncSnapshotPart`]: the task runs it on its background upload thread, before it
    /// acknowledges the checkpoint, while processing continues. The part must only read
    /// what [`prepare_checkpoint`](Self::prepare_checkpoint) fixed (hard-linked files, say),
    /// never the live state. The heap backend returns `None` (its snapshot is the copy).
    fn checkpoint_snapshotted(&mut self) -> Option<AsyncSnapshotPart> {
        None
    }

    /// The heap backend itself, which keeps operators' internal per-key values as typed
    /// objects (see [`crate::state::typed_table`]); `None` for every other backend.
    fn as_heap_mut(&mut self) -> Option<&mut HeapKeyedStateBackend> {
        None
    }

    /// True when this backend keeps its operator's timers (the `timer_*` methods); the heap
    /// backend does not, and its operators keep timers in an in-memory priority queue.
    fn holds_timers(&self) -> bool {
        false
    }

    /// Adds `timer` to the ordered set `queue` of `key_group`. A timer's bytes are its
    /// timestamp (8 bytes, big-endian, sign bit flipped), key and namespace, so the bytes'
    /// order is the firing order. Returns false when the set already held it.
    ///
    /// Only called when [`holds_timers`](Self::holds_timers) is true.
    fn timer_insert(&mut self, queue: TimerQueueKind, key_group: usize, timer: &[u8]) -> bool {
        let _ = (queue, key_group, timer);
        unreachable!("timer_insert on a backend that does not hold timers")
    }

    /// Removes `timer` from the set; returns false when it was not there.
    fn timer_remove(&mut self, queue: TimerQueueKind, key_group: usize, timer: &[u8]) -> bool {
        let _ = (queue, key_group, timer);
        unreachable!("timer_remove on a backend that does not hold timers")
    }

    /// Up to `limit` timers of the set of `key_group`, in order, starting after `after`
    /// (from the first when `None`).
    fn timer_scan(
        &self,
        queue: TimerQueueKind,
        key_group: usize,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        let _ = (queue, key_group, after, limit);
        unreachable!("timer_scan on a backend that does not hold timers")
    }

    /// The checkpoint completed everywhere; files it references stay in storage until a
    /// later checkpoint subsumes it.
    ///
    /// # Errors
    /// Whatever the backend fails to clean up.
    fn notify_checkpoint_complete(&mut self, checkpoint_id: u64) -> Result<()> {
        let _ = checkpoint_id;
        Ok(())
    }
}

/// The two timer sets of a keyed operator a backend may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerQueueKind {
    /// Event-time timers.
    EventTime,
    /// Processing-time timers.
    ProcessingTime,
}

/// The asynchronous part of a backend's snapshot (see
/// [`KeyedStateBackend::checkpoint_snapshotted`]): uploads what the synchronous part fixed.
/// An error declines the checkpoint. Dropping it without running it must clean up.
pub type AsyncSnapshotPart = Box<dyn FnOnce() -> Result<()> + Send>;

/// Where and for what a backend snapshots (see
/// [`KeyedStateBackend::prepare_checkpoint`]).
#[derive(Debug, Clone)]
pub struct CheckpointTarget {
    /// Checkpoint id, increasing within a job.
    pub checkpoint_id: u64,
    /// True for savepoints, which must be written in the canonical format.
    pub savepoint: bool,
    /// The checkpoint's own directory (`<base>/<job>/chk-<n>` or the savepoint directory).
    pub dir: crate::storage::SnapshotStore,
    /// The job's directory of files shared between checkpoints (`<base>/<job>/shared`);
    /// `None` for savepoints. A backend that puts files there lists, in an object under
    /// `dir`'s [`SHARED_REFS_DIR`](crate::storage::layout::SHARED_REFS_DIR), every shared path
    /// the checkpoint references, one per line, so retention can tell which shared files are
    /// still needed.
    pub shared: Option<crate::storage::SnapshotStore>,
}

use crate::keygroup::hash_bytes;
use crate::state::key_table::{KeyTable, hash_of, table_hash};
use crate::state::typed_table::{TypedStore, TypedTable};

struct Table {
    meta: StateMeta,
    store: Store,
}

/// How the heap backend keeps one state's values.
enum Store {
    /// Per key group: key -> namespace -> value (user state).
    Bytes(Vec<KeyTable>),
    /// An operator's internal per-key value, typed (see [`crate::state::typed_table`]).
    Typed(Box<dyn TypedStore>),
}

/// One key group's snapshot in the canonical, backend-independent format: per state name,
/// (serialized key, serialized namespace, serialized value) triples, encoded by [`crate::encoding`]. Every
/// backend writes and reads this format for savepoints, so a savepoint taken with one
/// backend restores into any other.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    /// Per state name, its entries in this key group.
    #[serde(with = "crate::encoding::byte_string::named_triples")]
    pub states: Vec<(String, Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>)>,
}

impl GroupSnapshot {
    /// The bytes of this snapshot.
    ///
    /// # Errors
    /// [`FjordError::Serialization`] (does not happen for in-memory encoding).
    pub fn encode(&self, key_group: usize) -> Result<Vec<u8>> {
        crate::encoding::to_vec(self).map_err(|e| FjordError::Serialization {
            context: format!("snapshot of key group {key_group}"),
            message: e.to_string(),
        })
    }

    /// Splits this snapshot (of a key group by the hash of format versions 1 and 2) into
    /// snapshots of the key groups of its keys' bytes, keeping only those of `rehash.range`;
    /// every state name of this snapshot appears in each part.
    pub fn rehash(self, rehash: Rehash) -> std::collections::BTreeMap<usize, GroupSnapshot> {
        let mut parts: std::collections::BTreeMap<usize, GroupSnapshot> = Default::default();
        let names: Vec<String> = self.states.iter().map(|(n, _)| n.clone()).collect();
        for (i, (_, entries)) in self.states.into_iter().enumerate() {
            for (key, ns, value) in entries {
                let Some(kg) = rehash.owned_group_of_bytes(&key) else {
                    continue;
                };
                let part = parts.entry(kg).or_insert_with(|| GroupSnapshot {
                    states: names.iter().map(|n| (n.clone(), Vec::new())).collect(),
                });
                part.states[i].1.push((key, ns, value));
            }
        }
        parts
    }

    /// Reads the bytes of [`encode`](Self::encode).
    ///
    /// # Errors
    /// [`FjordError::Serialization`] for bytes that are not a key group snapshot.
    pub fn decode(key_group: usize, bytes: &[u8]) -> Result<Self> {
        crate::encoding::from_slice(bytes).map_err(|e| FjordError::Serialization {
            context: format!("restore of key group {key_group}"),
            message: e.to_string(),
        })
    }
}

/// The in-memory backend (Flink's `HashMapStateBackend`).
pub struct HeapKeyedStateBackend {
    range: KeyGroupRange,
    tables: Vec<Table>,
    key: Vec<u8>,
    /// [`hash_of`] the current key.
    key_hash: u64,
    key_group: usize,
    /// Restored entries of states that were not registered yet, per state name and key group.
    pending: HashMap<String, Vec<(usize, Vec<u8>, Vec<u8>, Vec<u8>)>>,
    cleanup_cursor: usize,
}

impl HeapKeyedStateBackend {
    /// An empty backend for the key groups in `range`.
    pub fn new(range: KeyGroupRange) -> Self {
        HeapKeyedStateBackend {
            range,
            tables: Vec::new(),
            key: Vec::new(),
            key_hash: hash_of(&[]),
            key_group: range.start,
            pending: HashMap::new(),
            cleanup_cursor: 0,
        }
    }

    #[inline]
    fn slot(&self) -> usize {
        self.key_group - self.range.start
    }

    /// Registers `meta` as a state whose values `table` keeps typed (an operator's internal
    /// per-key value), or returns the id it is registered under. The flag says whether that
    /// state is typed (a state of the name registered by [`register`](KeyedStateBackend::register)
    /// stays as it is).
    ///
    /// # Errors
    /// [`FjordError::StateTypeMismatch`] when the name is taken by a state of another type, or
    /// a restored entry of the state that does not decode.
    pub(crate) fn register_typed(
        &mut self,
        meta: StateMeta,
        table: impl FnOnce(usize) -> Box<dyn TypedStore>,
    ) -> Result<(StateId, bool)> {
        if self.registered(&meta.name).is_some() {
            let id = self.register(meta)?;
            return Ok((id, matches!(self.tables[id].store, Store::Typed(_))));
        }
        let store = Store::Typed(table(self.range.len()));
        self.push_table(Table { meta, store }).map(|id| (id, true))
    }

    /// Adds `table` with the entries restored for it before it was registered, and returns
    /// its id.
    fn push_table(&mut self, mut table: Table) -> Result<StateId> {
        if let Some(entries) = self.pending.remove(&table.meta.name) {
            for (kg, key, ns, value) in entries {
                Self::restore_entry(&mut table, kg - self.range.start, key, ns, &value)?;
            }
        }
        self.tables.push(table);
        Ok(self.tables.len() - 1)
    }

    /// The typed table of `state` with the current key's slot and hash.
    ///
    /// # Panics
    /// When `state` was not registered by [`register_typed`](Self::register_typed) with
    /// these types (an operator bug).
    #[inline]
    pub(crate) fn typed_table<K: 'static, V: 'static>(
        &mut self,
        state: StateId,
    ) -> (&mut TypedTable<K, V>, usize, u64) {
        let (slot, hash) = (self.slot(), self.key_hash);
        let Store::Typed(store) = &mut self.tables[state].store else {
            panic!("state {state} is not a typed table");
        };
        let store: &mut dyn Any = &mut **store;
        let table = store
            .downcast_mut::<TypedTable<K, V>>()
            .expect("a typed table is used with the types it was registered with");
        (table, slot, hash)
    }

    /// Adds a restored entry to `table`.
    fn restore_entry(
        table: &mut Table,
        slot: usize,
        key: Vec<u8>,
        ns: Vec<u8>,
        value: &[u8],
    ) -> Result<()> {
        let v = (table.meta.deserialize)(value)?;
        let hash = hash_of(&key);
        match &mut table.store {
            Store::Bytes(groups) => groups[slot].get_or_default(hash, &key).insert(ns, v),
            Store::Typed(store) => store.insert(slot, hash, &key, v)?,
        }
        Ok(())
    }
}

impl KeyedStateBackend for HeapKeyedStateBackend {
    fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    fn registered(&self, name: &str) -> Option<(StateId, &'static str)> {
        registered_in(self.tables.iter().map(|t| &t.meta), name)
    }

    fn register(&mut self, meta: StateMeta) -> Result<StateId> {
        if let Some((i, existing)) = self.registered(&meta.name) {
            if existing != meta.type_name {
                return Err(FjordError::StateTypeMismatch {
                    name: meta.name,
                    registered: existing.to_string(),
                    requested: meta.type_name.to_string(),
                });
            }
            return Ok(i);
        }
        let store = Store::Bytes((0..self.range.len()).map(|_| KeyTable::default()).collect());
        self.push_table(Table { meta, store })
    }

    #[inline]
    fn set_current_key(&mut self, key: &[u8], key_group: usize) {
        self.set_current_key_hashed(key, key_group, hash_bytes(key));
    }

    #[inline]
    fn set_current_key_hashed(&mut self, key: &[u8], key_group: usize, key_hash: u64) {
        debug_assert!(
            self.range.contains(key_group),
            "key group {key_group} not in {:?}",
            self.range
        );
        self.key.clear();
        self.key.extend_from_slice(key);
        self.key_hash = table_hash(key_hash);
        self.key_group = key_group;
    }

    fn current_key(&self) -> &[u8] {
        &self.key
    }

    fn get_mut(&mut self, state: StateId, namespace: &[u8]) -> Option<&mut (dyn Any + Send)> {
        let slot = self.slot();
        match &mut self.tables[state].store {
            Store::Bytes(groups) => groups[slot]
                .get_mut(self.key_hash, &self.key)?
                .get_mut(namespace)
                .map(|b| b.as_mut()),
            Store::Typed(store) if namespace.is_empty() => {
                store.get_mut(slot, self.key_hash, &self.key)
            }
            Store::Typed(_) => None,
        }
    }

    fn put(&mut self, state: StateId, namespace: &[u8], value: StateValue) {
        let slot = self.slot();
        match &mut self.tables[state].store {
            Store::Bytes(groups) => groups[slot]
                .get_or_default(self.key_hash, &self.key)
                .insert(namespace.to_vec(), value),
            Store::Typed(store) => {
                debug_assert!(namespace.is_empty(), "typed tables have no namespaces");
                store
                    .insert(slot, self.key_hash, &self.key, value)
                    .expect("the current key decodes as the key it was encoded from");
            }
        }
    }

    fn remove(&mut self, state: StateId, namespace: &[u8]) -> Option<StateValue> {
        let slot = self.slot();
        match &mut self.tables[state].store {
            Store::Bytes(groups) => {
                let group = &mut groups[slot];
                let spaces = group.get_mut(self.key_hash, &self.key)?;
                let value = spaces.remove(namespace);
                if spaces.is_empty() {
                    group.remove(self.key_hash, &self.key);
                }
                value
            }
            Store::Typed(store) if namespace.is_empty() => {
                store.remove(slot, self.key_hash, &self.key)
            }
            Store::Typed(_) => None,
        }
    }

    fn keys(&self, state: StateId, namespace: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        for slot in 0..self.range.len() {
            let kg = self.range.start + slot;
            match &self.tables[state].store {
                Store::Bytes(groups) => out.extend(
                    groups[slot]
                        .iter()
                        .filter(|(_, spaces)| spaces.contains_key(namespace))
                        .map(|(key, _)| (key.to_vec(), kg)),
                ),
                Store::Typed(store) if namespace.is_empty() => {
                    out.extend(store.keys(slot).into_iter().map(|k| (k, kg)))
                }
                Store::Typed(_) => {}
            }
        }
        out
    }

    fn cleanup_step(&mut self, now: Timestamp) -> usize {
        if self.range.is_empty() {
            return 0;
        }
        let slot = self.cleanup_cursor % self.range.len();
        self.cleanup_cursor = self.cleanup_cursor.wrapping_add(1);
        let mut removed = 0;
        for table in &mut self.tables {
            let (Some(cleanup), Store::Bytes(groups)) = (&table.meta.cleanup, &mut table.store)
            else {
                continue;
            };
            groups[slot].retain(|spaces| {
                spaces.retain(|_, v| {
                    let gone = cleanup(v.as_mut(), now);
                    removed += gone as usize;
                    !gone
                });
                !spaces.is_empty()
            });
        }
        removed
    }

    fn len(&self) -> usize {
        self.tables
            .iter()
            .map(|t| match &t.store {
                Store::Bytes(groups) => groups
                    .iter()
                    .flat_map(|g| g.iter())
                    .map(|(_, s)| s.len())
                    .sum(),
                Store::Typed(store) => store.len(),
            })
            .sum()
    }

    fn as_heap_mut(&mut self) -> Option<&mut HeapKeyedStateBackend> {
        Some(self)
    }

    fn snapshot_key_group(&self, key_group: usize) -> Result<Vec<u8>> {
        let slot = key_group
            .checked_sub(self.range.start)
            .filter(|s| *s < self.range.len())
            .ok_or_else(|| {
                FjordError::Internal(format!("key group {key_group} is not in {:?}", self.range))
            })?;
        let mut snap = GroupSnapshot::default();
        for table in &self.tables {
            let mut entries = Vec::new();
            match &table.store {
                Store::Bytes(groups) => {
                    for (key, spaces) in groups[slot].iter() {
                        for (ns, v) in spaces.iter() {
                            entries.push((
                                key.to_vec(),
                                ns.clone(),
                                (table.meta.serialize)(v.as_ref())?,
                            ));
                        }
                    }
                }
                Store::Typed(store) => store.entries(slot, table.meta.serialize, &mut entries)?,
            }
            snap.states.push((table.meta.name.clone(), entries));
        }
        crate::encoding::to_vec(&snap).map_err(|e| FjordError::Serialization {
            context: format!("snapshot of key group {key_group}"),
            message: e.to_string(),
        })
    }

    fn restore_key_group(&mut self, key_group: usize, bytes: &[u8]) -> Result<()> {
        if !self.range.contains(key_group) {
            return Err(FjordError::Internal(format!(
                "key group {key_group} is not in {:?}",
                self.range
            )));
        }
        let snap: GroupSnapshot =
            crate::encoding::from_slice(bytes).map_err(|e| FjordError::Serialization {
                context: format!("restore of key group {key_group}"),
                message: e.to_string(),
            })?;
        let slot = key_group - self.range.start;
        for (name, entries) in snap.states {
            match self.tables.iter_mut().find(|t| t.meta.name == name) {
                Some(table) => {
                    for (key, ns, value) in entries {
                        Self::restore_entry(table, slot, key, ns, &value)?;
                    }
                }
                None => {
                    let pending = self.pending.entry(name).or_default();
                    pending.extend(entries.into_iter().map(|(k, n, v)| (key_group, k, n, v)));
                }
            }
        }
        Ok(())
    }
}
