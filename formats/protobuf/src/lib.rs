//! Protocol Buffers for Fjord.
//!
//! Two ways to use protobuf messages:
//! - **Typed**, with the Rust types `prost` generates: [`Protobuf<M>`] is a Kafka key or value
//!   format (Flink's `DeserializationSchema`/`SerializationSchema` of a generated class), for
//!   `KafkaSource` and `KafkaSink` in the DataStream API.
//! - **Dynamic**, from a `.proto` file read at run time: [`MessageSchema`] compiles the file in
//!   Rust (no `protoc` needed) or loads a descriptor set (`protoc --descriptor_set_out`), and
//!   decodes and builds [`DynamicMessage`]s. SQL's `'format' = 'protobuf'` stands on it.
//!
//! `docs/connectors/formats.md` ("Protobuf") is the user's guide.

mod error;
mod schema;
mod typed;

pub use error::ProtobufError;
pub use schema::MessageSchema;
pub use typed::Protobuf;

/// The reflection types dynamic messages are made of (`prost-reflect`).
pub use prost_reflect::{
    DynamicMessage, EnumDescriptor, EnumValueDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    Value,
};
