//! Avro object container files (Flink's `AvroWriters` / the `avro` format of its filesystem
//! connector): [`AvroFileFormat`], a [`BulkFormat`] of the exactly-once file sink writing every
//! part as a complete container file, and [`read_file`] / [`read_serde`] reading one back.
//!
//! A container file is the magic `Obj\x01`, a header (the metadata map with `avro.schema` and
//! `avro.codec`, then a random 16-byte sync marker), and blocks: the number of records, the
//! size of the (compressed) block, the records' datums, the sync marker. A block is closed once
//! its datums reach 64 000 bytes (Java's `DataFileWriter` default sync interval), and at the
//! end of the part. Codecs are the pure-Rust ones of Flink's `avro.codec`: `null`, `deflate`
//! and `snappy` (Flink's default).

use crate::datum::{from_value, parse_schema, to_value};
use crate::error::AvroError;
use apache_avro::types::Value;
use apache_avro::{DeflateSettings, Schema};
use fjord::BoxError;
use fjord::sinks::{BulkFormat, BulkWriter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The block size at which a block is closed (Java's `DataFileWriter.DEFAULT_SYNC_INTERVAL`).
pub const DEFAULT_BLOCK_BYTES: usize = 64_000;

/// The compression of a container file's blocks (Flink's `avro.codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// No compression (`null`).
    Null,
    /// Raw deflate, zlib's default level (`deflate`).
    Deflate,
    /// Snappy with a CRC32 of each block (`snappy`, Flink's default).
    #[default]
    Snappy,
}

/// The codec names [`Codec::from_name`] takes.
pub const CODEC_NAMES: &[&str] = &["null", "deflate", "snappy"];

impl Codec {
    /// The codec of a Flink `avro.codec` value (case-insensitive).
    ///
    /// # Errors
    /// [`AvroError::Codec`] for `bzip2`, `xz` and `zstandard` (they need native libraries
    /// Fjord does not link) and for unknown names, naming the supported ones.
    pub fn from_name(name: &str) -> Result<Self, AvroError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "null" => Ok(Codec::Null),
            "deflate" => Ok(Codec::Deflate),
            "snappy" => Ok(Codec::Snappy),
            other @ ("bzip2" | "xz" | "zstandard" | "zstd") => Err(AvroError::Codec(format!(
                "'{other}' is a codec of Java's Avro that Fjord does not write (it needs a native library); use one of {}",
                CODEC_NAMES.join(", ")
            ))),
            _ => Err(AvroError::Codec(format!(
                "'{name}' is not an Avro codec; use one of {}",
                CODEC_NAMES.join(", ")
            ))),
        }
    }

    /// The name written to the file's `avro.codec`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
            Codec::Snappy => "snappy",
        }
    }

    fn to_avro(self) -> apache_avro::Codec {
        match self {
            Codec::Null => apache_avro::Codec::Null,
            Codec::Deflate => apache_avro::Codec::Deflate(DeflateSettings::default()),
            Codec::Snappy => apache_avro::Codec::Snappy,
        }
    }
}

/// Turns a record into the Avro value of the file's schema.
type ToValue<T> = dyn Fn(&T) -> Result<Value, AvroError> + Send + Sync;

/// Writes records as Avro container files of a schema (Flink's `AvroWriterFactory`): a
/// [`BulkFormat`] for [`ExactlyOnceFileSink::for_format`](fjord::sinks::ExactlyOnceFileSink::for_format).
///
/// ```
/// use fjord::sinks::ExactlyOnceFileSink;
/// use fjord_avro::{AvroFileFormat, Codec};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Order { id: i64, item: Option<String> }
///
/// let format = AvroFileFormat::<Order>::for_serde(r#"{"type": "record", "name": "Order",
///     "fields": [{"name": "id", "type": "long"},
///                {"name": "item", "type": ["null", "string"], "default": null}]}"#)?
///     .with_codec(Codec::Deflate);
/// let sink = ExactlyOnceFileSink::for_format("file:///tmp/orders", format);
/// # let _ = sink;
/// # Ok::<(), fjord_avro::AvroError>(())
/// ```
pub struct AvroFileFormat<T> {
    schema: Arc<Schema>,
    /// `avro.schema` in the header.
    schema_json: Arc<str>,
    codec: Codec,
    block_bytes: usize,
    to_value: Arc<ToValue<T>>,
}

impl<T> Clone for AvroFileFormat<T> {
    fn clone(&self) -> Self {
        AvroFileFormat {
            schema: self.schema.clone(),
            schema_json: self.schema_json.clone(),
            codec: self.codec,
            block_bytes: self.block_bytes,
            to_value: self.to_value.clone(),
        }
    }
}

impl<T> std::fmt::Debug for AvroFileFormat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroFileFormat")
            .field("schema", &self.schema_json)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize> AvroFileFormat<T> {
    /// Writes serde records in the schema of this JSON text (a record schema whose fields
    /// the type's fields fill by name; `Option` fills a `["null", T]` union, integers widen).
    ///
    /// # Errors
    /// [`AvroError::Schema`] for a schema that does not parse.
    pub fn for_serde(schema_json: &str) -> Result<Self, AvroError> {
        let schema = Arc::new(parse_schema(schema_json)?);
        let resolve_to = schema.clone();
        Ok(Self::build(
            schema,
            Arc::new(move |record: &T| {
                to_value(record)?
                    .resolve(&resolve_to)
                    .map_err(|e| AvroError::Encode(e.to_string()))
            }),
        ))
    }
}

impl<T> AvroFileFormat<T> {
    /// Writes the values `to_value` makes of the records, which are already in `schema`'s
    /// shape (each union branch chosen, each logical type as its own variant: what a
    /// converter from another data model builds). Each is checked against the schema.
    pub fn with_values(
        schema: Schema,
        to_value: impl Fn(&T) -> Result<Value, AvroError> + Send + Sync + 'static,
    ) -> Self {
        Self::build(Arc::new(schema), Arc::new(to_value))
    }

    fn build(schema: Arc<Schema>, to_value: Arc<ToValue<T>>) -> Self {
        let schema_json = serde_json::to_string(&*schema)
            .unwrap_or_else(|_| schema.canonical_form())
            .into();
        AvroFileFormat {
            schema,
            schema_json,
            codec: Codec::default(),
            block_bytes: DEFAULT_BLOCK_BYTES,
            to_value,
        }
    }

    /// Sets the codec (default snappy, as Flink's).
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Closes a block once its datums reach this many bytes (default 64 000; at least 1).
    pub fn with_block_bytes(mut self, bytes: usize) -> Self {
        self.block_bytes = bytes.max(1);
        self
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

impl<T: Send + 'static> BulkFormat<T> for AvroFileFormat<T> {
    fn create(&self) -> Result<Box<dyn BulkWriter<T>>, BoxError> {
        let sync: [u8; 16] = rand::random();
        let mut out = b"Obj\x01".to_vec();
        let metadata = Value::Map(HashMap::from([
            (
                "avro.schema".to_string(),
                Value::Bytes(self.schema_json.as_bytes().to_vec()),
            ),
            (
                "avro.codec".to_string(),
                Value::Bytes(self.codec.name().as_bytes().to_vec()),
            ),
        ]));
        let map_schema = Schema::map(Schema::Bytes);
        out.extend(
            apache_avro::to_avro_datum(&map_schema, metadata)
                .map_err(|e| AvroError::Encode(e.to_string()))?,
        );
        out.extend_from_slice(&sync);
        Ok(Box::new(AvroPartWriter {
            format: self.clone(),
            out,
            sync,
            block: Vec::new(),
            block_records: 0,
        }))
    }

    fn suffix(&self) -> &str {
        ".avro"
    }
}

/// One container file being written: the closed blocks in `out`, the open one in `block`.
struct AvroPartWriter<T> {
    format: AvroFileFormat<T>,
    out: Vec<u8>,
    sync: [u8; 16],
    block: Vec<u8>,
    block_records: i64,
}

impl<T> AvroPartWriter<T> {
    /// Compresses and appends the open block, if it holds records.
    fn close_block(&mut self) -> Result<(), AvroError> {
        if self.block_records == 0 {
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.block);
        self.format
            .codec
            .to_avro()
            .compress(&mut data)
            .map_err(|e| {
                AvroError::Encode(format!("{} compression: {e}", self.format.codec.name()))
            })?;
        let long = |n: i64| {
            apache_avro::to_avro_datum(&Schema::Long, Value::Long(n))
                .map_err(|e| AvroError::Encode(e.to_string()))
        };
        self.out.extend(long(self.block_records)?);
        self.out.extend(long(data.len() as i64)?);
        self.out.extend(data);
        self.out.extend_from_slice(&self.sync);
        self.block_records = 0;
        Ok(())
    }
}

impl<T: Send + 'static> BulkWriter<T> for AvroPartWriter<T> {
    fn add_element(&mut self, element: T) -> Result<(), BoxError> {
        let value = (self.format.to_value)(&element)?;
        let datum = apache_avro::to_avro_datum(&self.format.schema, value)
            .map_err(|e| AvroError::Encode(e.to_string()))?;
        self.block.extend(datum);
        self.block_records += 1;
        if self.block.len() >= self.format.block_bytes {
            self.close_block()?;
        }
        Ok(())
    }

    fn size_estimate(&self) -> u64 {
        (self.out.len() + self.block.len()) as u64
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, BoxError> {
        self.close_block()?;
        Ok(self.out)
    }
}

/// The writer schema and the records of a container file (any codec `apache-avro` reads:
/// null, deflate, snappy).
///
/// # Errors
/// [`AvroError::Decode`] for bytes that are not a container file, or a block that does not
/// decode (truncated, a bad checksum, a codec Fjord does not read).
pub fn read_file(bytes: &[u8]) -> Result<(Schema, Vec<Value>), AvroError> {
    let reader = apache_avro::Reader::new(bytes)
        .map_err(|e| AvroError::Decode(format!("not an Avro container file: {e}")))?;
    let schema = reader.writer_schema().clone();
    let values = reader
        .enumerate()
        .map(|(i, v)| v.map_err(|e| AvroError::Decode(format!("record {}: {e}", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((schema, values))
}

/// The metadata of a container file's header (`avro.schema`, `avro.codec` and any a writer
/// added), for tools and tests.
///
/// # Errors
/// [`AvroError::Decode`] for bytes that do not start with a container file's header.
pub fn read_metadata(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, AvroError> {
    let not_a_file = |why: String| AvroError::Decode(format!("not an Avro container file: {why}"));
    let mut rest = bytes
        .strip_prefix(b"Obj\x01")
        .ok_or_else(|| not_a_file("it does not start with Obj\\x01".into()))?;
    let map = apache_avro::from_avro_datum(&Schema::map(Schema::Bytes), &mut rest, None)
        .map_err(|e| not_a_file(e.to_string()))?;
    let Value::Map(entries) = map else {
        return Err(not_a_file("its metadata is not a map".into()));
    };
    entries
        .into_iter()
        .map(|(k, v)| match v {
            Value::Bytes(b) => Ok((k, b)),
            other => Err(not_a_file(format!("metadata {k} is {other:?}"))),
        })
        .collect()
}

/// The records of a container file as serde values.
///
/// # Errors
/// As [`read_file`], and [`AvroError::Decode`] for a record that does not fit `T`.
pub fn read_serde<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, AvroError> {
    let (_, values) = read_file(bytes)?;
    values.iter().map(from_value).collect()
}
