//! Retries after connection errors (Flink's `sink.max-retries`, `lookup.max-retries`).

use std::time::Duration;

/// Exponential retries: `delay`, 2 × `delay`, 4 × `delay` ... up to `max_delay`, at most
/// `max_retries` times after the first attempt. Only errors a retry can cure are retried: no
/// connection (refused, broken, timed out), the server starting up or shutting down, a
/// serialization failure or deadlock; the whole batch (or lookup) is sent again on a new
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt (0: none).
    pub max_retries: u32,
    /// The first delay.
    pub delay: Duration,
    /// The longest single delay.
    pub max_delay: Duration,
}

impl Default for Backoff {
    /// 5 retries from 200 ms, at most 5 s apart (200 ms ... 3.2 s, about 6 s in all: a
    /// server restart is ridden out).
    fn default() -> Self {
        Backoff {
            max_retries: 5,
            delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// `retries` retries with the default delays.
    pub fn retries(retries: u32) -> Backoff {
        Backoff {
            max_retries: retries,
            ..Backoff::default()
        }
    }

    /// The wait before retry `retry` (1-based), or `None` when no retry is left.
    pub fn delay_before(&self, retry: u32) -> Option<Duration> {
        if retry == 0 || retry > self.max_retries {
            return None;
        }
        Some(
            self.delay
                .saturating_mul(1u32 << (retry - 1).min(20))
                .min(self.max_delay),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stop_after_max_retries() {
        let ms = Duration::from_millis;
        let b = Backoff {
            max_retries: 4,
            delay: ms(100),
            max_delay: ms(350),
        };
        let got: Vec<_> = (0..=5).map(|r| b.delay_before(r)).collect();
        assert_eq!(
            got,
            vec![
                None,
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(350)),
                Some(ms(350)),
                None
            ]
        );
        assert_eq!(Backoff::retries(0).delay_before(1), None);
    }
}
