//! The reader's metrics, in the engine's registry under the source's subtask scope, named as
//! Flink's Kafka source names them where Flink has them (`KafkaSourceReader.…`).

use crate::client::TopicPartition;
use fjord::RuntimeContext;
use fjord::metrics::{Counter, Gauge};
use std::collections::BTreeMap;
use std::sync::Arc;

type Make<M> = Arc<dyn Fn(&str) -> M + Send + Sync>;

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
    counter: Make<Counter>,
    gauge: Make<Gauge>,
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

/// The name of a per-partition metric: `KafkaSourceReader.topic.<t>.partition.<p>.<name>`.
pub fn partition_metric(topic: &str, partition: i32, name: &str) -> String {
    format!("{PREFIX}.topic.{topic}.partition.{partition}.{name}")
}

impl ReaderMetrics {
    /// The metrics of a subtask, in the job's registry.
    pub(crate) fn new(ctx: &RuntimeContext) -> Self {
        let (c, g) = (ctx.clone(), ctx.clone());
        Self::with(
            Arc::new(move |name: &str| c.counter(name)),
            Arc::new(move |name: &str| g.gauge(name)),
        )
    }

    /// The metrics in `registry` under `scope` (unit tests).
    #[cfg(test)]
    pub(crate) fn in_registry(registry: &fjord::metrics::MetricRegistry, scope: &str) -> Self {
        let (r1, r2, s1, s2) = (
            registry.clone(),
            registry.clone(),
            scope.to_string(),
            scope.to_string(),
        );
        Self::with(
            Arc::new(move |name: &str| r1.counter(&s1, name)),
            Arc::new(move |name: &str| r2.gauge(&s2, name)),
        )
    }

    fn with(counter: Make<Counter>, gauge: Make<Gauge>) -> Self {
        ReaderMetrics {
            commits_succeeded: counter(&format!("{PREFIX}.commitsSucceeded")),
            commits_failed: counter(&format!("{PREFIX}.commitsFailed")),
            malformed_skipped: counter(&format!("{PREFIX}.malformedRecordsSkipped")),
            malformed_dead_lettered: counter(&format!("{PREFIX}.malformedRecordsDeadLettered")),
            counter,
            gauge,
            partitions: BTreeMap::new(),
        }
    }

    /// The metrics of a partition, registered on first use.
    pub(crate) fn partition(&mut self, tp: &TopicPartition) -> PartitionMetrics {
        let (counter, gauge) = (&self.counter, &self.gauge);
        if let Some(m) = self.partitions.get(tp) {
            return m.clone();
        }
        let m = self.partitions.entry(tp.clone()).or_insert_with(|| {
            let name = |n: &str| partition_metric(&tp.topic, tp.partition, n);
            PartitionMetrics {
                records: counter(&name("records")),
                bytes: counter(&name("bytes")),
                lag: gauge(&name("lag")),
                current_offset: gauge(&name("currentOffset")),
                committed_offset: gauge(&name("committedOffset")),
            }
        });
        m.clone()
    }
}
