//! # fjord-avro
//!
//! [Apache Avro](https://avro.apache.org/) for Fjord, on the `apache-avro` crate: the formats
//! Flink's `flink-avro` and `flink-avro-confluent-registry` give a Kafka job, and Avro
//! container files for the exactly-once file sink.
//!
//! - [`datum`]: one Avro datum (no container file header) from a value and back: a serde
//!   type or an [`apache_avro::types::Value`] encoded with a writer schema, decoded with the
//!   writer schema and an optional reader schema (Avro's schema resolution: fields added with
//!   defaults, fields dropped, ints widened). [`AvroSerializer`] and [`AvroDeserializer`] are
//!   Kafka key/value formats (Flink's `AvroSerializationSchema` / `AvroDeserializationSchema`).
//! - [`wire`]: the Confluent schema-registry wire format: magic byte 0, the schema id as a
//!   4-byte big-endian integer, the Avro datum.
//! - [`registry`]: [`SchemaRegistryClient`], a small blocking client of the Confluent
//!   schema-registry REST API (register a schema under a subject, look an id up, fetch a
//!   writer schema by id), caching ids and schemas as Confluent's `CachedSchemaRegistryClient`.
//!   Subjects by the TopicNameStrategy ([`registry::topic_subject`]).
//! - [`confluent`]: [`ConfluentEncoder`] / [`ConfluentDecoder`] (values in the wire format,
//!   registering the writer schema, decoding with the schema the id names) and the Kafka
//!   formats on them, [`ConfluentAvroSerializer`] / [`ConfluentAvroDeserializer`] (Flink's
//!   `ConfluentRegistryAvro(De)SerializationSchema`).
//! - [`container`]: Avro object container files, [`AvroFileFormat`], the bulk format of the
//!   exactly-once file sink (Flink's `AvroWriters` and its filesystem `avro` format) with the
//!   codecs null, deflate and snappy, and [`read_file`] to read one back.
//! - [`error`]: [`AvroError`], the crate's error enum.
//!
//! `datum` and `wire` depend on nothing else here; `registry` on `wire` (ids) only;
//! `confluent` on all three; `container` on `datum`.

pub mod confluent;
pub mod container;
pub mod datum;
pub mod error;
pub mod registry;
pub mod wire;

pub use apache_avro::Schema;
pub use apache_avro::types::Value;
pub use confluent::{
    ConfluentAvroDeserializer, ConfluentAvroSerializer, ConfluentDecoder, ConfluentEncoder,
};
pub use container::{AvroFileFormat, Codec, read_file, read_metadata, read_serde};
pub use datum::{
    AvroDeserializer, AvroSerializer, decode_value, encode_exact, encode_value, parse_schema,
};
pub use error::AvroError;
pub use registry::SchemaRegistryClient;
