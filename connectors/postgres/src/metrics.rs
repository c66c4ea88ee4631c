//! The writer's and the lookup's metrics, in the engine's registry under the operator's
//! subtask scope (`PostgresSinkWriter.…`, `PostgresLookup.…`).

use fjord::RuntimeContext;
use fjord::metrics::{Counter, Gauge};

/// Prefix of every sink metric's name.
pub const SINK_METRIC_PREFIX: &str = "PostgresSinkWriter";
/// Prefix of every lookup metric's name.
pub const LOOKUP_METRIC_PREFIX: &str = "PostgresLookup";

/// Metrics of one writer.
pub(crate) struct WriterMetrics {
    /// Records all of whose actions the server committed (`recordsWritten`).
    pub(crate) records: Counter,
    /// Upsert or insert statements committed (`upserts`).
    pub(crate) upserts: Counter,
    /// Delete statements committed (`deletes`).
    pub(crate) deletes: Counter,
    /// Actions replaced in a batch by a later action on the same key before being sent
    /// (`actionsReduced`).
    pub(crate) reduced: Counter,
    /// Transactions committed (`batches`).
    pub(crate) batches: Counter,
    /// Batches sent again after a transient failure, and reconnections (`retries`).
    pub(crate) retries: Counter,
    /// Records the emitter refused and the sink skipped (`recordsSkipped`).
    pub(crate) skipped: Counter,
}

impl WriterMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(SINK_METRIC_PREFIX);
        WriterMetrics {
            records: group.counter("recordsWritten"),
            upserts: group.counter("upserts"),
            deletes: group.counter("deletes"),
            reduced: group.counter("actionsReduced"),
            batches: group.counter("batches"),
            retries: group.counter("retries"),
            skipped: group.counter("recordsSkipped"),
        }
    }
}

/// Metrics of one lookup (Flink's lookup cache metrics, and the queries).
#[derive(Clone, Default)]
pub(crate) struct LookupMetrics {
    /// Lookups answered from the cache (`hitCount`).
    pub(crate) hits: Counter,
    /// Lookups not in the cache, or without cache (`missCount`).
    pub(crate) misses: Counter,
    /// Queries sent to the server and answered (`loadCount`).
    pub(crate) loads: Counter,
    /// Queries that failed after every retry (`numLoadFailures`).
    pub(crate) load_failures: Counter,
    /// Queries sent again after a transient failure (`retries`).
    pub(crate) retries: Counter,
    /// Keys in the cache (`numCachedRecords`).
    pub(crate) cached: Gauge,
}

impl LookupMetrics {
    /// Metrics in the operator's registry.
    pub(crate) fn registered(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(LOOKUP_METRIC_PREFIX);
        LookupMetrics {
            hits: group.counter("hitCount"),
            misses: group.counter("missCount"),
            loads: group.counter("loadCount"),
            load_failures: group.counter("numLoadFailures"),
            retries: group.counter("retries"),
            cached: group.gauge("numCachedRecords"),
        }
    }
}
