//! ActiveMQ connector for Fjord, speaking STOMP 1.2 (ActiveMQ Classic's `stomp://` transport
//! connector) with a small client of its own on tokio, with the semantics of Flink's
//! `RMQSource`/`RMQSink` (which Bahir's `AMQSource`/`AMQSink` follow for ActiveMQ).
//!
//! - [`source`]: [`AmqSource`](source::AmqSource): consumes a queue with
//!   `ack:client-individual`, acknowledges messages only when the checkpoint covering them
//!   completes, and with deduplication (by message id or correlation id) drops redelivered
//!   messages it already processed: exactly-once with a checkpointed job. Depends on `acks`,
//!   `session`.
//! - [`sink`]: [`AmqSink`](sink::AmqSink): sends with `receipt` headers and waits for every
//!   receipt before each checkpoint barrier (at-least-once). Depends on `session`.
//! - `acks`: the source's bookkeeping of ack handles and ids per checkpoint (a pure state
//!   machine, unit-tested without a broker).
//! - `session`: one connection on a small tokio runtime of its own, so the synchronous reader
//!   and writer can drive the asynchronous client. Depends on `client`.
//! - `client`: the STOMP client: login, heart-beats, a reading task turning frames into
//!   events. Depends on `frame`, `address`.
//! - `frame`: STOMP frames and their wire format (pure).
//! - `address`: the broker's `stomp://` address.
//! - [`error`]: the crate's error enum.

pub mod error;
pub mod sink;
pub mod source;

mod acks;
mod address;
mod client;
mod frame;
mod session;

pub use error::ActiveMqError;
pub use sink::{AmqSink, AmqSinkBuilder};
pub use source::{AmqSource, AmqSourceBuilder, DedupeBy, OnMalformed};
