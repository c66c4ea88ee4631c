//! Parquet part files from the exactly-once file sink: every record in exactly one
//! committed part after a failure, every part a complete Parquet file (read back with the
//! `parquet` crate's reader here; Flink reads them in e2e/tests/parquet_flink_oracle.rs),
//! every type and codec round trips, and parts roll at checkpoints and by size.

use fjord::checkpoint::RestartStrategy;
use fjord::sinks::{BulkFormat, ExactlyOnceFileSink, RollingPolicy};
use fjord::sources::GeneratorSource;
use fjord::storage::StorageOptions;
use fjord::{BoxError, MapFunction, RuntimeContext, StreamExecutionEnvironment};
use fjord_parquet::{
    Codec, Column, ColumnType, ParquetFormat, ParquetOptions, ParquetSchema, SerdeRows,
    TimestampEncoding, Value, read_rows,
};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: i64,
    customer: Option<String>,
    amount: f64,
    ts: i64,
}

fn order(i: u64) -> Order {
    Order {
        id: i as i64,
        customer: (!i.is_multiple_of(4)).then(|| format!("customer-{}", i % 11)),
        amount: i as f64 * 0.25,
        ts: 1_704_067_200_000 + i as i64 * 1_001,
    }
}

fn order_schema() -> ParquetSchema {
    ParquetSchema::new(vec![
        Column::new("id", ColumnType::BigInt).required(),
        Column::new("customer", ColumnType::String),
        Column::new("amount", ColumnType::Double),
        Column::new("ts", ColumnType::Timestamp(TimestampEncoding::Int96)),
    ])
    .unwrap()
}

/// Panics once, in the first attempt, at the `at`-th record of the subtask.
#[derive(Clone)]
struct FailOnce {
    at: u64,
    attempt: u32,
    seen: u64,
}

impl<T: Send + 'static> MapFunction<T, T> for FailOnce {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.attempt = ctx.attempt_number;
        self.seen = 0;
        Ok(())
    }

    fn map(&mut self, v: T) -> Result<T, BoxError> {
        self.seen += 1;
        if self.attempt == 0 && self.seen == self.at {
            panic!("injected failure at record {}", self.seen);
        }
        Ok(v)
    }
}

fn orders_from(parts: Vec<(String, Vec<u8>)>) -> Vec<Order> {
    let mut got = Vec::new();
    for (name, bytes) in parts {
        assert!(name.ends_with(".parquet"), "{name}");
        for row in read_rows(bytes).unwrap() {
            let get = |n: &str| row.iter().find(|(c, _)| c == n).unwrap().1.clone();
            got.push(Order {
                id: match get("id") {
                    Value::Integer(i) => i,
                    v => panic!("id {v:?}"),
                },
                customer: match get("customer") {
                    Value::String(s) => Some(s),
                    Value::Null => None,
                    v => panic!("customer {v:?}"),
                },
                amount: match get("amount") {
                    Value::Double(d) => d,
                    v => panic!("amount {v:?}"),
                },
                ts: match get("ts") {
                    Value::Timestamp(t) => t,
                    v => panic!("ts {v:?}"),
                },
            });
        }
    }
    got.sort_by_key(|o| o.id);
    got
}

#[test]
fn every_order_is_in_exactly_one_committed_parquet_part_after_a_failure() {
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let records = 4000;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(10));
    env.checkpoint_config(|c| c.storage = "memory://parquet-exactly-once".into());
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 5,
        delay: Duration::from_millis(5),
    });
    let format =
        ParquetFormat::<Order>::new(order_schema(), ParquetOptions::default(), SerdeRows).unwrap();
    env.from_source(
        GeneratorSource::new(Some(records), order).with_rate(40_000.0),
        "orders",
    )
    .uid("orders")
    .set_parallelism(1)
    .rebalance()
    .map(FailOnce {
        at: 900,
        attempt: 0,
        seen: 0,
    })
    .uid("fail")
    .sink_to_transactional(ExactlyOnceFileSink::for_format(&url, format), "parquet")
    .uid("parquet");
    let result = env.execute("parquet exactly once").unwrap();
    assert!(
        result.attempts > 1,
        "the injected failure restarted the job"
    );
    let parts = ExactlyOnceFileSink::committed_parts(&url, &StorageOptions::default()).unwrap();
    assert!(
        parts.len() > 2,
        "parts rolled at checkpoints: {}",
        parts.len()
    );
    let expected: Vec<Order> = (0..records).map(order).collect();
    assert_eq!(orders_from(parts), expected);
    assert!(
        std::fs::read_dir(out.path().join(".pending"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "no pending part is left"
    );
}

#[test]
fn parts_roll_by_size_and_each_is_a_complete_file() {
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let records = 3000;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    // Row groups of ~4 KiB, parts of ~16 KiB: several row groups per part, several parts.
    let options = ParquetOptions {
        row_group_bytes: 4096,
        ..ParquetOptions::default()
    };
    let format = ParquetFormat::<Order>::new(order_schema(), options, SerdeRows).unwrap();
    env.from_source(GeneratorSource::new(Some(records), order), "orders")
        .sink_to_transactional(
            ExactlyOnceFileSink::for_format(&url, format)
                .with_rolling_policy(RollingPolicy::on_checkpoint().with_part_size(16 << 10)),
            "parquet",
        );
    env.execute("parquet by size").unwrap();
    let parts = ExactlyOnceFileSink::committed_parts(&url, &StorageOptions::default()).unwrap();
    assert!(parts.len() > 2, "parts rolled by size: {}", parts.len());
    for (name, bytes) in &parts {
        let reader =
            parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes.clone()))
                .unwrap_or_else(|e| panic!("{name} is not a complete Parquet file: {e}"));
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        assert!(meta.num_row_groups() > 1, "{name}: several row groups");
    }
    let expected: Vec<Order> = (0..records).map(order).collect();
    assert_eq!(orders_from(parts), expected);
}

/// Every column type, NULLs included, through every codec and timestamp encoding.
#[test]
fn every_type_round_trips_through_every_codec_and_timestamp_encoding() {
    let schema = |ts| {
        ParquetSchema::new(vec![
            Column::new("b", ColumnType::Boolean),
            Column::new("t", ColumnType::TinyInt),
            Column::new("s", ColumnType::SmallInt),
            Column::new("i", ColumnType::Int),
            Column::new("l", ColumnType::BigInt),
            Column::new("f", ColumnType::Float),
            Column::new("d", ColumnType::Double),
            Column::new("str", ColumnType::String),
            Column::new("bytes", ColumnType::Bytes),
            Column::new(
                "d5",
                ColumnType::Decimal {
                    precision: 5,
                    scale: 2,
                },
            ),
            Column::new(
                "d15",
                ColumnType::Decimal {
                    precision: 15,
                    scale: 3,
                },
            ),
            Column::new(
                "d30",
                ColumnType::Decimal {
                    precision: 30,
                    scale: 4,
                },
            ),
            Column::new("day", ColumnType::Date),
            Column::new("time", ColumnType::Time),
            Column::new("ts", ColumnType::Timestamp(ts)),
        ])
        .unwrap()
    };
    let rows = vec![
        vec![
            Value::Boolean(true),
            Value::Integer(-128),
            Value::Integer(32_767),
            Value::Integer(i64::from(i32::MIN)),
            Value::Integer(i64::MAX),
            Value::Float(1.5),
            Value::Double(-2.25e300),
            Value::String("zeichen ü 字".into()),
            Value::Bytes(vec![0, 255, 7]),
            Value::Decimal {
                unscaled: -99_999,
                scale: 2,
            },
            Value::Decimal {
                unscaled: 123_456_789_012_345,
                scale: 3,
            },
            Value::Decimal {
                unscaled: -(10i128.pow(29) + 7),
                scale: 4,
            },
            Value::Date(-1),
            Value::Time(86_399_999),
            Value::Timestamp(-1),
        ],
        vec![Value::Null; 15],
        vec![
            Value::Boolean(false),
            Value::Integer(0),
            Value::Integer(-1),
            Value::Integer(42),
            Value::Integer(-42),
            Value::Float(-0.0),
            Value::Double(0.1),
            Value::String(String::new()),
            Value::Bytes(Vec::new()),
            Value::Decimal {
                unscaled: 1,
                scale: 2,
            },
            Value::Decimal {
                unscaled: -1,
                scale: 3,
            },
            Value::Decimal {
                unscaled: 5,
                scale: 4,
            },
            Value::Date(19_723),
            Value::Time(0),
            Value::Timestamp(1_704_067_201_250),
        ],
    ];
    for codec in [
        Codec::Uncompressed,
        Codec::Snappy,
        Codec::Gzip,
        Codec::Lz4Raw,
    ] {
        for ts in [
            TimestampEncoding::Int96,
            TimestampEncoding::Int64Millis,
            TimestampEncoding::Int64Micros,
        ] {
            let options = ParquetOptions {
                codec,
                timestamps: ts,
                ..ParquetOptions::default()
            };
            let format = ParquetFormat::<Vec<Value>>::new(
                schema(ts),
                options,
                |r: &Vec<Value>, _: &ParquetSchema, out: &mut Vec<Value>| {
                    out.extend(r.iter().cloned());
                    Ok(())
                },
            )
            .unwrap();
            let mut writer = format.create().unwrap();
            for row in &rows {
                writer.add_element(row.clone()).unwrap();
            }
            let bytes = writer.finish().unwrap();
            let back: Vec<Vec<Value>> = read_rows(bytes)
                .unwrap()
                .into_iter()
                .map(|r| r.into_iter().map(|(_, v)| v).collect())
                .collect();
            assert_eq!(back, rows, "{codec:?} {ts:?}");
        }
    }
}

#[test]
fn a_value_that_does_not_fit_its_column_is_refused_by_name() {
    let schema = ParquetSchema::new(vec![
        Column::new("id", ColumnType::BigInt).required(),
        Column::new("small", ColumnType::TinyInt),
        Column::new(
            "price",
            ColumnType::Decimal {
                precision: 4,
                scale: 2,
            },
        ),
    ])
    .unwrap();
    let format = ParquetFormat::<Vec<Value>>::new(
        schema,
        ParquetOptions::default(),
        |r: &Vec<Value>, _: &ParquetSchema, out: &mut Vec<Value>| {
            out.extend(r.iter().cloned());
            Ok(())
        },
    )
    .unwrap();
    let mut writer = format.create().unwrap();
    let cases = [
        (
            vec![Value::Null, Value::Null, Value::Null],
            "column 'id': NULL in a REQUIRED",
        ),
        (
            vec![Value::Integer(1), Value::Integer(300), Value::Null],
            "column 'small': 300 is out of range for TINYINT",
        ),
        (
            vec![
                Value::Integer(1),
                Value::Null,
                Value::Decimal {
                    unscaled: 1234,
                    scale: 3,
                },
            ],
            "column 'price': 1234E-3 does not fit DECIMAL(4, 2)",
        ),
        (
            vec![Value::String("x".into()), Value::Null, Value::Null],
            "column 'id': a STRING value does not go into a BigInt column",
        ),
    ];
    for (row, message) in cases {
        let err = writer.add_element(row).unwrap_err().to_string();
        assert!(err.starts_with(message), "{err}");
    }
    // The refused rows left nothing behind: one good row, one row in the file.
    writer
        .add_element(vec![Value::Integer(1), Value::Integer(2), Value::Null])
        .unwrap();
    assert_eq!(read_rows(writer.finish().unwrap()).unwrap().len(), 1);
}
