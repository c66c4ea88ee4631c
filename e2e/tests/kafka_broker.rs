//! The test Kafka broker (`scripts/infra/kafka.sh`, `fjord_e2e::KafkaBroker`) with Kafka's own
//! tools: topics, producing, `read_committed` reading, a restart that keeps the data, and the
//! error a missing install gives.

use std::collections::BTreeMap;

use fjord_e2e::{Error, KafkaBroker, KafkaOptions, ProducerRecord};

#[test]
fn broker_serves_topics_and_keeps_data_across_a_restart() -> anyhow::Result<()> {
    let broker = KafkaBroker::start_with(KafkaOptions::new("broker-basics"))?;
    broker.create_topic("lines", 3)?;

    let keyed: Vec<(String, String)> = (0..60)
        .map(|i| (format!("key-{}", i % 7), format!("value-{i}")))
        .collect();
    broker.produce_keyed("lines", &keyed)?;
    broker.produce_lines("lines", &["no key one", "no key two"])?;

    // Explicit partition and timestamp, any bytes, a null key and a tombstone.
    let binary: Vec<u8> = vec![0, b'\n', b'\t', 0xff];
    broker.produce(
        "lines",
        &[
            ProducerRecord::value(binary.clone())
                .key("bin")
                .partition(2)
                .timestamp(1_234),
            ProducerRecord {
                partition: Some(2),
                ..ProducerRecord::default()
            },
        ],
    )?;
    let all = broker.read_committed("lines")?;
    let special: Vec<_> = all
        .iter()
        .filter(|r| r.partition == 2)
        .rev()
        .take(2)
        .collect();
    assert_eq!(special[0].value, None);
    assert_eq!(special[0].key, None);
    assert_eq!(special[1].value.as_deref(), Some(&binary[..]));
    assert_eq!(special[1].key_str().as_deref(), Some("bin"));
    assert_eq!(special[1].timestamp, 1_234);
    let first: Vec<_> = all
        .into_iter()
        .filter(|r| r.key_str().as_deref() != Some("bin") && r.value.is_some())
        .collect();
    assert_eq!(first.len(), 62, "{first:?}");
    // Every produced record exactly once, each key in exactly one partition, and offsets
    // dense from 0 in every partition (no transactions here, so no control records; the two
    // special records of partition 2 come after the others).
    let mut values: Vec<String> = first.iter().map(|r| r.value_str()).collect();
    values.sort();
    let mut expected: Vec<String> = keyed.iter().map(|(_, v)| v.clone()).collect();
    expected.extend(["no key one".to_string(), "no key two".to_string()]);
    expected.sort();
    assert_eq!(values, expected);
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    for r in first.iter().filter(|r| r.key.is_some()) {
        let key = r.key_str().unwrap_or_default();
        let p = *partition_of_key.entry(key.clone()).or_insert(r.partition);
        assert_eq!(p, r.partition, "key {key} in two partitions");
    }
    for p in 0..3 {
        let offsets: Vec<i64> = first
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
    let used: std::collections::BTreeSet<i32> = first.iter().map(|r| r.partition).collect();
    assert!(
        used.len() > 1,
        "7 keys all landed in one of 3 partitions: {used:?}"
    );

    // A crash (SIGKILL) and a restart on the same port keep every record.
    let bootstrap = broker.bootstrap().to_string();
    broker.kill()?;
    assert!(
        broker.read_committed("lines").is_err(),
        "read from a killed broker"
    );
    broker.restart()?;
    assert_eq!(broker.bootstrap(), bootstrap);
    let again = broker.read_committed("lines")?;
    assert_eq!(again.len(), 64);
    assert!(first.iter().all(|r| again.contains(r)));

    // After a controlled stop and restart, new records append after the old ones.
    broker.stop()?;
    broker.restart()?;
    broker.produce_keyed("lines", &[("key-0", "after restart")])?;
    let after = broker.read_committed("lines")?;
    assert_eq!(after.len(), 65);
    assert!(first.iter().all(|r| after.contains(r)));
    assert!(after.iter().any(|r| r.value_str() == "after restart"));

    // Partitions can be added (for partition discovery tests).
    broker.add_partitions("lines", 5)?;
    let described = broker.tool_ok(
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            broker.bootstrap(),
            "--describe",
            "--topic",
            "lines",
        ],
        None,
    )?;
    assert!(described.contains("PartitionCount: 5"), "{described}");

    broker.shutdown()?;
    Ok(())
}

#[test]
fn reading_a_missing_topic_fails_with_kafkas_message() -> anyhow::Result<()> {
    let broker = KafkaBroker::start_with(KafkaOptions::new("missing-topic"))?;
    let err = broker
        .read_committed("no-such-topic")
        .expect_err("the topic does not exist");
    assert!(err.to_string().contains("no-such-topic"), "{err}");
    // The broker does not create topics on first use (auto.create.topics.enable=false).
    assert!(broker.produce_lines("no-such-topic", &["x"]).is_err());
    broker.shutdown()?;
    Ok(())
}

#[test]
fn without_installed_jars_the_error_names_install_kafka_sh() {
    let empty = std::env::temp_dir().join(format!("fjord-e2e-no-kafka-{}", std::process::id()));
    let err = KafkaBroker::start_with(KafkaOptions::new("not-installed").cache_dir(&empty))
        .expect_err("nothing is installed in an empty cache");
    assert!(matches!(err, Error::KafkaNotInstalled { .. }), "{err:?}");
    assert!(err.to_string().contains("install-kafka.sh"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
}
