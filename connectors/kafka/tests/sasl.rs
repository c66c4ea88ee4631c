//! SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; SASL_PLAINTEXT and SASL_SSL)
//! against a real Apache Kafka 4.x broker, through the client and through jobs with the
//! source and the exactly-once sink, configured the way a Flink user writes the properties;
//! Kafka's own console consumer, given the same properties, reads what the jobs wrote.
//!
//! One broker for this binary (`scripts/infra/kafka.sh`, stopped by its watchdog when the
//! binary exits) with a PLAINTEXT listener (inter-broker), a SASL_PLAINTEXT and a SASL_SSL
//! listener that enable PLAIN (user `alice` in the listener's JAAS) and both SCRAM mechanisms
//! (`alice`'s SCRAM credentials written into the cluster metadata when it is formatted,
//! `kafka.sh start --add-scram`); SCRAM-SHA-256 sessions on the SASL_SSL listener last 2 s
//! (`connections.max.reauth.ms`), so the tests using them also meet expiring sessions.

mod support;

use bytes::Bytes;
use fjord::StreamExecutionEnvironment;
use fjord_kafka::KafkaError;
use fjord_kafka::client::{
    ClientConfig, FetchOptions, IsolationLevel, KafkaClient, Producer, ProducerMode,
    ProducerRecord, TopicPartition,
};
use fjord_kafka::format::{Utf8, value_only};
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, OffsetsInitializer, StoppingOffsets};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::{certificates, free_port, start_kafka, unique};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";
/// Session lifetime (`connections.max.reauth.ms`) of SCRAM-SHA-256 over the SASL_SSL listener.
const SESSION_MS: u64 = 2000;

/// The test broker's addresses.
struct Broker {
    plaintext: u16,
    sasl_plaintext: u16,
    sasl_ssl: u16,
    /// PEM file of the CA that signed the broker's certificate.
    ca: PathBuf,
}

fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(start_broker)
}

fn start_broker() -> Broker {
    let dir = std::env::temp_dir().join(unique("fjord-kafka-sasl"));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    certificates(&certs, &[("broker", "IP:127.0.0.1,DNS:localhost")]);
    let (port, controller, sasl, sasl_ssl) = (free_port(), free_port(), free_port(), free_port());
    let mut overrides = vec![
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},\
             SASL_PLAINTEXT://127.0.0.1:{sasl},SASL_SSL://127.0.0.1:{sasl_ssl}"
        ),
        format!(
            "advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl},\
             SASL_SSL://127.0.0.1:{sasl_ssl}"
        ),
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
         SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
            .to_string(),
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".to_string(),
        "ssl.keystore.type=PEM".to_string(),
        format!(
            "ssl.keystore.location={}",
            certs.join("broker.pem").display()
        ),
        // Short sessions for one listener and mechanism: the broker closes a connection used
        // after its session expired (KIP-368), which `expired_sessions_are_survived` meets.
        format!("listener.name.sasl_ssl.scram-sha-256.connections.max.reauth.ms={SESSION_MS}"),
    ];
    for listener in ["sasl_plaintext", "sasl_ssl"] {
        overrides.push(format!(
            "listener.name.{listener}.plain.sasl.jaas.config=\
             org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_{USER}=\"{PASSWORD}\";"
        ));
        for scram in ["scram-sha-256", "scram-sha-512"] {
            overrides.push(format!(
                "listener.name.{listener}.{scram}.sasl.jaas.config=\
                 org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ));
        }
    }
    let scram: Vec<String> = ["SCRAM-SHA-256", "SCRAM-SHA-512"]
        .iter()
        .flat_map(|m| {
            [
                "--add-scram".to_string(),
                format!("{m}=[name={USER},password={PASSWORD}]"),
            ]
        })
        .collect();
    start_kafka(&dir, port, controller, &overrides, &scram);
    Broker {
        plaintext: port,
        sasl_plaintext: sasl,
        sasl_ssl,
        ca: certs.join("ca.pem"),
    }
}

/// The JAAS line a Flink user writes for `mechanism`.
fn jaas(mechanism: &str, password: &str) -> String {
    let module = if mechanism == "PLAIN" {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    format!("{module} required username=\"{USER}\" password=\"{password}\";")
}

/// Client properties for the SASL_PLAINTEXT listener.
fn sasl_properties(mechanism: &str, password: &str) -> BTreeMap<String, String> {
    [
        (
            "bootstrap.servers",
            format!("127.0.0.1:{}", broker().sasl_plaintext),
        ),
        ("security.protocol", "SASL_PLAINTEXT".to_string()),
        ("sasl.mechanism", mechanism.to_string()),
        ("sasl.jaas.config", jaas(mechanism, password)),
        ("request.timeout.ms", "30000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn config(properties: BTreeMap<String, String>) -> ClientConfig {
    ClientConfig { properties }
}

/// An exactly-once sink of UTF-8 values to `topic` with only `properties` (and a unique
/// transactional-id prefix starting with `prefix`).
fn exactly_once_sink(
    properties: &BTreeMap<String, String>,
    topic: &str,
    prefix: &str,
) -> KafkaSink<String> {
    KafkaSink::builder()
        .properties(properties.clone())
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(unique(prefix))
        .record_serializer(
            KafkaRecordSerializer::builder()
                .topic(topic)
                .value(Utf8)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Writes `values` to `topic` with an exactly-once `KafkaSink` in a checkpointed job, then
/// reads the topic back with a bounded `KafkaSource` (read_committed, offsets committed to a
/// group) in a second job; both with `properties` only.
fn round_trip_through_jobs(properties: &BTreeMap<String, String>, topic: &str, n: usize) {
    let mut admin = KafkaClient::connect(&config(properties.clone())).unwrap();
    admin.create_topic(topic, 2, 1).unwrap();
    let want: Vec<String> = (0..n).map(|i| format!("{topic}-{i:04}")).collect();

    let sink = exactly_once_sink(properties, topic, "sasl-sink");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(100));
    env.from_collection(want.clone())
        .stream()
        .sink_to_transactional(sink, "Sink: Kafka")
        .uid("kafka");
    env.execute("sasl sink").unwrap();
    // The last commit returns once the coordinator decided it; its markers reach the partitions
    // a moment later (as with Kafka's producer). The source stops at the end it first sees, so
    // wait until read_committed sees everything.
    let committed = read_committed(&mut admin, topic, 2, n);
    assert_eq!(
        committed.len(),
        n,
        "committed by the sink over {properties:?}"
    );

    let mut source = KafkaSource::builder()
        .topics([topic])
        .group_id(unique("sasl-group"))
        .starting_offsets(OffsetsInitializer::Earliest)
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(Utf8));
    for (k, v) in properties {
        source = source.property(k, v);
    }
    let source = source
        .property("isolation.level", "read_committed")
        .build()
        .unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let read = env.from_source(source, "Kafka").collect();
    env.execute("sasl source").unwrap();
    let mut got = read.values();
    got.sort();
    assert!(
        got == want,
        "the source read {} records where {n} were written, over {properties:?}",
        got.len()
    );

    // Kafka's own Java consumer, given the very same properties, reads the same records: the
    // properties mean to this client what they mean to Kafka's.
    let mut java = java_consumer(properties, topic, n);
    java.sort();
    assert!(java == want, "Kafka's console consumer over {properties:?}");
}

/// What Kafka's console consumer (read_committed, from the beginning) reads from `topic` with
/// `properties` as its client configuration, `n` records at most.
fn java_consumer(properties: &BTreeMap<String, String>, topic: &str, n: usize) -> Vec<String> {
    let file = std::env::temp_dir().join(format!("{}.properties", unique("sasl-java")));
    let text: String = properties
        .iter()
        .filter(|(k, _)| k.as_str() != "bootstrap.servers")
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/infra/kafka.sh"))
        .args(["tool", "org.apache.kafka.tools.consumer.ConsoleConsumer"])
        .args(["--bootstrap-server", &properties["bootstrap.servers"]])
        .args(["--topic", topic, "--from-beginning"])
        .args(["--isolation-level", "read_committed"])
        .args(["--max-messages", &n.to_string(), "--timeout-ms", "30000"])
        .arg("--command-config")
        .arg(&file)
        .output()
        .expect("run Kafka's console consumer");
    let _ = std::fs::remove_file(&file);
    let values: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        values.len() == n,
        "the console consumer read {} of {n} records ({}): {}",
        values.len(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    values
}

/// The values of `topic`'s `partitions` that read_committed sees, read from the start until
/// there are `n` (or 60 s passed).
fn read_committed(client: &mut KafkaClient, topic: &str, partitions: i32, n: usize) -> Vec<String> {
    let options = FetchOptions {
        isolation: IsolationLevel::ReadCommitted,
        max_wait: Duration::from_millis(100),
        ..FetchOptions::default()
    };
    let mut positions: BTreeMap<TopicPartition, i64> = (0..partitions)
        .map(|partition| {
            let tp = TopicPartition {
                topic: topic.to_string(),
                partition,
            };
            (tp, 0)
        })
        .collect();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < n && Instant::now() < deadline {
        for fetched in client.fetch(&positions, &options).unwrap() {
            positions.insert(fetched.partition.clone(), fetched.next_offset);
            values.extend(
                fetched
                    .records
                    .iter()
                    .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).to_string()),
            );
        }
    }
    values
}

/// A transactional producer and a read_committed fetch with the client itself.
fn produce_and_fetch(properties: &BTreeMap<String, String>, topic: &str) {
    let c = config(properties.clone());
    let mut client = KafkaClient::connect(&c).unwrap();
    client.create_topic(topic, 1, 1).unwrap();
    let p = TopicPartition {
        topic: topic.to_string(),
        partition: 0,
    };
    let mut producer = Producer::new(
        &c,
        ProducerMode::Transactional {
            transactional_id: unique("sasl-tid"),
        },
    )
    .unwrap();
    for v in ["one", "two"] {
        let record = ProducerRecord {
            value: Some(Bytes::from(v)),
            ..ProducerRecord::default()
        };
        producer.send(&p, record).unwrap();
    }
    producer.commit().unwrap();
    let values = read_committed(&mut client, topic, 1, 2);
    assert_eq!(values, vec!["one", "two"]);
}

#[test]
fn plain_over_sasl_plaintext_in_jobs() {
    round_trip_through_jobs(
        &sasl_properties("PLAIN", PASSWORD),
        &unique("sasl-plain"),
        300,
    );
}

#[test]
fn scram_sha_256_over_sasl_plaintext_in_jobs() {
    round_trip_through_jobs(
        &sasl_properties("SCRAM-SHA-256", PASSWORD),
        &unique("sasl-scram256"),
        300,
    );
}

#[test]
fn scram_sha_512_over_sasl_plaintext_in_jobs() {
    round_trip_through_jobs(
        &sasl_properties("SCRAM-SHA-512", PASSWORD),
        &unique("sasl-scram512"),
        300,
    );
}

#[test]
fn every_mechanism_over_sasl_ssl() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        produce_and_fetch(
            &sasl_ssl_properties(mechanism),
            &unique(&format!("sasl-ssl-{mechanism}")),
        );
    }
    // A job over SASL_SSL too.
    round_trip_through_jobs(
        &sasl_ssl_properties("SCRAM-SHA-512"),
        &unique("sasl-ssl-job"),
        100,
    );
}

/// SASL_SSL client properties for `mechanism`.
fn sasl_ssl_properties(mechanism: &str) -> BTreeMap<String, String> {
    let mut properties = sasl_properties(mechanism, PASSWORD);
    properties.insert(
        "bootstrap.servers".into(),
        format!("127.0.0.1:{}", broker().sasl_ssl),
    );
    properties.insert("security.protocol".into(), "SASL_SSL".into());
    properties.insert(
        "ssl.truststore.location".into(),
        broker().ca.display().to_string(),
    );
    properties.insert("ssl.truststore.type".into(), "PEM".into());
    properties
}

/// A broker with `connections.max.reauth.ms` closes a connection whose session expired when it
/// is next used; the client does not re-authenticate in place (KIP-368) but meets the closed
/// connection as a lost one and retries on a new, authenticated connection, so transactions
/// that span expiries still commit every record once.
#[test]
fn expired_sessions_are_survived() {
    let c = config(sasl_ssl_properties("SCRAM-SHA-256"));
    let topic = unique("sasl-expiry");
    let mut client = KafkaClient::connect(&c).unwrap();
    client.create_topic(&topic, 1, 1).unwrap();
    let p = TopicPartition {
        topic: topic.clone(),
        partition: 0,
    };
    let mut producer = Producer::new(
        &c,
        ProducerMode::Transactional {
            transactional_id: unique("sasl-expiry-tid"),
        },
    )
    .unwrap();
    let mut want = Vec::new();
    for round in 0..3 {
        for i in 0..10 {
            let value = format!("{round}-{i}");
            let record = ProducerRecord {
                value: Some(Bytes::from(value.clone())),
                ..ProducerRecord::default()
            };
            producer.send(&p, record).unwrap();
            want.push(value);
        }
        producer.commit().unwrap();
        // Let every connection's session expire: the event under test is time passing.
        std::thread::sleep(Duration::from_millis(SESSION_MS + 500));
    }
    assert_eq!(read_committed(&mut client, &topic, 1, want.len()), want);
}

/// A wrong password is a clear, non-retriable error naming the broker, the mechanism and the
/// broker's message, from the client and from a job (which fails instead of retrying).
#[test]
fn a_wrong_password_fails_with_the_brokers_message() {
    let addr = format!("127.0.0.1:{}", broker().sasl_plaintext);
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let started = Instant::now();
        let err = KafkaClient::connect(&config(sasl_properties(mechanism, "wrong")))
            .err()
            .expect("a wrong password must not authenticate");
        eprintln!("{mechanism}: failed in {:?}: {err}", started.elapsed());
        assert!(matches!(err, KafkaError::Authentication { .. }), "{err:?}");
        assert!(!err.is_retriable());
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "SASL authentication failed at {addr} with {mechanism}: "
            )),
            "{message}"
        );
        assert!(
            message.contains("Authentication failed") && !message.contains("wrong"),
            "{message}"
        );
        if mechanism != "PLAIN" {
            assert!(
                message.contains(&format!(
                    "invalid credentials with SASL mechanism {mechanism}"
                )),
                "{message}"
            );
        }
    }

    // The producer, and a job's sink and source.
    let bad = sasl_properties("SCRAM-SHA-256", "wrong");
    let err = Producer::new(&config(bad.clone()), ProducerMode::Idempotent)
        .err()
        .expect("a wrong password must not authenticate")
        .to_string();
    assert!(err.contains("SASL authentication failed"), "{err}");
    let sink = exactly_once_sink(&bad, "sasl-never-written", "sasl-bad");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_collection(vec!["x".to_string()])
        .stream()
        .sink_to_transactional(sink, "Sink: Kafka");
    let err = env.execute("wrong password sink").unwrap_err().to_string();
    eprintln!("sink job: {err}");
    assert!(
        err.contains(&format!(
            "SASL authentication failed at {addr} with SCRAM-SHA-256"
        )) && err.contains("invalid credentials"),
        "{err}"
    );
    let mut source = KafkaSource::builder()
        .topics(["sasl-never-read"])
        .group_id("sasl-bad")
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(Utf8));
    for (k, v) in sasl_properties("PLAIN", "wrong") {
        source = source.property(k, v);
    }
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let _ = env.from_source(source.build().unwrap(), "Kafka").collect();
    let err = env
        .execute("wrong password source")
        .unwrap_err()
        .to_string();
    eprintln!("source job: {err}");
    assert!(
        err.contains(&format!("SASL authentication failed at {addr} with PLAIN")),
        "{err}"
    );
}

/// SASL against a listener that does not speak it, a mechanism mismatch in the JAAS line, and
/// a listener speaking SASL to a client that does not: each says what to check.
#[test]
fn misconfigurations_are_explained() {
    let mut properties = sasl_properties("SCRAM-SHA-256", PASSWORD);
    properties.insert(
        "bootstrap.servers".into(),
        format!("127.0.0.1:{}", broker().plaintext),
    );
    let err = KafkaClient::connect(&config(properties))
        .err()
        .expect("SASL against a PLAINTEXT listener")
        .to_string();
    assert!(
        err.contains("SASL authentication failed")
            && err.contains("does not expect SASL authentication"),
        "{err}"
    );

    // The other way round: no SASL at a SASL listener, which answers ApiVersions only.
    let plain = config(
        [
            (
                "bootstrap.servers".to_string(),
                format!("127.0.0.1:{}", broker().sasl_plaintext),
            ),
            ("request.timeout.ms".to_string(), "10000".to_string()),
        ]
        .into(),
    );
    let err = KafkaClient::connect(&plain)
        .err()
        .expect("PLAINTEXT against a SASL listener")
        .to_string();
    assert!(
        err.contains("closed the connection after ApiVersions")
            && err.contains("security.protocol=SASL_SSL"),
        "{err}"
    );

    let mut properties = sasl_properties("SCRAM-SHA-512", PASSWORD);
    properties.insert("sasl.jaas.config".into(), jaas("PLAIN", PASSWORD));
    let err = KafkaClient::connect(&config(properties))
        .err()
        .expect("a PLAIN login module for SCRAM")
        .to_string();
    assert!(
        err.contains("PlainLoginModule")
            && err.contains("sasl.mechanism=SCRAM-SHA-512")
            && !err.contains(PASSWORD),
        "{err}"
    );

    let mut properties = sasl_properties("OAUTHBEARER", PASSWORD);
    properties.remove("sasl.jaas.config");
    let err = KafkaClient::connect(&config(properties))
        .err()
        .expect("OAUTHBEARER")
        .to_string();
    assert!(
        err.contains("OAUTHBEARER") && err.contains("PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"),
        "{err}"
    );
}
