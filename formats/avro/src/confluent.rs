//! Avro in the Confluent wire format: [`ConfluentEncoder`] registers its writer schema under a
//! subject (once; the id is cached) and frames each datum with the id; [`ConfluentDecoder`]
//! reads the id of each record, fetches that writer schema from the registry (once per id) and
//! decodes the datum, resolved to its reader schema when it has one. The typed Kafka formats
//! [`ConfluentAvroSerializer`] / [`ConfluentAvroDeserializer`] are Flink's
//! `ConfluentRegistryAvroSerializationSchema` / `ConfluentRegistryAvroDeserializationSchema`.

use crate::datum::{decode_value, encode_value, from_value, parse_schema, to_value};
use crate::error::AvroError;
use crate::registry::SchemaRegistryClient;
use crate::wire;
use apache_avro::Schema;
use apache_avro::types::Value;
use fjord::BoxError;
use fjord_kafka::format::{BytesFormat, SerializationFormat};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

/// Writes Avro values in the wire format with one writer schema, registered under a subject.
#[derive(Debug)]
pub struct ConfluentEncoder {
    client: Arc<SchemaRegistryClient>,
    subject: String,
    schema: Arc<Schema>,
    id: OnceLock<u32>,
}

impl ConfluentEncoder {
    /// Writes with `schema`, registered under `subject` (`<topic>-value` by the
    /// TopicNameStrategy, [`crate::registry::topic_subject`]) at the first record.
    pub fn new(
        client: Arc<SchemaRegistryClient>,
        subject: impl Into<String>,
        schema: Schema,
    ) -> Self {
        ConfluentEncoder {
            client,
            subject: subject.into(),
            schema: Arc::new(schema),
            id: OnceLock::new(),
        }
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The writer schema's id, registering it on first use.
    ///
    /// # Errors
    /// [`AvroError::Registry`]: the registry cannot be reached or refuses the schema.
    pub fn schema_id(&self) -> Result<u32, AvroError> {
        if let Some(id) = self.id.get() {
            return Ok(*id);
        }
        let id = self.client.register(&self.subject, &self.schema)?;
        Ok(*self.id.get_or_init(|| id))
    }

    /// One value in the wire format.
    ///
    /// # Errors
    /// [`AvroError::Encode`] for a value that does not fit the schema; the errors of
    /// [`schema_id`](Self::schema_id).
    pub fn encode_value(&self, value: Value) -> Result<Vec<u8>, AvroError> {
        let datum = encode_value(&self.schema, value)?;
        self.frame(&datum)
    }

    /// A datum already encoded in the writer schema, framed with the schema's id.
    ///
    /// # Errors
    /// The errors of [`schema_id`](Self::schema_id).
    pub fn frame(&self, datum: &[u8]) -> Result<Vec<u8>, AvroError> {
        Ok(wire::frame(self.schema_id()?, datum))
    }
}

/// Reads Avro values in the wire format, each with the writer schema its id names.
#[derive(Debug, Clone)]
pub struct ConfluentDecoder {
    client: Arc<SchemaRegistryClient>,
    reader: Option<Arc<Schema>>,
    /// Per schema id: whether the writer schema is the reader schema (then the datum is read
    /// as written, without a resolution pass).
    same_as_reader: Arc<Mutex<HashMap<u32, bool>>>,
}

impl ConfluentDecoder {
    /// Reads values as they were written.
    pub fn new(client: Arc<SchemaRegistryClient>) -> Self {
        ConfluentDecoder {
            client,
            reader: None,
            same_as_reader: Arc::default(),
        }
    }

    /// Resolves each value to `reader` (the job's schema) from whichever schema wrote it.
    pub fn with_reader_schema(mut self, reader: Schema) -> Self {
        self.reader = Some(Arc::new(reader));
        self
    }

    /// One record's value.
    ///
    /// # Errors
    /// [`AvroError::WireFormat`] for bytes not in the wire format,
    /// [`AvroError::UnknownSchemaId`] / [`AvroError::Registry`] when the writer schema cannot
    /// be had, [`AvroError::Decode`] for a datum that does not decode or resolve.
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, AvroError> {
        let (id, datum) = wire::unframe(bytes)?;
        let writer = self.client.schema_by_id(id)?;
        let reader = self.reader.as_deref().filter(|reader| {
            let same = *self.same_as_reader.lock().entry(id).or_insert_with(|| {
                crate::registry::schema_json(reader) == crate::registry::schema_json(&writer)
            });
            !same
        });
        decode_value(&writer, reader, datum).map_err(|e| match e {
            AvroError::Decode(m) => AvroError::Decode(format!("(writer schema id {id}) {m}")),
            other => other,
        })
    }
}

/// Serde values in the wire format (Flink's `ConfluentRegistryAvroSerializationSchema`): a
/// Kafka key or value format.
pub struct ConfluentAvroSerializer<T> {
    encoder: Arc<ConfluentEncoder>,
    _t: PhantomData<fn(&T)>,
}

impl<T> Clone for ConfluentAvroSerializer<T> {
    fn clone(&self) -> Self {
        ConfluentAvroSerializer {
            encoder: self.encoder.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> ConfluentAvroSerializer<T> {
    /// Writes with the schema of this JSON text, registered under `subject` in `client`'s
    /// registry.
    ///
    /// # Errors
    /// [`AvroError::Schema`] for a schema that does not parse.
    pub fn new(
        client: Arc<SchemaRegistryClient>,
        subject: impl Into<String>,
        schema_json: &str,
    ) -> Result<Self, AvroError> {
        Ok(ConfluentAvroSerializer {
            encoder: Arc::new(ConfluentEncoder::new(
                client,
                subject,
                parse_schema(schema_json)?,
            )),
            _t: PhantomData,
        })
    }

    /// The encoder underneath (schema, id).
    pub fn encoder(&self) -> &ConfluentEncoder {
        &self.encoder
    }
}

impl<T: Serialize> ConfluentAvroSerializer<T> {
    /// One value in the wire format.
    ///
    /// # Errors
    /// As [`ConfluentEncoder::encode_value`].
    pub fn to_bytes(&self, value: &T) -> Result<Vec<u8>, AvroError> {
        self.encoder.encode_value(to_value(value)?)
    }
}

impl<T: Serialize + 'static> SerializationFormat<T> for ConfluentAvroSerializer<T> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(self.to_bytes(value)?)
    }
}

/// Serde values from the wire format (Flink's `ConfluentRegistryAvroDeserializationSchema`):
/// a Kafka key or value format.
pub struct ConfluentAvroDeserializer<T> {
    decoder: ConfluentDecoder,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ConfluentAvroDeserializer<T> {
    fn clone(&self) -> Self {
        ConfluentAvroDeserializer {
            decoder: self.decoder.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> ConfluentAvroDeserializer<T> {
    /// Reads values with the writer schema each names, from `client`'s registry.
    pub fn new(client: Arc<SchemaRegistryClient>) -> Self {
        ConfluentAvroDeserializer {
            decoder: ConfluentDecoder::new(client),
            _t: PhantomData,
        }
    }

    /// Resolves each value to the schema of this JSON text.
    ///
    /// # Errors
    /// [`AvroError::Schema`] for a schema that does not parse.
    pub fn reader_schema(mut self, reader_schema_json: &str) -> Result<Self, AvroError> {
        self.decoder = self
            .decoder
            .with_reader_schema(parse_schema(reader_schema_json)?);
        Ok(self)
    }
}

impl<T: DeserializeOwned> ConfluentAvroDeserializer<T> {
    /// The value of one record.
    ///
    /// # Errors
    /// As [`ConfluentDecoder::decode_value`], and [`AvroError::Decode`] for a value that
    /// does not fit `T`.
    pub fn from_bytes(&self, bytes: &[u8]) -> Result<T, AvroError> {
        from_value(&self.decoder.decode_value(bytes)?)
    }
}

impl<T: DeserializeOwned + 'static> BytesFormat<T> for ConfluentAvroDeserializer<T> {
    fn parse(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(self.from_bytes(bytes)?)
    }
}
