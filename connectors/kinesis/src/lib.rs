//! # fjord-kinesis
//!
//! The Amazon Kinesis Data Streams connector of Fjord, on the AWS SDK for Rust: Flink's
//! `KinesisStreamsSource` and `KinesisStreamsSink` (flink-connector-aws) on Fjord's `Source`
//! and `Sink` traits.
//!
//! - [`config`]: where the stream is (region, endpoint, credentials). Depends on nothing else.
//! - [`client`]: a small blocking client over the SDK (its own tokio runtime): shards, shard
//!   iterators, GetRecords, PutRecords, and the admin calls tests and tools use (create,
//!   split, merge). Depends on `config` and `error`.
//! - [`record`]: a record as read ([`KinesisRecord`]) and the (de)serializers of the source and
//!   the sink (closures, JSON).
//! - [`source`]: [`KinesisSource`]: shards as splits, periodic shard discovery, sequence
//!   numbers in checkpoints (exactly-once), parents read before their children after a
//!   reshard, start positions, per-shard watermarks.
//! - [`sink`]: [`KinesisSink`]: PutRecords batches bounded by count, bytes and requests in
//!   flight, failed entries retried with backoff, everything flushed before each checkpoint
//!   barrier (at-least-once).
//! - [`error`]: the crate's error enum.

pub mod client;
pub mod config;
pub mod error;
pub mod record;
pub mod sink;
pub mod source;

pub use client::{KinesisClient, ShardInfo};
pub use config::{AwsCredentials, KinesisConfig};
pub use error::KinesisError;
pub use record::KinesisRecord;
pub use sink::{KinesisSink, KinesisSinkBuilder};
pub use source::{KinesisSource, KinesisSourceBuilder, OnMalformed, StartingPosition};
