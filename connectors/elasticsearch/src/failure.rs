//! What the sink does with an action the cluster refused (Flink's `ActionRequestFailureHandler`).

/// The failure handler: what happens to an action the cluster refused for good (a mapping
/// conflict, a malformed document, or a load rejection left after the backoff's retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureHandler {
    /// Fail the job with [`ElasticsearchError::ItemFailed`](crate::ElasticsearchError::ItemFailed)
    /// naming the document and the cluster's reason (Flink's default `NoOpFailureHandler`). The
    /// restart strategy restarts the job from its last checkpoint.
    #[default]
    Fail,
    /// Log the action with the cluster's reason, count it in `actionsDropped` and go on (Flink's
    /// `IgnoringFailureHandler`). The document is lost.
    Drop,
    /// Retry actions the cluster rejected for load (HTTP 429, 503) and requests that got no
    /// answer for as long as it takes, waiting the backoff's delays; fail the job for any other
    /// refusal (Flink's `RetryRejectedExecutionFailureHandler`).
    Retry,
}

impl FailureHandler {
    /// The handler named `fail`, `drop` or `retry` (case-insensitive; `ignore` is `drop`).
    ///
    /// # Errors
    /// Another name, with the ones allowed.
    pub fn parse(name: &str) -> Result<FailureHandler, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "fail" => Ok(FailureHandler::Fail),
            "drop" | "ignore" => Ok(FailureHandler::Drop),
            "retry" | "retry-rejected" => Ok(FailureHandler::Retry),
            other => Err(format!(
                "failure handler '{other}' is not known; use 'fail' (the default), 'drop' or 'retry'"
            )),
        }
    }
}

/// Whether an item's status may succeed when retried (the cluster was overloaded or a shard
/// was not ready): 429 (`rejected_execution_exception`) and 503.
pub(crate) fn retriable_item(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// Whether a whole-request status may succeed when retried: 429, 502, 503, 504.
pub(crate) fn retriable_request(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}
