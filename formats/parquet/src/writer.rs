//! [`ParquetFormat`]: the bulk format writing records as Parquet part files, through the
//! low-level column writers (no Arrow): rows are buffered column by column and written as a
//! row group once they reach `parquet.block.size`, or when the part rolls.

use crate::error::{ParquetFormatError, Result};
use crate::options::ParquetOptions;
use crate::schema::{ColumnType, ParquetSchema, TimestampEncoding};
use crate::value::{Value, millis_to_int96};
use fjord::BoxError;
use fjord::sinks::{BulkFormat, BulkWriter};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType,
    FloatType, Int32Type, Int64Type, Int96, Int96Type,
};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::TypePtr;
use std::sync::Arc;

/// Maps a record to the values of one row, in the schema's column order.
pub trait RowMapper<T>: Send + Sync + 'static {
    /// Appends one value per column of `schema` to `row` (empty when called).
    ///
    /// # Errors
    /// A record that has no row of this schema.
    fn to_row(&self, record: &T, schema: &ParquetSchema, row: &mut Vec<Value>) -> Result<()>;
}

impl<T, F> RowMapper<T> for F
where
    F: Fn(&T, &ParquetSchema, &mut Vec<Value>) -> Result<()> + Send + Sync + 'static,
{
    fn to_row(&self, record: &T, schema: &ParquetSchema, row: &mut Vec<Value>) -> Result<()> {
        self(record, schema, row)
    }
}

/// Writes records as Parquet files of a schema (Flink's `ParquetWriterFactory`): a
/// [`BulkFormat`] for [`ExactlyOnceFileSink::for_format`](fjord::sinks::ExactlyOnceFileSink::for_format).
pub struct ParquetFormat<T> {
    schema: Arc<ParquetSchema>,
    message: TypePtr,
    properties: Arc<WriterProperties>,
    row_group_bytes: usize,
    mapper: Arc<dyn RowMapper<T>>,
}

impl<T> ParquetFormat<T> {
    /// Writes records of `schema`, mapped to rows by `mapper`. A TIMESTAMP column's
    /// encoding is `options.timestamps` (whatever the schema says).
    ///
    /// # Errors
    /// The schema cannot be written as Parquet.
    pub fn new(
        schema: ParquetSchema,
        options: ParquetOptions,
        mapper: impl RowMapper<T>,
    ) -> Result<Self> {
        let mut schema = schema;
        for c in &mut schema.columns {
            if let ColumnType::Timestamp(_) = c.column_type {
                c.column_type = ColumnType::Timestamp(options.timestamps);
            }
        }
        let message = schema.to_parquet()?;
        let mut properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(options.codec.to_parquet())
            .set_dictionary_enabled(options.dictionary)
            .set_data_page_size_limit(options.page_bytes);
        // DECIMAL columns (FIXED_LEN_BYTE_ARRAY) plain, never dictionary-encoded: parquet-mr's
        // PARQUET_1_0 writer (Flink's) never dictionary-encodes FIXED_LEN_BYTE_ARRAY, and Flink's
        // vectorized reader fails on such a dictionary (UnsupportedOperationException:
        // PlainBinaryDictionary), found by e2e/tests/parquet_flink_oracle.rs.
        for c in &schema.columns {
            if let ColumnType::Decimal { .. } = c.column_type {
                properties = properties.set_column_dictionary_enabled(
                    parquet::schema::types::ColumnPath::from(c.name.as_str()),
                    false,
                );
            }
        }
        let properties = properties.build();
        Ok(ParquetFormat {
            schema: Arc::new(schema),
            message,
            properties: Arc::new(properties),
            row_group_bytes: options.row_group_bytes,
            mapper: Arc::new(mapper),
        })
    }

    /// The schema written (with the timestamp encoding of the options).
    pub fn schema(&self) -> &ParquetSchema {
        &self.schema
    }
}

impl<T: Send + 'static> BulkFormat<T> for ParquetFormat<T> {
    fn create(&self) -> Result<Box<dyn BulkWriter<T>>, BoxError> {
        let file =
            SerializedFileWriter::new(Vec::new(), self.message.clone(), self.properties.clone())
                .map_err(ParquetFormatError::from)?;
        Ok(Box::new(ParquetPartWriter {
            file,
            columns: self.schema.columns.iter().map(ColumnBuffer::new).collect(),
            schema: self.schema.clone(),
            mapper: self.mapper.clone(),
            row: Vec::with_capacity(self.schema.columns.len()),
            buffered_bytes: 0,
            row_group_bytes: self.row_group_bytes,
        }))
    }

    fn suffix(&self) -> &str {
        ".parquet"
    }
}

/// One part file being written.
struct ParquetPartWriter<T> {
    file: SerializedFileWriter<Vec<u8>>,
    columns: Vec<ColumnBuffer>,
    schema: Arc<ParquetSchema>,
    mapper: Arc<dyn RowMapper<T>>,
    row: Vec<Value>,
    /// Estimated plain size of the buffered rows.
    buffered_bytes: usize,
    row_group_bytes: usize,
}

impl<T> ParquetPartWriter<T> {
    fn write_row_group(&mut self) -> Result<()> {
        if self.columns.first().is_none_or(|c| c.levels.is_empty()) {
            return Ok(());
        }
        let mut group = self.file.next_row_group()?;
        for (buffer, column) in self.columns.iter_mut().zip(&self.schema.columns) {
            let mut writer = group.next_column()?.ok_or_else(|| {
                ParquetFormatError::Schema(format!("no column writer for '{}'", column.name))
            })?;
            let levels = column.nullable.then_some(buffer.levels.as_slice());
            match &mut buffer.values {
                Values::Bool(v) => {
                    writer.typed::<BoolType>().write_batch(v, levels, None)?;
                }
                Values::Int32(v) => {
                    writer.typed::<Int32Type>().write_batch(v, levels, None)?;
                }
                Values::Int64(v) => {
                    writer.typed::<Int64Type>().write_batch(v, levels, None)?;
                }
                Values::Int96(v) => {
                    writer.typed::<Int96Type>().write_batch(v, levels, None)?;
                }
                Values::Float(v) => {
                    writer.typed::<FloatType>().write_batch(v, levels, None)?;
                }
                Values::Double(v) => {
                    writer.typed::<DoubleType>().write_batch(v, levels, None)?;
                }
                Values::Bytes(v) => {
                    writer
                        .typed::<ByteArrayType>()
                        .write_batch(v, levels, None)?;
                }
                Values::Fixed(v) => {
                    writer
                        .typed::<FixedLenByteArrayType>()
                        .write_batch(v, levels, None)?;
                }
            }
            writer.close()?;
            buffer.clear();
        }
        group.close()?;
        self.buffered_bytes = 0;
        Ok(())
    }
}

impl<T: Send + 'static> BulkWriter<T> for ParquetPartWriter<T> {
    fn add_element(&mut self, element: T) -> Result<(), BoxError> {
        self.row.clear();
        self.mapper.to_row(&element, &self.schema, &mut self.row)?;
        if self.row.len() != self.schema.columns.len() {
            return Err(ParquetFormatError::Record(format!(
                "the row has {} values but the schema has {} columns",
                self.row.len(),
                self.schema.columns.len()
            ))
            .into());
        }
        // Checked for the whole row first, so a refused record leaves no partial row.
        for (value, column) in self.row.iter().zip(&self.schema.columns) {
            check(value, column)?;
        }
        for ((value, column), buffer) in self
            .row
            .drain(..)
            .zip(&self.schema.columns)
            .zip(&mut self.columns)
        {
            self.buffered_bytes += buffer.push(value, column.column_type);
        }
        if self.buffered_bytes >= self.row_group_bytes {
            self.write_row_group()?;
        }
        Ok(())
    }

    fn size_estimate(&self) -> u64 {
        (self.file.bytes_written() + self.buffered_bytes) as u64
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, BoxError> {
        self.write_row_group()?;
        Ok(self.file.into_inner().map_err(ParquetFormatError::from)?)
    }
}

/// The buffered values of one column, in its physical type.
enum Values {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Int96(Vec<Int96>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
}

struct ColumnBuffer {
    values: Values,
    /// Definition levels: 1 for a value, 0 for NULL.
    levels: Vec<i16>,
}

impl ColumnBuffer {
    fn new(column: &crate::schema::Column) -> Self {
        let values = match column.column_type {
            ColumnType::Boolean => Values::Bool(Vec::new()),
            ColumnType::TinyInt
            | ColumnType::SmallInt
            | ColumnType::Int
            | ColumnType::Date
            | ColumnType::Time => Values::Int32(Vec::new()),
            ColumnType::BigInt => Values::Int64(Vec::new()),
            ColumnType::Decimal { .. } => Values::Fixed(Vec::new()),
            ColumnType::Float => Values::Float(Vec::new()),
            ColumnType::Double => Values::Double(Vec::new()),
            ColumnType::String | ColumnType::Bytes => Values::Bytes(Vec::new()),
            ColumnType::Timestamp(TimestampEncoding::Int96) => Values::Int96(Vec::new()),
            ColumnType::Timestamp(_) => Values::Int64(Vec::new()),
        };
        ColumnBuffer {
            values,
            levels: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.levels.clear();
        match &mut self.values {
            Values::Bool(v) => v.clear(),
            Values::Int32(v) => v.clear(),
            Values::Int64(v) => v.clear(),
            Values::Int96(v) => v.clear(),
            Values::Float(v) => v.clear(),
            Values::Double(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
            Values::Fixed(v) => v.clear(),
        }
    }

    /// Adds a value [`check`] accepted; returns its estimated size in bytes.
    fn push(&mut self, value: Value, t: ColumnType) -> usize {
        if value == Value::Null {
            self.levels.push(0);
            return 1;
        }
        self.levels.push(1);
        match (&mut self.values, value) {
            (Values::Bool(v), Value::Boolean(b)) => {
                v.push(b);
                1
            }
            (Values::Int32(v), Value::Integer(i)) => {
                v.push(i as i32);
                4
            }
            (Values::Int32(v), Value::Date(d) | Value::Time(d)) => {
                v.push(d);
                4
            }
            (Values::Int64(v), Value::Integer(i)) => {
                v.push(i);
                8
            }
            (Values::Fixed(v), Value::Decimal { unscaled, scale }) => {
                let unscaled = rescale(unscaled, scale, t).unwrap_or_default();
                let ColumnType::Decimal { precision, .. } = t else {
                    unreachable!("checked")
                };
                let n = crate::schema::decimal_bytes(precision);
                let bytes = unscaled.to_be_bytes()[16 - n..].to_vec();
                v.push(FixedLenByteArray::from(bytes));
                n
            }
            (Values::Int64(v), Value::Timestamp(ms)) => {
                v.push(match t {
                    ColumnType::Timestamp(TimestampEncoding::Int64Millis) => ms,
                    ColumnType::Timestamp(TimestampEncoding::Int64Micros) => ms * 1_000,
                    _ => ms * 1_000_000,
                });
                8
            }
            (Values::Int96(v), Value::Timestamp(ms)) => {
                let [a, b, c] = millis_to_int96(ms);
                let mut x = Int96::new();
                x.set_data(a, b, c);
                v.push(x);
                12
            }
            (Values::Float(v), Value::Float(f)) => {
                v.push(f);
                4
            }
            (Values::Double(v), Value::Double(d)) => {
                v.push(d);
                8
            }
            (Values::Bytes(v), Value::String(s)) => {
                let n = s.len() + 4;
                v.push(ByteArray::from(s.into_bytes()));
                n
            }
            (Values::Bytes(v), Value::Bytes(b)) => {
                let n = b.len() + 4;
                v.push(ByteArray::from(b));
                n
            }
            _ => unreachable!("check() accepted only values of the column's type"),
        }
    }
}

/// The unscaled value at the column's scale, if exact and within its precision.
fn rescale(unscaled: i128, scale: u8, t: ColumnType) -> Option<i128> {
    let ColumnType::Decimal {
        precision,
        scale: to,
    } = t
    else {
        return None;
    };
    let v = if to >= scale {
        unscaled.checked_mul(10i128.checked_pow(u32::from(to - scale))?)?
    } else {
        let div = 10i128.checked_pow(u32::from(scale - to))?;
        if unscaled % div != 0 {
            return None;
        }
        unscaled / div
    };
    (v.unsigned_abs() < 10u128.pow(u32::from(precision))).then_some(v)
}

/// Whether a value fits its column; the error names the column and what it takes.
fn check(value: &Value, column: &crate::schema::Column) -> Result<()> {
    let bad = |message: String| {
        Err(ParquetFormatError::Value {
            column: column.name.clone(),
            message,
        })
    };
    let t = column.column_type;
    let range = |v: i64, lo: i64, hi: i64, name: &str| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            bad(format!("{v} is out of range for {name}"))
        }
    };
    match (t, value) {
        (_, Value::Null) if column.nullable => Ok(()),
        (_, Value::Null) => bad("NULL in a REQUIRED (NOT NULL) column".into()),
        (ColumnType::Boolean, Value::Boolean(_))
        | (ColumnType::Float, Value::Float(_))
        | (ColumnType::Double, Value::Double(_))
        | (ColumnType::String, Value::String(_))
        | (ColumnType::Bytes, Value::Bytes(_))
        | (ColumnType::Date, Value::Date(_))
        | (ColumnType::Time, Value::Time(_))
        | (ColumnType::BigInt, Value::Integer(_)) => Ok(()),
        (ColumnType::TinyInt, Value::Integer(v)) => range(*v, -128, 127, "TINYINT"),
        (ColumnType::SmallInt, Value::Integer(v)) => range(*v, -32_768, 32_767, "SMALLINT"),
        (ColumnType::Int, Value::Integer(v)) => {
            range(*v, i64::from(i32::MIN), i64::from(i32::MAX), "INT")
        }
        (ColumnType::Time, Value::Integer(v)) => range(*v, 0, 86_399_999, "TIME (ms of the day)"),
        (ColumnType::Timestamp(e), Value::Timestamp(ms)) => {
            let factor = match e {
                TimestampEncoding::Int64Micros => 1_000,
                TimestampEncoding::Int64Nanos => 1_000_000,
                _ => 1,
            };
            if ms.checked_mul(factor).is_some() {
                Ok(())
            } else {
                bad(format!("timestamp {ms} ms does not fit the column's unit"))
            }
        }
        (ColumnType::Decimal { precision, scale }, Value::Decimal { unscaled, scale: s }) => {
            if rescale(*unscaled, *s, t).is_some() {
                Ok(())
            } else {
                bad(format!(
                    "{unscaled}E-{s} does not fit DECIMAL({precision}, {scale}) exactly; round \
                     it to {scale} digits after the point first"
                ))
            }
        }
        (t, v) => bad(format!(
            "a {} value does not go into a {t:?} column",
            kind(v)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Boolean(_) => "BOOLEAN",
        Value::Integer(_) => "integer",
        Value::Float(_) => "FLOAT",
        Value::Double(_) => "DOUBLE",
        Value::String(_) => "STRING",
        Value::Bytes(_) => "BYTES",
        Value::Decimal { .. } => "DECIMAL",
        Value::Date(_) => "DATE",
        Value::Time(_) => "TIME",
        Value::Timestamp(_) => "TIMESTAMP",
    }
}
