//! A binary heap with exactly the behaviour of `java.util.PriorityQueue` (JDK 17): the same
//! array layout after every `offer`, `poll` and bulk removal, and iteration in array order.
//!
//! Flink's NFA keeps partial and completed matches in priority queues ordered by their first
//! event only, and iterates them in array order. Partial matches with the same first event
//! are therefore processed, and matches with the same first event emitted, in an order that
//! depends on the heap's history; with a skip strategy that order decides which of them is
//! emitted. Mirroring the heap makes Fjord choose the same ones.

use serde::{Deserialize, Serialize};

/// A priority queue ordered by `key` (smallest first), laid out like Java's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JavaHeap<E> {
    es: Vec<E>,
}

/// What the heap orders by.
pub(crate) trait HeapKey {
    /// The priority: smaller comes first.
    fn key(&self) -> u64;
}

impl<E: HeapKey> JavaHeap<E> {
    pub(crate) fn new() -> Self {
        JavaHeap { es: Vec::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.es.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.es.is_empty()
    }

    /// The elements in array order (Java's iterator order).
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, E> {
        self.es.iter()
    }

    /// Takes the elements out in array order.
    pub(crate) fn take_all(&mut self) -> Vec<E> {
        std::mem::take(&mut self.es)
    }

    /// `offer`: appends and sifts up.
    pub(crate) fn offer(&mut self, x: E) {
        self.es.push(x);
        let mut k = self.es.len() - 1;
        while k > 0 {
            let parent = (k - 1) >> 1;
            if self.es[k].key() >= self.es[parent].key() {
                break;
            }
            self.es.swap(k, parent);
            k = parent;
        }
    }

    /// `peek`: the head.
    pub(crate) fn peek(&self) -> Option<&E> {
        self.es.first()
    }

    /// `poll`: removes the head; the last element sifts down from the root.
    pub(crate) fn poll(&mut self) -> Option<E> {
        if self.es.is_empty() {
            return None;
        }
        let last = self.es.pop().expect("not empty");
        if self.es.is_empty() {
            return Some(last);
        }
        let head = std::mem::replace(&mut self.es[0], last);
        self.sift_down(0);
        Some(head)
    }

    fn sift_down(&mut self, mut k: usize) {
        let n = self.es.len();
        let half = n >> 1;
        while k < half {
            let mut child = 2 * k + 1;
            let right = child + 1;
            if right < n && self.es[child].key() > self.es[right].key() {
                child = right;
            }
            if self.es[k].key() <= self.es[child].key() {
                break;
            }
            self.es.swap(k, child);
            k = child;
        }
    }

    /// `removeIf` / `removeAll` (Java's `bulkRemove`): keeps the survivors in array order and
    /// re-heapifies, if anything was removed.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        let before = self.es.len();
        self.es.retain(|e| keep(e));
        if self.es.len() != before {
            self.heapify();
        }
    }

    fn heapify(&mut self) {
        let n = self.es.len();
        for i in (0..n >> 1).rev() {
            self.sift_down(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct E(u64, &'static str);

    impl HeapKey for E {
        fn key(&self) -> u64 {
            self.0
        }
    }

    fn names(h: &JavaHeap<E>) -> Vec<&'static str> {
        h.iter().map(|e| e.1).collect()
    }

    #[test]
    fn layout_follows_java_priority_queue() {
        // Worked out by hand from java.util.PriorityQueue's siftUp / siftDown.
        let mut h = JavaHeap::new();
        for e in [E(5, "a"), E(3, "b"), E(5, "c"), E(1, "d"), E(3, "e")] {
            h.offer(e);
        }
        assert_eq!(names(&h), ["d", "b", "c", "a", "e"]);
        assert_eq!(h.poll().unwrap().1, "d");
        // last ("e", 3) moves to the root and sifts down below "b" (3 is not > 3): stays.
        assert_eq!(names(&h), ["e", "b", "c", "a"]);
        h.retain(|e| e.1 != "e");
        // survivors b c a, heapified: already a heap.
        assert_eq!(names(&h), ["b", "c", "a"]);
        h.retain(|e| e.1 != "b");
        // c a: equal keys, heapify leaves them.
        assert_eq!(names(&h), ["c", "a"]);
    }
}
