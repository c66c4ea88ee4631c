//! Checkpoint settings and restart strategies.

use crate::storage::StorageOptions;
use std::sync::Arc;
use std::time::Duration;

/// Asked by the checkpoint coordinator right before a checkpoint or savepoint completes (before
/// its `_metadata` is written, so before any sink commits it): `Ok(epoch)` lets it complete and
/// records `epoch` in its metadata as `leader_epoch`; `Err(reason)` aborts it with `reason`.
///
/// A highly available JobManager passes one that answers whether it still holds leadership
/// (see `docs/high-availability.md`), so a JobManager that lost its lease never completes a
/// checkpoint a newer leader could also complete.
#[derive(Clone)]
pub struct CheckpointFence(Arc<dyn Fn() -> Result<u64, String> + Send + Sync>);

impl CheckpointFence {
    /// A fence that asks `check`.
    pub fn new(check: impl Fn() -> Result<u64, String> + Send + Sync + 'static) -> Self {
        CheckpointFence(Arc::new(check))
    }

    /// Asks the fence.
    ///
    /// # Errors
    /// Why the checkpoint must not complete.
    pub fn check(&self) -> Result<u64, String> {
        (self.0)()
    }
}

impl std::fmt::Debug for CheckpointFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointFence")
    }
}

/// Whether checkpoints align barriers (exactly-once) or not (at-least-once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointingMode {
    /// Aligned barriers: state reflects every record before the barrier and none after it.
    #[default]
    ExactlyOnce,
    /// Barriers pass without alignment: after a restore some records may be counted twice,
    /// but no channel is ever held back.
    AtLeastOnce,
}

/// Checkpoint settings (Flink's `CheckpointConfig`, with Flink's defaults).
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Time between checkpoints; `None` disables checkpointing.
    pub interval: Option<Duration>,
    /// Exactly-once (default) or at-least-once.
    pub mode: CheckpointingMode,
    /// A checkpoint not complete after this long is aborted (default 10 minutes).
    pub timeout: Duration,
    /// The least time between the end of one checkpoint and the start of the next (default 0).
    pub min_pause: Duration,
    /// Checkpoints that may be in progress at once (default 1).
    pub max_concurrent: usize,
    /// Failed checkpoints in a row the job tolerates before it fails (default 0).
    pub tolerable_failures: u32,
    /// Completed checkpoints kept in storage (default 1).
    pub retained: usize,
    /// Where checkpoints go: `file:///...`, `s3://bucket/prefix` or `memory://name`. Default:
    /// `memory://fjord-checkpoints`, which survives task failures but not the process.
    pub storage: String,
    /// S3 settings for the storage URL.
    pub storage_options: StorageOptions,
    /// Keep the retained checkpoints when the job is cancelled (default: delete them).
    pub retain_on_cancellation: bool,
    /// Asked before every checkpoint completes (default: none, every checkpoint may complete).
    pub fence: Option<CheckpointFence>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            interval: None,
            mode: CheckpointingMode::ExactlyOnce,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
            max_concurrent: 1,
            tolerable_failures: 0,
            retained: 1,
            storage: "memory://fjord-checkpoints".to_string(),
            storage_options: StorageOptions::default(),
            retain_on_cancellation: false,
            fence: None,
        }
    }
}

/// What to do when a task fails (Flink's restart strategies).
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// Fail the job at the first task failure.
    None,
    /// Restart up to `attempts` times, waiting `delay` before each restart.
    FixedDelay {
        /// Restarts allowed.
        attempts: u32,
        /// Wait before each restart.
        delay: Duration,
    },
    /// Wait `initial`, then `multiplier` times longer after each failure up to `max`; the
    /// backoff resets after running `reset_threshold` without failure. `jitter` (0..1) spreads
    /// the delays.
    ExponentialDelay {
        /// First delay.
        initial: Duration,
        /// Largest delay.
        max: Duration,
        /// Growth per failure.
        multiplier: f64,
        /// Running this long without failure resets the delay.
        reset_threshold: Duration,
        /// Relative random spread of each delay.
        jitter: f64,
    },
    /// Restart while fewer than `max_failures` happened within `interval`.
    FailureRate {
        /// Failures allowed within the interval.
        max_failures: u32,
        /// The measuring window.
        interval: Duration,
        /// Wait before each restart.
        delay: Duration,
    },
}

impl RestartStrategy {
    /// Flink's default with checkpointing enabled: exponential delay from 1 s to 1 min,
    /// multiplier 1.5, reset after 1 h, jitter 10 %.
    pub fn flink_default() -> Self {
        RestartStrategy::ExponentialDelay {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 1.5,
            reset_threshold: Duration::from_secs(3600),
            jitter: 0.1,
        }
    }
}

/// Decides restarts from the history of failures.
#[derive(Debug)]
pub(crate) struct RestartTracker {
    strategy: RestartStrategy,
    failures: Vec<std::time::Instant>,
    current_delay: Option<Duration>,
    last_failure: Option<std::time::Instant>,
}

impl RestartTracker {
    pub(crate) fn new(strategy: RestartStrategy) -> Self {
        RestartTracker {
            strategy,
            failures: Vec::new(),
            current_delay: None,
            last_failure: None,
        }
    }

    /// Records a failure at `now` and says how long to wait before restarting, or `None` to
    /// give up.
    pub(crate) fn on_failure(&mut self, now: std::time::Instant) -> Option<Duration> {
        self.failures.push(now);
        let since_last = self.last_failure.map(|t| now.duration_since(t));
        self.last_failure = Some(now);
        match &self.strategy {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (self.failures.len() as u32 <= *attempts).then_some(*delay)
            }
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                let recent = self
                    .failures
                    .iter()
                    .filter(|t| now.duration_since(**t) <= *interval)
                    .count();
                (recent as u32 <= *max_failures).then_some(*delay)
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                reset_threshold,
                jitter,
            } => {
                let next = match (self.current_delay, since_last) {
                    (Some(_), Some(gap)) if gap >= *reset_threshold => *initial,
                    (Some(d), _) => d.mul_f64(*multiplier).min(*max),
                    (None, _) => *initial,
                };
                self.current_delay = Some(next);
                let spread = 1.0 + jitter * (rand::random::<f64>() * 2.0 - 1.0);
                Some(next.mul_f64(spread.max(0.0)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn fixed_delay_allows_n_restarts() {
        let mut t = RestartTracker::new(RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(5),
        });
        let now = Instant::now();
        assert_eq!(t.on_failure(now), Some(Duration::from_millis(5)));
        assert_eq!(t.on_failure(now), Some(Duration::from_millis(5)));
        assert_eq!(t.on_failure(now), None);
    }

    #[test]
    fn none_never_restarts() {
        assert_eq!(
            RestartTracker::new(RestartStrategy::None).on_failure(Instant::now()),
            None
        );
    }

    #[test]
    fn failure_rate_counts_only_recent_failures() {
        let mut t = RestartTracker::new(RestartStrategy::FailureRate {
            max_failures: 1,
            interval: Duration::from_secs(10),
            delay: Duration::ZERO,
        });
        let start = Instant::now();
        assert!(t.on_failure(start).is_some());
        assert!(
            t.on_failure(start + Duration::from_secs(1)).is_none(),
            "two within 10 s"
        );
        let mut t = RestartTracker::new(RestartStrategy::FailureRate {
            max_failures: 1,
            interval: Duration::from_secs(10),
            delay: Duration::ZERO,
        });
        assert!(t.on_failure(start).is_some());
        assert!(
            t.on_failure(start + Duration::from_secs(11)).is_some(),
            "the first is outside the window"
        );
    }

    #[test]
    fn exponential_delay_grows_caps_and_resets() {
        let mut t = RestartTracker::new(RestartStrategy::ExponentialDelay {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
            multiplier: 2.0,
            reset_threshold: Duration::from_secs(100),
            jitter: 0.0,
        });
        let s = Instant::now();
        assert_eq!(t.on_failure(s), Some(Duration::from_secs(1)));
        assert_eq!(
            t.on_failure(s + Duration::from_secs(1)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            t.on_failure(s + Duration::from_secs(2)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            t.on_failure(s + Duration::from_secs(3)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            t.on_failure(s + Duration::from_secs(200)),
            Some(Duration::from_secs(1)),
            "reset"
        );
    }
}
