//! Legacy group windows: docs/sql.md's example run verbatim over `examples/sql/orders.csv`
//! (results worked out by hand; `e2e/tests/flink_sql_oracle.rs` compares the syntax with
//! Flink on more cases).

use fjord::StreamExecutionEnvironment;
use std::path::Path;

mod common;
use common::{lines_in, sorted};

#[test]
fn the_docs_example_aggregates_per_tumbling_window_and_customer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = common::docs_sql_block("## Legacy group windows", 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "CREATE TABLE orders (id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
                              WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE out (customer STRING, ws TIMESTAMP(3), we TIMESTAMP(3), cnt BIGINT,
                           total DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO out {example};",
        root.join("examples/sql/orders.csv").display(),
        out.display()
    );
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("legacy group window").unwrap();
    assert_eq!(
        lines_in(&out),
        sorted(&[
            "alice,2024-01-01 00:00:00,2024-01-01 00:00:10,2,17.75",
            "bob,2024-01-01 00:00:00,2024-01-01 00:00:10,1,",
            ",2024-01-01 00:00:10,2024-01-01 00:00:20,1,3.0",
            "bob,2024-01-01 00:00:10,2024-01-01 00:00:20,1,20.0",
            "alice,2024-01-01 00:00:20,2024-01-01 00:00:30,1,1.0",
        ])
    );
}
