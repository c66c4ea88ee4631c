//! The keys of one state in one key group of the heap backend, with their namespaces.
//!
//! A hash table looked up by the current key's bytes and a hash the backend computes once
//! when the key is set, so the two lookups a record usually makes (an operator takes its
//! value and stores it back) hash the key once, not twice. Keys of 8 bytes (integers) are
//! compared as one machine word: comparing byte slices calls `memcmp`, which was 5 % of the
//! window benchmark's time.

use crate::keygroup::hash_bytes;
use crate::state::namespaces::Namespaces;
use hashbrown::hash_table::{Entry, HashTable};

/// A serialized key as the table holds it: inline up to 24 bytes (an integer, a short
/// string), so a lookup compares the key without following a pointer (a cache miss per
/// lookup with `Vec<u8>`; the tumbling-window benchmark spent 13 % of its time there).
pub(crate) type KeyBytes = smallvec::SmallVec<[u8; 24]>;

/// The hash a [`KeyTable`] files a serialized key under: [`table_hash`] of the key's
/// [`hash_bytes`], the hash its key group comes from.
#[inline]
pub(crate) fn hash_of(key: &[u8]) -> u64 {
    table_hash(hash_bytes(key))
}

/// The table hash of a key from its [`hash_bytes`], which the caller computed for the key
/// group already (so a key is hashed once). The key group is that hash modulo the max
/// parallelism, its low bits, which every key of a key group's table shares: rotated, the
/// bits that pick a bucket and the tag hash tables keep per bucket are others.
#[inline]
pub(crate) fn table_hash(key_hash: u64) -> u64 {
    key_hash.rotate_left(32)
}

#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    match (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) {
        (Ok(a), Ok(b)) => u64::from_ne_bytes(a) == u64::from_ne_bytes(b),
        _ => a == b,
    }
}

/// Keys (serialized) and their namespaces (see the module docs). Every method takes the
/// key's [`hash_of`] with the key.
#[derive(Default)]
pub(crate) struct KeyTable {
    table: HashTable<(KeyBytes, Namespaces)>,
}

impl KeyTable {
    /// The namespaces of `key`, if it has any.
    #[inline]
    pub(crate) fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Namespaces> {
        self.table
            .find_mut(hash, |(k, _)| same_key(k, key))
            .map(|(_, spaces)| spaces)
    }

    /// The namespaces of `key`, added empty if it has none.
    pub(crate) fn get_or_default(&mut self, hash: u64, key: &[u8]) -> &mut Namespaces {
        let entry = self
            .table
            .entry(hash, |(k, _)| same_key(k, key), |(k, _)| hash_of(k));
        match entry {
            Entry::Occupied(e) => &mut e.into_mut().1,
            Entry::Vacant(e) => {
                let added = e.insert((KeyBytes::from_slice(key), Namespaces::default()));
                &mut added.into_mut().1
            }
        }
    }

    /// Removes `key` and its namespaces.
    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) {
        if let Ok(e) = self.table.find_entry(hash, |(k, _)| same_key(k, key)) {
            e.remove();
        }
    }

    /// Keeps the keys for which `keep` returns true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut Namespaces) -> bool) {
        self.table.retain(|(_, spaces)| keep(spaces));
    }

    /// Every key and its namespaces.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&KeyBytes, &Namespaces)> {
        self.table.iter().map(|(k, spaces)| (k, spaces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_eight_bytes_and_of_other_lengths_are_found_and_kept_apart() {
        let mut t = KeyTable::default();
        let keys: Vec<Vec<u8>> = vec![
            7u64.to_le_bytes().to_vec(),
            8u64.to_le_bytes().to_vec(),
            vec![7],
            vec![7, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![],
            b"a string key longer than twenty-four bytes".to_vec(),
        ];
        for (i, k) in keys.iter().enumerate() {
            t.get_or_default(hash_of(k), k)
                .insert(vec![], Box::new(i as u32));
        }
        for (i, k) in keys.iter().enumerate() {
            let spaces = t.get_mut(hash_of(k), k).expect("present");
            let v = spaces.get_mut(&[]).unwrap().downcast_ref::<u32>().copied();
            assert_eq!(v, Some(i as u32), "key {k:?}");
        }
        assert_eq!(t.iter().count(), keys.len());
        t.remove(hash_of(&keys[0]), &keys[0]);
        assert!(t.get_mut(hash_of(&keys[0]), &keys[0]).is_none());
        assert!(t.get_mut(hash_of(&keys[1]), &keys[1]).is_some());
        t.retain(|_| false);
        assert_eq!(t.iter().count(), 0);
    }
}
