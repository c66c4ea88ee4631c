//! Avro record values through a real Kafka 4.4 broker (started by `scripts/infra/kafka.sh`) with
//! the DataStream API: a `KafkaSink` writes serde values with `AvroSerializer`, Kafka's own Java
//! consumer reads the bytes back (each the Avro datum of its value), and a `KafkaSource` reads
//! them with `AvroDeserializer` through a newer reader schema. A record that is not Avro fails
//! the job naming topic, partition and offset.

use fjord::StreamExecutionEnvironment;
use fjord_avro::{AvroDeserializer, AvroSerializer};
use fjord_e2e::{KafkaBroker, KafkaOptions, ProducerRecord};
use fjord_kafka::format::value_only;
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, OffsetsInitializer, StoppingOffsets};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: i64,
    item: String,
    note: Option<String>,
}

/// The next version of the record: `note` dropped, `qty` added with a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderV2 {
    id: i64,
    item: String,
    qty: i32,
}

const ORDER_V1: &str = r#"{"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "note", "type": ["null", "string"], "default": null}]}"#;

const ORDER_V2: &str = r#"{"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "qty", "type": "int", "default": 1}]}"#;

fn orders() -> Vec<Order> {
    (0..200)
        .map(|i| Order {
            id: i,
            item: format!("item-{i}"),
            note: (i % 3 == 0).then(|| format!("note {i}")),
        })
        .collect()
}

#[test]
fn docs_example_writes_avro_and_reads_it_through_a_newer_schema() -> anyhow::Result<()> {
    let broker = KafkaBroker::start_with(KafkaOptions::new("avro-datastream"))?;
    broker.create_topic("orders", 2)?;
    let bootstrap = broker.bootstrap().to_string();

    // The block in docs/connectors/avro.md, verbatim:
    let env = StreamExecutionEnvironment::new();
    let sink = KafkaSink::builder()
        .bootstrap_servers(&bootstrap)
        .delivery_guarantee(DeliveryGuarantee::AtLeastOnce)
        .record_serializer(
            KafkaRecordSerializer::builder()
                .topic("orders")
                .value(AvroSerializer::<Order>::new(ORDER_V1)?)
                .build()?,
        )
        .build()?;
    env.from_collection(orders())
        .stream()
        .sink_to_transactional(sink, "Sink: orders");
    env.execute("write orders")?;

    let env = StreamExecutionEnvironment::new();
    let source = KafkaSource::builder()
        .bootstrap_servers(&bootstrap)
        .topics(["orders"])
        .starting_offsets(OffsetsInitializer::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(
            AvroDeserializer::<OrderV2>::new(ORDER_V1)?.reader_schema(ORDER_V2)?,
        ))
        .build()?;
    let read = env.from_source(source, "orders").collect();
    env.execute("read orders")?;
    // (end of the block)

    let mut read = read.values();
    read.sort_by_key(|o| o.id);
    let expected: Vec<OrderV2> = orders()
        .into_iter()
        .map(|o| OrderV2 {
            id: o.id,
            item: o.item,
            qty: 1,
        })
        .collect();
    assert_eq!(read, expected);

    // Kafka's own consumer sees each value as the Avro datum of its order.
    let writer = AvroSerializer::<Order>::new(ORDER_V1)?;
    let mut values: Vec<Vec<u8>> = broker
        .read_committed("orders")?
        .into_iter()
        .map(|r| r.value.expect("a value"))
        .collect();
    values.sort();
    let mut expected: Vec<Vec<u8>> = orders()
        .iter()
        .map(|o| writer.to_bytes(o))
        .collect::<Result<_, _>>()?;
    expected.sort();
    assert_eq!(values, expected);
    broker.shutdown()?;
    Ok(())
}

#[test]
fn a_record_that_is_not_avro_fails_the_job_naming_where_it_is() -> anyhow::Result<()> {
    let broker = KafkaBroker::start_with(KafkaOptions::new("avro-malformed"))?;
    broker.create_topic("mixed", 1)?;
    let writer = AvroSerializer::<Order>::new(ORDER_V1)?;
    broker.produce(
        "mixed",
        &[
            ProducerRecord::value(writer.to_bytes(&orders()[1])?),
            // A long, then a string length far past the end.
            ProducerRecord::value(vec![2, 200, 1]),
        ],
    )?;
    let env = StreamExecutionEnvironment::new();
    let source = KafkaSource::builder()
        .bootstrap_servers(broker.bootstrap())
        .topics(["mixed"])
        .starting_offsets(OffsetsInitializer::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(AvroDeserializer::<Order>::new(ORDER_V1)?))
        .build()?;
    let _ = env.from_source(source, "mixed").collect();
    let e = env.execute("malformed").unwrap_err().to_string();
    assert!(
        e.contains("malformed record in topic mixed, partition 0, offset 1")
            && e.contains("malformed Avro record"),
        "{e}"
    );
    broker.shutdown()?;
    Ok(())
}

/// The ```rust block of the DataStream section of docs/connectors/avro.md is the code of the
/// docs example test above, line for line (indentation aside).
#[test]
fn the_docs_example_is_the_tested_code() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/avro.md")).unwrap();
    let section = &docs[docs
        .find("## DataStream API")
        .expect("a DataStream section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let test = include_str!("avro_kafka.rs");
    assert!(
        fjord_e2e::jobs::is_code_of(block, test),
        "docs/connectors/avro.md's example is not the code of docs_example_writes_avro_and_reads_it_through_a_newer_schema:\n{block}"
    );
}
