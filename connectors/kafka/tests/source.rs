//! The Kafka source against a real Apache Kafka 4.x broker (KRaft, single node on loopback),
//! in jobs on the embedded mini-cluster.
//!
//! The broker: `FJORD_KAFKA_BOOTSTRAP` if set (host:port of a running PLAINTEXT broker), else one
//! started for this test binary with `fjord_e2e::kafka::KafkaBroker` (`scripts/infra/kafka.sh`,
//! installed by `scripts/infra/install-kafka.sh`) and stopped by its watchdog when the binary
//! exits. Every test uses topics and groups of its own, so the tests share the broker.

mod support;

use bytes::Bytes;
use fjord::StreamExecutionEnvironment;
use fjord::time::WatermarkStrategy;
use fjord::windows::TumblingEventTimeWindows;
use fjord_kafka::client::{
    ClientConfig, KafkaClient, Producer, ProducerMode, ProducerRecord, TopicPartition,
};
use fjord_kafka::format::{Json, KafkaRecord, Utf8, from_fn, value_only};
use fjord_kafka::source::metrics::partition_metric;
use fjord_kafka::source::{KafkaSource, OffsetsInitializer, OnMalformed, StoppingOffsets};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::unique;

fn bootstrap() -> String {
    fjord_e2e::kafka::shared_bootstrap("source-test")
}

fn config() -> ClientConfig {
    ClientConfig {
        properties: [
            ("bootstrap.servers".to_string(), bootstrap()),
            ("request.timeout.ms".to_string(), "15000".to_string()),
        ]
        .into(),
    }
}

fn admin() -> KafkaClient {
    KafkaClient::connect(&config()).unwrap()
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

/// Writes `(timestamp, value)` records to a partition and waits for the acknowledgements.
fn produce(topic: &str, partition: i32, records: impl IntoIterator<Item = (Option<i64>, String)>) {
    // Plain acks=all: the idempotent producer answered OUT_OF_ORDER_SEQUENCE_NUMBER once
    // under load (reported to the client's side).
    let mut producer = Producer::new(&config(), ProducerMode::Plain { acks: -1 }).unwrap();
    for (timestamp, value) in records {
        producer
            .send(
                &tp(topic, partition),
                ProducerRecord {
                    value: Some(Bytes::from(value)),
                    timestamp,
                    ..ProducerRecord::default()
                },
            )
            .unwrap();
    }
    producer.flush().unwrap();
}

/// Values `"{topic}/{partition}/{i}"` for `i` in `from..to`, written to the partition.
fn fill(topic: &str, partition: i32, from: usize, to: usize) -> Vec<String> {
    let values: Vec<String> = (from..to)
        .map(|i| format!("{topic}/{partition}/{i}"))
        .collect();
    produce(topic, partition, values.iter().map(|v| (None, v.clone())));
    values
}

/// Waits until `done` holds, checking every 20 ms, at most `timeout`; fails at once, with the
/// job's error, if the job ended.
fn wait_until(
    job: &fjord::JobClient,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(!job.is_finished(), "the job ended while waiting for {what}");
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; the job's metrics: {:#?}",
            job.metrics().snapshot()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a running job's sink received, record by record (`collect()` hands records over in
/// batches of 1024 or at checkpoints, too late for watching a running job).
#[derive(Clone)]
struct Live<T>(Arc<Mutex<Vec<T>>>);

impl<T: fjord::types::Data> Live<T> {
    fn sink(stream: &fjord::DataStream<T>) -> Self {
        let live = Live(Arc::new(Mutex::new(Vec::new())));
        let items = live.0.clone();
        stream.for_each(move |v: T| items.lock().unwrap().push(v));
        live
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn values(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The environment of these tests: fast discovery needs no waiting on the default 5 minutes.
fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

#[test]
fn docs_example_reads_every_record_of_every_partition_once() -> anyhow::Result<()> {
    let topic = unique("docs");
    admin().create_topic(&topic, 4, 1)?;
    let mut produced = Vec::new();
    for p in 0..4 {
        produced.extend(fill(&topic, p, 0, 250));
    }
    let bootstrap = bootstrap();
    let env = env(3);
    // The block in docs/connectors/kafka.md, verbatim:
    let source = KafkaSource::builder()
        .bootstrap_servers(&bootstrap)
        .topics([topic.as_str()])
        .group_id("docs-example")
        .starting_offsets(OffsetsInitializer::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(Utf8))
        .build()?;
    let lines = env.from_source(source, "Kafka").collect();
    env.execute("kafka-docs-example")?;
    // (end of the block)
    assert_eq!(sorted(lines.values()), sorted(produced));
    Ok(())
}

/// The first ```rust block of the Source section of the docs is in the test above, line for
/// line (indentation aside), so the docs show code that runs.
#[test]
fn the_docs_example_is_the_tested_code() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/kafka.md")).unwrap();
    let section = &docs[docs.find("## Source").expect("a Source section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let test = include_str!("source.rs");
    assert!(
        fjord_e2e::jobs::is_code_of(block, test),
        "docs/connectors/kafka.md's example is not the code of docs_example_reads_every_record_of_every_partition_once:\n{block}"
    );
}

#[test]
fn partition_discovery_picks_up_new_partitions_and_topics_while_running() {
    let prefix = unique("discover");
    let first = format!("{prefix}-a");
    let mut client = admin();
    client.create_topic(&first, 2, 1).unwrap();
    let mut produced = fill(&first, 0, 0, 10);
    produced.extend(fill(&first, 1, 0, 10));
    let source = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic_pattern(format!("{prefix}-.*"))
        .partition_discovery_interval(Some(Duration::from_millis(200)))
        .deserializer(value_only(Utf8))
        .build()
        .unwrap();
    let env = env(2);
    let out = Live::sink(&env.from_source(source, "Kafka"));
    let job = env.execute_async("discovery").unwrap();
    wait_until(
        &job,
        "the first 20 records",
        Duration::from_secs(60),
        || out.len() >= 20,
    );
    // A new partition of the topic, and a new topic matching the pattern.
    client.create_partitions(&first, 4).unwrap();
    let second = format!("{prefix}-b");
    client.create_topic(&second, 1, 1).unwrap();
    produced.extend(fill(&first, 2, 0, 5));
    produced.extend(fill(&first, 3, 0, 5));
    produced.extend(fill(&second, 0, 0, 5));
    produced.extend(fill(&first, 0, 10, 12));
    wait_until(
        &job,
        "the records of the new partitions",
        Duration::from_secs(60),
        || out.len() >= produced.len(),
    );
    let metrics = job.metrics();
    job.cancel();
    let _ = job.wait();
    assert_eq!(sorted(out.values()), sorted(produced), "each record once");
    // Records per partition, counted by the reader that owns it.
    let snapshot = metrics.snapshot();
    let count = |topic: &str, p: i32| -> u64 {
        let name = partition_metric(topic, p, "records");
        snapshot
            .iter()
            .filter(|(k, _)| k.ends_with(&name))
            .map(|(_, v)| *v)
            .sum()
    };
    assert_eq!(count(&first, 0), 12);
    assert_eq!(count(&first, 3), 5);
    assert_eq!(count(&second, 0), 5);
}

/// A job reading an unbounded topic through a slow map (so a savepoint lands mid-stream).
fn slow_job(
    parallelism: usize,
    topic: &str,
    slow: &Arc<AtomicBool>,
) -> (StreamExecutionEnvironment, Live<String>) {
    let source = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([topic])
        .partition_discovery_interval(Some(Duration::from_millis(200)))
        .deserializer(value_only(Utf8))
        .build()
        .unwrap();
    let env = env(parallelism);
    let slow = slow.clone();
    let stream = env
        .from_source(source, "Kafka")
        .uid("kafka")
        .map(move |v: String| {
            if slow.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(300));
            }
            v
        });
    let out = Live::sink(&stream);
    (env, out)
}

fn restore_reads_every_record_exactly_once(before: usize, after: usize) {
    let topic = unique(&format!("restore-{before}-{after}"));
    let mut client = admin();
    client.create_topic(&topic, 5, 1).unwrap();
    let mut produced = Vec::new();
    for p in 0..5 {
        produced.extend(fill(&topic, p, 0, 800));
    }
    let dir = tempfile_dir(&topic);
    let slow = Arc::new(AtomicBool::new(true));
    let (env, first) = slow_job(before, &topic, &slow);
    let job = env.execute_async("before").unwrap();
    wait_until(&job, "some records", Duration::from_secs(60), || {
        first.len() >= 500
    });
    let savepoint = job
        .stop_with_savepoint(&format!("file://{}", dir.display()), false)
        .unwrap();
    let first = first.values();
    assert!(
        first.len() < produced.len(),
        "the savepoint came after everything was read, so the test did not restore mid-stream"
    );
    // While the job is stopped: more records, and a new partition.
    client.create_partitions(&topic, 6).unwrap();
    for p in 0..6 {
        produced.extend(fill(&topic, p, 800, 850));
    }
    slow.store(false, Ordering::Relaxed);
    let (env, second) = slow_job(after, &topic, &slow);
    env.restore_from(&savepoint, false);
    let job = env.execute_async("after").unwrap();
    wait_until(&job, "every record", Duration::from_secs(60), || {
        first.len() + second.len() >= produced.len()
    });
    job.stop_with_savepoint(&format!("file://{}", dir.display()), false)
        .unwrap();
    let mut all = first;
    all.extend(second.values());
    assert_eq!(
        sorted(all),
        sorted(produced),
        "every record exactly once across the restore ({before} -> {after} readers)"
    );
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fjord-kafka-source-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn restore_from_a_savepoint_reads_every_record_exactly_once() {
    restore_reads_every_record_exactly_once(2, 2);
}

#[test]
fn restore_at_another_parallelism_reads_every_record_exactly_once() {
    restore_reads_every_record_exactly_once(2, 3);
}

#[test]
fn offsets_are_committed_to_the_group_when_checkpoints_complete() {
    let topic = unique("commit");
    let group = unique("group");
    let mut client = admin();
    client.create_topic(&topic, 3, 1).unwrap();
    for p in 0..3 {
        fill(&topic, p, 0, 50);
    }
    let source = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([topic.as_str()])
        .group_id(&group)
        .deserializer(value_only(Utf8))
        .build()
        .unwrap();
    let env = env(2);
    env.enable_checkpointing(Duration::from_millis(100));
    let out = env.from_source(source, "Kafka").uid("kafka").collect();
    let job = env.execute_async("commit").unwrap();
    let partitions: Vec<_> = (0..3).map(|p| tp(&topic, p)).collect();
    wait_until(
        &job,
        "offsets 50 committed for every partition",
        Duration::from_secs(60),
        || {
            let committed = client.committed_offsets(&group, &partitions).unwrap();
            committed.values().all(|o| *o == Some(50))
        },
    );
    // Read once the job ended: the reader sets the gauges right after the broker answered.
    let registry = job.metrics();
    job.cancel();
    let _ = job.wait();
    let metrics = registry.snapshot();
    assert_eq!(out.len(), 150);
    let sum = |suffix: &str| -> u64 {
        metrics
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| *v)
            .sum()
    };
    assert!(sum("KafkaSourceReader.commitsSucceeded") >= 1);
    assert_eq!(sum("KafkaSourceReader.commitsFailed"), 0);
    for p in 0..3 {
        assert_eq!(sum(&partition_metric(&topic, p, "records")), 50);
        assert_eq!(sum(&partition_metric(&topic, p, "lag")), 0);
        assert_eq!(sum(&partition_metric(&topic, p, "committedOffset")), 50);
    }
    // A new run of the group starting from its committed offsets reads nothing more.
    let resumed = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([topic.as_str()])
        .group_id(&group)
        .starting_offsets(OffsetsInitializer::Committed {
            reset: fjord_kafka::source::OffsetReset::Earliest,
        })
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(Utf8))
        .build()
        .unwrap();
    fill(&topic, 1, 50, 53);
    let env = self::env(2);
    let out = env.from_source(resumed, "Kafka").collect();
    env.execute("resumed").unwrap();
    assert_eq!(
        sorted(out.values()),
        [
            format!("{topic}/1/50"),
            format!("{topic}/1/51"),
            format!("{topic}/1/52")
        ]
    );
}

#[test]
fn starting_at_a_timestamp_and_kafka_timestamps_as_event_time() {
    let topic = unique("timestamps");
    admin().create_topic(&topic, 2, 1).unwrap();
    for p in 0..2 {
        produce(
            &topic,
            p,
            (0..20).map(|i| (Some(1_700_000_000_000 + i * 1000), format!("{p}/{i}"))),
        );
    }
    let source = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([topic.as_str()])
        .starting_offsets(OffsetsInitializer::Timestamp(1_700_000_015_000))
        .bounded(StoppingOffsets::Latest)
        .deserializer(from_fn(|r: &KafkaRecord<'_>| {
            Ok(Some((
                String::from_utf8(r.value.unwrap_or_default().to_vec())?,
                r.timestamp,
            )))
        }))
        .build()
        .unwrap();
    let env = env(2);
    let out = env
        .from_source(source, "Kafka")
        .process(
            |(v, kafka_ts): (String, i64),
             ctx: &mut fjord::ProcessContext<'_, (String, i64, Option<i64>)>| {
                let event_time = ctx.timestamp();
                ctx.collect((v, kafka_ts, event_time));
            },
        )
        .collect();
    env.execute("timestamps").unwrap();
    let mut got = out.values();
    got.sort();
    let mut expected: Vec<(String, i64, Option<i64>)> = (0..2)
        .flat_map(|p| {
            (15..20).map(move |i| {
                let ts = 1_700_000_000_000 + i * 1000;
                (format!("{p}/{i}"), ts, Some(ts))
            })
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn per_partition_watermarks_with_an_idle_partition_fire_event_time_windows() {
    let topic = unique("watermarks");
    admin().create_topic(&topic, 2, 1).unwrap();
    // Partition 0 moves event time from 1 s to 12 s; partition 1 stays empty.
    produce(
        &topic,
        0,
        (1..=12).map(|s| (Some(s * 1000), "k".to_string())),
    );
    let source = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([topic.as_str()])
        .deserializer(value_only(Utf8))
        .watermark_strategy(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_idleness(Duration::from_millis(500)),
        )
        .build()
        .unwrap();
    // One reader holds both partitions: only idleness lets the empty one stop holding back the
    // watermark, so windows fire while the source is still running.
    let env = env(1);
    env.set_auto_watermark_interval(Duration::from_millis(50));
    let out = env
        .from_source(source, "Kafka")
        .map(|k: String| (k, 1u64))
        .key_by(|t: &(String, u64)| t.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .reduce(|a: (String, u64), b: (String, u64)| (a.0, a.1 + b.1));
    let out = Live::sink(&out);
    let job = env.execute_async("watermarks").unwrap();
    // Partition 0 stays active while we wait (a record at 12 s every ~100 ms), so only
    // partition 1's idleness can release the watermark. (Had partition 0 gone quiet too, both
    // could turn idle in the same periodic round, before 12 s was ever emitted.)
    let mut polls = 0u32;
    wait_until(
        &job,
        "the windows [0 s, 5 s) and [5 s, 10 s)",
        Duration::from_secs(60),
        || {
            polls += 1;
            if polls.is_multiple_of(5) {
                produce(&topic, 0, [(Some(12_000), "k".to_string())]);
            }
            out.len() >= 2
        },
    );
    job.cancel();
    let _ = job.wait();
    // 1..4 s and 5..9 s; [10 s, 15 s) cannot fire: the watermark stays at 12 s - 1 ms.
    assert_eq!(out.values(), [("k".to_string(), 4), ("k".to_string(), 5)]);
}

#[test]
fn a_malformed_record_fails_the_job_naming_topic_partition_and_offset() {
    let topic = unique("malformed");
    admin().create_topic(&topic, 1, 1).unwrap();
    produce(
        &topic,
        0,
        ["1", "2", "three", "4"].map(|v| (None, v.to_string())),
    );
    let build = |on_malformed| {
        KafkaSource::builder()
            .bootstrap_servers(bootstrap())
            .topics([topic.as_str()])
            .bounded(StoppingOffsets::Latest)
            .deserializer(value_only(Json::<i64>::new()))
            .on_malformed(on_malformed)
            .build()
            .unwrap()
    };
    let env = env(1);
    env.from_source(build(OnMalformed::Fail), "Orders")
        .collect();
    let err = env.execute("malformed").unwrap_err().to_string();
    for part in [
        "Orders",
        &format!("topic {topic}, partition 0, offset 2"),
        "invalid JSON",
        "OnMalformed::Skip",
    ] {
        assert!(err.contains(part), "{part:?} missing in: {err}");
    }
    let env = self::env(1);
    let out = env
        .from_source(build(OnMalformed::Skip), "Orders")
        .collect();
    let result = env.execute("skipping").unwrap();
    assert_eq!(out.values(), [1, 2, 4]);
    let skipped: u64 = result
        .metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with("KafkaSourceReader.malformedRecordsSkipped"))
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(skipped, 1);
}

/// Every record of `topic` (all partitions, from the beginning, read_uncommitted), by
/// partition and offset.
fn read_all(topic: &str) -> Vec<(i32, fjord_kafka::client::ConsumerRecord)> {
    use fjord_kafka::client::{FetchOptions, IsolationLevel, OffsetSpec};
    let mut client = admin();
    let partitions = client.metadata(Some(&[topic.to_string()])).unwrap().topics[topic];
    let parts: Vec<TopicPartition> = (0..partitions).map(|p| tp(topic, p)).collect();
    let ends = client.list_offsets(&parts, OffsetSpec::Latest).unwrap();
    let mut positions = client.list_offsets(&parts, OffsetSpec::Earliest).unwrap();
    let options = FetchOptions {
        isolation: IsolationLevel::ReadUncommitted,
        ..FetchOptions::default()
    };
    let mut out = Vec::new();
    for _ in 0..100 {
        let wanted: std::collections::BTreeMap<TopicPartition, i64> = positions
            .iter()
            .filter(|(tp, at)| **at < ends[*tp])
            .map(|(tp, at)| (tp.clone(), *at))
            .collect();
        if wanted.is_empty() {
            break;
        }
        for f in client.fetch(&wanted, &options).unwrap() {
            out.extend(f.records.into_iter().map(|r| (f.partition.partition, r)));
            positions.insert(f.partition.clone(), f.next_offset);
        }
    }
    out.sort_by_key(|(p, r)| (*p, r.offset));
    out
}

#[test]
fn malformed_records_go_to_the_dead_letter_topic_with_their_origin_and_error() {
    use fjord_kafka::source::dead_letter::{
        HEADER_MESSAGE, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC,
    };
    let topic = unique("orders");
    let dlq = unique("orders-dlq");
    admin().create_topic(&topic, 2, 1).unwrap();
    admin().create_topic(&dlq, 1, 1).unwrap();
    produce(
        &topic,
        0,
        [(Some(1_000), "1"), (Some(2_000), "two"), (Some(3_000), "3")]
            .map(|(t, v)| (t, v.to_string())),
    );
    // A keyed malformed record with a header of its own, in the other partition.
    let mut producer = Producer::new(&config(), ProducerMode::Plain { acks: -1 }).unwrap();
    for (key, value) in [(None, "4"), (Some("k"), "{five"), (None, "6")] {
        producer
            .send(
                &tp(&topic, 1),
                ProducerRecord {
                    key: key.map(Bytes::from),
                    value: Some(Bytes::from(value)),
                    timestamp: Some(5_000),
                    headers: vec![("trace".into(), Some(Bytes::from("t-1")))],
                },
            )
            .unwrap();
    }
    producer.flush().unwrap();

    // The dead-letter topic may not be a topic the source reads.
    let refused = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic_pattern("orders-.*")
        .deserializer(value_only(Json::<i64>::new()))
        .on_malformed(OnMalformed::DeadLetterTopic("orders-dlq".into()))
        .build()
        .err()
        .expect("a dead-letter topic the source reads is refused")
        .to_string();
    assert!(refused.contains("dead-letter topic"), "{refused}");

    let source = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([topic.as_str()])
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(Json::<i64>::new()))
        .on_malformed(OnMalformed::DeadLetterTopic(dlq.clone()))
        .build()
        .unwrap();
    let env = env(2);
    let out = env.from_source(source, "Orders").collect();
    let result = env.execute("dead-letters").unwrap();
    let mut values = out.values();
    values.sort();
    assert_eq!(values, [1, 3, 4, 6]);
    let counted: u64 = result
        .metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with("KafkaSourceReader.malformedRecordsDeadLettered"))
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(counted, 2);

    let letters = read_all(&dlq);
    let header = |r: &fjord_kafka::client::ConsumerRecord, name: &str| -> String {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| panic!("no header {name} in {r:?}"))
    };
    let mut seen: Vec<(String, String, String, Option<Bytes>, Bytes, i64)> = letters
        .iter()
        .map(|(_, r)| {
            assert!(header(r, HEADER_MESSAGE).contains("invalid JSON"), "{r:?}");
            assert_eq!(header(r, HEADER_TOPIC), topic);
            (
                header(r, HEADER_PARTITION),
                header(r, HEADER_OFFSET),
                r.headers
                    .iter()
                    .find(|(k, _)| k == "trace")
                    .map(|_| header(r, "trace"))
                    .unwrap_or_default(),
                r.key.clone(),
                r.value.clone().unwrap_or_default(),
                r.timestamp,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "0".to_string(),
                "1".to_string(),
                String::new(),
                None,
                Bytes::from("two"),
                2_000
            ),
            (
                "1".to_string(),
                "1".to_string(),
                "t-1".to_string(),
                Some(Bytes::from("k")),
                Bytes::from("{five"),
                5_000
            ),
        ]
    );
}
