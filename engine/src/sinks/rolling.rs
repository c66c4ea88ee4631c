//! When the exactly-once file sink closes a part file and starts the next (Flink's rolling
//! policies).
//!
//! Every part rolls at every checkpoint, whatever the format: Fjord keeps the in-progress
//! part in memory (not in a recoverable stream, as Flink's row formats do), so what a
//! checkpoint covers must be in a pending part by then. For bulk formats this is exactly
//! Flink's `OnCheckpointRollingPolicy`, the only policy Flink allows for them. On top of it a
//! [`RollingPolicy`] may roll earlier, like Flink's `DefaultRollingPolicy`, by part size, by
//! the part's age, or by inactivity; for row and bulk formats alike.
//!
//! Time is processing time, checked when a record arrives (a part that was inactive for
//! longer than the inactivity interval, or is older than the rollover interval, rolls before
//! the next record goes into a new part) and, as Flink's sinks do, on a processing-time timer
//! every bucket check interval (`with_bucket_check_interval`, default one minute): a part
//! that receives no more records rolls then, and is committed with the next checkpoint.

use std::time::{Duration, Instant};

/// When to roll a part file besides at every checkpoint. All limits are optional; with none
/// set ([`RollingPolicy::on_checkpoint`]) parts roll at checkpoints (and the end of input)
/// only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingPolicy {
    /// Roll once the part reaches this many bytes (its format's size estimate).
    pub part_size: Option<u64>,
    /// Roll a part once it has been open this long (Flink's `rolloverInterval`).
    pub rollover_interval: Option<Duration>,
    /// Roll a part that received no record for this long (Flink's `inactivityInterval`).
    pub inactivity_interval: Option<Duration>,
}

/// 128 MiB, Flink's default part size.
pub const DEFAULT_PART_SIZE: u64 = 128 << 20;

impl RollingPolicy {
    /// Roll at checkpoints only (Flink's `OnCheckpointRollingPolicy`). A part then holds
    /// everything written between two checkpoints, in memory until the checkpoint.
    pub fn on_checkpoint() -> Self {
        RollingPolicy {
            part_size: None,
            rollover_interval: None,
            inactivity_interval: None,
        }
    }

    /// Flink's `DefaultRollingPolicy` defaults on top of rolling at checkpoints: 128 MiB,
    /// 60 s since the part opened, 60 s without a record.
    pub fn flink_default() -> Self {
        RollingPolicy {
            part_size: Some(DEFAULT_PART_SIZE),
            rollover_interval: Some(Duration::from_secs(60)),
            inactivity_interval: Some(Duration::from_secs(60)),
        }
    }

    /// Sets the part size in bytes (at least 1).
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes.max(1));
        self
    }

    /// Sets the rollover interval.
    pub fn with_rollover_interval(mut self, interval: Duration) -> Self {
        self.rollover_interval = Some(interval);
        self
    }

    /// Sets the inactivity interval.
    pub fn with_inactivity_interval(mut self, interval: Duration) -> Self {
        self.inactivity_interval = Some(interval);
        self
    }

    /// Whether an open part must roll `now` by time (before a record that arrives now, or
    /// when the bucket check timer fires): it was opened at `opened` and last written at
    /// `last_write`.
    pub fn should_roll_on_event(&self, opened: Instant, last_write: Instant, now: Instant) -> bool {
        let over = |limit: Option<Duration>, since: Instant| {
            limit.is_some_and(|l| now.saturating_duration_since(since) >= l)
        };
        over(self.rollover_interval, opened) || over(self.inactivity_interval, last_write)
    }

    /// Whether a part of `size` bytes must roll now.
    pub fn should_roll_on_size(&self, size: u64) -> bool {
        self.part_size.is_some_and(|limit| size >= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_checkpoint_never_rolls_between_checkpoints() {
        let p = RollingPolicy::on_checkpoint();
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(3600);
        assert!(!p.should_roll_on_event(t0, t0, later));
        assert!(!p.should_roll_on_size(u64::MAX));
    }

    #[test]
    fn limits_roll_at_their_bounds() {
        let p = RollingPolicy::on_checkpoint()
            .with_part_size(100)
            .with_rollover_interval(Duration::from_secs(10))
            .with_inactivity_interval(Duration::from_secs(3));
        let t0 = Instant::now();
        assert!(!p.should_roll_on_size(99));
        assert!(p.should_roll_on_size(100));
        // Written 2 s ago, opened 9 s ago: neither limit reached.
        let now = t0 + Duration::from_secs(9);
        assert!(!p.should_roll_on_event(t0, now - Duration::from_secs(2), now));
        // Inactive for 3 s.
        assert!(p.should_roll_on_event(t0, now - Duration::from_secs(3), now));
        // Open for 10 s though written just now.
        let now = t0 + Duration::from_secs(10);
        assert!(p.should_roll_on_event(t0, now, now));
    }
}
