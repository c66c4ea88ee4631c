//! Record types that flow through a job: the `Data` bound, stream records, time and the tags
//! of side outputs.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;
use std::marker::PhantomData;

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

/// Names a side output carrying records of type `X`, selected downstream with
/// `get_side_output`.
///
/// ```
/// use fjord::OutputTag;
/// let rejected: OutputTag<String> = OutputTag::new("rejected");
/// assert_eq!(rejected.id(), "rejected");
/// ```
pub struct OutputTag<X> {
    id: String,
    _t: PhantomData<fn() -> X>,
}

impl<X> OutputTag<X> {
    /// A tag with a job-unique id.
    pub fn new(id: impl Into<String>) -> Self {
        OutputTag {
            id: id.into(),
            _t: PhantomData,
        }
    }

    /// The tag's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<X> Clone for OutputTag<X> {
    fn clone(&self) -> Self {
        OutputTag {
            id: self.id.clone(),
            _t: PhantomData,
        }
    }
}

impl<X> std::fmt::Debug for OutputTag<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputTag({}: {})", self.id, std::any::type_name::<X>())
    }
}
