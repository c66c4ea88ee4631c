//! Flink's `raw` format on the `filesystem` connector: a table of one physical column, each
//! line of a file one row.
//!
//! As Flink 2.3 reads it (checked by running Flink's filesystem connector over the same
//! files, `e2e/tests/flink_sql_oracle.rs`): lines end at `\n`, a `\r` before it is dropped,
//! the last line needs no `\n`, an empty line is a row with the empty value (not NULL). A
//! `STRING` column gets the line's text (UTF-8; invalid bytes become U+FFFD, as Java's
//! decoder), a `BYTES` column its bytes. Writing puts each value and `\n`; a NULL value fails
//! the job (Flink's raw serializer has no encoding for it).

use crate::types::{DataType, Row, Schema, Value};
use std::collections::BTreeMap;

/// The options of the `raw` format.
pub const OPTIONS: &[&str] = &["raw.charset", "raw.endianness"];

/// The `raw` format of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFormat {
    /// The column is `BYTES` (else `STRING`).
    pub bytes: bool,
}

impl RawFormat {
    /// Checks the table's columns and options.
    ///
    /// # Errors
    /// Not exactly one physical column, a column of another type than STRING or BYTES, a
    /// charset other than UTF-8, an unknown endianness.
    pub fn from_table(schema: &Schema, o: &BTreeMap<String, String>) -> Result<Self, String> {
        let [column] = schema.columns.as_slice() else {
            return Err(format!(
                "the raw format reads and writes exactly one physical column (Flink's rule), the table has {} ({}); declare one STRING or BYTES column",
                schema.columns.len(),
                schema.names()
            ));
        };
        let bytes = match column.data_type {
            DataType::String => false,
            DataType::Bytes => true,
            other => {
                return Err(format!(
                    "the raw format's column '{}' is {other}; Fjord's raw format reads lines as STRING or BYTES (Flink's binary encodings of numbers are not supported yet): declare it STRING and CAST it in the query",
                    column.name
                ));
            }
        };
        if let Some(charset) = o.get("raw.charset")
            && !charset.eq_ignore_ascii_case("UTF-8")
            && !charset.eq_ignore_ascii_case("UTF8")
        {
            return Err(format!(
                "option 'raw.charset' = '{charset}': only UTF-8 (the default) is supported"
            ));
        }
        if let Some(e) = o.get("raw.endianness")
            && e != "big-endian"
            && e != "little-endian"
        {
            return Err(format!(
                "option 'raw.endianness' = '{e}': use 'big-endian' (the default) or 'little-endian'"
            ));
        }
        Ok(RawFormat { bytes })
    }

    /// The row of one line (without its `\n`).
    pub fn decode(&self, mut line: &[u8]) -> Row {
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        vec![if self.bytes {
            Value::Bytes(line.to_vec())
        } else {
            Value::String(String::from_utf8_lossy(line).into_owned())
        }]
    }

    /// The bytes of a row's value (without `\n`).
    ///
    /// # Errors
    /// A NULL value.
    pub fn encode(&self, row: &Row) -> Result<Vec<u8>, String> {
        match row.first() {
            Some(Value::String(s)) => Ok(s.clone().into_bytes()),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            _ => Err(
                "the raw format cannot write NULL (Flink's neither); filter NULLs or use COALESCE in the query"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Column;

    fn schema(t: DataType) -> Schema {
        Schema {
            columns: vec![Column {
                name: "line".into(),
                data_type: t,
                rowtime: false,
            }],
        }
    }

    #[test]
    fn lines_read_as_flink_reads_them() {
        let raw = RawFormat::from_table(&schema(DataType::String), &BTreeMap::new()).unwrap();
        assert_eq!(raw.decode(b"  a b\r"), vec![Value::String("  a b".into())]);
        assert_eq!(raw.decode(b""), vec![Value::String(String::new())]);
        assert_eq!(
            raw.decode(b"\xffx"),
            vec![Value::String("\u{fffd}x".into())]
        );
        let raw = RawFormat::from_table(&schema(DataType::Bytes), &BTreeMap::new()).unwrap();
        assert_eq!(raw.decode(b"\xff\r"), vec![Value::Bytes(vec![0xff])]);
        assert!(raw.encode(&vec![Value::Null]).is_err());
        let e = RawFormat::from_table(&schema(DataType::Int), &BTreeMap::new()).unwrap_err();
        assert!(e.contains("declare it STRING"), "{e}");
    }
}
