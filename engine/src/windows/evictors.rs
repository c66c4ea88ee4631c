//! Evictors: remove elements from a window before and/or after its function runs (Flink's
//! `Evictor`s). A window with an evictor keeps all its elements.

#![allow(clippy::type_complexity)] // closures and nested maps read clearer inline here

use crate::types::{StreamRecord, Timestamp};
use crate::windows::window::Window;
use std::sync::Arc;
use std::time::Duration;

/// Removes elements from a firing window's contents.
pub trait Evictor<T, W: Window>: Send + 'static {
    /// Before the window function runs.
    fn evict_before(&mut self, elements: &mut Vec<StreamRecord<T>>, window: &W);
    /// After the window function ran.
    fn evict_after(&mut self, elements: &mut Vec<StreamRecord<T>>, window: &W);
}

/// Keeps at most `max_count` elements, dropping the oldest (Flink's `CountEvictor`).
#[derive(Debug, Clone, Copy)]
pub struct CountEvictor {
    max_count: usize,
    after: bool,
}

impl CountEvictor {
    /// Evicts before the function.
    pub fn of(max_count: usize) -> Self {
        CountEvictor {
            max_count,
            after: false,
        }
    }
    /// Evicts after the function if `do_evict_after`.
    pub fn of_after(max_count: usize, do_evict_after: bool) -> Self {
        CountEvictor {
            max_count,
            after: do_evict_after,
        }
    }
    fn evict<T>(&self, elements: &mut Vec<StreamRecord<T>>) {
        if elements.len() > self.max_count {
            elements.drain(..elements.len() - self.max_count);
        }
    }
}

impl<T: 'static, W: Window> Evictor<T, W> for CountEvictor {
    fn evict_before(&mut self, elements: &mut Vec<StreamRecord<T>>, _: &W) {
        if !self.after {
            self.evict(elements);
        }
    }
    fn evict_after(&mut self, elements: &mut Vec<StreamRecord<T>>, _: &W) {
        if self.after {
            self.evict(elements);
        }
    }
}

/// Keeps elements whose timestamp is within `window_size` of the newest element's timestamp:
/// removes those with `timestamp <= max_timestamp - window_size` (Flink's `TimeEvictor`).
/// Elements without timestamps are never evicted.
#[derive(Debug, Clone, Copy)]
pub struct TimeEvictor {
    size: i64,
    after: bool,
}

impl TimeEvictor {
    /// Evicts before the function.
    pub fn of(window_size: Duration) -> Self {
        TimeEvictor {
            size: window_size.as_millis() as i64,
            after: false,
        }
    }
    /// Evicts after the function if `do_evict_after`.
    pub fn of_after(window_size: Duration, do_evict_after: bool) -> Self {
        TimeEvictor {
            size: window_size.as_millis() as i64,
            after: do_evict_after,
        }
    }
    fn evict<T>(&self, elements: &mut Vec<StreamRecord<T>>) {
        if elements.iter().any(|e| e.timestamp.is_none()) {
            return;
        }
        let Some(max) = elements.iter().filter_map(|e| e.timestamp).max() else {
            return;
        };
        let cutoff: Timestamp = max - self.size;
        elements.retain(|e| e.timestamp.is_some_and(|t| t > cutoff));
    }
}

impl<T: 'static, W: Window> Evictor<T, W> for TimeEvictor {
    fn evict_before(&mut self, elements: &mut Vec<StreamRecord<T>>, _: &W) {
        if !self.after {
            self.evict(elements);
        }
    }
    fn evict_after(&mut self, elements: &mut Vec<StreamRecord<T>>, _: &W) {
        if self.after {
            self.evict(elements);
        }
    }
}

/// Removes elements whose delta to the last element is at least `threshold` (Flink's
/// `DeltaEvictor`).
pub struct DeltaEvictor<T> {
    threshold: f64,
    delta: Arc<dyn Fn(&T, &T) -> f64 + Send + Sync>,
    after: bool,
}

impl<T> Clone for DeltaEvictor<T> {
    fn clone(&self) -> Self {
        DeltaEvictor {
            threshold: self.threshold,
            delta: self.delta.clone(),
            after: self.after,
        }
    }
}

impl<T> DeltaEvictor<T> {
    /// Evicts before the function.
    pub fn of(threshold: f64, delta: impl Fn(&T, &T) -> f64 + Send + Sync + 'static) -> Self {
        DeltaEvictor {
            threshold,
            delta: Arc::new(delta),
            after: false,
        }
    }
    /// Evicts after the function if `do_evict_after`.
    pub fn of_after(
        threshold: f64,
        delta: impl Fn(&T, &T) -> f64 + Send + Sync + 'static,
        do_evict_after: bool,
    ) -> Self {
        DeltaEvictor {
            threshold,
            delta: Arc::new(delta),
            after: do_evict_after,
        }
    }
    fn evict(&self, elements: &mut Vec<StreamRecord<T>>)
    where
        T: Clone,
    {
        let Some(last) = elements.last().map(|e| e.value.clone()) else {
            return;
        };
        elements.retain(|e| (self.delta)(&e.value, &last) < self.threshold);
    }
}

impl<T: Clone + Send + 'static, W: Window> Evictor<T, W> for DeltaEvictor<T> {
    fn evict_before(&mut self, elements: &mut Vec<StreamRecord<T>>, _: &W) {
        if !self.after {
            self.evict(elements);
        }
    }
    fn evict_after(&mut self, elements: &mut Vec<StreamRecord<T>>, _: &W) {
        if self.after {
            self.evict(elements);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::window::GlobalWindow;

    fn recs(v: &[(i64, i64)]) -> Vec<StreamRecord<i64>> {
        v.iter()
            .map(|(x, t)| StreamRecord::with_timestamp(*x, *t))
            .collect()
    }

    fn values(v: &[StreamRecord<i64>]) -> Vec<i64> {
        v.iter().map(|r| r.value).collect()
    }

    #[test]
    fn evictors_keep_what_flink_keeps() {
        let base = recs(&[(1, 10), (2, 20), (3, 25), (4, 30)]);
        let mut e = base.clone();
        Evictor::<i64, GlobalWindow>::evict_before(&mut CountEvictor::of(2), &mut e, &GlobalWindow);
        assert_eq!(values(&e), vec![3, 4]);
        let mut e = base.clone();
        Evictor::<i64, GlobalWindow>::evict_before(
            &mut CountEvictor::of_after(2, true),
            &mut e,
            &GlobalWindow,
        );
        assert_eq!(values(&e), vec![1, 2, 3, 4], "evicts only after");
        let mut e = base.clone();
        Evictor::<i64, GlobalWindow>::evict_before(
            &mut TimeEvictor::of(Duration::from_millis(10)),
            &mut e,
            &GlobalWindow,
        );
        assert_eq!(values(&e), vec![3, 4], "cutoff 30 - 10 = 20 is exclusive");
        let mut e = base;
        let mut d = DeltaEvictor::of(2.5, |a: &i64, b: &i64| (*b - *a) as f64);
        Evictor::<i64, GlobalWindow>::evict_before(&mut d, &mut e, &GlobalWindow);
        assert_eq!(values(&e), vec![2, 3, 4]);
    }
}
