//! The Kafka client against a real Apache Kafka 4.x broker (KRaft, single node on loopback).
//!
//! The broker: `FJORD_KAFKA_BOOTSTRAP` if set (host:port of a running PLAINTEXT broker), else one
//! started for this test binary with `fjord_e2e::kafka::KafkaBroker` (`scripts/infra/kafka.sh`,
//! installed by `scripts/infra/install-kafka.sh`) and stopped by its watchdog when the binary
//! exits. Every test uses topics and ids of its own, so the tests share the broker and run in
//! parallel; the restart and TLS tests start brokers of their own.

mod support;

use bytes::Bytes;
use fjord_e2e::kafka::{KafkaBroker, KafkaOptions};
use fjord_kafka::KafkaError;
use fjord_kafka::client::{
    ClientConfig, ConsumerRecord, FetchOptions, IsolationLevel, KafkaClient, OffsetSpec, Producer,
    ProducerMode, ProducerRecord, TopicPartition,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{certificates, free_port, start_kafka, unique};

fn bootstrap() -> String {
    fjord_e2e::kafka::shared_bootstrap("client-test")
}

fn config(extra: &[(&str, &str)]) -> ClientConfig {
    let mut properties: BTreeMap<String, String> = [
        ("bootstrap.servers".to_string(), bootstrap()),
        ("request.timeout.ms".to_string(), "60000".to_string()),
        ("max.block.ms".to_string(), "120000".to_string()),
    ]
    .into();
    for (k, v) in extra {
        properties.insert(k.to_string(), v.to_string());
    }
    ClientConfig { properties }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

fn record(value: &str) -> ProducerRecord {
    ProducerRecord {
        value: Some(Bytes::from(value.to_string())),
        ..ProducerRecord::default()
    }
}

fn text(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.as_deref().unwrap_or_default().to_vec()).unwrap()
}

fn options(isolation: IsolationLevel) -> FetchOptions {
    FetchOptions {
        isolation,
        max_wait: Duration::from_millis(100),
        ..FetchOptions::default()
    }
}

/// Reads `partition` from `from` until the fetch position reaches `until` (bounded: 200
/// fetches, 20 s).
fn read(
    client: &mut KafkaClient,
    partition: &TopicPartition,
    from: i64,
    until: i64,
    isolation: IsolationLevel,
) -> (Vec<ConsumerRecord>, i64) {
    let mut position = from;
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..200 {
        if position >= until || Instant::now() > deadline {
            break;
        }
        let fetched = client
            .fetch(&[(partition.clone(), position)].into(), &options(isolation))
            .unwrap();
        for p in fetched {
            records.extend(p.records);
            position = p.next_offset;
        }
    }
    (records, position)
}

/// The last stable offset of a partition (read_committed end).
fn stable_end(client: &mut KafkaClient, partition: &TopicPartition) -> i64 {
    client
        .list_offsets(std::slice::from_ref(partition), OffsetSpec::Latest)
        .unwrap()[partition]
}

/// The committed values once no transaction is open or completing on the partition (the
/// coordinator writes commit/abort markers after it answered EndTxn): waits, bounded, until
/// the last stable offset reaches the high watermark.
fn settled_values(client: &mut KafkaClient, partition: &TopicPartition) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fetched = client
            .fetch(
                &[(partition.clone(), 0)].into(),
                &FetchOptions {
                    max_wait: Duration::ZERO,
                    min_bytes: 0,
                    ..options(IsolationLevel::ReadUncommitted)
                },
            )
            .unwrap();
        let p = &fetched[0];
        if p.last_stable_offset >= p.high_watermark {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{partition:?}: last stable offset {} stays below the high watermark {}",
            p.last_stable_offset,
            p.high_watermark
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    committed_values(client, partition)
}

/// Waits (bounded) until the committed values are `want`, for reads while another
/// transaction stays open (so the partition never settles).
fn wait_for_committed(client: &mut KafkaClient, partition: &TopicPartition, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = committed_values(client, partition);
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        got = committed_values(client, partition);
    }
    assert_eq!(got, want, "{partition:?}");
}

fn committed_values(client: &mut KafkaClient, partition: &TopicPartition) -> Vec<String> {
    let end = stable_end(client, partition);
    let (records, _) = read(client, partition, 0, end, IsolationLevel::ReadCommitted);
    records.iter().map(text).collect()
}

#[test]
fn produce_and_fetch_round_trip_keys_headers_timestamps_and_codecs() {
    let topic = unique("roundtrip");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 4, 1).unwrap();
    client.create_topic(&topic, 4, 1).unwrap(); // already exists: fine
    assert_eq!(
        client
            .metadata(Some(std::slice::from_ref(&topic)))
            .unwrap()
            .topics
            .get(&topic),
        Some(&4)
    );
    assert!(client.metadata(None).unwrap().topics.contains_key(&topic));

    // Partition 0: plain producer, acks=all; 1: idempotent + gzip; 2: acks=1 + snappy;
    // 3: acks=0 (no responses; the flush is the next request's round trip).
    let sent: Vec<ProducerRecord> = (0..50)
        .map(|i| ProducerRecord {
            key: (i % 5 != 0).then(|| Bytes::from(format!("key-{i}"))),
            value: (i % 7 != 3).then(|| Bytes::from(format!("value-{i}"))),
            timestamp: Some(1_700_000_000_000 + i),
            headers: vec![
                ("n".to_string(), Some(Bytes::from(i.to_string()))),
                ("n".to_string(), None),
            ],
        })
        .collect();
    let setups = [
        (0, ProducerMode::Plain { acks: -1 }, "none"),
        (1, ProducerMode::Idempotent, "gzip"),
        (2, ProducerMode::Plain { acks: 1 }, "snappy"),
        (3, ProducerMode::Plain { acks: 0 }, "none"),
    ];
    for (partition, mode, codec) in setups {
        let mut producer = Producer::new(&config(&[("compression.type", codec)]), mode).unwrap();
        assert_eq!(producer.partitions(&topic).unwrap(), 4);
        for r in &sent {
            producer.send(&tp(&topic, partition), r.clone()).unwrap();
        }
        producer.flush().unwrap();
        assert_eq!(producer.metrics().records_sent, 50);
        assert!(producer.metrics().bytes_sent > 0);
    }
    let partitions: Vec<_> = (0..4).map(|p| tp(&topic, p)).collect();
    let earliest = client
        .list_offsets(&partitions, OffsetSpec::Earliest)
        .unwrap();
    // acks=0 returns before the broker appended: wait (bounded) until it did.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut latest = client
        .list_offsets(&partitions, OffsetSpec::Latest)
        .unwrap();
    while latest.values().any(|o| *o < 50) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        latest = client
            .list_offsets(&partitions, OffsetSpec::Latest)
            .unwrap();
    }
    for p in &partitions {
        assert_eq!((earliest[p], latest[p]), (0, 50), "{p:?}");
        let (records, next) = read(&mut client, p, 0, 50, IsolationLevel::ReadUncommitted);
        assert_eq!(next, 50);
        let got: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.timestamp,
                    r.key.clone(),
                    r.value.clone(),
                    r.headers.clone(),
                )
            })
            .collect();
        let want: Vec<_> = sent
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    i as i64,
                    r.timestamp.unwrap(),
                    r.key.clone(),
                    r.value.clone(),
                    r.headers.clone(),
                )
            })
            .collect();
        assert_eq!(got, want, "{p:?}");
    }

    // Reading from the middle of a (compressed) batch starts at the asked offset.
    let (records, _) = read(
        &mut client,
        &partitions[1],
        17,
        50,
        IsolationLevel::ReadUncommitted,
    );
    assert_eq!(records.first().map(|r| r.offset), Some(17));
    assert_eq!(records.len(), 33);

    // Past the end: OFFSET_OUT_OF_RANGE, named.
    let err = client
        .fetch(
            &[(partitions[0].clone(), 1_000)].into(),
            &options(IsolationLevel::ReadCommitted),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(1), "{err}");
    assert!(
        err.to_string().contains("OFFSET_OUT_OF_RANGE")
            && err.to_string().contains(&format!("{topic}-0")),
        "{err}"
    );
}

#[test]
fn list_offsets_by_timestamp() {
    let topic = unique("timestamps");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();
    let mut producer = Producer::new(&config(&[]), ProducerMode::Idempotent).unwrap();
    for ts in [1_000, 2_000, 3_000] {
        let r = ProducerRecord {
            timestamp: Some(ts),
            ..record(&ts.to_string())
        };
        producer.send(&tp(&topic, 0), r).unwrap();
    }
    producer.flush().unwrap();
    let p = [tp(&topic, 0)];
    let at = |client: &mut KafkaClient, spec| client.list_offsets(&p, spec).unwrap()[&p[0]];
    assert_eq!(at(&mut client, OffsetSpec::Timestamp(0)), 0);
    assert_eq!(at(&mut client, OffsetSpec::Timestamp(1_500)), 1);
    assert_eq!(at(&mut client, OffsetSpec::Timestamp(2_000)), 1);
    assert_eq!(at(&mut client, OffsetSpec::Timestamp(3_000)), 2);
    // No record at or after it: the end.
    assert_eq!(at(&mut client, OffsetSpec::Timestamp(5_000)), 3);
}

#[test]
fn read_committed_hides_aborted_and_open_transactions() {
    let topic = unique("isolation");
    let p = tp(&topic, 0);
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();

    let txn = |id: &str| ProducerMode::Transactional {
        transactional_id: id.to_string(),
    };
    let mut aborted = Producer::new(&config(&[]), txn(&unique("t-abort"))).unwrap();
    for v in ["aborted-1", "aborted-2"] {
        aborted.send(&p, record(v)).unwrap();
    }
    aborted.flush().unwrap();
    aborted.abort().unwrap();

    let mut committed = Producer::new(&config(&[]), txn(&unique("t-commit"))).unwrap();
    committed.send(&p, record("committed-1")).unwrap();
    committed.commit().unwrap();
    // The same producer, a second transaction.
    committed.send(&p, record("committed-2")).unwrap();
    committed.commit().unwrap();
    assert_eq!(committed.metrics().transactions_committed, 2);

    let mut open = Producer::new(&config(&[]), txn(&unique("t-open"))).unwrap();
    open.send(&p, record("open-1")).unwrap();
    let prepared = open.prepare_commit().unwrap();
    assert!(matches!(
        open.send(&p, record("late")),
        Err(KafkaError::Usage(_))
    ));

    let mut plain = Producer::new(&config(&[]), ProducerMode::Plain { acks: -1 }).unwrap();
    plain.send(&p, record("plain-after-open")).unwrap();
    plain.flush().unwrap();

    // read_committed: stops at the open transaction, aborted records and markers are skipped.
    wait_for_committed(&mut client, &p, &["committed-1", "committed-2"]);
    // read_uncommitted: everything but the control records.
    let hw = client
        .fetch(
            &[(p.clone(), 0)].into(),
            &options(IsolationLevel::ReadUncommitted),
        )
        .unwrap()[0]
        .high_watermark;
    let (all, _) = read(&mut client, &p, 0, hw, IsolationLevel::ReadUncommitted);
    let all: Vec<_> = all.iter().map(text).collect();
    assert_eq!(
        all,
        vec![
            "aborted-1",
            "aborted-2",
            "committed-1",
            "committed-2",
            "open-1",
            "plain-after-open"
        ]
    );

    // Commit the open one from a fresh client: now it and what followed it are visible.
    drop(open);
    KafkaClient::connect(&config(&[]))
        .unwrap()
        .commit_prepared(&prepared)
        .unwrap();
    assert_eq!(
        settled_values(&mut client, &p),
        vec!["committed-1", "committed-2", "open-1", "plain-after-open"]
    );
}

#[test]
fn commit_prepared_from_a_new_client_is_idempotent_and_detects_fencing() {
    let topic = unique("twophase");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 2, 1).unwrap();
    let id = unique("tid");

    // A producer writes to two partitions, prepares, and is dropped (as a failed process).
    let prepared = {
        let mut producer = Producer::new(
            &config(&[]),
            ProducerMode::Transactional {
                transactional_id: id.clone(),
            },
        )
        .unwrap();
        for i in 0..10 {
            producer
                .send(&tp(&topic, i % 2), record(&format!("r{i}")))
                .unwrap();
        }
        producer.prepare_commit().unwrap()
    };
    assert_eq!(prepared.transactional_id, id);
    for p in 0..2 {
        assert!(committed_values(&mut client, &tp(&topic, p)).is_empty());
    }

    let mut committer = KafkaClient::connect(&config(&[])).unwrap();
    committer.commit_prepared(&prepared).unwrap();
    committer.commit_prepared(&prepared).unwrap(); // twice: still fine
    let mut values: Vec<String> = (0..2)
        .flat_map(|p| settled_values(&mut client, &tp(&topic, p)))
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(values, want);

    // An empty prepared transaction commits to nothing.
    let empty_id = unique("tid-empty");
    let empty = Producer::new(
        &config(&[]),
        ProducerMode::Transactional {
            transactional_id: empty_id,
        },
    )
    .unwrap()
    .prepare_commit()
    .unwrap();
    committer.commit_prepared(&empty).unwrap();

    // The producer that prepared may commit itself too, and then write a next transaction.
    let mut producer = Producer::new(
        &config(&[]),
        ProducerMode::Transactional {
            transactional_id: unique("tid-self"),
        },
    )
    .unwrap();
    producer.send(&tp(&topic, 1), record("self-1")).unwrap();
    producer.prepare_commit().unwrap();
    producer.commit().unwrap();
    producer.send(&tp(&topic, 1), record("self-2")).unwrap();
    producer.commit().unwrap();
    assert_eq!(producer.metrics().transactions_committed, 2);
    let tail: Vec<String> = settled_values(&mut client, &tp(&topic, 1))
        .into_iter()
        .filter(|v| v.starts_with("self"))
        .collect();
    assert_eq!(tail, vec!["self-1", "self-2"]);

    // A prepared transaction whose id was re-initialised since is fenced.
    let fenced_id = unique("tid-fenced");
    let fenced = {
        let mut producer = Producer::new(
            &config(&[]),
            ProducerMode::Transactional {
                transactional_id: fenced_id.clone(),
            },
        )
        .unwrap();
        producer.send(&tp(&topic, 0), record("lost")).unwrap();
        producer.prepare_commit().unwrap()
    };
    let epoch = committer.abort_lingering(&fenced_id).unwrap();
    assert!(
        epoch > fenced.producer_epoch,
        "{epoch} > {}",
        fenced.producer_epoch
    );
    let err = committer.commit_prepared(&fenced).unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(!settled_values(&mut client, &tp(&topic, 0)).contains(&"lost".to_string()));
}

#[test]
fn abort_lingering_aborts_open_transactions_and_reports_unused_ids() {
    let topic = unique("lingering");
    let p = tp(&topic, 0);
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();
    assert_eq!(client.abort_lingering(&unique("never-used")).unwrap(), 0);

    let id = unique("tid-lingering");
    {
        let mut producer = Producer::new(
            &config(&[]),
            ProducerMode::Transactional {
                transactional_id: id.clone(),
            },
        )
        .unwrap();
        producer.send(&p, record("lingering")).unwrap();
        producer.flush().unwrap();
        // Dropped with the transaction open: it holds back the last stable offset.
    }
    assert_eq!(stable_end(&mut client, &p), 0);
    let epoch = client.abort_lingering(&id).unwrap();
    assert!(epoch >= 1, "epoch {epoch}");
    // The abort marker is written: the partition is stable again and shows nothing.
    let deadline = Instant::now() + Duration::from_secs(15);
    while stable_end(&mut client, &p) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stable_end(&mut client, &p), 2, "record + abort marker");
    assert!(settled_values(&mut client, &p).is_empty());
}

#[test]
fn consumer_group_offsets_round_trip() {
    let topic = unique("groups");
    let group = unique("group");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 2, 1).unwrap();
    let partitions = [tp(&topic, 0), tp(&topic, 1)];
    let none = client.committed_offsets(&group, &partitions).unwrap();
    assert_eq!(none.values().collect::<Vec<_>>(), vec![&None, &None]);
    client
        .commit_offsets(&group, &[(partitions[0].clone(), 42)].into())
        .unwrap();
    let got = client.committed_offsets(&group, &partitions).unwrap();
    assert_eq!(got[&partitions[0]], Some(42));
    assert_eq!(got[&partitions[1]], None);
    client
        .commit_offsets(
            &group,
            &[(partitions[0].clone(), 43), (partitions[1].clone(), 7)].into(),
        )
        .unwrap();
    let got = KafkaClient::connect(&config(&[]))
        .unwrap()
        .committed_offsets(&group, &partitions)
        .unwrap();
    assert_eq!(
        (got[&partitions[0]], got[&partitions[1]]),
        (Some(43), Some(7))
    );
}

#[test]
fn create_partitions_grows_a_topic() {
    let topic = unique("grow");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();
    client.create_partitions(&topic, 3).unwrap();
    client.create_partitions(&topic, 3).unwrap(); // already: fine
    assert_eq!(
        client
            .metadata(Some(std::slice::from_ref(&topic)))
            .unwrap()
            .topics[&topic],
        3
    );
    let err = client.create_partitions(&topic, 2).unwrap_err();
    assert!(err.to_string().contains("INVALID_PARTITIONS"), "{err}");
    // A producer that cached 1 partition sees the new ones.
    let mut producer = Producer::new(&config(&[]), ProducerMode::Plain { acks: -1 }).unwrap();
    producer
        .send(&tp(&topic, 2), record("in-new-partition"))
        .unwrap();
    producer.flush().unwrap();
    assert_eq!(
        settled_values(&mut client, &tp(&topic, 2)),
        vec!["in-new-partition"]
    );
}

#[test]
fn unknown_topics_partitions_and_brokers_are_clear_errors() {
    let missing = unique("missing");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    assert!(
        client
            .metadata(Some(std::slice::from_ref(&missing)))
            .unwrap()
            .topics
            .is_empty()
    );

    // Not retried for the whole request timeout (10 minutes for this client): the answer
    // comes while the test waits for it (bounded).
    let patient = config(&[("request.timeout.ms", "600000")]);
    let (tx, rx) = std::sync::mpsc::channel();
    let fetch_missing = missing.clone();
    std::thread::spawn(move || {
        let mut client = KafkaClient::connect(&patient).unwrap();
        let result = client.fetch(
            &[(tp(&fetch_missing, 0), 0)].into(),
            &options(IsolationLevel::ReadCommitted),
        );
        let _ = tx.send(result.map(|_| ()));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a fetch of a missing topic is answered without waiting for the request timeout")
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(err.code(), Some(3), "{message}");
    assert!(
        message.contains("UNKNOWN_TOPIC_OR_PARTITION") && message.contains(&missing),
        "{message}"
    );
    assert!(message.contains("create it"), "{message}");

    let err = client
        .list_offsets(&[tp(&missing, 0)], OffsetSpec::Latest)
        .unwrap_err();
    assert_eq!(err.code(), Some(3), "{err}");

    let topic = unique("onepartition");
    client.create_topic(&topic, 1, 1).unwrap();
    let mut producer = Producer::new(&config(&[]), ProducerMode::Idempotent).unwrap();
    let err = producer
        .send(&tp(&topic, 5), record("x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{topic}-5")) && err.contains("1 partitions"),
        "{err}"
    );
    let err = producer
        .send(&tp(&missing, 0), record("x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");

    // Nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = ClientConfig {
        properties: [
            ("bootstrap.servers".to_string(), format!("127.0.0.1:{port}")),
            ("request.timeout.ms".to_string(), "2000".to_string()),
        ]
        .into(),
    };
    match KafkaClient::connect(&dead) {
        Err(KafkaError::Unreachable { bootstrap, message }) => {
            assert_eq!(bootstrap, format!("127.0.0.1:{port}"));
            assert!(message.contains(&port.to_string()), "{message}");
        }
        Err(e) => panic!("expected Unreachable, got {e}"),
        Ok(_) => panic!("connected to a closed port"),
    }
    let sasl = config(&[("security.protocol", "SASL_PLAINTEXT")]);
    assert!(matches!(
        KafkaClient::connect(&sasl),
        Err(KafkaError::Config(_))
    ));
}

/// Runs one of Kafka's Java tools through `scripts/infra/kafka.sh tool`, with `stdin` as input.
fn kafka_tool(class: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new("bash")
        .arg(root.join("scripts/infra/kafka.sh"))
        .args(["tool", class])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run scripts/infra/kafka.sh tool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{class} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Batches written by Kafka's Java producer (each codec) are read, or refused by name; what
/// this client writes transactionally is what Kafka's Java consumer reads with read_committed.
#[test]
fn interoperates_with_kafkas_java_clients() {
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    let topics: Vec<String> = codecs
        .iter()
        .map(|c| unique(&format!("java-{c}")))
        .collect();
    for topic in &topics {
        client.create_topic(topic, 1, 1).unwrap();
    }
    let bootstrap = bootstrap();
    std::thread::scope(|s| {
        for (codec, topic) in codecs.iter().zip(&topics) {
            let bootstrap = &bootstrap;
            s.spawn(move || {
                kafka_tool(
                    "org.apache.kafka.tools.ConsoleProducer",
                    &[
                        "--bootstrap-server",
                        bootstrap,
                        "--topic",
                        topic,
                        "--compression-codec",
                        codec,
                        "--property",
                        "parse.key=true",
                        "--property",
                        "key.separator=:",
                    ],
                    "k1:first line\nk2:second line\nk3:third line\n",
                )
            });
        }
    });
    for (codec, topic) in codecs.iter().zip(&topics) {
        let p = tp(topic, 0);
        let result = client.fetch(
            &[(p.clone(), 0)].into(),
            &options(IsolationLevel::ReadCommitted),
        );
        match *codec {
            "gzip" | "snappy" => {
                let fetched = result.unwrap();
                let got: Vec<_> = fetched[0]
                    .records
                    .iter()
                    .map(|r| {
                        (
                            String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(),
                            text(r),
                        )
                    })
                    .collect();
                assert_eq!(
                    got,
                    vec![
                        ("k1".to_string(), "first line".to_string()),
                        ("k2".to_string(), "second line".to_string()),
                        ("k3".to_string(), "third line".to_string())
                    ],
                    "{codec}"
                );
            }
            _ => {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains(codec) && err.contains(&format!("{topic}-0")),
                    "{err}"
                );
            }
        }
    }

    // The other direction: transactions of this client, read by Kafka's consumer.
    let topic = unique("to-java");
    client.create_topic(&topic, 2, 1).unwrap();
    for codec in ["gzip", "snappy", "none"] {
        let mut producer = Producer::new(
            &config(&[("compression.type", codec)]),
            ProducerMode::Transactional {
                transactional_id: unique("tid-java"),
            },
        )
        .unwrap();
        for partition in 0..2 {
            let r = ProducerRecord {
                key: Some(Bytes::from(format!("{codec}-key"))),
                timestamp: Some(1_000 + i64::from(partition)),
                ..record(&format!("{codec}-committed-{partition}"))
            };
            producer.send(&tp(&topic, partition), r).unwrap();
        }
        producer.commit().unwrap();
        producer
            .send(&tp(&topic, 0), record(&format!("{codec}-aborted")))
            .unwrap();
        producer.flush().unwrap();
        producer.abort().unwrap();
    }
    for partition in 0..2 {
        settled_values(&mut client, &tp(&topic, partition));
    }
    let drained = kafka_tool(
        "fjord.infra.DrainTopic",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &topic,
            "--timeout-ms",
            "120000",
        ],
        "",
    );
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    // partition, offset, timestamp, key, value: offsets depend on where markers landed, so
    // everything else is compared.
    let mut got: Vec<String> = drained
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            format!("{}\t{}\t{}\t{}", f[0], f[2], f[3], f[4])
        })
        .collect();
    let mut want: Vec<String> = Vec::new();
    for partition in 0..2 {
        for codec in ["gzip", "snappy", "none"] {
            want.push(format!(
                "{partition}\t{}\t{}\t{}",
                1_000 + partition,
                hex(&format!("{codec}-key")),
                hex(&format!("{codec}-committed-{partition}"))
            ));
        }
    }
    got.sort();
    want.sort();
    assert_eq!(got, want, "DrainTopic output:\n{drained}");
}

/// `scripts/infra/kafka.sh COMMAND DIR`; returns stdout.
fn kafka_sh(command: &str, dir: &std::path::Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/infra/kafka.sh"))
        .arg(command)
        .arg(dir)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("run scripts/infra/kafka.sh");
    assert!(
        out.status.success(),
        "kafka.sh {command} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A broker restart while a fetch and a produce wait: both carry on over new connections
/// once the broker is back (within request.timeout.ms), without an error.
#[test]
fn rides_out_a_broker_restart() {
    // A broker of its own: the others' tests must not see this one stop.
    let broker = KafkaBroker::start_with(KafkaOptions::new("client-restart")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    let config = ClientConfig {
        properties: [
            ("bootstrap.servers".to_string(), bootstrap),
            ("request.timeout.ms".to_string(), "120000".to_string()),
        ]
        .into(),
    };
    let topic = unique("restart");
    let p = tp(&topic, 0);
    let mut client = KafkaClient::connect(&config).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();
    let mut producer = Producer::new(&config, ProducerMode::Idempotent).unwrap();
    for i in 0..10 {
        producer.send(&p, record(&format!("before-{i}"))).unwrap();
    }
    producer.flush().unwrap();
    let (before, _) = read(&mut client, &p, 0, 10, IsolationLevel::ReadCommitted);
    assert_eq!(before.len(), 10);

    broker.stop().unwrap();
    std::thread::scope(|s| {
        let restart = s.spawn(|| broker.restart().unwrap());
        // Both calls start while the broker is down and return once it serves again.
        let fetcher = s.spawn(|| {
            client
                .fetch(
                    &[(p.clone(), 0)].into(),
                    &options(IsolationLevel::ReadCommitted),
                )
                .map(|f| f[0].records.len())
        });
        for i in 0..10 {
            producer.send(&p, record(&format!("after-{i}"))).unwrap();
        }
        producer.flush().unwrap();
        restart.join().unwrap();
        let fetched = fetcher.join().unwrap().unwrap();
        assert!(fetched >= 10, "{fetched}");
    });
    let values: Vec<String> = read(&mut client, &p, 0, 20, IsolationLevel::ReadCommitted)
        .0
        .iter()
        .map(text)
        .collect();
    let want: Vec<String> = (0..10)
        .map(|i| format!("before-{i}"))
        .chain((0..10).map(|i| format!("after-{i}")))
        .collect();
    assert_eq!(values, want);
    broker.shutdown().unwrap();
}

/// Many small batches (pipelined, up to 5 requests in flight) arrive complete and in order,
/// idempotent and transactional.
#[test]
fn pipelined_batches_arrive_in_order() {
    let topic = unique("pipelined");
    let mut client = KafkaClient::connect(&config(&[])).unwrap();
    client.create_topic(&topic, 2, 1).unwrap();
    let small = config(&[("batch.size", "512"), ("linger.ms", "0")]);
    let modes = [
        ProducerMode::Idempotent,
        ProducerMode::Transactional {
            transactional_id: unique("tid-pipelined"),
        },
    ];
    for (partition, mode) in modes.into_iter().enumerate() {
        let p = tp(&topic, partition as i32);
        let transactional = matches!(mode, ProducerMode::Transactional { .. });
        let mut producer = Producer::new(&small, mode).unwrap();
        for i in 0..5_000 {
            producer.send(&p, record(&format!("{i:05}"))).unwrap();
        }
        if transactional {
            producer.commit().unwrap();
        } else {
            producer.flush().unwrap();
        }
        assert_eq!(producer.metrics().records_sent, 5_000);
        let values = settled_values(&mut client, &p);
        let want: Vec<String> = (0..5_000).map(|i| format!("{i:05}")).collect();
        assert_eq!(values.len(), want.len(), "{p:?}");
        assert!(values == want, "{p:?}: records out of order or duplicated");
    }
}

/// security.protocol=SSL against a broker's TLS listener that requires a client
/// certificate: trust from a PEM CA file, the client's key and certificate from a PEM
/// keystore; a client that does not trust the CA, or brings no certificate, fails clearly.
#[test]
fn speaks_tls_with_client_certificates() {
    let dir = std::env::temp_dir().join(unique("fjord-kafka-client-tls"));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    certificates(
        &certs,
        &[
            ("broker", "IP:127.0.0.1,DNS:localhost"),
            ("client", "DNS:client"),
        ],
    );
    let (port, controller, tls_port) = (free_port(), free_port(), free_port());
    let pem = |n: &str| certs.join(n).display().to_string();
    let overrides = [
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SSL://127.0.0.1:{tls_port}"
        ),
        format!("advertised.listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{tls_port}"),
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL"
            .to_string(),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", pem("broker.pem")),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={}", pem("ca.pem")),
        "ssl.client.auth=required".to_string(),
    ];
    start_kafka(&dir, port, controller, &overrides, &[]);

    let tls = |extra: &[(&str, String)]| {
        let mut properties: BTreeMap<String, String> = [
            (
                "bootstrap.servers".to_string(),
                format!("127.0.0.1:{tls_port}"),
            ),
            ("security.protocol".to_string(), "SSL".to_string()),
            ("request.timeout.ms".to_string(), "15000".to_string()),
        ]
        .into();
        for (k, v) in extra {
            properties.insert(k.to_string(), v.clone());
        }
        ClientConfig { properties }
    };
    let good = tls(&[
        ("ssl.truststore.location", pem("ca.pem")),
        ("ssl.keystore.location", pem("client.pem")),
    ]);
    let topic = unique("tls");
    let p = tp(&topic, 0);
    let mut client = KafkaClient::connect(&good).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();
    let mut producer = Producer::new(
        &good,
        ProducerMode::Transactional {
            transactional_id: unique("tid-tls"),
        },
    )
    .unwrap();
    producer.send(&p, record("over tls")).unwrap();
    producer.commit().unwrap();
    assert_eq!(settled_values(&mut client, &p), vec!["over tls"]);

    // The same CA as inline PEM text, and the client identity as inline PEM too.
    let inline = tls(&[
        (
            "ssl.truststore.certificates",
            std::fs::read_to_string(pem("ca.pem")).unwrap(),
        ),
        (
            "ssl.keystore.certificate.chain",
            std::fs::read_to_string(pem("client.crt")).unwrap(),
        ),
        (
            "ssl.keystore.key",
            std::fs::read_to_string(pem("client.key")).unwrap(),
        ),
    ]);
    assert_eq!(
        settled_values(&mut KafkaClient::connect(&inline).unwrap(), &p),
        vec!["over tls"]
    );

    // Not trusting the broker's CA (the public roots do not know it).
    let err = KafkaClient::connect(&tls(&[("ssl.keystore.location", pem("client.pem"))]))
        .err()
        .expect("an unknown CA must fail")
        .to_string();
    assert!(
        err.contains("TLS handshake failed") && err.contains("ssl.truststore"),
        "{err}"
    );
    // No client certificate where the broker requires one.
    let err = KafkaClient::connect(&tls(&[("ssl.truststore.location", pem("ca.pem"))]));
    assert!(
        err.is_err(),
        "connected without the required client certificate"
    );
    kafka_sh("down", &dir);
    // Kept for inspection when the test failed before this line.
    let _ = std::fs::remove_dir_all(&dir);
}
