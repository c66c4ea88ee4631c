//! After-match skip strategies (Flink's `AfterMatchSkipStrategy`): which partial matches are
//! dropped once a match is emitted.

use serde::{Deserialize, Serialize};

/// What happens to the other partial and completed matches after a match is emitted.
///
/// Events are ordered by (timestamp, arrival); "start" is the first event of a partial match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AfterMatchSkipStrategy {
    /// Every match is emitted (Flink's `noSkip()`, the default).
    #[default]
    NoSkip,
    /// Drops partial matches that start with the match's first event or earlier
    /// (`skipToNext()`).
    SkipToNext,
    /// Drops partial matches that start at or before the match's last event
    /// (`skipPastLastEvent()`).
    SkipPastLastEvent,
    /// Drops partial matches that start before the first event taken by the named pattern
    /// (`skipToFirst(name)`).
    SkipToFirst(String),
    /// Drops partial matches that start before the last event taken by the named pattern
    /// (`skipToLast(name)`).
    SkipToLast(String),
}

impl AfterMatchSkipStrategy {
    /// Flink's `AfterMatchSkipStrategy.noSkip()`.
    pub fn no_skip() -> Self {
        AfterMatchSkipStrategy::NoSkip
    }

    /// Flink's `AfterMatchSkipStrategy.skipToNext()`.
    pub fn skip_to_next() -> Self {
        AfterMatchSkipStrategy::SkipToNext
    }

    /// Flink's `AfterMatchSkipStrategy.skipPastLastEvent()`.
    pub fn skip_past_last_event() -> Self {
        AfterMatchSkipStrategy::SkipPastLastEvent
    }

    /// Flink's `AfterMatchSkipStrategy.skipToFirst(name)`.
    pub fn skip_to_first(name: impl Into<String>) -> Self {
        AfterMatchSkipStrategy::SkipToFirst(name.into())
    }

    /// Flink's `AfterMatchSkipStrategy.skipToLast(name)`.
    pub fn skip_to_last(name: impl Into<String>) -> Self {
        AfterMatchSkipStrategy::SkipToLast(name.into())
    }

    /// True for every strategy but `NoSkip` (matches then wait until no earlier partial
    /// match is pending, and are emitted in start order).
    pub fn is_skip(&self) -> bool {
        !matches!(self, AfterMatchSkipStrategy::NoSkip)
    }

    /// The pattern name the strategy refers to, if any.
    pub fn pattern_name(&self) -> Option<&str> {
        match self {
            AfterMatchSkipStrategy::SkipToFirst(n) | AfterMatchSkipStrategy::SkipToLast(n) => {
                Some(n)
            }
            _ => None,
        }
    }

    /// The event id that partial matches are pruned against, given a match as
    /// (pattern name, event id) pairs in match order.
    pub(crate) fn pruning_id<'a>(
        &self,
        matched: impl Iterator<Item = (&'a str, u64)> + Clone,
    ) -> Option<u64> {
        match self {
            AfterMatchSkipStrategy::NoSkip => None,
            AfterMatchSkipStrategy::SkipToNext => matched.map(|(_, id)| id).min(),
            AfterMatchSkipStrategy::SkipPastLastEvent => matched.map(|(_, id)| id).max(),
            AfterMatchSkipStrategy::SkipToFirst(name) => {
                matched.filter(|(n, _)| n == name).map(|(_, id)| id).next()
            }
            AfterMatchSkipStrategy::SkipToLast(name) => {
                matched.filter(|(n, _)| n == name).map(|(_, id)| id).last()
            }
        }
    }

    /// Whether a partial match starting at `start` is dropped for pruning id `pruning`.
    pub(crate) fn should_prune(&self, start: u64, pruning: u64) -> bool {
        match self {
            AfterMatchSkipStrategy::NoSkip => false,
            AfterMatchSkipStrategy::SkipToNext | AfterMatchSkipStrategy::SkipPastLastEvent => {
                start <= pruning
            }
            AfterMatchSkipStrategy::SkipToFirst(_) | AfterMatchSkipStrategy::SkipToLast(_) => {
                start < pruning
            }
        }
    }
}
