//! The crate's error enum.

/// What went wrong in the Kinesis connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The source's or sink's configuration is incomplete or wrong (found by `build()`).
    #[error("Kinesis connector configuration: {0}")]
    Config(String),
    /// The client could not be set up (its runtime or HTTP client).
    #[error("cannot create the Kinesis client: {0}")]
    Client(String),
    /// A call to the Kinesis API failed.
    #[error("Kinesis {operation} on stream '{stream}' failed: {message}{hint}")]
    Api {
        /// The API operation (`GetRecords`, `PutRecords`, ...).
        operation: &'static str,
        /// The stream.
        stream: String,
        /// The SDK's error, with its code and message when the service sent them.
        message: String,
        /// What to do about it, when known (starts with "; ").
        hint: String,
        /// Whether trying again later may succeed (a connection, throttling or server error),
        /// as opposed to a refused request (no such stream, bad argument, access denied).
        retryable: bool,
        /// The service's error code, when it sent one (`ExpiredIteratorException`, ...).
        code: Option<String>,
    },
    /// A record the source's deserializer or the sink's serializer refused.
    #[error("malformed record {position}: {message}")]
    Malformed {
        /// Where: stream, shard and sequence number, or the sink's stream.
        position: String,
        /// What is wrong.
        message: String,
    },
    /// The sink gave up on records after retrying them for the configured time.
    #[error(
        "{count} records could not be written to Kinesis stream '{stream}' after retrying for {seconds} s: {last_error}; check the stream and its throughput, or raise the retry timeout"
    )]
    WriteGaveUp {
        /// The stream.
        stream: String,
        /// Records not written.
        count: usize,
        /// How long the sink retried.
        seconds: u64,
        /// The last error or failed entry's code and message.
        last_error: String,
    },
}

impl KinesisError {
    /// True when trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            KinesisError::Api {
                retryable: true,
                ..
            }
        )
    }

    /// The service's error code, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            KinesisError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
