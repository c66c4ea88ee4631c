//! Operator-internal keyed state kept in the operator's [`KeyedStateBackend`]: window
//! contents, pane accumulators, rolling aggregates.
//!
//! Flink keeps every keyed state of an operator — the user's, the window contents, the
//! accumulators of `reduce` and `aggregate` — in the configured backend, so with RocksDB none
//! of it stays on the heap. [`InternalKeyedValue`] gives an operator one typed value per key
//! in its backend, under a reserved state name (`_fjord.<what>`), in the namespace of
//! per-key state (empty). With the heap backend the value is the typed object in the
//! backend's per-key-group map; with RocksDB it is the value's encoded bytes ([`crate::encoding`]) under the key
//! `key group | key | namespace` (see `fjord_rocksdb`), so it is snapshotted, restored and
//! moved by key group with the rest of the backend.
//!
//! Access is *take, change, store*: [`take`](InternalKeyedValue::take) moves the current
//! key's value out (leaving `V::default()` in place, so nothing is written or deleted),
//! the operator works on the owned value (and may call triggers and user functions that use
//! the same backend for the same key), and [`store`](InternalKeyedValue::store) puts it back,
//! or removes the entry when it is empty.

use crate::error::{FjordError, Result};
use crate::keygroup::{KeyGroupRange, Rehash};
use crate::state::backend::StateId;
use crate::state::keyed::{KeyedInner, KeyedStateHandle};
use crate::state::typed_table::Place;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;
use std::marker::PhantomData;

/// Prefix of the state names operators use for their own contents; user state names may not
/// collide in practice (Flink reserves `_`-prefixed names the same way).
pub(crate) const INTERNAL_PREFIX: &str = "_fjord.";

/// A value the operator took out of its backend with [`InternalKeyedValue::take`].
pub(crate) struct Taken<V> {
    /// The value (`V::default()` when the key had none).
    pub(crate) value: V,
    /// True when the key had a value (a later store changes it in place).
    existed: bool,
    /// The backend's count of key changes right after the take (see `KeyedInner`).
    key_changes: u64,
    /// Where a typed table keeps the value (heap backend, the key had a value).
    place: Option<Place>,
}

/// One typed value per key in an operator's keyed state backend (see the module docs).
pub(crate) struct InternalKeyedValue<K, V> {
    h: KeyedStateHandle,
    id: StateId,
    /// True when the backend keeps the values typed (the heap backend).
    typed: bool,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> InternalKeyedValue<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + 'static,
    V: Default + Serialize + DeserializeOwned + Send + 'static,
{
    /// Registers the value under `_fjord.<what>` in `h`'s backend.
    ///
    /// # Errors
    /// [`FjordError::StateTypeMismatch`] when the name is taken by another type (the same
    /// operator registered it twice with different types: a bug).
    pub(crate) fn new(h: &KeyedStateHandle, what: &str) -> Result<Self> {
        let (id, typed) = h.register_internal::<K, V>(&format!("{INTERNAL_PREFIX}{what}"))?;
        Ok(InternalKeyedValue {
            h: h.clone(),
            id,
            typed,
            _t: PhantomData,
        })
    }

    /// Makes `key` the backend's current key and moves its value out.
    #[inline]
    pub(crate) fn take(&self, key: &K) -> Taken<V> {
        self.h.with(|inner| {
            inner.set_current_key(key);
            let key_changes = inner.key_changes;
            let (value, place) = if self.typed {
                let (table, slot, hash) = inner.typed_table::<K, V>(self.id);
                table.take(slot, hash, key).unzip()
            } else {
                let value = Self::current_mut(inner, self.id).map(std::mem::take);
                (value, None)
            };
            Taken {
                existed: value.is_some(),
                value: value.unwrap_or_default(),
                key_changes,
                place,
            }
        })
    }

    /// Makes `key` the backend's current key and runs `f` on its value in place, when it has
    /// one (`None` when it has none: `f` is not called). The common case of a record that
    /// changes a value its key already has, at one lookup and without moving the value out
    /// and back. `f` must not use the backend: the state is borrowed while it runs, so a
    /// trigger or user function that may access keyed state needs [`take`](Self::take).
    #[inline]
    pub(crate) fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.h.with(|inner| {
            inner.set_current_key(key);
            if self.typed {
                let (table, slot, hash) = inner.typed_table::<K, V>(self.id);
                table.value_mut(slot, hash, key).map(f)
            } else {
                Self::current_mut(inner, self.id).map(f)
            }
        })
    }

    /// Like [`update`](Self::update), and for a key without a value runs `f` on the default
    /// value and stores the result. Same rule: `f` must not use the backend.
    #[inline]
    pub(crate) fn upsert<R>(&self, key: &K, mut f: impl FnMut(&mut V) -> R) -> R {
        if let Some(r) = self.update(key, &mut f) {
            return r;
        }
        let mut taken = self.take(key);
        let r = f(&mut taken.value);
        self.store(key, taken, false);
        r
    }

    /// Makes `key` the backend's current key and runs `f` on its value in place, when it has
    /// one; `f` returns whether the value holds nothing anymore, and then the key's entry is
    /// removed. One lookup where [`take`](Self::take) and [`store`](Self::store) make two.
    /// Same rule as [`update`](Self::update): `f` must not use the backend.
    #[inline]
    pub(crate) fn change(&self, key: &K, f: impl FnOnce(&mut V) -> bool) {
        self.h.with(|inner| {
            inner.set_current_key(key);
            if self.typed {
                let (table, slot, hash) = inner.typed_table::<K, V>(self.id);
                table.change(slot, hash, key, f);
            } else if Self::current_mut(inner, self.id).is_some_and(f) {
                inner.backend.remove(self.id, &[]);
            }
        })
    }

    /// Puts a value taken for `key` back; `empty` says whether it holds nothing anymore, in
    /// which case the key's entry is removed.
    #[inline]
    pub(crate) fn store(&self, key: &K, taken: Taken<V>, empty: bool) {
        self.h.with(|inner| {
            // Triggers and user functions between take and store may have switched keys
            // (timers of other keys, for one): then the key is set again, else it is still
            // current and not encoded and hashed a second time.
            if inner.key_changes != taken.key_changes {
                inner.set_current_key(key);
            }
            if self.typed {
                let (table, slot, hash) = inner.typed_table::<K, V>(self.id);
                table.store(slot, hash, key, taken.value, empty);
                return;
            }
            Self::store_current(inner, self.id, taken, empty);
        })
    }

    /// Puts a non-empty value back into the entry it was taken from, without the key: when
    /// the key is still current and (heap backend) the entry has not moved. Otherwise hands
    /// it back, to be [stored](Self::store) by key.
    #[inline]
    pub(crate) fn store_in_place(&self, taken: Taken<V>) -> std::result::Result<(), Taken<V>> {
        self.h.with(|inner| {
            if inner.key_changes != taken.key_changes {
                return Err(taken);
            }
            if !self.typed {
                Self::store_current(inner, self.id, taken, false);
                return Ok(());
            }
            let Some(place) = taken.place else {
                return Err(taken);
            };
            let (table, _, _) = inner.typed_table::<K, V>(self.id);
            table
                .put_back(place, taken.value)
                .map_err(|value| Taken { value, ..taken })
        })
    }

    /// The current key's value in a backend that keeps it untyped (serialized backends).
    fn current_mut(inner: &mut KeyedInner, id: StateId) -> Option<&mut V> {
        inner
            .backend
            .get_mut(id, &[])
            .and_then(|v| v.downcast_mut::<V>())
    }

    /// Stores a taken value under the backend's current key (serialized backends).
    fn store_current(inner: &mut KeyedInner, id: StateId, taken: Taken<V>, empty: bool) {
        if empty {
            if taken.existed {
                inner.backend.remove(id, &[]);
            }
            return;
        }
        if taken.existed
            && let Some(slot) = Self::current_mut(inner, id)
        {
            *slot = taken.value;
            return;
        }
        inner.backend.put(id, &[], Box::new(taken.value));
    }

    /// Adds the entries of one key group written by the operator's own snapshots before
    /// its contents moved into the backend (savepoints of Fjord before format 2 of these
    /// operators): an encoded list of (key, value). With `rehash` (the snapshot's key groups
    /// came from the old hash), only the keys that now belong to this subtask are kept.
    ///
    /// # Errors
    /// Bytes that are not such a list, or (without `rehash`) a key group outside `range`.
    pub(crate) fn restore_legacy_group(
        &self,
        range: KeyGroupRange,
        key_group: usize,
        bytes: &[u8],
        rehash: Option<Rehash>,
    ) -> Result<()> {
        if rehash.is_none() && !range.contains(key_group) {
            return Err(FjordError::Restore(format!(
                "key group {key_group} is not in this subtask's range {range:?}"
            )));
        }
        let entries: Vec<(K, V)> =
            crate::encoding::from_slice(bytes).map_err(|e| FjordError::Serialization {
                context: format!("restoring key group {key_group}"),
                message: e.to_string(),
            })?;
        for (key, value) in entries {
            if rehash.is_some_and(|r| !r.keeps(&key)) {
                continue;
            }
            self.h.set_current_key(&key);
            self.h
                .with(|inner| inner.backend.put(self.id, &[], Box::new(value)));
        }
        Ok(())
    }

    /// The backend handle the value lives in.
    pub(crate) fn handle(&self) -> &KeyedStateHandle {
        &self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backend::HeapKeyedStateBackend;
    use crate::time::SystemClock;
    use std::sync::Arc;

    fn handle() -> KeyedStateHandle {
        let range = KeyGroupRange { start: 0, end: 127 };
        KeyedStateHandle::with_backend(
            Box::new(HeapKeyedStateBackend::new(range)),
            128,
            Arc::new(SystemClock),
        )
    }

    #[test]
    fn a_store_goes_to_its_key_even_when_another_key_was_set_in_between() {
        let h = handle();
        let v = InternalKeyedValue::<u64, Vec<u32>>::new(&h, "test").unwrap();
        let mut a = v.take(&1);
        a.value.push(10);
        // What a trigger or user function may do between take and store: touch another key.
        let mut b = v.take(&2);
        b.value.push(20);
        v.store(&2, b, false);
        v.store(&1, a, false);
        // The same key taken and stored with nothing in between.
        let mut a = v.take(&1);
        a.value.push(11);
        v.store(&1, a, false);
        assert_eq!(v.take(&1).value, [10, 11]);
        assert_eq!(v.take(&2).value, [20]);
        assert!(v.take(&3).value.is_empty());
    }

    #[test]
    fn keys_longer_than_the_inline_bytes_are_kept_apart() {
        let h = handle();
        let v = InternalKeyedValue::<String, u64>::new(&h, "long").unwrap();
        let keys: Vec<String> = (0..50).map(|i| format!("{}{i}", "k".repeat(i))).collect();
        for (i, k) in keys.iter().enumerate() {
            let mut t = v.take(k);
            t.value = i as u64 + 1;
            v.store(k, t, false);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(v.take(k).value, i as u64 + 1, "key of {} bytes", k.len());
        }
    }
}
