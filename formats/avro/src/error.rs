//! The crate's error enum.

/// What went wrong reading or writing Avro, or talking to a schema registry.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    /// A schema that does not parse.
    #[error("invalid Avro schema: {0}")]
    Schema(String),
    /// An `avro.codec` Fjord does not write.
    #[error("unsupported Avro codec: {0}")]
    Codec(String),
    /// A value that does not fit the writer schema.
    #[error("cannot write the value in the Avro schema: {0}")]
    Encode(String),
    /// Bytes that are not a datum of the writer schema (or do not resolve to the reader
    /// schema, or do not fit the Rust type asked for).
    #[error("malformed Avro record: {0}")]
    Decode(String),
    /// Bytes that are not in the Confluent wire format (magic byte 0, 4-byte schema id).
    #[error(
        "not in the Confluent schema-registry wire format ({0}); was it written by an 'avro-confluent' serializer? Plain Avro is read with the 'avro' format"
    )]
    WireFormat(String),
    /// A schema id the registry does not know (deleted, or another registry's).
    #[error(
        "schema id {id} is not known to the schema registry at {url}: the record was written with another registry, or its schema was deleted; point the format at the registry the producer used"
    )]
    UnknownSchemaId {
        /// The registry's URL.
        url: String,
        /// The id in the record.
        id: u32,
    },
    /// The registry refused a request or could not be reached.
    #[error("schema registry at {url}: {message}")]
    Registry {
        /// The registry's URL.
        url: String,
        /// What happened and what to do.
        message: String,
    },
}
