//! Record types that flow through a job: the `Data` bound, stream records and time.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;

/// Event time: milliseconds since the Unix epoch, as in Flink.
pub type Timestamp = i64;

/// The watermark that means "no more records will ever come" (Flink's `Long.MAX_VALUE`).
pub const MAX_WATERMARK: Timestamp = i64::MAX;

/// The watermark before any record has been seen (Flink's `Long.MIN_VALUE`).
pub const MIN_WATERMARK: Timestamp = i64::MIN;

/// The bound every record type must meet.
///
/// Records are moved between chained operators as plain values, cloned only when a stream is
/// consumed more than once, and serialized (with serde) only when they cross a process boundary
/// or go into a snapshot.
pub trait Data: Clone + Send + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Serialize + DeserializeOwned + 'static> Data for T {}

/// The bound for keys of a [`KeyedStream`](crate::KeyedStream).
///
/// Keys are hashed with a stable hash (see [`crate::keygroup`]) so that a key lands in the same
/// key group in every process and every run.
pub trait Key: Data + Hash + Eq + std::fmt::Debug {}
impl<T: Data + Hash + Eq + std::fmt::Debug> Key for T {}

/// A record with its optional event-time timestamp (Flink's `StreamRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StreamRecord<T> {
    /// The user's value.
    pub value: T,
    /// Event time in milliseconds since the epoch, if one was assigned.
    pub timestamp: Option<Timestamp>,
}

impl<T> StreamRecord<T> {
    /// A record without timestamp.
    #[inline]
    pub fn new(value: T) -> Self {
        StreamRecord {
            value,
            timestamp: None,
        }
    }

    /// A record with an event-time timestamp.
    #[inline]
    pub fn with_timestamp(value: T, timestamp: Timestamp) -> Self {
        StreamRecord {
            value,
            timestamp: Some(timestamp),
        }
    }

    /// A new record with another value and the same timestamp.
    #[inline]
    pub fn replace<U>(&self, value: U) -> StreamRecord<U> {
        StreamRecord {
            value,
            timestamp: self.timestamp,
        }
    }
}
