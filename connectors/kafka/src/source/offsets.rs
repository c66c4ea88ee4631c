//! Where readers start and stop in a partition (Flink's `OffsetsInitializer`).

use crate::client::TopicPartition;
use std::collections::BTreeMap;

/// Where a reset goes when a group has no committed offset for a partition (Kafka's
/// `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The first offset still in the log.
    Earliest,
    /// The end of the log.
    Latest,
}

/// Where readers start in the partitions found at the first discovery of a fresh run (Flink's
/// `OffsetsInitializer`). Partitions discovered later, and any partition not in a restored
/// checkpoint, start at the earliest offset (as in Flink: they are new, nothing of them was
/// read). A restored job continues from its checkpoint, whatever is set here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OffsetsInitializer {
    /// The first offset still in the log (the default, as in Flink).
    #[default]
    Earliest,
    /// The end of the log: only records written from now on.
    Latest,
    /// The consumer group's committed offset (needs a group id); where there is none, `reset`.
    Committed {
        /// Where to go without a committed offset.
        reset: OffsetReset,
    },
    /// The first record with timestamp `>=` this (ms since the epoch); the end of the log
    /// where every record is older.
    Timestamp(i64),
    /// These offsets; partitions not in the map start at the group's committed offset if
    /// there is a group id and one is committed, else at the earliest offset (as Flink's
    /// `OffsetsInitializer.offsets(map)`).
    Offsets(BTreeMap<TopicPartition, i64>),
}

/// Where a bounded source stops (Flink's `setBounded`): each partition is read up to, not
/// including, its stopping offset, then the reader finishes once all its partitions did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoppingOffsets {
    /// The end of each partition when the reader first sees it (read_committed: its last
    /// stable offset).
    Latest,
    /// These offsets; partitions not in the map stop at their end when first seen, as with
    /// `Latest`.
    Offsets(BTreeMap<TopicPartition, i64>),
}
