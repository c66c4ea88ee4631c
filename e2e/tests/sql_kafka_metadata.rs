//! Kafka metadata columns of SQL tables against a real Kafka 4.4 broker: a source reads each
//! record's timestamp, partition, offset and topic beside its value (and a computed column over
//! them), and a sink writes its `timestamp` column as the record timestamp. Expected rows are
//! worked out by hand from the records produced (Flink's Kafka connector gives the same
//! metadata; the Flink oracle does not run Kafka tables yet).

use fjord::StreamExecutionEnvironment;
use fjord_e2e::{KafkaBroker, KafkaOptions, ProducerRecord};

/// 2024-01-01 00:00:00 UTC in ms.
const T0: i64 = 1_704_067_200_000;

fn run(script: &str) {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("Fjord refused the script: {e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("sql kafka metadata").unwrap();
}

#[test]
fn kafka_metadata_columns_read_timestamp_partition_offset_topic_and_write_the_timestamp() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("sql-metadata")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("events", 2).unwrap();
    broker.create_topic("stamped", 1).unwrap();
    broker.create_topic("plain", 1).unwrap();
    broker
        .produce(
            "events",
            &[
                ProducerRecord::value("1,alice")
                    .partition(0)
                    .timestamp(T0 + 1_000),
                ProducerRecord::value("2,bob")
                    .partition(1)
                    .timestamp(T0 + 2_500),
                ProducerRecord::value("3,carol")
                    .partition(0)
                    .timestamp(T0 + 4_000),
            ],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kafka = |topic: &str, rest: &str| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', 'format' = '{rest}"
        )
    };
    let script = format!(
        "SET 'parallelism.default' = '1';
         CREATE TABLE events (
           kts TIMESTAMP(3) METADATA FROM 'timestamp',
           id INT,
           name STRING,
           part INT METADATA FROM 'partition' VIRTUAL,
           `offset` BIGINT METADATA VIRTUAL,
           src STRING METADATA FROM 'topic' VIRTUAL,
           label AS CONCAT(name, '@', CAST(part AS STRING)),
           WATERMARK FOR kts AS kts - INTERVAL '5' SECOND
         ) WITH ({});
         CREATE TABLE seen (id INT, name STRING, kts TIMESTAMP(3), part INT, o BIGINT, src STRING,
                            label STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}/seen', 'format' = 'csv');
         CREATE TABLE stamped (id INT, ts TIMESTAMP(3) METADATA FROM 'timestamp', name STRING)
           WITH ({});
         CREATE TABLE plain (id INT, name STRING) WITH ({});
         INSERT INTO seen SELECT id, name, kts, part, `offset`, src, label FROM events;
         INSERT INTO plain SELECT id, name FROM events;
         INSERT INTO stamped SELECT id, kts + INTERVAL '1' HOUR, name FROM events;",
        kafka(
            "events",
            "csv', 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'"
        ),
        dir.path().display(),
        kafka("stamped", "json'"),
        kafka("plain", "json'"),
    );
    run(&script);

    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("seen")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        seen.extend(text.lines().map(str::to_string));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "1,alice,2024-01-01 00:00:01,0,0,events,alice@0",
            "2,bob,2024-01-01 00:00:02.5,1,0,events,bob@1",
            "3,carol,2024-01-01 00:00:04,0,1,events,carol@0",
        ]
    );

    // The `timestamp` column is the record timestamp, not a field of the value.
    let mut stamped: Vec<(String, i64)> = broker
        .read_uncommitted("stamped")
        .unwrap()
        .iter()
        .map(|r| (r.value_str(), r.timestamp))
        .collect();
    stamped.sort();
    let hour = 3_600_000;
    assert_eq!(
        stamped,
        [
            (r#"{"id":1,"name":"alice"}"#.to_string(), T0 + 1_000 + hour),
            (r#"{"id":2,"name":"bob"}"#.to_string(), T0 + 2_500 + hour),
            (r#"{"id":3,"name":"carol"}"#.to_string(), T0 + 4_000 + hour),
        ]
    );

    // Without a `timestamp` column the producer stamps the send time (Flink SQL's rule), not
    // the rows' event time (kts, in 2024).
    let plain = broker.read_uncommitted("plain").unwrap();
    assert_eq!(plain.len(), 3);
    assert!(
        plain.iter().all(|r| r.timestamp > T0 + 365 * 24 * hour),
        "{plain:?}"
    );

    // Reading `stamped` back: the timestamp comes back as the metadata column.
    let out = dir.path().join("back");
    run(&format!(
        "CREATE TABLE stamped (id INT, ts TIMESTAMP(3) METADATA FROM 'timestamp', name STRING)
           WITH ({});
         CREATE TABLE back (ts TIMESTAMP(3), id INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO back SELECT ts, id FROM stamped;",
        kafka(
            "stamped",
            "json', 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'"
        ),
        out.display()
    ));
    let mut back = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        back.extend(text.lines().map(str::to_string));
    }
    back.sort();
    assert_eq!(
        back,
        [
            "2024-01-01 01:00:01,1",
            "2024-01-01 01:00:02.5,2",
            "2024-01-01 01:00:04,3",
        ]
    );
    broker.shutdown().unwrap();
}
