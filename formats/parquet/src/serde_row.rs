//! Rows of any [`Serialize`] record: [`SerdeRows`] maps a struct's fields to the schema's
//! columns by name (serde's field names, so `#[serde(rename)]` works), through the record's
//! `serde_json` value.
//!
//! What a field may be, per column type: BOOLEAN a `bool`; integer columns any integer in
//! range; FLOAT/DOUBLE any number; STRING a string; BYTES a `Vec<u8>` (or a string, its UTF-8
//! bytes); DECIMAL a string or number of at most the column's scale (`"12.50"`); DATE days
//! since 1970-01-01 or `"YYYY-MM-DD"`; TIME milliseconds of the day or `"HH:MM:SS[.fff]"`;
//! TIMESTAMP milliseconds since the epoch or `"YYYY-MM-DD HH:MM:SS[.fff]"`. `None` (or a
//! missing field) is NULL.

use crate::error::{ParquetFormatError, Result};
use crate::schema::{ColumnType, ParquetSchema};
use crate::value::{Value, parse_date, parse_timestamp};
use crate::writer::RowMapper;
use serde::Serialize;
use serde_json::Value as J;

/// Maps [`Serialize`] records to rows by field name; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct SerdeRows;

impl<T: Serialize + 'static> RowMapper<T> for SerdeRows {
    fn to_row(&self, record: &T, schema: &ParquetSchema, row: &mut Vec<Value>) -> Result<()> {
        let value = serde_json::to_value(record)
            .map_err(|e| ParquetFormatError::Record(format!("cannot serialize the record: {e}")))?;
        let J::Object(fields) = value else {
            return Err(ParquetFormatError::Record(format!(
                "the record serializes to {value}, not to a struct with named fields"
            )));
        };
        for column in &schema.columns {
            let v = fields.get(&column.name).unwrap_or(&J::Null);
            row.push(field(v, column.column_type).map_err(|message| {
                ParquetFormatError::Value {
                    column: column.name.clone(),
                    message,
                }
            })?);
        }
        Ok(())
    }
}

fn field(v: &J, t: ColumnType) -> Result<Value, String> {
    let bad = || format!("cannot write {v} into a {t:?} column");
    Ok(match (t, v) {
        (_, J::Null) => Value::Null,
        (ColumnType::Boolean, J::Bool(b)) => Value::Boolean(*b),
        (
            ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt,
            J::Number(n),
        ) => Value::Integer(n.as_i64().ok_or_else(bad)?),
        (ColumnType::Float, J::Number(n)) => Value::Float(n.as_f64().ok_or_else(bad)? as f32),
        (ColumnType::Double, J::Number(n)) => Value::Double(n.as_f64().ok_or_else(bad)?),
        (ColumnType::String, J::String(s)) => Value::String(s.clone()),
        (ColumnType::Bytes, J::String(s)) => Value::Bytes(s.clone().into_bytes()),
        (ColumnType::Bytes, J::Array(items)) => Value::Bytes(
            items
                .iter()
                .map(|i| i.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(bad)?,
        ),
        (ColumnType::Decimal { .. }, J::String(s)) => decimal(s).ok_or_else(bad)?,
        (ColumnType::Decimal { .. }, J::Number(n)) => decimal(&n.to_string()).ok_or_else(bad)?,
        (ColumnType::Date, J::Number(n)) => Value::Date(
            n.as_i64()
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(bad)?,
        ),
        (ColumnType::Date, J::String(s)) => Value::Date(parse_date(s).ok_or_else(bad)?),
        (ColumnType::Time, J::Number(n)) => Value::Time(
            n.as_i64()
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(bad)?,
        ),
        (ColumnType::Time, J::String(s)) => {
            let ms = parse_timestamp(&format!("1970-01-01 {s}")).ok_or_else(bad)?;
            Value::Time(ms as i32)
        }
        (ColumnType::Timestamp(_), J::Number(n)) => Value::Timestamp(n.as_i64().ok_or_else(bad)?),
        (ColumnType::Timestamp(_), J::String(s)) => {
            Value::Timestamp(parse_timestamp(s).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    })
}

/// Plain decimal text (`-12.50`) as an unscaled integer and its scale.
fn decimal(text: &str) -> Option<Value> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || frac.len() > 38
    {
        return None;
    }
    let unscaled: i128 = format!("{int}{frac}").parse().ok()?;
    Some(Value::Decimal {
        unscaled: if negative { -unscaled } else { unscaled },
        scale: frac.len() as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    #[derive(Serialize)]
    struct Trade {
        id: i64,
        #[serde(rename = "sym")]
        symbol: String,
        price: String,
        day: String,
        note: Option<String>,
    }

    #[test]
    fn fields_map_by_serde_name_and_type() {
        let schema = ParquetSchema::new(vec![
            Column::new("sym", ColumnType::String),
            Column::new("id", ColumnType::BigInt),
            Column::new(
                "price",
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            Column::new("day", ColumnType::Date),
            Column::new("note", ColumnType::String),
        ])
        .unwrap();
        let mut row = Vec::new();
        SerdeRows
            .to_row(
                &Trade {
                    id: 7,
                    symbol: "ABC".into(),
                    price: "-12.5".into(),
                    day: "1970-01-02".into(),
                    note: None,
                },
                &schema,
                &mut row,
            )
            .unwrap();
        assert_eq!(
            row,
            vec![
                Value::String("ABC".into()),
                Value::Integer(7),
                Value::Decimal {
                    unscaled: -125,
                    scale: 1
                },
                Value::Date(1),
                Value::Null,
            ]
        );
    }

    #[test]
    fn a_field_of_the_wrong_type_names_its_column() {
        let schema = ParquetSchema::new(vec![Column::new("id", ColumnType::Boolean)]).unwrap();
        let err = SerdeRows
            .to_row(
                &Trade {
                    id: 7,
                    symbol: String::new(),
                    price: String::new(),
                    day: String::new(),
                    note: None,
                },
                &schema,
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(err.to_string().starts_with("column 'id'"), "{err}");
        let err = SerdeRows
            .to_row(&5u32, &schema, &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("not to a struct"), "{err}");
    }
}
