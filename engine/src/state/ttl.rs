//! State time-to-live (Flink's `StateTtlConfig`).

use crate::types::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When the last-access timestamp of a state entry is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateType {
    /// On creation and on every write (Flink's default).
    OnCreateAndWrite,
    /// On creation, write and read.
    OnReadAndWrite,
}

/// Whether an expired value that was not cleaned up yet may be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateVisibility {
    /// Expired values are never returned (Flink's default).
    NeverReturnExpired,
    /// An expired value is returned once if it is still there; the read then removes it.
    ReturnExpiredIfNotCleanedUp,
}

/// Time-to-live of a state: entries expire `ttl` after their last refresh, measured in
/// processing time (the job's clock), and are removed when read after expiry and, with
/// [`cleanup_incrementally`](Self::cleanup_incrementally), in the background.
///
/// ```
/// use fjord::state::{StateTtlConfig, StateVisibility, UpdateType};
/// use std::time::Duration;
/// let ttl = StateTtlConfig::new(Duration::from_secs(60))
///     .update_type(UpdateType::OnReadAndWrite)
///     .visibility(StateVisibility::NeverReturnExpired);
/// assert_eq!(ttl.ttl_millis(), 60_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTtlConfig {
    ttl: i64,
    update_type: UpdateType,
    visibility: StateVisibility,
    cleanup_every: Option<u32>,
}

impl StateTtlConfig {
    /// Entries live `ttl` after their last refresh; updated on create and write, never
    /// returned when expired, and cleaned up in the background every 5th state access
    /// (Flink's heap backend cleans up incrementally by default too).
    pub fn new(ttl: Duration) -> Self {
        StateTtlConfig {
            ttl: ttl.as_millis() as i64,
            update_type: UpdateType::OnCreateAndWrite,
            visibility: StateVisibility::NeverReturnExpired,
            cleanup_every: Some(5),
        }
    }

    /// Sets when the timestamp is refreshed.
    pub fn update_type(mut self, update_type: UpdateType) -> Self {
        self.update_type = update_type;
        self
    }

    /// Sets whether expired values may be returned.
    pub fn visibility(mut self, visibility: StateVisibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// Every `every_n_accesses` state accesses of the operator, one key group is swept for
    /// expired entries. This differs from Flink's `cleanupIncrementally(size, ..)`, which
    /// checks `size` entries per access; the effect (bounded work per access, everything
    /// eventually swept) is the same.
    pub fn cleanup_incrementally(mut self, every_n_accesses: u32) -> Self {
        self.cleanup_every = Some(every_n_accesses.max(1));
        self
    }

    /// Only read accesses remove expired entries.
    pub fn disable_cleanup_in_background(mut self) -> Self {
        self.cleanup_every = None;
        self
    }

    /// The time-to-live in milliseconds.
    pub fn ttl_millis(&self) -> i64 {
        self.ttl
    }

    pub(crate) fn update_on_read(&self) -> bool {
        self.update_type == UpdateType::OnReadAndWrite
    }

    pub(crate) fn return_expired(&self) -> bool {
        self.visibility == StateVisibility::ReturnExpiredIfNotCleanedUp
    }

    pub(crate) fn cleanup_every(&self) -> Option<u32> {
        self.cleanup_every
    }
}

/// A stored value with the time it was last refreshed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stamped<V> {
    pub(crate) value: V,
    pub(crate) ts: Timestamp,
}

impl<V> Stamped<V> {
    #[inline]
    pub(crate) fn expired(&self, ttl: Option<&StateTtlConfig>, now: Timestamp) -> bool {
        ttl.is_some_and(|t| self.ts.saturating_add(t.ttl) <= now)
    }
}
