//! A map from key to value, split by key group.

use crate::keygroup::{FastMap, KeyGroupRange, assign_to_key_group};
use std::hash::Hash;

/// Values per key for the key groups one subtask owns (the heap layout Flink's
/// `HeapKeyedStateBackend` uses): one hash map per key group.
pub struct KeyGroupedMap<K, V> {
    range: KeyGroupRange,
    max_parallelism: usize,
    groups: Vec<FastMap<K, V>>,
}

impl<K: Hash + Eq + serde::Serialize, V> KeyGroupedMap<K, V> {
    /// An empty map for the key groups in `range`.
    pub fn new(range: KeyGroupRange, max_parallelism: usize) -> Self {
        KeyGroupedMap {
            range,
            max_parallelism,
            groups: (0..range.len()).map(|_| FastMap::default()).collect(),
        }
    }

    /// The key group of a key (of its serialized bytes, see [`crate::keygroup`]).
    #[inline]
    pub fn key_group(&self, key: &K) -> usize {
        assign_to_key_group(key, self.max_parallelism)
    }

    /// The map of the key's group. Panics if the key belongs to another subtask, which would
    /// be a partitioning bug.
    #[inline]
    pub fn group_mut(&mut self, key: &K) -> &mut FastMap<K, V> {
        let kg = self.key_group(key);
        assert!(
            self.range.contains(kg),
            "key group {kg} is not in this subtask's range {:?}",
            self.range
        );
        &mut self.groups[kg - self.range.start]
    }

    /// The value of a key.
    pub fn get(&self, key: &K) -> Option<&V> {
        let kg = self.key_group(key);
        self.groups.get(kg.checked_sub(self.range.start)?)?.get(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.len()).sum()
    }

    /// True when no key has a value.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|g| g.is_empty())
    }

    /// The key groups this map covers.
    pub fn range(&self) -> KeyGroupRange {
        self.range
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.groups.iter_mut().for_each(|g| g.clear());
    }

    /// Entries of one key group (for snapshots by key group).
    pub fn group(&self, key_group: usize) -> impl Iterator<Item = (&K, &V)> {
        key_group
            .checked_sub(self.range.start)
            .and_then(|i| self.groups.get(i))
            .into_iter()
            .flat_map(|g| g.iter())
    }
}

impl<K, V> KeyGroupedMap<K, V>
where
    K: Hash + Eq + serde::Serialize + serde::de::DeserializeOwned,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    /// The entries of one key group, serialized (the canonical snapshot form).
    pub fn snapshot_group(&self, key_group: usize) -> crate::error::Result<Vec<u8>> {
        let entries: Vec<(&K, &V)> = self.group(key_group).collect();
        crate::encoding::to_vec(&entries).map_err(|e| crate::error::FjordError::Serialization {
            context: format!("key group {key_group}"),
            message: e.to_string(),
        })
    }

    /// Adds the entries of a key group written by [`snapshot_group`](Self::snapshot_group).
    pub fn restore_group(&mut self, key_group: usize, bytes: &[u8]) -> crate::error::Result<()> {
        let entries: Vec<(K, V)> = crate::encoding::from_slice(bytes).map_err(|e| {
            crate::error::FjordError::Serialization {
                context: format!("restoring key group {key_group}"),
                message: e.to_string(),
            }
        })?;
        let Some(group) = key_group
            .checked_sub(self.range.start)
            .and_then(|i| self.groups.get_mut(i))
        else {
            return Err(crate::error::FjordError::Restore(format!(
                "key group {key_group} is not in this subtask's range {:?}",
                self.range
            )));
        };
        group.extend(entries);
        Ok(())
    }

    /// Adds the entries of a key group written by [`snapshot_group`](Self::snapshot_group)
    /// of a snapshot of format version 1 or 2 (key groups by the old hash): each entry goes to
    /// the key group of its key, and entries of key groups outside this map's range are
    /// dropped (another subtask restores them).
    pub fn restore_group_rehashed(&mut self, bytes: &[u8]) -> crate::error::Result<()> {
        let entries: Vec<(K, V)> = crate::encoding::from_slice(bytes).map_err(|e| {
            crate::error::FjordError::Serialization {
                context: "restoring a key group".into(),
                message: e.to_string(),
            }
        })?;
        for (k, v) in entries {
            let kg = self.key_group(&k);
            if self.range.contains(kg) {
                self.groups[kg - self.range.start].insert(k, v);
            }
        }
        Ok(())
    }
}
