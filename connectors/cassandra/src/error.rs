//! The crate's error enum.

/// What went wrong in the Cassandra connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum CassandraSinkError {
    /// The sink's configuration is incomplete or wrong (found by `build()`).
    #[error("Cassandra sink configuration: {0}")]
    Config(String),
    /// No session could be opened to the contact points.
    #[error(
        "cannot connect to Cassandra at {hosts}: {message}; check that the cluster runs and that 'hosts' lists its native transport (CQL) addresses as host:port"
    )]
    Connect {
        /// The contact points.
        hosts: String,
        /// The driver's error.
        message: String,
    },
    /// The server refused to prepare the statement (unknown keyspace, table or column, bad
    /// syntax), or a statement of the write-ahead committer.
    #[error(
        "Cassandra refused to prepare `{query}`: {message}; check that the keyspace and table exist and that the columns and bind markers match"
    )]
    Prepare {
        /// The statement.
        query: String,
        /// The server's or driver's error.
        message: String,
    },
    /// A write failed for good: a non-retriable error, or a retriable one that outlasted the
    /// retries.
    #[error(
        "writing to Cassandra with `{query}` failed after {attempts} attempt(s): {message}; the job fails and its restart strategy restarts it from the last checkpoint, which writes these records again (or count and ignore such failures with .on_failure(OnFailure::IgnoreAndCount))"
    )]
    Write {
        /// The statement.
        query: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// Waiting for a free request slot or for the requests in flight took too long.
    #[error(
        "{what} did not finish within {timeout_ms} ms ({in_flight} request(s) in flight); Cassandra is too slow or unreachable: raise max_concurrent_requests_timeout or check the cluster"
    )]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The limit.
        timeout_ms: u128,
        /// Requests still in flight.
        in_flight: usize,
    },
    /// A record could not be made a row of the statement (with
    /// [`OnMalformed::Fail`](crate::OnMalformed::Fail)).
    #[error(
        "malformed record for the Cassandra sink: {0}; fix the data or the mapping, or skip such records with .on_malformed(OnMalformed::Skip) ('sink.ignore-malformed' = 'true' in SQL)"
    )]
    Malformed(String),
    /// The write-ahead sink's committer table could not be read or written.
    #[error(
        "the write-ahead Cassandra sink's committer ({table}) failed: {message}; check that the sink may create and write that table"
    )]
    Committer {
        /// The committer's table.
        table: String,
        /// The driver's error.
        message: String,
    },
    /// A write-ahead sink's checkpoint data could not be encoded or decoded.
    #[error("the write-ahead Cassandra sink's checkpoint data: {0}")]
    Encoding(String),
}
