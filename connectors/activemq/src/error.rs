//! The crate's error enum.

/// What went wrong in the ActiveMQ connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ActiveMqError {
    /// The configuration is incomplete or wrong (found by `build()`).
    #[error("ActiveMQ connector configuration: {0}")]
    Config(String),
    /// The broker could not be reached, or refused the connection (credentials, protocol).
    #[error(
        "cannot connect to ActiveMQ at {address}: {reason}; check that the broker runs with a STOMP transport connector there and that the address (stomp://user:password@host:port) is right"
    )]
    Connect {
        /// The broker's address (without passcode).
        address: String,
        /// What failed.
        reason: String,
    },
    /// The broker answered with an `ERROR` frame.
    #[error(
        "ActiveMQ at {address} refused {operation}: {message}{details}; the job fails and its restart strategy restarts it from the last checkpoint"
    )]
    Broker {
        /// The broker's address (without passcode).
        address: String,
        /// What the connector was doing (`subscribing to /queue/q`, ...).
        operation: String,
        /// The `message` header of the `ERROR` frame.
        message: String,
        /// The first line of the `ERROR` frame's body, if any (` (...)`).
        details: String,
    },
    /// The connection broke or timed out (no heart-beat, no receipt in time, broker gone).
    #[error(
        "{operation} on ActiveMQ at {address} failed: {reason}; the job fails and its restart strategy restarts it from the last checkpoint"
    )]
    Connection {
        /// The broker's address (without passcode).
        address: String,
        /// What the connector was doing.
        operation: String,
        /// What failed.
        reason: String,
    },
    /// A message is malformed: the deserializer refused it, or it lacks the id the source
    /// deduplicates by.
    #[error(
        "malformed ActiveMQ message: {0}; fix the producer or the deserializer, or send such messages to the dead-letter queue with .on_malformed(OnMalformed::DeadLetter)"
    )]
    Malformed(String),
}
