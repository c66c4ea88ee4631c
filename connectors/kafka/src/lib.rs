//! # fjord-kafka
//!
//! The Apache Kafka connector of Fjord, in pure Rust (no librdkafka, no C toolchain).
//!
//! - [`client`]: a small blocking Kafka client on the `kafka-protocol` codec: metadata,
//!   list offsets, fetch (with `read_committed` filtering), produce (plain, idempotent and
//!   transactional), consumer-group offsets, and the transaction RPCs the exactly-once sink
//!   needs (including committing a transaction prepared by an earlier process, which is what
//!   Flink's `KafkaSink` does by reflection). Depends on nothing else in this crate.
//! - [`source`]: [`KafkaSource`](source::KafkaSource), Flink's `KafkaSource` on Fjord's
//!   split-based `Source` trait (partition discovery and assignment, offsets in checkpoints,
//!   per-partition watermarks).
//! - [`format`]: record (de)serialization: raw bytes, UTF-8, JSON, CSV, closures.
//! - [`sink`]: the sink (Flink's `KafkaSink`) on Fjord's `TransactionalSink`: delivery
//!   guarantee none, at-least-once or exactly-once (Kafka transactions per checkpoint).
//! - [`error`]: the crate's error enum.

pub mod client;
pub mod error;
pub mod format;
pub mod sink;
pub mod source;

pub use error::KafkaError;
