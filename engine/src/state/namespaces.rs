//! The namespaces of one key in one state of the heap backend, and their values.
//!
//! Most keys have exactly one namespace: per-key state (`ValueState` of a process function,
//! rolling aggregates, window contents and panes kept per key) uses the empty namespace, and
//! only window state has one per window. A hash map per key cost a heap allocation of about
//! 190 bytes for that one entry (hashbrown's smallest table), about half of the heap backend's
//! memory per key; one namespace is kept inline in the key's entry instead, and a map is made
//! only for a key's second namespace.

use crate::state::backend::{FastMap, StateValue};

/// Whether two namespaces are equal, without calling `memcmp` for empty ones.
///
/// Per-key state's namespace is empty, and an empty `Vec<u8>` points at the dangling address
/// 0x1. glibc's AVX-512 `memcmp` compares short slices with masked loads; a masked load from an
/// unmapped address, even with every byte masked off, takes a microcode assist of hundreds of
/// cycles. `&[] == &[]` cost a third of a WordCount's CPU time that way (BENCHMARKS.md, issue 14).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// A key's namespaces and their values (see the module docs).
#[derive(Default)]
pub(crate) enum Namespaces {
    /// None (a key whose last namespace was removed; the backend removes such keys).
    #[default]
    Empty,
    /// Exactly one, inline.
    One(Vec<u8>, StateValue),
    /// Two or more.
    Many(FastMap<Vec<u8>, StateValue>),
}

impl Namespaces {
    /// The value of `namespace`.
    #[inline]
    pub(crate) fn get_mut(&mut self, namespace: &[u8]) -> Option<&mut StateValue> {
        match self {
            Namespaces::Empty => None,
            Namespaces::One(ns, v) => same(ns, namespace).then_some(v),
            Namespaces::Many(map) => map.get_mut(namespace),
        }
    }

    /// Whether `namespace` has a value.
    pub(crate) fn contains_key(&self, namespace: &[u8]) -> bool {
        match self {
            Namespaces::Empty => false,
            Namespaces::One(ns, _) => same(ns, namespace),
            Namespaces::Many(map) => map.contains_key(namespace),
        }
    }

    /// Sets the value of `namespace`, replacing any.
    pub(crate) fn insert(&mut self, namespace: Vec<u8>, value: StateValue) {
        match std::mem::take(self) {
            Namespaces::Empty => *self = Namespaces::One(namespace, value),
            Namespaces::One(ns, _) if same(&ns, &namespace) => *self = Namespaces::One(ns, value),
            Namespaces::One(ns, old) => {
                let mut map = FastMap::default();
                map.insert(ns, old);
                map.insert(namespace, value);
                *self = Namespaces::Many(map);
            }
            Namespaces::Many(mut map) => {
                map.insert(namespace, value);
                *self = Namespaces::Many(map);
            }
        }
    }

    /// Removes the value of `namespace` and returns it.
    pub(crate) fn remove(&mut self, namespace: &[u8]) -> Option<StateValue> {
        match self {
            Namespaces::Empty => None,
            Namespaces::One(ns, _) if !same(ns, namespace) => None,
            Namespaces::One(..) => match std::mem::take(self) {
                Namespaces::One(_, v) => Some(v),
                _ => unreachable!("matched One above"),
            },
            Namespaces::Many(map) => {
                let value = map.remove(namespace);
                self.shrink();
                value
            }
        }
    }

    /// Keeps the values for which `keep` returns true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut StateValue) -> bool) {
        match self {
            Namespaces::Empty => {}
            Namespaces::One(ns, v) => {
                if !keep(ns, v) {
                    *self = Namespaces::Empty;
                }
            }
            Namespaces::Many(map) => {
                map.retain(|ns, v| keep(ns, v));
                self.shrink();
            }
        }
    }

    /// A map down to one entry goes back inline (and an empty one to `Empty`).
    fn shrink(&mut self) {
        let Namespaces::Many(map) = self else {
            return;
        };
        if map.len() > 1 {
            return;
        }
        let last = map.drain().next();
        *self = match last {
            Some((ns, v)) => Namespaces::One(ns, v),
            None => Namespaces::Empty,
        };
    }

    /// Number of namespaces.
    pub(crate) fn len(&self) -> usize {
        match self {
            Namespaces::Empty => 0,
            Namespaces::One(..) => 1,
            Namespaces::Many(map) => map.len(),
        }
    }

    /// True when there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every namespace and its value, in no particular order.
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = (&Vec<u8>, &StateValue)> + '_> {
        match self {
            Namespaces::Empty => Box::new(std::iter::empty()),
            Namespaces::One(ns, v) => Box::new(std::iter::once((ns, v))),
            Namespaces::Many(map) => Box::new(map.iter()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(n: &mut Namespaces, ns: &[u8]) -> Option<u32> {
        n.get_mut(ns).and_then(|v| v.downcast_ref::<u32>()).copied()
    }

    #[test]
    fn one_namespace_stays_inline_and_more_go_into_a_map_and_back() {
        let mut n = Namespaces::default();
        assert!(n.is_empty());
        n.insert(Vec::new(), Box::new(1u32));
        assert!(matches!(n, Namespaces::One(..)));
        n.insert(Vec::new(), Box::new(2u32));
        assert_eq!((n.len(), get(&mut n, b"")), (1, Some(2)));
        n.insert(b"w1".to_vec(), Box::new(3u32));
        n.insert(b"w2".to_vec(), Box::new(4u32));
        assert!(matches!(n, Namespaces::Many(_)));
        assert_eq!(n.len(), 3);
        assert!(n.contains_key(b"w1") && !n.contains_key(b"w3"));
        let mut seen: Vec<Vec<u8>> = n.iter().map(|(ns, _)| ns.clone()).collect();
        seen.sort();
        assert_eq!(seen, vec![b"".to_vec(), b"w1".to_vec(), b"w2".to_vec()]);
        assert!(n.remove(b"w3").is_none());
        assert!(n.remove(b"").is_some());
        n.retain(|ns, _| ns == b"w2");
        assert!(matches!(n, Namespaces::One(..)), "one left: inline again");
        assert_eq!(get(&mut n, b"w2"), Some(4));
        assert!(get(&mut n, b"w1").is_none());
        assert!(n.remove(b"w1").is_none());
        assert!(n.remove(b"w2").is_some());
        assert!(n.is_empty() && n.iter().next().is_none());
        n.insert(b"x".to_vec(), Box::new(5u32));
        n.retain(|_, _| false);
        assert!(n.is_empty());
    }
}
