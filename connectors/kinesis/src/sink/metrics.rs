//! The writer's metrics, in the engine's registry under the sink's subtask scope
//! (`KinesisSinkWriter.…`).

use fjord::RuntimeContext;
use fjord::metrics::{Counter, Gauge};

/// Prefix of every metric name.
pub const PREFIX: &str = "KinesisSinkWriter";

/// Metrics of one writer.
pub(crate) struct WriterMetrics {
    /// Records Kinesis accepted (`recordsWritten`).
    pub(crate) records: Counter,
    /// PutRecords calls that returned (`requestsSent`), retries included.
    pub(crate) requests: Counter,
    /// Entries sent again after a refusal or a failed call (`recordsRetried`).
    pub(crate) retried: Counter,
    /// Values skipped as malformed (`recordsSkipped`).
    pub(crate) skipped: Counter,
    /// PutRecords batches in flight (`inFlightRequests`).
    pub(crate) in_flight: Gauge,
}

impl WriterMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(PREFIX);
        WriterMetrics {
            records: group.counter("recordsWritten"),
            requests: group.counter("requestsSent"),
            retried: group.counter("recordsRetried"),
            skipped: group.counter("recordsSkipped"),
            in_flight: group.gauge("inFlightRequests"),
        }
    }
}
