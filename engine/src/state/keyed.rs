//! Keyed state as user functions see it: descriptors and the `ValueState`, `ListState`,
//! `ReducingState`, `AggregatingState` and `MapState` handles (Flink's names and semantics).
//!
//! A handle is obtained once (usually in `open`) from the [`RuntimeContext`](crate::RuntimeContext)
//! and always reads and writes the state of the *current* key — the key of the record or
//! timer being processed — and, inside windows, of the current window.

#![allow(clippy::type_complexity)] // closures and nested maps read clearer inline here

use crate::error::{FjordError, Result};
use crate::keygroup::{FastMap, Rehash, hash_bytes, key_group_of_hash};
use crate::state::backend::{CleanupFn, KeyedStateBackend, StateId, StateMeta, StateValue};
use crate::state::ttl::{Stamped, StateTtlConfig};
use crate::state::typed_table::TypedTable;
use crate::time::Clock;
use crate::types::{Data, Key, Timestamp};
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

/// Incremental aggregation with an accumulator (Flink's `AggregateFunction`): used by window
/// `aggregate` and by [`AggregatingState`], beside which it is defined
/// (re-exported as `fjord::functions::AggregateFunction` and `fjord::AggregateFunction`).
///
/// `merge` combines two accumulators; it is needed by merging (session) windows and by
/// pane-based sliding windows.
pub trait AggregateFunction<IN, ACC, OUT>: Send + 'static {
    /// A new, empty accumulator.
    fn create_accumulator(&mut self) -> ACC;
    /// Adds a value to an accumulator and returns it.
    fn add(&mut self, value: IN, accumulator: ACC) -> ACC;
    /// The result of an accumulator.
    fn get_result(&mut self, accumulator: &ACC) -> OUT;
    /// Merges two accumulators.
    fn merge(&mut self, a: ACC, b: ACC) -> ACC;
}

pub(crate) struct KeyedInner {
    pub(crate) backend: Box<dyn KeyedStateBackend>,
    pub(crate) namespace: Vec<u8>,
    clock: Arc<dyn Clock>,
    max_parallelism: usize,
    key_buf: Vec<u8>,
    /// How many times the current key was set: an operator that took a value for a key and
    /// stores it back skips setting the key again when nothing set another in between.
    pub(crate) key_changes: u64,
    accesses: u32,
    cleanup_every: Option<u32>,
}

impl KeyedInner {
    /// The typed table of `state` with the current key's slot and hash (see
    /// [`HeapKeyedStateBackend::typed_table`](crate::state::backend::HeapKeyedStateBackend)).
    ///
    /// # Panics
    /// When the backend is not the heap backend (typed tables are only registered there).
    #[inline]
    pub(crate) fn typed_table<K: 'static, V: 'static>(
        &mut self,
        state: StateId,
    ) -> (&mut TypedTable<K, V>, usize, u64) {
        self.backend
            .as_heap_mut()
            .expect("typed tables are kept by the heap backend")
            .typed_table(state)
    }

    /// Makes `key` the current key (see [`KeyedStateHandle::set_current_key`]).
    pub(crate) fn set_current_key<K: Serialize + ?Sized>(&mut self, key: &K) {
        // The key group comes from the very bytes the backend stores the key as.
        encode(key, &mut self.key_buf);
        let hash = hash_bytes(&self.key_buf);
        let kg = key_group_of_hash(hash, self.max_parallelism);
        self.backend.set_current_key_hashed(&self.key_buf, kg, hash);
        self.key_changes = self.key_changes.wrapping_add(1);
        if let Some(n) = self.cleanup_every {
            self.accesses = self.accesses.wrapping_add(1);
            if self.accesses.is_multiple_of(n) {
                let now = self.clock.now();
                self.backend.cleanup_step(now);
            }
        }
    }
}

/// The keyed state of one operator subtask, shared by the operator (which sets the current
/// key) and the state handles of its user function.
///
/// Every access takes a re-entrant lock. An operator that processes a batch of records holds
/// it for the whole batch ([`hold`](Self::hold)): the accesses inside then only check the
/// lock's owner, instead of an atomic read-modify-write per access (two per record for a
/// window, which also kept the processor from overlapping one record's cache misses with the
/// next's).
#[derive(Clone)]
pub struct KeyedStateHandle {
    inner: Arc<ReentrantMutex<RefCell<KeyedInner>>>,
}

/// Keeps a [`KeyedStateHandle`] locked for this thread until dropped (see
/// [`KeyedStateHandle::hold`]).
pub(crate) struct HeldState<'a> {
    _guard: ReentrantMutexGuard<'a, RefCell<KeyedInner>>,
}

/// The [`SerializeFn`](crate::state::backend::SerializeFn) of a state storing `S`.
pub(crate) fn serialize<S: Serialize + 'static>(v: &(dyn Any + Send)) -> Result<Vec<u8>> {
    let v = v.downcast_ref::<S>().ok_or_else(|| {
        FjordError::Internal(format!(
            "state value is not a {}",
            std::any::type_name::<S>()
        ))
    })?;
    crate::encoding::to_vec(v).map_err(|e| FjordError::Serialization {
        context: "keyed state value".into(),
        message: e.to_string(),
    })
}

fn deserialize<S: DeserializeOwned + Send + 'static>(bytes: &[u8]) -> Result<StateValue> {
    let v: S = crate::encoding::from_slice(bytes).map_err(|e| FjordError::Serialization {
        context: "keyed state value".into(),
        message: e.to_string(),
    })?;
    Ok(Box::new(v))
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) {
    buf.clear();
    crate::encoding::write_into(&mut *buf, value).expect("serializing into memory does not fail");
}

impl KeyedStateHandle {
    /// A handle on `backend` (any [`KeyedStateBackend`], as a factory created it).
    pub(crate) fn with_backend(
        backend: Box<dyn KeyedStateBackend>,
        max_parallelism: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        KeyedStateHandle {
            inner: Arc::new(ReentrantMutex::new(RefCell::new(KeyedInner {
                backend,
                namespace: Vec::new(),
                clock,
                max_parallelism,
                key_buf: Vec::new(),
                key_changes: 0,
                accesses: 0,
                cleanup_every: None,
            }))),
        }
    }

    /// Locks the state for this thread until the returned guard is dropped; accesses from
    /// this thread meanwhile are cheap (see the type's docs). Nothing may block on another
    /// thread that uses the same state while it is held.
    pub(crate) fn hold(&self) -> HeldState<'_> {
        HeldState {
            _guard: self.inner.lock(),
        }
    }

    /// Sets the key that following state accesses are scoped to.
    pub(crate) fn set_current_key<K: Serialize + ?Sized>(&self, key: &K) {
        self.with(|inner| inner.set_current_key(key));
    }

    /// Sets the current key from its serialized form and key group.
    pub(crate) fn set_current_key_bytes(&self, key: &[u8], key_group: usize) {
        self.with(|inner| {
            inner.backend.set_current_key(key, key_group);
            inner.key_changes = inner.key_changes.wrapping_add(1);
        });
    }

    /// Sets the namespace (the window) that following accesses are scoped to.
    #[allow(dead_code)] // used by the checkpoint and broadcast work
    pub(crate) fn set_namespace<N: Serialize + ?Sized>(&self, namespace: &N) {
        self.with(|g| encode(namespace, &mut g.namespace));
    }

    /// Back to the namespace of per-key state.
    #[allow(dead_code)] // used by the checkpoint and broadcast work
    pub(crate) fn clear_namespace(&self) {
        self.with(|g| g.namespace.clear());
    }

    /// Runs `f` on each item of `batch` while holding the state (see [`hold`](Self::hold)).
    #[inline]
    pub(crate) fn for_each_held<I>(
        &self,
        batch: impl IntoIterator<Item = I>,
        f: impl FnMut(I) -> Result<()>,
    ) -> Result<()> {
        let _held = self.hold();
        batch.into_iter().try_for_each(f)
    }

    /// Runs `f` on the locked state. Must not be called again from inside `f` (the state is
    /// borrowed mutably: a nested call panics).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut KeyedInner) -> R) -> R {
        let guard = self.inner.lock();
        let mut inner = guard.borrow_mut();
        f(&mut inner)
    }

    /// Registers a state (see [`KeyedStateBackend::register`]). Asking again for a state
    /// already registered under `name` with the same type is a lookup that allocates nothing,
    /// so that functions which get their state handles per element (rather than once in
    /// `open`) do not pay for it on every record; `cleanup` is made only when kept.
    fn register<S: Data>(
        &self,
        name: &str,
        ttl: Option<&StateTtlConfig>,
        cleanup: impl FnOnce() -> CleanupFn,
    ) -> Result<StateId> {
        self.with(|g| {
            let every = ttl.and_then(StateTtlConfig::cleanup_every);
            if let Some(every) = every {
                g.cleanup_every = Some(g.cleanup_every.map_or(every, |e| e.min(every)));
            }
            let type_name = std::any::type_name::<S>();
            if let Some((id, registered)) = g.backend.registered(name)
                && registered == type_name
            {
                return Ok(id);
            }
            g.backend.register(StateMeta {
                name: name.to_string(),
                type_name,
                serialize: serialize::<S>,
                deserialize: deserialize::<S>,
                cleanup: every.map(|_| cleanup()),
            })
        })
    }

    /// Registers a state of an operator's own (window contents, rolling aggregates): one `V`
    /// per key of type `K`, no TTL, and `V` need not be `Clone`. The heap backend keeps it
    /// typed ([`crate::state::typed_table`]); the flag says whether it does.
    pub(crate) fn register_internal<K, V>(&self, name: &str) -> Result<(StateId, bool)>
    where
        K: Eq + Clone + Serialize + DeserializeOwned + Send + 'static,
        V: Default + Serialize + DeserializeOwned + Send + 'static,
    {
        self.with(|g| {
            let meta = StateMeta {
                name: name.to_string(),
                type_name: std::any::type_name::<V>(),
                serialize: serialize::<V>,
                deserialize: deserialize::<V>,
                cleanup: None,
            };
            match g.backend.as_heap_mut() {
                Some(heap) => {
                    heap.register_typed(meta, |groups| Box::new(TypedTable::<K, V>::new(groups)))
                }
                None => g.backend.register(meta).map(|id| (id, false)),
            }
        })
    }

    /// Every key (serialized, with its key group) with a value in `state` outside windows.
    pub(crate) fn keys_of(&self, state: StateId) -> Vec<(Vec<u8>, usize)> {
        self.with(|g| g.backend.keys(state, &[]))
    }

    /// The number of stored entries (all states, keys and namespaces).
    pub fn len(&self) -> usize {
        self.with(|g| g.backend.len())
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serialized state of one key group (the checkpoint work calls this).
    pub fn snapshot_key_group(&self, key_group: usize) -> Result<Vec<u8>> {
        self.with(|g| g.backend.snapshot_key_group(key_group))
    }

    /// Restores one key group's state.
    pub fn restore_key_group(&self, key_group: usize, bytes: &[u8]) -> Result<()> {
        self.with(|g| g.backend.restore_key_group(key_group, bytes))
    }

    /// Restores key group `old_key_group` of a snapshot whose key groups came from the hash
    /// of format versions 1 and 2: its entries go to the key groups of their keys' bytes, and
    /// only those of `rehash.range` are kept (see [`KeyedStateBackend::restore_rehashed`]).
    pub(crate) fn restore_rehashed(
        &self,
        old_key_group: usize,
        bytes: &[u8],
        rehash: Rehash,
    ) -> Result<()> {
        self.with(|g| g.backend.restore_rehashed(old_key_group, bytes, rehash))
    }

    /// See [`KeyedStateBackend::prepare_checkpoint`].
    pub(crate) fn prepare_checkpoint(
        &self,
        target: &crate::state::backend::CheckpointTarget,
    ) -> Result<()> {
        self.with(|g| g.backend.prepare_checkpoint(target))
    }

    /// See [`KeyedStateBackend::checkpoint_snapshotted`].
    pub(crate) fn checkpoint_snapshotted(
        &self,
    ) -> Option<crate::state::backend::AsyncSnapshotPart> {
        self.with(|g| g.backend.checkpoint_snapshotted())
    }

    /// Tells the backend that a checkpoint completed.
    pub(crate) fn notify_checkpoint_complete(&self, checkpoint_id: u64) -> Result<()> {
        self.with(|g| g.backend.notify_checkpoint_complete(checkpoint_id))
    }
}

/// Gives a state handle its own namespace (the window it belongs to).
pub(crate) trait Scoped: Sized {
    fn scoped(self, namespace: Vec<u8>) -> Self;
}

macro_rules! impl_scoped {
    ($($t:ident<$($g:ident),*>),*) => {$(
        impl<$($g),*> Scoped for $t<$($g),*> {
            fn scoped(mut self, namespace: Vec<u8>) -> Self {
                self.ns = Some(namespace);
                self
            }
        }
    )*};
}
impl_scoped!(ValueState<V>, ListState<V>, ReducingState<V>, AggregatingState<IN, ACC, OUT>, MapState<UK, UV>);

/// Checks the TTL of a value read from the backend. Returns the value to hand out (if any) and
/// whether the entry must be removed.
fn read_stamped<V: Clone>(
    s: &mut Stamped<V>,
    ttl: Option<&StateTtlConfig>,
    now: Timestamp,
) -> (Option<V>, bool) {
    if s.expired(ttl, now) {
        let t = ttl.expect("expired implies ttl");
        return (t.return_expired().then(|| s.value.clone()), true);
    }
    if ttl.is_some_and(|t| t.update_on_read()) {
        s.ts = now;
    }
    (Some(s.value.clone()), false)
}

/// The namespace a handle works in: its own (window state, trigger state) or the backend's.
macro_rules! ns {
    ($self:ident, $inner:ident) => {
        match &$self.ns {
            Some(n) => n.as_slice(),
            None => $inner.namespace.as_slice(),
        }
    };
}

macro_rules! now_if_ttl {
    ($inner:expr, $ttl:expr) => {
        if $ttl.is_some() {
            $inner.clock.now()
        } else {
            0
        }
    };
}

/// The current key's value of a state that holds one `Stamped<$t>` per key and namespace,
/// read under the TTL visibility rules; an expired value is removed.
macro_rules! get_stamped {
    ($self:ident, $t:ty) => {
        $self.h.with(|inner| {
            let now = now_if_ttl!(inner, $self.ttl);
            let s = inner
                .backend
                .get_mut($self.id, ns!($self, inner))?
                .downcast_mut::<Stamped<$t>>()?;
            let (v, remove) = read_stamped(s, $self.ttl.as_ref(), now);
            if remove {
                inner.backend.remove($self.id, ns!($self, inner));
            }
            v
        })
    };
}

mod descriptors;
mod handles;
pub use descriptors::{
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor,
    SharedReduce, ValueStateDescriptor,
};
pub use handles::{AggregatingState, ListState, MapState, ReducingState, ValueState};

// ----- binding descriptors generically -----

/// A descriptor of keyed state that can be bound to an operator's keyed state without
/// knowing its kind; used by `apply_to_keyed_state` of broadcast process functions, which
/// visits every key that has the state.
pub trait KeyedStateDescriptor {
    /// The handle type the descriptor yields ([`ValueState`], [`ListState`], ...).
    type State;
    /// The state's name.
    fn state_name(&self) -> &str;
    /// Registers (or looks up) the state and returns its handle and id.
    #[doc(hidden)]
    fn bind(&self, handle: &KeyedStateHandle) -> Result<(Self::State, StateId)>;
}

/// Implements [`KeyedStateDescriptor`] for descriptors whose state has a
/// `State::new(handle, descriptor)` constructor.
macro_rules! impl_keyed_state_descriptor {
    ($(<$($g:ident: $bound:ident),+> $d:ty => $state:ty),+ $(,)?) => {$(
        impl<$($g: $bound),+> KeyedStateDescriptor for $d {
            type State = $state;
            fn state_name(&self) -> &str {
                &self.name
            }
            fn bind(&self, handle: &KeyedStateHandle) -> Result<($state, StateId)> {
                let s = <$state>::new(handle, self)?;
                let id = s.id;
                Ok((s, id))
            }
        }
    )+};
}

impl_keyed_state_descriptor!(
    <V: Data> ValueStateDescriptor<V> => ValueState<V>,
    <V: Data> ListStateDescriptor<V> => ListState<V>,
    <V: Data> ReducingStateDescriptor<V> => ReducingState<V>,
    <UK: Key, UV: Data> MapStateDescriptor<UK, UV> => MapState<UK, UV>,
);

/// Keyed state of the current key in one fixed namespace: the window being evaluated
/// (`WindowContext::window_state`) or the key's state across all windows
/// (`WindowContext::global_state`). Flink's `KeyedStateStore` of a `ProcessWindowFunction`.
pub struct KeyedStateStore {
    h: KeyedStateHandle,
    ns: Vec<u8>,
}

impl KeyedStateStore {
    pub(crate) fn new(h: KeyedStateHandle, ns: Vec<u8>) -> Self {
        KeyedStateStore { h, ns }
    }

    /// A [`ValueState`] in this store's namespace.
    pub fn get_state<V: Data>(
        &self,
        descriptor: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V>> {
        Ok(ValueState::new(&self.h, descriptor)?.scoped(self.ns.clone()))
    }

    /// A [`ListState`] in this store's namespace.
    pub fn get_list_state<V: Data>(
        &self,
        descriptor: &ListStateDescriptor<V>,
    ) -> Result<ListState<V>> {
        Ok(ListState::new(&self.h, descriptor)?.scoped(self.ns.clone()))
    }

    /// A [`ReducingState`] in this store's namespace.
    pub fn get_reducing_state<V: Data>(
        &self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V>> {
        Ok(ReducingState::new(&self.h, descriptor)?.scoped(self.ns.clone()))
    }

    /// A [`MapState`] in this store's namespace.
    pub fn get_map_state<UK: Key, UV: Data>(
        &self,
        descriptor: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV>> {
        Ok(MapState::new(&self.h, descriptor)?.scoped(self.ns.clone()))
    }
}
