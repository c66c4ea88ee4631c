//! The schema of the Parquet files written: columns with Flink's table types, and their
//! Parquet physical and logical types as Flink's `ParquetSchemaConverter` writes them.

use crate::error::{ParquetFormatError, Result};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::{Type, TypePtr};
use std::sync::Arc;

/// The root (message) name of the schema, as Flink names it.
pub const MESSAGE_NAME: &str = "flink_schema";

/// How TIMESTAMP columns are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampEncoding {
    /// INT96 (Julian day and nanoseconds of the day): Flink's default, read by Hive, Spark and
    /// Impala.
    #[default]
    Int96,
    /// INT64 with the TIMESTAMP logical type in milliseconds (Flink's
    /// `parquet.write.int64.timestamp` with `parquet.timestamp.time.unit` = `millis`).
    Int64Millis,
    /// INT64 TIMESTAMP in microseconds (`micros`, Flink's unit by default).
    Int64Micros,
    /// INT64 TIMESTAMP in nanoseconds (`nanos`).
    Int64Nanos,
}

/// A column's type (Flink's logical types that the format writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// BOOLEAN -> BOOLEAN.
    Boolean,
    /// TINYINT -> INT32 (INT_8).
    TinyInt,
    /// SMALLINT -> INT32 (INT_16).
    SmallInt,
    /// INT -> INT32.
    Int,
    /// BIGINT -> INT64.
    BigInt,
    /// FLOAT -> FLOAT.
    Float,
    /// DOUBLE -> DOUBLE.
    Double,
    /// STRING / VARCHAR / CHAR -> BINARY (UTF8).
    String,
    /// BYTES / VARBINARY / BINARY -> BINARY.
    Bytes,
    /// DECIMAL(p, s) -> FIXED_LEN_BYTE_ARRAY of the fewest bytes, annotated DECIMAL(p, s)
    /// (as Flink writes every precision).
    Decimal {
        /// Digits in all, 1..=38.
        precision: u8,
        /// Digits after the point, 0..=precision.
        scale: u8,
    },
    /// DATE -> INT32 (DATE): days since 1970-01-01.
    Date,
    /// TIME -> INT32 (TIME_MILLIS): milliseconds of the day.
    Time,
    /// TIMESTAMP (without time zone) -> INT96, or INT64 TIMESTAMP in a unit.
    Timestamp(TimestampEncoding),
}

/// One column: its name, type and whether it may hold NULL (OPTIONAL) or not (REQUIRED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The field name in the file.
    pub name: String,
    /// Its type.
    pub column_type: ColumnType,
    /// OPTIONAL when true, REQUIRED when false.
    pub nullable: bool,
}

impl Column {
    /// A nullable column.
    pub fn new(name: impl Into<String>, column_type: ColumnType) -> Self {
        Column {
            name: name.into(),
            column_type,
            nullable: true,
        }
    }

    /// The same column, REQUIRED (a NULL is then an error).
    pub fn required(mut self) -> Self {
        self.nullable = false;
        self
    }
}

/// The columns of the files, in order (a flat schema: no nested groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetSchema {
    /// The columns.
    pub columns: Vec<Column>,
}

impl ParquetSchema {
    /// A schema of these columns.
    ///
    /// # Errors
    /// No columns, a repeated name, a decimal precision outside 1..=38 or a scale above it.
    pub fn new(columns: Vec<Column>) -> Result<Self> {
        if columns.is_empty() {
            return Err(ParquetFormatError::Schema(
                "a Parquet schema needs at least one column".into(),
            ));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(ParquetFormatError::Schema(format!(
                    "column '{}' appears twice; give every column its own name",
                    c.name
                )));
            }
            if let ColumnType::Decimal { precision, scale } = c.column_type
                && (!(1..=38).contains(&precision) || scale > precision)
            {
                return Err(ParquetFormatError::Schema(format!(
                    "column '{}': DECIMAL({precision}, {scale}) is out of range; precision \
                     must be 1..=38 and scale at most the precision",
                    c.name
                )));
            }
        }
        Ok(ParquetSchema { columns })
    }

    /// The Parquet message type of the schema.
    ///
    /// # Errors
    /// The Parquet library refuses a type (not expected for a schema `new` accepted).
    pub fn to_parquet(&self) -> Result<TypePtr> {
        let fields = self
            .columns
            .iter()
            .map(|c| primitive(c).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(
            Type::group_type_builder(MESSAGE_NAME)
                .with_fields(fields)
                .build()?,
        ))
    }
}

/// The fewest bytes whose two's complement holds every unscaled value of `precision` digits
/// (Flink's and Spark's `computeMinBytesForPrecision`).
pub fn decimal_bytes(precision: u8) -> usize {
    let max = 10f64.powi(i32::from(precision));
    (1..=16)
        .find(|bytes| 2f64.powi(8 * bytes - 1) >= max)
        .unwrap_or(16) as usize
}

fn integer(bits: i8) -> LogicalType {
    LogicalType::integer(bits, true)
}

fn primitive(c: &Column) -> Result<Type> {
    let repetition = if c.nullable {
        Repetition::OPTIONAL
    } else {
        Repetition::REQUIRED
    };
    let b = |physical| Type::primitive_type_builder(&c.name, physical).with_repetition(repetition);
    // Logical types, with the converted types derived from them, as parquet-mr (Flink's
    // writer) puts both into the footer.
    let logical = |physical, logical| b(physical).with_logical_type(Some(logical)).build();
    let t = match c.column_type {
        ColumnType::Boolean => b(Physical::BOOLEAN).build()?,
        ColumnType::TinyInt => logical(Physical::INT32, integer(8))?,
        ColumnType::SmallInt => logical(Physical::INT32, integer(16))?,
        ColumnType::Int => b(Physical::INT32).build()?,
        ColumnType::BigInt => b(Physical::INT64).build()?,
        ColumnType::Float => b(Physical::FLOAT).build()?,
        ColumnType::Double => b(Physical::DOUBLE).build()?,
        ColumnType::String => logical(Physical::BYTE_ARRAY, LogicalType::String)?,
        ColumnType::Bytes => b(Physical::BYTE_ARRAY).build()?,
        ColumnType::Decimal { precision, scale } => {
            // Flink writes every DECIMAL as FIXED_LEN_BYTE_ARRAY of the fewest bytes (not
            // INT32/INT64 for small precisions, which the format would allow).
            b(Physical::FIXED_LEN_BYTE_ARRAY)
                .with_logical_type(Some(LogicalType::decimal(
                    i32::from(scale),
                    i32::from(precision),
                )))
                .with_precision(i32::from(precision))
                .with_scale(i32::from(scale))
                .with_length(decimal_bytes(precision) as i32)
                .build()?
        }
        ColumnType::Date => logical(Physical::INT32, LogicalType::Date)?,
        ColumnType::Time => logical(Physical::INT32, LogicalType::time(true, TimeUnit::MILLIS))?,
        ColumnType::Timestamp(TimestampEncoding::Int96) => b(Physical::INT96).build()?,
        ColumnType::Timestamp(encoding) => {
            let unit = match encoding {
                TimestampEncoding::Int64Millis => TimeUnit::MILLIS,
                TimestampEncoding::Int64Micros => TimeUnit::MICROS,
                _ => TimeUnit::NANOS,
            };
            logical(Physical::INT64, LogicalType::timestamp(false, unit))?
        }
    };
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes_as_flink_computes_them() {
        // Flink/Spark: precision 19 -> 9 bytes, 38 -> 16 bytes.
        assert_eq!(decimal_bytes(19), 9);
        assert_eq!(decimal_bytes(38), 16);
        assert_eq!(decimal_bytes(20), 9);
        assert_eq!(decimal_bytes(21), 9);
        assert_eq!(decimal_bytes(22), 10);
        assert_eq!(decimal_bytes(9), 4);
    }

    #[test]
    fn bad_schemas_are_refused_by_name() {
        let err = ParquetSchema::new(vec![
            Column::new("a", ColumnType::Int),
            Column::new("a", ColumnType::BigInt),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("'a' appears twice"), "{err}");
        let err = ParquetSchema::new(vec![Column::new(
            "d",
            ColumnType::Decimal {
                precision: 39,
                scale: 2,
            },
        )])
        .unwrap_err();
        assert!(err.to_string().contains("DECIMAL(39, 2)"), "{err}");
        assert!(ParquetSchema::new(vec![]).is_err());
    }
}
