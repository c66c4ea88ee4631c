//! SQL scripts run end to end on the embedded mini-cluster: files in, files out, results
//! compared as multisets with what Flink SQL's semantics give (worked out by hand below).

use fjord::StreamExecutionEnvironment;
use fjord_sql::ErrorKind;
use std::path::Path;

mod common;
use common::{lines_in, sorted, stop_once_windows_fired};

const ORDERS: &str = "\
1,alice,10.5,2,2024-01-01 00:00:01
2,bob,,3,2024-01-01 00:00:04
3,alice,7.25,,2024-01-01 00:00:09
4,,3.0,1,2024-01-01 00:00:12
5,bob,20.0,5,2024-01-01 00:00:15
6,alice,1.0,4,2024-01-01 00:00:21
";

fn orders_table(dir: &Path) -> String {
    let input = dir.join("orders.csv");
    std::fs::write(&input, ORDERS).unwrap();
    format!(
        "CREATE TABLE orders (
           id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
                'csv.null-literal' = '');",
        input.display()
    )
}

/// Runs a script and returns the sorted lines of every file the sink wrote.
fn run(script: &str, out: &Path, parallelism: usize) -> Vec<String> {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("sql test").unwrap();
    lines_in(out)
}

#[test]
fn projection_filter_case_cast_and_functions_follow_null_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE result (id INT, who STRING, size STRING, double_qty BIGINT, name STRING, len INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO result
         SELECT id, UPPER(customer),
                CASE WHEN amount > 5 THEN 'big' WHEN amount <= 5 THEN 'small' ELSE 'unknown' END,
                CAST(qty AS BIGINT) * 2, COALESCE(customer, 'nobody'), CHAR_LENGTH(customer)
         FROM orders
         WHERE qty IS NULL OR qty > 1;",
        orders_table(dir.path()),
        out.display()
    );
    // qty > 1 is NULL for id 3, so only `qty IS NULL` lets it through; id 4 (qty 1) fails
    // both. Bob's NULL amount makes both WHEN conditions NULL, so ELSE is taken.
    assert_eq!(
        run(&script, &out, 2),
        sorted(&[
            "1,ALICE,big,4,alice,5",
            "2,BOB,unknown,6,bob,3",
            "3,ALICE,big,,alice,5",
            "5,BOB,big,10,bob,3",
            "6,ALICE,small,8,alice,5",
        ])
    );
}

#[test]
fn a_view_filters_and_the_where_clause_drops_null_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE VIEW priced AS SELECT id, amount * 2 AS twice, MOD(id, 4) AS m FROM orders WHERE amount > 2;
         CREATE TABLE result (id INT, twice DOUBLE, m INT, tag STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         INSERT INTO result SELECT id, twice, m, CONCAT('#', CAST(id AS STRING)) FROM priced WHERE m <> 0;",
        orders_table(dir.path()),
        out.display()
    );
    // amount > 2: ids 1, 3, 4, 5 (bob's NULL amount is not TRUE); MOD(4, 4) = 0 drops id 4.
    assert_eq!(
        run(&script, &out, 1),
        sorted(&[
            r##"{"id":1,"twice":21.0,"m":1,"tag":"#1"}"##,
            r##"{"id":3,"twice":14.5,"m":3,"tag":"#3"}"##,
            r##"{"id":5,"twice":40.0,"m":1,"tag":"#5"}"##,
        ])
    );
}

#[test]
fn tumbling_windows_aggregate_per_key_on_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE result (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, cnt BIGINT,
                              total DOUBLE, min_q INT, max_q INT, avg_q INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO result
         SELECT window_start, window_end, customer, COUNT(*), SUM(amount), MIN(qty), MAX(qty), AVG(qty)
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;",
        orders_table(dir.path()),
        out.display()
    );
    assert_eq!(
        run(&script, &out, 2),
        sorted(&[
            "2024-01-01 00:00:00,2024-01-01 00:00:10,alice,2,17.75,2,2,2",
            "2024-01-01 00:00:00,2024-01-01 00:00:10,bob,1,,3,3,3",
            "2024-01-01 00:00:10,2024-01-01 00:00:20,,1,3.0,1,1,1",
            "2024-01-01 00:00:10,2024-01-01 00:00:20,bob,1,20.0,5,5,5",
            "2024-01-01 00:00:20,2024-01-01 00:00:30,alice,1,1.0,4,4,4",
        ])
    );
}

#[test]
fn hopping_windows_count_every_window_an_event_falls_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE result (ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT, qty INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO result
         SELECT window_start, window_end, COUNT(*) AS cnt, SUM(qty) AS qty
         FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
         GROUP BY window_start, window_end;",
        orders_table(dir.path()),
        out.display()
    );
    assert_eq!(
        run(&script, &out, 2),
        sorted(&[
            "2023-12-31 23:59:55,2024-01-01 00:00:05,2,5",
            "2024-01-01 00:00:00,2024-01-01 00:00:10,3,5",
            "2024-01-01 00:00:05,2024-01-01 00:00:15,2,1",
            "2024-01-01 00:00:10,2024-01-01 00:00:20,2,6",
            "2024-01-01 00:00:15,2024-01-01 00:00:25,2,9",
            "2024-01-01 00:00:20,2024-01-01 00:00:30,1,4",
        ])
    );
}

/// `EXECUTE STATEMENT SET BEGIN ... END;` with two inserts into temporary tables, from a
/// temporary view: one job writes both sinks, every row once.
#[test]
fn a_statement_set_writes_several_sinks_in_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let (big, small) = (dir.path().join("big"), dir.path().join("small"));
    let script = format!(
        "{}
         CREATE TEMPORARY VIEW sized AS SELECT id, amount FROM orders WHERE amount IS NOT NULL;
         CREATE TEMPORARY TABLE big (id INT, amount DOUBLE) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TEMPORARY TABLE small (id INT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         EXECUTE STATEMENT SET
         BEGIN
           INSERT INTO big SELECT id, amount FROM sized WHERE amount >= 10;
           INSERT INTO small SELECT id FROM sized WHERE amount < 10;
         END;",
        orders_table(dir.path()),
        big.display(),
        small.display()
    );
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job.inserts.len(), 2);
    let lines = run(&script, &big, 2);
    assert_eq!(lines, sorted(&["1,10.5", "5,20.0"]));
    assert_eq!(lines_in(&small), sorted(&["3", "4", "6"]));
}

/// `INSERT INTO t (c, a) SELECT ...`: the listed columns in the list's order, the others
/// NULL (Flink's partial insert).
#[test]
fn an_insert_with_a_column_list_fills_the_rest_with_null() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE t (a INT, b STRING, c DOUBLE) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         INSERT INTO t (c, a) SELECT amount, id FROM orders WHERE id <= 2;",
        orders_table(dir.path()),
        out.display()
    );
    let lines = run(&script, &out, 1);
    assert_eq!(
        lines,
        sorted(&[
            r#"{"a":1,"b":null,"c":10.5}"#,
            r#"{"a":2,"b":null,"c":null}"#
        ])
    );
    for (insert, want) in [
        (
            "INSERT INTO t (a, d) SELECT id, amount FROM orders;",
            "sink 't' has no column 'd'",
        ),
        (
            "INSERT INTO t (a, a) SELECT id, amount FROM orders;",
            "column 'a' is listed twice",
        ),
        (
            "INSERT INTO t (a, b) SELECT id FROM orders;",
            "the column list names 2",
        ),
    ] {
        let script = format!(
            "{}
             CREATE TABLE t (a INT, b STRING, c DOUBLE) WITH ('connector' = 'blackhole');
             {insert}",
            orders_table(dir.path())
        );
        let err = fjord_sql::plan(&script).unwrap_err().to_string();
        assert!(err.contains(want), "{insert}: {err}");
    }
}

#[test]
fn computed_columns_feed_windows_and_inserts_write_only_physical_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    // The time is text here: the rowtime is a computed column casting it.
    std::fs::write(&input, ORDERS).unwrap();
    let (windows, copy) = (dir.path().join("windows"), dir.path().join("copy"));
    let script = format!(
        "CREATE TABLE orders (
           id INT, customer STRING, amount DOUBLE, qty INT,
           total AS amount * qty,
           t STRING,
           ts AS CAST(t AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
                'csv.null-literal' = '');
         CREATE TABLE per_window (ws TIMESTAMP(3), we TIMESTAMP(3), customer STRING, cnt BIGINT,
                                  total DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE big (id INT, doubled AS id * 2, customer STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO per_window
         SELECT window_start, window_end, customer, COUNT(*), SUM(total)
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, customer;
         INSERT INTO big SELECT id, customer FROM orders WHERE total > 20;",
        input.display(),
        windows.display(),
        copy.display()
    );
    // total = amount * qty: 21.0, NULL, NULL, 3.0, 100.0, 4.0 for ids 1..6.
    assert_eq!(
        run(&script, &windows, 2),
        sorted(&[
            "2024-01-01 00:00:00,2024-01-01 00:00:10,alice,2,21.0",
            "2024-01-01 00:00:00,2024-01-01 00:00:10,bob,1,",
            "2024-01-01 00:00:10,2024-01-01 00:00:20,,1,3.0",
            "2024-01-01 00:00:10,2024-01-01 00:00:20,bob,1,100.0",
            "2024-01-01 00:00:20,2024-01-01 00:00:30,alice,1,4.0",
        ])
    );
    // `big` is written with its physical columns only; reading it back computes `doubled`.
    assert_eq!(lines_in(&copy), sorted(&["1,alice", "5,bob"]));
    let out = dir.path().join("read_back");
    let read_back = format!(
        "CREATE TABLE big (id INT, doubled AS id * 2, customer STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE out (customer STRING, doubled INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO out SELECT customer, doubled FROM big;",
        copy.display(),
        out.display()
    );
    assert_eq!(run(&read_back, &out, 1), sorted(&["alice,2", "bob,10"]));
}

#[test]
fn datagen_sequences_are_split_over_subtasks_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "SET 'parallelism.default' = '3';
         CREATE TABLE gen (id BIGINT, word STRING, score INT) WITH (
           'connector' = 'datagen', 'rows-per-second' = '100000',
           'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '500',
           'fields.word.length' = '4', 'fields.score.min' = '-3', 'fields.score.max' = '3');
         CREATE TABLE result (id BIGINT, ok BOOLEAN) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO result SELECT id, CHAR_LENGTH(word) = 4 AND score BETWEEN -3 AND 3 FROM gen;",
        out.display()
    );
    let lines = run(&script, &out, 1);
    let mut ids: Vec<u64> = lines
        .iter()
        .map(|l| {
            let (id, ok) = l.split_once(',').unwrap();
            assert_eq!(ok, "true", "{l}");
            id.parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=500).collect::<Vec<u64>>());
    assert!(
        std::fs::read_dir(&out).unwrap().count() == 3,
        "one part file per subtask"
    );
}

#[test]
fn mistakes_name_their_line_and_column_and_what_to_do() {
    let table = "CREATE TABLE t (a INT, s STRING, ts TIMESTAMP(3)) WITH ('connector' = 'datagen');\n\
                 CREATE TABLE out (a INT) WITH ('connector' = 'blackhole');\n";
    let cases: &[(&str, ErrorKind, u64, u64, &str)] = &[
        (
            "INSERT INTO out SELECT b FROM t;",
            ErrorKind::UnknownColumn,
            3,
            24,
            "column 'b' not found",
        ),
        (
            "INSERT INTO out SELECT A FROM t;",
            ErrorKind::UnknownColumn,
            3,
            24,
            "did you mean 'a'",
        ),
        (
            "INSERT INTO out SELECT a FROM nope;",
            ErrorKind::UnknownTable,
            3,
            31,
            "create it first",
        ),
        (
            "INSERT INTO out SELECT a + s FROM t;",
            ErrorKind::TypeMismatch,
            3,
            24,
            "CAST strings first",
        ),
        (
            "INSERT INTO out SELECT s FROM t;",
            ErrorKind::TypeMismatch,
            3,
            13,
            "CAST(s AS INT)",
        ),
        (
            // Grouped by an expression, the column itself is not grouped (as Flink says).
            "INSERT INTO out SELECT a FROM t GROUP BY a + 1;",
            ErrorKind::TypeMismatch,
            3,
            24,
            "neither grouped nor aggregated",
        ),
        (
            "INSERT INTO out SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;",
            ErrorKind::TypeMismatch,
            3,
            71,
            "WATERMARK FOR ts",
        ),
        (
            "INSERT INTO out SELECT a FROM t WHERE s;",
            ErrorKind::TypeMismatch,
            3,
            39,
            "BOOLEAN",
        ),
        (
            "SET 'state.backend' = 'x';",
            ErrorKind::InvalidOption,
            3,
            5,
            "supported keys",
        ),
        (
            "INSERT INTO out SELECT LENGTH(s) FROM t;",
            ErrorKind::UnknownFunction,
            3,
            24,
            "CHAR_LENGTH",
        ),
        (
            "INSERT INTO out SELEC a FROM t;",
            ErrorKind::Syntax,
            3,
            17,
            "Expected",
        ),
    ];
    for (statement, kind, line, column, hint) in cases {
        let err = fjord_sql::plan(&format!("{table}{statement}")).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), Some(*kind), "{statement}: {text}");
        assert!(
            text.starts_with(&format!("line {line}, column {column}:")),
            "{statement}: {text}"
        );
        assert!(text.contains(hint), "{statement}: {text}");
    }
    let bad_option = fjord_sql::plan("CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'rows' = '1');\nCREATE TABLE o (a INT) WITH ('connector' = 'print');\nINSERT INTO o SELECT a FROM t;").unwrap_err();
    assert!(
        bad_option.to_string().contains("unsupported option 'rows'"),
        "{bad_option}"
    );
}

#[test]
fn explain_shows_keys_state_and_uids_derived_from_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let script = |size: u32| {
        format!(
            "{}
             CREATE TABLE o (ws TIMESTAMP(3), c STRING, n BIGINT) WITH ('connector' = 'print');
             INSERT INTO o SELECT window_start, customer, COUNT(*) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '{size}' SECOND)) GROUP BY window_start, window_end, customer;",
            orders_table(dir.path())
        )
    };
    let explain = |s: &str| fjord_sql::plan(s).unwrap().explain();
    let a = explain(&script(10));
    assert!(a.contains("Hash partition by [$1]"), "{a}");
    assert!(
        a.contains("TUMBLE(size=10000 ms)") && a.contains("state: keyed accumulators"),
        "{a}"
    );
    let uid = |text: &str| text.split("uid sql-window-agg-").nth(1).unwrap()[..16].to_string();
    assert_eq!(uid(&a), uid(&explain(&script(10))), "same query, same uid");
    assert_ne!(
        uid(&a),
        uid(&explain(&script(20))),
        "another window, another uid"
    );
}

/// Reads `window_start,k,count,sum_of_ids` lines from every part file in `dir`.
fn window_sums(dir: &Path) -> Vec<(String, i64, u64, u64)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        for line in std::fs::read_to_string(entry.unwrap().path())
            .unwrap()
            .lines()
        {
            let f: Vec<&str> = line.split(',').collect();
            rows.push((
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            ));
        }
    }
    rows
}

/// A new environment running the planned `script`, restored from `savepoint` if given.
fn planned_env(script: &str, savepoint: Option<&str>) -> StreamExecutionEnvironment {
    let job = fjord_sql::plan(script).unwrap();
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    if let Some(path) = savepoint {
        env.restore_from(path, false);
    }
    env
}

#[test]
fn a_window_job_stopped_with_a_savepoint_resumes_at_another_parallelism_without_loss() {
    const N: u64 = 8000;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let savepoints = dir.path().join("savepoints");
    // Event time is the generator's wall clock; 1000 rows/s makes the job run for ~8 s, so
    // it is stopped in the middle. Checkpoints every 200 ms flush the sink's files.
    let script = |parallelism: usize| {
        format!(
            "SET 'parallelism.default' = '{parallelism}';
             SET 'execution.checkpointing.interval' = '200ms';
             CREATE TABLE gen (id BIGINT, k INT, ts TIMESTAMP(3),
                               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
               WITH ('connector' = 'datagen', 'rows-per-second' = '1000',
                     'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{N}',
                     'fields.k.min' = '0', 'fields.k.max' = '7');
             CREATE TABLE sums (ws TIMESTAMP(3), k INT, cnt BIGINT, ids BIGINT)
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             INSERT INTO sums
             SELECT window_start, k, COUNT(*), SUM(id)
             FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '1' SECOND))
             GROUP BY window_start, window_end, k;",
            out.display()
        )
    };
    let start =
        |parallelism: usize, savepoint: Option<&str>| planned_env(&script(parallelism), savepoint);

    let savepoint = stop_once_windows_fired(start(2, None), &out, &savepoints);
    let first: u64 = window_sums(&out).iter().map(|r| r.2).sum();
    assert!(
        first > 0 && first < N,
        "stopped in the middle: {first} of {N} rows counted"
    );

    // The same query at parallelism 3: the window state (keyed, uid from the plan) and the
    // generator's remaining ranges (splits) are redistributed.
    start(3, Some(&savepoint)).execute("second half").unwrap();
    let rows = window_sums(&out);
    assert_eq!(
        rows.iter().map(|r| r.2).sum::<u64>(),
        N,
        "every row counted once"
    );
    assert_eq!(
        rows.iter().map(|r| r.3).sum::<u64>(),
        N * (N + 1) / 2,
        "every id summed once"
    );
    let mut windows: Vec<(&String, i64)> = rows.iter().map(|r| (&r.0, r.1)).collect();
    windows.sort();
    let before = windows.len();
    windows.dedup();
    assert_eq!(windows.len(), before, "no window fired twice");
}

/// `examples/sql/top_orders.sql` (docs/sql.md's window Top-N example) with its two `print`
/// sinks written to files instead and its input path made absolute; the rest verbatim.
#[test]
fn the_top_n_example_keeps_the_best_rows_and_the_last_row_per_window() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(root.join("examples/sql/top_orders.sql")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (top, last) = (dir.path().join("top"), dir.path().join("last"));
    let file_sink = |path: &Path| {
        format!(
            "'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'",
            path.display()
        )
    };
    let mut script = example.clone();
    for (from, to) in [
        (
            "'examples/sql/orders.csv'".to_string(),
            format!("'{}'", root.join("examples/sql/orders.csv").display()),
        ),
        (
            "'connector' = 'print', 'print-identifier' = 'top'".to_string(),
            file_sink(&top),
        ),
        (
            "'connector' = 'print', 'print-identifier' = 'last'".to_string(),
            file_sink(&last),
        ),
    ] {
        assert!(
            script.contains(&from),
            "the example changed: {from} is gone"
        );
        script = script.replace(&from, &to);
    }
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("top-n example").unwrap();
    // NULL amounts rank last (DESC); bob's order 2 has none.
    assert_eq!(
        lines_in(&top),
        sorted(&[
            "2024-01-01 00:00:10,1,10.5,1",
            "2024-01-01 00:00:10,3,7.25,2",
            "2024-01-01 00:00:20,5,20.0,1",
            "2024-01-01 00:00:20,4,3.0,2",
            "2024-01-01 00:00:30,6,1.0,1",
        ])
    );
    assert_eq!(
        lines_in(&last),
        sorted(&[
            "2024-01-01 00:00:10,alice,3",
            "2024-01-01 00:00:10,bob,2",
            "2024-01-01 00:00:20,,4",
            "2024-01-01 00:00:20,bob,5",
            "2024-01-01 00:00:30,alice,6",
        ])
    );
    let explain = fjord_sql::plan_portable(&example).unwrap().explain();
    assert!(
        explain.contains("WindowTopN: TUMBLE(size=10000 ms) on $4 (event time), order=[$2 DESC NULLS LAST], rownum <= 2")
            && explain.contains("order=[$4 DESC NULLS LAST], rownum <= 1")
            && explain.contains("uid sql-window-topn-"),
        "{explain}"
    );
}

/// A window Top-N stopped with a savepoint in the middle and resumed at another parallelism:
/// the rows buffered in its keyed state before the stop are ranked after it. N is larger than
/// any window, so every row is kept and ranked: each id comes out exactly once, and each
/// window and key has the rownums 1..n in descending id order.
#[test]
fn a_window_top_n_stopped_with_a_savepoint_resumes_at_another_parallelism_without_loss() {
    const N: u64 = 6000;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let savepoints = dir.path().join("savepoints");
    let script = |parallelism: usize| {
        format!(
            "SET 'parallelism.default' = '{parallelism}';
             SET 'execution.checkpointing.interval' = '200ms';
             CREATE TABLE gen (id BIGINT, k INT, ts TIMESTAMP(3),
                               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
               WITH ('connector' = 'datagen', 'rows-per-second' = '1000',
                     'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{N}',
                     'fields.k.min' = '0', 'fields.k.max' = '7');
             CREATE TABLE ranked (ws TIMESTAMP(3), k INT, id BIGINT, rownum BIGINT)
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             INSERT INTO ranked
             SELECT window_start, k, id, rownum FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, k
                                            ORDER BY id DESC) AS rownum
               FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '1' SECOND)))
             WHERE rownum <= 100000;",
            out.display()
        )
    };
    let start =
        |parallelism: usize, savepoint: Option<&str>| planned_env(&script(parallelism), savepoint);
    let savepoint = stop_once_windows_fired(start(2, None), &out, &savepoints);
    let first = window_sums(&out).len() as u64;
    assert!(
        first > 0 && first < N,
        "stopped in the middle: {first} of {N}"
    );

    start(3, Some(&savepoint)).execute("second half").unwrap();
    // (ws, k, id, rownum)
    let rows = window_sums(&out);
    let mut ids: Vec<u64> = rows.iter().map(|r| r.2).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=N).collect::<Vec<_>>(), "every row ranked once");
    let mut per_window: std::collections::BTreeMap<(&String, i64), Vec<(u64, u64)>> =
        Default::default();
    for r in &rows {
        per_window.entry((&r.0, r.1)).or_default().push((r.3, r.2));
    }
    for ((ws, k), mut ranked) in per_window {
        ranked.sort_unstable();
        let rownums: Vec<u64> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(
            rownums,
            (1..=ranked.len() as u64).collect::<Vec<_>>(),
            "window {ws}, k {k}: rownums 1..n, each once"
        );
        assert!(
            ranked.windows(2).all(|w| w[0].1 > w[1].1),
            "window {ws}, k {k}: rownum follows descending id: {ranked:?}"
        );
    }
}

/// `PRIMARY KEY (...) NOT ENFORCED` is a declaration Flink accepts on file, datagen, print
/// and blackhole tables (checked with Flink 2.3: a filesystem and a datagen source with one
/// run) and refuses on an append-only Kafka table; Fjord does the same.
#[test]
fn primary_keys_are_accepted_where_flink_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE keyed (id INT, who STRING, PRIMARY KEY (id) NOT ENFORCED)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO keyed SELECT id, customer FROM orders WHERE id < 3;",
        orders_table(dir.path()),
        out.display()
    );
    assert_eq!(run(&script, &out, 1), sorted(&["1,alice", "2,bob"]));
    let kafka = "CREATE TABLE k (id INT, PRIMARY KEY (id) NOT ENFORCED)
                   WITH ('connector' = 'kafka', 'topic' = 't',
                         'properties.bootstrap.servers' = 'localhost:9092', 'format' = 'json');";
    let e = fjord_sql::plan(kafka).unwrap_err().to_string();
    assert!(e.contains("cannot declare a PRIMARY KEY"), "{e}");
    assert!(e.starts_with("line 1, column"), "{e}");
}
