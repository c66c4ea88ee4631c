//! The writer's metrics, in the engine's registry under the sink's subtask scope
//! (`KafkaSinkWriter.…`, beside the source's `KafkaSourceReader.…`); per-partition ones in
//! the key/value groups `topic` and `partition` (labels in the Prometheus export).

use crate::client::TopicPartition;
use fjord::RuntimeContext;
use fjord::metrics::{Counter, MetricGroup};
use std::collections::HashMap;

/// Prefix of every metric name.
pub const METRIC_PREFIX: &str = "KafkaSinkWriter";

/// The identifier of a per-partition metric: `KafkaSinkWriter.topic.<t>.partition.<p>.<name>`.
pub fn partition_metric(topic: &str, partition: i32, name: &str) -> String {
    format!("{METRIC_PREFIX}.topic.{topic}.partition.{partition}.{name}")
}

/// Metrics of one writer.
pub(crate) struct WriterMetrics {
    group: MetricGroup,
    partitions: HashMap<TopicPartition, (Counter, Counter)>,
    /// Records handed to the producer (`recordsSent`).
    pub(crate) records: Counter,
    /// Bytes of keys, values and headers handed to the producer (`bytesSent`).
    pub(crate) bytes: Counter,
    /// Transactions this writer committed (`transactionsCommitted`).
    pub(crate) committed: Counter,
    /// Transactions this writer aborted (`transactionsAborted`): its open one on failure or
    /// cancellation. (Lingering transactions of earlier attempts are aborted by initialising
    /// their ids, which does not tell whether one was open; the log counts those ids.)
    pub(crate) aborted: Counter,
    /// Commits that failed (`commitFailures`), including fenced transactions treated as
    /// committed.
    pub(crate) commit_failures: Counter,
}

impl WriterMetrics {
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        WriterMetrics {
            partitions: HashMap::new(),
            records: group.counter("recordsSent"),
            bytes: group.counter("bytesSent"),
            committed: group.counter("transactionsCommitted"),
            aborted: group.counter("transactionsAborted"),
            commit_failures: group.counter("commitFailures"),
            group,
        }
    }

    /// Counts a record of `bytes` bytes sent to `tp`.
    pub(crate) fn sent(&mut self, tp: &TopicPartition, bytes: usize) {
        self.records.inc();
        self.bytes.add(bytes as u64);
        let group = &self.group;
        let (records, size) = self.partitions.entry(tp.clone()).or_insert_with(|| {
            let g = group
                .add_group_kv("topic", &tp.topic)
                .add_group_kv("partition", &tp.partition.to_string());
            (g.counter("recordsSent"), g.counter("bytesSent"))
        });
        records.inc();
        size.add(bytes as u64);
    }
}
