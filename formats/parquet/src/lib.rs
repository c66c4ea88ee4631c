//! Apache Parquet for Fjord's exactly-once file sink (Flink's `flink-parquet`): a
//! [`BulkFormat`](fjord::sinks::BulkFormat) that writes records as Parquet part files, one
//! file per part, committed with checkpoints by
//! [`ExactlyOnceFileSink::for_format`](fjord::sinks::ExactlyOnceFileSink::for_format).
//!
//! ```no_run
//! use fjord::sinks::{ExactlyOnceFileSink, RollingPolicy};
//! use fjord_parquet::{Column, ColumnType, ParquetFormat, ParquetOptions, ParquetSchema, SerdeRows};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Order {
//!     id: i64,
//!     customer: String,
//! }
//!
//! let schema = ParquetSchema::new(vec![
//!     Column::new("id", ColumnType::BigInt).required(),
//!     Column::new("customer", ColumnType::String),
//! ])?;
//! let format = ParquetFormat::<Order>::new(schema, ParquetOptions::default(), SerdeRows)?;
//! let sink = ExactlyOnceFileSink::for_format("file:///tmp/orders", format)
//!     .with_rolling_policy(RollingPolicy::on_checkpoint().with_part_size(64 << 20));
//! # let _ = sink;
//! # Ok::<(), fjord_parquet::ParquetFormatError>(())
//! ```
//!
//! Modules (each depends only on those above it):
//! - [`error`]: the crate's error enum;
//! - [`schema`]: columns, their types and the Parquet types they are written as (Flink's
//!   type mapping);
//! - [`value`]: the values of a row, and the date and timestamp arithmetic of INT96;
//! - [`options`]: compression, row group and page sizes, timestamp encoding;
//! - [`writer`]: [`ParquetFormat`], the bulk format, and the [`RowMapper`] trait from records
//!   to rows;
//! - [`serde_row`]: [`SerdeRows`], the row mapper of any `Serialize` struct;
//! - [`reader`]: reading files back into rows.
//!
//! Built on the `parquet` crate's low-level column writers and record reader, without its
//! `arrow` feature; codecs are pure Rust (snappy, gzip, LZ4_RAW).

pub mod error;
pub mod options;
pub mod reader;
pub mod schema;
pub mod serde_row;
pub mod value;
pub mod writer;

pub use error::ParquetFormatError;
pub use options::{Codec, ParquetOptions};
pub use reader::{read_columns, read_rows};
pub use schema::{Column, ColumnType, ParquetSchema, TimestampEncoding};
pub use serde_row::SerdeRows;
pub use value::Value;
pub use writer::{ParquetFormat, RowMapper};
