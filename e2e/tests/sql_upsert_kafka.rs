//! Kafka changelogs of SQL tables against a real Kafka 4.4 broker: `upsert-kafka` (records
//! keyed by the primary key, tombstones for deletes) and `kafka` tables in `debezium-json`,
//! each written by an updating `GROUP BY`, read back raw and as changelog sources (whose
//! materialized tables, and aggregates over them, are checked), an exactly-once upsert sink
//! across an injected failure, and the planner's refusals. Expected records are worked out
//! by hand from Flink's semantics (`DynamicKafkaRecordSerializationSchema` in upsert mode,
//! `DebeziumJson(De)SerializationSchema`, `ChangelogNormalize`); `flink_sql_kafka_oracle.rs`
//! compares the same connectors with Flink SQL itself.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord_e2e::{KafkaBroker, KafkaOptions, KafkaRecord, ProducerRecord};
use fjord_sql::changelog::{RowKind, materialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env.set_restart_strategy(RestartStrategy::None);
    env
}

fn run(script: &str, parallelism: usize) {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("Fjord refused the script: {e}"));
    let env = env(parallelism);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("sql upsert-kafka").unwrap();
}

/// Runs `script` collecting each insert's changes: per sink, the change kinds seen and the
/// table the changes leave (rows printed as Flink prints them, `[a, 1]`).
fn collect(script: &str) -> Vec<(Vec<RowKind>, BTreeMap<String, usize>)> {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("Fjord refused the script: {e}"));
    let env = env(2);
    let outputs = fjord_sql::build_collecting(&job, &env).unwrap();
    env.execute("sql upsert-kafka read").unwrap();
    outputs
        .into_iter()
        .map(|(_, out)| {
            let changes = out.take();
            let kinds = changes.iter().map(|c| c.kind).collect();
            let table = materialize(changes.into_iter().map(|c| {
                let row: Vec<String> = c
                    .row
                    .iter()
                    .map(|v| v.to_sql_string().unwrap_or_else(|| "null".into()))
                    .collect();
                (c.kind, format!("[{}]", row.join(", ")))
            }))
            .unwrap();
            (kinds, table)
        })
        .collect()
}

fn table(rows: &[&str]) -> BTreeMap<String, usize> {
    rows.iter().map(|r| (r.to_string(), 1)).collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `sql` blocks of docs/sql.md's section `title`.
fn docs_blocks(title: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(root().join("docs/sql.md")).unwrap();
    let section = docs
        .split(&format!("\n## {title}\n"))
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sql\n")
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].to_string())
        .collect()
}

/// Each key's records in offset order: the value text, `None` for a tombstone.
fn by_key(records: &[KafkaRecord]) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for r in records {
        out.entry(r.key_str().unwrap_or_default())
            .or_default()
            .push(r.value.is_some().then(|| r.value_str()));
    }
    out
}

/// docs/sql.md's script: a `GROUP BY` whose `HAVING` stops holding for bob, written to an
/// upsert-kafka topic (two partitions) and a debezium-json one, read back raw and through
/// the docs' reading script (an aggregate over the upsert-kafka source: retractions flow) and
/// as changelog sources whose materialized tables are the query's final result.
#[test]
fn an_updating_group_by_round_trips_through_upsert_kafka_and_debezium_json() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("sql-upsert")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("totals", 2).unwrap();
    broker.create_topic("totals-cdc", 1).unwrap();
    let blocks = docs_blocks("Kafka changelogs: upsert-kafka and debezium-json");
    let local = |s: &str| {
        s.replace("'localhost:9092'", &format!("'{bootstrap}'"))
            .replace(
                "'examples/sql/upsert_orders.csv'",
                &format!(
                    "'{}'",
                    root().join("examples/sql/upsert_orders.csv").display()
                ),
            )
    };
    run(&local(&blocks[0]), 2);

    let alice = |n: i64, a: i64| {
        Some(format!(
            r#"{{"customer":"alice","orders":{n},"amount":{a}}}"#
        ))
    };
    let expected: BTreeMap<String, Vec<Option<String>>> = [
        (
            r#"{"customer":"alice"}"#.to_string(),
            vec![alice(1, 10), None, alice(2, 17)],
        ),
        (
            r#"{"customer":"bob"}"#.to_string(),
            vec![
                Some(r#"{"customer":"bob","orders":1,"amount":5}"#.into()),
                None,
            ],
        ),
        (
            r#"{"customer":"carol"}"#.to_string(),
            vec![Some(r#"{"customer":"carol","orders":1,"amount":3}"#.into())],
        ),
    ]
    .into();
    let raw = broker.read_uncommitted("totals").unwrap();
    assert_eq!(by_key(&raw), expected, "{raw:?}");
    // A key's records are in the partition of its hash (Kafka's default partitioner).
    for r in &raw {
        let same_key = raw.iter().filter(|o| o.key == r.key);
        assert!(same_key.into_iter().all(|o| o.partition == r.partition));
    }

    // debezium-json: one partition, the changes of each customer in order.
    let cdc = broker.read_uncommitted("totals-cdc").unwrap();
    let mut per_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &cdc {
        let v: serde_json::Value = serde_json::from_str(&r.value_str()).unwrap();
        let row = if v["after"].is_null() {
            &v["before"]
        } else {
            &v["after"]
        };
        per_customer
            .entry(row["customer"].as_str().unwrap().to_string())
            .or_default()
            .push(r.value_str());
    }
    let create = |c: &str, n: i64, a: i64| {
        format!(
            r#"{{"before":null,"after":{{"customer":"{c}","orders":{n},"amount":{a}}},"op":"c"}}"#
        )
    };
    let delete = |c: &str, n: i64, a: i64| {
        format!(
            r#"{{"before":{{"customer":"{c}","orders":{n},"amount":{a}}},"after":null,"op":"d"}}"#
        )
    };
    assert_eq!(
        per_customer,
        BTreeMap::from([
            (
                "alice".to_string(),
                vec![
                    create("alice", 1, 10),
                    delete("alice", 1, 10),
                    create("alice", 2, 17)
                ]
            ),
            (
                "bob".to_string(),
                vec![create("bob", 1, 5), delete("bob", 1, 5)]
            ),
            ("carol".to_string(), vec![create("carol", 1, 3)]),
        ])
    );

    // The docs' reading script: an aggregate over the upsert-kafka source takes bob's row and
    // alice's first row back.
    let summary = collect(&local(&blocks[1]));
    assert_eq!(summary[0].1, table(&["[2, 20]"]));
    assert!(
        summary[0].0.contains(&RowKind::UpdateBefore),
        "the aggregate retracted: {:?}",
        summary[0].0
    );

    // Both topics as changelog sources: the tables they leave are the query's final result.
    let final_rows = table(&["[alice, 2, 17]", "[carol, 1, 3]"]);
    let read_back = format!(
        "CREATE TABLE totals (customer STRING, orders BIGINT, amount INT,
                              PRIMARY KEY (customer) NOT ENFORCED)
           WITH ('connector' = 'upsert-kafka', 'topic' = 'totals',
                 'properties.bootstrap.servers' = '{bootstrap}', 'key.format' = 'json',
                 'value.format' = 'json', 'scan.bounded.mode' = 'latest-offset');
         CREATE TABLE cdc (customer STRING, orders BIGINT, amount INT)
           WITH ('connector' = 'kafka', 'topic' = 'totals-cdc',
                 'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'debezium-json',
                 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');
         CREATE TABLE a (customer STRING, orders BIGINT, amount INT) WITH ('connector' = 'blackhole');
         CREATE TABLE b (customer STRING, orders BIGINT, amount INT) WITH ('connector' = 'blackhole');
         CREATE TABLE big (n BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO a SELECT * FROM totals;
         INSERT INTO b SELECT * FROM cdc;
         INSERT INTO big SELECT COUNT(*) FROM cdc WHERE amount > 5;"
    );
    let out = collect(&read_back);
    assert_eq!(out[0].1, final_rows);
    // upsert-kafka: alice's tombstone is a -D of her first row, her next row a new +I.
    assert!(out[0].0.contains(&RowKind::Delete), "{:?}", out[0].0);
    assert_eq!(out[1].1, final_rows);
    // Only alice's second row has amount > 5 at the end.
    assert_eq!(out[2].1, table(&["[1]"]));
    broker.shutdown().unwrap();
}

/// Debezium's own messages (a snapshot read, a create, an update, a delete, the tombstone
/// after it; with Kafka Connect's schema envelope) read as Flink's change kinds; appended
/// rows written to an upsert-kafka table.
#[test]
fn debezium_messages_read_as_inserts_updates_and_deletes() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("sql-debezium")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("pg.public.users", 1).unwrap();
    let msg = |before: &str, after: &str, op: &str| {
        ProducerRecord::value(format!(
            r#"{{"schema":{{"type":"struct"}},"payload":{{"before":{before},"after":{after},"source":{{"db":"pg"}},"op":"{op}","ts_ms":1}}}}"#
        ))
        .key(r#"{"id":1}"#)
    };
    broker
        .produce(
            "pg.public.users",
            &[
                msg("null", r#"{"id":1,"name":"ada"}"#, "r"),
                msg("null", r#"{"id":2,"name":"bob"}"#, "c"),
                msg(
                    r#"{"id":1,"name":"ada"}"#,
                    r#"{"id":1,"name":"lovelace"}"#,
                    "u",
                ),
                msg(r#"{"id":2,"name":"bob"}"#, "null", "d"),
                ProducerRecord {
                    key: Some(br#"{"id":2}"#.to_vec()),
                    ..ProducerRecord::default()
                },
            ],
        )
        .unwrap();
    let out = collect(&format!(
        "CREATE TABLE users (id INT, name STRING) WITH (
           'connector' = 'kafka', 'topic' = 'pg.public.users',
           'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'debezium-json',
           'debezium-json.schema-include' = 'true',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');
         CREATE TABLE seen (id INT, name STRING) WITH ('connector' = 'blackhole');
         INSERT INTO seen SELECT * FROM users;"
    ));
    use RowKind::*;
    assert_eq!(
        out[0].0,
        vec![Insert, Insert, UpdateBefore, UpdateAfter, Delete]
    );
    assert_eq!(out[0].1, table(&["[1, lovelace]"]));

    // Appended rows into an upsert-kafka table are upserts of their keys.
    broker.create_topic("latest", 2).unwrap();
    run(
        &format!(
            "CREATE TABLE g (id INT) WITH ('connector' = 'datagen', 'number-of-rows' = '4',
               'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '4');
             CREATE TABLE latest (parity INT, id INT, PRIMARY KEY (parity) NOT ENFORCED)
               WITH ('connector' = 'upsert-kafka', 'topic' = 'latest',
                     'properties.bootstrap.servers' = '{bootstrap}',
                     'key.format' = 'csv', 'value.format' = 'csv');
             INSERT INTO latest SELECT id % 2, id FROM g;"
        ),
        1,
    );
    let some = |v: &str| Some(v.to_string());
    assert_eq!(
        by_key(&broker.read_uncommitted("latest").unwrap()),
        BTreeMap::from([
            ("0".to_string(), vec![some("0,2"), some("0,4")]),
            ("1".to_string(), vec![some("1,1"), some("1,3")]),
        ])
    );
    broker.shutdown().unwrap();
}

static FAILED: AtomicBool = AtomicBool::new(false);

/// A checkpointed `GROUP BY` into an exactly-once upsert-kafka table fails once mid-stream
/// and restarts from its last checkpoint: the committed records of each key are its counts
/// 1, 2, ..., n once each (a tombstone before every update), nothing of the failed attempt,
/// and the table read back with `read_committed` is the clean run's.
#[test]
fn an_exactly_once_upsert_sink_survives_a_failure_without_duplicates() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("sql-upsert-eo")).unwrap();
    let bootstrap = broker.bootstrap().to_string();
    broker.create_topic("eo", 3).unwrap();
    let n = 1200i64;
    let mut functions = fjord_sql::FunctionRegistry::new();
    functions.register_scalar(
        "fail_once",
        fjord_sql::udf::ScalarFunction::typed(|i: i64| -> Result<i64, String> {
            if i == 700 && !FAILED.swap(true, Ordering::SeqCst) {
                return Err("injected failure at row 700".into());
            }
            Ok(i)
        }),
    );
    let script = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '400',
           'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{n}');
         CREATE TABLE eo (k BIGINT, total BIGINT, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH ('connector' = 'upsert-kafka', 'topic' = 'eo',
                 'properties.bootstrap.servers' = '{bootstrap}',
                 'key.format' = 'csv', 'value.format' = 'csv',
                 'value.fields-include' = 'EXCEPT_KEY', 'sink.parallelism' = '2',
                 'sink.delivery-guarantee' = 'exactly-once',
                 'sink.transactional-id-prefix' = 'sql-upsert-eo');
         INSERT INTO eo SELECT k, SUM(v), COUNT(*)
         FROM (SELECT id % 7 AS k, fail_once(id) AS v FROM src) GROUP BY k;"
    );
    let job = fjord_sql::plan_with_functions(&script, &functions).unwrap();
    let env = env(2);
    let checkpoints = tempfile::tempdir().unwrap();
    env.enable_checkpointing(Duration::from_millis(100));
    env.checkpoint_config(|c| c.storage = format!("file://{}", checkpoints.path().display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(200),
    });
    fjord_sql::build(&job, &env).unwrap();
    let result = env.execute("upsert exactly-once").unwrap();
    assert_eq!(
        result.attempts, 2,
        "the injected failure restarted the job once"
    );

    let committed = broker.read_committed("eo").unwrap();
    assert_eq!(by_key(&committed).len(), 7, "every key has records");
    for (key, records) in by_key(&committed) {
        let k: i64 = key.parse().unwrap();
        let ids: Vec<i64> = (1..=n).filter(|i| i % 7 == k).collect();
        let counts: Vec<i64> = records
            .iter()
            .flatten()
            .map(|v| v.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        let tombstones = records.iter().filter(|r| r.is_none()).count();
        assert_eq!(
            counts,
            (1..=ids.len() as i64).collect::<Vec<_>>(),
            "key {k}: each count once, in order"
        );
        assert_eq!(
            tombstones,
            ids.len() - 1,
            "key {k}: one tombstone per update"
        );
        assert_eq!(
            records.last().unwrap().as_deref(),
            Some(format!("{},{}", ids.iter().sum::<i64>(), ids.len()).as_str())
        );
    }
    let out = collect(&format!(
        "CREATE TABLE eo (k BIGINT, total BIGINT, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH ('connector' = 'upsert-kafka', 'topic' = 'eo',
                 'properties.bootstrap.servers' = '{bootstrap}',
                 'properties.isolation.level' = 'read_committed',
                 'key.format' = 'csv', 'value.format' = 'csv',
                 'value.fields-include' = 'EXCEPT_KEY', 'scan.bounded.mode' = 'latest-offset');
         CREATE TABLE seen (k BIGINT, total BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO seen SELECT * FROM eo;"
    ));
    let expected: Vec<String> = (0..7)
        .map(|k| {
            let ids: Vec<i64> = (1..=n).filter(|i| i % 7 == k).collect();
            format!("[{k}, {}, {}]", ids.iter().sum::<i64>(), ids.len())
        })
        .collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(out[0].1, table(&expected));
    broker.shutdown().unwrap();
}

/// What the planner refuses, with what to do (no broker needed).
#[test]
fn misuses_are_refused_when_planned() {
    let refused = |script: &str| fjord_sql::plan(script).unwrap_err().to_string();
    let src = "CREATE TABLE src (k STRING, v INT)
                 WITH ('connector' = 'datagen', 'number-of-rows' = '3');";
    let upsert = "'connector' = 'upsert-kafka', 'topic' = 't',
                  'properties.bootstrap.servers' = 'localhost:9092'";
    // No primary key: Flink's message.
    let e = refused(&format!(
        "{src} CREATE TABLE out (k STRING, n BIGINT)
           WITH ({upsert}, 'key.format' = 'json', 'value.format' = 'json');
         INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;"
    ));
    assert!(
        e.contains("'upsert-kafka' tables require to define a PRIMARY KEY constraint"),
        "{e}"
    );
    // An unknown option, and the append-only 'format' option on an upsert-kafka table.
    let e = refused(&format!(
        "{src} CREATE TABLE out (k STRING, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH ({upsert}, 'key.format' = 'json', 'value.format' = 'json',
                 'scan.startup.mode' = 'earliest-offset');
         INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;"
    ));
    assert!(e.contains("unsupported option 'scan.startup.mode'"), "{e}");
    let e = refused(&format!(
        "{src} CREATE TABLE out (k STRING, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH ({upsert}, 'format' = 'json');
         INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;"
    ));
    assert!(e.contains("set 'key.format' and 'value.format'"), "{e}");
    let e = refused(&format!(
        "{src} CREATE TABLE out (k STRING, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH ({upsert}, 'key.format' = 'json', 'value.format' = 'debezium-json');
         INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;"
    ));
    assert!(e.contains("not in insert-only mode"), "{e}");
    // An updating query into an append-only kafka table points to the changelog tables.
    let e = refused(&format!(
        "{src} CREATE TABLE out (k STRING, n BIGINT)
           WITH ('connector' = 'kafka', 'topic' = 't',
                 'properties.bootstrap.servers' = 'localhost:9092', 'format' = 'json');
         INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;"
    ));
    assert!(
        e.contains("only takes appended rows") && e.contains("'upsert-kafka'"),
        "{e}"
    );
    // A kafka table with a primary key: upsert-kafka is the one that has one.
    let e = refused(
        "CREATE TABLE t (k STRING, PRIMARY KEY (k) NOT ENFORCED)
           WITH ('connector' = 'kafka', 'topic' = 't',
                 'properties.bootstrap.servers' = 'localhost:9092', 'format' = 'json');",
    );
    assert!(e.contains("'upsert-kafka'"), "{e}");
    // A changelog source into an append-only table names the source.
    let e = refused(
        "CREATE TABLE cdc (k STRING, ts TIMESTAMP(3))
           WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'debezium-json',
                 'properties.bootstrap.servers' = 'localhost:9092',
                 'scan.startup.mode' = 'earliest-offset');
         CREATE TABLE out (k STRING) WITH ('connector' = 'kafka', 'topic' = 'o',
                 'properties.bootstrap.servers' = 'localhost:9092', 'format' = 'json');
         INSERT INTO out SELECT k FROM cdc;",
    );
    assert!(
        e.contains("only takes appended rows") && e.contains("TableSourceScan(table=[cdc]"),
        "{e}"
    );
}
