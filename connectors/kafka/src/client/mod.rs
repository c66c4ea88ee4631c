//! A small, blocking Apache Kafka client on the `kafka-protocol` codec.
//!
//! This file fixes the API the connector (source, sink) is written against; the modules below
//! implement it. Changing a signature here must be agreed with the connector side. Additions
//! since the skeleton: [`KafkaError::is_fenced`], [`KafkaError::is_retriable`],
//! [`KafkaError::code`], the [`KafkaError::Usage`] variant, [`Producer::mode`],
//! [`Producer::has_records_in_transaction`], [`Producer::poll`],
//! [`ProducerMetrics::commit_failures`], [`FetchOptions::from_properties`] and its `Default`,
//! the [`KafkaError::Authentication`] variant (SASL).
//!
//! Properties honoured: `bootstrap.servers`, `client.id`, `request.timeout.ms`,
//! `retry.backoff.ms`, `batch.size`, `linger.ms`, `compression.type` (none, gzip, snappy),
//! `transaction.timeout.ms`, `max.block.ms`, `max.in.flight.requests.per.connection` (at most
//! 5); acks come with [`ProducerMode`].
//! `security.protocol` PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. TLS with rustls:
//! `ssl.truststore.location` / `ssl.truststore.certificates`, `ssl.keystore.location` or
//! `ssl.keystore.certificate.chain` + `ssl.keystore.key` for a client certificate, all PEM;
//! `ssl.endpoint.identification.algorithm`. SASL: `sasl.mechanism` PLAIN, SCRAM-SHA-256 or
//! SCRAM-SHA-512 with the credentials of `sasl.jaas.config` (`PlainLoginModule` /
//! `ScramLoginModule required username="..." password="...";`), on every connection; GSSAPI
//! (Kerberos), OAUTHBEARER and Java callback handlers are refused. Fetch sizes come with
//! [`FetchOptions`]. Other properties are ignored.
//!
//! Modules: `connection` (framing, correlation ids, ApiVersions, then TLS and SASL set-up),
//! `cluster` (metadata, connections per broker, coordinators, bounded retries), `offsets`
//! (ListOffsets), `fetch`, `records` (batch codec, read_committed filter), `produce`,
//! `transactions`, `groups`, `admin`, `tls`, `sasl` (SaslHandshake/SaslAuthenticate, mechanism
//! and credentials), `scram` (the SCRAM exchange, pure), `jaas` (the `sasl.jaas.config`
//! syntax), `config` (all properties parsed once).
//!
//! Design: one `KafkaClient` per reader/writer thread (Fjord runs a thread per subtask), plain
//! `std::net::TcpStream` connections per broker (TLS over them with `security.protocol=SSL` or
//! `SASL_SSL`; each connection authenticates itself with SASL when asked),
//! one request in flight per connection except a producer's pipelined Produce requests (up to
//! `max.in.flight.requests.per.connection`) and a fetch's requests to several leaders at once,
//! request versions chosen from the broker's ApiVersions within what this client supports
//! (Kafka 3.x and 4.x brokers). Every call is bounded by the configured request timeout.

mod admin;
mod cluster;
mod config;
mod connection;
mod fetch;
mod groups;
mod jaas;
mod offsets;
mod produce;
mod records;
mod sasl;
mod scram;
mod tls;
mod transactions;

pub use produce::Producer;

use crate::error::KafkaError;
use bytes::Bytes;
use cluster::Cluster;
use config::Settings;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Result of this module.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

/// A topic and a partition of it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// How to connect: Kafka consumer/producer properties, passed through where this client knows
/// them (`bootstrap.servers`, `client.id`, `request.timeout.ms`, `security.protocol`,
/// `sasl.mechanism`, `sasl.jaas.config`, ...). Properties this client cannot honour (GSSAPI or
/// OAUTHBEARER SASL, non-PEM key stores) are refused by [`KafkaClient::connect`] with a
/// [`KafkaError::Config`] naming them, never silently ignored.
///
/// Its `Debug` output shows secret values (`sasl.jaas.config`, passwords, private keys) as
/// `[hidden]`.
#[derive(Clone, Default)]
pub struct ClientConfig {
    /// All properties, as a Kafka client takes them.
    pub properties: BTreeMap<String, String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let v = if config::is_secret(k) {
                    "[hidden]"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("ClientConfig")
            .field("properties", &shown)
            .finish()
    }
}

/// Topics, partitions and their leaders.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    /// Topic name -> number of partitions (only topics without errors).
    pub topics: BTreeMap<String, i32>,
}

/// Where to start or stop in a partition, resolved by [`KafkaClient::list_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The offset the next record will get (the high watermark; with read_committed, the
    /// last stable offset).
    Latest,
    /// The first offset whose record timestamp is >= this (ms since the epoch); `Latest` if
    /// none.
    Timestamp(i64),
}

/// Whether fetches see records of open and aborted transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything written.
    ReadUncommitted,
    /// Only committed transactional records (and non-transactional ones), up to the last stable
    /// offset. Control records and records of aborted transactions are dropped by the client.
    #[default]
    ReadCommitted,
}

/// Options of one fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Isolation level.
    pub isolation: IsolationLevel,
    /// How long the broker may wait for `min_bytes`.
    pub max_wait: Duration,
    /// The broker answers once it has this many bytes.
    pub min_bytes: i32,
    /// Upper bound of one response.
    pub max_bytes: i32,
    /// Upper bound per partition.
    pub partition_max_bytes: i32,
}

impl Default for FetchOptions {
    /// Kafka's consumer defaults, `read_committed`.
    fn default() -> Self {
        FetchOptions {
            isolation: IsolationLevel::ReadCommitted,
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
        }
    }
}

impl FetchOptions {
    /// Options from consumer properties: `isolation.level` (read_committed or
    /// read_uncommitted), `fetch.max.wait.ms`, `fetch.min.bytes`, `fetch.max.bytes`,
    /// `max.partition.fetch.bytes`, with Kafka's defaults.
    pub fn from_properties(config: &ClientConfig) -> Result<Self> {
        let d = FetchOptions::default();
        let p = &config.properties;
        let isolation = match p.get("isolation.level").map(|s| s.trim()) {
            None | Some("read_committed") => IsolationLevel::ReadCommitted,
            Some("read_uncommitted") => IsolationLevel::ReadUncommitted,
            Some(other) => {
                return Err(KafkaError::Config(format!(
                    "isolation.level={other} is not read_committed or read_uncommitted"
                )));
            }
        };
        Ok(FetchOptions {
            isolation,
            max_wait: Duration::from_millis(config::number(p, "fetch.max.wait.ms", 500, 0)? as u64),
            min_bytes: config::number(p, "fetch.min.bytes", 1, 0)? as i32,
            max_bytes: config::number(p, "fetch.max.bytes", i64::from(d.max_bytes), 1)? as i32,
            partition_max_bytes: config::number(
                p,
                "max.partition.fetch.bytes",
                i64::from(d.partition_max_bytes),
                1,
            )? as i32,
        })
    }
}

/// One record read from Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerRecord {
    /// Offset in its partition.
    pub offset: i64,
    /// Record timestamp (create or log-append time), ms since the epoch.
    pub timestamp: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value, if any (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one partition returned in a fetch.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// The partition.
    pub partition: TopicPartition,
    /// Records in offset order (already filtered for the isolation level).
    pub records: Vec<ConsumerRecord>,
    /// The offset to fetch next (past control records and skipped aborted records, so it can
    /// be larger than the last record's offset + 1).
    pub next_offset: i64,
    /// The partition's high watermark (for lag: `high_watermark - next_offset`).
    pub high_watermark: i64,
    /// The last stable offset (== high watermark without open transactions).
    pub last_stable_offset: i64,
    /// Bytes of record data received for this partition.
    pub bytes: usize,
}

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Timestamp (ms); `None` = now.
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The identity of a prepared (flushed, not yet committed) transaction: what the exactly-once
/// sink stores in a checkpoint to commit it later, possibly from another process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreparedTransaction {
    /// The transactional id.
    pub transactional_id: String,
    /// Producer id the coordinator gave it.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

/// Partition metadata and everything that is not producing: offsets, fetches, groups, admin.
pub struct KafkaClient {
    cluster: Cluster,
}

impl KafkaClient {
    /// Connects to a bootstrap broker and reads the cluster's metadata and API versions.
    ///
    /// Errors: [`KafkaError::Unreachable`] when no bootstrap server answers within the request
    /// timeout; [`KafkaError::Config`] for properties this client cannot honour;
    /// [`KafkaError::Authentication`] when SASL authentication fails (not retried).
    pub fn connect(config: &ClientConfig) -> Result<Self> {
        let settings = Settings::parse(config)?;
        Ok(KafkaClient {
            cluster: Cluster::connect(settings)?,
        })
    }

    /// Topics and their partition counts: all topics when `topics` is `None` (for patterns;
    /// Kafka's internal topics excluded), else only these (a missing topic is simply absent,
    /// never auto-created).
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let response = self.cluster.retry(|c| c.fetch_metadata(topics))?;
        let mut out = ClusterMetadata::default();
        for topic in response.topics {
            let Some(name) = topic.name else { continue };
            if topic.error_code != 0 || (topics.is_none() && topic.is_internal) {
                continue;
            }
            out.topics
                .insert(name.as_str().to_string(), topic.partitions.len() as i32);
        }
        Ok(out)
    }

    /// Waits until `topic` appears in the metadata, like Kafka's producer waits for the
    /// metadata of a topic it sends to: polls for at most `max.block.ms` (a topic created
    /// just before reaches every broker's metadata cache a moment later). Returns its
    /// partition count, or `None` when it is still absent at the deadline.
    pub fn wait_for_topic(&mut self, topic: &str) -> Result<Option<i32>> {
        let deadline = Instant::now() + self.cluster.settings.max_block;
        let mut pause = Duration::from_millis(50);
        loop {
            let metadata = self.metadata(Some(&[topic.to_string()]))?;
            if let Some(partitions) = metadata.topics.get(topic) {
                return Ok(Some(*partitions));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// The `max.block.ms` this client honours.
    pub fn max_block(&self) -> Duration {
        self.cluster.settings.max_block
    }

    /// Resolves an [`OffsetSpec`] for each partition (read_committed semantics for `Latest`).
    pub fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        offsets::list_offsets(&mut self.cluster, partitions, spec)
    }

    /// Fetches from each partition at its offset, from the partitions' leaders. An offset out
    /// of range is an error ([`KafkaError::Broker`] with `OFFSET_OUT_OF_RANGE`).
    pub fn fetch(
        &mut self,
        positions: &BTreeMap<TopicPartition, i64>,
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>> {
        fetch::fetch(&mut self.cluster, positions, options)
    }

    /// The offsets committed for a consumer group (`None` where nothing is committed).
    pub fn committed_offsets(
        &mut self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        groups::committed(&mut self.cluster, group_id, partitions)
    }

    /// Commits offsets for a consumer group without joining it (generation -1, as Flink's
    /// source does for monitoring).
    pub fn commit_offsets(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        groups::commit(&mut self.cluster, group_id, offsets)
    }

    /// Creates a topic (admin; tests and examples). Already existing is not an error. Returns
    /// once every partition has a leader.
    pub fn create_topic(&mut self, topic: &str, partitions: i32, replication: i16) -> Result<()> {
        admin::create_topic(&mut self.cluster, topic, partitions, replication)
    }

    /// Raises a topic's partition count (admin; partition discovery tests). Already that many
    /// is not an error. Returns once every partition has a leader.
    pub fn create_partitions(&mut self, topic: &str, total: i32) -> Result<()> {
        admin::create_partitions(&mut self.cluster, topic, total)
    }

    /// Commits a transaction prepared by [`Producer::prepare_commit`], possibly in another
    /// process (Flink's resumeTransaction + commit). Idempotent: committing a transaction that
    /// was already committed succeeds (so does one that wrote nothing); a transaction that was
    /// fenced (its transactional id re-initialised since, or aborted by the coordinator after
    /// `transaction.timeout.ms`) returns an error the caller can recognise with
    /// [`KafkaError::is_fenced`].
    ///
    /// Like Kafka's own producer, this returns once the coordinator decided the commit; it
    /// writes the commit markers to the partitions right after, and `read_committed` readers
    /// see the records from then on.
    pub fn commit_prepared(&mut self, transaction: &PreparedTransaction) -> Result<()> {
        transactions::commit_prepared(&mut self.cluster, transaction)
    }

    /// Aborts whatever transaction is open under `transactional_id` by initialising it
    /// (InitProducerId bumps the epoch and aborts the open transaction). Returns the new
    /// epoch; an epoch of 0 means the id had never been used (Flink's probing for lingering
    /// transactions stops there).
    pub fn abort_lingering(&mut self, transactional_id: &str) -> Result<i16> {
        let deadline = Instant::now() + self.cluster.settings.max_block;
        let timeout_ms = self.cluster.settings.transaction_timeout_ms;
        transactions::init_producer_id(
            &mut self.cluster,
            Some(transactional_id),
            timeout_ms,
            deadline,
        )
        .map(|(_, epoch)| epoch)
    }
}

/// How a [`Producer`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerMode {
    /// `acks` as given (0, 1 or -1), no idempotence.
    Plain {
        /// Required acks.
        acks: i16,
    },
    /// Idempotent producer, acks = all (the at-least-once sink's default).
    Idempotent,
    /// Transactional: every record belongs to the open transaction of this transactional id.
    Transactional {
        /// The transactional id.
        transactional_id: String,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_move_to_subtask_threads() {
        fn send<T: Send>() {}
        send::<super::KafkaClient>();
        send::<super::Producer>();
    }
}

/// Counters of a producer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProducerMetrics {
    /// Records acknowledged.
    pub records_sent: u64,
    /// Bytes acknowledged (record batches as encoded).
    pub bytes_sent: u64,
    /// Transactions committed.
    pub transactions_committed: u64,
    /// Transactions aborted.
    pub transactions_aborted: u64,
    /// Commits that failed (the producer is unusable after one).
    pub commit_failures: u64,
}
