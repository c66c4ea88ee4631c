//! Processing time: the clock a job reads and the per-task schedule of processing-time
//! wake-ups.
//!
//! Every task reads processing time from the [`Clock`] in the job's
//! [`ExecutionConfig`](crate::ExecutionConfig). The default is the system clock; tests inject a
//! [`ManualClock`] and move time forward explicitly, so processing-time timers, periodic
//! watermarks, idleness and state TTL can be tested without sleeping.

use crate::types::Timestamp;
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of processing time in milliseconds since the epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current processing time.
    fn now(&self) -> Timestamp;

    /// How long a task that has nothing else to do may block before `deadline` is due.
    /// The system clock returns the real remaining time; a manual clock returns a short poll
    /// interval because its time moves only when a test moves it.
    fn wait_until(&self, deadline: Timestamp) -> Duration {
        Duration::from_millis(deadline.saturating_sub(self.now()).max(0) as u64)
    }
}

/// The wall clock (`SystemTime::now()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Timestamp)
    }
}

/// A clock that moves only when told to; share it between a test and the job (clones see the
/// same time).
///
/// ```
/// use fjord::time::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(500);
/// assert_eq!(clock.now(), 1_500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start` milliseconds.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start)),
        }
    }

    /// Moves time forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.now.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the time; it must not go backwards (processing time is monotonous in Flink).
    pub fn set(&self, now: Timestamp) {
        self.now.fetch_max(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }

    fn wait_until(&self, _deadline: Timestamp) -> Duration {
        Duration::from_millis(1)
    }
}

/// The processing-time wake-ups that the operators of one task asked for. The task loop waits
/// until the earliest one and then tells the chain that processing time advanced.
#[derive(Clone, Default)]
pub(crate) struct WakeupSchedule {
    deadlines: Arc<Mutex<BinaryHeap<Reverse<Timestamp>>>>,
}

impl fmt::Debug for WakeupSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WakeupSchedule(next: {:?})", self.next())
    }
}

impl WakeupSchedule {
    /// Asks for a wake-up at `time`.
    pub(crate) fn register(&self, time: Timestamp) {
        let mut d = self.deadlines.lock();
        if d.peek().is_none_or(|Reverse(t)| *t != time) {
            d.push(Reverse(time));
        }
    }

    /// The earliest requested wake-up.
    #[inline]
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.deadlines.lock().peek().map(|Reverse(t)| *t)
    }

    /// Removes every wake-up due at `now`; true if there was one.
    pub(crate) fn take_due(&self, now: Timestamp) -> bool {
        let mut d = self.deadlines.lock();
        let mut any = false;
        while d.peek().is_some_and(|Reverse(t)| *t <= now) {
            d.pop();
            any = true;
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_returns_earliest_and_takes_due() {
        let s = WakeupSchedule::default();
        s.register(30);
        s.register(10);
        s.register(10);
        s.register(20);
        assert_eq!(s.next(), Some(10));
        assert!(!s.take_due(5));
        assert!(s.take_due(20));
        assert_eq!(s.next(), Some(30));
    }

    #[test]
    fn manual_clock_is_shared_and_monotonous() {
        let c = ManualClock::new(100);
        let d = c.clone();
        d.advance(5);
        c.set(50);
        assert_eq!(c.now(), 105);
    }
}
