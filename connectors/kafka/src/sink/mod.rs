//! The Kafka sink (Flink's `KafkaSink`): writes a stream to Kafka topics with delivery
//! guarantee none, at-least-once or exactly-once.
//!
//! - [`KafkaSink`] / [`KafkaSinkBuilder`]: configuration, and the [`TransactionalSink`] every
//!   parallel instance's writer comes from. Use it with `stream.sink_to_transactional(sink,
//!   name)` for every guarantee: the two-phase-commit hook at checkpoint barriers is where the
//!   at-least-once mode flushes, too.
//! - [`record`]: from a value to a Kafka record (topic, key, value, headers, timestamp).
//! - [`partitioner`]: Kafka's default partitioning (murmur2, like the Java client), by key,
//!   round-robin, fixed, custom.
//! - `writer`: the writer of one parallel instance; `transaction_ids` names transactions and
//!   says which ids a writer probes for lingering ones; `state` encodes committables and
//!   writer state; `metrics` are the writer's counters.
//!
//! # Guarantees
//! - [`DeliveryGuarantee::None`]: records are sent as they come and flushed at the end of
//!   input only; a failure may lose or duplicate records.
//! - [`DeliveryGuarantee::AtLeastOnce`]: an idempotent producer (acks = all), flushed at every
//!   checkpoint barrier, so every record before a completed checkpoint is acknowledged; after a
//!   failure records since the checkpoint are written again (duplicates, no loss).
//! - [`DeliveryGuarantee::ExactlyOnce`]: a Kafka transaction per checkpoint per subtask,
//!   prepared (flushed) at the barrier and committed when the checkpoint completes; consumers
//!   with `isolation.level=read_committed` see every record exactly once. See
//!   [`transaction_ids`] for the naming and recovery rules.

pub mod partitioner;
pub mod record;
pub mod transaction_ids;

mod metrics;
mod state;
mod writer;

pub use metrics::{METRIC_PREFIX, partition_metric};
pub use partitioner::{KafkaPartitioner, murmur2, partition_for_key};
pub use record::{Headers, KafkaRecordSerializer, KafkaRecordSerializerBuilder};
pub use writer::FAILPOINT_ENV;

use crate::client::ClientConfig;
use crate::error::KafkaError;
use fjord::sinks::{TransactionalSink, TransactionalWriter};
use fjord::{BoxError, RuntimeContext};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the sink promises about records reaching Kafka (Flink's `DeliveryGuarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryGuarantee {
    /// No flush at checkpoints: records may be lost or duplicated on failure.
    None,
    /// Flush at every checkpoint: no loss, duplicates after a failure.
    #[default]
    AtLeastOnce,
    /// Kafka transactions committed with the checkpoints: read_committed consumers see every
    /// record once. Needs a [`transactional_id_prefix`](KafkaSinkBuilder::transactional_id_prefix).
    ExactlyOnce,
}

impl std::str::FromStr for DeliveryGuarantee {
    type Err = KafkaError;

    /// `none`, `at-least-once` or `exactly-once` (also with `_`, any case).
    fn from_str(s: &str) -> Result<Self, KafkaError> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "none" => Ok(DeliveryGuarantee::None),
            "at-least-once" => Ok(DeliveryGuarantee::AtLeastOnce),
            "exactly-once" => Ok(DeliveryGuarantee::ExactlyOnce),
            other => Err(KafkaError::Config(format!(
                "delivery guarantee `{other}` is not one of none, at-least-once, exactly-once"
            ))),
        }
    }
}

/// Default `transaction.timeout.ms` of the exactly-once sink: 15 minutes, the brokers' default
/// `transaction.max.timeout.ms`. A prepared transaction must survive until its checkpoint
/// completes and, after a failure, until the job has restarted and committed it.
pub const DEFAULT_TRANSACTION_TIMEOUT_MS: u32 = 900_000;

/// The settings every writer of a sink shares.
pub(crate) struct SinkSettings<T> {
    pub(crate) config: ClientConfig,
    pub(crate) guarantee: DeliveryGuarantee,
    pub(crate) prefix: Option<String>,
    pub(crate) serializer: KafkaRecordSerializer<T>,
}

impl<T> SinkSettings<T> {
    /// `bootstrap.servers`, for messages.
    pub(crate) fn bootstrap(&self) -> &str {
        self.config
            .properties
            .get("bootstrap.servers")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// Writes a stream to Kafka (Flink's `KafkaSink`). Made by [`KafkaSink::builder`]; give it to
/// `DataStream::sink_to_transactional` (with a `.uid(..)`, so pending transactions survive
/// savepoints).
///
/// ```no_run
/// use fjord_kafka::format::{Utf8, project};
/// use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
/// # fn job(counts: &fjord::DataStream<(String, u64)>) -> Result<(), fjord_kafka::KafkaError> {
/// let sink = KafkaSink::builder()
///     .bootstrap_servers("localhost:9092")
///     .record_serializer(
///         KafkaRecordSerializer::builder()
///             .topic("word-counts")
///             .key(project(|c: &(String, u64)| c.0.clone(), Utf8))
///             .value(|c: &(String, u64)| c.1.to_string().into_bytes())
///             .build()?,
///     )
///     .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
///     .transactional_id_prefix("word-counts")
///     .build()?;
/// counts.sink_to_transactional(sink, "Sink: Kafka").uid("kafka-sink");
/// # Ok(())
/// # }
/// ```
pub struct KafkaSink<T> {
    settings: Arc<SinkSettings<T>>,
}

impl<T> Clone for KafkaSink<T> {
    fn clone(&self) -> Self {
        KafkaSink {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> KafkaSink<T> {
    /// A builder (Flink's `KafkaSink.builder()`).
    pub fn builder() -> KafkaSinkBuilder<T> {
        KafkaSinkBuilder {
            properties: BTreeMap::new(),
            guarantee: DeliveryGuarantee::default(),
            prefix: None,
            serializer: None,
        }
    }

    /// The delivery guarantee.
    pub fn delivery_guarantee(&self) -> DeliveryGuarantee {
        self.settings.guarantee
    }

    /// The producer properties the writers use (with the sink's defaults filled in).
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.settings.config.properties
    }
}

impl<T: fjord::Data> TransactionalSink<T> for KafkaSink<T> {
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError> {
        Ok(Box::new(writer::KafkaWriter::open(
            self.settings.clone(),
            ctx,
        )?))
    }
}

/// Builds a [`KafkaSink`] (Flink's `KafkaSinkBuilder`).
pub struct KafkaSinkBuilder<T> {
    properties: BTreeMap<String, String>,
    guarantee: DeliveryGuarantee,
    prefix: Option<String>,
    serializer: Option<KafkaRecordSerializer<T>>,
}

impl<T: 'static> KafkaSinkBuilder<T> {
    /// `host:port[,host:port...]` of the brokers (Flink's `setBootstrapServers`).
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.property("bootstrap.servers", servers)
    }

    /// A producer property, passed through (`client.id`, `linger.ms`, `batch.size`,
    /// `compression.type`, `request.timeout.ms`, `transaction.timeout.ms`, `acks`, ...).
    /// Properties the client cannot honour are refused when the job starts.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Several properties (Flink's `setKafkaProducerConfig`).
    pub fn properties<K: Into<String>, V: Into<String>>(
        mut self,
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in properties {
            self.properties.insert(k.into(), v.into());
        }
        self
    }

    /// The delivery guarantee (default at-least-once; Flink's default is none, Fjord picks
    /// the one that loses nothing).
    pub fn delivery_guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// The prefix of the transactional ids (required for exactly-once). It must be unique per
    /// job writing to the same Kafka cluster and stay the same across restarts and upgrades
    /// of the job, so a restored job finds its transactions.
    pub fn transactional_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How values become records (Flink's `setRecordSerializer`).
    pub fn record_serializer(mut self, serializer: KafkaRecordSerializer<T>) -> Self {
        self.serializer = Some(serializer);
        self
    }

    /// The sink.
    ///
    /// # Errors
    /// [`KafkaError::Config`] without bootstrap servers or record serializer, for exactly-once
    /// without a transactional id prefix (or with an empty one), or for at-least-once with
    /// `acks` other than `all`.
    pub fn build(self) -> Result<KafkaSink<T>, KafkaError> {
        let mut properties = self.properties;
        let servers = properties
            .get("bootstrap.servers")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if servers.is_empty() {
            return Err(KafkaError::Config(
                "the Kafka sink needs bootstrap servers: call .bootstrap_servers(\"host:port\")"
                    .into(),
            ));
        }
        let serializer = self.serializer.ok_or_else(|| {
            KafkaError::Config(
                "the Kafka sink needs a record serializer: call .record_serializer(KafkaRecordSerializer::builder().topic(..).value(..).build()?)".into(),
            )
        })?;
        let prefix = self.prefix.map(|p| p.trim().to_string());
        match self.guarantee {
            DeliveryGuarantee::ExactlyOnce => {
                match &prefix {
                    None => {
                        return Err(KafkaError::Config(
                            "exactly-once needs a transactional id prefix: call .transactional_id_prefix(\"<unique name of this sink>\"), unique per job on this Kafka cluster and stable across restarts".into(),
                        ));
                    }
                    Some(p) if p.is_empty() => {
                        return Err(KafkaError::Config(
                            "the transactional id prefix is empty; give a name unique per job on this Kafka cluster".into(),
                        ));
                    }
                    Some(_) => {}
                }
                properties
                    .entry("transaction.timeout.ms".into())
                    .or_insert_with(|| DEFAULT_TRANSACTION_TIMEOUT_MS.to_string());
            }
            DeliveryGuarantee::AtLeastOnce => {
                if let Some(acks) = properties.get("acks")
                    && !matches!(acks.trim(), "all" | "-1")
                {
                    return Err(KafkaError::Config(format!(
                        "at-least-once needs acks=all, not acks={acks}: remove the acks property or choose DeliveryGuarantee::None"
                    )));
                }
            }
            DeliveryGuarantee::None => {}
        }
        Ok(KafkaSink {
            settings: Arc::new(SinkSettings {
                config: ClientConfig { properties },
                guarantee: self.guarantee,
                prefix,
                serializer,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Utf8;

    fn serializer() -> KafkaRecordSerializer<String> {
        KafkaRecordSerializer::builder()
            .topic("t")
            .value(Utf8)
            .build()
            .unwrap()
    }

    fn error(b: KafkaSinkBuilder<String>) -> String {
        match b.build() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn exactly_once_needs_a_prefix_and_gets_a_long_transaction_timeout() {
        let b = || {
            KafkaSink::builder()
                .bootstrap_servers("localhost:9092")
                .record_serializer(serializer())
                .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        };
        let e = error(b());
        assert!(e.contains(".transactional_id_prefix("), "{e}");
        let e = error(b().transactional_id_prefix("  "));
        assert!(e.contains("empty"), "{e}");
        let sink = b().transactional_id_prefix("jobs-a").build().unwrap();
        assert_eq!(sink.properties()["transaction.timeout.ms"], "900000");
        let sink = b()
            .transactional_id_prefix("jobs-a")
            .property("transaction.timeout.ms", "60000")
            .build()
            .unwrap();
        assert_eq!(sink.properties()["transaction.timeout.ms"], "60000");
    }

    #[test]
    fn bootstrap_servers_serializer_and_acks_are_checked() {
        let e = error(KafkaSink::builder().record_serializer(serializer()));
        assert!(e.contains(".bootstrap_servers("), "{e}");
        let e = error(KafkaSink::<String>::builder().bootstrap_servers("h:1"));
        assert!(e.contains(".record_serializer("), "{e}");
        let e = error(
            KafkaSink::builder()
                .bootstrap_servers("h:1")
                .record_serializer(serializer())
                .property("acks", "1"),
        );
        assert!(e.contains("acks=all"), "{e}");
        let sink = KafkaSink::builder()
            .bootstrap_servers("h:1")
            .record_serializer(serializer())
            .properties([("acks", "1"), ("linger.ms", "20")])
            .delivery_guarantee(DeliveryGuarantee::None)
            .build()
            .unwrap();
        assert_eq!(sink.delivery_guarantee(), DeliveryGuarantee::None);
        assert_eq!(sink.properties()["linger.ms"], "20");
    }

    #[test]
    fn guarantees_parse_from_text() {
        for (text, g) in [
            ("none", DeliveryGuarantee::None),
            ("at-least-once", DeliveryGuarantee::AtLeastOnce),
            ("EXACTLY_ONCE", DeliveryGuarantee::ExactlyOnce),
        ] {
            assert_eq!(text.parse::<DeliveryGuarantee>().unwrap(), g);
        }
        let e = "twice"
            .parse::<DeliveryGuarantee>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly-once"), "{e}");
    }
}
