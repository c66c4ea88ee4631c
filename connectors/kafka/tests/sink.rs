//! The Kafka sink against a real Apache Kafka 4.x broker (KRaft, single node on loopback), in
//! jobs on the embedded mini-cluster.
//!
//! The broker is `fjord_e2e::KafkaBroker`, shared by the tests of this binary (each uses
//! topics and transactional id prefixes of its own); what the sink wrote is read back by
//! Kafka's own Java consumer (`KafkaBroker::read_committed`), an independent judge of what an
//! exactly-once sink committed.

use bytes::Bytes;
use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord::sources::GeneratorSource;
use fjord_e2e::kafka::{KafkaBroker, KafkaOptions, KafkaRecord};
use fjord_kafka::client::{
    ClientConfig, KafkaClient, Producer, ProducerMode, ProducerRecord, TopicPartition,
};
use fjord_kafka::format::{Utf8, project};
use fjord_kafka::sink::{
    DeliveryGuarantee, KafkaRecordSerializer, KafkaSink, METRIC_PREFIX, partition_for_key,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn broker() -> &'static KafkaBroker {
    static BROKER: OnceLock<KafkaBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        KafkaBroker::start_with(KafkaOptions::new("sink-tests")).expect(
            "start a Kafka broker (run scripts/infra/install-kafka.sh if it is not installed)",
        )
    })
}

fn create_topic(topic: &str, partitions: u32) {
    broker()
        .create_topic(topic, partitions)
        .expect("create topic");
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.properties
        .insert("bootstrap.servers".into(), broker().bootstrap().to_string());
    c
}

/// A sink writing `String`s keyed by themselves to `topic`.
fn sink(topic: &str, guarantee: DeliveryGuarantee, prefix: &str) -> KafkaSink<String> {
    KafkaSink::builder()
        .bootstrap_servers(broker().bootstrap())
        .delivery_guarantee(guarantee)
        .transactional_id_prefix(prefix)
        .record_serializer(
            KafkaRecordSerializer::builder()
                .topic(topic)
                .key(project(|s: &String| s.clone(), Utf8))
                .value(Utf8)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn values(records: &[KafkaRecord]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(KafkaRecord::value_str).collect();
    v.sort();
    v
}

fn expected(n: u64) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    v.sort();
    v
}

/// Sum of a counter over all subtasks.
fn metric(result: &fjord::JobExecutionResult, name: &str) -> u64 {
    let suffix = format!(".{METRIC_PREFIX}.{name}");
    result
        .metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn at_least_once_writes_every_record_to_the_partition_of_its_key() {
    let topic = "sink-alo";
    create_topic(topic, 3);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.from_collection((0..500).map(|i| format!("r{i}")).collect())
        .stream()
        .sink_to_transactional(
            sink(topic, DeliveryGuarantee::AtLeastOnce, "unused"),
            "Sink: Kafka",
        )
        .uid("kafka");
    let result = env.execute("at-least-once").unwrap();
    let records = broker().read_committed(topic).unwrap();
    assert_eq!(values(&records), expected(500));
    for r in &records {
        let key = r.key.as_deref().expect("keyed");
        assert_eq!(
            r.partition,
            partition_for_key(key, 3),
            "{} went to another partition than Kafka's default partitioner picks",
            r.value_str()
        );
    }
    assert_eq!(metric(&result, "recordsSent"), 500);
    assert_eq!(metric(&result, "transactionsCommitted"), 0);
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// A job that fails once mid-stream and restarts from its last checkpoint: a `read_committed`
/// consumer sees every record exactly once. The source never ends (records past `n` are
/// filtered out), so all output is committed by completed checkpoints, not by the end of input.
#[test]
fn exactly_once_output_survives_a_failure_and_restart() {
    let topic = "sink-eo-failure";
    create_topic(topic, 3);
    let dir = std::env::temp_dir().join(format!("fjord-kafka-sink-eo-{}", std::process::id()));
    let n = 3000u64;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(150));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(100),
    });
    env.from_source(
        GeneratorSource::new(None, |i| i).with_rate(3000.0),
        "Source: sequence",
    )
    .uid("sequence")
    .set_parallelism(1)
    .filter(move |i: &u64| *i < n)
    .rebalance()
    .map(move |i: u64| {
        // Once, mid-stream: what was written since the last completed checkpoint is
        // replayed into new transactions; what was written before it stays committed once.
        if i == n / 2 && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
            panic!("injected failure at record {i}");
        }
        format!("r{i}")
    })
    .uid("map")
    .sink_to_transactional(
        sink(topic, DeliveryGuarantee::ExactlyOnce, "sink-eo-failure"),
        "Sink: Kafka",
    )
    .uid("kafka");
    let client = env.execute_async("exactly-once with a failure").unwrap();
    let mut committed = Vec::new();
    for _ in 0..60 {
        committed = broker().read_committed(topic).unwrap();
        if committed.len() as u64 >= n {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let restarts = client.restarts();
    let (completed, _) = client.checkpoint_counts();
    client.cancel();
    let _ = client.wait();
    assert!(restarts >= 1, "the injected failure restarted the job");
    assert!(completed >= 2, "checkpoints completed: {completed}");
    // Read again after the job ended: nothing more became visible.
    let after = broker().read_committed(topic).unwrap();
    assert_eq!(
        after.len(),
        committed.len(),
        "output committed after the last read"
    );
    let seen = values(&committed);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &seen {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "read_committed saw records twice: {twice:?}"
    );
    assert_eq!(seen, expected(n), "every record once, nothing lost");
    // The failed attempt's open transactions were written and aborted: they are in the log.
    let all = broker().read_uncommitted(topic).unwrap();
    assert!(
        all.len() > committed.len(),
        "the failed attempt wrote records that were aborted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Leaves a transaction open under `transactional_id` with one record, as a process that
/// died mid-transaction does.
fn leave_open(transactional_id: &str, topic: &str, value: &str) {
    let mut producer = Producer::new(
        &config(),
        ProducerMode::Transactional {
            transactional_id: transactional_id.into(),
        },
    )
    .unwrap();
    producer
        .send(
            &TopicPartition {
                topic: topic.into(),
                partition: 0,
            },
            ProducerRecord {
                value: Some(Bytes::from(value.to_string())),
                ..Default::default()
            },
        )
        .unwrap();
    producer.flush().unwrap();
    drop(producer);
}

#[test]
fn lingering_transactions_of_an_earlier_run_are_aborted_so_read_committed_advances() {
    let topic = "sink-lingering";
    let prefix = "sink-lingering";
    create_topic(topic, 1);
    // An earlier run at parallelism 2 used ids 1 and 2 of subtask 0 and died with 3 open,
    // and subtask 1 died with its first open.
    let mut client = KafkaClient::connect(&config()).unwrap();
    for n in [1, 2] {
        client.abort_lingering(&format!("{prefix}-0-{n}")).unwrap();
    }
    leave_open(&format!("{prefix}-0-3"), topic, "lingering-0");
    leave_open(&format!("{prefix}-1-1"), topic, "lingering-1");
    // The new run at parallelism 1 finds and aborts both before writing.
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_collection((0..50).map(|i| format!("r{i}")).collect())
        .stream()
        .sink_to_transactional(
            sink(topic, DeliveryGuarantee::ExactlyOnce, prefix),
            "Sink: Kafka",
        )
        .uid("kafka");
    env.execute("after a crash").unwrap();
    // With a transaction still open the last stable offset would stay before it, and the
    // read_committed reader would not see the job's records.
    assert_eq!(
        values(&broker().read_committed(topic).unwrap()),
        expected(50)
    );
    let uncommitted = values(&broker().read_uncommitted(topic).unwrap());
    assert!(
        uncommitted.contains(&"lingering-0".to_string())
            && uncommitted.contains(&"lingering-1".to_string()),
        "the lingering records were written: {uncommitted:?}"
    );
}

#[test]
fn a_missing_topic_or_broker_fails_the_job_naming_them() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    // The sink waits max.block.ms for the topic's metadata, like Kafka's producer.
    let missing = KafkaSink::builder()
        .bootstrap_servers(broker().bootstrap())
        .property("max.block.ms", "1500")
        .record_serializer(
            KafkaRecordSerializer::builder()
                .topic("sink-no-such-topic")
                .value(Utf8)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    env.from_collection(vec!["x".to_string()])
        .stream()
        .sink_to_transactional(missing, "Sink: Kafka");
    let err = env.execute("missing topic").unwrap_err().to_string();
    assert!(
        err.contains("sink-no-such-topic")
            && err.contains("does not exist")
            && err.contains("max.block.ms = 1500 ms")
            && err.contains("create it"),
        "{err}"
    );
    let dead = KafkaSink::builder()
        .bootstrap_servers("127.0.0.1:1")
        .property("request.timeout.ms", "2000")
        .record_serializer(
            KafkaRecordSerializer::builder()
                .topic("t")
                .value(Utf8)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_collection(vec!["x".to_string()])
        .stream()
        .sink_to_transactional(dead, "Sink: Kafka");
    let err = env.execute("dead broker").unwrap_err().to_string();
    assert!(
        err.contains("127.0.0.1:1") && err.contains("bootstrap"),
        "{err}"
    );
}
