//! The Cassandra sinks against a real Apache Cassandra 5.0 node (started by
//! `scripts/infra/cassandra.sh` from the Maven Central jars, one node shared by the tests of
//! this binary, one of its own for the test that stops it), in jobs on the embedded
//! mini-cluster. What the sinks wrote is read back with plain CQL.

mod support;

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::{CheckpointType, RestartStrategy};
use fjord::sources::GeneratorSource;
use fjord_cassandra::{
    CassandraEntity, CassandraSink, CqlRow, CqlValue, METRIC_PREFIX, OnFailure, OnMalformed,
    ToCqlValue, positional,
};
use fjord_e2e::jobs::{scratch_dir, wait_for};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::Cassandra;

const LIMIT: Duration = Duration::from_secs(180);

/// Sum of a sink counter over all subtasks.
fn metric(metrics: &fjord::metrics::MetricRegistry, name: &str) -> u64 {
    let suffix = format!(".{METRIC_PREFIX}.{name}");
    metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| v)
        .sum()
}

fn docs_example(hosts: &str) -> Result<(), Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    // The block in docs/connectors/cassandra.md, verbatim:
    let sink = CassandraSink::builder()
        .hosts(hosts)
        .query("INSERT INTO shop.word_counts (word, count) VALUES (?, ?)")
        .mapper(positional)
        .build()?;
    env.from_collection(vec![
        ("fjord".to_string(), 3i64),
        ("cassandra".to_string(), 1),
    ])
    .stream()
    .sink_to(sink, "Sink: Cassandra");
    env.execute("cassandra-docs-example")?;
    // (end of the block)
    Ok(())
}

#[test]
fn docs_example_writes_tuples_and_reads_back_with_cql() {
    let c = Cassandra::shared();
    c.keyspace("shop");
    c.cql("CREATE TABLE shop.word_counts (word text PRIMARY KEY, count bigint)");
    docs_example(c.hosts()).unwrap();
    let rows: BTreeMap<String, i64> = c
        .rows::<(String, i64)>("SELECT word, count FROM shop.word_counts")
        .into_iter()
        .collect();
    assert_eq!(
        rows,
        BTreeMap::from([("fjord".into(), 3), ("cassandra".into(), 1)])
    );
}

// The entity example of docs/connectors/cassandra.md, verbatim:
struct Order {
    id: i64,
    customer: String,
    amount: f64,
}

impl CassandraEntity for Order {
    const KEYSPACE: &'static str = "sales";
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static [&'static str] = &["id", "customer", "amount"];
    fn values(&self) -> Result<CqlRow, String> {
        Ok(vec![
            self.id.to_cql(),
            self.customer.to_cql(),
            self.amount.to_cql(),
        ])
    }
}
// (end of the block)

/// A struct through its `CassandraEntity` description and a closure with a user query into
/// an `int` column (the `i64` narrowed), at parallelism 2 with a small bound on requests in
/// flight; every row read back, the metric counts them.
#[test]
fn entities_and_closures_round_trip_at_parallelism_two() {
    let c = Cassandra::shared();
    c.keyspace("sales");
    c.cql(
        "CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer text, amount double);
         CREATE TABLE sales.by_customer (customer text, id bigint, cents int, PRIMARY KEY (customer, id))",
    );
    let n = 500i64;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let orders = env
        .from_collection((0..n).collect::<Vec<i64>>())
        .rebalance()
        .map(|i: i64| {
            (
                i,
                ["ann", "bob", "cid"][(i % 3) as usize].to_string(),
                i as f64 * 1.5,
            )
        });
    let entity = CassandraSink::<(i64, String, f64)>::builder()
        .hosts(c.hosts())
        .table("sales", "orders", ["id", "customer", "amount"])
        .max_concurrent_requests(8)
        .mapper(|o: &(i64, String, f64)| {
            Order {
                id: o.0,
                customer: o.1.clone(),
                amount: o.2,
            }
            .values()
        })
        .build()
        .unwrap();
    orders.sink_to(entity, "Sink: orders");
    let by_customer = CassandraSink::builder()
        .hosts(c.hosts())
        .query("INSERT INTO sales.by_customer (customer, id, cents) VALUES (?, ?, ?)")
        .mapper(|o: &(i64, String, f64)| {
            Ok(vec![
                o.1.to_cql(),
                o.0.to_cql(),
                ((o.2 * 100.0) as i64).to_cql(),
            ])
        })
        .build()
        .unwrap();
    orders.sink_to(by_customer, "Sink: by customer");
    let result = env.execute("entities").unwrap();
    let rows = c.rows::<(i64, String, f64)>("SELECT id, customer, amount FROM sales.orders");
    assert_eq!(rows.len() as i64, n);
    for (id, customer, amount) in rows {
        assert_eq!(customer, ["ann", "bob", "cid"][(id % 3) as usize]);
        assert_eq!(amount, id as f64 * 1.5);
    }
    let cents = c.rows::<(String, i64, i32)>("SELECT customer, id, cents FROM sales.by_customer");
    assert_eq!(cents.len() as i64, n);
    assert!(cents.iter().all(|(_, id, c)| i64::from(*c) == id * 150));
    assert_eq!(metric(&result.metrics, "recordsWritten"), 2 * n as u64);
    assert_eq!(metric(&result.metrics, "recordsFailed"), 0);
}

/// The struct mapping through `for_entity` (statement generated from the description).
#[test]
fn for_entity_generates_the_insert() {
    let c = Cassandra::shared();
    c.keyspace("sales");
    c.cql("CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer text, amount double)");
    let sink = CassandraSink::<Order>::for_entity()
        .hosts(c.hosts())
        .build()
        .unwrap();
    assert_eq!(
        sink.query(),
        "INSERT INTO sales.orders (id, customer, amount) VALUES (?, ?, ?)"
    );
    // `Order` is not serde (a test type); send its fields and build it in the sink's mapper.
    let env = StreamExecutionEnvironment::new();
    let sink = CassandraSink::<(i64, String, f64)>::builder()
        .hosts(c.hosts())
        .query(sink.query())
        .mapper(|t: &(i64, String, f64)| {
            Order {
                id: t.0,
                customer: t.1.clone(),
                amount: t.2,
            }
            .values()
        })
        .build()
        .unwrap();
    env.from_collection(vec![(7i64, "ann".to_string(), 2.5f64)])
        .stream()
        .sink_to(sink, "Sink: Cassandra");
    env.execute("entity").unwrap();
    assert_eq!(
        c.rows::<(i64, String, f64)>("SELECT id, customer, amount FROM sales.orders"),
        vec![(7, "ann".to_string(), 2.5)]
    );
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// Runs records 0..n through a checkpointed job into `{ks}.upserts` (primary key id), failing
/// once mid-stream if `fail`. Returns the causes of the job's restarts.
fn run_with_optional_failure(c: &Cassandra, ks: &str, n: u64, fail: bool) -> Vec<String> {
    let dir = scratch_dir("cassandra-ckpt", ks);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(200));
    env.checkpoint_config(|cfg| cfg.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(100),
    });
    let mapped = env
        .from_source(
            GeneratorSource::new(Some(n), |i| i).with_rate(3000.0),
            "Source: sequence",
        )
        .uid("sequence")
        .set_parallelism(1)
        .rebalance()
        .map(move |i: u64| {
            if fail && i == n / 2 && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
                panic!("injected failure at record {i}");
            }
            (i as i64, format!("v{i}"))
        })
        .uid("map");
    let sink = CassandraSink::builder()
        .hosts(c.hosts())
        .query(format!("INSERT INTO {ks}.upserts (id, v) VALUES (?, ?)"))
        .mapper(positional)
        .build()
        .unwrap();
    mapped.sink_to(sink, "Sink: Cassandra").uid("cassandra");
    let job = env.execute_async(ks).unwrap();
    wait_for("the job to end", LIMIT, || job.is_finished());
    let restarts: Vec<String> = job.failures().into_iter().map(|f| f.message).collect();
    job.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    restarts
}

/// A job killed mid-stream and restarted from its checkpoint: the upserts leave exactly the
/// table of a failure-free run.
#[test]
fn a_job_failure_with_idempotent_upserts_equals_a_failure_free_run() {
    let c = Cassandra::shared();
    let n = 3000u64;
    for ks in ["clean", "failed"] {
        c.keyspace(ks);
        c.cql(&format!(
            "CREATE TABLE {ks}.upserts (id bigint PRIMARY KEY, v text)"
        ));
    }
    let clean_restarts = run_with_optional_failure(c, "clean", n, false);
    assert!(
        clean_restarts.is_empty(),
        "the failure-free run restarted: {clean_restarts:?}"
    );
    let restarts = run_with_optional_failure(c, "failed", n, true);
    assert!(
        restarts.iter().any(|m| m.contains("injected failure")),
        "the injected failure restarted the job: {restarts:?}"
    );
    let read = |ks: &str| -> BTreeMap<i64, String> {
        c.rows::<(i64, String)>(&format!("SELECT id, v FROM {ks}.upserts"))
            .into_iter()
            .collect()
    };
    let clean = read("clean");
    assert_eq!(clean.len() as u64, n);
    assert_eq!(
        read("failed"),
        clean,
        "the table after a failure equals the failure-free one"
    );
}

/// The write-ahead sink beside an at-least-once one: while no checkpoint has completed, the
/// at-least-once table fills and the write-ahead one stays empty; a checkpoint taken then makes
/// every record appear.
#[test]
fn write_ahead_records_appear_only_after_the_checkpoint_completes() {
    let c = Cassandra::shared();
    c.keyspace("wal_visible");
    c.cql(
        "CREATE TABLE wal_visible.direct (id bigint PRIMARY KEY, v text);
         CREATE TABLE wal_visible.wal (id bigint PRIMARY KEY, v text)",
    );
    let n = 400u64;
    let dir = scratch_dir("cassandra-ckpt", "wal-visible");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    // Periodic checkpoints far apart: the test takes the one that matters.
    env.enable_checkpointing(Duration::from_secs(3600));
    env.checkpoint_config(|cfg| cfg.storage = format!("file://{}", dir.display()));
    // An endless source that stops producing records after n (it must not finish: the end of
    // input would take a final checkpoint).
    let records = env
        .from_source(
            GeneratorSource::new(None, |i| i).with_rate(2000.0),
            "Source: sequence",
        )
        .filter(move |i: &u64| *i < n)
        .map(|i: u64| (i as i64, format!("v{i}")));
    let direct = CassandraSink::builder()
        .hosts(c.hosts())
        .query("INSERT INTO wal_visible.direct (id, v) VALUES (?, ?)")
        .mapper(positional)
        .build()
        .unwrap();
    let wal = CassandraSink::builder()
        .hosts(c.hosts())
        .query("INSERT INTO wal_visible.wal (id, v) VALUES (?, ?)")
        .mapper(positional)
        .committer_table("wal_visible", "committed")
        .build_write_ahead()
        .unwrap();
    records.sink_to(direct, "Sink: direct").uid("direct");
    records
        .sink_to_transactional(wal, "Sink: write-ahead")
        .uid("wal");
    let job = env.execute_async("wal-visible").unwrap();
    wait_for("every record in the at-least-once table", LIMIT, || {
        c.count("wal_visible.direct") == n as i64
    });
    assert!(
        job.checkpoint_history().0.is_empty(),
        "no checkpoint completed yet"
    );
    assert_eq!(
        c.count("wal_visible.wal"),
        0,
        "the write-ahead sink wrote before a checkpoint completed"
    );
    job.trigger_checkpoint(CheckpointType::Configured).unwrap();
    wait_for("the write-ahead rows after the checkpoint", LIMIT, || {
        c.count("wal_visible.wal") == n as i64
    });
    let metrics = job.metrics();
    job.cancel();
    let _ = job.wait();
    let rows: BTreeMap<i64, String> = c
        .rows::<(i64, String)>("SELECT id, v FROM wal_visible.wal")
        .into_iter()
        .collect();
    assert_eq!(rows.len() as u64, n);
    assert!(rows.iter().all(|(id, v)| *v == format!("v{id}")));
    assert_eq!(metric(&metrics, "checkpointsCommitted"), 1);
    let committed = c.rows::<(i64,)>("SELECT checkpoint_id FROM wal_visible.committed");
    assert_eq!(
        committed.len(),
        1,
        "one run of one subtask recorded its checkpoint"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

static WAL_FAILED_ONCE: AtomicBool = AtomicBool::new(false);
static ALO_FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// Records 0..n into `{ks}.log`, a table where every write is a new row (`now()` in the
/// key), through the write-ahead sink (`wal`) or the at-least-once one, failing once
/// mid-stream. Returns each id's row count.
fn log_with_failure(c: &Cassandra, ks: &str, wal: bool, n: u64) -> BTreeMap<i64, usize> {
    let dir = scratch_dir("cassandra-ckpt", ks);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(200));
    env.checkpoint_config(|cfg| cfg.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(100),
    });
    let flag: &'static AtomicBool = if wal {
        &WAL_FAILED_ONCE
    } else {
        &ALO_FAILED_ONCE
    };
    let records = env
        .from_source(
            GeneratorSource::new(Some(n), |i| i).with_rate(2000.0),
            "Source: sequence",
        )
        .uid("sequence")
        .set_parallelism(1)
        .rebalance()
        .map(move |i: u64| {
            if i == n / 2 && !flag.swap(true, Ordering::SeqCst) {
                panic!("injected failure at record {i}");
            }
            (i as i64, format!("v{i}"))
        })
        .uid("map");
    let builder = CassandraSink::builder()
        .hosts(c.hosts())
        .query(format!(
            "INSERT INTO {ks}.log (id, w, v) VALUES (?, now(), ?)"
        ))
        .mapper(positional)
        .committer_table(ks, "committed");
    if wal {
        records
            .sink_to_transactional(builder.build_write_ahead().unwrap(), "Sink: write-ahead")
            .uid("wal");
    } else {
        records
            .sink_to(builder.build().unwrap(), "Sink: at-least-once")
            .uid("alo");
    }
    let job = env.execute_async(ks).unwrap();
    wait_for("the job to end", LIMIT, || job.is_finished());
    let restarts = job.restarts();
    let metrics = job.metrics();
    job.wait().unwrap();
    assert!(restarts >= 1, "the injected failure restarted the job");
    eprintln!(
        "{ks}: {restarts} restart(s); checkpoints committed {}, found committed on restore {}",
        metric(&metrics, "checkpointsCommitted"),
        metric(&metrics, "checkpointsAlreadyCommitted")
    );
    let mut counts = BTreeMap::new();
    for (id,) in c.rows::<(i64,)>(&format!("SELECT id FROM {ks}.log")) {
        *counts.entry(id).or_default() += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    counts
}

/// A job failure with the write-ahead sink: the restore hands the last completed checkpoint
/// back, the committer table says it was written, and no record is written twice, into a
/// table where a duplicate would show as a second row. The at-least-once sink in the same
/// situation leaves every record at least once (its duplicates are reported).
#[test]
fn write_ahead_restore_after_a_failure_writes_nothing_twice() {
    let c = Cassandra::shared();
    let n = 2000u64;
    for ks in ["wal_log", "alo_log"] {
        c.keyspace(ks);
        c.cql(&format!(
            "CREATE TABLE {ks}.log (id bigint, w timeuuid, v text, PRIMARY KEY (id, w))"
        ));
    }
    let wal = log_with_failure(c, "wal_log", true, n);
    assert_eq!(wal.len() as u64, n, "every record written");
    let twice: Vec<_> = wal.iter().filter(|(_, k)| **k > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "records written more than once: {twice:?}"
    );

    let alo = log_with_failure(c, "alo_log", false, n);
    assert_eq!(alo.len() as u64, n, "every record written at least once");
    let duplicates: usize = alo.values().map(|k| k - 1).sum();
    eprintln!("at-least-once after one failure: {n} records, {duplicates} duplicate rows");
}

/// The node killed mid-run and started again: requests in flight are retried with backoff
/// (and the job restarts from its checkpoint if retries run out), and in the end every
/// record is in the table.
#[test]
fn cassandra_killed_and_restarted_mid_run_loses_nothing() {
    let c = Cassandra::start("restart");
    c.keyspace("survive");
    c.cql("CREATE TABLE survive.rows (id bigint PRIMARY KEY, v text)");
    let n = 6000u64;
    let dir = scratch_dir("cassandra-ckpt", "restart");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(500));
    env.checkpoint_config(|cfg| cfg.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 1000,
        delay: Duration::from_millis(500),
    });
    let sink = CassandraSink::builder()
        .hosts(c.hosts())
        .query("INSERT INTO survive.rows (id, v) VALUES (?, ?)")
        .mapper(positional)
        .max_concurrent_requests(32)
        .request_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .max_retries(60)
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .build()
        .unwrap();
    env.from_source(
        GeneratorSource::new(Some(n), |i| i).with_rate(1000.0),
        "Source: sequence",
    )
    .uid("sequence")
    .set_parallelism(1)
    .rebalance()
    .map(|i: u64| (i as i64, format!("v{i}")))
    .sink_to(sink, "Sink: Cassandra")
    .uid("cassandra");
    let job = env.execute_async("cassandra restart").unwrap();
    wait_for("a sixth of the records", LIMIT, || {
        c.count("survive.rows") >= (n / 6) as i64
    });
    c.kill();
    c.restart();
    let mut polls = 0u32;
    wait_for("the job to end", LIMIT, || {
        polls += 1;
        if polls.is_multiple_of(50) {
            eprintln!(
                "waiting: {} rows, {} restarts, {} retries, running {}",
                c.count("survive.rows"),
                job.restarts(),
                metric(&job.metrics(), "retries"),
                job.is_running()
            );
        }
        job.is_finished()
    });
    let restarts = job.restarts();
    let metrics = job.metrics();
    job.wait().expect("the job finishes once the node is back");
    // The job's session reconnected to the restarted node; the test's own may not have yet
    // (CI saw "No connections in the pool ... Connection refused" right after the job ended),
    // so the rows are read once it answers.
    let mut read = Vec::new();
    wait_for(
        "the test's session to reach the restarted node",
        LIMIT,
        || match c.try_rows::<(i64,)>("SELECT id FROM survive.rows") {
            Ok(rows) => {
                read = rows;
                true
            }
            Err(_) => false,
        },
    );
    let ids: std::collections::BTreeSet<i64> = read.into_iter().map(|(id,)| id).collect();
    let missing: Vec<i64> = (0..n as i64).filter(|i| !ids.contains(i)).take(5).collect();
    assert!(missing.is_empty(), "records lost: {missing:?}...");
    assert_eq!(ids.len() as u64, n);
    let retries = metric(&metrics, "retries");
    eprintln!("node killed mid-run: {retries} retried requests, {restarts} job restart(s)");
    assert!(
        retries > 0 || restarts > 0,
        "the outage was noticed (a retry or a restart)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A value of the wrong type for its column fails the job naming the column, its type and the
/// value; an integer too large for an `int` too; with `OnMalformed::Skip` such records are
/// counted and the rest written. A failed write (an unknown table is a prepare error, a
/// server-side refusal a write error) is reported clearly, or counted with IgnoreAndCount.
#[test]
fn malformed_records_and_failed_writes_give_clear_errors() {
    let c = Cassandra::shared();
    c.keyspace("bad");
    c.cql("CREATE TABLE bad.t (id bigint PRIMARY KEY, qty int)");
    let sink = |on: OnMalformed| {
        CassandraSink::builder()
            .hosts(c.hosts())
            .query("INSERT INTO bad.t (id, qty) VALUES (?, ?)")
            .mapper(|r: &(i64, String)| {
                Ok(vec![
                    r.0.to_cql(),
                    Some(match r.1.parse::<i64>() {
                        Ok(n) => CqlValue::BigInt(n),
                        Err(_) => CqlValue::Text(r.1.clone()),
                    }),
                ])
            })
            .on_malformed(on)
            .build()
            .unwrap()
    };
    let records = vec![
        (1i64, "5".to_string()),
        (2, "many".to_string()),
        (3, "7".to_string()),
        (4, "99999999999".to_string()),
    ];
    for bad in [&records[..2], &[records[0].clone(), records[3].clone()][..]] {
        let env = StreamExecutionEnvironment::new();
        env.from_collection(bad.to_vec())
            .stream()
            .sink_to(sink(OnMalformed::Fail), "Sink: Cassandra");
        let err = env.execute("fail").unwrap_err().to_string();
        assert!(
            err.contains("malformed record")
                && err.contains("`qty`")
                && err.contains("OnMalformed::Skip"),
            "{err}"
        );
        assert!(
            err.contains("many") || err.contains("99999999999 does not fit a CQL int"),
            "{err}"
        );
    }
    let env = StreamExecutionEnvironment::new();
    env.from_collection(records)
        .stream()
        .sink_to(sink(OnMalformed::Skip), "Sink: Cassandra");
    let result = env.execute("skip").unwrap();
    assert_eq!(metric(&result.metrics, "recordsSkipped"), 2);
    assert_eq!(metric(&result.metrics, "recordsWritten"), 2);
    let rows: BTreeMap<i64, i32> = c
        .rows::<(i64, i32)>("SELECT id, qty FROM bad.t")
        .into_iter()
        .collect();
    assert_eq!(rows, BTreeMap::from([(1, 5), (3, 7)]));

    // An unknown table: the server refuses to prepare.
    let env = StreamExecutionEnvironment::new();
    let missing = CassandraSink::builder()
        .hosts(c.hosts())
        .query("INSERT INTO bad.nope (id) VALUES (?)")
        .mapper(|i: &i64| Ok(vec![i.to_cql()]))
        .build()
        .unwrap();
    env.from_collection(vec![1i64])
        .stream()
        .sink_to(missing, "Sink: Cassandra");
    let err = env.execute("missing").unwrap_err().to_string();
    assert!(
        err.contains("refused to prepare") && err.contains("bad.nope"),
        "{err}"
    );

    // A write the server refuses (a null primary key): fails the job, or is counted.
    let failing = |on: OnFailure| {
        CassandraSink::builder()
            .hosts(c.hosts())
            .query("INSERT INTO bad.t (id, qty) VALUES (?, ?)")
            .mapper(|r: &(Option<i64>, i32)| Ok(vec![r.0.to_cql(), r.1.to_cql()]))
            .on_failure(on)
            .build()
            .unwrap()
    };
    let rows = vec![(Some(10i64), 1i32), (None, 2), (Some(11), 3)];
    let env = StreamExecutionEnvironment::new();
    env.from_collection(rows.clone())
        .stream()
        .sink_to(failing(OnFailure::Fail), "Sink: Cassandra");
    let err = env.execute("null key").unwrap_err().to_string();
    assert!(
        err.contains("writing to Cassandra") && err.contains("IgnoreAndCount"),
        "{err}"
    );
    let env = StreamExecutionEnvironment::new();
    env.from_collection(rows)
        .stream()
        .sink_to(failing(OnFailure::IgnoreAndCount), "Sink: Cassandra");
    let result = env.execute("ignored").unwrap();
    assert_eq!(metric(&result.metrics, "recordsFailed"), 1);
    assert_eq!(c.count("bad.t"), 4, "ids 1, 3, 10 and 11");
}

#[test]
fn an_unreachable_cluster_fails_the_job_with_a_clear_error() {
    let env = StreamExecutionEnvironment::new();
    let sink = CassandraSink::builder()
        .hosts("127.0.0.1:1")
        .connect_timeout(Duration::from_secs(2))
        .query("INSERT INTO k.t (id) VALUES (?)")
        .mapper(|i: &i64| Ok(vec![i.to_cql()]))
        .build()
        .unwrap();
    env.from_collection(vec![1i64])
        .stream()
        .sink_to(sink, "Sink: Cassandra");
    let err = env.execute("dead").unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to Cassandra at 127.0.0.1:1")
            && err.contains("check that the cluster runs"),
        "{err}"
    );
}

/// Every ```rust block of the docs is test code of this file, line for line (indentation
/// aside), so the docs show code that runs.
#[test]
fn the_docs_examples_are_the_tested_code() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/cassandra.md")).unwrap();
    let test = include_str!("cassandra_sink.rs");
    let blocks = fjord_e2e::jobs::code_blocks_in(&docs, "rust");
    assert_eq!(blocks.len(), 2, "the tuple and the entity examples");
    for block in blocks {
        assert!(
            fjord_e2e::jobs::is_code_of(&block, test),
            "docs/connectors/cassandra.md's example is not tested code:\n{block}"
        );
    }
}
