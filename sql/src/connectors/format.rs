//! Row formats shared by the connectors that read and write bytes (`filesystem`, `kafka`):
//! Flink's `csv` (RFC 4180 quoting) and `json` (one object per row) formats, their options,
//! and the conversion of one CSV record or JSON object to a row and back. Flink's `avro` and
//! `avro-confluent` formats (message connectors only) live in [`super::format_avro`].

use crate::types::{
    DataType, Row, Schema, Value, format_double, format_float, format_timestamp_compact,
    parse_timestamp,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fjord::BoxError;
use std::collections::BTreeMap;

/// A row format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// CSV (RFC 4180 quoting).
    Csv {
        /// `csv.field-delimiter` (one character, default `,`).
        delimiter: u8,
        /// `csv.null-literal` (default: none, and an empty field of a non-STRING column is an
        /// error, as in Flink; `''` reads every empty field as NULL).
        null_literal: Option<String>,
    },
    /// One JSON object per line.
    Json,
    /// One protobuf message per record (message connectors only: no line or file framing).
    Protobuf(Box<super::format_protobuf::ProtobufRows>),
    /// `avro` / `avro-confluent`: one Avro datum per message (message connectors only).
    Avro(super::format_avro::AvroFormat),
}

/// The format named by a table's `format` option and its options, and whether
/// `<format>.ignore-parse-errors` is set. `connector_options` are the connector's own options
/// (besides `connector` and `format`); any other option is refused, naming those allowed.
///
/// # Errors
/// A missing or unknown format, an unknown option, a malformed option value.
pub fn from_options(
    o: &BTreeMap<String, String>,
    connector_options: &[&str],
) -> Result<(Format, bool), String> {
    let format_name = o.get("format").map(String::as_str).unwrap_or("");
    let allowed = |own: &[&'static str]| {
        let mut all: Vec<&str> = connector_options.to_vec();
        all.push("format");
        all.extend(own);
        all
    };
    let format = match format_name {
        "csv" => {
            super::only_options(
                o,
                &allowed(&[
                    "csv.field-delimiter",
                    "csv.null-literal",
                    "csv.ignore-parse-errors",
                ]),
            )?;
            let delimiter = match o.get("csv.field-delimiter").map(String::as_bytes) {
                None => b',',
                Some([d]) => *d,
                Some(_) => {
                    return Err("option 'csv.field-delimiter' must be one character".into());
                }
            };
            Format::Csv {
                delimiter,
                null_literal: o.get("csv.null-literal").cloned(),
            }
        }
        "json" => {
            super::only_options(o, &allowed(&["json.ignore-parse-errors"]))?;
            Format::Json
        }
        "protobuf" => {
            super::only_options(o, &allowed(super::format_protobuf::OPTIONS))?;
            Format::Protobuf(Box::new(
                super::format_protobuf::ProtobufRows::from_options(o)?,
            ))
        }
        "avro" | "avro-confluent" => {
            use super::format_avro::{AVRO_OPTIONS, AvroFormat, CONFLUENT_OPTIONS};
            let own = if format_name == "avro" {
                AVRO_OPTIONS
            } else {
                CONFLUENT_OPTIONS
            };
            super::only_options(o, &allowed(own))?;
            Format::Avro(AvroFormat::from_options(format_name, o)?)
        }
        "" => {
            return Err(
                "set 'format' = 'csv', 'json', 'avro', 'avro-confluent' or 'protobuf'".into(),
            );
        }
        other => {
            return Err(format!(
                "format '{other}' is not supported; use 'csv', 'json', 'avro', 'avro-confluent' or 'protobuf'"
            ));
        }
    };
    let ignore = super::bool_option(o, &format!("{format_name}.ignore-parse-errors"), false)?;
    Ok((format, ignore))
}

/// Reads a text field of a CSV row as a column type (`Err` says why not).
pub(crate) fn read_field(
    text: &str,
    t: DataType,
    null_literal: Option<&str>,
) -> Result<Value, String> {
    // As Flink's CSV format: only `csv.null-literal` reads as NULL; an empty field of a
    // non-STRING column is an error (set 'csv.null-literal' = '' to read it as NULL).
    if null_literal == Some(text) {
        return Ok(Value::Null);
    }
    let bad = || format!("cannot read '{text}' as {t}");
    let s = text.trim();
    Ok(match t {
        DataType::Boolean => match s.to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(bad()),
        },
        DataType::TinyInt => Value::TinyInt(s.parse().map_err(|_| bad())?),
        DataType::SmallInt => Value::SmallInt(s.parse().map_err(|_| bad())?),
        DataType::Int => Value::Int(s.parse().map_err(|_| bad())?),
        DataType::Float => Value::Float(s.parse().map_err(|_| bad())?),
        // As Flink: `new BigDecimal(text)` in the column's precision and scale, rounded
        // HALF_UP; a value with too many digits reads as NULL.
        DataType::Decimal(p, sc) => crate::decimal::parse(s, p, sc)
            .map_err(|_| bad())?
            .map_or(Value::Null, Value::Decimal),
        DataType::BigInt | DataType::Interval => Value::BigInt(s.parse().map_err(|_| bad())?),
        DataType::Double => Value::Double(s.parse().map_err(|_| bad())?),
        DataType::String => Value::String(text.to_string()),
        DataType::Timestamp => Value::Timestamp(parse_timestamp(s).ok_or_else(bad)?),
        // As Flink's formats write an instant: `2024-01-01 00:00:01.5Z` (UTC).
        DataType::TimestampLtz => {
            Value::TimestampLtz(parse_timestamp(s.strip_suffix('Z').unwrap_or(s)).ok_or_else(bad)?)
        }
        DataType::Row(_) | DataType::Array(_) | DataType::Map(_) => {
            return Err(format!(
                "a {t} field cannot be read from text; use the json format for nested data"
            ));
        }
        DataType::Date => Value::Date(crate::types::parse_date(s).ok_or_else(bad)?),
        DataType::Time(p) => {
            let ms = crate::types::parse_time(s).ok_or_else(bad)?;
            Value::Time(crate::types::truncate_time(ms, p), p)
        }
        // Flink's formats carry BYTES as base64.
        DataType::Bytes => Value::Bytes(BASE64.decode(s).map_err(|_| bad())?),
    })
}

pub(crate) fn read_json(v: &serde_json::Value, t: DataType) -> Result<Value, String> {
    use serde_json::Value as J;
    let bad = || format!("cannot read {v} as {t}");
    Ok(match (v, t) {
        (J::Null, _) => Value::Null,
        (J::String(s), _) => read_field(s, t, None)?,
        (J::Bool(b), DataType::Boolean) => Value::Boolean(*b),
        (J::Number(n), DataType::Int) => Value::Int(
            n.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(bad)?,
        ),
        (J::Number(n), DataType::BigInt) => Value::BigInt(n.as_i64().ok_or_else(bad)?),
        (J::Number(n), DataType::Double) => Value::Double(n.as_f64().ok_or_else(bad)?),
        (J::Number(n), DataType::TinyInt) => Value::TinyInt(
            n.as_i64()
                .and_then(|i| i8::try_from(i).ok())
                .ok_or_else(bad)?,
        ),
        (J::Number(n), DataType::SmallInt) => Value::SmallInt(
            n.as_i64()
                .and_then(|i| i16::try_from(i).ok())
                .ok_or_else(bad)?,
        ),
        (J::Number(n), DataType::Float) => Value::Float(n.as_f64().ok_or_else(bad)? as f32),
        (J::Number(n), DataType::Decimal(..)) => read_field(&n.to_string(), t, None)?,
        (J::Number(n), DataType::TimestampLtz) => Value::TimestampLtz(n.as_i64().ok_or_else(bad)?),
        (J::Object(obj), DataType::Row(fields)) => Value::Row(
            fields
                .iter()
                .map(|f| match obj.get(&f.name) {
                    None => Ok(Value::Null),
                    Some(j) => {
                        read_json(j, f.data_type).map_err(|e| format!("field '{}': {e}", f.name))
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        (J::Array(items), DataType::Array(element)) => Value::Array(
            items
                .iter()
                .map(|j| read_json(j, *element))
                .collect::<Result<_, _>>()?,
        ),
        (J::Object(obj), DataType::Map(kv)) => Value::Map(
            obj.iter()
                .map(|(k, j)| Ok((read_field(k, kv.0, None)?, read_json(j, kv.1)?)))
                .collect::<Result<_, String>>()?,
        ),
        (other, DataType::String) => Value::String(other.to_string()),
        _ => return Err(bad()),
    })
}

/// The row of one CSV record. With `ignore`, a field that does not read is NULL and a
/// record with another number of fields is padded or cut; without, both are errors.
///
/// # Errors
/// What is wrong, naming the column (the caller adds where the record is).
pub fn decode_csv(
    record: &csv::StringRecord,
    schema: &Schema,
    null_literal: Option<&str>,
    ignore: bool,
) -> Result<Row, String> {
    if record.len() != schema.columns.len() && !ignore {
        return Err(format!(
            "the row has {} fields but the table has {} columns ({})",
            record.len(),
            schema.columns.len(),
            schema.names()
        ));
    }
    let mut row = Vec::with_capacity(schema.columns.len());
    for (i, c) in schema.columns.iter().enumerate() {
        let v = match record.get(i) {
            None => Value::Null,
            Some(text) => match read_field(text, c.data_type, null_literal) {
                Ok(v) => v,
                Err(_) if ignore => Value::Null,
                Err(e) => return Err(format!("column '{}': {e}", c.name)),
            },
        };
        row.push(v);
    }
    Ok(row)
}

/// The row of one JSON object (fields by column name; missing fields are NULL). `Ok(None)`
/// when the text is not an object and `ignore` is set (the row is skipped, as Flink does).
///
/// # Errors
/// Not an object, or a field that does not read as its column's type (without `ignore`).
pub fn decode_json(text: &str, schema: &Schema, ignore: bool) -> Result<Option<Row>, String> {
    match super::format_json::decode(text, schema) {
        Some(row) => Ok(Some(row)),
        None => decode_json_tree(text, schema, ignore),
    }
}

/// [`decode_json`] through a `serde_json::Value` tree: every line the schema-directed path
/// does not take, with the error messages and the `ignore` rules.
pub(crate) fn decode_json_tree(
    text: &str,
    schema: &Schema,
    ignore: bool,
) -> Result<Option<Row>, String> {
    let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(text) {
        Ok(o) => o,
        Err(_) if ignore => return Ok(None),
        Err(e) => return Err(format!("not a JSON object: {e}")),
    };
    let mut row = Vec::with_capacity(schema.columns.len());
    for c in &schema.columns {
        let v = match obj.get(&c.name) {
            None => Value::Null,
            Some(j) => match read_json(j, c.data_type) {
                Ok(v) => v,
                Err(_) if ignore => Value::Null,
                Err(e) => return Err(format!("field '{}': {e}", c.name)),
            },
        };
        row.push(v);
    }
    Ok(Some(row))
}

/// A value as Flink's CSV and JSON formats write it.
fn csv_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Boolean(b) => b.to_string(),
        Value::Double(d) => format_double(*d),
        // Jackson's normalized BigDecimal: `12.5` for 12.50, `2E+1` for 20.00.
        Value::Decimal(d) => d.to_format_string(),
        Value::Timestamp(ms) => format_timestamp_compact(*ms),
        Value::TimestampLtz(ms) => format!("{}Z", format_timestamp_compact(*ms)),
        Value::Time(ms, _) => crate::types::format_time_compact(*ms),
        Value::Bytes(b) => BASE64.encode(b),
        other => other.to_sql_string().unwrap_or_default(),
    }
}

/// Checks that a table's physical columns fit the format (only `protobuf` constrains them:
/// every column must name a field of a type it can hold).
///
/// # Errors
/// The first column that does not fit, and why.
pub fn check_schema(format: &Format, schema: &Schema) -> Result<(), String> {
    match format {
        Format::Protobuf(rows) => rows.check(schema),
        Format::Csv { .. } | Format::Json | Format::Avro(_) => Ok(()),
    }
}

/// One row in `format`, as Flink writes it, without a line terminator.
///
/// # Errors
/// The CSV writer's failure (not expected for in-memory output); for Avro, a value that does
/// not fit its column's Avro type or the schema registry's refusal or absence.
pub fn encode(format: &Format, schema: &Schema, value: &Row) -> Result<Vec<u8>, BoxError> {
    Ok(match format {
        Format::Avro(avro) => avro.encode(schema, value)?,
        Format::Csv {
            delimiter,
            null_literal,
        } => {
            let mut w = csv::WriterBuilder::new()
                .delimiter(*delimiter)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            let fields: Vec<String> = value
                .iter()
                .map(|v| match (v, null_literal) {
                    (Value::Null, Some(n)) => n.clone(),
                    _ => csv_text(v),
                })
                .collect();
            w.write_record(&fields)?;
            let mut line = w.into_inner().map_err(|e| e.to_string())?;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            line
        }
        Format::Json => {
            // Fields in column order, as Flink's JSON format writes them.
            let mut out = String::from("{");
            for (i, (c, v)) in schema.columns.iter().zip(value).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_name(&c.name).to_string());
                out.push(':');
                json_text(v, c.data_type, &mut out);
            }
            out.push('}');
            out.into_bytes()
        }
        Format::Protobuf(rows) => rows.encode(value, schema)?,
    })
}

fn json_name(name: &str) -> serde_json::Value {
    serde_json::Value::from(name)
}

/// Appends a value of type `t` as Flink's JSON format (Jackson) writes it: numbers in Java's
/// text (`1.0E10`, `12.5`, `2E+1`), NaN and infinities (which JSON has no number for) as
/// strings, a ROW as an object of its fields, an ARRAY as an array, a MAP as an object (keys
/// as text).
fn json_text(v: &Value, t: DataType, out: &mut String) {
    use std::fmt::Write;
    fn list<'a>(
        out: &mut String,
        (open, close): (char, char),
        items: impl Iterator<Item = (Option<std::borrow::Cow<'a, str>>, &'a Value, DataType)>,
    ) {
        out.push(open);
        for (i, (name, v, t)) in items.enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(name) = name {
                out.push_str(&json_name(&name).to_string());
                out.push(':');
            }
            json_text(v, t, out);
        }
        out.push(close);
    }
    match (v, t) {
        (Value::Null, _) => out.push_str("null"),
        (Value::Boolean(b), _) => {
            let _ = write!(out, "{b}");
        }
        (Value::TinyInt(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::SmallInt(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::Int(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::BigInt(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::Float(f), _) if f.is_finite() => out.push_str(&format_float(*f)),
        (Value::Double(d), _) if d.is_finite() => out.push_str(&format_double(*d)),
        (Value::Decimal(d), _) => out.push_str(&d.to_format_string()),
        (Value::Row(values), DataType::Row(fields)) => list(
            out,
            ('{', '}'),
            fields
                .iter()
                .zip(values)
                .map(|(f, v)| (Some(f.name.as_str().into()), v, f.data_type)),
        ),
        (Value::Array(items), DataType::Array(element)) => {
            list(out, ('[', ']'), items.iter().map(|v| (None, v, *element)))
        }
        (Value::Map(entries), DataType::Map(kv)) => list(
            out,
            ('{', '}'),
            entries
                .iter()
                .map(|(k, v)| (Some(csv_text(k).into()), v, kv.1)),
        ),
        (other, _) => out.push_str(&serde_json::Value::from(csv_text(other)).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Column;

    /// The lines Flink 2.3's csv and json formats read and wrote for a table (id INT,
    /// b TINYINT, s SMALLINT, f FLOAT, d DECIMAL(10, 2), tiny DECIMAL(12, 10), dd DOUBLE)
    /// (a batch job, filesystem source and sinks, probed by hand).
    #[test]
    fn numbers_read_and_write_as_flinks_csv_and_json_formats() {
        use DataType::*;
        let types = [
            Int,
            TinyInt,
            SmallInt,
            Float,
            Decimal(10, 2),
            Decimal(12, 10),
            Double,
        ];
        let schema = Schema {
            columns: ["id", "b", "s", "f", "d", "tiny", "dd"]
                .iter()
                .zip(types)
                .map(|(name, data_type)| Column {
                    name: (*name).into(),
                    data_type,
                    rowtime: false,
                })
                .collect(),
        };
        for (input, csv_out, json_out) in [
            (
                "1,100,30000,1.5,12.5,0.0000000015,1.0E10",
                "1,100,30000,1.5,12.5,1.5E-9,1.0E10",
                r#"{"id":1,"b":100,"s":30000,"f":1.5,"d":12.5,"tiny":1.5E-9,"dd":1.0E10}"#,
            ),
            (
                "2,-128,-32768,3.0E10,20.00,0.1,0.1",
                "2,-128,-32768,3.0000001E10,2E+1,0.1,0.1",
                r#"{"id":2,"b":-128,"s":-32768,"f":3.0000001E10,"d":2E+1,"tiny":0.1,"dd":0.1}"#,
            ),
            (
                "3,,,,,,",
                "3,,,,,,",
                r#"{"id":3,"b":null,"s":null,"f":null,"d":null,"tiny":null,"dd":null}"#,
            ),
            (
                "4,1,2,0.1,1.005,1,2",
                "4,1,2,0.1,1.01,1,2.0",
                r#"{"id":4,"b":1,"s":2,"f":0.1,"d":1.01,"tiny":1,"dd":2.0}"#,
            ),
        ] {
            let record = csv::StringRecord::from(input.split(',').collect::<Vec<_>>());
            let row = decode_csv(&record, &schema, Some(""), false).unwrap();
            let no_null_literal = Format::Csv {
                delimiter: b',',
                null_literal: None,
            };
            let written = encode(&no_null_literal, &schema, &row).unwrap();
            assert_eq!(
                std::string::String::from_utf8(written).unwrap(),
                csv_out,
                "{input}"
            );
            let json = encode(&Format::Json, &schema, &row).unwrap();
            assert_eq!(
                std::string::String::from_utf8(json).unwrap(),
                json_out,
                "{input}"
            );
            // What Flink writes, Flink (and Fjord) reads back to the same row.
            let back = decode_json(json_out, &schema, false).unwrap().unwrap();
            assert_eq!(back, row, "{json_out}");
        }
        // Flink's json format also reads numbers given as strings; a TINYINT out of range
        // is an error (NULL with ignore-parse-errors).
        let row = decode_json(r#"{"s":"-32768","f":"3.0E10","d":"20.00"}"#, &schema, false)
            .unwrap()
            .unwrap();
        assert_eq!(row[2], Value::SmallInt(-32768));
        assert_eq!(row[3], Value::Float(3.0e10));
        assert!(decode_json(r#"{"b":300}"#, &schema, false).is_err());
        assert!(read_field("1.0E10", Decimal(10, 2), None) == Ok(Value::Null));
    }

    /// Flink 2.3's csv and json formats over (id INT, bb BYTES, t0 TIME(0), t3 TIME(3)).
    #[test]
    fn bytes_and_times_read_and_write_as_flinks_formats() {
        use DataType::*;
        let schema = Schema {
            columns: ["id", "bb", "t0", "t3"]
                .iter()
                .zip([Int, Bytes, Time(0), Time(3)])
                .map(|(name, data_type)| Column {
                    name: (*name).into(),
                    data_type,
                    rowtime: false,
                })
                .collect(),
        };
        let csv = Format::Csv {
            delimiter: b',',
            null_literal: None,
        };
        for (input, json) in [
            (
                "1,aGk=,12:34:56,12:34:56.789",
                r#"{"id":1,"bb":"aGk=","t0":"12:34:56","t3":"12:34:56.789"}"#,
            ),
            (
                "2,,00:00:00,23:59:59.999",
                r#"{"id":2,"bb":null,"t0":"00:00:00","t3":"23:59:59.999"}"#,
            ),
        ] {
            let record = csv::StringRecord::from(input.split(',').collect::<Vec<_>>());
            let row = decode_csv(&record, &schema, Some(""), false).unwrap();
            assert_eq!(
                std::string::String::from_utf8(encode(&csv, &schema, &row).unwrap()).unwrap(),
                input
            );
            assert_eq!(
                std::string::String::from_utf8(encode(&Format::Json, &schema, &row).unwrap())
                    .unwrap(),
                json
            );
            assert_eq!(decode_json(json, &schema, false).unwrap().unwrap(), row);
        }
        assert_eq!(
            read_field("aGk=", Bytes, None),
            Ok(Value::Bytes(b"hi".to_vec()))
        );
        assert!(read_field("not base64!", Bytes, None).is_err());
        assert_eq!(
            read_field("12:34:56.789", Time(0), None),
            Ok(Value::Time(45_296_000, 0))
        );
    }

    #[test]
    fn dates_read_and_write_as_yyyy_mm_dd_in_csv_and_json() {
        assert_eq!(
            read_field("2024-01-05", DataType::Date, None),
            Ok(Value::Date(19_727))
        );
        assert!(read_field("2024-02-30", DataType::Date, None).is_err());
        let json: serde_json::Value = serde_json::from_str("\"2024-01-05\"").unwrap();
        assert_eq!(read_json(&json, DataType::Date), Ok(Value::Date(19_727)));
        let schema = Schema {
            columns: vec![Column {
                name: "d".into(),
                data_type: DataType::Date,
                rowtime: false,
            }],
        };
        let row = vec![Value::Date(19_727)];
        let csv = Format::Csv {
            delimiter: b',',
            null_literal: None,
        };
        assert_eq!(encode(&csv, &schema, &row).unwrap(), b"2024-01-05");
        assert_eq!(
            encode(&Format::Json, &schema, &row).unwrap(),
            br#"{"d":"2024-01-05"}"#
        );
    }
}
