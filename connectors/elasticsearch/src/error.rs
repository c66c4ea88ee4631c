//! The crate's error enum.

/// What went wrong in the Elasticsearch/OpenSearch connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ElasticsearchError {
    /// The sink's configuration is incomplete or wrong (found by `build()`).
    #[error("Elasticsearch sink configuration: {0}")]
    Config(String),
    /// The emitter refused a record, or the record could not be made a document.
    #[error(
        "malformed record for the Elasticsearch sink: {0}; fix the data or the emitter, or drop such records with .on_malformed(OnMalformed::Skip)"
    )]
    Malformed(String),
    /// A bulk request got no answer (connection refused or broken, timeout) or a whole-request
    /// error status, also after every retry.
    #[error(
        "bulk request of {actions} actions to {hosts} failed after {attempts} attempts: {reason}; the job fails and its restart strategy restarts it from the last checkpoint, which writes these records again (more attempts: sink.bulk-flush.backoff.max-retries / .backoff(..))"
    )]
    Request {
        /// The cluster's hosts.
        hosts: String,
        /// Actions in the request.
        actions: usize,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The cluster refused the credentials or the request (401, 403, 413 ...): retrying cannot
    /// help.
    #[error("the cluster at {url} refused the bulk request with HTTP {status}: {reason}; {hint}")]
    Refused {
        /// The host that answered.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        reason: String,
        /// What to do.
        hint: &'static str,
    },
    /// The cluster refused one action of a bulk request, and the failure handler fails the job.
    #[error(
        "the cluster refused the {action} of document {id} in index '{index}' (HTTP {status}, {kind}): {reason}; fix the document or the index mapping, or choose another failure handler (SQL 'failure-handler' = 'drop', or .failure_handler(FailureHandler::Drop))"
    )]
    ItemFailed {
        /// `index`, `update` or `delete`.
        action: &'static str,
        /// The index.
        index: String,
        /// The document id (`(auto)` for an index action without id).
        id: String,
        /// The item's HTTP status.
        status: u16,
        /// The error type (`mapper_parsing_exception`, ...).
        kind: String,
        /// The error's reason (with its cause).
        reason: String,
    },
}
