//! Elasticsearch/OpenSearch connector for Fjord: [`ElasticsearchSink`](sink::ElasticsearchSink),
//! Flink's Elasticsearch sink on Fjord's `Sink` trait, speaking the REST bulk API (`_bulk`,
//! NDJSON) that Elasticsearch 7/8 and OpenSearch 1/2 share.
//!
//! - [`action`]: what one record becomes: [`DocAction`]s (index, upsert, delete) made by an
//!   [`Emitter`]: a closure, or a [`JsonEmitter`] taking index and id from fields.
//! - [`backoff`]: the retry policy ([`Backoff`]).
//! - [`failure`]: what happens to refused actions ([`FailureHandler`]).
//! - [`sink`]: the sink and its builder (hosts, flushing, auth, TLS). Depends on all above.
//! - `writer`: the writer of one parallel instance: the bulk request being filled, flushed on
//!   count, size, time and before every checkpoint barrier, retried. Depends on `bulk`,
//!   `client`, `metrics`.
//! - `bulk`: encoded actions and the parsing of bulk responses.
//! - `client`: one writer's HTTP client (reqwest on a runtime of its own).
//! - `metrics`: the writer's counters.
//! - [`error`]: the crate's error enum.
//!
//! The sink is at-least-once (every checkpoint waits for the cluster's answer to every action
//! sent before it); with document ids from the record, replays rewrite the same documents and
//! the index ends exactly as without failure.

pub mod action;
pub mod backoff;
pub mod error;
pub mod failure;
pub mod sink;

mod bulk;
mod client;
mod metrics;
mod writer;

pub use action::{ActionKind, DocAction, Emitter, IndexName, JsonEmitter};
pub use backoff::{Backoff, BackoffStrategy};
pub use error::ElasticsearchError;
pub use failure::FailureHandler;
pub use metrics::METRIC_PREFIX;
pub use sink::{ElasticsearchSink, ElasticsearchSinkBuilder, OnMalformed};
