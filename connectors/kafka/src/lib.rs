//! # fjord-kafka
//!
//! The Apache Kafka connector of Fjord, in pure Rust (no librdkafka, no C toolchain).
//!
//! - [`client`]: a small blocking Kafka client on the `kafka-protocol` codec: metadata,
//!   list offsets, fetch (with `read_committed` filtering), produce (plain, idempotent and
//!   transactional), consumer-group offsets, and the transaction RPCs the exactly-once sink
//!   needs (including committing a transaction prepared by an earlier process, which is what
//!   Flink's `KafkaSink` does by reflection). Depends on nothing else in this crate.
//! - `source`, `sink`, `format`: the connector on Fjord's `Source` and `TransactionalSink`
//!   traits (to come; they depend on `client`).
//! - [`error`]: the crate's error enum.

pub mod client;
pub mod error;

pub use error::KafkaError;
