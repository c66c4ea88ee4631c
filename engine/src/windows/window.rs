//! Window types: time windows `[start, end)` and the single global window.

use crate::types::{Data, MAX_WATERMARK, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// A window: a finite (or, for [`GlobalWindow`], endless) bucket of elements.
pub trait Window: Data + Hash + Eq + Debug + Sync {
    /// The largest timestamp that still belongs to the window; results of the window carry it
    /// as their timestamp.
    fn max_timestamp(&self) -> Timestamp;

    /// Whether two windows overlap or touch, so that merging assigners merge them.
    fn intersects(&self, _other: &Self) -> bool {
        false
    }

    /// The smallest window covering both.
    fn cover(&self, _other: &Self) -> Self {
        self.clone()
    }
}

/// A window of time `[start, end)` in milliseconds (Flink's `TimeWindow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First millisecond of the window (inclusive).
    pub start: Timestamp,
    /// End of the window (exclusive).
    pub end: Timestamp,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        TimeWindow { start, end }
    }

    /// The start of the window of length `size` containing `timestamp`, for windows aligned to
    /// `offset` (Flink's `TimeWindow.getWindowStartWithOffset`).
    pub fn window_start_with_offset(
        timestamp: Timestamp,
        offset: Timestamp,
        size: Timestamp,
    ) -> Timestamp {
        let remainder = (timestamp - offset) % size;
        if remainder < 0 {
            timestamp - (remainder + size)
        } else {
            timestamp - remainder
        }
    }
}

impl Window for TimeWindow {
    #[inline]
    fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    /// Flink's rule: windows that overlap or are adjacent (`end == start`) intersect.
    fn intersects(&self, other: &Self) -> bool {
        self.start <= other.end && self.end >= other.start
    }

    fn cover(&self, other: &Self) -> Self {
        TimeWindow {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// The one window of [`GlobalWindows`](crate::windows::GlobalWindows): it never ends, so it
/// needs a trigger that fires (count windows use a count trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GlobalWindow;

impl Window for GlobalWindow {
    fn max_timestamp(&self) -> Timestamp {
        MAX_WATERMARK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_handles_offsets_and_negative_timestamps() {
        assert_eq!(TimeWindow::window_start_with_offset(12, 0, 5), 10);
        assert_eq!(TimeWindow::window_start_with_offset(12, 3, 5), 8);
        assert_eq!(TimeWindow::window_start_with_offset(-1, 0, 5), -5);
        assert_eq!(TimeWindow::window_start_with_offset(-5, 0, 5), -5);
    }

    #[test]
    fn adjacent_windows_intersect() {
        let a = TimeWindow::new(0, 10);
        assert!(a.intersects(&TimeWindow::new(10, 20)));
        assert!(!a.intersects(&TimeWindow::new(11, 20)));
        assert_eq!(a.cover(&TimeWindow::new(5, 30)), TimeWindow::new(0, 30));
    }
}
