//! Per-partition watermarks: the engine's split-local watermark generation
//! ([`fjord::sources::SplitWatermarks`], Flink's `WatermarkOutputMultiplexer`) keyed by
//! partition; a record's own timestamp is the Kafka record timestamp.

use crate::client::TopicPartition;

pub(crate) use fjord::sources::WatermarkUpdate as Update;

/// The watermark generators of a reader's partitions.
pub(crate) type SplitWatermarks<T> = fjord::sources::SplitWatermarks<TopicPartition, T>;
