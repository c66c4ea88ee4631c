//! The Nexmark benchmark on Fjord, side by side with Apache Flink (docs/nexmark.md).
//!
//! - [`config`]: the generator's keys (those of the Flink benchmark: `events.num`, `tps`, ...).
//! - [`rng`]: the per-event random numbers that make the events a function of seed and id.
//! - [`model`]: persons, auctions, bids and the timestamp text.
//! - [`generator`]: event number → event (depends on `config`, `model`, `rng`).
//! - [`json`]: events as JSON lines in the layout Flink SQL's `json` format reads;
//!   [`json_scan`] reads that exact layout fast (other JSON goes to `serde_json`).
//! - [`source`]: the events of a job — generator source or event files — and writing the files.
//! - [`queries`]: q0–q22 (those implemented) as DataStream jobs, registered as `nexmark-qN`;
//!   the queries of [`auction_bids`], [`projections`], [`stats`] and [`ranking`] are listed
//!   there too (these modules depend on `queries` for the event streams, `queries` on them
//!   for the registry).
//! - [`changelog`]: the changelog rows of updating results (`+I`, `-U`, `+U`, `-D`).
//! - [`to_kafka`]: the job `nexmark-to-kafka`, the events into a Kafka topic.
//! - [`sql`]: the queries' SQL texts on `fjord-sql`, over the benchmark's table and views.
//! - [`compare`]: compares two engines' result rows (sorted, timestamps and decimals
//!   normalized; changelogs by the table they leave).

pub mod auction_bids;
pub mod changelog;
pub mod compare;
pub mod config;
pub mod error;
pub mod generator;
pub mod json;
pub mod json_scan;
pub mod model;
pub mod projections;
pub mod queries;
pub mod ranking;
pub mod rng;
pub mod source;
pub mod sql;
pub mod stats;
pub mod to_kafka;

pub use config::NexmarkConfig;
pub use error::NexmarkError;
pub use generator::Generator;
pub use model::{Auction, Bid, Event, Person};
pub use queries::{QUERIES, UPDATING, build_job, is_updating, query, register, upsert_key};
pub use source::{events, write_files};
