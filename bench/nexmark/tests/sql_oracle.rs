//! Nexmark in SQL, with Apache Flink SQL as the oracle: the SQL texts of q0, q1, q2, q3 and q20
//! (the Flink benchmark's own; q3 and q20 are regular joins, `bench/nexmark/flink/`) and q5, q7 (their window Top-N forms,
//! `bench/nexmark/sql/`) run on `fjord-sql` (embedded mini-cluster, parallelism 2, exactly-once
//! checkpoints every 10 s) after the benchmark's `nexmark` table and views over the same 20 000
//! events as `flink_oracle.rs` (nested JSON rows read with the benchmark's own DDL), and on
//! Flink 2.3 over the same files; the rows must be equal as multisets.
//!
//! Needs Flink's jars: `scripts/infra/install-flink.sh`.

use fjord::StreamExecutionEnvironment;
use fjord_nexmark::compare::{compare_rows, read_rows};
use std::path::PathBuf;
use std::time::Duration;

mod common;
use common::{flink, repo, write_events};

/// The queries and where their SQL text is.
const SQL_QUERIES: &[(&str, &str)] = &[
    ("q0", "flink"),
    ("q1", "flink"),
    ("q2", "flink"),
    ("q3", "flink"),
    ("q5", "sql"),
    ("q7", "sql"),
    ("q20", "flink"),
];

#[test]
fn fjord_sql_gives_flink_sqls_rows_for_the_same_query_texts() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    write_events(&events);
    let texts: Vec<PathBuf> = SQL_QUERIES
        .iter()
        .map(|(q, d)| repo().join(format!("bench/nexmark/{d}/{q}.sql")))
        .collect();
    let flink_home = dir.path().join("flink-home");
    let flink_rows = flink(&texts, &events, &dir.path().join("flink-chk"), &flink_home);
    let mut failures = Vec::new();
    for ((q, _), text) in SQL_QUERIES.iter().zip(&texts) {
        let out = dir.path().join(format!("fjord-{q}"));
        let script = fjord_nexmark::sql::script(
            &std::fs::read_to_string(text).unwrap(),
            &events,
            Some(&out),
        )
        .unwrap();
        let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{q}: {e}"));
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(Duration::from_secs(10));
        let storage = format!("file://{}", dir.path().join(format!("chk-{q}")).display());
        env.checkpoint_config(|c| c.storage = storage);
        fjord_sql::build(&job, &env).unwrap();
        env.execute(q).unwrap();
        let fjord = read_rows(&out).unwrap();
        let flink = flink_rows.get(*q).cloned().unwrap_or_default();
        let c = compare_rows(&fjord, &flink);
        if fjord.is_empty() {
            failures.push(format!("{q}: no rows, so nothing is compared"));
        } else if c.same() {
            eprintln!("{q}: {} rows, the same on both", fjord.len());
        } else {
            failures.push(format!(
                "{q}: Fjord SQL (left) and Flink SQL (right) differ: {c}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
