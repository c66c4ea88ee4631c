//! The reader's metrics, in the engine's registry under the source's subtask scope, named as
//! Flink's Kafka source names them where Flink has them (`KafkaSourceReader.…`). Per-partition
//! metrics sit in Flink's key/value groups `topic` and `partition`, which the Prometheus
//! export turns into labels.

use crate::client::TopicPartition;
use fjord::RuntimeContext;
use fjord::metrics::{Counter, Gauge, MetricGroup};
use std::collections::BTreeMap;

/// Prefix of every metric name.
pub const PREFIX: &str = "KafkaSourceReader";

/// Metrics of one partition (cheap to clone: shared counters).
#[derive(Clone)]
pub(crate) struct PartitionMetrics {
    /// Records read (including skipped malformed ones and records the deserializer dropped).
    pub(crate) records: Counter,
    /// Bytes of record data fetched.
    pub(crate) bytes: Counter,
    /// High watermark − position after the last fetch.
    pub(crate) lag: Gauge,
    /// The position (next offset to read).
    pub(crate) current_offset: Gauge,
    /// The last offset committed to the group.
    pub(crate) committed_offset: Gauge,
}

/// Metrics of a reader.
pub(crate) struct ReaderMetrics {
    group: MetricGroup,
    partitions: BTreeMap<TopicPartition, PartitionMetrics>,
    /// Offset commits that succeeded.
    pub(crate) commits_succeeded: Counter,
    /// Offset commits that failed (logged; they never fail the job).
    pub(crate) commits_failed: Counter,
    /// Malformed records skipped (`OnMalformed::Skip`).
    pub(crate) malformed_skipped: Counter,
    /// Malformed records written to the dead-letter topic (`OnMalformed::DeadLetterTopic`).
    pub(crate) malformed_dead_lettered: Counter,
}

/// The identifier of a per-partition metric: `KafkaSourceReader.topic.<t>.partition.<p>.<name>`.
pub fn partition_metric(topic: &str, partition: i32, name: &str) -> String {
    format!("{PREFIX}.topic.{topic}.partition.{partition}.{name}")
}

impl ReaderMetrics {
    /// The metrics of a subtask, in the job's registry.
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        Self::with(ctx.metric_group().add_group(PREFIX))
    }

    /// The metrics in `registry` under `scope` (unit tests).
    #[cfg(test)]
    pub(crate) fn in_registry(registry: &fjord::metrics::MetricRegistry, scope: &str) -> Self {
        Self::with(registry.group(scope).add_group(PREFIX))
    }

    fn with(group: MetricGroup) -> Self {
        ReaderMetrics {
            commits_succeeded: group.counter("commitsSucceeded"),
            commits_failed: group.counter("commitsFailed"),
            malformed_skipped: group.counter("malformedRecordsSkipped"),
            malformed_dead_lettered: group.counter("malformedRecordsDeadLettered"),
            group,
            partitions: BTreeMap::new(),
        }
    }

    /// The metrics of a partition, registered on first use.
    pub(crate) fn partition(&mut self, tp: &TopicPartition) -> PartitionMetrics {
        let group = &self.group;
        self.partitions
            .entry(tp.clone())
            .or_insert_with(|| {
                let g = group
                    .add_group_kv("topic", &tp.topic)
                    .add_group_kv("partition", &tp.partition.to_string());
                PartitionMetrics {
                    records: g.counter("records"),
                    bytes: g.counter("bytes"),
                    lag: g.gauge("lag"),
                    current_offset: g.gauge("currentOffset"),
                    committed_offset: g.gauge("committedOffset"),
                }
            })
            .clone()
    }
}
