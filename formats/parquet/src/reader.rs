//! Reading Parquet files back into rows (the record API of the `parquet` crate): for the
//! `filesystem` source, tools and tests. Flat schemas only: a nested group, list or map
//! column is refused with an error naming it.

use crate::error::{ParquetFormatError, Result};
use crate::value::Value;
use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

/// The rows of a Parquet file: each row's fields by name, in the file's column order.
///
/// # Errors
/// Not a Parquet file, a corrupt one, or a nested column.
pub fn read_rows(file: Vec<u8>) -> Result<Vec<Vec<(String, Value)>>> {
    let reader = SerializedFileReader::new(Bytes::from(file))?;
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let mut out = Vec::new();
        for (name, field) in row.get_column_iter() {
            out.push((name.clone(), value(name, field)?));
        }
        rows.push(out);
    }
    Ok(rows)
}

/// The rows of a Parquet file as values of the named columns, in that order (a column the
/// file does not have is NULL, as Flink reads it).
///
/// # Errors
/// As [`read_rows`].
pub fn read_columns(file: Vec<u8>, columns: &[&str]) -> Result<Vec<Vec<Value>>> {
    Ok(read_rows(file)?
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    row.iter()
                        .find(|(name, _)| name == c)
                        .map_or(Value::Null, |(_, v)| v.clone())
                })
                .collect()
        })
        .collect())
}

fn value(name: &str, field: &Field) -> Result<Value> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Boolean(*b),
        Field::Byte(v) => Value::Integer(i64::from(*v)),
        Field::Short(v) => Value::Integer(i64::from(*v)),
        Field::Int(v) => Value::Integer(i64::from(*v)),
        Field::Long(v) => Value::Integer(*v),
        Field::UByte(v) => Value::Integer(i64::from(*v)),
        Field::UShort(v) => Value::Integer(i64::from(*v)),
        Field::UInt(v) => Value::Integer(i64::from(*v)),
        Field::ULong(v) => {
            Value::Integer(i64::try_from(*v).map_err(|_| ParquetFormatError::Value {
                column: name.to_string(),
                message: format!("unsigned {v} does not fit BIGINT"),
            })?)
        }
        Field::Float(v) => Value::Float(*v),
        Field::Double(v) => Value::Double(*v),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => Value::Bytes(b.data().to_vec()),
        Field::Decimal(d) => {
            let data = d.data();
            let negative = data.first().is_some_and(|b| b & 0x80 != 0);
            let mut buf = [if negative { 0xff } else { 0 }; 16];
            if data.len() > 16 {
                return Err(ParquetFormatError::Value {
                    column: name.to_string(),
                    message: "a DECIMAL wider than 16 bytes does not fit 38 digits".into(),
                });
            }
            buf[16 - data.len()..].copy_from_slice(data);
            Value::Decimal {
                unscaled: i128::from_be_bytes(buf),
                scale: d.scale() as u8,
            }
        }
        Field::Date(d) => Value::Date(*d),
        Field::TimeMillis(t) => Value::Time(*t),
        Field::TimeMicros(t) => Value::Time(t.div_euclid(1_000) as i32),
        Field::TimestampMillis(t) => Value::Timestamp(*t),
        Field::TimestampMicros(t) => Value::Timestamp(t.div_euclid(1_000)),
        other => {
            return Err(ParquetFormatError::Value {
                column: name.to_string(),
                message: format!(
                    "{other} is a nested or unsupported value; Fjord reads flat schemas of \
                     Flink's scalar types only"
                ),
            });
        }
    })
}
