//! Apache Cassandra connector for Fjord: [`CassandraSink`](sink::CassandraSink), Flink's
//! `CassandraSink`, on Fjord's `Sink` trait, and its write-ahead variant
//! [`CassandraWriteAheadSink`](wal::CassandraWriteAheadSink) on the two-phase sink framework.
//! It speaks CQL through ScyllaDB's Rust driver (`scylla`), which talks Cassandra's native
//! protocol v4.
//!
//! - [`row`]: CQL values and rows ([`CqlRow`]), tuples as rows, coercion to column types.
//! - [`mapper`]: records to rows: closures, [`positional`] tuples, [`CassandraEntity`] structs.
//! - [`statement`]: the user's statement, or an INSERT generated from table and columns.
//! - [`sink`]: the sink, its builder and the failure and malformed-record handlers.
//! - `executor`: one writer's session and its bounded asynchronous requests with retries.
//!   Depends on `row`, `metrics`.
//! - `writer`: the at-least-once writer. Depends on `executor`, `mapper`.
//! - [`wal`]: the write-ahead sink. Depends on `executor`, `writer`, `committer`.
//! - [`committer`]: the table of committed checkpoints (Flink's `CassandraCommitter`).
//! - `metrics`: the writers' counters.
//! - [`error`]: the crate's error enum.

pub mod committer;
pub mod error;
pub mod mapper;
pub mod row;
pub mod sink;
pub mod statement;
pub mod wal;

mod executor;
mod metrics;
mod writer;

pub use error::CassandraSinkError;
pub use mapper::{CassandraEntity, CassandraMapper, positional};
pub use metrics::METRIC_PREFIX;
pub use row::{CqlRow, CqlValue, ToCqlRow, ToCqlValue, timestamp};
pub use sink::{CassandraSink, CassandraSinkBuilder, Consistency, OnFailure, OnMalformed};
pub use wal::CassandraWriteAheadSink;
