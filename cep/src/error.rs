//! The crate's one error type.

use thiserror::Error;

/// What can go wrong when a pattern is built, compiled or run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CepError {
    /// The pattern cannot be compiled into an NFA (Flink's `MalformedPatternException`).
    #[error("malformed pattern: {0}; fix the pattern definition")]
    MalformedPattern(String),
    /// A record reached the CEP operator without an event-time timestamp.
    #[error(
        "the CEP operator runs in event time but a record has no timestamp; call \
         assign_timestamps_and_watermarks before CEP::pattern"
    )]
    MissingTimestamp,
    /// The NFA state restored from a snapshot refers to states of another pattern.
    #[error(
        "the restored CEP state does not fit the pattern (state {state} of {states}); restore \
         with the pattern the snapshot was taken with"
    )]
    IncompatibleState {
        /// The state index found in the snapshot.
        state: usize,
        /// The number of states of the current pattern's NFA.
        states: usize,
    },
}
