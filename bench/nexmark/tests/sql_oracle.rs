//! Nexmark in SQL, with Apache Flink SQL as the oracle: the Flink benchmark's own SQL texts of
//! q0-q4, q8, q9, q11 and q15-q22 (`bench/nexmark/flink/`; q3, q20 regular joins, q8 a window
//! join of two window aggregations, q4
//! aggregates of a join, q9 a Top-1 over a join, q11 a legacy SESSION group window, q15-q17
//! GROUP BY expressions with `filter (where ...)` aggregates, q18 deduplication, q19 a Top-10,
//! q21/q22 functions) and q5, q7 (their window Top-N forms, `bench/nexmark/sql/`)
//! run on `fjord-sql` (embedded mini-cluster, parallelism 2, exactly-once checkpoints every
//! 10 s) after the benchmark's `nexmark` table and views over the same 20 000 events as `flink_oracle.rs` (nested JSON rows read with the
//! benchmark's own DDL), and on Flink 2.3 over the same files. Appending queries' rows must be
//! equal as multisets; the updating ones (q4, q9, q15-q19) are collected with their change
//! kinds and must leave the same table as Flink's changelog (q9 folded by its key, as
//! `flink_oracle.rs` does).
//!
//! Needs Flink's jars: `scripts/infra/install-flink.sh`.

use fjord::StreamExecutionEnvironment;
use fjord_nexmark::compare::read_rows;
use fjord_nexmark::is_updating;
use std::path::PathBuf;
use std::time::Duration;

mod common;
use common::{compare_query, flink, repo, write_events};

/// The queries and where their SQL text is.
const SQL_QUERIES: &[(&str, &str)] = &[
    ("q0", "flink"),
    ("q1", "flink"),
    ("q2", "flink"),
    ("q3", "flink"),
    ("q4", "flink"),
    ("q5", "sql"),
    ("q7", "sql"),
    ("q8", "flink"),
    ("q9", "flink"),
    ("q11", "flink"),
    ("q18", "flink"),
    ("q19", "flink"),
    ("q20", "flink"),
    ("q15", "flink"),
    ("q16", "flink"),
    ("q17", "flink"),
    ("q21", "flink"),
    ("q22", "flink"),
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
            (!is_updating(q)).then_some(out.as_path()),
        )
        .unwrap();
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(Duration::from_secs(10));
        let storage = format!("file://{}", dir.path().join(format!("chk-{q}")).display());
        env.checkpoint_config(|c| c.storage = storage);
        let fjord = if is_updating(q) {
            // An updating result cannot go to files: its changes are collected, printed as
            // Flink's print connector prints them.
            let script =
                fjord_nexmark::sql::script(&std::fs::read_to_string(text).unwrap(), &events, None)
                    .unwrap();
            let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{q}: {e}"));
            let collected = fjord_sql::build_collecting(&job, &env).unwrap();
            env.execute(q).unwrap();
            collected
                .iter()
                .flat_map(|(_, changes)| changes.values())
                .map(|c| fjord_sql::connectors::print::format_change(c.kind, &c.row))
                .collect()
        } else {
            let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{q}: {e}"));
            // q8 joins two window aggregations on their window bounds: Flink's WindowJoin.
            if *q == "q8" {
                let explain = job.explain();
                assert!(explain.contains("sql-window-join-"), "q8: {explain}");
            }
            fjord_sql::build(&job, &env).unwrap();
            env.execute(q).unwrap();
            read_rows(&out).unwrap()
        };
        let flink = flink_rows.get(*q).cloned().unwrap_or_default();
        match compare_query(q, &fjord, &flink) {
            Ok(summary) => eprintln!("{q}: {summary}"),
            Err(e) => failures.push(format!("{q}: Fjord SQL vs Flink SQL: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
