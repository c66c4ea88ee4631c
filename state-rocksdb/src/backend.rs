//! [`RocksDbKeyedStateBackend`]: keyed state in a local RocksDB instance.
//!
//! # Layout
//! One column family per state (`s:<state name>`); the key of an entry is
//! `key group (u16, big-endian) | key length (u32, big-endian) | key | namespace`, so a key
//! group is one contiguous range of every column family, and the value is the state's own
//! serialization (the bytes the heap backend writes into snapshots). The canonical key group
//! snapshot is therefore a range scan that copies bytes, and restoring one is a batch of puts.
//!
//! # Typed access through bytes
//! The backend trait hands out `&mut dyn Any` ([`KeyedStateBackend::get_mut`]), so the caller
//! can change a value in place. This backend deserializes the value into a small cache of the
//! *current key's* values, remembering the bytes it read, and writes a value back when the
//! current key changes (or before anything that reads the database directly: a snapshot,
//! TTL cleanup, a restore) — only if its serialization differs from the bytes read, so reads
//! cost no writes. [`snapshot_key_group`](KeyedStateBackend::snapshot_key_group), which cannot
//! flush (`&self`), serializes cached values itself. `put` writes through; `remove` deletes.
//! A list state's `append` merges the new elements into the stored list without reading it
//! (`list_append`), unless the list is in the cache already.
//!
//! # Timers
//! The operator's timers are two more column families, `t:event` and `t:processing`, keyed by
//! key group then the timer's bytes (timestamp, key, namespace; the engine's order), with
//! empty values: an ordered set per key group that the engine's timer queue reads from the
//! front, keeping only a few timers per key group in memory. Timer families are not states:
//! canonical snapshots leave them out (the engine writes timers into its own part of each
//! key group), incremental ones carry them with the instance.
//!
//! # Failures
//! Methods of the trait that cannot return errors (`get_mut`, `put`, `remove`, `keys`, `len`)
//! panic when RocksDB fails (a full or broken disk) or stored bytes do not deserialize: the
//! task fails and the job restarts from its last checkpoint, as Flink's would.

use crate::RocksDbOptions;
use crate::error::{Result, RocksDbStateError};
use crate::incremental::{self, Prepared, RestoreSource, Upload};
use crate::list_append;
use crate::memory::RocksDbMemory;
use fjord::keygroup::{KeyGroupRange, Rehash};
use fjord::state::backend::{ExtendFn, StateId, StateMeta, StateValue, registered_in};
use fjord::state::{
    AsyncSnapshotPart, CheckpointTarget, GroupSnapshot, KeyedStateBackend, TimerQueueKind,
};
use fjord::storage::StorageOptions;
use fjord::types::Timestamp;
use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, Options, ReadOptions, WriteBatch};
use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Column family name prefix of states.
const CF_PREFIX: &str = "s:";

/// Column family of the operator's event-time timers (see "Timers" in the module docs).
const EVENT_TIMERS_CF: &str = "t:event";
/// Column family of the operator's processing-time timers.
const PROCESSING_TIMERS_CF: &str = "t:processing";

fn timer_cf(queue: TimerQueueKind) -> &'static str {
    match queue {
        TimerQueueKind::EventTime => EVENT_TIMERS_CF,
        TimerQueueKind::ProcessingTime => PROCESSING_TIMERS_CF,
    }
}

/// The key of a timer: key group (2 bytes, big-endian), then the timer's bytes.
fn timer_key(key_group: usize, timer: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + timer.len());
    out.extend_from_slice(&(key_group as u16).to_be_bytes());
    out.extend_from_slice(timer);
    out
}

/// The key of an entry: key group, key length, key, namespace.
pub(crate) fn db_key(key_group: usize, key: &[u8], namespace: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + key.len() + namespace.len());
    out.extend_from_slice(&(key_group as u16).to_be_bytes());
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(namespace);
    out
}

/// Splits a database key into key group, key and namespace.
pub(crate) fn split_key(k: &[u8]) -> Option<(usize, &[u8], &[u8])> {
    let kg = u16::from_be_bytes(k.get(0..2)?.try_into().ok()?) as usize;
    let len = u32::from_be_bytes(k.get(2..6)?.try_into().ok()?) as usize;
    let key = k.get(6..6 + len)?;
    Some((kg, key, &k[6 + len..]))
}

/// First key of a key group, and the first key after it.
pub(crate) fn group_bounds(key_group: usize) -> ([u8; 2], Option<[u8; 2]>) {
    let start = (key_group as u16).to_be_bytes();
    let end = (key_group as u16).checked_add(1).map(u16::to_be_bytes);
    (start, end)
}

/// Options of every write: no write-ahead log. The state's durability is the checkpoint
/// (a RocksDB checkpoint flushes the memtables first), and a failed task restores from
/// there, never from the local instance; Flink disables the WAL the same way.
pub(crate) fn no_wal() -> rocksdb::WriteOptions {
    let mut w = rocksdb::WriteOptions::default();
    w.disable_wal(true);
    w
}

/// A raw (key, value) pair of the database.
pub(crate) type Entry = (Box<[u8]>, Box<[u8]>);

/// A RocksDB instance in a directory of its own, deleted when dropped.
pub(crate) struct LocalDb {
    db: Option<DB>,
    pub(crate) path: PathBuf,
    /// Options of the database and of every column family (the memory budget).
    opts: Options,
}

/// Options for reading an instance's list of column families.
pub(crate) fn db_options() -> Options {
    Options::default()
}

impl LocalDb {
    /// Opens (or creates) the instance in `path` with all its column families, within the
    /// memory budget `memory`.
    pub(crate) fn open(path: &Path, memory: &RocksDbMemory) -> Result<Self> {
        let mut opts = memory.options();
        // Every family gets it (the options are the same for all); only list states merge.
        opts.set_merge_operator_associative(list_append::NAME, list_append::concat);
        let cfs = if path.join("CURRENT").exists() {
            DB::list_cf(&opts, path).map_err(|source| RocksDbStateError::Db {
                path: path.to_path_buf(),
                operation: "list column families".into(),
                source,
            })?
        } else {
            vec!["default".to_string()]
        };
        // Every family with the instance's options (`open_cf` would give families found on
        // disk RocksDB's defaults: no merge operator, no shared block cache).
        let families = cfs
            .into_iter()
            .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, opts.clone()));
        let db = DB::open_cf_descriptors(&opts, path, families).map_err(|source| {
            RocksDbStateError::Db {
                path: path.to_path_buf(),
                operation: "open".into(),
                source,
            }
        })?;
        Ok(LocalDb {
            db: Some(db),
            path: path.to_path_buf(),
            opts,
        })
    }

    pub(crate) fn db(&self) -> &DB {
        self.db
            .as_ref()
            .expect("the database is open until dropped")
    }

    fn db_mut(&mut self) -> &mut DB {
        self.db
            .as_mut()
            .expect("the database is open until dropped")
    }

    pub(crate) fn err(&self, operation: &str, source: rocksdb::Error) -> RocksDbStateError {
        RocksDbStateError::Db {
            path: self.path.clone(),
            operation: operation.to_string(),
            source,
        }
    }

    /// Names of the state column families.
    pub(crate) fn state_cfs(&self) -> Result<Vec<String>> {
        let mut names = DB::list_cf(&db_options(), &self.path)
            .map_err(|e| self.err("list column families", e))?;
        names.retain(|n| n.starts_with(CF_PREFIX));
        names.sort();
        Ok(names)
    }

    pub(crate) fn cf(&self, name: &str) -> Option<&ColumnFamily> {
        self.db().cf_handle(name)
    }

    /// Creates the column family if it does not exist.
    pub(crate) fn ensure_cf(&mut self, name: &str) -> Result<()> {
        if self.cf(name).is_none() {
            let opts = self.opts.clone();
            self.db_mut()
                .create_cf(name, &opts)
                .map_err(|e| RocksDbStateError::Db {
                    path: self.path.clone(),
                    operation: format!("create column family {name}"),
                    source: e,
                })?;
        }
        Ok(())
    }

    /// Every (key, value) of `cf` in one key group.
    pub(crate) fn scan_group(&self, cf: &str, key_group: usize) -> Result<Vec<Entry>> {
        let Some(handle) = self.cf(cf) else {
            return Ok(Vec::new());
        };
        let (start, end) = group_bounds(key_group);
        let mut read = ReadOptions::default();
        if let Some(end) = end {
            read.set_iterate_upper_bound(end.to_vec());
        }
        self.db()
            .iterator_cf_opt(handle, read, IteratorMode::From(&start, Direction::Forward))
            .map(|r| r.map_err(|e| self.err("scan", e)))
            .collect()
    }
}

impl Drop for LocalDb {
    fn drop(&mut self) {
        self.db.take();
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            // The working database would stay on the local disk unseen, filling it.
            tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "could not remove a local RocksDB working directory; it is left behind"
            );
        }
    }
}

struct Table {
    meta: StateMeta,
    cf: String,
}

/// A value of the current key deserialized for `get_mut`, and the bytes it was read from.
struct Cached {
    value: StateValue,
    original: Vec<u8>,
}

/// What the last incremental (or canonical) snapshot cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Files uploaded into the job's shared directory by this checkpoint.
    pub uploaded_shared_files: usize,
    /// Bytes of those files.
    pub uploaded_shared_bytes: u64,
    /// Shared files referenced again without upload.
    pub reused_shared_files: usize,
    /// Bytes of the files referenced again.
    pub reused_shared_bytes: u64,
    /// Bytes of the checkpoint's private files (RocksDB's MANIFEST, OPTIONS, CURRENT, and
    /// the backend's manifest).
    pub private_bytes: u64,
}

/// Keyed state in RocksDB (see the module docs for the layout and the write-back cache).
pub struct RocksDbKeyedStateBackend {
    local: LocalDb,
    /// The directory holding this instance and its temporary restore copies.
    root: PathBuf,
    instance: String,
    range: KeyGroupRange,
    tables: Vec<Table>,
    key: Vec<u8>,
    key_group: usize,
    cache: HashMap<(StateId, Vec<u8>), Cached>,
    cleanup_cursor: usize,
    pub(crate) options: RocksDbOptions,
    pub(crate) storage_options: StorageOptions,
    /// Incremental checkpoint bookkeeping.
    pub(crate) incremental: incremental::Tracker,
    /// The references `snapshot_key_group` answers with while a native snapshot is prepared.
    prepared: Option<Prepared>,
    /// The upload of the prepared snapshot, handed to the task by `checkpoint_snapshotted`.
    upload: Option<Upload>,
    /// Snapshots read during a restore (downloaded instances).
    restore: RestoreSource,
}

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl RocksDbKeyedStateBackend {
    /// A new, empty backend for the key groups in `range`, in a new directory under `dir`.
    ///
    /// # Errors
    /// The directory cannot be created or RocksDB cannot open there.
    pub fn open(
        dir: &Path,
        range: KeyGroupRange,
        options: RocksDbOptions,
        storage_options: StorageOptions,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| RocksDbStateError::Io {
            context: format!("cannot create the RocksDB directory {}", dir.display()),
            source,
        })?;
        let instance = random_id();
        let local = LocalDb::open(&dir.join(format!("db-{instance}")), &options.memory)?;
        Ok(RocksDbKeyedStateBackend {
            local,
            root: dir.to_path_buf(),
            instance,
            range,
            tables: Vec::new(),
            key: Vec::new(),
            key_group: range.start,
            cache: HashMap::new(),
            cleanup_cursor: 0,
            options,
            storage_options,
            incremental: incremental::Tracker::default(),
            prepared: None,
            upload: None,
            restore: RestoreSource::default(),
        })
    }

    /// The directory of the RocksDB instance.
    pub fn path(&self) -> &Path {
        &self.local.path
    }

    /// What the last checkpoint uploaded and reused.
    pub fn last_snapshot_stats(&self) -> SnapshotStats {
        self.incremental.last
    }

    pub(crate) fn local(&self) -> &LocalDb {
        &self.local
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    pub(crate) fn range(&self) -> KeyGroupRange {
        self.range
    }

    /// Replaces the instance with one restored from a snapshot of the same key groups; its
    /// files get a new instance id.
    pub(crate) fn adopt(&mut self, local: LocalDb) {
        self.cache.clear();
        self.local = local;
        self.instance = random_id();
    }

    /// True when no state column family holds an entry.
    pub(crate) fn db_is_empty(&self) -> Result<bool> {
        for cf in self.local.state_cfs()? {
            if let Some(h) = self.local.cf(&cf)
                && self
                    .local
                    .db()
                    .iterator_cf(h, IteratorMode::Start)
                    .next()
                    .is_some()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Copies the entries of `key_group` from another instance into this one.
    pub(crate) fn copy_group_from(&mut self, source: &LocalDb, key_group: usize) -> Result<()> {
        for cf in source.state_cfs()? {
            let entries = source.scan_group(&cf, key_group)?;
            if entries.is_empty() {
                continue;
            }
            self.local.ensure_cf(&cf)?;
            let handle = self.local.cf(&cf).expect("just created");
            let mut batch = WriteBatch::default();
            for (k, v) in entries {
                batch.put_cf(handle, k, v);
            }
            self.local
                .db()
                .write_opt(batch, &no_wal())
                .map_err(|e| self.local.err("restore write", e))?;
        }
        Ok(())
    }

    fn check_group(&self, key_group: usize) -> Result<()> {
        if self.range.contains(key_group) {
            Ok(())
        } else {
            Err(RocksDbStateError::KeyGroupOutOfRange {
                key_group,
                start: self.range.start,
                end: self.range.end,
            })
        }
    }

    /// Writes changed cached values back and empties the cache.
    pub(crate) fn flush_cache(&mut self) -> Result<()> {
        if self.cache.is_empty() {
            return Ok(());
        }
        let key = db_key_prefix(self.key_group, &self.key);
        for ((state, ns), cached) in self.cache.drain() {
            let table = &self.tables[state];
            let bytes = (table.meta.serialize)(cached.value.as_ref())
                .map_err(RocksDbStateError::Serializer)?;
            if bytes != cached.original {
                let handle = self
                    .local
                    .cf(&table.cf)
                    .expect("registered state has a family");
                let mut k = key.clone();
                k.extend_from_slice(&ns);
                self.local
                    .db()
                    .put_cf_opt(handle, k, bytes, &no_wal())
                    .map_err(|e| self.local.err("write back", e))?;
            }
        }
        Ok(())
    }

    fn current_db_key(&self, namespace: &[u8]) -> Vec<u8> {
        db_key(self.key_group, &self.key, namespace)
    }

    fn table_cf(&self, state: StateId) -> &ColumnFamily {
        self.local
            .cf(&self.tables[state].cf)
            .expect("registered state has a family")
    }

    /// The canonical snapshot of one key group, including values cached for the current key.
    fn canonical_group(&self, key_group: usize) -> Result<GroupSnapshot> {
        self.check_group(key_group)?;
        let mut snap = GroupSnapshot::default();
        for cf in self.local.state_cfs()? {
            let name = cf[CF_PREFIX.len()..].to_string();
            let state = self.tables.iter().position(|t| t.cf == cf);
            let mut entries = Vec::new();
            for (k, v) in self.local.scan_group(&cf, key_group)? {
                let (_, key, ns) = split_key(&k).ok_or_else(|| RocksDbStateError::Format {
                    what: format!("a key of state '{name}'"),
                    message: "too short".into(),
                })?;
                let cached = state
                    .filter(|_| key_group == self.key_group && key == self.key.as_slice())
                    .and_then(|s| self.cache.get(&(s, ns.to_vec())));
                let value = match cached {
                    Some(c) => {
                        (self.tables[state.expect("cached")].meta.serialize)(c.value.as_ref())
                            .map_err(RocksDbStateError::Serializer)?
                    }
                    None => v.to_vec(),
                };
                entries.push((key.to_vec(), ns.to_vec(), value));
            }
            snap.states.push((name, entries));
        }
        Ok(snap)
    }

    fn restore_canonical(&mut self, key_group: usize, bytes: &[u8]) -> Result<()> {
        let snap = GroupSnapshot::decode(key_group, bytes).map_err(RocksDbStateError::Storage)?;
        for (name, entries) in snap.states {
            if entries.is_empty() {
                continue;
            }
            let cf = format!("{CF_PREFIX}{name}");
            self.local.ensure_cf(&cf)?;
            let handle = self.local.cf(&cf).expect("just created");
            let mut batch = WriteBatch::default();
            for (key, ns, value) in entries {
                batch.put_cf(handle, db_key(key_group, &key, &ns), value);
            }
            self.local
                .db()
                .write_opt(batch, &no_wal())
                .map_err(|e| self.local.err("restore write", e))?;
        }
        Ok(())
    }

    fn cleanup_group(&mut self, now: Timestamp) -> Result<usize> {
        self.flush_cache()?;
        let kg = self.range.start + self.cleanup_cursor % self.range.len();
        self.cleanup_cursor = self.cleanup_cursor.wrapping_add(1);
        let mut removed = 0;
        for table in &self.tables {
            let Some(cleanup) = &table.meta.cleanup else {
                continue;
            };
            let handle = self
                .local
                .cf(&table.cf)
                .expect("registered state has a family");
            let mut batch = WriteBatch::default();
            for (k, v) in self.local.scan_group(&table.cf, kg)? {
                let mut value =
                    (table.meta.deserialize)(&v).map_err(RocksDbStateError::Serializer)?;
                if cleanup(value.as_mut(), now) {
                    batch.delete_cf(handle, &k);
                    removed += 1;
                } else {
                    let bytes = (table.meta.serialize)(value.as_ref())
                        .map_err(RocksDbStateError::Serializer)?;
                    if bytes.as_slice() != &*v {
                        batch.put_cf(handle, &k, bytes);
                    }
                }
            }
            self.local
                .db()
                .write_opt(batch, &no_wal())
                .map_err(|e| self.local.err("TTL cleanup", e))?;
        }
        Ok(removed)
    }

    fn count_entries(&self) -> Result<usize> {
        let mut n = 0;
        for cf in self.local.state_cfs()? {
            if let Some(h) = self.local.cf(&cf) {
                n += self.local.db().iterator_cf(h, IteratorMode::Start).count();
            }
        }
        Ok(n)
    }
}

fn db_key_prefix(key_group: usize, key: &[u8]) -> Vec<u8> {
    db_key(key_group, key, &[])
}

/// Fails the task with the error (see "Failures" in the module docs).
fn fail(e: impl std::fmt::Display) -> ! {
    panic!("RocksDB state backend failed: {e}")
}

impl KeyedStateBackend for RocksDbKeyedStateBackend {
    fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    fn registered(&self, name: &str) -> Option<(StateId, &'static str)> {
        registered_in(self.tables.iter().map(|t| &t.meta), name)
    }

    fn register(&mut self, meta: StateMeta) -> fjord::Result<StateId> {
        if let Some((i, existing)) = self.registered(&meta.name) {
            if existing != meta.type_name {
                return Err(fjord::FjordError::StateTypeMismatch {
                    name: meta.name,
                    registered: existing.to_string(),
                    requested: meta.type_name.to_string(),
                });
            }
            return Ok(i);
        }
        let cf = format!("{CF_PREFIX}{}", meta.name);
        self.local.ensure_cf(&cf)?;
        self.tables.push(Table { meta, cf });
        Ok(self.tables.len() - 1)
    }

    fn set_current_key(&mut self, key: &[u8], key_group: usize) {
        debug_assert!(self.range.contains(key_group));
        if key_group == self.key_group && key == self.key.as_slice() {
            return;
        }
        if let Err(e) = self.flush_cache() {
            fail(e);
        }
        self.key.clear();
        self.key.extend_from_slice(key);
        self.key_group = key_group;
    }

    fn current_key(&self) -> &[u8] {
        &self.key
    }

    fn get_mut(&mut self, state: StateId, namespace: &[u8]) -> Option<&mut (dyn Any + Send)> {
        let slot = (state, namespace.to_vec());
        if !self.cache.contains_key(&slot) {
            let k = self.current_db_key(namespace);
            let bytes = match self.local.db().get_cf(self.table_cf(state), k) {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => fail(self.local.err("get", e)),
            };
            let value = (self.tables[state].meta.deserialize)(&bytes).unwrap_or_else(|e| fail(e));
            self.cache.insert(
                slot.clone(),
                Cached {
                    value,
                    original: bytes,
                },
            );
        }
        self.cache.get_mut(&slot).map(|c| c.value.as_mut())
    }

    fn put(&mut self, state: StateId, namespace: &[u8], value: StateValue) {
        self.cache.remove(&(state, namespace.to_vec()));
        let bytes = (self.tables[state].meta.serialize)(value.as_ref()).unwrap_or_else(|e| fail(e));
        let k = self.current_db_key(namespace);
        if let Err(e) = self
            .local
            .db()
            .put_cf_opt(self.table_cf(state), k, bytes, &no_wal())
        {
            fail(self.local.err("put", e));
        }
    }

    /// A list already read for the current key grows in the cache (written back with it);
    /// otherwise the new elements are merged into the stored list without reading it
    /// (`list_append`).
    fn append(&mut self, state: StateId, namespace: &[u8], values: StateValue, extend: ExtendFn) {
        if !self.cache.is_empty()
            && let Some(cached) = self.cache.get_mut(&(state, namespace.to_vec()))
        {
            extend(cached.value.as_mut(), values);
            return;
        }
        let bytes =
            (self.tables[state].meta.serialize)(values.as_ref()).unwrap_or_else(|e| fail(e));
        let k = self.current_db_key(namespace);
        if let Err(e) = self
            .local
            .db()
            .merge_cf_opt(self.table_cf(state), k, bytes, &no_wal())
        {
            fail(self.local.err("merge", e));
        }
    }

    fn remove(&mut self, state: StateId, namespace: &[u8]) -> Option<StateValue> {
        let k = self.current_db_key(namespace);
        let value = match self.cache.remove(&(state, namespace.to_vec())) {
            Some(c) => Some(c.value),
            None => match self.local.db().get_cf(self.table_cf(state), &k) {
                Ok(Some(bytes)) => {
                    Some((self.tables[state].meta.deserialize)(&bytes).unwrap_or_else(|e| fail(e)))
                }
                Ok(None) => None,
                Err(e) => fail(self.local.err("get", e)),
            },
        };
        if value.is_some()
            && let Err(e) = self
                .local
                .db()
                .delete_cf_opt(self.table_cf(state), &k, &no_wal())
        {
            fail(self.local.err("delete", e));
        }
        value
    }

    fn keys(&self, state: StateId, namespace: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        for item in self
            .local
            .db()
            .iterator_cf(self.table_cf(state), IteratorMode::Start)
        {
            let (k, _) = item.unwrap_or_else(|e| fail(self.local.err("scan", e)));
            if let Some((kg, key, ns)) = split_key(&k)
                && ns == namespace
            {
                out.push((key.to_vec(), kg));
            }
        }
        out
    }

    fn cleanup_step(&mut self, now: Timestamp) -> usize {
        if self.range.is_empty() {
            return 0;
        }
        self.cleanup_group(now).unwrap_or_else(|e| fail(e))
    }

    fn len(&self) -> usize {
        self.count_entries().unwrap_or_else(|e| fail(e))
    }

    fn snapshot_key_group(&self, key_group: usize) -> fjord::Result<Vec<u8>> {
        if let Some(prepared) = &self.prepared {
            self.check_group(key_group)?;
            return Ok(prepared.reference.clone());
        }
        self.canonical_group(key_group)?.encode(key_group)
    }

    fn restore_key_group(&mut self, key_group: usize, bytes: &[u8]) -> fjord::Result<()> {
        self.check_group(key_group)?;
        self.flush_cache()?;
        match incremental::parse_reference(bytes)? {
            Some(reference) => {
                let mut source = std::mem::take(&mut self.restore);
                let result = source.restore_group(self, key_group, &reference);
                self.restore = source;
                result?;
            }
            None => self.restore_canonical(key_group, bytes)?,
        }
        Ok(())
    }

    fn restore_rehashed(
        &mut self,
        old_key_group: usize,
        bytes: &[u8],
        rehash: Rehash,
    ) -> fjord::Result<()> {
        if incremental::parse_reference(bytes)?.is_some() {
            return Err(fjord::FjordError::Restore(format!(
                "key group {old_key_group} was written by an incremental RocksDB checkpoint of \
                 snapshot format version 1 or 2: its SST files are laid out by key groups of the \
                 old key hash (the keys' std::hash::Hash), which Fjord cannot re-bucket. Restore \
                 from a savepoint (or a checkpoint taken with incremental checkpoints off) of the \
                 older Fjord instead: those are canonical and are re-bucketed on restore"
            )));
        }
        for (kg, snap) in GroupSnapshot::decode(old_key_group, bytes)?.rehash(rehash) {
            self.restore_key_group(kg, &snap.encode(kg)?)?;
        }
        Ok(())
    }

    fn prepare_checkpoint(&mut self, target: &CheckpointTarget) -> fjord::Result<()> {
        self.flush_cache()?;
        // A restore is over once the task snapshots; drop downloaded copies.
        self.restore = RestoreSource::default();
        self.prepared = None;
        self.upload = None;
        if target.savepoint || !self.options.incremental {
            return Ok(());
        }
        let Some(shared) = &target.shared else {
            // A full checkpoint (Flink's `CheckpointType.FULL`): canonical, and a new base.
            self.incremental.full(target.checkpoint_id);
            return Ok(());
        };
        let (prepared, upload) = incremental::snapshot(self, target, shared)?;
        self.prepared = Some(prepared);
        self.upload = Some(upload);
        Ok(())
    }

    fn checkpoint_snapshotted(&mut self) -> Option<AsyncSnapshotPart> {
        self.prepared = None;
        let upload = self.upload.take()?;
        Some(Box::new(move || upload.run().map_err(Into::into)))
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: u64) -> fjord::Result<()> {
        self.incremental.complete(checkpoint_id);
        Ok(())
    }

    fn holds_timers(&self) -> bool {
        true
    }

    fn timer_insert(&mut self, queue: TimerQueueKind, key_group: usize, timer: &[u8]) -> bool {
        let cf = timer_cf(queue);
        if let Err(e) = self.local.ensure_cf(cf) {
            fail(e);
        }
        let handle = self.local.cf(cf).expect("just created");
        let k = timer_key(key_group, timer);
        let existed = match self.local.db().get_pinned_cf(handle, &k) {
            Ok(v) => v.is_some(),
            Err(e) => fail(self.local.err("get timer", e)),
        };
        if !existed && let Err(e) = self.local.db().put_cf_opt(handle, &k, [], &no_wal()) {
            fail(self.local.err("put timer", e));
        }
        !existed
    }

    fn timer_remove(&mut self, queue: TimerQueueKind, key_group: usize, timer: &[u8]) -> bool {
        let Some(handle) = self.local.cf(timer_cf(queue)) else {
            return false;
        };
        let k = timer_key(key_group, timer);
        let existed = match self.local.db().get_pinned_cf(handle, &k) {
            Ok(v) => v.is_some(),
            Err(e) => fail(self.local.err("get timer", e)),
        };
        if existed && let Err(e) = self.local.db().delete_cf_opt(handle, &k, &no_wal()) {
            fail(self.local.err("delete timer", e));
        }
        existed
    }

    fn timer_scan(
        &self,
        queue: TimerQueueKind,
        key_group: usize,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        let Some(handle) = self.local.cf(timer_cf(queue)) else {
            return Vec::new();
        };
        let (start, end) = group_bounds(key_group);
        let mut read = ReadOptions::default();
        if let Some(end) = end {
            read.set_iterate_upper_bound(end.to_vec());
        }
        let from = match after {
            Some(t) => timer_key(key_group, t),
            None => start.to_vec(),
        };
        let mut out = Vec::new();
        for item in self.local.db().iterator_cf_opt(
            handle,
            read,
            IteratorMode::From(&from, Direction::Forward),
        ) {
            let (k, _) = item.unwrap_or_else(|e| fail(self.local.err("scan timers", e)));
            if after.is_some() && *k == *from {
                continue;
            }
            out.push(k[2..].to_vec());
            if out.len() >= limit {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_split_back(kg in 0usize..32768, key in proptest::collection::vec(any::<u8>(), 0..20),
                           ns in proptest::collection::vec(any::<u8>(), 0..20)) {
            let k = db_key(kg, &key, &ns);
            let (g, k2, n2) = split_key(&k).unwrap();
            prop_assert_eq!((g, k2, n2), (kg, key.as_slice(), ns.as_slice()));
            let (start, end) = group_bounds(kg);
            prop_assert!(k.as_slice() >= start.as_slice());
            if let Some(end) = end { prop_assert!(k.as_slice() < end.as_slice()); }
        }
    }
}
