//! The datum and wire-format functions and the registry client's checks, without a server:
//! serde values round trip as the Avro binary encoding, a reader schema resolves older records,
//! malformed bytes are errors naming the problem, frames carry the big-endian id.

use fjord_avro::wire::{frame, unframe};
use fjord_avro::{AvroDeserializer, AvroError, AvroSerializer, SchemaRegistryClient};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct V1 {
    id: i64,
    item: String,
    note: Option<String>,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct V2 {
    id: i64,
    item: String,
    qty: i32,
}

const V1: &str = r#"{"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"}, {"name": "item", "type": "string"},
    {"name": "note", "type": ["null", "string"], "default": null}]}"#;
const V2: &str = r#"{"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"}, {"name": "item", "type": "string"},
    {"name": "qty", "type": "int", "default": 1}]}"#;

#[test]
fn serde_values_round_trip_and_are_the_avro_binary_encoding() {
    let w = AvroSerializer::<V1>::new(V1).unwrap();
    let v = V1 {
        id: 3,
        item: "tea".into(),
        note: None,
    };
    let bytes = w.to_bytes(&v).unwrap();
    // long 3 zig-zag = 6; string: length 3 zig-zag = 6, "tea"; union index 0 (null).
    assert_eq!(bytes, [6, 6, b't', b'e', b'a', 0]);
    let r = AvroDeserializer::<V1>::new(V1).unwrap();
    assert_eq!(r.from_bytes(&bytes).unwrap(), v);
    let with_note = V1 {
        note: Some("hot".into()),
        ..v
    };
    let bytes = w.to_bytes(&with_note).unwrap();
    assert_eq!(&bytes[5..], [2, 6, b'h', b'o', b't']);
    assert_eq!(r.from_bytes(&bytes).unwrap(), with_note);
}

#[test]
fn a_reader_schema_resolves_older_records() {
    let bytes = AvroSerializer::<V1>::new(V1)
        .unwrap()
        .to_bytes(&V1 {
            id: 9,
            item: "cake".into(),
            note: Some("x".into()),
        })
        .unwrap();
    let r = AvroDeserializer::<V2>::new(V1)
        .unwrap()
        .reader_schema(V2)
        .unwrap();
    assert_eq!(
        r.from_bytes(&bytes).unwrap(),
        V2 {
            id: 9,
            item: "cake".into(),
            qty: 1
        }
    );
}

#[test]
fn malformed_bytes_and_unfit_values_are_errors_naming_the_problem() {
    let r = AvroDeserializer::<V1>::new(V1).unwrap();
    // Truncated: the string says 3 bytes, one follows.
    let e = r.from_bytes(&[6, 6, b't']).unwrap_err();
    assert!(matches!(e, AvroError::Decode(_)), "{e}");
    // A union index out of range.
    let e = r.from_bytes(&[6, 2, b'x', 8]).unwrap_err();
    assert!(e.to_string().starts_with("malformed Avro record"), "{e}");
    // Bytes left over.
    let e = r.from_bytes(&[6, 2, b'x', 0, 0]).unwrap_err();
    assert!(e.to_string().contains("1 bytes left"), "{e}");
    // A value without a field the schema needs.
    #[derive(serde::Serialize)]
    struct NoItem {
        id: i64,
    }
    let e = AvroSerializer::<NoItem>::new(V1)
        .unwrap()
        .to_bytes(&NoItem { id: 1 })
        .unwrap_err();
    assert!(matches!(e, AvroError::Encode(_)), "{e}");
    assert!(matches!(
        AvroSerializer::<V1>::new("{\"type\": \"recrd\"}"),
        Err(AvroError::Schema(_))
    ));
}

#[test]
fn frames_carry_the_big_endian_id_before_the_datum() {
    let framed = frame(0x0102_0304, &[9, 8]);
    assert_eq!(framed, [0, 1, 2, 3, 4, 9, 8]);
    assert_eq!(unframe(&framed).unwrap(), (0x0102_0304, &[9u8, 8][..]));
    assert_eq!(unframe(&[0, 0, 0, 0, 7]).unwrap(), (7, &[][..]));
    let e = unframe(&[0, 0, 1]).unwrap_err().to_string();
    assert!(e.contains("3 bytes"), "{e}");
    let e = unframe(b"{\"a\":1}").unwrap_err().to_string();
    assert!(e.contains("first byte is 123"), "{e}");
}

#[test]
fn subjects_follow_the_topic_name_strategy() {
    use fjord_avro::registry::topic_subject;
    assert_eq!(topic_subject("orders", false), "orders-value");
    assert_eq!(topic_subject("orders", true), "orders-key");
}

#[test]
fn urls_must_be_http() {
    let e = SchemaRegistryClient::new("localhost:8081").unwrap_err();
    assert!(e.to_string().contains("http://"), "{e}");
    let c = SchemaRegistryClient::new("http://localhost:8081/").unwrap();
    assert_eq!(c.url(), "http://localhost:8081");
}

/// apache-avro reads a string cut short by the end of the input as null; the decoder refuses it.
#[test]
fn a_string_cut_short_is_malformed_not_null() {
    let s = fjord_avro::parse_schema(
        r#"{"type": "record", "name": "r", "fields": [
            {"name": "id", "type": ["null", "int"]}, {"name": "name", "type": ["null", "string"]}]}"#,
    )
    .unwrap();
    let e = fjord_avro::decode_value(&s, None, &[2, 2, 2, 40, b'x']).unwrap_err();
    assert!(e.to_string().contains("ends inside a value"), "{e}");
    let ok = fjord_avro::decode_value(&s, None, &[2, 2, 2, 2, b'x']).unwrap();
    assert!(ok.validate(&s));
}
