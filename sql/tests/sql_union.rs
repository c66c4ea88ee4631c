//! `UNION ALL`: the example run verbatim, unions inside views, subqueries and window TVFs,
//! the same table twice, and the mistakes refused with their line and column (results worked
//! out by hand; `e2e/tests/flink_sql_oracle.rs` compares unions with Flink).

use fjord::StreamExecutionEnvironment;
use fjord_sql::ErrorKind;
use std::path::Path;

mod common;
use common::{lines_in, sorted};

const ORDERS: &str = "\
1,alice,10.5,2,2024-01-01 00:00:01
2,bob,,3,2024-01-01 00:00:04
3,alice,7.25,,2024-01-01 00:00:09
4,,3.0,1,2024-01-01 00:00:12
";

fn run(script: &str) {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("union test").unwrap();
}

fn orders_table(dir: &Path) -> String {
    let input = dir.join("orders.csv");
    std::fs::write(&input, ORDERS).unwrap();
    format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE orders (
           id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
                'csv.null-literal' = '');\n",
        input.display()
    )
}

#[test]
fn the_union_example_counts_both_channels_per_window() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(root.join("examples/sql/union_orders.sql")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut script = example.clone();
    for (from, to) in [
        (
            "'examples/sql/orders.csv'".to_string(),
            format!("'{}'", root.join("examples/sql/orders.csv").display()),
        ),
        (
            "'examples/sql/store_orders.csv'".to_string(),
            format!("'{}'", root.join("examples/sql/store_orders.csv").display()),
        ),
        (
            "'connector' = 'print', 'print-identifier' = 'union'".to_string(),
            format!(
                "'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'",
                out.display()
            ),
        ),
    ] {
        assert!(
            script.contains(&from),
            "the example changed: {from} is gone"
        );
        script = script.replace(&from, &to);
    }
    run(&script);
    // Web rows 1-3 and store rows 101-102 fall in [0 s, 10 s), and so on; SUM(amount) is a
    // DOUBLE (DECIMAL(10, 2) widened), NULL where the window's only store row has none.
    assert_eq!(
        lines_in(&out),
        sorted(&[
            "2024-01-01 00:00:10,web,3,5,17.75",
            "2024-01-01 00:00:10,store,2,7,17.4",
            "2024-01-01 00:00:20,web,2,6,23.0",
            "2024-01-01 00:00:20,store,1,2,",
            "2024-01-01 00:00:30,web,1,4,1.0",
            "2024-01-01 00:00:30,store,1,3,30.25",
        ])
    );
    // docs/sql.md quotes the example's view and query: they must be the example's text.
    let docs = std::fs::read_to_string(root.join("docs/sql.md")).unwrap();
    let section = docs
        .split("## UNION ALL")
        .nth(1)
        .expect("the UNION ALL section");
    let quoted = section
        .split("```sql\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sql block");
    for statement in quoted.split(";\n").filter(|s| !s.trim().is_empty()) {
        assert!(
            example.contains(statement.trim()),
            "docs/sql.md quotes what the example does not say:\n{statement}"
        );
    }
    let explain = fjord_sql::plan_portable(&example).unwrap().explain();
    assert!(
        explain.contains("Branch 1 of UNION ALL:")
            && explain.contains("Branch 2 of UNION ALL:")
            && explain.contains("UnionAll(2 inputs; watermark = the minimum of theirs)")
            && explain.contains("[uid sql-source-0-web_orders,")
            && explain.contains("[uid sql-source-0-1-store_orders,")
            // The store branch is cast to the union's types: id INT -> BIGINT is the web
            // branch's cast, qty and amount the store's.
            && explain.contains("CAST($2 AS DOUBLE)"),
        "{explain}"
    );
}

#[test]
fn three_branches_in_a_subquery_with_the_same_table_twice_and_a_cast_null() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}CREATE TABLE out (id BIGINT, what STRING, n DECIMAL(12, 2))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO out
         SELECT id, what, n FROM (
           SELECT id, 'qty' AS what, qty AS n FROM orders WHERE qty > 1
           UNION ALL
           SELECT CAST(id AS BIGINT) * 10, 'amount', CAST(amount AS DECIMAL(10, 2)) FROM orders
           UNION ALL
           (SELECT id, 'none', CAST(NULL AS INT) FROM orders WHERE customer IS NULL)
         ) WHERE n IS NULL OR n > 2.5;",
        orders_table(dir.path()),
        out.display()
    );
    run(&script);
    // INT qty, DECIMAL(10, 2) amount and a NULL INT meet as DECIMAL(12, 2) (INT is
    // DECIMAL(10, 0); the CSV format writes DECIMALs normalized, as Flink's Jackson: 3, 10.5);
    // the ids are BIGINT; every row of both scans of `orders` is there.
    assert_eq!(
        lines_in(&out),
        sorted(&[
            "2,qty,3",
            "10,amount,10.5",
            "20,amount,",
            "30,amount,7.25",
            "40,amount,3",
            "4,none,",
        ])
    );
}

#[test]
fn a_window_over_a_union_fires_when_every_branch_passed_it() {
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late.csv");
    // The second source's rows are behind the first's (its first rows are older than the
    // first source's last): the union's watermark is the minimum of the two, so none of them
    // is late, and every window counts the rows of both.
    std::fs::write(
        &late,
        "2024-01-01 00:00:02,x\n2024-01-01 00:00:03,z\n2024-01-01 00:00:11,y\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}CREATE TABLE other (ts TIMESTAMP(3), tag STRING,
                             WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE out (we TIMESTAMP(3), n BIGINT, tags STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE VIEW both_sources AS
           SELECT ts, customer AS tag FROM orders UNION ALL SELECT ts, tag FROM other;
         INSERT INTO out
         SELECT window_end, COUNT(*), CAST(COUNT(DISTINCT tag) AS STRING)
         FROM TABLE(TUMBLE(TABLE both_sources, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end;",
        orders_table(dir.path()),
        late.display(),
        out.display()
    );
    run(&script);
    assert_eq!(
        lines_in(&out),
        sorted(&["2024-01-01 00:00:10,5,4", "2024-01-01 00:00:20,2,1"])
    );
}

#[test]
fn unions_flink_refuses_or_that_need_updates_name_their_line_and_column() {
    let table = "CREATE TABLE t (a INT, s STRING, ts TIMESTAMP(3),
                   WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');\n\
                 CREATE TABLE u (a BIGINT, s STRING, ts TIMESTAMP(3)) WITH ('connector' = 'datagen');\n\
                 CREATE TABLE out (a INT) WITH ('connector' = 'blackhole');\n";
    let cases: &[(&str, ErrorKind, u64, u64, &str)] = &[
        (
            "INSERT INTO out SELECT a FROM t UNION ALL SELECT a, s FROM t;",
            ErrorKind::TypeMismatch,
            5,
            43,
            "Column count mismatch in UNION ALL: the first SELECT has 1 columns [a] but this one has 2 [a, s]",
        ),
        (
            "INSERT INTO out SELECT a FROM t UNION ALL SELECT a FROM t\n UNION ALL SELECT s FROM t;",
            ErrorKind::TypeMismatch,
            6,
            12,
            "Type mismatch in column 1 of UNION ALL: 'a' is INT in an earlier branch but STRING in this one",
        ),
        (
            "INSERT INTO out SELECT a FROM t UNION SELECT a FROM t;",
            ErrorKind::Unsupported,
            5,
            17,
            "UNION without ALL (removing duplicates) is not supported yet",
        ),
        (
            "INSERT INTO out SELECT a FROM t INTERSECT SELECT a FROM t;",
            ErrorKind::Unsupported,
            5,
            17,
            "INTERSECT is not supported yet",
        ),
        (
            "INSERT INTO out SELECT a FROM t EXCEPT SELECT a FROM t;",
            ErrorKind::Unsupported,
            5,
            17,
            "EXCEPT is not supported yet",
        ),
        (
            "INSERT INTO out SELECT a FROM t UNION DISTINCT SELECT a FROM t;",
            ErrorKind::Unsupported,
            5,
            17,
            "write UNION ALL",
        ),
        (
            "INSERT INTO out SELECT a FROM t UNION ALL SELECT NULL FROM t;",
            ErrorKind::TypeMismatch,
            5,
            43,
            "Illegal use of 'NULL': column 1 ('EXPR$0') of this UNION ALL branch is a NULL without a type; write CAST(NULL AS <type>)",
        ),
        // ts is a rowtime in t only: the union's ts is a plain TIMESTAMP, as in Flink.
        (
            "CREATE VIEW v AS SELECT a, ts FROM t UNION ALL SELECT CAST(a AS INT), ts FROM u;\n\
             INSERT INTO out SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE v, DESCRIPTOR(ts), INTERVAL '1' SECOND))\n\
             GROUP BY window_start, window_end;",
            ErrorKind::TypeMismatch,
            6,
            71,
            "'ts' is not a time attribute: a column of a UNION ALL is one only when every branch has",
        ),
    ];
    for (query, kind, line, column, text) in cases {
        let script = format!("{table}{query}");
        let err = fjord_sql::plan(&script).expect_err(query);
        let message = err.to_string();
        assert_eq!(err.kind(), Some(*kind), "{query}: {message}");
        assert!(message.contains(text), "{query}: {message}");
        assert!(
            message.starts_with(&format!("line {line}, column {column}:")),
            "{query}: {message}"
        );
    }
    // The same union with the rowtime in both branches windows fine.
    let ok = format!(
        "{table}CREATE VIEW v AS SELECT a, ts FROM t UNION ALL SELECT a, ts FROM t;\n\
         INSERT INTO out SELECT CAST(COUNT(*) AS INT) FROM TABLE(TUMBLE(TABLE v, DESCRIPTOR(ts), INTERVAL '1' SECOND))\n\
         GROUP BY window_start, window_end;"
    );
    fjord_sql::plan(&ok).unwrap_or_else(|e| panic!("{e}"));
}
