//! PostgreSQL connector for Fjord: Flink's JDBC connector for PostgreSQL on Fjord's `Sink`
//! trait and as a lookup for joins, over the PostgreSQL wire protocol in pure Rust
//! (`tokio-postgres`, no libpq).
//!
//! - [`value`]: the SQL values the connector moves ([`PgValue`]: integers, floats, booleans,
//!   text, bytes, NUMERIC as text, TIMESTAMP as epoch milliseconds, DATE as epoch days), their
//!   column types ([`PgType`]) and the rows lookups return ([`PgRow`], [`PgColumn`]).
//! - [`action`]: what one record becomes: [`PgAction`]s (upsert, delete) made by a
//!   [`PgEmitter`] (a closure).
//! - [`statement`]: the SQL text of upserts, inserts, deletes and lookups (quoted identifiers).
//! - [`backoff`]: the retry policy ([`Backoff`]) for connection errors.
//! - [`sink`]: the sink and its builder. Depends on `action`, `backoff`, `statement`, `writer`.
//! - [`lookup`]: [`PostgresLookup`] (key values in, matching rows out, with an optional
//!   [`LookupCache`]) and [`LookupJoin`], a `FlatMapFunction` that joins a stream with it.
//!   Depends on `cache`, `client`, `statement`, `value`.
//! - `writer`: the writer of one parallel instance: a batch reduced by key, written in one
//!   transaction on count, time and before every checkpoint barrier, retried. Depends on
//!   `client`, `metrics`.
//! - `client`: one connection, driven from the caller's (synchronous) thread on a
//!   single-threaded tokio runtime of its own; errors sorted into transient (reconnect and
//!   retry) and permanent (fail, with a message saying what to do).
//! - `cache`: the lookup's partial cache (LRU, expiry after write).
//! - `metrics`: the writer's and the lookup's counters.
//! - [`error`]: the crate's error enum.
//!
//! The sink with key columns writes `INSERT ... ON CONFLICT (key) DO UPDATE` and `DELETE ...
//! WHERE key = ...`: every checkpoint waits for the server's commit of everything before it
//! (at-least-once), and a replay after a failure writes the same final row for every key, so
//! the table ends exactly as without failure (**exactly-once results**). Without key columns it
//! appends (plain `INSERT`), at-least-once.

pub mod action;
pub mod backoff;
pub mod error;
pub mod lookup;
pub mod sink;
pub mod statement;
pub mod value;

mod cache;
mod client;
mod metrics;
mod writer;

pub use action::{PgAction, PgEmitter};
pub use backoff::Backoff;
pub use error::PostgresError;
pub use lookup::{LookupCache, LookupJoin, LookupStats, PostgresLookup, PostgresLookupBuilder};
pub use metrics::{LOOKUP_METRIC_PREFIX, SINK_METRIC_PREFIX};
pub use sink::{OnMalformed, PostgresSink, PostgresSinkBuilder};
pub use value::{PgColumn, PgRow, PgType, PgValue};
