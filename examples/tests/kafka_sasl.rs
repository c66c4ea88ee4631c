//! The Kafka example jobs authenticate with SASL through `--kafka-properties FILE`, against a
//! real Kafka broker with a SASL_PLAINTEXT listener (PLAIN): WordCount reads and writes its
//! topics as user `alice`, and a wrong password fails the job with the broker's answer.

#[path = "../../connectors/kafka/tests/support/mod.rs"]
mod support;

use fjord::{JobArgs, StreamExecutionEnvironment};
use fjord_kafka::client::{
    ClientConfig, FetchOptions, IsolationLevel, KafkaClient, Producer, ProducerMode,
    ProducerRecord, TopicPartition,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{free_port, start_kafka, unique};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";

/// A broker with a PLAINTEXT listener (for the test's own client) and a SASL_PLAINTEXT one
/// with PLAIN; returns (plaintext port, SASL port).
fn broker(dir: &Path) -> (u16, u16) {
    let (port, controller, sasl) = (free_port(), free_port(), free_port());
    let overrides = vec![
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},\
             SASL_PLAINTEXT://127.0.0.1:{sasl}"
        ),
        format!(
            "advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}"
        ),
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
         SASL_PLAINTEXT:SASL_PLAINTEXT"
            .to_string(),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        format!(
            "listener.name.sasl_plaintext.plain.sasl.jaas.config=\
             org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_{USER}=\"{PASSWORD}\";"
        ),
    ];
    start_kafka(dir, port, controller, &overrides, &[]);
    (port, sasl)
}

fn plaintext(port: u16) -> ClientConfig {
    ClientConfig {
        properties: [("bootstrap.servers".to_string(), format!("127.0.0.1:{port}"))].into(),
    }
}

/// The properties file a user mounts from a Secret.
fn properties_file(dir: &Path, password: &str) -> String {
    let path = dir.join(format!("client-{password}.properties"));
    std::fs::write(
        &path,
        format!(
            "# Kafka client settings for the example jobs\n\
             security.protocol=SASL_PLAINTEXT\n\
             sasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n\
             \x20   username=\"{USER}\" password=\"{password}\";\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn run_wordcount(sasl: u16, input: &str, output: &str, properties: &str) -> fjord::Result<()> {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let args = JobArgs::parse([
        "--bootstrap-servers",
        &format!("127.0.0.1:{sasl}"),
        "--kafka-properties",
        properties,
        "--input-topic",
        input,
        "--output-topic",
        output,
        "--group-id",
        &unique("wc-group"),
        "--transactional-id-prefix",
        &unique("wc"),
        "--bounded",
    ])?;
    fjord_examples::registry().build("kafka-wordcount", &env, &args)?;
    env.execute("kafka-wordcount over SASL").map(|_| ())
}

#[test]
fn example_jobs_authenticate_with_a_properties_file() {
    let dir = std::env::temp_dir().join(unique("fjord-examples-kafka-sasl"));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, sasl) = broker(&dir);
    let (input, output) = (unique("lines"), unique("word-counts"));
    let mut client = KafkaClient::connect(&plaintext(port)).unwrap();
    client.create_topic(&input, 1, 1).unwrap();
    client.create_topic(&output, 1, 1).unwrap();
    let tp = |topic: &str| TopicPartition {
        topic: topic.to_string(),
        partition: 0,
    };
    let mut producer = Producer::new(
        &plaintext(port),
        ProducerMode::Transactional {
            transactional_id: unique("lines-tid"),
        },
    )
    .unwrap();
    for line in ["to be or", "not to be"] {
        let record = ProducerRecord {
            value: Some(line.as_bytes().to_vec().into()),
            ..ProducerRecord::default()
        };
        producer.send(&tp(&input), record).unwrap();
    }
    producer.commit().unwrap();

    run_wordcount(sasl, &input, &output, &properties_file(&dir, PASSWORD)).unwrap();

    // Every word occurrence gave one `word,count` row; the last row per word is its count.
    let options = FetchOptions {
        isolation: IsolationLevel::ReadCommitted,
        max_wait: Duration::from_millis(100),
        ..FetchOptions::default()
    };
    let mut positions: BTreeMap<TopicPartition, i64> = [(tp(&output), 0)].into();
    let mut rows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows.len() < 6 && Instant::now() < deadline {
        for fetched in client.fetch(&positions, &options).unwrap() {
            positions.insert(fetched.partition.clone(), fetched.next_offset);
            rows.extend(
                fetched
                    .records
                    .iter()
                    .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).to_string()),
            );
        }
    }
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for row in &rows {
        let (word, count) = row.split_once(',').unwrap();
        last.insert(word.to_string(), count.to_string());
    }
    assert_eq!(rows.len(), 6, "{rows:?}");
    let want: BTreeMap<String, String> = [("be", "2"), ("not", "1"), ("or", "1"), ("to", "2")]
        .into_iter()
        .map(|(w, c)| (w.to_string(), c.to_string()))
        .collect();
    assert_eq!(last, want);

    // A wrong password: the job fails with the broker's answer, not a retry loop.
    let err = run_wordcount(sasl, &input, &output, &properties_file(&dir, "wrong"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "SASL authentication failed at 127.0.0.1:{sasl} with PLAIN"
        )),
        "{err}"
    );
    assert!(
        !err.contains("wrong\""),
        "the password leaked into the error: {err}"
    );
}
