//! A small, blocking Apache Kafka client on the `kafka-protocol` codec.
//!
//! SKELETON: this file fixes the API the connector (source, sink) is written against. The
//! client helper implements it (splitting it into modules: connection, metadata, fetch,
//! produce, transactions, groups, admin) and may extend it; changing a signature here must be
//! agreed with the connector side (tell the lead).
//!
//! Design: one `KafkaClient` per reader/writer thread (Fjord runs a thread per subtask), plain
//! `std::net::TcpStream` connections per broker, one request in flight per connection,
//! request versions chosen from the broker's ApiVersions within what this client supports
//! (Kafka 3.x and 4.x brokers). Every call is bounded by the configured request timeout.

use crate::error::KafkaError;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// Result of this module.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

/// A topic and a partition of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// How to connect: Kafka consumer/producer properties, passed through where this client knows
/// them (`bootstrap.servers`, `client.id`, `request.timeout.ms`, `security.protocol`, ...).
/// Properties this client cannot honour (SASL or SSL it does not implement) are refused by
/// [`KafkaClient::connect`] with a [`KafkaError::Config`] naming them, never silently ignored.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// All properties, as a Kafka client takes them.
    pub properties: BTreeMap<String, String>,
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
    _config: ClientConfig,
}

impl KafkaClient {
    /// Connects to a bootstrap broker and reads the cluster's metadata and API versions.
    ///
    /// Errors: [`KafkaError::Unreachable`] when no bootstrap server answers within the request
    /// timeout; [`KafkaError::Config`] for properties this client cannot honour.
    pub fn connect(config: &ClientConfig) -> Result<Self> {
        let _ = config;
        unimplemented!("client helper")
    }

    /// Topics and their partition counts: all topics when `topics` is `None` (for patterns),
    /// else only these (a missing topic is simply absent, never auto-created).
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let _ = topics;
        unimplemented!()
    }

    /// Resolves an [`OffsetSpec`] for each partition (read_committed semantics for `Latest`).
    pub fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let _ = (partitions, spec);
        unimplemented!()
    }

    /// Fetches from each partition at its offset, from the partitions' leaders. An offset out
    /// of range is an error ([`KafkaError::Broker`] with `OFFSET_OUT_OF_RANGE`).
    pub fn fetch(
        &mut self,
        positions: &BTreeMap<TopicPartition, i64>,
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>> {
        let _ = (positions, options);
        unimplemented!()
    }

    /// The offsets committed for a consumer group (`None` where nothing is committed).
    pub fn committed_offsets(
        &mut self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let _ = (group_id, partitions);
        unimplemented!()
    }

    /// Commits offsets for a consumer group without joining it (generation -1, as Flink's
    /// source does for monitoring).
    pub fn commit_offsets(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let _ = (group_id, offsets);
        unimplemented!()
    }

    /// Creates a topic (admin; tests and examples). Already existing is not an error.
    pub fn create_topic(&mut self, topic: &str, partitions: i32, replication: i16) -> Result<()> {
        let _ = (topic, partitions, replication);
        unimplemented!()
    }

    /// Raises a topic's partition count (admin; partition discovery tests).
    pub fn create_partitions(&mut self, topic: &str, total: i32) -> Result<()> {
        let _ = (topic, total);
        unimplemented!()
    }

    /// Commits a transaction prepared by [`Producer::prepare_commit`], possibly in another
    /// process (Flink's resumeTransaction + commit). Idempotent: committing a transaction that
    /// was already committed succeeds; a transaction that was fenced (its transactional id
    /// re-initialised since) returns an error the caller can recognise with
    /// [`KafkaError::is_fenced`] (to come).
    pub fn commit_prepared(&mut self, transaction: &PreparedTransaction) -> Result<()> {
        let _ = transaction;
        unimplemented!()
    }

    /// Aborts whatever transaction is open under `transactional_id` by initialising it
    /// (InitProducerId bumps the epoch and aborts the open transaction). Returns the new
    /// epoch; an epoch of 0 means the id had never been used (Flink's probing for lingering
    /// transactions stops there).
    pub fn abort_lingering(&mut self, transactional_id: &str) -> Result<i16> {
        let _ = transactional_id;
        unimplemented!()
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

/// Writes records, batching them per partition.
pub struct Producer {
    _mode: ProducerMode,
}

impl Producer {
    /// Creates a producer. For [`ProducerMode::Transactional`] this initialises the
    /// transactional id (fencing older producers with it, aborting its open transaction) and
    /// begins a transaction.
    pub fn new(config: &ClientConfig, mode: ProducerMode) -> Result<Self> {
        let _ = (config, mode);
        unimplemented!()
    }

    /// Partition count of a topic (cached, refreshed when a send hits an unknown partition).
    pub fn partitions(&mut self, topic: &str) -> Result<i32> {
        let _ = topic;
        unimplemented!()
    }

    /// Buffers a record for a partition; sends a batch when the partition's buffer is full
    /// (`batch.size`) or `linger.ms` passed. Errors of earlier sends surface here or in
    /// [`flush`](Self::flush).
    pub fn send(&mut self, partition: &TopicPartition, record: ProducerRecord) -> Result<()> {
        let _ = (partition, record);
        unimplemented!()
    }

    /// Sends everything buffered and waits for the acknowledgements.
    pub fn flush(&mut self) -> Result<()> {
        unimplemented!()
    }

    /// Transactional mode: flushes and returns the identity of the open transaction, which
    /// stays open (prepared) until someone commits it with [`KafkaClient::commit_prepared`] or
    /// [`commit`](Self::commit). No further records may be sent on this producer.
    pub fn prepare_commit(&mut self) -> Result<PreparedTransaction> {
        unimplemented!()
    }

    /// Transactional mode: commits the open transaction.
    pub fn commit(&mut self) -> Result<()> {
        unimplemented!()
    }

    /// Transactional mode: aborts the open transaction.
    pub fn abort(&mut self) -> Result<()> {
        unimplemented!()
    }

    /// Bytes and records sent, commit failures and transactions committed/aborted so far.
    pub fn metrics(&self) -> ProducerMetrics {
        ProducerMetrics::default()
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
}
