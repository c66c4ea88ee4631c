//! The writer's metrics, in the engine's registry under the sink's subtask scope
//! (`RedisSinkWriter.…`).

use fjord::RuntimeContext;
use fjord::metrics::Counter;

/// Prefix of every metric name.
pub const METRIC_PREFIX: &str = "RedisSinkWriter";

/// Metrics of one writer.
pub(crate) struct WriterMetrics {
    /// Records written (their commands acknowledged by the server) (`recordsWritten`).
    pub(crate) records: Counter,
    /// Commands acknowledged, EXPIRE included (`commandsSent`).
    pub(crate) commands: Counter,
    /// Pipelined batches sent (`flushes`).
    pub(crate) flushes: Counter,
    /// Records the mapper refused and the sink skipped (`recordsSkipped`).
    pub(crate) skipped: Counter,
}

impl WriterMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        WriterMetrics {
            records: group.counter("recordsWritten"),
            commands: group.counter("commandsSent"),
            flushes: group.counter("flushes"),
            skipped: group.counter("recordsSkipped"),
        }
    }
}
