//! Records as the source reads them and the (de)serializers that turn them into values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// One record read from a shard, as the source's deserializer sees it.
#[derive(Debug, Clone, Copy)]
pub struct KinesisRecord<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The shard.
    pub shard_id: &'a str,
    /// Its sequence number.
    pub sequence_number: &'a str,
    /// The partition key it was put with.
    pub partition_key: &'a str,
    /// Its payload.
    pub data: &'a [u8],
    /// When Kinesis received it (ms since the epoch); the default event time.
    pub arrival_timestamp: i64,
}

impl KinesisRecord<'_> {
    /// Where it is, for messages: `stream/shard@sequence`.
    pub fn position(&self) -> String {
        format!(
            "Kinesis stream {} shard {} sequence number {}",
            self.stream, self.shard_id, self.sequence_number
        )
    }
}

/// Turns a record into a value: `Ok(None)` drops it, `Err` is a malformed record (the
/// source's [`OnMalformed`](crate::OnMalformed) decides).
pub type Deserializer<T> =
    Arc<dyn Fn(&KinesisRecord<'_>) -> Result<Option<T>, String> + Send + Sync>;

/// Turns a value into a record's payload; `Err` is a malformed value.
pub type Serializer<T> = Arc<dyn Fn(&T) -> Result<Vec<u8>, String> + Send + Sync>;

/// Chooses a value's partition key.
pub type PartitionKeyFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

/// A deserializer reading the payload as JSON into `T`.
pub fn json_deserializer<T: DeserializeOwned + 'static>() -> Deserializer<T> {
    Arc::new(|r: &KinesisRecord<'_>| {
        serde_json::from_slice(r.data)
            .map(Some)
            .map_err(|e| format!("not JSON of the expected shape: {e}"))
    })
}

/// A deserializer reading the payload as UTF-8 text.
pub fn string_deserializer() -> Deserializer<String> {
    Arc::new(|r: &KinesisRecord<'_>| {
        String::from_utf8(r.data.to_vec())
            .map(Some)
            .map_err(|e| format!("not UTF-8: {e}"))
    })
}

/// A serializer writing `T` as JSON.
pub fn json_serializer<T: Serialize + 'static>() -> Serializer<T> {
    Arc::new(|v: &T| serde_json::to_vec(v).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &[u8]) -> KinesisRecord<'_> {
        KinesisRecord {
            stream: "s",
            shard_id: "shardId-000000000000",
            sequence_number: "1",
            partition_key: "k",
            data,
            arrival_timestamp: 0,
        }
    }

    #[test]
    fn json_round_trip_and_malformed() {
        let ser = json_serializer::<(String, i64)>();
        let bytes = ser(&("a".into(), 7)).unwrap();
        let de = json_deserializer::<(String, i64)>();
        assert_eq!(de(&record(&bytes)).unwrap(), Some(("a".into(), 7)));
        let err = de(&record(b"{bad")).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        assert!(string_deserializer()(&record(&[0xff])).is_err());
        assert!(record(b"").position().contains("shardId-000000000000"));
    }
}
