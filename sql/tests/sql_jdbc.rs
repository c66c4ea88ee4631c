//! The `jdbc` SQL connector against a real PostgreSQL 15 (Debian's binaries, started through
//! `scripts/infra/postgres.sh`): appending and upserting sinks (a `GROUP BY` with a `HAVING`
//! that stops holding deletes its row), exactly-once results across an injected failure,
//! lookup joins (inner and left, cache hits in the metrics), the errors, and the script of
//! docs/sql.md's "PostgreSQL: upsert sink and lookup joins", verbatim but for the server and
//! the file path. Fixtures are written and results read with `psql`, not with the code under
//! test.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord_sql::changelog::RowKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The PostgreSQL server of this test binary, in a directory of its own; the script's watchdog
/// (`FJORD_E2E_OWNER_PID`) stops it when the binary is gone. (A small copy of
/// connectors/postgres/tests/support: fjord-e2e depends on this crate.)
struct Pg {
    dir: PathBuf,
    /// `postgres://fjord@127.0.0.1:PORT/fjord`.
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/infra/postgres.sh")
}

fn run(args: &[&str], dir: &Path) -> String {
    let out = Command::new(script())
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/infra/postgres.sh");
    assert!(
        out.status.success(),
        "postgres.sh {args:?} failed ({:?}; exit code 3: install PostgreSQL with scripts/install-deps.sh):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pg() -> &'static Pg {
    static PG: OnceLock<Pg> = OnceLock::new();
    PG.get_or_init(|| {
        // Short: the server's Unix socket lives in the directory.
        let dir = std::env::temp_dir().join(format!("fjord-pg-sql-{}", std::process::id()));
        // Directories of earlier test processes that are gone (their watchdog stopped their
        // server) would pile up in /tmp: removed.
        for e in std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("fjord-pg-sql-")
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = Command::new(script()).arg("down").arg(e.path()).output();
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        if dir.exists() {
            let _ = Command::new(script()).arg("down").arg(&dir).output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        let out = run(&["start"], &dir);
        let url = out
            .lines()
            .find_map(|l| l.strip_prefix("POSTGRES_URL="))
            .expect("POSTGRES_URL")
            .to_string();
        Pg { dir, url }
    })
}

impl Pg {
    /// Runs SQL with psql; its unaligned, tuples-only output.
    fn psql(&self, sql: &str) -> String {
        run(&["psql", "-At", "-F", "|", "-c", sql], &self.dir)
    }

    /// Every row of `query` as `a|b|c` lines.
    fn rows(&self, query: &str) -> Vec<String> {
        self.psql(query).lines().map(str::to_string).collect()
    }

    /// The server as Flink's JDBC URL (`jdbc:postgresql://127.0.0.1:PORT/fjord`); the user is
    /// `fjord`.
    fn jdbc_url(&self) -> String {
        let rest = self
            .url
            .strip_prefix("postgres://fjord@")
            .expect("a test URL");
        format!("jdbc:postgresql://{rest}")
    }

    /// The `WITH` options of a `jdbc` table of this server.
    fn with(&self, table: &str, extra: &str) -> String {
        format!(
            "'connector' = 'jdbc', 'url' = '{}', 'username' = 'fjord', 'table-name' = '{table}'{extra}",
            self.jdbc_url()
        )
    }
}

/// A file of `lines` in a fresh directory (kept with the returned guard).
fn csv(name: &str, lines: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (dir, path.display().to_string())
}

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env.set_restart_strategy(RestartStrategy::None);
    env
}

fn run_script(script: &str, parallelism: usize) -> fjord::JobExecutionResult {
    let env = env(parallelism);
    fjord_sql::build(&fjord_sql::plan(script).unwrap(), &env).unwrap();
    env.execute("sql").unwrap()
}

/// The sum over subtasks of the job's metric whose identifier ends with `.{prefix}.{name}`.
fn metric_sum(metrics: &fjord::metrics::MetricRegistry, prefix: &str, name: &str) -> u64 {
    let suffix = format!(".{prefix}.{name}");
    metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| *v)
        .sum()
}

#[test]
fn a_table_without_primary_key_appends_every_row_in_postgres_types() {
    let pg = pg();
    pg.psql(
        "CREATE TABLE sql_append (id bigint, n integer, s smallint, label text, price numeric(10, 2),
           ratio double precision, ok boolean, day date, ts timestamp(3), raw bytea)",
    );
    let script = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence',
           'fields.id.start' = '1', 'fields.id.end' = '6');
         CREATE TABLE out_rows (id BIGINT, n INT, s SMALLINT, label STRING, price DECIMAL(10, 2),
           ratio DOUBLE, ok BOOLEAN, `day` DATE, ts TIMESTAMP(3), raw BYTES) WITH ({});
         INSERT INTO out_rows
         SELECT id, CAST(id * 10 AS INT), CAST(id AS SMALLINT),
                CASE WHEN id = 6 THEN CAST(NULL AS STRING) ELSE CONCAT('n', CAST(id AS STRING)) END,
                CAST(id AS DECIMAL(10, 2)) / 4, CAST(id AS DOUBLE) / 8, id % 2 = 0,
                DATE '2024-02-28', TIMESTAMPADD(SECOND, CAST(id AS INT), TIMESTAMP '2024-01-01 00:00:00.250'),
                CAST(CONCAT('b', CAST(id AS STRING)) AS BYTES)
         FROM src;",
        pg.with("sql_append", "")
    );
    run_script(&script, 2);
    assert_eq!(
        pg.rows(
            "SELECT id, n, s, coalesce(label, 'NULL'), price, ratio, ok, day, ts, encode(raw, 'escape')
             FROM sql_append ORDER BY id"
        ),
        vec![
            "1|10|1|n1|0.25|0.125|f|2024-02-28|2024-01-01 00:00:01.25|b1",
            "2|20|2|n2|0.50|0.25|t|2024-02-28|2024-01-01 00:00:02.25|b2",
            "3|30|3|n3|0.75|0.375|f|2024-02-28|2024-01-01 00:00:03.25|b3",
            "4|40|4|n4|1.00|0.5|t|2024-02-28|2024-01-01 00:00:04.25|b4",
            "5|50|5|n5|1.25|0.625|f|2024-02-28|2024-01-01 00:00:05.25|b5",
            "6|60|6|NULL|1.50|0.75|t|2024-02-28|2024-01-01 00:00:06.25|b6",
        ]
    );
}

/// A `GROUP BY` without windows into a table with a primary key: every key's final row, and
/// the key whose `HAVING` stops holding is deleted (its `-U` deletes, its `+U` is filtered).
#[test]
fn an_updating_query_upserts_and_deletes_by_primary_key() {
    let pg = pg();
    pg.psql(
        "CREATE TABLE sql_totals (customer text PRIMARY KEY, total bigint NOT NULL, n bigint NOT NULL);
         INSERT INTO sql_totals VALUES ('dave', 1, 1)",
    );
    let (_dir, path) = csv(
        "orders.csv",
        &[
            "alice,10", "bob,50", "alice,20", "carol,5", "bob,60", "dave,7", "carol,1", "eve,3",
            "eve,200",
        ],
    );
    let script = format!(
        "CREATE TABLE orders (customer STRING, amount BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
         CREATE TABLE totals (customer STRING, total BIGINT, n BIGINT,
           PRIMARY KEY (customer) NOT ENFORCED) WITH ({});
         INSERT INTO totals
         SELECT customer, SUM(amount), COUNT(*) FROM orders GROUP BY customer
         HAVING SUM(amount) < 100;",
        pg.with("sql_totals", ", 'sink.buffer-flush.max-rows' = '2'")
    );
    run_script(&script, 2);
    // bob (110) and eve (203) went over 100: deleted; dave's old row upserted.
    assert_eq!(
        pg.rows("SELECT customer, total, n FROM sql_totals ORDER BY customer"),
        vec!["alice|30|2", "carol|6|2", "dave|7|1"]
    );
}

static FAILED: AtomicBool = AtomicBool::new(false);

/// A checkpointed `GROUP BY` job that fails once mid-stream (a function throwing at one row)
/// restarts from its last checkpoint and replays: the upserts leave the totals of a run
/// without failure.
#[test]
fn a_failure_mid_stream_leaves_the_totals_a_clean_run_leaves() {
    let pg = pg();
    pg.psql("CREATE TABLE sql_eo (k bigint PRIMARY KEY, total bigint NOT NULL, n bigint NOT NULL)");
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
           WITH ({});
         INSERT INTO eo SELECT k, SUM(v), COUNT(*)
         FROM (SELECT id % 7 AS k, fail_once(id) AS v FROM src) GROUP BY k;",
        pg.with("sql_eo", ", 'sink.buffer-flush.max-rows' = '3'")
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
    let result = env.execute("exactly-once").unwrap();
    assert_eq!(
        result.attempts, 2,
        "the injected failure restarted the job once"
    );
    let expected: Vec<String> = (0..7)
        .map(|k| {
            let ids: Vec<i64> = (1..=n).filter(|i| i % 7 == k).collect();
            format!("{k}|{}|{}", ids.iter().sum::<i64>(), ids.len())
        })
        .collect();
    assert_eq!(
        pg.rows("SELECT k, total, n FROM sql_eo ORDER BY k"),
        expected
    );
}

/// Inner and left lookup joins of a file with a processing-time column against a PostgreSQL
/// table: the matches, the NULL-padded rows, the residual condition, and the partial cache's
/// hits (one subtask per join: the first lookup of each key misses, the others hit).
#[test]
fn lookup_joins_read_the_table_by_key_through_the_cache() {
    let pg = pg();
    pg.psql(
        "CREATE TABLE sql_customers (id bigint PRIMARY KEY, name text NOT NULL, country text);
         INSERT INTO sql_customers VALUES (1, 'ada', 'NO'), (2, 'grace', 'US'), (3, 'alan', NULL)",
    );
    let (_dir, path) = csv(
        "orders.csv",
        &[
            "100,1,9.5",
            "101,2,20",
            "102,1,1",
            "103,7,3",
            "104,1,4",
            "105,3,2",
        ],
    );
    let script = format!(
        "CREATE TABLE orders (id BIGINT, customer_id INT, amount DOUBLE, proc_time AS PROCTIME())
           WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
         CREATE TABLE customers (id BIGINT, name STRING, country STRING) WITH ({});
         CREATE TABLE named (order_id BIGINT, name STRING) WITH ('connector' = 'print');
         CREATE TABLE norwegian (order_id BIGINT, name STRING, amount DOUBLE)
           WITH ('connector' = 'print');
         INSERT INTO named
         SELECT o.id, c.name FROM orders AS o
         JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id;
         INSERT INTO norwegian
         SELECT o.id, c.name, o.amount FROM orders AS o
         LEFT JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c
           ON o.customer_id = c.id AND c.country = 'NO' AND o.amount > 2;",
        pg.with(
            "sql_customers",
            ", 'lookup.cache' = 'PARTIAL', 'lookup.partial-cache.max-rows' = '100'"
        )
    );
    let plan = fjord_sql::plan(&script).unwrap();
    assert!(
        plan.explain().contains(
            "LookupJoin(table=[customers], joinType=[INNER], lookup=[id=CAST($1 AS BIGINT)]"
        ),
        "{}",
        plan.explain()
    );
    let env = env(1);
    let collected = fjord_sql::build_collecting(&plan, &env).unwrap();
    let result = env.execute("lookup").unwrap();
    let rows = |i: usize| -> Vec<String> {
        let mut rows: Vec<String> = collected[i]
            .1
            .values()
            .into_iter()
            .map(|c| {
                assert_eq!(c.kind, RowKind::Insert);
                format!("{:?}", c.row)
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        rows(0),
        vec![
            r#"[BigInt(100), String("ada")]"#,
            r#"[BigInt(101), String("grace")]"#,
            r#"[BigInt(102), String("ada")]"#,
            r#"[BigInt(104), String("ada")]"#,
            r#"[BigInt(105), String("alan")]"#,
        ]
    );
    assert_eq!(
        rows(1),
        vec![
            r#"[BigInt(100), String("ada"), Double(9.5)]"#,
            r#"[BigInt(101), Null, Double(20.0)]"#,
            r#"[BigInt(102), Null, Double(1.0)]"#,
            r#"[BigInt(103), Null, Double(3.0)]"#,
            r#"[BigInt(104), String("ada"), Double(4.0)]"#,
            r#"[BigInt(105), Null, Double(2.0)]"#,
        ]
    );
    // Per join: keys 1, 2, 7 (missing, cached too), 3 miss once; customer 1's later lookups hit.
    let m = &result.metrics;
    assert_eq!(
        metric_sum(m, fjord_postgres::LOOKUP_METRIC_PREFIX, "hitCount"),
        4
    );
    assert_eq!(
        metric_sum(m, fjord_postgres::LOOKUP_METRIC_PREFIX, "missCount"),
        8
    );
    assert_eq!(
        metric_sum(m, fjord_postgres::LOOKUP_METRIC_PREFIX, "loadCount"),
        8
    );
}

/// A lookup join over a changelog: the kinds pass through, each change joined as it comes.
#[test]
fn a_lookup_join_passes_a_changelogs_kinds_through() {
    let pg = pg();
    pg.psql(
        "CREATE TABLE sql_names (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO sql_names VALUES (1, 'one'), (2, 'two')",
    );
    let (_dir, path) = csv("k.csv", &["1", "2", "1"]);
    let script = format!(
        "CREATE TABLE ks (k BIGINT, pt AS PROCTIME())
           WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
         CREATE TABLE names (id BIGINT, name STRING) WITH ({});
         CREATE VIEW counts AS SELECT k, COUNT(*) AS n, PROCTIME() AS pt FROM ks GROUP BY k;
         CREATE TABLE out (n BIGINT, name STRING) WITH ('connector' = 'print');
         INSERT INTO out SELECT c.n, x.name FROM counts AS c
         JOIN names FOR SYSTEM_TIME AS OF c.pt AS x ON c.k = x.id;",
        pg.with("sql_names", "")
    );
    let plan = fjord_sql::plan(&script).unwrap();
    let env = env(1);
    let collected = fjord_sql::build_collecting(&plan, &env).unwrap();
    env.execute("changelog lookup").unwrap();
    let changes: Vec<String> = collected[0]
        .1
        .values()
        .into_iter()
        .map(|c| format!("{}{:?}", c.kind.short(), c.row))
        .collect();
    assert_eq!(
        changes,
        vec![
            r#"+I[BigInt(1), String("one")]"#,
            r#"+I[BigInt(1), String("two")]"#,
            r#"-U[BigInt(1), String("one")]"#,
            r#"+U[BigInt(2), String("one")]"#,
        ]
    );
}

#[test]
fn mistakes_fail_planning_or_the_job_with_what_to_do() {
    let pg = pg();
    let plan_err = |script: &str| fjord_sql::plan(script).unwrap_err().to_string();
    let src = "CREATE TABLE src (id BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen',
                 'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '3');";
    // An updating query into a table without a primary key.
    let e = plan_err(&format!(
        "{src} CREATE TABLE t (id BIGINT, n BIGINT) WITH ({});
         INSERT INTO t SELECT id, COUNT(*) FROM src GROUP BY id;",
        pg.with("t", "")
    ));
    assert!(e.contains("only takes appended rows"), "{e}");
    assert!(
        e.contains("declare the table's PRIMARY KEY (...) NOT ENFORCED"),
        "{e}"
    );
    // An unknown option lists the known ones.
    let e = plan_err(&format!(
        "{src} CREATE TABLE t (id BIGINT) WITH ({});
         INSERT INTO t SELECT id FROM src;",
        pg.with("t", ", 'sink.buffer-flush.rows' = '5'")
    ));
    assert!(
        e.contains("unsupported option 'sink.buffer-flush.rows'"),
        "{e}"
    );
    assert!(e.contains("sink.buffer-flush.max-rows"), "{e}");
    // FOR SYSTEM_TIME AS OF another connector's table, or of a rowtime.
    let e = plan_err(&format!(
        "{src} CREATE TABLE d (id BIGINT) WITH ('connector' = 'datagen');
         CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO o SELECT s.id FROM src AS s JOIN d FOR SYSTEM_TIME AS OF s.pt ON s.id = d.id;"
    ));
    assert!(
        e.contains("lookup joins read 'jdbc' tables (temporal joins of versioned tables"),
        "{e}"
    );
    // A lookup join without a key.
    let e = plan_err(&format!(
        "{src} CREATE TABLE c (id BIGINT) WITH ({});
         CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO o SELECT s.id FROM src AS s JOIN c FOR SYSTEM_TIME AS OF s.pt ON c.id > 1;",
        pg.with("c", "")
    ));
    assert!(e.contains("a lookup join needs an equality"), "{e}");
    // A table missing in the database fails the job at start, naming it.
    let script = format!(
        "{src} CREATE TABLE t (id BIGINT) WITH ({});
         INSERT INTO t SELECT id FROM src;",
        pg.with("no_such_table", "")
    );
    let env = env(1);
    fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
    let e = format!("{:#}", env.execute("missing").unwrap_err());
    assert!(
        e.contains("no_such_table") && e.contains("does not exist"),
        "{e}"
    );
}

/// docs/sql.md's "PostgreSQL: upsert sink and lookup joins" script, verbatim but for the
/// server's URL and the orders file's path.
#[test]
fn the_docs_script_writes_totals_per_country() {
    let pg = pg();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join("docs/sql.md")).unwrap();
    let section = docs
        .split("\n## PostgreSQL: upsert sink and lookup joins\n")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap();
    let blocks: Vec<&str> = section.split("```sql\n").skip(1).collect();
    let ddl = blocks[0][..blocks[0].find("```").unwrap()].to_string();
    let script = blocks[1][..blocks[1].find("```").unwrap()].to_string();
    pg.psql(&ddl);
    let orders = root.join("examples/sql/jdbc_orders.csv");
    let script = script
        .replace("jdbc:postgresql://localhost:5432/shop", &pg.jdbc_url())
        .replace(
            "'examples/sql/jdbc_orders.csv'",
            &format!("'{}'", orders.display()),
        );
    run_script(&script, 2);
    assert_eq!(
        pg.rows("SELECT country, orders, amount FROM country_totals ORDER BY country"),
        vec!["NO|3|31.50", "US|1|20.00"]
    );
}

/// `SELECT ... FROM` a `jdbc` table reads it once (bounded: the job finishes), in the declared
/// types, and can feed an aggregation like any source.
#[test]
fn a_jdbc_table_is_scanned_once_when_selected_from() {
    let pg = pg();
    pg.psql(
        "CREATE TABLE sql_scan (id integer PRIMARY KEY, grp text, price numeric(8, 3), at date);
         INSERT INTO sql_scan SELECT i, 'g' || (i % 3), i * 1.5, DATE '2024-01-01' + i
         FROM generate_series(1, 2500) AS i",
    );
    let script = format!(
        "CREATE TABLE scan (id BIGINT, grp STRING, price DECIMAL(8, 3), at DATE) WITH ({});
         CREATE TABLE per_group (grp STRING, n BIGINT, total DECIMAL(38, 3), last_day DATE)
           WITH ('connector' = 'print');
         INSERT INTO per_group SELECT grp, COUNT(*), SUM(price), MAX(at) FROM scan GROUP BY grp;",
        pg.with("sql_scan", "")
    );
    let plan = fjord_sql::plan(&script).unwrap();
    let env = env(2);
    let collected = fjord_sql::build_collecting(&plan, &env).unwrap();
    env.execute("scan").unwrap();
    let changes = collected[0].1.values();
    let table = fjord_sql::changelog::materialize(changes.into_iter().map(|c| {
        let text: Vec<String> = c
            .row
            .iter()
            .map(|v| v.to_sql_string().unwrap_or_else(|| "NULL".into()))
            .collect();
        (c.kind, text.join("|"))
    }))
    .unwrap();
    let got: Vec<String> = table.keys().cloned().collect();
    // What PostgreSQL computes over the same table.
    assert_eq!(
        got,
        pg.rows(
            "SELECT grp, count(*), sum(price), max(at) FROM sql_scan GROUP BY grp ORDER BY grp"
        )
    );
}
