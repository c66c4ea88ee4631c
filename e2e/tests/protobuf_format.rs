//! SQL's `protobuf` format against Apache Flink's (flink-protobuf 2.3, the code Flink SQL's
//! `'format' = 'protobuf'` runs, driven by `scripts/infra/flink.sh protobuf`) over a real
//! Kafka broker: what Fjord writes, Flink reads as the same rows; what Flink writes, Fjord reads
//! as Flink does; a message that is not one fails the job naming where it is, or is skipped
//! with `protobuf.ignore-parse-errors`.
//!
//! Needs Kafka and Flink's jars (scripts/infra/install-kafka.sh, install-flink.sh).

use fjord::StreamExecutionEnvironment;
use fjord_e2e::{KafkaBroker, KafkaOptions, ProducerRecord};
use fjord_kafka::format::value_only;
use fjord_kafka::sink::{KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, OffsetsInitializer, StoppingOffsets};
use fjord_protobuf::Protobuf;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One broker for the tests of this file (each uses its own topics); `kafka.sh`'s watchdog
/// stops it when the process exits.
fn broker() -> &'static KafkaBroker {
    static BROKER: OnceLock<KafkaBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        KafkaBroker::start_with(KafkaOptions::new("protobuf"))
            .expect("start a Kafka broker (scripts/infra/install-kafka.sh installs it)")
    })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Flink's protobuf format over `lines` (`decode`: 'x'+hex messages to CSV rows with `\N` for
/// NULL; `encode`: the reverse), the message class compiled from `proto` by protoc.
fn flink(
    proto: &Path,
    class: &str,
    mode: &str,
    row_type: &str,
    read_defaults: bool,
    lines: &[String],
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let script = root().join("scripts/infra/flink.sh");
    let out = Command::new(&script)
        .arg("protobuf")
        .arg(proto)
        .arg(class)
        .arg(mode)
        .arg(row_type)
        .arg(read_defaults.to_string())
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flink.sh protobuf {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The message values of a topic as flink.sh's lines ('x' and the bytes in hex).
fn messages(broker: &KafkaBroker, topic: &str) -> Vec<String> {
    broker
        .read_committed(topic)
        .unwrap()
        .into_iter()
        .map(|r| {
            let hex: String = r
                .value
                .unwrap_or_default()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("x{hex}")
        })
        .collect()
}

fn unhex(line: &str) -> Vec<u8> {
    let hex = line.strip_prefix('x').unwrap();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Runs a Fjord SQL script on the embedded mini-cluster.
fn run_sql(script: &str) -> Result<(), String> {
    let job = fjord_sql::plan(script).map_err(|e| e.to_string())?;
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).map_err(|e| e.to_string())?;
    env.execute("protobuf format test")
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Reads `topic` with Fjord (`columns` and the format options) into CSV lines, `\N` for NULL.
fn fjord_reads(
    bootstrap: &str,
    topic: &str,
    columns: &str,
    format: &str,
) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sql(&format!(
        "CREATE TABLE messages ({columns}) WITH (
           'connector' = 'kafka', 'topic' = '{topic}',
           'properties.bootstrap.servers' = '{bootstrap}',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
           {format});
         CREATE TABLE out ({columns}) WITH ('connector' = 'filesystem', 'path' = '{}',
           'format' = 'csv', 'csv.null-literal' = '\\N');
         INSERT INTO out SELECT * FROM messages;",
        out.display()
    ))?;
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    Ok(lines)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

const SHOP: &str = r#"syntax = "proto2";
package shop;
option java_package = "fjord.test.shop";
option java_multiple_files = true;
message Item {
  optional int64 id = 1;
  optional string name = 2;
  optional double price = 3 [default = 1.5];
  optional Kind kind = 4;
  optional uint32 stock = 5;
  optional bytes tag = 6;
  optional bool active = 7;
  optional float weight = 8;
  optional sint32 delta = 9;
  enum Kind { PLAIN = 0; FRESH = 1; FROZEN = 2; }
}
"#;
const SHOP_COLUMNS: &str = "id BIGINT, name STRING, price DOUBLE, kind STRING, stock INT, \
                            tag BYTES, active BOOLEAN, weight FLOAT, delta INT";
const SHOP_ROW: &str = "ROW<id BIGINT, name STRING, price DOUBLE, kind STRING, stock INT, \
                        tag BYTES, active BOOLEAN, weight FLOAT, delta INT>";
/// Rows for Flink to write: NULLs, empty strings and bytes (set, not absent), an unsigned field
/// above i32::MAX (which Java reads as a negative INT), extremes, an enum name the type lacks.
const SHOP_ROWS: &[&str] = &[
    "7,apple,10.5,FRESH,12,AQI=,true,0.25,-3",
    "8,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N",
    "9,,1.0E10,FROZEN,0,,false,1.5E-5,2147483647",
    "-9223372036854775808,pear,-0.0,GONE,-1,/w==,true,-1.0E30,-2147483648",
];

/// The docs' example (examples/sql/protobuf_orders.sql) verbatim but for the broker's address
/// and the files' paths writes protobuf messages that Flink reads as the expected rows; Fjord
/// reading them back gives the same rows.
#[test]
fn fjord_writes_what_flink_reads_the_docs_example() {
    let broker = broker();
    broker.create_topic("order-messages", 1).unwrap();
    let example = std::fs::read_to_string(root().join("examples/sql/protobuf_orders.sql")).unwrap();
    let script = example
        .replace("'localhost:9092'", &format!("'{}'", broker.bootstrap()))
        .replace(
            "'examples/sql/",
            &format!("'{}/examples/sql/", root().display()),
        );
    assert_ne!(
        script, example,
        "the example names the broker and the files"
    );
    run_sql(&script).unwrap();

    let written = messages(broker, "order-messages");
    let proto = root().join("examples/sql/orders.proto");
    let row_type = "ROW<id BIGINT, customer STRING, amount DOUBLE, status STRING>";
    let by_flink = sorted(flink(
        &proto,
        "fjord.examples.shop.Order",
        "decode",
        row_type,
        false,
        &written,
    ));
    // examples/sql/orders.csv through the example's SELECT, worked out by hand.
    let expected: Vec<String> = [
        "1,alice,10.5,PAID",
        "2,bob,\\N,PAID",
        "3,alice,7.25,NEW",
        "4,\\N,3.0,PAID",
        "5,bob,20.0,BULK",
        "6,alice,1.0,BULK",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(by_flink, expected, "Flink's reading of Fjord's messages");
    let format = format!(
        "'format' = 'protobuf', 'protobuf.message-name' = 'shop.Order', \
         'protobuf.proto-file' = '{}'",
        proto.display()
    );
    let by_fjord = fjord_reads(
        broker.bootstrap(),
        "order-messages",
        "id BIGINT, customer STRING, amount DOUBLE, status STRING",
        &format,
    )
    .unwrap();
    assert_eq!(by_fjord, expected, "Fjord's reading of its own messages");
}

/// Flink writes every scalar kind (proto2, presence tracked); Fjord reads the bytes as Flink
/// does, with and without `protobuf.read-default-values`; and Fjord writing the rows it read
/// gives back bytes Flink reads as the same rows.
#[test]
fn fjord_reads_what_flink_writes_every_scalar_kind() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("shop.proto");
    std::fs::write(&proto, SHOP).unwrap();
    let rows: Vec<String> = SHOP_ROWS.iter().map(|s| s.to_string()).collect();
    let encoded = flink(
        &proto,
        "fjord.test.shop.Item",
        "encode",
        SHOP_ROW,
        false,
        &rows,
    );
    broker.create_topic("items", 1).unwrap();
    let records: Vec<ProducerRecord> = encoded
        .iter()
        .map(|l| ProducerRecord::value(unhex(l)))
        .collect();
    broker.produce("items", &records).unwrap();

    for read_defaults in [false, true] {
        let by_flink = sorted(flink(
            &proto,
            "fjord.test.shop.Item",
            "decode",
            SHOP_ROW,
            read_defaults,
            &encoded,
        ));
        let format = format!(
            "'format' = 'protobuf', 'protobuf.message-name' = 'shop.Item', \
             'protobuf.proto-file' = '{}', 'protobuf.read-default-values' = '{read_defaults}'",
            proto.display()
        );
        let by_fjord = fjord_reads(broker.bootstrap(), "items", SHOP_COLUMNS, &format).unwrap();
        assert_eq!(
            by_fjord, by_flink,
            "read-default-values = {read_defaults}: Fjord (left) and Flink (right) read the same bytes differently"
        );
        assert_eq!(by_fjord.len(), SHOP_ROWS.len());
    }

    // Fjord writes what it read; Flink reads it as it read its own.
    let out_dir = tempfile::tempdir().unwrap();
    let input = out_dir.path().join("items.csv");
    let by_flink = sorted(flink(
        &proto,
        "fjord.test.shop.Item",
        "decode",
        SHOP_ROW,
        false,
        &encoded,
    ));
    std::fs::write(&input, by_flink.join("\n") + "\n").unwrap();
    broker.create_topic("items-again", 1).unwrap();
    run_sql(&format!(
        "CREATE TABLE items ({SHOP_COLUMNS}) WITH ('connector' = 'filesystem', 'path' = '{}',
           'format' = 'csv', 'csv.null-literal' = '\\N');
         CREATE TABLE again ({SHOP_COLUMNS}) WITH ('connector' = 'kafka', 'topic' = 'items-again',
           'properties.bootstrap.servers' = '{}', 'format' = 'protobuf',
           'protobuf.message-name' = 'shop.Item', 'protobuf.proto-file' = '{}');
         INSERT INTO again SELECT * FROM items;",
        input.display(),
        broker.bootstrap(),
        proto.display()
    ))
    .unwrap();
    let rewritten = messages(broker, "items-again");
    let again = sorted(flink(
        &proto,
        "fjord.test.shop.Item",
        "decode",
        SHOP_ROW,
        false,
        &rewritten,
    ));
    assert_eq!(again, by_flink, "Flink's reading of Fjord's messages");
}

/// A proto3 message: Flink 2.3 reads absent fields as their defaults whatever
/// `protobuf.read-default-values` says, even an absent `optional` string; so does Fjord.
#[test]
fn proto3_messages_read_as_flink_reads_them() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("protobuf-proto3")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("events.proto");
    std::fs::write(
        &proto,
        "syntax = \"proto3\";\npackage ev;\noption java_package = \"fjord.test.ev\";\n\
         option java_multiple_files = true;\n\
         message Event { int64 id = 1; optional string name = 2; Level level = 3; double score = 4; }\n\
         enum Level { LOW = 0; HIGH = 1; }\n",
    )
    .unwrap();
    let row_type = "ROW<id BIGINT, name STRING, level STRING, score DOUBLE>";
    let rows: Vec<String> = ["0,\\N,\\N,\\N", "5,x,HIGH,2.5", "6,,LOW,0.0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let encoded = flink(
        &proto,
        "fjord.test.ev.Event",
        "encode",
        row_type,
        false,
        &rows,
    );
    broker.create_topic("events", 1).unwrap();
    let records: Vec<ProducerRecord> = encoded
        .iter()
        .map(|l| ProducerRecord::value(unhex(l)))
        .collect();
    broker.produce("events", &records).unwrap();
    let by_flink = sorted(flink(
        &proto,
        "fjord.test.ev.Event",
        "decode",
        row_type,
        false,
        &encoded,
    ));
    let format = format!(
        "'format' = 'protobuf', 'protobuf.message-name' = 'ev.Event', 'protobuf.proto-file' = '{}'",
        proto.display()
    );
    let by_fjord = fjord_reads(
        broker.bootstrap(),
        "events",
        "id BIGINT, name STRING, level STRING, score DOUBLE",
        &format,
    )
    .unwrap();
    assert_eq!(by_fjord, by_flink);
    assert!(
        by_fjord.iter().all(|l| !l.contains("\\N")),
        "no NULLs from a proto3 message: {by_fjord:?}"
    );
    broker.shutdown().unwrap();
}

/// A record that is not a message fails the job naming topic, partition and offset and what
/// is wrong; with `protobuf.ignore-parse-errors` it is skipped and the good ones are read.
#[test]
fn a_malformed_message_fails_the_job_or_is_skipped_when_told() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("shop.proto");
    std::fs::write(&proto, SHOP).unwrap();
    let good = flink(
        &proto,
        "fjord.test.shop.Item",
        "encode",
        SHOP_ROW,
        false,
        &[SHOP_ROWS[0].to_string()],
    );
    broker.create_topic("mixed", 1).unwrap();
    broker
        .produce(
            "mixed",
            &[
                ProducerRecord::value(unhex(&good[0])),
                // Field 1 as a length-delimited value running past the end.
                ProducerRecord::value(vec![0x0a, 0xff]),
            ],
        )
        .unwrap();
    let format = format!(
        "'format' = 'protobuf', 'protobuf.message-name' = 'shop.Item', 'protobuf.proto-file' = '{}'",
        proto.display()
    );
    let err = fjord_reads(broker.bootstrap(), "mixed", SHOP_COLUMNS, &format).unwrap_err();
    assert!(
        err.contains("mixed")
            && err.contains("offset 1")
            && err.contains("not a valid shop.Item message"),
        "{err}"
    );
    let skipping = format!("{format}, 'protobuf.ignore-parse-errors' = 'true'");
    let rows = fjord_reads(broker.bootstrap(), "mixed", SHOP_COLUMNS, &skipping).unwrap();
    assert_eq!(rows, vec![SHOP_ROWS[0].to_string()]);
}

/// `shop.Order` of examples/sql/orders.proto as the Rust type prost generates for it (records
/// of a Fjord job are serde types too: prost-build's `type_attribute` adds the derives).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
struct Order {
    #[prost(int64, optional, tag = "1")]
    id: Option<i64>,
    #[prost(string, optional, tag = "2")]
    customer: Option<String>,
    #[prost(double, optional, tag = "3")]
    amount: Option<f64>,
    #[prost(enumeration = "Status", optional, tag = "4")]
    status: Option<i32>,
}

/// `shop.Order.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
enum Status {
    New = 0,
    Paid = 1,
    Bulk = 2,
}

fn docs_write(
    env: &StreamExecutionEnvironment,
    bootstrap: &str,
    orders: Vec<Order>,
) -> Result<(), Box<dyn std::error::Error>> {
    // The block in docs/connectors/protobuf.md, verbatim:
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap)
        .record_serializer(
            KafkaRecordSerializer::builder()
                .topic("orders")
                .value(Protobuf::<Order>::new())
                .build()?,
        )
        .build()?;
    env.from_collection(orders)
        .stream()
        .sink_to_transactional(sink, "Sink: Kafka");
    env.execute("protobuf-docs-example")?;
    // (end of the block)
    Ok(())
}

/// The typed DataStream format: prost messages written to Kafka are what Flink reads, and a
/// `KafkaSource` reads them back equal.
#[test]
fn prost_messages_through_kafka_are_what_flink_reads() {
    let broker = broker();
    broker.create_topic("orders", 1).unwrap();
    let orders = vec![
        Order {
            id: Some(1),
            customer: Some("alice".into()),
            amount: Some(10.5),
            status: Some(Status::Paid as i32),
        },
        Order {
            id: Some(2),
            customer: None,
            amount: None,
            status: None,
        },
        Order {
            id: Some(3),
            customer: Some(String::new()),
            amount: Some(-0.25),
            status: Some(Status::Bulk as i32),
        },
    ];
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    docs_write(&env, broker.bootstrap(), orders.clone()).unwrap();

    let written = messages(broker, "orders");
    let by_flink = flink(
        &root().join("examples/sql/orders.proto"),
        "fjord.examples.shop.Order",
        "decode",
        "ROW<id BIGINT, customer STRING, amount DOUBLE, status STRING>",
        false,
        &written,
    );
    assert_eq!(
        by_flink,
        vec!["1,alice,10.5,PAID", "2,\\N,\\N,\\N", "3,,-0.25,BULK"]
    );

    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let source = KafkaSource::builder()
        .bootstrap_servers(broker.bootstrap())
        .topics(["orders"])
        .starting_offsets(OffsetsInitializer::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(Protobuf::<Order>::new()))
        .build()
        .unwrap();
    let read = env.from_source(source, "Kafka").collect();
    env.execute("read back").unwrap();
    assert_eq!(read.take(), orders);
}

/// docs/connectors/protobuf.md shows the example files and the DataStream block as they are
/// tested: the SQL script and .proto file verbatim, the Rust block line for line.
#[test]
fn the_docs_show_the_tested_examples() {
    let docs = std::fs::read_to_string(root().join("docs/connectors/protobuf.md")).unwrap();
    for file in [
        "examples/sql/protobuf_orders.sql",
        "examples/sql/orders.proto",
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            docs.contains(&text),
            "docs/connectors/protobuf.md does not show {file} as it is"
        );
    }
    let test = include_str!("protobuf_format.rs");
    let block = docs.split("```rust\n").nth(1).expect("a Rust block");
    let block = &block[..block.find("```").unwrap()];
    assert!(
        fjord_e2e::jobs::is_code_of(block, test),
        "the Rust block is not the tested code:\n{block}"
    );
}
