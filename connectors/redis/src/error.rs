//! The crate's error enum.

/// What went wrong in the Redis connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum RedisSinkError {
    /// The sink's configuration is incomplete or wrong (found by `build()`).
    #[error("Redis sink configuration: {0}")]
    Config(String),
    /// The server could not be reached or refused the connection.
    #[error(
        "cannot connect to Redis at {url}: {source}; check that the server runs and the URL (redis://[:password@]host:port[/db]) is right"
    )]
    Connect {
        /// The server's URL (without password).
        url: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// A pipelined batch failed: the connection broke or the server answered an error.
    #[error(
        "writing {commands} commands to Redis at {url} failed: {source}; the job fails and its restart strategy restarts it from the last checkpoint, which writes these records again"
    )]
    Write {
        /// The server's URL (without password).
        url: String,
        /// Commands in the failed batch.
        commands: usize,
        /// The client's error (a server reply such as WRONGTYPE, or an I/O error).
        source: redis::RedisError,
    },
    /// The mapper refused a record (with [`OnMalformed::Fail`](crate::OnMalformed::Fail)).
    #[error(
        "malformed record for the Redis sink: {0}; fix the data or the mapper, or skip such records with .on_malformed(OnMalformed::Skip)"
    )]
    Malformed(String),
}
