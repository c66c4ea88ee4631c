//! The `parquet` format of the `filesystem` connector (Flink's `flink-parquet`): a table's
//! schema as a Parquet schema (Flink's type mapping, see docs/connectors/formats.md), rows to
//! Parquet rows for the exactly-once file sink, and Parquet files back to rows for the source.

use crate::decimal::Decimal;
use crate::types::{DataType, Row, Schema, Value};
use fjord_parquet::{
    Column, ColumnType, ParquetFormat, ParquetFormatError, ParquetOptions, ParquetSchema,
    Value as PValue,
};
use std::collections::BTreeMap;

/// The options of the `parquet` format (Flink's names), for `only_options`.
pub const OPTIONS: &[&str] = fjord_parquet::options::OPTION_NAMES;

/// The writer options of a table's `parquet.*` options.
///
/// # Errors
/// A value that does not read, naming the option.
pub fn options(o: &BTreeMap<String, String>) -> Result<ParquetOptions, String> {
    ParquetOptions::from_options(o.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())
}

/// The Parquet type of a column type (Flink's `ParquetSchemaConverter`); every column is
/// OPTIONAL (Fjord's tables do not track NOT NULL).
///
/// # Errors
/// A type Parquet tables cannot have (INTERVAL).
pub fn column_type(t: DataType) -> Result<ColumnType, String> {
    Ok(match t {
        DataType::Boolean => ColumnType::Boolean,
        DataType::TinyInt => ColumnType::TinyInt,
        DataType::SmallInt => ColumnType::SmallInt,
        DataType::Int => ColumnType::Int,
        DataType::BigInt => ColumnType::BigInt,
        DataType::Decimal(precision, scale) => ColumnType::Decimal { precision, scale },
        DataType::Float => ColumnType::Float,
        DataType::Double => ColumnType::Double,
        DataType::String => ColumnType::String,
        DataType::Bytes => ColumnType::Bytes,
        DataType::Date => ColumnType::Date,
        DataType::Time(_) => ColumnType::Time,
        // The encoding comes from the options when the format is built.
        DataType::Timestamp => ColumnType::Timestamp(Default::default()),
        DataType::TimestampLtz => ColumnType::Timestamp(Default::default()),
        DataType::Interval => {
            return Err(
                "an INTERVAL column cannot be written as Parquet; CAST it to BIGINT".into(),
            );
        }
        DataType::Row(_) | DataType::Array(_) | DataType::Map(..) => {
            return Err(format!(
                "a {t} column is not supported by Fjord's parquet format yet; select its fields or CAST it to STRING"
            ));
        }
    })
}

/// The Parquet schema of a table.
///
/// # Errors
/// A column of a type Parquet tables cannot have.
pub fn schema(schema: &Schema) -> Result<ParquetSchema, String> {
    let columns = schema
        .columns
        .iter()
        .map(|c| {
            column_type(c.data_type)
                .map(|t| Column::new(&c.name, t))
                .map_err(|e| format!("column '{}': {e}", c.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ParquetSchema::new(columns).map_err(|e| e.to_string())
}

/// The bulk format writing a table's rows as Parquet.
///
/// # Errors
/// As [`schema`].
pub fn format(table: &Schema, options: ParquetOptions) -> Result<ParquetFormat<Row>, String> {
    ParquetFormat::new(schema(table)?, options, to_parquet_row).map_err(|e| e.to_string())
}

fn to_parquet_row(
    row: &Row,
    _schema: &ParquetSchema,
    out: &mut Vec<PValue>,
) -> Result<(), ParquetFormatError> {
    for v in row {
        out.push(match v {
            Value::Null => PValue::Null,
            Value::Boolean(b) => PValue::Boolean(*b),
            Value::TinyInt(i) => PValue::Integer(i64::from(*i)),
            Value::SmallInt(i) => PValue::Integer(i64::from(*i)),
            Value::Int(i) => PValue::Integer(i64::from(*i)),
            Value::BigInt(i) => PValue::Integer(*i),
            Value::Decimal(d) => PValue::Decimal {
                unscaled: d.unscaled,
                scale: d.scale,
            },
            Value::Float(f) => PValue::Float(*f),
            Value::Double(d) => PValue::Double(*d),
            Value::String(s) => PValue::String(s.clone()),
            Value::Timestamp(ms) => PValue::Timestamp(*ms),
            Value::Date(d) => PValue::Date(*d),
            Value::Time(ms, _) => PValue::Time(*ms),
            Value::Bytes(b) => PValue::Bytes(b.clone()),
            Value::TimestampLtz(ms) => PValue::Timestamp(*ms),
            // The schema refuses composite columns.
            Value::Row(_) | Value::Array(_) | Value::Map(_) => PValue::Null,
        });
    }
    Ok(())
}

/// The rows of a Parquet file in a table's schema: columns by name (one the file lacks is
/// NULL), values converted to the column types.
///
/// # Errors
/// Not a Parquet file, or a value that does not convert (naming the column).
pub fn decode_file(bytes: Vec<u8>, schema: &Schema) -> Result<Vec<Row>, String> {
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let rows = fjord_parquet::read_columns(bytes, &names).map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|values| {
            values
                .into_iter()
                .zip(&schema.columns)
                .map(|(v, c)| {
                    from_parquet(v, c.data_type).map_err(|e| format!("column '{}': {e}", c.name))
                })
                .collect()
        })
        .collect()
}

fn from_parquet(v: PValue, t: DataType) -> Result<Value, String> {
    let bad = |v: &PValue| format!("cannot read {v:?} as {t}");
    let int = |i: i64| match t {
        DataType::TinyInt => i8::try_from(i).ok().map(Value::TinyInt),
        DataType::SmallInt => i16::try_from(i).ok().map(Value::SmallInt),
        DataType::Int => i32::try_from(i).ok().map(Value::Int),
        DataType::BigInt => Some(Value::BigInt(i)),
        _ => None,
    };
    Ok(match (&v, t) {
        (PValue::Null, _) => Value::Null,
        (PValue::Boolean(b), DataType::Boolean) => Value::Boolean(*b),
        (PValue::Integer(i), _) => int(*i).ok_or_else(|| bad(&v))?,
        (PValue::Float(f), DataType::Float) => Value::Float(*f),
        (PValue::Float(f), DataType::Double) => Value::Double(f64::from(*f)),
        (PValue::Double(d), DataType::Double) => Value::Double(*d),
        (PValue::String(s), DataType::String) => Value::String(s.clone()),
        (PValue::Bytes(b), DataType::Bytes) => Value::Bytes(b.clone()),
        (PValue::Bytes(b), DataType::String) => Value::String(
            String::from_utf8(b.clone()).map_err(|_| format!("{} is not UTF-8 text", bad(&v)))?,
        ),
        (PValue::Decimal { unscaled, scale }, DataType::Decimal(p, s)) => Decimal {
            unscaled: *unscaled,
            scale: *scale,
        }
        .rescale(p, s)
        .map_or(Value::Null, Value::Decimal),
        (PValue::Date(d), DataType::Date) => Value::Date(*d),
        (PValue::Time(ms), DataType::Time(p)) => {
            Value::Time(crate::types::truncate_time(*ms, p), p)
        }
        (PValue::Timestamp(ms), DataType::Timestamp) => Value::Timestamp(*ms),
        _ => return Err(bad(&v)),
    })
}
