//! Flink's `debezium-json` format: each record value is one change in Debezium's envelope,
//! `{"before": {...} | null, "after": {...} | null, "op": "c" | "r" | "u" | "d"}`, so a Kafka
//! table in this format is a changelog, read and written.
//!
//! - Reading (Flink's `DebeziumJsonDeserializationSchema`): `c` (create) and `r` (snapshot
//!   read) are `+I` of `after`; `u` is `-U` of `before` then `+U` of `after`; `d` is `-D` of
//!   `before`. With `debezium-json.schema-include` the envelope is the `payload` of a
//!   `{"schema": ..., "payload": ...}` message (Kafka Connect's JSON converter with schemas).
//!   A record without value (a Debezium tombstone after a delete) is skipped.
//! - Writing (Flink's `DebeziumJsonSerializationSchema`): `+I` and `+U` are
//!   `{"before":null,"after":{row},"op":"c"}`, `-U` and `-D` are
//!   `{"before":{row},"after":null,"op":"d"}` (an update is a delete then a create, as Flink
//!   writes it).
//!
//! The rows inside the envelope are read and written as the `json` format does.

use super::format::{self, Format};
use crate::changelog::{Change, RowKind};
use crate::types::{Row, Schema, Value};
use fjord::BoxError;
use std::collections::BTreeMap;

/// The format's own options (besides `format`).
pub const OPTIONS: &[&str] = &[
    "debezium-json.ignore-parse-errors",
    "debezium-json.schema-include",
];

/// The `debezium-json` format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebeziumJson {
    /// `debezium-json.schema-include`: the envelope is under `payload`.
    pub schema_include: bool,
    /// `debezium-json.ignore-parse-errors`: a record that does not read is skipped.
    pub ignore_parse_errors: bool,
}

impl DebeziumJson {
    /// The format's options from a table's options (`format` = `debezium-json`); the caller
    /// has refused options it does not know.
    ///
    /// # Errors
    /// A boolean option that is not `true`/`false`.
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        Ok(DebeziumJson {
            schema_include: super::bool_option(o, "debezium-json.schema-include", false)?,
            ignore_parse_errors: super::bool_option(o, "debezium-json.ignore-parse-errors", false)?,
        })
    }

    /// The changes of one record value (none for a record skipped under
    /// `ignore-parse-errors`).
    ///
    /// # Errors
    /// Not a JSON object, an unknown `op`, an update or delete without `before`, a field that
    /// does not read as its column's type.
    pub fn decode(&self, value: &[u8], schema: &Schema) -> Result<Vec<Change>, String> {
        match self.decode_strict(value, schema) {
            Err(_) if self.ignore_parse_errors => Ok(Vec::new()),
            other => other,
        }
    }

    fn decode_strict(&self, value: &[u8], schema: &Schema) -> Result<Vec<Change>, String> {
        let text =
            std::str::from_utf8(value).map_err(|e| format!("the value is not UTF-8: {e}"))?;
        let mut json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a debezium-json message: {e}"))?;
        if self.schema_include {
            json = match json {
                serde_json::Value::Object(mut o) => o.remove("payload").ok_or(
                    "no \"payload\" in the message ('debezium-json.schema-include' = 'true' expects {\"schema\": ..., \"payload\": ...})",
                )?,
                _ => return Err("not a JSON object".into()),
            };
        }
        let serde_json::Value::Object(mut envelope) = json else {
            return Err("not a JSON object".into());
        };
        let mut row = |field: &str| -> Result<Option<Row>, String> {
            match envelope.remove(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Object(o)) => row_of(&o, schema)
                    .map(Some)
                    .map_err(|e| format!("\"{field}\": {e}")),
                Some(other) => Err(format!("\"{field}\" is not an object: {other}")),
            }
        };
        let (before, after) = (row("before")?, row("after")?);
        let op = envelope
            .get("op")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let need = |r: Option<Row>, what: &str| {
            r.ok_or_else(|| format!("the \"{what}\" of an op \"{op}\" message is null"))
        };
        Ok(match op {
            "c" | "r" => vec![Change {
                kind: RowKind::Insert,
                row: need(after, "after")?,
            }],
            "u" => vec![
                Change {
                    kind: RowKind::UpdateBefore,
                    row: need(before, "before").map_err(|e| {
                        format!("{e} (a Debezium PostgreSQL table needs REPLICA IDENTITY FULL)")
                    })?,
                },
                Change {
                    kind: RowKind::UpdateAfter,
                    row: need(after, "after")?,
                },
            ],
            "d" => vec![Change {
                kind: RowKind::Delete,
                row: need(before, "before")?,
            }],
            other => {
                return Err(format!(
                    "unknown \"op\" value '{other}' (debezium-json reads 'c', 'r', 'u' and 'd')"
                ));
            }
        })
    }

    /// One change as a record value: `+I`/`+U` a create of the row, `-U`/`-D` a delete.
    ///
    /// # Errors
    /// None expected (the JSON writer writes to memory); kept for the sink's signature.
    pub fn encode(&self, change: &Change, schema: &Schema) -> Result<Vec<u8>, BoxError> {
        let n = schema.columns.len();
        let row = if change.row.len() > n {
            &change.row[..n]
        } else {
            &change.row[..]
        };
        let json = format::encode(&Format::Json, schema, &row.to_vec())?;
        let mut out = Vec::with_capacity(json.len() + 40);
        if change.kind.is_accumulate() {
            out.extend_from_slice(br#"{"before":null,"after":"#);
            out.extend_from_slice(&json);
            out.extend_from_slice(br#","op":"c"}"#);
        } else {
            out.extend_from_slice(br#"{"before":"#);
            out.extend_from_slice(&json);
            out.extend_from_slice(br#","after":null,"op":"d"}"#);
        }
        Ok(out)
    }
}

/// A row of a JSON object, fields by column name (missing ones NULL), as the `json` format.
fn row_of(
    obj: &serde_json::Map<String, serde_json::Value>,
    schema: &Schema,
) -> Result<Row, String> {
    schema
        .columns
        .iter()
        .map(|c| match obj.get(&c.name) {
            None => Ok(Value::Null),
            Some(j) => {
                format::read_json(j, c.data_type).map_err(|e| format!("field '{}': {e}", c.name))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Column, DataType};

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column {
                    name: "id".into(),
                    data_type: DataType::Int,
                    rowtime: false,
                },
                Column {
                    name: "name".into(),
                    data_type: DataType::String,
                    rowtime: false,
                },
            ],
        }
    }

    fn row(id: i32, name: &str) -> Row {
        vec![Value::Int(id), Value::String(name.into())]
    }

    const PLAIN: DebeziumJson = DebeziumJson {
        schema_include: false,
        ignore_parse_errors: false,
    };

    #[test]
    fn ops_read_as_flinks_change_kinds() {
        let s = schema();
        let read = |text: &str| PLAIN.decode(text.as_bytes(), &s).unwrap();
        assert_eq!(
            read(r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c"}"#),
            vec![Change::insert(row(1, "a"))]
        );
        assert_eq!(
            read(r#"{"after":{"id":1,"name":"a"},"op":"r","ts_ms":5}"#),
            vec![Change::insert(row(1, "a"))]
        );
        assert_eq!(
            read(r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#),
            vec![
                Change {
                    kind: RowKind::UpdateBefore,
                    row: row(1, "a")
                },
                Change {
                    kind: RowKind::UpdateAfter,
                    row: row(1, "b")
                }
            ]
        );
        assert_eq!(
            read(r#"{"before":{"id":1,"name":"b"},"after":null,"op":"d"}"#),
            vec![Change {
                kind: RowKind::Delete,
                row: row(1, "b")
            }]
        );
        let with_schema = DebeziumJson {
            schema_include: true,
            ..PLAIN
        };
        assert_eq!(
            with_schema
                .decode(
                    br#"{"schema":{},"payload":{"before":null,"after":{"id":2},"op":"c"}}"#,
                    &s
                )
                .unwrap(),
            vec![Change::insert(vec![Value::Int(2), Value::Null])]
        );
        for (bad, why) in [
            (r#"{"after":{"id":1},"op":"x"}"#, "unknown \"op\""),
            (r#"{"after":{"id":1},"op":"u"}"#, "REPLICA IDENTITY FULL"),
            (r#"{"after":{"id":"q"},"op":"c"}"#, "field 'id'"),
            ("nope", "not a debezium-json message"),
        ] {
            let err = PLAIN.decode(bad.as_bytes(), &s).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            let lenient = DebeziumJson {
                ignore_parse_errors: true,
                ..PLAIN
            };
            assert_eq!(lenient.decode(bad.as_bytes(), &s).unwrap(), vec![]);
        }
    }

    #[test]
    fn changes_write_as_creates_and_deletes_and_read_back() {
        let s = schema();
        let text = |kind| {
            String::from_utf8(
                PLAIN
                    .encode(
                        &Change {
                            kind,
                            row: row(1, "a"),
                        },
                        &s,
                    )
                    .unwrap(),
            )
            .unwrap()
        };
        let create = r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c"}"#;
        let delete = r#"{"before":{"id":1,"name":"a"},"after":null,"op":"d"}"#;
        assert_eq!(text(RowKind::Insert), create);
        assert_eq!(text(RowKind::UpdateAfter), create);
        assert_eq!(text(RowKind::UpdateBefore), delete);
        assert_eq!(text(RowKind::Delete), delete);
        assert_eq!(
            PLAIN.decode(delete.as_bytes(), &s).unwrap()[0].kind,
            RowKind::Delete
        );
    }
}
