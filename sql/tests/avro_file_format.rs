//! The filesystem connector's `avro` format: rows of a table round-trip through container
//! files with each codec, NULLs included, and the codecs Fjord does not write are refused
//! naming the supported ones. (Flink reading and writing them: e2e/tests/avro_file_flink_oracle.rs.)

use fjord::sinks::BulkFormat;
use fjord_sql::connectors::avro_file::{decode_file, format, options};
use fjord_sql::types::{Column, DataType, Row, Schema, Value};
use std::collections::BTreeMap;

fn table() -> Schema {
    Schema {
        columns: vec![
            ("id", DataType::BigInt),
            ("name", DataType::String),
            ("amount", DataType::Decimal(10, 2)),
            ("ts", DataType::Timestamp),
        ]
        .into_iter()
        .map(|(name, data_type)| Column {
            name: name.into(),
            data_type,
            rowtime: false,
        })
        .collect(),
    }
}

#[test]
fn rows_round_trip_through_a_container_file_with_nulls() {
    let rows: Vec<Row> = vec![
        vec![
            Value::BigInt(1),
            Value::String("zoë".into()),
            Value::Decimal(fjord_sql::decimal::parse("-12.5", 10, 2).unwrap().unwrap()),
            Value::Timestamp(1_700_000_000_123),
        ],
        vec![Value::BigInt(2), Value::Null, Value::Null, Value::Null],
    ];
    for codec in ["null", "deflate", "snappy"] {
        let o = BTreeMap::from([("avro.codec".to_string(), codec.to_string())]);
        let format = format(&table(), options(&o).unwrap()).unwrap();
        let mut w = format.create().unwrap();
        for r in &rows {
            w.add_element(r.clone()).unwrap();
        }
        let bytes = w.finish().unwrap();
        assert_eq!(decode_file(&bytes, &table()).unwrap(), rows, "{codec}");
    }
}

#[test]
fn native_codecs_are_refused_naming_the_supported_ones() {
    for codec in ["bzip2", "xz", "zstandard"] {
        let o = BTreeMap::from([("avro.codec".to_string(), codec.to_string())]);
        let e = options(&o).unwrap_err();
        assert!(
            e.contains("'avro.codec'") && e.contains(codec) && e.contains("null, deflate, snappy"),
            "{e}"
        );
    }
}

/// Planning refuses what the filesystem `avro` format cannot do, saying what to use instead.
#[test]
fn planning_refuses_bad_avro_file_options_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |with: &str| {
        fjord_sql::plan(&format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem',
               'path' = 'file://{}', {with});
             INSERT INTO out SELECT id FROM src;",
            dir.path().display()
        ))
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    plan("'format' = 'avro'").unwrap();
    plan("'format' = 'avro', 'avro.codec' = 'null', 'sink.rolling-policy.check-interval' = '5s'")
        .unwrap();
    let e = plan("'format' = 'avro', 'avro.codec' = 'zstandard'").unwrap_err();
    assert!(
        e.contains("zstandard") && e.contains("null, deflate, snappy"),
        "{e}"
    );
    let e = plan("'format' = 'avro', 'sink.rolling-policy.check-interval' = 'often'").unwrap_err();
    assert!(e.contains("sink.rolling-policy.check-interval"), "{e}");
    let e = plan("'format' = 'avro', 'avro.encoding' = 'json'").unwrap_err();
    assert!(e.contains("avro.encoding"), "{e}");
    let e = plan("'format' = 'avro-confluent', 'avro-confluent.url' = 'http://localhost:1'")
        .unwrap_err();
    assert!(e.contains("'format' = 'avro'"), "{e}");
}

/// The `sink.rolling-policy.*` options of an `avro` table reach the exactly-once sink's
/// config: Flink's defaults (1 min check interval, 30 min intervals, 128 MB) and set values.
#[test]
fn the_rolling_options_and_the_check_interval_are_read() {
    use fjord_sql::connectors::filesystem::{FileConfig, FileFormat};
    use std::time::Duration;
    let config = |with: &str| {
        let job = fjord_sql::plan(&format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem',
               'path' = '/tmp/fjord-avro-options-test', 'format' = 'avro'{with});
             INSERT INTO out SELECT id FROM src;"
        ))
        .unwrap();
        FileConfig::from_table(&job.inserts[0].sink, false).unwrap()
    };
    let default = config("");
    assert_eq!(default.check_interval, Duration::from_secs(60));
    assert_eq!(
        default.rolling.inactivity_interval,
        Some(Duration::from_secs(30 * 60))
    );
    assert_eq!(default.rolling.part_size, Some(128 << 20));
    assert_eq!(default.extension(), ".avro");
    assert_eq!(
        default.url().as_deref(),
        Some("file:///tmp/fjord-avro-options-test"),
        "a local avro path goes to the exactly-once sink"
    );
    let FileFormat::Avro(options) = default.format else {
        panic!("not the avro format: {:?}", default.format)
    };
    assert_eq!(options.codec, fjord_avro::Codec::Snappy, "Flink's default");
    let set = config(
        ", 'avro.codec' = 'deflate', 'sink.rolling-policy.check-interval' = '250 ms',
           'sink.rolling-policy.rollover-interval' = '5 s'",
    );
    assert_eq!(set.check_interval, Duration::from_millis(250));
    assert_eq!(set.rolling.rollover_interval, Some(Duration::from_secs(5)));
    let FileFormat::Avro(options) = set.format else {
        panic!("not the avro format: {:?}", set.format)
    };
    assert_eq!(options.codec, fjord_avro::Codec::Deflate);
}
