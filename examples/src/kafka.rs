//! What the Kafka examples share: their Kafka arguments, the source and the sink built from
//! them.
//!
//! - `--bootstrap-servers host:port[,...]` (default `localhost:9092`): the one value to change
//!   for another Kafka cluster;
//! - `--output-topic T`, `--group-id G` (default: the job's name);
//! - `--bounded`: read what the input topics hold when the job starts, then finish;
//! - `--delivery-guarantee none|at-least-once|exactly-once` and
//!   `--transactional-id-prefix P` (default: the job's name).

use fjord::time::WatermarkStrategy;
use fjord::{FjordError, JobArgs, Result};
use fjord_kafka::format::{KafkaDeserializer, SerializationFormat};
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, StoppingOffsets};

/// The broker address the examples use unless given `--bootstrap-servers`.
pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "localhost:9092";

/// The Kafka arguments of an example job.
#[derive(Debug, Clone)]
pub struct KafkaArgs {
    /// `--bootstrap-servers`.
    pub bootstrap_servers: String,
    /// `--output-topic`.
    pub output_topic: String,
    /// `--group-id`.
    pub group_id: String,
    /// `--bounded`.
    pub bounded: bool,
    /// `--delivery-guarantee`.
    pub guarantee: DeliveryGuarantee,
    /// `--transactional-id-prefix`.
    pub transactional_id_prefix: String,
}

fn bad(e: fjord_kafka::KafkaError) -> FjordError {
    FjordError::BadArguments(e.to_string())
}

impl KafkaArgs {
    /// Reads the arguments; `job` names the defaults of group and prefix.
    pub fn parse(args: &JobArgs, job: &str, default_output: &str) -> Result<Self> {
        Self::parse_with_guarantee(args, job, default_output, DeliveryGuarantee::AtLeastOnce)
    }

    /// As [`parse`](Self::parse), with another default guarantee.
    pub fn parse_with_guarantee(
        args: &JobArgs,
        job: &str,
        default_output: &str,
        guarantee: DeliveryGuarantee,
    ) -> Result<Self> {
        let guarantee = match args.get("delivery-guarantee") {
            None => guarantee,
            Some(g) => g.parse().map_err(bad)?,
        };
        Ok(KafkaArgs {
            bootstrap_servers: args
                .get("bootstrap-servers")
                .unwrap_or(DEFAULT_BOOTSTRAP_SERVERS)
                .to_string(),
            output_topic: args
                .get("output-topic")
                .unwrap_or(default_output)
                .to_string(),
            group_id: args.get("group-id").unwrap_or(job).to_string(),
            bounded: args.has("bounded"),
            guarantee,
            transactional_id_prefix: args
                .get("transactional-id-prefix")
                .unwrap_or(job)
                .to_string(),
        })
    }

    /// A source reading `topic` from the earliest offset (bounded with `--bounded`), with
    /// per-partition watermarks when given a strategy.
    pub fn source<T: 'static>(
        &self,
        topic: &str,
        deserializer: impl KafkaDeserializer<T>,
        watermarks: Option<WatermarkStrategy<T>>,
    ) -> Result<KafkaSource<T>> {
        let mut builder = KafkaSource::builder()
            .bootstrap_servers(&self.bootstrap_servers)
            .topics([topic])
            .group_id(&self.group_id)
            .deserializer(deserializer);
        if let Some(strategy) = watermarks {
            builder = builder.watermark_strategy(strategy);
        }
        if self.bounded {
            builder = builder.bounded(StoppingOffsets::Latest);
        }
        builder.build().map_err(bad)
    }

    /// A sink with these arguments' servers, guarantee and prefix.
    pub fn sink<T: 'static>(&self, serializer: KafkaRecordSerializer<T>) -> Result<KafkaSink<T>> {
        KafkaSink::builder()
            .bootstrap_servers(&self.bootstrap_servers)
            .delivery_guarantee(self.guarantee)
            .transactional_id_prefix(&self.transactional_id_prefix)
            .record_serializer(serializer)
            .build()
            .map_err(bad)
    }
}

/// Records for `topic` with this key and value format.
pub fn record_serializer<T: 'static>(
    topic: &str,
    key: impl SerializationFormat<T>,
    value: impl SerializationFormat<T>,
) -> Result<KafkaRecordSerializer<T>> {
    KafkaRecordSerializer::builder()
        .topic(topic)
        .key(key)
        .value(value)
        .build()
        .map_err(bad)
}
