//! The `avro` format of the `filesystem` connector (Flink's `AvroFileFormatFactory`): part
//! files are Avro object container files, written by the exactly-once file sink through
//! [`fjord_avro::AvroFileFormat`] and read back whole by the bounded source.
//!
//! The schema is the one Flink writes for a table: [`AvroSchemaConverter`'s
//! record](super::format_avro::avro_schema_json) of the columns, as a union `["null", record]`
//! (the row type of a table is nullable), so each datum is union branch 1 and the record.
//! Rows are converted as the message formats convert them ([`super::format_avro`]); reading
//! takes the columns by name from whatever record schema the file was written with.

use super::format_avro::{avro_schema_json, avro_to_row, row_to_avro};
use crate::types::{Row, Schema};
use apache_avro::types::Value as Avro;
use fjord_avro::{AvroError, AvroFileFormat, Codec};
use std::collections::BTreeMap;

/// The options of the filesystem `avro` format (Flink's names).
pub const OPTIONS: &[&str] = &["avro.codec", "avro.timestamp_mapping.legacy"];

/// The options of a filesystem table's `avro` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvroFileOptions {
    /// `avro.codec`: `null`, `deflate` or `snappy` (Flink's default).
    pub codec: Codec,
    /// `avro.timestamp_mapping.legacy` (default `true`: TIMESTAMP as `timestamp-millis`).
    pub legacy_timestamps: bool,
}

/// The format options of a table's `avro.*` options.
///
/// # Errors
/// A codec Fjord does not write (bzip2, xz, zstandard) or does not know, naming the supported
/// ones; a malformed boolean.
pub fn options(o: &BTreeMap<String, String>) -> Result<AvroFileOptions, String> {
    let codec = match o.get("avro.codec") {
        None => Codec::default(),
        Some(c) => Codec::from_name(c).map_err(|e| format!("option 'avro.codec': {e}"))?,
    };
    Ok(AvroFileOptions {
        codec,
        legacy_timestamps: super::bool_option(o, "avro.timestamp_mapping.legacy", true)?,
    })
}

/// The Avro schema of a table's files, as Flink writes it: `["null", record]`.
///
/// # Errors
/// A column type Avro has no mapping for (an INTERVAL).
pub fn schema(table: &Schema, legacy_timestamps: bool) -> Result<apache_avro::Schema, String> {
    let record = avro_schema_json(table, legacy_timestamps)?;
    let json = serde_json::json!(["null", record]);
    fjord_avro::parse_schema(&json.to_string()).map_err(|e| e.to_string())
}

/// The bulk format writing a table's rows as Avro container files.
///
/// # Errors
/// As [`schema`].
pub fn format(table: &Schema, options: AvroFileOptions) -> Result<AvroFileFormat<Row>, String> {
    let avro_schema = schema(table, options.legacy_timestamps)?;
    let columns = table.clone();
    let legacy = options.legacy_timestamps;
    Ok(AvroFileFormat::with_values(avro_schema, move |row: &Row| {
        let record = row_to_avro(&columns, row, legacy).map_err(AvroError::Encode)?;
        Ok(Avro::Union(1, Box::new(record)))
    })
    .with_codec(options.codec))
}

/// The rows of a container file in a table's schema: fields by column name (a column the
/// file lacks is NULL), values converted to the column types.
///
/// # Errors
/// Not a container file, a null record, or a value that does not convert (naming the column).
pub fn decode_file(bytes: &[u8], table: &Schema) -> Result<Vec<Row>, String> {
    let (_, values) = fjord_avro::read_file(bytes).map_err(|e| e.to_string())?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let record = match v {
                Avro::Union(_, inner) => *inner,
                other => other,
            };
            if record == Avro::Null {
                return Err(format!(
                    "record {} is null, not a row; the file was not written for a table",
                    i + 1
                ));
            }
            avro_to_row(table, record).map_err(|e| format!("record {}: {e}", i + 1))
        })
        .collect()
}
