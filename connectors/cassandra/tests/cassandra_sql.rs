//! The `cassandra` SQL connector (in `fjord-sql`) against a real Apache Cassandra node: the CQL
//! and the script of docs/connectors/cassandra.md and the example StreamJob's script, verbatim
//! (addresses replaced), and option errors at planning time.

mod support;

use fjord_e2e::jobs::{scratch_dir, sql_blocks_of};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use support::Cassandra;

/// The ```cql blocks of the docs page.
fn docs_cql() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/cassandra.md")).unwrap();
    docs.split("```cql\n")
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].to_string())
        .collect()
}

#[test]
fn the_docs_script_writes_rows_read_back_with_cql() {
    let c = Cassandra::shared();
    c.cql("DROP KEYSPACE IF EXISTS shop");
    c.cql(&docs_cql());
    let scripts = sql_blocks_of("docs/connectors/cassandra.md");
    assert_eq!(scripts.len(), 1);
    let script = scripts[0].replace("${CASSANDRA_HOSTS}", c.hosts());
    let job = fjord_sql::plan(&script).unwrap();
    let env = fjord::StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("sql").unwrap();
    // 2024-01-01T00:00:00Z in milliseconds.
    let at = 1_704_067_200_000i64;
    let rows: BTreeMap<i64, (i64, String, i64)> = c
        .rows::<(i64, i64, String, scylla::value::CqlTimestamp)>(
            "SELECT n, square, label, at FROM shop.squares",
        )
        .into_iter()
        .map(|(n, sq, label, ts)| (n, (sq, label, ts.0)))
        .collect();
    let expected: BTreeMap<i64, (i64, String, i64)> = (1..=100i64)
        .map(|n| (n, (n * n, format!("n{n}"), at)))
        .collect();
    assert_eq!(rows, expected);
}

/// `spec.job.sql` of a StreamJob manifest: the block scalar under `sql: |`, unindented.
fn manifest_sql(yaml: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "sql: |").skip(1);
    let first = lines.clone().find(|l| !l.trim().is_empty()).unwrap_or("");
    let indent = first.len() - first.trim_start().len();
    let mut sql = String::new();
    for line in lines.by_ref() {
        if !line.trim().is_empty() && line.len() - line.trim_start().len() < indent {
            break;
        }
        sql.push_str(line.get(indent..).unwrap_or(""));
        sql.push('\n');
    }
    sql
}

/// The CQL statements in the manifest's comment (`#   CREATE ...;` lines).
fn manifest_cql(yaml: &str) -> String {
    yaml.lines()
        .filter_map(|l| l.strip_prefix("#   CREATE "))
        .map(|l| format!("CREATE {l}\n"))
        .collect()
}

/// examples/streamjobs/cassandra-sql-orders.yaml's script, verbatim but for the hosts, planned
/// and run as the stock worker runs `spec.job.sql` (plan, build, checkpointing from the spec):
/// every order lands once through the write-ahead sink.
#[test]
fn the_example_manifest_writes_every_order_once() {
    let c = Cassandra::shared();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml = std::fs::read_to_string(root.join("examples/streamjobs/cassandra-sql-orders.yaml"))
        .unwrap();
    let cql = manifest_cql(&yaml);
    assert!(cql.contains("shop.orders"), "{cql}");
    c.cql(&cql);
    c.cql("TRUNCATE shop.orders");
    let script = manifest_sql(&yaml);
    assert!(script.contains("INSERT INTO orders"), "{script}");
    let script = script.replace("cassandra:9042", c.hosts());
    let dir = scratch_dir("cassandra-ckpt", "manifest");
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_secs(1));
    env.checkpoint_config(|cfg| cfg.storage = format!("file://{}", dir.display()));
    env.execute("cassandra-sql-orders").unwrap();
    let rows: BTreeMap<i64, (String, f64)> = c
        .rows::<(i64, String, f64)>("SELECT id, customer, amount FROM shop.orders")
        .into_iter()
        .map(|(id, customer, amount)| (id, (customer, amount)))
        .collect();
    let expected: BTreeMap<i64, (String, f64)> = (1..=1000i64)
        .map(|id| {
            let customer = if id % 2 == 0 { "ann" } else { "bob" };
            (id, (customer.to_string(), id as f64 * 1.5))
        })
        .collect();
    assert_eq!(rows, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A value the Cassandra column cannot hold (a BIGINT too large for an `int` column) fails the
/// job naming the column; with 'sink.ignore-malformed' the row is skipped.
#[test]
fn a_value_that_does_not_fit_its_column_is_a_clear_error() {
    let c = Cassandra::shared();
    c.keyspace("sqlbad");
    c.cql("CREATE TABLE sqlbad.t (id bigint PRIMARY KEY, qty int)");
    let run = |extra: &str| {
        let script = format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '3',
               'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '3');
             CREATE TABLE t (id BIGINT, qty BIGINT) WITH ('connector' = 'cassandra',
               'hosts' = '{}', 'keyspace' = 'sqlbad', 'table' = 't'{extra});
             INSERT INTO t SELECT id, CASE WHEN id = 2 THEN 99999999999 ELSE id END FROM src;",
            c.hosts()
        );
        let env = fjord::StreamExecutionEnvironment::new();
        fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
        env.execute("sqlbad").map(|_| ()).map_err(|e| e.to_string())
    };
    let err = run("").unwrap_err();
    assert!(
        err.contains("`qty`")
            && err.contains("99999999999 does not fit a CQL int")
            && err.contains("'sink.ignore-malformed'"),
        "{err}"
    );
    run(", 'sink.ignore-malformed' = 'true'").unwrap();
    let rows: BTreeMap<i64, i32> = c
        .rows::<(i64, i32)>("SELECT id, qty FROM sqlbad.t")
        .into_iter()
        .collect();
    assert_eq!(rows, BTreeMap::from([(1, 1), (3, 3)]));
}

#[test]
fn bad_options_fail_planning_with_what_to_do() {
    let plan = |with: &str| {
        let script = format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'cassandra'{with});
             INSERT INTO out SELECT id FROM src;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let base = ", 'hosts' = 'h:9042', 'keyspace' = 'k', 'table' = 't'";
    for (with, expect) in [
        ("", "set 'hosts'"),
        (", 'hosts' = 'h'", "set 'keyspace'"),
        (", 'hosts' = 'h', 'keyspace' = 'k'", "set 'table'"),
        (
            &format!("{base}, 'ttl' = '1h'") as &str,
            "'ttl' = '1h' must be a number above 0",
        ),
        (&format!("{base}, 'consistency' = 'MOST'"), "not one of ANY"),
        (
            &format!("{base}, 'sink.max-concurrent-requests' = '0'"),
            "must be a number above 0",
        ),
        (
            &format!("{base}, 'sink.write-ahead-log' = 'maybe'"),
            "must be 'true' or 'false'",
        ),
        (
            &format!("{base}, 'sink.committer-keyspace' = 'aux'"),
            "applies to 'sink.write-ahead-log'",
        ),
        (
            &format!("{base}, 'query' = 'x'"),
            "unsupported option 'query'",
        ),
    ] {
        let e = plan(with);
        assert!(e.contains(expect), "{with}: expected `{expect}` in `{e}`");
    }
    assert_eq!(plan(base), "");
    assert_eq!(
        plan(&format!(
            "{base}, 'sink.write-ahead-log' = 'true', 'consistency' = 'local_one', 'ttl' = '60'"
        )),
        ""
    );
}
