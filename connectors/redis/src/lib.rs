//! Redis connector for Fjord: [`RedisSink`](sink::RedisSink), Apache Bahir's `RedisSink` on
//! Fjord's `Sink` trait.
//!
//! - [`command`]: what one record becomes in Redis: a [`RedisWrite`](command::RedisWrite)
//!   (SET, HSET, LPUSH, RPUSH, SADD, ZADD, PUBLISH, each with an optional TTL), made by a
//!   [`RedisMapper`](command::RedisMapper): a closure, or Bahir's command description
//!   ([`CommandMapper`](command::CommandMapper)).
//! - [`sink`]: the sink and its builder (connection, batching, malformed records).
//! - `writer`: the writer of one parallel instance: a pipeline flushed on size, on time and
//!   before every checkpoint barrier (at-least-once). Depends on `command`, `metrics`.
//! - `metrics`: the writer's counters.
//! - [`error`]: the crate's error enum.
//!
//! Redis has no transactions that span a checkpoint, so the sink is at-least-once; with
//! idempotent commands (SET, HSET, SADD, ZADD of values that depend only on the record) a
//! replay after a failure rewrites what is there already, and the *result* is exactly-once.

pub mod command;
pub mod error;
pub mod sink;

mod metrics;
mod writer;

pub use command::{CommandMapper, RedisCommand, RedisMapper, RedisWrite};
pub use error::RedisSinkError;
pub use metrics::METRIC_PREFIX;
pub use sink::{OnMalformed, RedisSink, RedisSinkBuilder};
