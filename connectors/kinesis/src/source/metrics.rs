//! The reader's metrics, in the engine's registry under the source's subtask scope
//! (`KinesisSourceReader.…`); per-shard ones in the key/value group `shard`, which the
//! Prometheus export turns into a label.

use fjord::RuntimeContext;
use fjord::metrics::{Counter, Gauge, MetricGroup};
use std::collections::BTreeMap;

/// Prefix of every metric name.
pub const PREFIX: &str = "KinesisSourceReader";

/// Metrics of one shard (cheap to clone: shared counters).
#[derive(Clone)]
pub(crate) struct ShardMetrics {
    /// Records read (skipped malformed ones included).
    pub(crate) records: Counter,
    /// Bytes of record data fetched.
    pub(crate) bytes: Counter,
    /// `MillisBehindLatest` of the last GetRecords.
    pub(crate) millis_behind_latest: Gauge,
}

/// Metrics of a reader.
pub(crate) struct ReaderMetrics {
    group: MetricGroup,
    shards: BTreeMap<String, ShardMetrics>,
    /// Shards being read (`assignedShards`).
    pub(crate) assigned: Gauge,
    /// Shards read to their end (`finishedShards`).
    pub(crate) finished: Counter,
    /// Malformed records skipped.
    pub(crate) malformed_skipped: Counter,
    /// Calls that failed and were retried (`retries`).
    pub(crate) retries: Counter,
}

impl ReaderMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(PREFIX);
        ReaderMetrics {
            assigned: group.gauge("assignedShards"),
            finished: group.counter("finishedShards"),
            malformed_skipped: group.counter("malformedRecordsSkipped"),
            retries: group.counter("retries"),
            group,
            shards: BTreeMap::new(),
        }
    }

    /// The metrics of a shard, registered on first use.
    pub(crate) fn shard(&mut self, shard_id: &str) -> ShardMetrics {
        let group = &self.group;
        self.shards
            .entry(shard_id.to_string())
            .or_insert_with(|| {
                let g = group.add_group_kv("shard", shard_id);
                ShardMetrics {
                    records: g.counter("records"),
                    bytes: g.counter("bytes"),
                    millis_behind_latest: g.gauge("millisBehindLatest"),
                }
            })
            .clone()
    }
}
