//! Retries of failed bulk requests and rejected items (Flink's `sink.bulk-flush.backoff.*`).

use std::time::Duration;

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffStrategy {
    /// No retries: the first failure goes to the failure handler (Flink's `DISABLED`).
    Disabled,
    /// The same delay before every retry (`CONSTANT`).
    Constant,
    /// The delay doubles with every retry: delay, 2 × delay, 4 × delay ... (`EXPONENTIAL`).
    Exponential,
}

/// The retry policy for connection errors, whole-request errors the cluster may recover from
/// (HTTP 429, 502, 503, 504) and items it rejected for load (HTTP 429, 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The strategy.
    pub strategy: BackoffStrategy,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The (first) delay.
    pub delay: Duration,
}

/// The longest single wait, whatever the strategy computes.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

impl Default for Backoff {
    /// Exponential, 5 retries from 100 ms (100 ms ... 1.6 s, about 3 s in all).
    fn default() -> Self {
        Backoff {
            strategy: BackoffStrategy::Exponential,
            max_retries: 5,
            delay: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// No retries.
    pub fn disabled() -> Backoff {
        Backoff {
            strategy: BackoffStrategy::Disabled,
            max_retries: 0,
            delay: Duration::ZERO,
        }
    }

    /// The wait before retry `retry` (1-based), or `None` when no retry is left.
    pub fn delay_before(&self, retry: u32) -> Option<Duration> {
        if self.strategy == BackoffStrategy::Disabled || retry == 0 || retry > self.max_retries {
            return None;
        }
        Some(self.unbounded_delay(retry))
    }

    /// The wait before retry `retry` ignoring `max_retries` (for the retry-forever handler).
    pub fn unbounded_delay(&self, retry: u32) -> Duration {
        let d = match self.strategy {
            BackoffStrategy::Disabled => Duration::from_millis(100).max(self.delay),
            BackoffStrategy::Constant => self.delay,
            BackoffStrategy::Exponential => self
                .delay
                .saturating_mul(1u32 << retry.saturating_sub(1).min(20)),
        };
        d.min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_strategy_and_stop_after_max_retries() {
        let ms = Duration::from_millis;
        let e = Backoff::default();
        let got: Vec<_> = (1..=6).map(|r| e.delay_before(r)).collect();
        assert_eq!(
            got,
            vec![
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(400)),
                Some(ms(800)),
                Some(ms(1600)),
                None
            ]
        );
        let c = Backoff {
            strategy: BackoffStrategy::Constant,
            max_retries: 2,
            delay: ms(50),
        };
        assert_eq!(c.delay_before(2), Some(ms(50)));
        assert_eq!(c.delay_before(3), None);
        assert_eq!(Backoff::disabled().delay_before(1), None);
        assert_eq!(e.unbounded_delay(40), MAX_DELAY);
    }
}
