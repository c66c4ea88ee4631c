//! Operator-internal per-key values that the heap backend keeps as typed objects.
//!
//! Window contents, pane accumulators, rolling aggregates and interval join buffers
//! ([`InternalKeyedValue`](crate::state::internal::InternalKeyedValue)) are read and written
//! on every record. Kept like user state (a byte key, a namespace, and a boxed `dyn Any`
//! value), each access went from the key's entry to a second allocation and asked the value
//! for its type; at 10,000 keys the tumbling-window benchmark spent a third of its time on
//! that lookup, waiting on memory. A [`TypedTable`] keeps the key and the value inline in one
//! hash table entry per key group (64 bytes for a `u64` key and one window), filed under the
//! hash of the key's bytes that the backend computes when the key becomes current.
//!
//! Snapshots and restores see the same serialized `(key, namespace, value)` entries as for
//! every other state ([`TypedStore`]), so checkpoints and savepoints are unchanged and restore
//! into any backend.

use crate::error::{FjordError, Result};
use crate::state::backend::{SerializeFn, StateValue};
use crate::state::key_table::hash_of;
use crate::state::keyed::encode;
use hashbrown::hash_table::{Entry, HashTable};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;

/// What the heap backend needs of a typed table without knowing its types: the generic,
/// serialized access of [`KeyedStateBackend`](crate::state::backend::KeyedStateBackend) and
/// the entries for snapshots. Keys arrive serialized with their [`hash_of`] and the slot of
/// their key group in the backend's range. Values live in the empty namespace only.
pub(crate) trait TypedStore: Any + Send {
    /// The value of `key`.
    fn get_mut(&mut self, slot: usize, hash: u64, key: &[u8]) -> Option<&mut (dyn Any + Send)>;
    /// Sets the value of `key` (a restored entry, or the generic `put`).
    ///
    /// # Errors
    /// Key bytes that do not decode as the table's key type, or a value of another type.
    fn insert(&mut self, slot: usize, hash: u64, key: &[u8], value: StateValue) -> Result<()>;
    /// Removes the value of `key` and returns it.
    fn remove(&mut self, slot: usize, hash: u64, key: &[u8]) -> Option<StateValue>;
    /// Appends the entries of the key group in `slot` as (key, empty namespace, value) bytes,
    /// each value written by `serialize` (the state's own, as for user state).
    ///
    /// # Errors
    /// A value that fails to serialize.
    fn entries(
        &self,
        slot: usize,
        serialize: SerializeFn,
        out: &mut Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    ) -> Result<()>;
    /// The serialized keys of the key group in `slot`.
    fn keys(&self, slot: usize) -> Vec<Vec<u8>>;
    /// The number of keys with a value.
    fn len(&self) -> usize;
}

/// One typed value per key, a hash table per key group (see the module docs).
pub(crate) struct TypedTable<K, V> {
    groups: Vec<HashTable<(K, V)>>,
    /// Counts the inserts and removals, after which entries may have moved: a [`Place`]
    /// found before one is no longer trusted.
    layout: u64,
}

/// Where [`TypedTable::take`] found a key's entry, to put the value back without comparing
/// the key again ([`TypedTable::put_back`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    slot: usize,
    index: usize,
    layout: u64,
}

/// The hash a key is filed under: that of its bytes, as the backend computes it.
fn hash_of_entry<K: Serialize, V>(entry: &(K, V)) -> u64 {
    let mut bytes = Vec::new();
    encode(&entry.0, &mut bytes);
    hash_of(&bytes)
}

fn decode_key<K: DeserializeOwned>(key: &[u8]) -> Result<K> {
    crate::encoding::from_slice(key).map_err(|e| FjordError::Serialization {
        context: "key of an operator's internal state".into(),
        message: e.to_string(),
    })
}

impl<K, V> TypedTable<K, V>
where
    K: Eq + Clone + Serialize + DeserializeOwned + Send + 'static,
    V: Default + Serialize + Send + 'static,
{
    /// An empty table for `groups` key groups.
    pub(crate) fn new(groups: usize) -> Self {
        TypedTable {
            groups: (0..groups).map(|_| HashTable::new()).collect(),
            layout: 0,
        }
    }

    /// Moves the value of `key` out, leaving `V::default()` in its place, with the place of
    /// its entry; `None` when the key has no value.
    #[inline]
    pub(crate) fn take(&mut self, slot: usize, hash: u64, key: &K) -> Option<(V, Place)> {
        let group = &mut self.groups[slot];
        let index = group.find_bucket_index(hash, |(k, _)| k == key)?;
        let (_, v) = group.get_bucket_mut(index)?;
        let place = Place {
            slot,
            index,
            layout: self.layout,
        };
        Some((std::mem::take(v), place))
    }

    /// The value of `key`, to change in place; `None` when the key has no value.
    #[inline]
    pub(crate) fn value_mut(&mut self, slot: usize, hash: u64, key: &K) -> Option<&mut V> {
        self.groups[slot]
            .find_mut(hash, |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Runs `f` on the value of `key` in place, if it has one, and removes the key when `f`
    /// says its value holds nothing anymore.
    #[inline]
    pub(crate) fn change(
        &mut self,
        slot: usize,
        hash: u64,
        key: &K,
        f: impl FnOnce(&mut V) -> bool,
    ) {
        if let Ok(mut entry) = self.groups[slot].find_entry(hash, |(k, _)| k == key)
            && f(&mut entry.get_mut().1)
        {
            entry.remove();
            self.layout += 1;
        }
    }

    /// Puts `value` back into the entry [`take`](Self::take) found at `place`, unless
    /// entries were inserted or removed since (then it hands the value back, to be stored by
    /// key).
    #[inline]
    pub(crate) fn put_back(&mut self, place: Place, value: V) -> std::result::Result<(), V> {
        if place.layout != self.layout {
            return Err(value);
        }
        match self.groups[place.slot].get_bucket_mut(place.index) {
            Some((_, v)) => {
                *v = value;
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Sets the value of `key`, or removes the key when `value` holds nothing (`empty`).
    #[inline]
    pub(crate) fn store(&mut self, slot: usize, hash: u64, key: &K, value: V, empty: bool) {
        let entry = self.groups[slot].entry(hash, |(k, _)| k == key, hash_of_entry);
        match (entry, empty) {
            (Entry::Occupied(e), true) => {
                e.remove();
                self.layout += 1;
            }
            (Entry::Vacant(_), true) => {}
            (Entry::Occupied(mut e), false) => e.get_mut().1 = value,
            (Entry::Vacant(e), false) => {
                e.insert((key.clone(), value));
                self.layout += 1;
            }
        }
    }
}

impl<K, V> TypedStore for TypedTable<K, V>
where
    K: Eq + Clone + Serialize + DeserializeOwned + Send + 'static,
    V: Default + Serialize + Send + 'static,
{
    fn get_mut(&mut self, slot: usize, hash: u64, key: &[u8]) -> Option<&mut (dyn Any + Send)> {
        let key: K = decode_key(key).ok()?;
        self.groups[slot]
            .find_mut(hash, |(k, _)| *k == key)
            .map(|(_, v)| v as &mut (dyn Any + Send))
    }

    fn insert(&mut self, slot: usize, hash: u64, key: &[u8], value: StateValue) -> Result<()> {
        let key: K = decode_key(key)?;
        let value = value.downcast::<V>().map_err(|_| {
            FjordError::Internal(format!(
                "state value is not a {}",
                std::any::type_name::<V>()
            ))
        })?;
        self.store(slot, hash, &key, *value, false);
        Ok(())
    }

    fn remove(&mut self, slot: usize, hash: u64, key: &[u8]) -> Option<StateValue> {
        let key: K = decode_key(key).ok()?;
        let entry = self.groups[slot]
            .find_entry(hash, |(k, _)| *k == key)
            .ok()?;
        let ((_, value), _) = entry.remove();
        self.layout += 1;
        Some(Box::new(value))
    }

    fn entries(
        &self,
        slot: usize,
        serialize: SerializeFn,
        out: &mut Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        for (key, value) in self.groups[slot].iter() {
            let mut k = Vec::new();
            encode(key, &mut k);
            out.push((k, Vec::new(), serialize(value)?));
        }
        Ok(())
    }

    fn keys(&self, slot: usize) -> Vec<Vec<u8>> {
        self.groups[slot]
            .iter()
            .map(|(key, _)| {
                let mut k = Vec::new();
                encode(key, &mut k);
                k
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.groups.iter().map(HashTable::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::keyed::serialize;

    fn bytes(key: &str) -> (Vec<u8>, u64) {
        let mut b = Vec::new();
        encode(key, &mut b);
        let h = hash_of(&b);
        (b, h)
    }

    #[test]
    fn typed_and_serialized_access_see_the_same_values() {
        let mut t = TypedTable::<String, Vec<u32>>::new(2);
        let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
        for (i, k) in keys.iter().enumerate() {
            let (_, h) = bytes(k);
            assert!(t.take(i % 2, h, k).is_none());
            t.store(i % 2, h, k, vec![i as u32], false);
        }
        assert_eq!(t.len(), 200);
        // Serialized access finds what typed access stored, and the other way round.
        let (b, h) = bytes(&keys[7]);
        let v = TypedStore::get_mut(&mut t, 1, h, &b).expect("present");
        assert_eq!(v.downcast_ref::<Vec<u32>>(), Some(&vec![7]));
        t.insert(1, h, &b, Box::new(vec![70u32])).unwrap();
        assert_eq!(t.take(1, h, &keys[7]).map(|t| t.0), Some(vec![70]));
        // A taken value leaves the default in place until stored again.
        assert_eq!(t.take(1, h, &keys[7]).map(|t| t.0), Some(vec![]));
        t.store(1, h, &keys[7], vec![], true);
        assert!(TypedStore::get_mut(&mut t, 1, h, &b).is_none());
        assert_eq!(t.len(), 199);
        // Entries are the serialized keys and values of their key group only.
        let mut out = Vec::new();
        t.entries(0, serialize::<Vec<u32>>, &mut out).unwrap();
        assert_eq!(out.len(), 100);
        for (k, ns, v) in &out {
            let key: String = crate::encoding::from_slice(k).unwrap();
            let value: Vec<u32> = crate::encoding::from_slice(v).unwrap();
            assert!(ns.is_empty());
            let i: u32 = key.trim_start_matches("key-").parse().unwrap();
            assert_eq!((i % 2, value), (0, vec![i]));
        }
        assert_eq!(t.keys(1).len(), 99);
        let (b, h) = bytes(&keys[9]);
        let removed = TypedStore::remove(&mut t, 1, h, &b).expect("present");
        assert_eq!(removed.downcast_ref::<Vec<u32>>(), Some(&vec![9]));
        assert!(t.insert(0, h, b"\xff", Box::new(vec![1u32])).is_err());
        assert!(t.insert(0, h, &b, Box::new(1u8)).is_err());
    }

    #[test]
    fn a_value_goes_back_to_its_place_until_entries_move() {
        let mut t = TypedTable::<String, u32>::new(1);
        let key = |i: u32| format!("k{i}");
        for i in 0..10 {
            let (_, h) = bytes(&key(i));
            t.store(0, h, &key(i), i, false);
        }
        let (_, h3) = bytes(&key(3));
        let (v, place) = t.take(0, h3, &key(3)).expect("present");
        assert_eq!(v, 3);
        assert_eq!(t.put_back(place, 30), Ok(()));
        assert_eq!(t.take(0, h3, &key(3)).map(|t| t.0), Some(30));
        // An insert may move entries (the table grows): the place is not trusted after it.
        let (_, place) = t.take(0, h3, &key(3)).expect("present");
        for i in 10..100 {
            let (_, h) = bytes(&key(i));
            t.store(0, h, &key(i), i, false);
        }
        assert_eq!(t.put_back(place, 31), Err(31));
        // And so after a removal.
        let (_, place) = t.take(0, h3, &key(3)).expect("present");
        let (b, h) = bytes(&key(50));
        assert!(TypedStore::remove(&mut t, 0, h, &b).is_some());
        assert_eq!(t.put_back(place, 32), Err(32));
    }
}
