//! One Avro datum — the binary encoding of one value, without the header of an Avro container
//! file — from a value and back, as a Kafka record key or value holds it.
//!
//! Writing resolves the value against the writer schema first (so a serde `i32` fills a
//! `long` field and `Option` fills a `["null", T]` union), then encodes it. Reading decodes
//! with the writer schema and, given a reader schema, resolves the datum to it (Avro's schema
//! evolution rules); every byte must be consumed, or the record is malformed.

use crate::error::AvroError;
use apache_avro::Schema;
use apache_avro::types::Value;
use fjord::BoxError;
use fjord_kafka::format::{BytesFormat, SerializationFormat};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;

/// Parses a schema from its JSON text.
///
/// # Errors
/// [`AvroError::Schema`] naming what does not parse.
pub fn parse_schema(json: &str) -> Result<Schema, AvroError> {
    Schema::parse_str(json).map_err(|e| AvroError::Schema(e.to_string()))
}

/// The datum of `value` in `schema`.
///
/// # Errors
/// [`AvroError::Encode`] when the value does not fit the schema (a missing field, a string
/// for an int, a decimal wider than its precision), naming the schema's complaint.
pub fn encode_value(schema: &Schema, value: Value) -> Result<Vec<u8>, AvroError> {
    let resolved = value
        .resolve(schema)
        .map_err(|e| AvroError::Encode(e.to_string()))?;
    apache_avro::to_avro_datum(schema, resolved).map_err(|e| AvroError::Encode(e.to_string()))
}

/// The datum of `value`, which is already in `schema`'s shape (each union branch chosen, each
/// logical type as its own variant: what a converter from another data model builds), without
/// resolving it first. Checked against the schema all the same.
///
/// # Errors
/// [`AvroError::Encode`] when the value does not match the schema.
pub fn encode_exact(schema: &Schema, value: Value) -> Result<Vec<u8>, AvroError> {
    apache_avro::to_avro_datum(schema, value).map_err(|e| AvroError::Encode(e.to_string()))
}

/// The value of a datum written in `writer`, resolved to `reader` when given.
///
/// # Errors
/// [`AvroError::Decode`] for bytes that are not a datum of `writer` (truncated, a bad union
/// index, invalid UTF-8, bytes left over after the datum) or that do not resolve to `reader`.
pub fn decode_value(
    writer: &Schema,
    reader: Option<&Schema>,
    bytes: &[u8],
) -> Result<Value, AvroError> {
    let mut rest = bytes;
    let value = apache_avro::from_avro_datum(writer, &mut rest, None)
        .map_err(|e| AvroError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(AvroError::Decode(format!(
            "{} bytes left after a datum of {} bytes: the record was not written with this schema",
            rest.len(),
            bytes.len() - rest.len()
        )));
    }
    // apache-avro reads a string or bytes value cut short by the end of the input as null
    // (for old files); such a value does not validate against the writer schema.
    if !value.validate(writer) {
        return Err(AvroError::Decode(format!(
            "the datum of {} bytes ends inside a value: the record is truncated or was not written with this schema",
            bytes.len()
        )));
    }
    match reader {
        None => Ok(value),
        Some(reader) => value
            .resolve(reader)
            .map_err(|e| AvroError::Decode(format!("cannot resolve to the reader schema: {e}"))),
    }
}

/// A serde value as its Avro [`Value`] in `schema`.
pub(crate) fn to_value<T: Serialize>(value: &T) -> Result<Value, AvroError> {
    apache_avro::to_value(value).map_err(|e| AvroError::Encode(e.to_string()))
}

/// An Avro [`Value`] as a serde type.
pub(crate) fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, AvroError> {
    apache_avro::from_value::<T>(value).map_err(|e| {
        AvroError::Decode(format!(
            "the datum does not fit {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Serde values as Avro datums in a writer schema (Flink's `AvroSerializationSchema`): a Kafka
/// key or value format.
///
/// ```
/// use fjord_avro::AvroSerializer;
/// #[derive(serde::Serialize)]
/// struct Order { id: i64, item: String }
/// let orders = AvroSerializer::<Order>::new(r#"{"type": "record", "name": "Order",
///     "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]}"#)?;
/// # Ok::<(), fjord_avro::AvroError>(())
/// ```
pub struct AvroSerializer<T> {
    schema: Arc<Schema>,
    _t: PhantomData<fn(&T)>,
}

impl<T> Clone for AvroSerializer<T> {
    fn clone(&self) -> Self {
        AvroSerializer {
            schema: self.schema.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for AvroSerializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroSerializer")
            .field("schema", &self.schema.canonical_form())
            .finish()
    }
}

impl<T> AvroSerializer<T> {
    /// Writes with the schema of this JSON text.
    ///
    /// # Errors
    /// [`AvroError::Schema`] for a schema that does not parse.
    pub fn new(schema_json: &str) -> Result<Self, AvroError> {
        Ok(Self::with_schema(parse_schema(schema_json)?))
    }

    /// Writes with `schema`.
    pub fn with_schema(schema: Schema) -> Self {
        AvroSerializer {
            schema: Arc::new(schema),
            _t: PhantomData,
        }
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
}

impl<T: Serialize> AvroSerializer<T> {
    /// The datum of `value`.
    ///
    /// # Errors
    /// [`AvroError::Encode`] when the value does not fit the schema.
    pub fn to_bytes(&self, value: &T) -> Result<Vec<u8>, AvroError> {
        encode_value(&self.schema, to_value(value)?)
    }
}

impl<T: Serialize + 'static> SerializationFormat<T> for AvroSerializer<T> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(self.to_bytes(value)?)
    }
}

/// Avro datums as serde values (Flink's `AvroDeserializationSchema`): decoded with the writer
/// schema, resolved to the reader schema when one is set. A Kafka key or value format.
pub struct AvroDeserializer<T> {
    writer: Arc<Schema>,
    reader: Option<Arc<Schema>>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for AvroDeserializer<T> {
    fn clone(&self) -> Self {
        AvroDeserializer {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for AvroDeserializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDeserializer")
            .field("writer", &self.writer.canonical_form())
            .field("reader", &self.reader.as_ref().map(|r| r.canonical_form()))
            .finish()
    }
}

impl<T> AvroDeserializer<T> {
    /// Reads datums written in the schema of this JSON text.
    ///
    /// # Errors
    /// [`AvroError::Schema`] for a schema that does not parse.
    pub fn new(writer_schema_json: &str) -> Result<Self, AvroError> {
        Ok(Self::with_schema(parse_schema(writer_schema_json)?))
    }

    /// Reads datums written in `writer`.
    pub fn with_schema(writer: Schema) -> Self {
        AvroDeserializer {
            writer: Arc::new(writer),
            reader: None,
            _t: PhantomData,
        }
    }

    /// Resolves each datum to the schema of this JSON text (the job's view of the data: fields
    /// it added with defaults, fields it no longer reads).
    ///
    /// # Errors
    /// [`AvroError::Schema`] for a schema that does not parse.
    pub fn reader_schema(mut self, reader_schema_json: &str) -> Result<Self, AvroError> {
        self.reader = Some(Arc::new(parse_schema(reader_schema_json)?));
        Ok(self)
    }
}

impl<T: DeserializeOwned> AvroDeserializer<T> {
    /// The value of one datum.
    ///
    /// # Errors
    /// [`AvroError::Decode`] for malformed bytes or a datum that does not fit `T`.
    pub fn from_bytes(&self, bytes: &[u8]) -> Result<T, AvroError> {
        let value = decode_value(&self.writer, self.reader.as_deref(), bytes)?;
        from_value(&value)
    }
}

impl<T: DeserializeOwned + 'static> BytesFormat<T> for AvroDeserializer<T> {
    fn parse(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(self.from_bytes(bytes)?)
    }
}
