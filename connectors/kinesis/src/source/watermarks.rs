//! Per-shard watermarks: the engine's split-local watermark generation
//! ([`fjord::sources::SplitWatermarks`], Flink's `WatermarkOutputMultiplexer`) keyed by shard
//! id; a record's own timestamp is its approximate arrival time.

pub(crate) use fjord::sources::WatermarkUpdate as Update;

/// The watermark generators of a reader's shards.
pub(crate) type SplitWatermarks<T> = fjord::sources::SplitWatermarks<String, T>;
