//! Formats: Kafka records to values (deserialization, what the source uses) and values to
//! Kafka records (serialization, what the sink uses).
//!
//! - [`record`]: [`KafkaRecord`], the view of a consumed record a deserializer gets (key,
//!   value, headers, timestamp, topic, partition, offset).
//! - [`deserialize`]: the [`KafkaDeserializer`] trait, the byte formats (raw bytes, UTF-8,
//!   JSON, CSV) and how to combine them (value only, key and value, whole record, closures).
//! - [`serialize`]: the [`SerializationFormat`] trait the sink writes keys and values with
//!   (the same raw bytes, UTF-8 and JSON formats, [`CsvRow`], closures, [`project`]).

pub mod deserialize;
pub mod record;
pub mod serialize;

pub use deserialize::{
    BytesFormat, Csv, FnDeserializer, Json, KafkaDeserializer, KeyValue, RawBytes,
    RecordDeserializer, Utf8, ValueOnly, from_fn, key_value, value_only,
};
pub use record::{ConsumedRecord, KafkaRecord};
pub use serialize::{CsvRow, Projected, SerializationFormat, project};
