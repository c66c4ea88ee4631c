//! How the heap backend stores the entries of one registered state, per key group.
//!
//! A user's state may have any namespace (the window, inside windows) and its values are
//! boxed, so one backend holds states of any type ([`Namespaced`]). An operator's own per-key
//! value (window contents, pane accumulators, rolling aggregates: `state::internal`) has
//! one type and only the empty namespace, so it is kept unboxed in the key's map entry
//! ([`Inline`]): a record's access then reads one hash table entry instead of the entry, the
//! box, and the namespace beside it, each a cache miss once the state outgrows the core's
//! cache (the tumbling window's time went mostly to those misses, BENCHMARKS.md, issue 14).
//! Both hold the same values and snapshot the same bytes.

use crate::keygroup::FastMap;
use crate::state::backend::StateValue;
use crate::state::namespaces::Namespaces;
use std::any::Any;

/// A serialized key as the heap backend's maps hold it: inline up to 24 bytes (an integer, a
/// short string), so a lookup compares the key without following a pointer (a cache miss per
/// lookup with `Vec<u8>`; the tumbling-window benchmark spent 13 % of its time there). Hashes
/// and compares as the `[u8]` it holds, so maps are looked up with the current key's slice.
pub(crate) type KeyBytes = smallvec::SmallVec<[u8; 24]>;

/// Visits an entry: key, namespace, value.
pub(crate) type EntryVisitor<'a> =
    dyn FnMut(&[u8], &[u8], &(dyn Any + Send)) -> crate::error::Result<()> + 'a;

/// The entries of one state, per key group (`slot` = key group − the backend's first).
pub(crate) trait HeapTable: Send {
    /// The value of `key` in `namespace`.
    fn get_mut(&mut self, slot: usize, key: &[u8], ns: &[u8]) -> Option<&mut (dyn Any + Send)>;
    /// Sets the value of `key` in `namespace`.
    fn put(&mut self, slot: usize, key: &[u8], ns: &[u8], value: StateValue);
    /// Removes the value of `key` in `namespace`.
    fn remove(&mut self, slot: usize, key: &[u8], ns: &[u8]) -> Option<StateValue>;
    /// Every key (with its slot) that has a value in `namespace`.
    fn keys(&self, ns: &[u8]) -> Vec<(usize, Vec<u8>)>;
    /// Keeps the values of one slot for which `keep` is true; returns how many went.
    fn retain(&mut self, slot: usize, keep: &mut dyn FnMut(&mut (dyn Any + Send)) -> bool)
    -> usize;
    /// Number of values.
    fn len(&self) -> usize;
    /// Visits every entry of one slot.
    fn visit(&self, slot: usize, f: &mut EntryVisitor<'_>) -> crate::error::Result<()>;
    /// The table itself, for a typed access to an [`Inline`] one.
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send);
}

/// Boxed values of any namespace (see the module docs).
pub(crate) struct Namespaced {
    groups: Vec<FastMap<KeyBytes, Namespaces>>,
}

impl Namespaced {
    /// An empty table of `slots` key groups.
    pub(crate) fn new(slots: usize) -> Self {
        Namespaced {
            groups: (0..slots).map(|_| FastMap::default()).collect(),
        }
    }
}

impl HeapTable for Namespaced {
    #[inline]
    fn get_mut(&mut self, slot: usize, key: &[u8], ns: &[u8]) -> Option<&mut (dyn Any + Send)> {
        self.groups[slot]
            .get_mut(key)?
            .get_mut(ns)
            .map(|b| b.as_mut())
    }

    fn put(&mut self, slot: usize, key: &[u8], ns: &[u8], value: StateValue) {
        let group = &mut self.groups[slot];
        match group.get_mut(key) {
            Some(spaces) => spaces.insert(ns.to_vec(), value),
            None => {
                let mut spaces = Namespaces::default();
                spaces.insert(ns.to_vec(), value);
                group.insert(KeyBytes::from_slice(key), spaces);
            }
        }
    }

    fn remove(&mut self, slot: usize, key: &[u8], ns: &[u8]) -> Option<StateValue> {
        let group = &mut self.groups[slot];
        let spaces = group.get_mut(key)?;
        let value = spaces.remove(ns);
        if spaces.is_empty() {
            group.remove(key);
        }
        value
    }

    fn keys(&self, ns: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        for (slot, group) in self.groups.iter().enumerate() {
            for (key, spaces) in group {
                if spaces.contains_key(ns) {
                    out.push((slot, key.to_vec()));
                }
            }
        }
        out
    }

    fn retain(
        &mut self,
        slot: usize,
        keep: &mut dyn FnMut(&mut (dyn Any + Send)) -> bool,
    ) -> usize {
        let mut removed = 0;
        self.groups[slot].retain(|_, spaces| {
            spaces.retain(|_, v| {
                let kept = keep(v.as_mut());
                removed += usize::from(!kept);
                kept
            });
            !spaces.is_empty()
        });
        removed
    }

    fn len(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| g.values())
            .map(|s| s.len())
            .sum()
    }

    fn visit(&self, slot: usize, f: &mut EntryVisitor<'_>) -> crate::error::Result<()> {
        for (key, spaces) in &self.groups[slot] {
            for (ns, v) in spaces.iter() {
                f(key, ns, v.as_ref())?;
            }
        }
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send) {
        self
    }
}

/// One unboxed value of type `V` per key, in the empty namespace only (see the module docs).
pub(crate) struct Inline<V> {
    groups: Vec<FastMap<KeyBytes, V>>,
}

impl<V: Send + 'static> Inline<V> {
    /// An empty table of `slots` key groups.
    pub(crate) fn new(slots: usize) -> Self {
        Inline {
            groups: (0..slots).map(|_| FastMap::default()).collect(),
        }
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn value_mut(&mut self, slot: usize, key: &[u8]) -> Option<&mut V> {
        self.groups[slot].get_mut(key)
    }

    /// Sets the value of `key`.
    #[inline]
    pub(crate) fn insert(&mut self, slot: usize, key: &[u8], value: V) {
        self.groups[slot].insert(KeyBytes::from_slice(key), value);
    }

    /// Removes the value of `key`.
    #[inline]
    pub(crate) fn delete(&mut self, slot: usize, key: &[u8]) -> Option<V> {
        self.groups[slot].remove(key)
    }
}

/// Panics for a namespace an inline table cannot have: only an operator's own per-key values
/// are registered inline, and they never have one.
fn empty_namespace(ns: &[u8]) {
    assert!(
        ns.is_empty(),
        "an operator's per-key value was accessed in a namespace"
    );
}

impl<V: Send + 'static> HeapTable for Inline<V> {
    fn get_mut(&mut self, slot: usize, key: &[u8], ns: &[u8]) -> Option<&mut (dyn Any + Send)> {
        empty_namespace(ns);
        self.value_mut(slot, key)
            .map(|v| v as &mut (dyn Any + Send))
    }

    fn put(&mut self, slot: usize, key: &[u8], ns: &[u8], value: StateValue) {
        empty_namespace(ns);
        let value = value
            .downcast::<V>()
            .unwrap_or_else(|_| panic!("state value is not a {}", std::any::type_name::<V>()));
        self.insert(slot, key, *value);
    }

    fn remove(&mut self, slot: usize, key: &[u8], ns: &[u8]) -> Option<StateValue> {
        empty_namespace(ns);
        self.delete(slot, key).map(|v| Box::new(v) as StateValue)
    }

    fn keys(&self, ns: &[u8]) -> Vec<(usize, Vec<u8>)> {
        if !ns.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (slot, group) in self.groups.iter().enumerate() {
            out.extend(group.keys().map(|k| (slot, k.to_vec())));
        }
        out
    }

    fn retain(
        &mut self,
        slot: usize,
        keep: &mut dyn FnMut(&mut (dyn Any + Send)) -> bool,
    ) -> usize {
        let before = self.groups[slot].len();
        self.groups[slot].retain(|_, v| keep(v));
        before - self.groups[slot].len()
    }

    fn len(&self) -> usize {
        self.groups.iter().map(|g| g.len()).sum()
    }

    fn visit(&self, slot: usize, f: &mut EntryVisitor<'_>) -> crate::error::Result<()> {
        for (key, v) in &self.groups[slot] {
            f(key, &[], v)?;
        }
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two tables answer every call alike for per-key values.
    #[test]
    fn inline_and_namespaced_tables_hold_the_same_entries() {
        let mut tables: Vec<Box<dyn HeapTable>> = vec![
            Box::new(Namespaced::new(2)),
            Box::new(Inline::<u64>::new(2)),
        ];
        for t in &mut tables {
            t.put(0, b"a", &[], Box::new(1u64));
            t.put(1, b"b", &[], Box::new(2u64));
            t.put(1, b"c", &[], Box::new(3u64));
            *t.get_mut(1, b"b", &[])
                .unwrap()
                .downcast_mut::<u64>()
                .unwrap() += 10;
            assert!(t.get_mut(0, b"b", &[]).is_none(), "keys are per slot");
            assert_eq!(t.len(), 3);
            let removed = t.remove(1, b"c", &[]).unwrap();
            assert_eq!(*removed.downcast::<u64>().unwrap(), 3);
            assert!(t.remove(1, b"c", &[]).is_none());
            let mut keys = t.keys(&[]);
            keys.sort();
            assert_eq!(keys, vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
            let mut seen = Vec::new();
            t.visit(1, &mut |k, ns, v| {
                seen.push((k.to_vec(), ns.to_vec(), *v.downcast_ref::<u64>().unwrap()));
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, vec![(b"b".to_vec(), Vec::new(), 12)]);
            let gone = t.retain(1, &mut |v| *v.downcast_ref::<u64>().unwrap() < 10);
            assert_eq!((gone, t.len()), (1, 1));
        }
        let inline = tables[1]
            .as_any_mut()
            .downcast_mut::<Inline<u64>>()
            .unwrap();
        assert_eq!(inline.value_mut(0, b"a"), Some(&mut 1));
    }

    #[test]
    #[should_panic(expected = "namespace")]
    fn an_inline_table_has_no_namespaces() {
        Inline::<u64>::new(1).put(0, b"a", b"window", Box::new(1u64));
    }
}
