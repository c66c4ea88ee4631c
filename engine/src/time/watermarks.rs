//! Watermark strategies and generators (Flink's `WatermarkStrategy` API).

use crate::types::{MIN_WATERMARK, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// Where a [`WatermarkGenerator`] emits watermarks and idleness.
#[derive(Debug, Default)]
pub struct WatermarkOutput {
    pub(crate) watermark: Option<Timestamp>,
    pub(crate) idle: Option<bool>,
}

impl WatermarkOutput {
    /// Emits a watermark; watermarks that do not advance are ignored.
    pub fn emit_watermark(&mut self, watermark: Timestamp) {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        self.idle = Some(false);
    }

    /// Marks the stream idle: downstream operators stop waiting for its watermark.
    pub fn mark_idle(&mut self) {
        self.idle = Some(true);
    }

    /// Marks the stream active again.
    pub fn mark_active(&mut self) {
        self.idle = Some(false);
    }

    /// The highest watermark emitted into this output so far, if any (for sources that run
    /// generators themselves, one per split).
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    /// The last idleness change: `Some(true)` idle, `Some(false)` active, `None` no change.
    pub fn idleness(&self) -> Option<bool> {
        self.idle
    }
}

/// Generates watermarks from events and/or periodically (Flink's `WatermarkGenerator`).
pub trait WatermarkGenerator<T>: Send {
    /// Called for every event with its (assigned) timestamp; punctuated generators emit here.
    fn on_event(&mut self, event: &T, timestamp: Timestamp, output: &mut WatermarkOutput);
    /// Called every auto-watermark interval of processing time; periodic generators emit here.
    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput);
}

/// Watermarks that trail the highest timestamp seen by a fixed bound: watermark =
/// `max_timestamp - bound - 1` (Flink's `BoundedOutOfOrdernessWatermarks`), emitted
/// periodically.
#[derive(Debug, Clone)]
pub struct BoundedOutOfOrdernessWatermarks {
    max_timestamp: Timestamp,
    bound: Timestamp,
}

impl BoundedOutOfOrdernessWatermarks {
    /// A generator allowing events to be `bound` late.
    pub fn new(bound: Duration) -> Self {
        let bound = bound.as_millis() as Timestamp;
        BoundedOutOfOrdernessWatermarks {
            max_timestamp: MIN_WATERMARK + bound + 1,
            bound,
        }
    }

    /// The watermark the generator would emit now.
    pub fn current_watermark(&self) -> Timestamp {
        self.max_timestamp - self.bound - 1
    }
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrdernessWatermarks {
    fn on_event(&mut self, _event: &T, timestamp: Timestamp, _output: &mut WatermarkOutput) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput) {
        output.emit_watermark(self.current_watermark());
    }
}

/// A generator that emits a watermark right after an event when a function says so.
pub struct PunctuatedWatermarks<F>(pub F);

impl<T, F: FnMut(&T, Timestamp) -> Option<Timestamp> + Send> WatermarkGenerator<T>
    for PunctuatedWatermarks<F>
{
    fn on_event(&mut self, event: &T, timestamp: Timestamp, output: &mut WatermarkOutput) {
        if let Some(w) = (self.0)(event, timestamp) {
            output.emit_watermark(w);
        }
    }

    fn on_periodic_emit(&mut self, _output: &mut WatermarkOutput) {}
}

type GeneratorSupplier<T> = Arc<dyn Fn() -> Box<dyn WatermarkGenerator<T>> + Send + Sync>;
type TimestampFn<T> = Arc<dyn Fn(&T, Option<Timestamp>) -> Timestamp + Send + Sync>;

/// How to assign timestamps and generate watermarks (Flink's `WatermarkStrategy`).
///
/// ```
/// use fjord::time::WatermarkStrategy;
/// use std::time::Duration;
/// let strategy = WatermarkStrategy::<(String, i64)>::for_bounded_out_of_orderness(Duration::from_secs(5))
///     .with_timestamp_assigner(|event: &(String, i64), _| event.1)
///     .with_idleness(Duration::from_secs(60));
/// # let _ = strategy;
/// ```
pub struct WatermarkStrategy<T> {
    pub(crate) generator: GeneratorSupplier<T>,
    pub(crate) timestamps: Option<TimestampFn<T>>,
    pub(crate) idleness: Option<Duration>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            generator: self.generator.clone(),
            timestamps: self.timestamps.clone(),
            idleness: self.idleness,
        }
    }
}

impl<T: 'static> WatermarkStrategy<T> {
    /// Periodic watermarks `max_timestamp - bound - 1`.
    pub fn for_bounded_out_of_orderness(bound: Duration) -> Self {
        Self::for_generator(move || BoundedOutOfOrdernessWatermarks::new(bound))
    }

    /// Periodic watermarks for timestamps that never decrease: `max_timestamp - 1`.
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_bounded_out_of_orderness(Duration::ZERO)
    }

    /// A watermark right after an event whenever `f(event, timestamp)` returns one.
    pub fn for_punctuated<F>(f: F) -> Self
    where
        F: Fn(&T, Timestamp) -> Option<Timestamp> + Clone + Send + Sync + 'static,
    {
        Self::for_generator(move || PunctuatedWatermarks(f.clone()))
    }

    /// No watermarks at all (event-time windows then fire only at the end of bounded input).
    pub fn no_watermarks() -> Self {
        Self::for_punctuated(|_: &T, _| None)
    }

    /// A custom generator, created once per parallel instance.
    pub fn for_generator<G, F>(supplier: F) -> Self
    where
        G: WatermarkGenerator<T> + 'static,
        F: Fn() -> G + Send + Sync + 'static,
    {
        WatermarkStrategy {
            generator: Arc::new(move || Box::new(supplier())),
            timestamps: None,
            idleness: None,
        }
    }

    /// Extracts the event timestamp from each record: `f(event, previous_timestamp)`. Without
    /// an assigner the timestamp a source attached is kept.
    pub fn with_timestamp_assigner(
        mut self,
        f: impl Fn(&T, Option<Timestamp>) -> Timestamp + Send + Sync + 'static,
    ) -> Self {
        self.timestamps = Some(Arc::new(f));
        self
    }

    /// A new generator of this strategy (for sources that generate watermarks per split,
    /// like Flink's Kafka source: one generator per partition).
    pub fn create_generator(&self) -> Box<dyn WatermarkGenerator<T>> {
        (self.generator)()
    }

    /// The event timestamp of `event`: the timestamp assigner's, else `previous` (the one the
    /// source attached), else the minimum timestamp.
    pub fn extract_timestamp(&self, event: &T, previous: Option<Timestamp>) -> Timestamp {
        match &self.timestamps {
            Some(f) => f(event, previous),
            None => previous.unwrap_or(MIN_WATERMARK),
        }
    }

    /// The idleness timeout set with [`with_idleness`](Self::with_idleness), if any.
    pub fn idleness(&self) -> Option<Duration> {
        self.idleness
    }

    /// Marks the stream idle after `timeout` of processing time without events, so it does not
    /// hold back the watermark of downstream operators; the next event makes it active again.
    /// Idleness is checked at every periodic emission, so it needs a non-zero
    /// auto-watermark interval (as in Flink).
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idleness = Some(timeout);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_out_of_orderness_is_max_minus_bound_minus_one() {
        let mut g = BoundedOutOfOrdernessWatermarks::new(Duration::from_millis(10));
        let mut out = WatermarkOutput::default();
        for ts in [100, 50, 130, 120] {
            WatermarkGenerator::<()>::on_event(&mut g, &(), ts, &mut out);
        }
        assert_eq!(
            out.watermark, None,
            "periodic generators emit only on periodic emit"
        );
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut out);
        assert_eq!(out.watermark, Some(119));
    }

    #[test]
    fn before_any_event_the_watermark_is_min() {
        let g = BoundedOutOfOrdernessWatermarks::new(Duration::from_secs(3));
        assert_eq!(g.current_watermark(), MIN_WATERMARK);
    }
}
