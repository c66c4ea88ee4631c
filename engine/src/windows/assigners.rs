//! Window assigners: which windows an element belongs to (Flink's `WindowAssigner`s).

use crate::types::Timestamp;
use crate::windows::triggers::{EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger, Trigger};
use crate::windows::window::{GlobalWindow, TimeWindow, Window};
use std::sync::Arc;
use std::time::Duration;

/// Assigns elements to windows.
pub trait WindowAssigner<T, W: Window>: Send + Sync + 'static {
    /// Pushes the windows of an element into `out`. `timestamp` is the element's event time
    /// for event-time assigners and the current processing time for processing-time ones.
    fn assign_windows(&self, element: &T, timestamp: Timestamp, out: &mut Vec<W>);
    /// The trigger used unless `.trigger(..)` replaces it.
    fn default_trigger(&self) -> Box<dyn Trigger<T, W>>;
    /// True for event-time assigners (lateness and watermarks apply).
    fn is_event_time(&self) -> bool;
    /// True when windows of a key are merged (session windows); the window type's
    /// [`Window::intersects`] and [`Window::cover`] define merging.
    fn is_merging(&self) -> bool {
        false
    }
    /// `Some((size, slide, offset))` for sliding time windows, which can then be computed
    /// from panes.
    fn sliding_geometry(&self) -> Option<(i64, i64, i64)> {
        None
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Fixed-size, non-overlapping event-time windows (Flink's `TumblingEventTimeWindows`).
#[derive(Debug, Clone, Copy)]
pub struct TumblingEventTimeWindows {
    size: i64,
    offset: i64,
}

impl TumblingEventTimeWindows {
    /// Windows of `size`, aligned to the epoch.
    pub fn of(size: Duration) -> Self {
        TumblingEventTimeWindows {
            size: ms(size),
            offset: 0,
        }
    }
    /// Windows of `size` shifted by `offset` (for example to align days to a time zone).
    pub fn of_with_offset(size: Duration, offset: Duration) -> Self {
        TumblingEventTimeWindows {
            size: ms(size),
            offset: ms(offset) % ms(size),
        }
    }
}

impl<T> WindowAssigner<T, TimeWindow> for TumblingEventTimeWindows {
    #[inline]
    fn assign_windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        let start = TimeWindow::window_start_with_offset(timestamp, self.offset, self.size);
        out.push(TimeWindow::new(start, start + self.size));
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(EventTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        true
    }
}

/// Fixed-size, non-overlapping processing-time windows.
#[derive(Debug, Clone, Copy)]
pub struct TumblingProcessingTimeWindows {
    size: i64,
    offset: i64,
}

impl TumblingProcessingTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> Self {
        TumblingProcessingTimeWindows {
            size: ms(size),
            offset: 0,
        }
    }
    /// Windows of `size` shifted by `offset`.
    pub fn of_with_offset(size: Duration, offset: Duration) -> Self {
        TumblingProcessingTimeWindows {
            size: ms(size),
            offset: ms(offset) % ms(size),
        }
    }
}

impl<T> WindowAssigner<T, TimeWindow> for TumblingProcessingTimeWindows {
    fn assign_windows(&self, _: &T, now: Timestamp, out: &mut Vec<TimeWindow>) {
        let start = TimeWindow::window_start_with_offset(now, self.offset, self.size);
        out.push(TimeWindow::new(start, start + self.size));
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(ProcessingTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        false
    }
}

fn sliding(size: i64, slide: i64, offset: i64, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
    let last_start = TimeWindow::window_start_with_offset(timestamp, offset, slide);
    let mut start = last_start;
    while start > timestamp - size {
        out.push(TimeWindow::new(start, start + size));
        start -= slide;
    }
}

/// Overlapping event-time windows of `size` starting every `slide` (Flink's
/// `SlidingEventTimeWindows`). An element belongs to `size / slide` windows.
#[derive(Debug, Clone, Copy)]
pub struct SlidingEventTimeWindows {
    size: i64,
    slide: i64,
    offset: i64,
}

impl SlidingEventTimeWindows {
    /// Windows of `size` every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Self {
        SlidingEventTimeWindows {
            size: ms(size),
            slide: ms(slide),
            offset: 0,
        }
    }
    /// Windows of `size` every `slide`, shifted by `offset`.
    pub fn of_with_offset(size: Duration, slide: Duration, offset: Duration) -> Self {
        SlidingEventTimeWindows {
            size: ms(size),
            slide: ms(slide),
            offset: ms(offset) % ms(slide),
        }
    }
}

impl<T> WindowAssigner<T, TimeWindow> for SlidingEventTimeWindows {
    fn assign_windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        sliding(self.size, self.slide, self.offset, timestamp, out);
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(EventTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        true
    }
    fn sliding_geometry(&self) -> Option<(i64, i64, i64)> {
        Some((self.size, self.slide, self.offset))
    }
}

/// Event-time windows that grow by `step` from a common start up to `max_size` (the windows of
/// Flink SQL's `CUMULATE` table-valued function, its `CumulativeWindowAssigner`): with step 1
/// hour and max size 1 day, an element of 10:30 belongs to [00:00, 11:00), [00:00, 12:00), ...,
/// [00:00, 24:00). Every window of one cycle starts at the cycle's start (aligned to
/// `max_size`), so the first fires after `step` and the last covers the whole cycle.
#[derive(Debug, Clone, Copy)]
pub struct CumulativeEventTimeWindows {
    max_size: i64,
    step: i64,
    offset: i64,
}

impl CumulativeEventTimeWindows {
    /// Windows growing by `step` up to `max_size`, which must be a positive multiple of `step`
    /// (as Flink requires).
    ///
    /// # Panics
    /// When `step` is zero or `max_size` is not a positive multiple of it.
    pub fn of(max_size: Duration, step: Duration) -> Self {
        let (max_size, step) = (ms(max_size), ms(step));
        assert!(
            step > 0 && max_size > 0 && max_size % step == 0,
            "a cumulative window's max size ({max_size} ms) must be a positive multiple of its step ({step} ms)"
        );
        CumulativeEventTimeWindows {
            max_size,
            step,
            offset: 0,
        }
    }
}

impl<T> WindowAssigner<T, TimeWindow> for CumulativeEventTimeWindows {
    fn assign_windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        let start = TimeWindow::window_start_with_offset(timestamp, self.offset, self.max_size);
        let mut end = start + self.step;
        while end <= start + self.max_size {
            if end > timestamp {
                out.push(TimeWindow::new(start, end));
            }
            end += self.step;
        }
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(EventTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        true
    }
}

/// Overlapping processing-time windows.
#[derive(Debug, Clone, Copy)]
pub struct SlidingProcessingTimeWindows {
    size: i64,
    slide: i64,
    offset: i64,
}

impl SlidingProcessingTimeWindows {
    /// Windows of `size` every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Self {
        SlidingProcessingTimeWindows {
            size: ms(size),
            slide: ms(slide),
            offset: 0,
        }
    }
    /// Windows of `size` every `slide`, shifted by `offset`.
    pub fn of_with_offset(size: Duration, slide: Duration, offset: Duration) -> Self {
        SlidingProcessingTimeWindows {
            size: ms(size),
            slide: ms(slide),
            offset: ms(offset) % ms(slide),
        }
    }
}

impl<T> WindowAssigner<T, TimeWindow> for SlidingProcessingTimeWindows {
    fn assign_windows(&self, _: &T, now: Timestamp, out: &mut Vec<TimeWindow>) {
        sliding(self.size, self.slide, self.offset, now, out);
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(ProcessingTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        false
    }
}

type GapFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// Event-time session windows: a session ends after a gap without elements; sessions that
/// come within the gap of each other merge (Flink's `EventTimeSessionWindows`).
#[derive(Clone)]
pub struct EventTimeSessionWindows<T> {
    gap: GapFn<T>,
}

impl<T> EventTimeSessionWindows<T> {
    /// Sessions with a fixed gap.
    pub fn with_gap(gap: Duration) -> Self {
        let gap = ms(gap);
        EventTimeSessionWindows {
            gap: Arc::new(move |_| gap),
        }
    }
    /// Sessions whose gap each element decides (Flink's `withDynamicGap`); the gap must be
    /// positive.
    pub fn with_dynamic_gap(extractor: impl Fn(&T) -> Duration + Send + Sync + 'static) -> Self {
        EventTimeSessionWindows {
            gap: Arc::new(move |e| ms(extractor(e))),
        }
    }
}

impl<T: 'static> WindowAssigner<T, TimeWindow> for EventTimeSessionWindows<T> {
    fn assign_windows(&self, element: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        out.push(TimeWindow::new(
            timestamp,
            timestamp + (self.gap)(element).max(1),
        ));
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(EventTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        true
    }
    fn is_merging(&self) -> bool {
        true
    }
}

/// Processing-time session windows.
#[derive(Clone)]
pub struct ProcessingTimeSessionWindows<T> {
    gap: GapFn<T>,
}

impl<T> ProcessingTimeSessionWindows<T> {
    /// Sessions with a fixed gap.
    pub fn with_gap(gap: Duration) -> Self {
        let gap = ms(gap);
        ProcessingTimeSessionWindows {
            gap: Arc::new(move |_| gap),
        }
    }
    /// Sessions whose gap each element decides.
    pub fn with_dynamic_gap(extractor: impl Fn(&T) -> Duration + Send + Sync + 'static) -> Self {
        ProcessingTimeSessionWindows {
            gap: Arc::new(move |e| ms(extractor(e))),
        }
    }
}

impl<T: 'static> WindowAssigner<T, TimeWindow> for ProcessingTimeSessionWindows<T> {
    fn assign_windows(&self, element: &T, now: Timestamp, out: &mut Vec<TimeWindow>) {
        out.push(TimeWindow::new(now, now + (self.gap)(element).max(1)));
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, TimeWindow>> {
        Box::new(ProcessingTimeTrigger)
    }
    fn is_event_time(&self) -> bool {
        false
    }
    fn is_merging(&self) -> bool {
        true
    }
}

/// All elements of a key in one window that never fires by itself (Flink's `GlobalWindows`):
/// use it with a trigger, as count windows do.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalWindows;

impl GlobalWindows {
    /// The assigner.
    pub fn create() -> Self {
        GlobalWindows
    }
}

impl<T: 'static> WindowAssigner<T, GlobalWindow> for GlobalWindows {
    fn assign_windows(&self, _: &T, _: Timestamp, out: &mut Vec<GlobalWindow>) {
        out.push(GlobalWindow);
    }
    fn default_trigger(&self) -> Box<dyn Trigger<T, GlobalWindow>> {
        Box::new(NeverTrigger)
    }
    fn is_event_time(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign<W: Window>(a: &dyn WindowAssigner<(), W>, ts: i64) -> Vec<W> {
        let mut v = Vec::new();
        a.assign_windows(&(), ts, &mut v);
        v
    }

    #[test]
    fn cumulative_windows_grow_from_the_cycle_start() {
        let c =
            CumulativeEventTimeWindows::of(Duration::from_millis(30), Duration::from_millis(10));
        let w = |s, e| TimeWindow::new(s, e);
        assert_eq!(assign(&c, 0), vec![w(0, 10), w(0, 20), w(0, 30)]);
        assert_eq!(assign(&c, 9), vec![w(0, 10), w(0, 20), w(0, 30)]);
        assert_eq!(assign(&c, 10), vec![w(0, 20), w(0, 30)]);
        assert_eq!(assign(&c, 29), vec![w(0, 30)]);
        assert_eq!(assign(&c, 30), vec![w(30, 40), w(30, 50), w(30, 60)]);
        assert_eq!(assign(&c, -1), vec![w(-30, 0)]);
    }

    #[test]
    #[should_panic(expected = "positive multiple")]
    fn a_cumulative_max_size_must_be_a_multiple_of_the_step() {
        CumulativeEventTimeWindows::of(Duration::from_millis(25), Duration::from_millis(10));
    }

    #[test]
    fn tumbling_and_sliding_with_offsets() {
        let t = TumblingEventTimeWindows::of_with_offset(
            Duration::from_millis(10),
            Duration::from_millis(3),
        );
        assert_eq!(assign(&t, 12), vec![TimeWindow::new(3, 13)]);
        assert_eq!(assign(&t, 13), vec![TimeWindow::new(13, 23)]);
        let s = SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(5));
        assert_eq!(
            assign(&s, 12),
            vec![TimeWindow::new(10, 20), TimeWindow::new(5, 15)]
        );
        let s = SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(3));
        assert_eq!(
            assign(&s, 9),
            vec![
                TimeWindow::new(9, 19),
                TimeWindow::new(6, 16),
                TimeWindow::new(3, 13),
                TimeWindow::new(0, 10)
            ]
        );
    }
}
