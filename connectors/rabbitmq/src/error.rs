//! The crate's error enum.

/// What went wrong in the RabbitMQ connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum RabbitMqError {
    /// The configuration is incomplete or wrong (found by `build()`).
    #[error("RabbitMQ connector configuration: {0}")]
    Config(String),
    /// The broker could not be reached, or refused the connection (credentials, vhost).
    #[error(
        "cannot connect to RabbitMQ at {url}: {reason}; check that the broker runs and the URL (amqp://user:password@host:port/vhost) is right"
    )]
    Connect {
        /// The broker's URL (without password).
        url: String,
        /// What failed.
        reason: String,
    },
    /// An AMQP operation failed on an open connection (the connection or channel closed, the
    /// broker refused a declaration, ...).
    #[error(
        "{operation} on RabbitMQ at {url} failed: {reason}; the job fails and its restart strategy restarts it from the last checkpoint"
    )]
    Channel {
        /// The broker's URL (without password).
        url: String,
        /// What the connector was doing (`consuming queue 'q'`, `publishing to 'x'`, ...).
        operation: String,
        /// What failed.
        reason: String,
    },
    /// The broker refused (nack) or returned (unroutable) published messages.
    #[error(
        "RabbitMQ at {url} did not accept {count} published messages: {reason}; the job fails and republishes them after its restart"
    )]
    NotConfirmed {
        /// The broker's URL (without password).
        url: String,
        /// Messages refused or returned.
        count: usize,
        /// The first refusal (nack, or the broker's return code and text).
        reason: String,
    },
    /// A message is malformed: the deserializer refused it, or it has no correlation id where
    /// one is required.
    #[error(
        "malformed RabbitMQ message: {0}; fix the producer or the deserializer, or skip such messages with .on_malformed(OnMalformed::Skip)"
    )]
    Malformed(String),
}
