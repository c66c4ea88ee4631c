//! Flink's `protobuf` format: a row as one protobuf message, the columns matched to the
//! message's fields by name. Flink names a generated Java class
//! (`protobuf.message-class-name`); Fjord has no generated code to load, so a table names the
//! message type (`protobuf.message-name`) and where its definition is: a `.proto` file,
//! compiled when the job is planned (`protobuf.proto-file`, no `protoc` needed), or a
//! descriptor set (`protobuf.descriptor-file`).

use crate::types::{DataType, Row, Schema, Value};
use fjord_protobuf::{
    DynamicMessage, EnumDescriptor, EnumValueDescriptor, FieldDescriptor, Kind, MessageSchema,
    Value as Pb,
};
use prost::Message as _;
use std::collections::BTreeMap;
use std::path::Path;

/// The options of the `protobuf` format, besides `protobuf.ignore-parse-errors`.
pub(crate) const OPTIONS: &[&str] = &[
    "protobuf.message-name",
    "protobuf.proto-file",
    "protobuf.descriptor-file",
    "protobuf.read-default-values",
    "protobuf.write-null-string-literal",
    "protobuf.ignore-parse-errors",
];

/// The message type of a `protobuf` table and how it reads absent fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtobufRows {
    schema: MessageSchema,
    /// An absent field reads as its default instead of NULL: `protobuf.read-default-values`,
    /// and always for a proto3 message (as Flink 2.3 reads them, whatever the option says).
    read_default_values: bool,
}

impl ProtobufRows {
    /// Reads the format's options and loads the message type.
    ///
    /// # Errors
    /// What is missing or wrong, and what to set.
    pub(crate) fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        if o.contains_key("protobuf.message-class-name") {
            return Err("'protobuf.message-class-name' names a generated Java class, which Fjord has no use for: set 'protobuf.message-name' to the message's protobuf name (package.Message) and 'protobuf.proto-file' to the .proto file that defines it".into());
        }
        let message = o
            .get("protobuf.message-name")
            .filter(|m| !m.trim().is_empty())
            .ok_or("set 'protobuf.message-name' to the message type's full protobuf name (package.Message)")?;
        let schema = match (
            o.get("protobuf.proto-file"),
            o.get("protobuf.descriptor-file"),
        ) {
            (Some(file), None) => MessageSchema::from_proto_file(Path::new(file), &[], message)
                .map_err(|e| e.to_string())?,
            (None, Some(file)) => {
                let bytes = std::fs::read(file)
                    .map_err(|e| format!("cannot read 'protobuf.descriptor-file' {file}: {e}"))?;
                MessageSchema::from_descriptor_set(&bytes, message).map_err(|e| e.to_string())?
            }
            (Some(_), Some(_)) => {
                return Err(
                    "set one of 'protobuf.proto-file' and 'protobuf.descriptor-file', not both"
                        .into(),
                );
            }
            (None, None) => {
                return Err("set 'protobuf.proto-file' to the .proto file defining the message (or 'protobuf.descriptor-file' to a descriptor set from protoc --include_imports --descriptor_set_out)".into());
            }
        };
        // Flink 2.3 reads a proto3 message's absent fields as their defaults whatever the
        // option says (its ProtoToRowConverter forces it; checked against Flink by the e2e
        // test), even an absent `optional` field: "" for a string, not NULL.
        let read_default_values =
            super::bool_option(o, "protobuf.read-default-values", false)? || schema.is_proto3();
        Ok(ProtobufRows {
            schema,
            read_default_values,
        })
    }

    /// Checks that every column names a field of a type it can hold (Flink's type mapping).
    ///
    /// # Errors
    /// The first column that does not, and why.
    pub(crate) fn check(&self, schema: &Schema) -> Result<(), String> {
        for c in &schema.columns {
            let field = self.field(&c.name)?;
            if field.is_map() || field.is_list() {
                return Err(format!(
                    "column '{}': the field is a {} field, which would be a {} column; Fjord SQL has no ARRAY or MAP types yet",
                    c.name,
                    if field.is_map() { "map" } else { "repeated" },
                    if field.is_map() { "MAP" } else { "ARRAY" },
                ));
            }
            let ok = match field.kind() {
                Kind::Bool => c.data_type == DataType::Boolean,
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
                    c.data_type == DataType::Int
                }
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                    c.data_type == DataType::BigInt
                }
                Kind::Float => c.data_type == DataType::Float,
                Kind::Double => c.data_type == DataType::Double,
                Kind::String => c.data_type == DataType::String,
                Kind::Bytes => c.data_type == DataType::Bytes,
                Kind::Enum(_) => matches!(
                    c.data_type,
                    DataType::String
                        | DataType::TinyInt
                        | DataType::SmallInt
                        | DataType::Int
                        | DataType::BigInt
                ),
                Kind::Message(m) => {
                    return Err(format!(
                        "column '{}': the field is a message ({}), which would be a ROW column; Fjord SQL has no ROW type yet",
                        c.name,
                        m.full_name()
                    ));
                }
            };
            if !ok {
                return Err(format!(
                    "column '{}' is {} but the protobuf field is {}; declare it {}",
                    c.name,
                    c.data_type,
                    kind_name(&field.kind()),
                    sql_type_for(&field.kind())
                ));
            }
        }
        Ok(())
    }

    fn field(&self, column: &str) -> Result<FieldDescriptor, String> {
        self.schema
            .descriptor()
            .get_field_by_name(column)
            .ok_or_else(|| {
                let fields: Vec<String> = self
                    .schema
                    .descriptor()
                    .fields()
                    .map(|f| f.name().to_string())
                    .collect();
                format!(
                    "column '{column}' is not a field of {} (its fields: {})",
                    self.schema.full_name(),
                    fields.join(", ")
                )
            })
    }

    /// One message as a row: an absent field is NULL, or its default with
    /// `protobuf.read-default-values`.
    ///
    /// # Errors
    /// Bytes that are not a message of the type, a column that is not a field.
    pub(crate) fn decode(&self, bytes: &[u8], schema: &Schema) -> Result<Row, String> {
        let message = self.schema.decode(bytes).map_err(|e| e.to_string())?;
        schema
            .columns
            .iter()
            .map(|c| {
                let field = self.field(&c.name)?;
                if !self.read_default_values && !message.has_field(&field) {
                    return Ok(Value::Null);
                }
                read(&message.get_field(&field), &field, c.data_type)
                    .map_err(|e| format!("field '{}': {e}", c.name))
            })
            .collect()
    }

    /// A row as one message: NULL columns leave their fields unset.
    ///
    /// # Errors
    /// A column that is not a field, or holds a value its field cannot take.
    pub(crate) fn encode(&self, row: &Row, schema: &Schema) -> Result<Vec<u8>, String> {
        let mut message: DynamicMessage = self.schema.new_message();
        for (c, v) in schema.columns.iter().zip(row) {
            if matches!(v, Value::Null) {
                continue;
            }
            let field = self.field(&c.name)?;
            let value = write(v, &field).map_err(|e| format!("column '{}': {e}", c.name))?;
            message.set_field(&field, value);
        }
        Ok(message.encode_to_vec())
    }
}

/// A field's value as its column's type (integers as Java reads them: uint32 and uint64
/// wrap into INT and BIGINT, enums as their name or number).
fn read(v: &Pb, field: &FieldDescriptor, t: DataType) -> Result<Value, String> {
    Ok(match (v, t) {
        (Pb::Bool(b), _) => Value::Boolean(*b),
        (Pb::I32(i), _) => Value::Int(*i),
        (Pb::U32(i), _) => Value::Int(*i as i32),
        (Pb::I64(i), _) => Value::BigInt(*i),
        (Pb::U64(i), _) => Value::BigInt(*i as i64),
        (Pb::F32(f), _) => Value::Float(*f),
        (Pb::F64(f), _) => Value::Double(*f),
        (Pb::String(s), _) => Value::String(s.clone()),
        (Pb::Bytes(b), _) => Value::Bytes(b.to_vec()),
        (Pb::EnumNumber(n), DataType::String) => {
            let Kind::Enum(e) = field.kind() else {
                return Err("not an enum field".into());
            };
            // An unknown number (a newer writer's value): Java's UNRECOGNIZED.
            Value::String(
                e.get_value(*n)
                    .map_or("UNRECOGNIZED".to_string(), |v| v.name().to_string()),
            )
        }
        (Pb::EnumNumber(n), DataType::TinyInt) => Value::TinyInt(*n as i8),
        (Pb::EnumNumber(n), DataType::SmallInt) => Value::SmallInt(*n as i16),
        (Pb::EnumNumber(n), DataType::Int) => Value::Int(*n),
        (Pb::EnumNumber(n), DataType::BigInt) => Value::BigInt(i64::from(*n)),
        (other, t) => return Err(format!("cannot read {other:?} as {t}")),
    })
}

/// A column's value as its field's.
fn write(v: &Value, field: &FieldDescriptor) -> Result<Pb, String> {
    let int = |v: &Value| -> Option<i64> {
        match v {
            Value::TinyInt(i) => Some(i64::from(*i)),
            Value::SmallInt(i) => Some(i64::from(*i)),
            Value::Int(i) => Some(i64::from(*i)),
            Value::BigInt(i) => Some(*i),
            _ => None,
        }
    };
    let bad = || {
        format!(
            "cannot write {v:?} into a {} field",
            kind_name(&field.kind())
        )
    };
    Ok(match (field.kind(), v) {
        (Kind::Bool, Value::Boolean(b)) => Pb::Bool(*b),
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, Value::Int(i)) => Pb::I32(*i),
        (Kind::Uint32 | Kind::Fixed32, Value::Int(i)) => Pb::U32(*i as u32),
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, Value::BigInt(i)) => Pb::I64(*i),
        (Kind::Uint64 | Kind::Fixed64, Value::BigInt(i)) => Pb::U64(*i as u64),
        (Kind::Float, Value::Float(f)) => Pb::F32(*f),
        (Kind::Double, Value::Double(d)) => Pb::F64(*d),
        (Kind::String, Value::String(s)) => Pb::String(s.clone()),
        (Kind::Bytes, Value::Bytes(b)) => Pb::Bytes(b.clone().into()),
        // As Flink: a name or number the enum does not have writes its first value.
        (Kind::Enum(e), Value::String(name)) => Pb::EnumNumber(
            e.get_value_by_name(name)
                .unwrap_or_else(|| first_value(&e))
                .number(),
        ),
        (Kind::Enum(e), v) => {
            let n = int(v).ok_or_else(bad)?;
            Pb::EnumNumber(
                i32::try_from(n)
                    .ok()
                    .and_then(|n| e.get_value(n))
                    .unwrap_or_else(|| first_value(&e))
                    .number(),
            )
        }
        _ => return Err(bad()),
    })
}

fn first_value(e: &EnumDescriptor) -> EnumValueDescriptor {
    e.values()
        .next()
        .expect("a protobuf enum has at least one value")
}

/// A field kind as the .proto file writes it.
fn kind_name(k: &Kind) -> String {
    match k {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// The SQL type Flink maps a field kind to.
fn sql_type_for(k: &Kind) -> &'static str {
    match k {
        Kind::Bool => "BOOLEAN",
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => "INT",
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => "BIGINT",
        Kind::Float => "FLOAT",
        Kind::Double => "DOUBLE",
        Kind::String => "STRING",
        Kind::Bytes => "BYTES",
        Kind::Enum(_) => "STRING (the value's name) or INT (its number)",
        Kind::Message(_) => "ROW (not supported yet)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"
syntax = "proto2";
package shop;
message Order {
  optional int64 id = 1;
  optional string customer = 2;
  optional double amount = 3 [default = 1.5];
  optional Status status = 4;
  optional uint32 qty = 5;
  optional bytes tag = 6;
  repeated string notes = 7;
  optional Address address = 8;
  enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }
}
message Address { optional string city = 1; }
"#;

    const PROTO3: &str = r#"
syntax = "proto3";
package shop;
message Event { int64 id = 1; optional string name = 2; }
"#;

    fn rows(text: &str, message: &str, extra: &[(&str, &str)]) -> Result<ProtobufRows, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.proto");
        std::fs::write(&file, text).unwrap();
        let mut o: BTreeMap<String, String> = [
            ("protobuf.message-name", message),
            ("protobuf.proto-file", file.to_str().unwrap()),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        o.insert("format".into(), "protobuf".into());
        ProtobufRows::from_options(&o)
    }

    fn schema(columns: &[(&str, DataType)]) -> Schema {
        Schema::of(columns)
    }

    #[test]
    fn rows_round_trip_and_absent_fields_read_as_null_or_default() {
        let s = schema(&[
            ("id", DataType::BigInt),
            ("customer", DataType::String),
            ("amount", DataType::Double),
            ("status", DataType::String),
            ("qty", DataType::Int),
            ("tag", DataType::Bytes),
        ]);
        let f = rows(PROTO, "shop.Order", &[]).unwrap();
        f.check(&s).unwrap();
        let row = vec![
            Value::BigInt(7),
            Value::String("alice".into()),
            Value::Double(10.5),
            Value::String("PAID".into()),
            Value::Int(-1),
            Value::Bytes(vec![1, 2]),
        ];
        let bytes = f.encode(&row, &s).unwrap();
        assert_eq!(f.decode(&bytes, &s).unwrap(), row);
        // NULLs leave fields unset: they read back as NULL (presence is tracked in proto2) ...
        let nulls = vec![
            Value::BigInt(8),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ];
        let bytes = f.encode(&nulls, &s).unwrap();
        assert_eq!(f.decode(&bytes, &s).unwrap(), nulls);
        // ... or as their defaults (the declared one for amount) with read-default-values.
        let d = rows(
            PROTO,
            "shop.Order",
            &[("protobuf.read-default-values", "true")],
        )
        .unwrap();
        assert_eq!(
            d.decode(&bytes, &s).unwrap(),
            vec![
                Value::BigInt(8),
                Value::String(String::new()),
                Value::Double(1.5),
                Value::String("NEW".into()),
                Value::Int(0),
                Value::Bytes(vec![]),
            ]
        );
        let err = f.decode(&[0x0a, 0x09], &s).unwrap_err();
        assert!(err.contains("not a valid shop.Order message"), "{err}");
    }

    #[test]
    fn enums_read_and_write_as_names_or_numbers_unknown_ones_as_the_first_value() {
        let f = rows(PROTO, "shop.Order", &[]).unwrap();
        let by_number = schema(&[("status", DataType::Int)]);
        let by_name = schema(&[("status", DataType::String)]);
        f.check(&by_number).unwrap();
        let bytes = f.encode(&vec![Value::Int(2)], &by_number).unwrap();
        assert_eq!(
            f.decode(&bytes, &by_name).unwrap(),
            vec![Value::String("SHIPPED".into())]
        );
        // As Flink: a name or number the enum does not have writes its first value.
        for unknown in [Value::String("LOST".into()), Value::Int(9)] {
            let s = if matches!(unknown, Value::Int(_)) {
                &by_number
            } else {
                &by_name
            };
            let bytes = f.encode(&vec![unknown], s).unwrap();
            assert_eq!(f.decode(&bytes, &by_number).unwrap(), vec![Value::Int(0)]);
        }
    }

    #[test]
    fn columns_that_do_not_fit_the_message_are_refused_when_planned() {
        let f = rows(PROTO, "shop.Order", &[]).unwrap();
        let err = |cols: &[(&str, DataType)]| f.check(&schema(cols)).unwrap_err();
        let e = err(&[("idd", DataType::BigInt)]);
        assert!(
            e.contains("'idd' is not a field of shop.Order") && e.contains("customer"),
            "{e}"
        );
        let e = err(&[("id", DataType::Int)]);
        assert!(e.contains("declare it BIGINT"), "{e}");
        let e = err(&[("notes", DataType::String)]);
        assert!(e.contains("repeated") && e.contains("ARRAY"), "{e}");
        let e = err(&[("address", DataType::String)]);
        assert!(e.contains("shop.Address") && e.contains("ROW"), "{e}");
        // Any proto3 field fits: absent ones read as their defaults, as in Flink.
        let p3 = rows(PROTO3, "shop.Event", &[]).unwrap();
        let s3 = schema(&[("id", DataType::BigInt), ("name", DataType::String)]);
        p3.check(&s3).unwrap();
        let empty = p3
            .encode(&vec![Value::BigInt(0), Value::Null], &s3)
            .unwrap();
        assert!(
            empty.is_empty(),
            "proto3 writes neither a 0 nor an absent field"
        );
        assert_eq!(
            p3.decode(&empty, &s3).unwrap(),
            vec![Value::BigInt(0), Value::String(String::new())]
        );
    }

    #[test]
    fn options_say_what_to_set() {
        let e = rows(PROTO, "shop.Nope", &[]).unwrap_err();
        assert!(
            e.contains("no message type 'shop.Nope'") && e.contains("shop.Order"),
            "{e}"
        );
        let e = rows(
            PROTO,
            "shop.Order",
            &[("protobuf.message-class-name", "com.x.Order")],
        )
        .unwrap_err();
        assert!(e.contains("protobuf.message-name"), "{e}");
        let mut o = BTreeMap::new();
        o.insert(
            "protobuf.message-name".to_string(),
            "shop.Order".to_string(),
        );
        let e = ProtobufRows::from_options(&o).unwrap_err();
        assert!(e.contains("protobuf.proto-file"), "{e}");
    }
}
