//! Per-split watermarks for sources whose readers hold several splits (Kafka partitions,
//! Kinesis shards): Flink's split-local watermark generation in `SourceReaderBase` with its
//! `WatermarkOutputMultiplexer`. Every split runs its own generator of the job's
//! [`WatermarkStrategy`]; the reader's watermark is the minimum over its splits that are not
//! idle, and the reader is idle when all its splits are (or it has none).

use crate::time::{WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use crate::types::{MIN_WATERMARK, Timestamp};
use std::collections::BTreeMap;

/// What the reader has to tell downstream: first the status change, then (after the record
/// that caused it, if any) the watermark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkUpdate {
    /// `Some(true)`: the reader became idle; `Some(false)`: active again.
    pub status: Option<bool>,
    /// A new, higher reader watermark.
    pub watermark: Option<Timestamp>,
}

struct SplitOutput<T> {
    generator: Box<dyn WatermarkGenerator<T>>,
    watermark: Timestamp,
    idle: bool,
    events: u64,
    seen_events: u64,
    last_active: Timestamp,
}

impl<T> SplitOutput<T> {
    fn apply(&mut self, out: WatermarkOutput) {
        if let Some(w) = out.watermark() {
            self.watermark = self.watermark.max(w);
            self.idle = false;
        } else if let Some(idle) = out.idleness() {
            self.idle = idle;
        }
    }
}

/// The watermark generators of a reader's splits, keyed by split id `K`.
pub struct SplitWatermarks<K, T> {
    strategy: WatermarkStrategy<T>,
    interval: Timestamp,
    idleness: Option<Timestamp>,
    splits: BTreeMap<K, SplitOutput<T>>,
    /// The last reader watermark emitted.
    emitted: Timestamp,
    /// Whether downstream was told the reader is idle.
    idle: bool,
    next_periodic: Timestamp,
}

impl<K: Ord, T: 'static> SplitWatermarks<K, T> {
    /// Generators of `strategy`, asked for periodic watermarks every `interval` ms (0: never,
    /// which also disables idleness, as in Flink).
    pub fn new(strategy: WatermarkStrategy<T>, interval_ms: i64) -> Self {
        let idleness = strategy.idleness().map(|d| d.as_millis() as Timestamp);
        SplitWatermarks {
            strategy,
            interval: interval_ms,
            idleness,
            splits: BTreeMap::new(),
            emitted: MIN_WATERMARK,
            idle: false,
            next_periodic: MIN_WATERMARK,
        }
    }

    /// A split to generate watermarks for, from processing time `now`.
    pub fn add_split(&mut self, split: K, now: Timestamp) {
        self.splits.entry(split).or_insert_with(|| SplitOutput {
            generator: self.strategy.create_generator(),
            watermark: MIN_WATERMARK,
            idle: false,
            events: 0,
            seen_events: 0,
            last_active: now,
        });
    }

    /// A split that finished: it no longer holds back the reader's watermark.
    pub fn remove_split(&mut self, split: &K) -> WatermarkUpdate {
        self.splits.remove(split);
        self.combine()
    }

    /// The event timestamp of a record: the strategy's assigner, else `record_timestamp` (the
    /// system's own, such as a Kafka record's timestamp or a Kinesis arrival time).
    pub fn timestamp(&self, event: &T, record_timestamp: Timestamp) -> Timestamp {
        self.strategy
            .extract_timestamp(event, Some(record_timestamp))
    }

    /// A record of `split` with event time `timestamp`: the split becomes active, its
    /// generator sees the event (punctuated generators may emit).
    pub fn on_event(&mut self, split: &K, event: &T, timestamp: Timestamp) -> WatermarkUpdate {
        let Some(split) = self.splits.get_mut(split) else {
            return WatermarkUpdate::default();
        };
        split.events += 1;
        split.idle = false;
        let mut out = WatermarkOutput::default();
        split.generator.on_event(event, timestamp, &mut out);
        split.apply(out);
        self.combine()
    }

    /// Periodic emission, when due at processing time `now`: every split's generator is asked
    /// for a watermark, and splits without events for the idleness timeout become idle.
    pub fn on_periodic(&mut self, now: Timestamp) -> WatermarkUpdate {
        if self.interval <= 0 || now < self.next_periodic {
            return WatermarkUpdate::default();
        }
        self.next_periodic = now + self.interval;
        for split in self.splits.values_mut() {
            let mut out = WatermarkOutput::default();
            split.generator.on_periodic_emit(&mut out);
            split.apply(out);
            if let Some(timeout) = self.idleness {
                if split.events != split.seen_events {
                    split.seen_events = split.events;
                    split.last_active = now;
                } else if now - split.last_active >= timeout {
                    split.idle = true;
                }
            }
        }
        self.combine()
    }

    /// The reader's watermark and status from its splits'.
    fn combine(&mut self) -> WatermarkUpdate {
        let mut update = WatermarkUpdate::default();
        let min = self
            .splits
            .values()
            .filter(|s| !s.idle)
            .map(|s| s.watermark)
            .min();
        match min {
            None => {
                if !self.idle {
                    self.idle = true;
                    update.status = Some(true);
                }
            }
            Some(min) => {
                if self.idle {
                    self.idle = false;
                    update.status = Some(false);
                }
                if min > self.emitted {
                    self.emitted = min;
                    update.watermark = Some(min);
                }
            }
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tp(p: i32) -> i32 {
        p
    }

    fn strategy() -> WatermarkStrategy<i64> {
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(10))
            .with_idleness(Duration::from_millis(1000))
    }

    #[test]
    fn reader_watermark_is_the_minimum_over_splits() {
        let mut w = SplitWatermarks::new(strategy(), 100);
        w.add_split(tp(0), 0);
        w.add_split(tp(1), 0);
        w.on_event(&tp(0), &0, 500);
        w.on_event(&tp(1), &0, 300);
        w.on_event(&tp(0), &0, 700);
        // Periodic: split 0 at 689, split 1 at 289; the reader at 289.
        assert_eq!(
            w.on_periodic(100),
            WatermarkUpdate {
                status: None,
                watermark: Some(289)
            }
        );
        w.on_event(&tp(1), &0, 900);
        assert_eq!(w.on_periodic(150).watermark, None, "not due yet");
        assert_eq!(w.on_periodic(200).watermark, Some(689));
        // Never goes back.
        w.on_event(&tp(0), &0, 100);
        assert_eq!(w.on_periodic(300).watermark, None);
    }

    #[test]
    fn an_idle_split_does_not_hold_back_the_others() {
        let mut w = SplitWatermarks::new(strategy(), 100);
        w.add_split(tp(0), 0);
        w.add_split(tp(1), 0); // never gets a record
        for (now, ts) in [(100, 1000), (200, 2000), (300, 3000)] {
            w.on_event(&tp(0), &0, ts);
            assert_eq!(
                w.on_periodic(now).watermark,
                None,
                "the empty split holds it back"
            );
        }
        // Split 1 idle after 1000 ms without events; split 0 is active (events each period).
        w.on_event(&tp(0), &0, 4000);
        assert_eq!(w.on_periodic(1000).watermark, Some(3989));
        // All idle: the reader is idle.
        assert_eq!(
            w.on_periodic(1100).status,
            None,
            "split 0 saw an event at 1000"
        );
        assert_eq!(
            w.on_periodic(2100),
            WatermarkUpdate {
                status: Some(true),
                watermark: None
            }
        );
        // A record makes its split and the reader active again.
        assert_eq!(
            w.on_event(&tp(1), &0, 5000),
            WatermarkUpdate {
                status: Some(false),
                watermark: None
            }
        );
    }

    #[test]
    fn no_splits_is_idle_and_finished_splits_stop_holding_back() {
        let mut w = SplitWatermarks::<i32, i64>::new(strategy(), 100);
        assert_eq!(w.on_periodic(0).status, Some(true));
        w.add_split(tp(0), 0);
        w.add_split(tp(1), 0);
        w.on_event(&tp(0), &0, 500);
        assert_eq!(w.on_periodic(100).watermark, None);
        assert_eq!(w.remove_split(&tp(1)).watermark, Some(489));
    }

    #[test]
    fn punctuated_generators_emit_on_events() {
        let s = WatermarkStrategy::<i64>::for_punctuated(|v: &i64, _| (*v < 0).then_some(-*v));
        let mut w = SplitWatermarks::new(s, 0);
        w.add_split(tp(0), 0);
        assert_eq!(w.on_event(&tp(0), &5, 10).watermark, None);
        assert_eq!(w.on_event(&tp(0), &-42, 11).watermark, Some(42));
        assert_eq!(
            w.on_periodic(1_000_000),
            WatermarkUpdate::default(),
            "no periodic"
        );
    }

    #[test]
    fn timestamps_come_from_the_record_unless_assigned() {
        let w = SplitWatermarks::<i32, i64>::new(strategy(), 100);
        assert_eq!(w.timestamp(&7, 1234), 1234);
        let w = SplitWatermarks::<i32, i64>::new(
            strategy().with_timestamp_assigner(|v: &i64, _| *v),
            100,
        );
        assert_eq!(w.timestamp(&7, 1234), 7);
    }
}
