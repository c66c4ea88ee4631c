//! The PostgreSQL sink against a real PostgreSQL 15 (Debian's binaries, started by
//! `scripts/infra/postgres.sh` on a free loopback port), in jobs on the embedded mini-cluster.
//! What the sink wrote is read back with `psql`.

mod support;

use fjord::StreamExecutionEnvironment;
use fjord::sources::GeneratorSource;
use fjord_e2e::jobs::{FailOnce, checkpointed_env, scratch_dir, wait_for};
use fjord_postgres::{Backoff, OnMalformed, PgAction, PgValue, PostgresSink, SINK_METRIC_PREFIX};
use std::time::Duration;
use support::{Server, metric_sum};

fn metric(result: &fjord::JobExecutionResult, name: &str) -> u64 {
    metric_sum(&result.metrics, SINK_METRIC_PREFIX, name)
}

fn docs_example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    // The block in docs/connectors/postgres.md, verbatim:
    // CREATE TABLE word_counts (word text PRIMARY KEY, n bigint NOT NULL)
    let sink = PostgresSink::builder()
        .url(url)
        .table("word_counts")
        .columns(["word", "n"])
        .key(["word"])
        .emitter(|(word, n): &(String, i64)| {
            Ok(PgAction::Upsert(vec![
                PgValue::text(word),
                PgValue::Int8(*n),
            ]))
        })
        .build()?;
    env.from_collection(vec![
        ("fjord".to_string(), 1i64),
        ("postgres".to_string(), 1),
        ("fjord".to_string(), 2),
    ])
    .stream()
    .sink_to(sink, "Sink: PostgreSQL");
    env.execute("postgres-docs-example")?;
    // (end of the block)
    Ok(())
}

#[test]
fn docs_example_upserts_word_counts() {
    let pg = Server::shared();
    pg.psql("CREATE TABLE word_counts (word text PRIMARY KEY, n bigint NOT NULL)");
    docs_example(pg.url()).unwrap();
    assert_eq!(
        pg.rows("SELECT word, n FROM word_counts ORDER BY word"),
        ["fjord|2", "postgres|1"]
    );
}

/// Every ```rust block of the docs is test code of this crate's tests, line for line
/// (indentation aside), so the docs show code that runs.
#[test]
fn the_docs_examples_are_the_tested_code() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/postgres.md")).unwrap();
    let tests = [
        include_str!("postgres_sink.rs"),
        include_str!("postgres_lookup.rs"),
    ]
    .concat();
    let blocks = fjord_e2e::jobs::code_blocks_in(&docs, "rust");
    assert_eq!(blocks.len(), 2, "the sink and the lookup-join examples");
    for block in blocks {
        assert!(
            fjord_e2e::jobs::is_code_of(&block, &tests),
            "docs/connectors/postgres.md's example is not tested code:\n{block}"
        );
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Event {
    user: i64,
    score: i64,
    deleted: bool,
}

/// Upserts and deletes by key from a job at parallelism 2 (keyed, so each user's events stay
/// in order), and appends of every event into a table without key: the keyed table holds
/// each user's last state, the log every event once.
#[test]
fn upserts_deletes_and_appends_round_trip() {
    let pg = Server::shared();
    pg.psql(
        "CREATE TABLE rt_users (id bigint PRIMARY KEY, score bigint, name text);
         CREATE TABLE rt_log (id bigint, score bigint)",
    );
    let events: Vec<Event> = (0..300i64)
        .map(|i| Event {
            user: i % 50,
            score: i,
            // The last event of every fifth user deletes it.
            deleted: i >= 250 && (i % 50) % 5 == 0,
        })
        .collect();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let users = PostgresSink::builder()
        .url(pg.url())
        .table("rt_users")
        .key(["id"])
        .max_rows(17)
        .emitter(|e: &Event| {
            Ok(if e.deleted {
                PgAction::delete([e.user])
            } else {
                PgAction::Upsert(vec![
                    PgValue::Int8(e.user),
                    PgValue::Int8(e.score),
                    PgValue::text(format!("user {}", e.user)),
                ])
            })
        })
        .build()
        .unwrap();
    let log = PostgresSink::builder()
        .url(pg.url())
        .table("rt_log")
        .emitter(|e: &Event| Ok(PgAction::upsert([e.user, e.score])))
        .build()
        .unwrap();
    let stream = env
        .from_collection(events.clone())
        .key_by(|e: &Event| e.user);
    stream.sink_to(users, "Sink: users");
    stream.sink_to(log, "Sink: log");
    let result = env.execute("round trip").unwrap();

    let mut expect = std::collections::BTreeMap::new();
    for e in &events {
        if e.deleted {
            expect.remove(&e.user);
        } else {
            expect.insert(e.user, format!("{}|{}|user {}", e.user, e.score, e.user));
        }
    }
    assert_eq!(expect.len(), 40);
    assert_eq!(
        pg.rows("SELECT id, score, name FROM rt_users ORDER BY id"),
        expect.into_values().collect::<Vec<_>>()
    );
    assert_eq!(pg.count("rt_log"), 300);
    assert_eq!(
        pg.psql("SELECT count(DISTINCT score) FROM rt_log").trim(),
        "300"
    );
    assert_eq!(metric(&result, "recordsWritten"), 600);
}

/// Every value type into its column, written by the sink and read back by psql as text.
#[test]
fn every_value_type_is_written_to_its_column() {
    let pg = Server::shared();
    pg.psql(
        "CREATE TABLE typed (k smallint PRIMARY KEY, i integer, b bigint, r real, d double precision,
            t boolean, s varchar(20), raw bytea, n numeric(20, 4), ts timestamp(3), tz timestamptz,
            day date, j jsonb)",
    );
    let env = StreamExecutionEnvironment::new();
    let sink = PostgresSink::builder()
        .url(pg.url())
        .table("typed")
        .key(["k"])
        .emitter(|k: &i16| {
            Ok(PgAction::Upsert(vec![
                PgValue::Int2(*k),
                PgValue::Int4(-7),
                PgValue::Int8(1 << 40),
                PgValue::Float4(1.5),
                PgValue::Float8(-0.25),
                PgValue::Bool(true),
                PgValue::text("grüße"),
                PgValue::Bytea(vec![0, 255]),
                PgValue::Numeric("-12345678.9012".into()),
                // 2024-02-29 12:34:56.789 UTC
                PgValue::Timestamp(1_709_210_096_789),
                PgValue::Timestamp(0),
                // 2024-02-29
                PgValue::Date(19_782),
                if *k == 1 {
                    PgValue::text("{\"a\": [1, 2]}")
                } else {
                    PgValue::Null
                },
            ]))
        })
        .build()
        .unwrap();
    env.from_collection(vec![1i16, 2])
        .stream()
        .sink_to(sink, "Sink: typed");
    env.execute("types").unwrap();
    assert_eq!(
        pg.rows("SET TIME ZONE 'UTC'; SELECT * FROM typed ORDER BY k"),
        [
            "1|-7|1099511627776|1.5|-0.25|t|grüße|\\x00ff|-12345678.9012|2024-02-29 12:34:56.789|1970-01-01 00:00:00+00|2024-02-29|{\"a\": [1, 2]}",
            "2|-7|1099511627776|1.5|-0.25|t|grüße|\\x00ff|-12345678.9012|2024-02-29 12:34:56.789|1970-01-01 00:00:00+00|2024-02-29|",
        ]
    );
}

/// A batch keeps only the last action per key, and batches go out at max-rows actions; with
/// no threshold, once at the end of input.
#[test]
fn batches_are_reduced_by_key_and_flushed_by_count() {
    let pg = Server::shared();
    pg.psql(
        "CREATE TABLE reduced (k int PRIMARY KEY, v int); CREATE TABLE counted (k int PRIMARY KEY)",
    );
    let run = |table: &str, records: Vec<i32>, keys: i32, max_rows: usize| {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        env.set_buffer_timeout(Duration::from_secs(3600));
        let cols: Vec<&str> = if table == "reduced" {
            vec!["k", "v"]
        } else {
            vec!["k"]
        };
        let sink = PostgresSink::builder()
            .url(pg.url())
            .table(table)
            .columns(cols.clone())
            .key(["k"])
            .max_rows(max_rows)
            .flush_interval(None)
            .emitter(move |i: &i32| {
                let mut v = vec![PgValue::Int4(i % keys)];
                if cols.len() == 2 {
                    v.push(PgValue::Int4(*i));
                }
                Ok(PgAction::Upsert(v))
            })
            .build()
            .unwrap();
        env.from_collection(records)
            .stream()
            .sink_to(sink, "Sink: batches");
        env.execute(table).unwrap()
    };
    let result = run("reduced", (0..100).collect(), 10, 0);
    assert_eq!(
        metric(&result, "batches"),
        1,
        "no threshold: one batch at the end"
    );
    assert_eq!(metric(&result, "upserts"), 10);
    assert_eq!(metric(&result, "actionsReduced"), 90);
    assert_eq!(metric(&result, "recordsWritten"), 100);
    assert_eq!(
        pg.rows("SELECT k, v FROM reduced ORDER BY k"),
        (0..10)
            .map(|k| format!("{k}|{}", 90 + k))
            .collect::<Vec<_>>()
    );
    let result = run("counted", (0..95).collect(), 1000, 10);
    assert_eq!(
        metric(&result, "batches"),
        10,
        "nine full batches of 10, then 5"
    );
    assert_eq!(pg.count("counted"), 95);
}

/// Runs records 0..n through a checkpointed job (keyed by k = i % 97, so each key's records
/// stay in order) into `table`: upserts of (k, i), and a delete of k for every i % 7 == 3;
/// fails once mid-stream if `fail`. The job's restarts.
fn run_keyed_job(pg: &Server, table: &str, n: u64, fail: bool) -> u32 {
    let dir = scratch_dir("pg-eo", table);
    let env = checkpointed_env(&dir);
    env.set_parallelism(2);
    let sink = PostgresSink::builder()
        .url(pg.url())
        .table(table)
        .key(["k"])
        .max_rows(50)
        .emitter(|i: &u64| {
            let k = (i % 97) as i64;
            Ok(if i % 7 == 3 {
                PgAction::delete([k])
            } else {
                PgAction::upsert([k, *i as i64])
            })
        })
        .build()
        .unwrap();
    let source = env
        .from_source(
            GeneratorSource::new(Some(n), |i| i).with_rate(3000.0),
            "Source: sequence",
        )
        .uid("sequence")
        .set_parallelism(1);
    let mapped = if fail {
        source.map(FailOnce::at(n / 2))
    } else {
        source.map(|i: u64| i)
    };
    mapped
        .uid("fail")
        .set_parallelism(1)
        .key_by(|i: &u64| i % 97)
        .sink_to(sink, "Sink: PostgreSQL")
        .uid("sink");
    let job = env.execute_async(table).unwrap();
    wait_for("the job to end", Duration::from_secs(300), || {
        job.is_finished()
    });
    let restarts = job.restarts();
    job.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    restarts
}

/// A job failing mid-stream restarts from its last checkpoint and replays what came after it:
/// the table ends equal to a failure-free run's (and to what the records say).
#[test]
fn a_job_failure_mid_stream_leaves_the_table_a_clean_run_leaves() {
    let pg = Server::shared();
    pg.psql(
        "CREATE TABLE eo_clean (k bigint PRIMARY KEY, i bigint NOT NULL);
         CREATE TABLE eo_failed (k bigint PRIMARY KEY, i bigint NOT NULL)",
    );
    let n = 3000u64;
    assert_eq!(run_keyed_job(pg, "eo_clean", n, false), 0);
    let restarts = run_keyed_job(pg, "eo_failed", n, true);
    assert!(restarts >= 1, "the injected failure restarted the job");
    let clean = pg.rows("SELECT k, i FROM eo_clean ORDER BY k");
    let mut expect = std::collections::BTreeMap::new();
    for i in 0..n {
        let k = i % 97;
        if i % 7 == 3 {
            expect.remove(&k);
        } else {
            expect.insert(k, format!("{k}|{i}"));
        }
    }
    assert_eq!(clean, expect.into_values().collect::<Vec<_>>());
    assert_eq!(
        pg.rows("SELECT k, i FROM eo_failed ORDER BY k"),
        clean,
        "after a failure, the same table"
    );
}

/// The server stopped mid-run (its connections closed) and started again: the sink retries
/// with backoff on new connections until it answers, and every row is there, once.
#[test]
fn a_server_restarted_mid_run_loses_nothing() {
    let pg = Server::start("restart");
    pg.psql("CREATE TABLE restarted (i bigint PRIMARY KEY, sq bigint)");
    let dir = scratch_dir("pg-restart", "job");
    let n = 5000u64;
    let env = checkpointed_env(&dir);
    env.set_parallelism(2);
    let sink = PostgresSink::builder()
        .url(pg.url())
        .table("restarted")
        .key(["i"])
        .max_rows(50)
        .backoff(Backoff {
            max_retries: 30,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        })
        .connect_timeout(Duration::from_secs(2))
        .emitter(|i: &u64| Ok(PgAction::upsert([*i as i64, (*i * *i) as i64])))
        .build()
        .unwrap();
    env.from_source(
        GeneratorSource::new(Some(n), |i| i).with_rate(1500.0),
        "Source: sequence",
    )
    .uid("sequence")
    .set_parallelism(1)
    .rebalance()
    .sink_to(sink, "Sink: PostgreSQL")
    .uid("sink");
    let job = env.execute_async("server restart").unwrap();
    let metrics = job.metrics();
    let retries = || metric_sum(&metrics, SINK_METRIC_PREFIX, "retries");
    wait_for("a third of the rows", Duration::from_secs(120), || {
        pg.count("restarted") >= n / 3
    });
    pg.stop();
    wait_for(
        "the sink to retry against the stopped server",
        Duration::from_secs(60),
        || retries() > 0,
    );
    pg.restart();
    wait_for("the job to end", Duration::from_secs(300), || {
        job.is_finished()
    });
    let restarts = job.restarts();
    job.wait()
        .expect("the job finishes once the server is back");
    assert_eq!(pg.count("restarted"), n, "every row, once");
    assert_eq!(
        pg.psql("SELECT count(*) FROM restarted WHERE sq = i * i AND i >= 0 AND i < 5000")
            .trim(),
        n.to_string()
    );
    eprintln!(
        "server stopped mid-run: {} sink retries, {restarts} job restarts",
        retries()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a misconfigured sink fails the job with: each message names what is wrong and what to
/// do.
#[test]
fn misconfigurations_fail_with_messages_that_say_what_to_do() {
    let pg = Server::shared();
    pg.psql(
        "CREATE TABLE conf (id bigint PRIMARY KEY, name text);
         CREATE TABLE conf_nokey (id bigint, name text)",
    );
    let fail = |b: fjord_postgres::PostgresSinkBuilder<i64>| -> String {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        let sink = b.build().unwrap();
        env.from_collection(vec![1i64, 2])
            .stream()
            .sink_to(sink, "Sink: conf");
        env.execute("conf").unwrap_err().to_string()
    };
    let base = |table: &str| {
        PostgresSink::builder()
            .url(pg.url())
            .table(table)
            .emitter(|i: &i64| {
                Ok(PgAction::Upsert(vec![
                    PgValue::Int8(*i),
                    PgValue::text("x"),
                ]))
            })
    };
    let e = fail(base("no_such_table").key(["id"]));
    assert!(
        e.contains("table no_such_table does not exist") && e.contains("create it"),
        "{e}"
    );
    let e = fail(base("conf").columns(["id", "nmae"]).key(["id"]));
    assert!(
        e.contains("table conf has no column nmae") && e.contains("id (int8), name (text)"),
        "{e}"
    );
    let e = fail(base("conf_nokey").key(["id"]));
    assert!(
        e.contains("no primary key or unique index on (id)") && e.contains("ADD PRIMARY KEY"),
        "{e}"
    );
    let e = fail(
        PostgresSink::builder()
            .url(pg.url())
            .table("conf")
            .key(["id"])
            .emitter(|i: &i64| {
                Ok(PgAction::Upsert(vec![
                    PgValue::text(i.to_string()),
                    PgValue::Null,
                ]))
            }),
    );
    assert!(
        e.contains("column id of table conf has type int8")
            && e.contains("TEXT '1'")
            && e.contains("PgValue::Int8"),
        "{e}"
    );
    let e = fail(
        PostgresSink::builder()
            .url(pg.url())
            .table("conf")
            .key(["id"])
            .emitter(|i: &i64| Ok(PgAction::upsert([*i]))),
    );
    assert!(
        e.contains("an upsert for table conf has 1 values, but needs 2 (id, name)"),
        "{e}"
    );
    // Malformed records: skipped and counted, or failing the job.
    let env = StreamExecutionEnvironment::new();
    let sink = base("conf")
        .key(["id"])
        .on_malformed(OnMalformed::Skip)
        .emitter(|i: &i64| {
            if *i == 2 {
                return Err(format!("record {i} is malformed"));
            }
            Ok(PgAction::Upsert(vec![
                PgValue::Int8(*i),
                PgValue::text("ok"),
            ]))
        })
        .build()
        .unwrap();
    env.from_collection(vec![1i64, 2, 3])
        .stream()
        .sink_to(sink, "Sink: conf");
    let result = env.execute("skip").unwrap();
    assert_eq!(metric(&result, "recordsSkipped"), 1);
    assert_eq!(
        pg.rows("SELECT id, name FROM conf ORDER BY id"),
        ["1|ok", "3|ok"]
    );
    // A constraint the data breaks: the server's message and the row.
    let e = fail(
        PostgresSink::builder()
            .url(pg.url())
            .table("conf")
            .key(["id"])
            .emitter(|i: &i64| {
                Ok(PgAction::Upsert(vec![
                    PgValue::Null,
                    PgValue::text(i.to_string()),
                ]))
            }),
    );
    assert!(
        e.contains("PostgreSQL refused the upsert of key (NULL)") && e.contains("SQLSTATE 23502"),
        "{e}"
    );
}

/// Nothing listens at the URL: the sink retries, then fails naming the address and the
/// option to check.
#[test]
fn an_unreachable_server_fails_with_its_address() {
    // A port from the reservations' range that nothing listens on: this test's own server,
    // stopped.
    let pg = Server::start("unreachable");
    let url = pg.url().to_string();
    pg.stop();
    let env = StreamExecutionEnvironment::new();
    let sink = PostgresSink::builder()
        .url(url.as_str())
        .table("t")
        .backoff(Backoff {
            max_retries: 2,
            delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(100),
        })
        .emitter(|i: &i64| Ok(PgAction::upsert([*i])))
        .build()
        .unwrap();
    env.from_collection(vec![1i64])
        .stream()
        .sink_to(sink, "Sink: nowhere");
    let e = env.execute("unreachable").unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "cannot reach PostgreSQL at {url} after 3 attempts"
        )) && e.contains("check that the server runs"),
        "{e}"
    );
}
