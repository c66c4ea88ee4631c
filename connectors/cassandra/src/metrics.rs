//! The writers' metrics, in the engine's registry under the sink's subtask scope
//! (`CassandraSinkWriter.…`).

use fjord::RuntimeContext;
use fjord::metrics::{Counter, Gauge};

/// Prefix of every metric name.
pub const METRIC_PREFIX: &str = "CassandraSinkWriter";

/// Metrics of one writer.
pub(crate) struct WriterMetrics {
    /// Records Cassandra acknowledged (`recordsWritten`).
    pub(crate) written: Counter,
    /// Records whose write failed for good and that the failure handler ignored
    /// (`recordsFailed`).
    pub(crate) failed: Counter,
    /// Records the mapping refused and the sink skipped (`recordsSkipped`).
    pub(crate) skipped: Counter,
    /// Attempts repeated after a timeout, an unavailable or overloaded node or a broken
    /// connection (`retries`).
    pub(crate) retries: Counter,
    /// Requests sent and not answered yet (`requestsInFlight`).
    pub(crate) in_flight: Gauge,
    /// Write-ahead sink: checkpoints whose records were written and recorded in the
    /// committer table (`checkpointsCommitted`).
    pub(crate) committed: Counter,
    /// Write-ahead sink: checkpoints found in the committer table already, not written again
    /// (`checkpointsAlreadyCommitted`).
    pub(crate) already_committed: Counter,
}

impl WriterMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        WriterMetrics {
            written: group.counter("recordsWritten"),
            failed: group.counter("recordsFailed"),
            skipped: group.counter("recordsSkipped"),
            retries: group.counter("retries"),
            in_flight: group.gauge("requestsInFlight"),
            committed: group.counter("checkpointsCommitted"),
            already_committed: group.counter("checkpointsAlreadyCommitted"),
        }
    }
}
