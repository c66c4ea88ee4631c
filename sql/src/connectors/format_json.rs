//! Schema-directed JSON decoding: a JSON object read straight into a row of the table's
//! types, without building a `serde_json::Value` tree first (no map of every key, no copy of
//! the fields the table does not have). It reads what [`super::format::read_json`] reads; any
//! value it does not take on this path (a type mismatch, a number out of its column's range,
//! malformed JSON)
//! makes it give up, and the caller decodes the line the general way, which has the error
//! messages and the `ignore-parse-errors` rules.

use super::format::read_field;
use crate::composite::Field;
use crate::types::{DataType, Row, Schema, Value};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The row of one JSON object, or `None` when this path does not take the line.
pub(crate) fn decode(text: &str, schema: &Schema) -> Option<Row> {
    let mut de = serde_json::Deserializer::from_str(text);
    let row = ObjectSeed(schema).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(row)
}

/// The index of the field a key names: the one after the previous key's first (writers
/// usually keep the declared order), else any; `next` moves past the match.
fn position(len: usize, next: &mut usize, is: impl Fn(usize) -> bool) -> Option<usize> {
    let found = if *next < len && is(*next) {
        Some(*next)
    } else {
        (0..len).find(|&i| is(i))
    };
    if let Some(i) = found {
        *next = i + 1;
    }
    found
}

/// The values of `len` named fields from a JSON object, in field order: a missing field is
/// NULL, a key that names no field is skipped.
fn read_object<'de, 'f, A: MapAccess<'de>>(
    mut map: A,
    len: usize,
    name: impl Fn(usize) -> &'f str,
    data_type: impl Fn(usize) -> DataType,
) -> Result<Vec<Value>, A::Error> {
    let mut values = vec![Value::Null; len];
    let mut next = 0;
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        match position(len, &mut next, |i| name(i) == key) {
            Some(i) => values[i] = map.next_value_seed(ValueSeed(data_type(i)))?,
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(values)
}

/// Gives up on this path (the caller decodes the line the general way).
fn give_up<E: de::Error>() -> E {
    E::custom("not on the fast path")
}

/// A JSON object read into a row of a table's columns.
struct ObjectSeed<'a>(&'a Schema);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<Value>, A::Error> {
        let columns = &self.0.columns;
        read_object(
            map,
            columns.len(),
            |i| &columns[i].name,
            |i| columns[i].data_type,
        )
    }
}

/// One value of a type.
struct ValueSeed(DataType);

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            DataType::Row(fields) => d.deserialize_any(RowVisitor(&fields)),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON value for {}", self.0)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        match self.0 {
            DataType::Boolean => Ok(Value::Boolean(b)),
            DataType::String => Ok(Value::String(b.to_string())),
            _ => Err(give_up()),
        }
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(match self.0 {
            DataType::BigInt => Value::BigInt(i),
            DataType::Int => Value::Int(i32::try_from(i).map_err(|_| give_up())?),
            DataType::SmallInt => Value::SmallInt(i16::try_from(i).map_err(|_| give_up())?),
            DataType::TinyInt => Value::TinyInt(i8::try_from(i).map_err(|_| give_up())?),
            DataType::Double => Value::Double(i as f64),
            DataType::Float => Value::Float(i as f32),
            DataType::TimestampLtz => Value::TimestampLtz(i),
            DataType::String => Value::String(i.to_string()),
            // The number's text, as the general path reads a DECIMAL.
            DataType::Decimal(..) => {
                read_field(&i.to_string(), self.0, None).map_err(|_| give_up())?
            }
            _ => return Err(give_up()),
        })
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        match i64::try_from(u) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Err(give_up()),
        }
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(match self.0 {
            DataType::Double => Value::Double(f),
            DataType::Float => Value::Float(f as f32),
            // serde_json keeps a JSON number with a fraction as an f64 and writes it back the
            // same way on both paths (`Number`'s text), so a DECIMAL or STRING column reads
            // the same digits here as through the general path.
            DataType::Decimal(..) | DataType::String => {
                let text = serde_json::Number::from_f64(f)
                    .ok_or_else(give_up)?
                    .to_string();
                match self.0 {
                    DataType::String => Value::String(text),
                    t => read_field(&text, t, None).map_err(|_| give_up())?,
                }
            }
            _ => return Err(give_up()),
        })
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        match self.0 {
            DataType::String => Ok(Value::String(s.to_string())),
            t => read_field(s, t, None).map_err(|_| give_up()),
        }
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        match self.0 {
            DataType::String => Ok(Value::String(s)),
            t => read_field(&s, t, None).map_err(|_| give_up()),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let DataType::Array(element) = self.0 else {
            return Err(give_up());
        };
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed(*element))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let DataType::Map(kv) = self.0 else {
            return Err(give_up());
        };
        let mut entries: Vec<(Value, Value)> = Vec::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let k = read_field(&key, kv.0, None).map_err(|_| give_up::<A::Error>())?;
            let v = map.next_value_seed(ValueSeed(kv.1))?;
            // A repeated key keeps its last value, as a JSON object read into a map does.
            match entries.iter_mut().find(|(e, _)| *e == k) {
                Some(entry) => entry.1 = v,
                None => entries.push((k, v)),
            }
        }
        Ok(Value::Map(entries))
    }
}

/// A ROW's fields from a JSON object (or NULL).
struct RowVisitor<'a>(&'a [Field]);

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object for a ROW")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let fields = self.0;
        read_object(
            map,
            fields.len(),
            |i| &fields[i].name,
            |i| fields[i].data_type,
        )
        .map(Value::Row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::format::decode_json_tree;

    #[test]
    fn the_fast_path_reads_what_the_general_path_reads() {
        let inner = DataType::row(vec![
            Field {
                name: "a".into(),
                data_type: DataType::Int,
            },
            Field {
                name: "ts".into(),
                data_type: DataType::Timestamp,
            },
        ]);
        let s = Schema::of(&[
            ("i", DataType::Int),
            ("s", DataType::String),
            ("d", DataType::Double),
            ("r", inner),
            ("xs", DataType::array(DataType::BigInt)),
            ("m", DataType::map(DataType::String, DataType::Boolean)),
            ("l", DataType::TimestampLtz),
            ("n", DataType::String),
        ]);
        for line in [
            r#"{"i":1,"s":"x\"y","d":1.5,"r":{"a":2,"ts":"2024-01-01 00:00:01","zz":[1]},"xs":[1,null,3],"m":{"k":true},"l":1000,"skip":{"a":[1,2]}}"#,
            r#"{"i":"7","s":12,"d":3,"r":null,"xs":[],"m":{},"l":null,"n":true}"#,
            r#"{"s":"only"}"#,
        ] {
            let fast = decode(line, &s).unwrap_or_else(|| panic!("fast path refused {line}"));
            assert_eq!(
                Some(fast),
                decode_json_tree(line, &s, false).unwrap(),
                "{line}"
            );
        }
        // Not taken here (the general path reads or reports them): a number too large for
        // INT, an object into a STRING column, malformed JSON.
        assert_eq!(decode(r#"{"i":3000000000}"#, &s), None);
        assert_eq!(decode(r#"{"s":{"a":1}}"#, &s), None);
        assert_eq!(decode(r#"{"i":1"#, &s), None);
        // DECIMAL (and STRING) columns read numbers as the general path does, from the same
        // text; a DECIMAL out of its precision is NULL on both.
        let d = Schema::of(&[
            ("a", DataType::Decimal(5, 2)),
            ("b", DataType::Decimal(5, 2)),
            ("c", DataType::Decimal(3, 0)),
            ("s", DataType::String),
        ]);
        for line in [
            r#"{"a":1,"b":12.345,"c":"7","s":1.5}"#,
            r#"{"a":-3,"b":1e2,"c":12345,"s":0.1}"#,
        ] {
            let fast = decode(line, &d).unwrap_or_else(|| panic!("fast path refused {line}"));
            assert_eq!(
                Some(fast),
                decode_json_tree(line, &d, false).unwrap(),
                "{line}"
            );
        }
    }
}
