//! The record a deserializer sees.

use bytes::Bytes;

/// A record read from Kafka, as a deserializer sees it (Flink's `ConsumerRecord<byte[],
/// byte[]>`): borrowed, so looking at it costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct KafkaRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record timestamp (create or log-append time), ms since the epoch.
    pub timestamp: i64,
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers in order (a name may repeat).
    pub headers: &'a [(String, Option<Bytes>)],
}

impl KafkaRecord<'_> {
    /// The value of the last header named `name` (Kafka's `Headers.lastHeader`); `Some(None)`
    /// for a header without value.
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// Where the record is, for messages: `topic-partition@offset`.
    pub fn position(&self) -> String {
        format!("{}-{}@{}", self.topic, self.partition, self.offset)
    }

    /// An owned copy of everything.
    pub fn to_owned(&self) -> ConsumedRecord {
        ConsumedRecord {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.as_ref().map(|b| b.to_vec())))
                .collect(),
        }
    }
}

/// An owned Kafka record with all its metadata: what [`RecordDeserializer`] emits.
///
/// [`RecordDeserializer`]: crate::format::RecordDeserializer
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record timestamp, ms since the epoch.
    pub timestamp: i64,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}
