//! The writer's metrics, in the engine's registry under the sink's subtask scope
//! (`ElasticsearchSinkWriter.…`).

use fjord::RuntimeContext;
use fjord::metrics::Counter;

/// Prefix of every metric name.
pub const METRIC_PREFIX: &str = "ElasticsearchSinkWriter";

/// Metrics of one writer.
pub(crate) struct WriterMetrics {
    /// Records all of whose actions the cluster accepted (`recordsWritten`).
    pub(crate) records: Counter,
    /// Actions the cluster accepted (`actionsWritten`).
    pub(crate) actions: Counter,
    /// Bulk requests sent, retries included (`bulkRequests`).
    pub(crate) requests: Counter,
    /// Bytes of bulk bodies sent (`bytesSent`).
    pub(crate) bytes: Counter,
    /// Retries: a request sent again after no answer or a retriable status, plus each action
    /// sent again after the cluster rejected it for load (`retries`).
    pub(crate) retries: Counter,
    /// Actions the cluster refused for good (`actionsFailed`); with the `fail` handler the
    /// first one fails the job.
    pub(crate) failed: Counter,
    /// Refused actions the `drop` handler dropped (`actionsDropped`).
    pub(crate) dropped: Counter,
    /// Records the emitter refused and the sink skipped (`recordsSkipped`).
    pub(crate) skipped: Counter,
}

impl WriterMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        WriterMetrics {
            records: group.counter("recordsWritten"),
            actions: group.counter("actionsWritten"),
            requests: group.counter("bulkRequests"),
            bytes: group.counter("bytesSent"),
            retries: group.counter("retries"),
            failed: group.counter("actionsFailed"),
            dropped: group.counter("actionsDropped"),
            skipped: group.counter("recordsSkipped"),
        }
    }
}
