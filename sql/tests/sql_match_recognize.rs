//! `MATCH_RECOGNIZE`: docs/sql.md's example run verbatim over `examples/sql/ticks.csv` (its
//! rows are the ones Flink 2.3 gives for the same query, `e2e/tests/flink_sql_oracle.rs`),
//! and the shapes Flink does not support refused with what to write.

use fjord::StreamExecutionEnvironment;
use fjord_sql::ErrorKind;
use std::path::Path;

mod common;
use common::{lines_in, sorted};

/// The ticker table over `examples/sql/ticks.csv` (the data of docs/sql.md's example) and the
/// sink.
fn tables(out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let input = root.join("examples/sql/ticks.csv");
    format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE ticks (symbol STRING, price INT, ts TIMESTAMP(3),
                             WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE out (symbol STRING, start_ts TIMESTAMP(3), bottom_ts TIMESTAMP(3),
                           end_ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n",
        input.display(),
        out.display()
    )
}

/// The `n`-th (from 1) `sql` block of docs/sql.md's MATCH_RECOGNIZE section.
fn docs_block(n: usize) -> String {
    common::docs_sql_block("## MATCH_RECOGNIZE", n)
}

/// The section's first example (the V shapes).
fn docs_example() -> String {
    docs_block(1)
}

#[test]
fn the_docs_example_finds_each_v_shape_as_flink_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!("{}INSERT INTO out {};", tables(&out), docs_example());
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("match_recognize").unwrap();
    assert_eq!(
        lines_in(&out),
        sorted(&[
            "ACME,2024-01-01 00:00:05,2024-01-01 00:00:07,2024-01-01 00:00:08",
            "ACME,2024-01-01 00:00:10,2024-01-01 00:00:12,2024-01-01 00:00:13",
            "BETA,2024-01-01 00:00:01,2024-01-01 00:00:03,2024-01-01 00:00:04",
            "BETA,2024-01-01 00:00:05,2024-01-01 00:00:07,2024-01-01 00:00:08",
        ])
    );
    let explain = fjord_sql::plan_portable(&script).unwrap().explain();
    assert!(
        explain.contains("PATTERN (START_ROW PRICE_DOWN+ PRICE_UP)")
            && explain.contains("uid sql-match-"),
        "{explain}"
    );
}

#[test]
fn the_docs_within_example_drops_the_runs_that_take_too_long_as_flink_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rises");
    let head = tables(&dir.path().join("unused"));
    let script = format!(
        "{head}CREATE TABLE rises (symbol STRING, first_price INT, last_price INT, steps BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO rises {};",
        out.display(),
        docs_block(2)
    );
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("match_recognize_within").unwrap();
    // The rows docs/sql.md names (Flink's, case `match-recognize-within`).
    assert_eq!(
        lines_in(&out),
        sorted(&[
            "ACME,21,25,2",
            "ACME,24,25,2",
            "BETA,11,12,2",
            "BETA,6,13,2"
        ])
    );
    let explain = fjord_sql::plan_portable(&script).unwrap().explain();
    assert!(
        explain.contains("PATTERN (UP{2,} DOWN) WITHIN 3s"),
        "{explain}"
    );
    // Only an interval bounds a pattern.
    let bad = script.replace("WITHIN INTERVAL '3' SECOND", "WITHIN 3");
    let err = fjord_sql::plan(&bad).unwrap_err();
    assert!(
        err.to_string().contains("WITHIN takes an interval"),
        "{err}"
    );
}

#[test]
fn shapes_flink_does_not_support_are_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let head = tables(&out);
    for (clauses, want) in [
        ("PATTERN (A | B) DEFINE A AS A.price > 10", "alternation"),
        (
            "ALL ROWS PER MATCH PATTERN (A B) DEFINE A AS A.price > 10",
            "ONE ROW PER MATCH",
        ),
        (
            "PATTERN (A B) DEFINE C AS C.price > 10",
            "names no variable",
        ),
        (
            "PATTERN (A B) DEFINE A AS LAST(price, 1) > 10",
            "qualify the column",
        ),
    ] {
        let script = format!(
            "{head}INSERT INTO out SELECT * FROM ticks MATCH_RECOGNIZE (
               PARTITION BY symbol ORDER BY ts
               MEASURES A.ts AS a, A.ts AS b, A.ts AS c
               {clauses});"
        );
        let err = fjord_sql::plan(&script).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                Some(ErrorKind::Unsupported | ErrorKind::UnknownColumn | ErrorKind::Syntax)
            ) && err.to_string().contains(want),
            "{clauses}: {err}"
        );
    }
}
