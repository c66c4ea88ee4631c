//! The `avro` SQL format without Kafka: a row encodes to the bytes Flink 2.3 wrote for it and
//! back, DECIMALs round trip at every width and a too-wide one is refused naming its column,
//! malformed records and options are refused with what to do.

use fjord_sql::connectors::format_avro::AvroFormat;
use fjord_sql::types::{Column, DataType, Schema, Value};
use std::collections::BTreeMap;

fn table(cols: &[(&str, DataType)]) -> Schema {
    Schema {
        columns: cols
            .iter()
            .map(|(n, t)| Column {
                name: (*n).into(),
                data_type: *t,
                rowtime: false,
            })
            .collect(),
    }
}

fn avro() -> AvroFormat {
    AvroFormat::from_options("avro", &BTreeMap::new()).unwrap()
}

/// The record value Flink 2.3's `avro` format wrote for the row
/// `1, -2, 300, 5000000000, 1.5, 2.25, 12.50, 'héllo', 2024-01-01 12:34:56.789, 2024-02-29,
/// 12:34:56.789, x'6869', true` (AvroRowDataSerializationSchema, probed with
/// `scripts/infra/flink.sh avro write`); e2e/tests/avro_flink_oracle.rs checks more rows live.
#[test]
fn a_row_encodes_to_the_bytes_flink_writes_and_back() {
    use DataType::*;
    let s = table(&[
        ("id", Int),
        ("b", TinyInt),
        ("s", SmallInt),
        ("big", BigInt),
        ("f", Float),
        ("d", Double),
        ("dec", Decimal(10, 2)),
        ("name", String),
        ("ts", Timestamp),
        ("day", Date),
        ("t", Time(3)),
        ("raw", Bytes),
        ("ok", Boolean),
    ]);
    let row = vec![
        Value::Int(1),
        Value::TinyInt(-2),
        Value::SmallInt(300),
        Value::BigInt(5_000_000_000),
        Value::Float(1.5),
        Value::Double(2.25),
        Value::Decimal(fjord_sql::decimal::Decimal {
            unscaled: 1250,
            scale: 2,
        }),
        Value::String("héllo".into()),
        Value::Timestamp(1_704_112_496_789),
        Value::Date(19_782),
        Value::Time(45_296_789, 3),
        Value::Bytes(b"hi".to_vec()),
        Value::Boolean(true),
    ];
    let flink = "0202020302d8040280c8afa025020000c03f020000000000000240020404e2020c68c3a96c6c6f02aa82a9d09863028cb50202aab2992b020468690201";
    let bytes = avro().encode(&s, &row).unwrap();
    let hex: std::string::String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, flink);
    assert_eq!(avro().decode(&s, &bytes).unwrap(), row);
    let nulls: fjord_sql::types::Row = std::iter::once(Value::Int(2))
        .chain(std::iter::repeat_n(Value::Null, 12))
        .collect();
    let bytes = avro().encode(&s, &nulls).unwrap();
    assert_eq!(bytes, [2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(avro().decode(&s, &bytes).unwrap(), nulls);
}

#[test]
fn decimals_narrow_and_widen_as_flink_reads_them() {
    let s = table(&[("d", DataType::Decimal(4, 2))]);
    let f = avro();
    for unscaled in [0i128, 1, -1, 127, 128, -128, -129, 9999, -9999] {
        let row = vec![Value::Decimal(fjord_sql::decimal::Decimal {
            unscaled,
            scale: 2,
        })];
        let bytes = f.encode(&s, &row).unwrap();
        assert_eq!(f.decode(&s, &bytes).unwrap(), row, "{unscaled}");
    }
    // A value wider than the column is refused on write, naming the column.
    let wide = vec![Value::Decimal(fjord_sql::decimal::Decimal {
        unscaled: 123_456,
        scale: 2,
    })];
    let e = f.encode(&s, &wide).unwrap_err();
    assert!(e.contains("column 'd'"), "{e}");
}

#[test]
fn malformed_records_and_options_are_refused_with_what_to_do() {
    let s = table(&[("id", DataType::Int), ("name", DataType::String)]);
    let f = avro();
    // Union index 1, int 1, union index 1, a string of 20 bytes that are not there.
    let e = f.decode(&s, &[2, 2, 2, 40, b'x']).unwrap_err();
    assert!(e.starts_with("malformed Avro record"), "{e}");
    let e = f.decode(&s, b"{\"id\": 1}").unwrap_err();
    assert!(e.starts_with("malformed Avro record"), "{e}");
    let e = AvroFormat::from_options("avro-confluent", &BTreeMap::new()).unwrap_err();
    assert!(e.contains("avro-confluent.url"), "{e}");
    let o: BTreeMap<_, _> = [("avro.encoding".to_string(), "json".to_string())].into();
    let e = AvroFormat::from_options("avro", &o).unwrap_err();
    assert!(e.contains("binary"), "{e}");
    // An avro-confluent writer without a subject (a non-Kafka sink) names the option.
    let o: BTreeMap<_, _> = [(
        "avro-confluent.url".to_string(),
        "http://127.0.0.1:9".to_string(),
    )]
    .into();
    let c = AvroFormat::from_options("avro-confluent", &o).unwrap();
    let e = c.encode(&s, &vec![Value::Int(1), Value::Null]).unwrap_err();
    assert!(e.contains("avro-confluent.subject"), "{e}");
}
