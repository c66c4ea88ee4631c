//! Event-time temporal joins of versioned tables: docs/sql.md's example run verbatim over
//! `examples/sql/trades.csv` and `examples/sql/ticks.csv` (Flink 2.3's rows for the same
//! join are compared in `e2e/tests/flink_sql_oracle.rs`, case
//! `temporal-joins-of-versioned-tables`), and the shapes Flink refuses refused with what to
//! write.

use fjord::StreamExecutionEnvironment;
use std::path::Path;

mod common;
use common::{lines_in, sorted};

/// The `sql` block of docs/sql.md's temporal-join section.
fn docs_example() -> String {
    common::docs_sql_block("### Temporal joins: versioned tables", 1)
}

/// The docs example with its input paths made absolute and its `print` sink written to
/// `out` as CSV; the rest verbatim.
fn example_script(out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut script = docs_example();
    for file in ["examples/sql/trades.csv", "examples/sql/ticks.csv"] {
        let from = format!("'{file}'");
        assert!(script.contains(&from), "{script}");
        script = script.replace(&from, &format!("'{}'", root.join(file).display()));
    }
    let print = "'connector' = 'print', 'print-identifier' = 'priced'";
    assert!(script.contains(print), "{script}");
    script.replace(
        print,
        &format!(
            "'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'",
            out.display()
        ),
    )
}

#[test]
fn the_docs_example_joins_each_trade_with_the_price_of_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!("SET 'parallelism.default' = '2';\n{}", example_script(&out));
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("temporal_join").unwrap();
    // The rows docs/sql.md describes.
    assert_eq!(
        lines_in(&out),
        sorted(&[
            "1,,,",
            "2,BETA,9,2024-01-01 00:00:02",
            "3,ACME,25,2024-01-01 00:00:05",
            "4,ACME,23,2024-01-01 00:00:13",
            "5,,,",
            "6,BETA,5,2024-01-01 00:00:09",
        ])
    );
    let explain = fjord_sql::plan_portable(&script).unwrap().explain();
    assert!(
        explain
            .contains("Temporal(right versions by $2 as of $2, event time) Join(joinType=[LEFT]")
            && explain.contains("uid sql-temporal-join-"),
        "{explain}"
    );
}

#[test]
fn joins_flink_refuses_are_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let script = example_script(&dir.path().join("out"));
    let query = "LEFT JOIN prices FOR SYSTEM_TIME AS OF t.ts AS p ON p.symbol = t.symbol";
    assert!(script.contains(query));
    for (from, to, want) in [
        // No key: not a versioned table.
        (
            "  PRIMARY KEY (symbol) NOT ENFORCED,\n",
            "",
            "is not a versioned table: declare its PRIMARY KEY",
        ),
        // No watermark: no version times.
        (
            "  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND\n) WITH ('connector' = 'filesystem', 'path' = '/",
            "  price_ts_unused INT\n) WITH ('connector' = 'filesystem', 'path' = '/",
            "has no event-time attribute",
        ),
        // The key is not what ON equates.
        (
            query,
            "LEFT JOIN prices FOR SYSTEM_TIME AS OF t.ts AS p ON p.price = t.id",
            "the versioned table's key [p.symbol] must be equated in ON",
        ),
        (
            query,
            "RIGHT JOIN prices FOR SYSTEM_TIME AS OF t.ts AS p ON p.symbol = t.symbol",
            "[INNER] JOIN or LEFT [OUTER] JOIN",
        ),
    ] {
        // The first WATERMARK in the script is the trades table's; replace the prices one.
        let bad = match from.find("WATERMARK") {
            Some(_) => {
                let at = script.find("CREATE TABLE prices").unwrap();
                format!("{}{}", &script[..at], script[at..].replacen(from, to, 1))
            }
            None => script.replacen(from, to, 1),
        };
        assert_ne!(bad, script, "{from}");
        let e = fjord_sql::plan(&bad).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
}

/// A temporal join of a generated stream with a generated versioned table (key `id`), as
/// Fjord runs it at `parallelism`, rows collected, restored from `savepoint`. Row `i` (at
/// second `i`) looks up key `i - i % 2`, whose only version (from second `i - i % 2` on) is
/// current then: the pair `(i, i - i % 2)`; row 1 finds no key 0 and is dropped.
fn start_generated(
    parallelism: usize,
    savepoint: Option<&str>,
) -> (
    StreamExecutionEnvironment,
    fjord::sinks::CollectedOutput<fjord_sql::changelog::Change>,
) {
    let script = format!(
        "SET 'parallelism.default' = '{parallelism}';
         SET 'execution.checkpointing.interval' = '200ms';
         CREATE TABLE a (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id * 1000, 3),
                         WATERMARK FOR ts AS ts)
           WITH ('connector' = 'datagen', 'rows-per-second' = '1000',
                 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
                 'fields.id.end' = '{GENERATED}');
         CREATE TABLE b (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id * 1000, 3),
                         PRIMARY KEY (id) NOT ENFORCED, WATERMARK FOR ts AS ts)
           WITH ('connector' = 'datagen', 'rows-per-second' = '700',
                 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
                 'fields.id.end' = '{GENERATED}');
         CREATE TABLE pairs (a BIGINT, b BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO pairs
         SELECT a.id, v.id FROM a JOIN b FOR SYSTEM_TIME AS OF a.ts AS v
         ON v.id = a.id - MOD(a.id, 2);"
    );
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    let mut collected = fjord_sql::build_collecting(&job, &env).unwrap();
    if let Some(path) = savepoint {
        env.restore_from(path, false);
    }
    (env, collected.remove(0).1)
}

const GENERATED: i64 = 4000;

/// The waiting rows and versions are keyed state: a job stopped with a savepoint in the
/// middle and resumed at another parallelism joins every row exactly once, with the right
/// version.
#[test]
fn a_temporal_join_stopped_with_a_savepoint_resumes_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let savepoints = dir.path().join("savepoints");
    let (env, first) = start_generated(2, None);
    let savepoint = common::stop_once(env, &savepoints, "rows", || first.len() >= 200);
    let before = first.values();
    let (env, second) = start_generated(3, Some(&savepoint));
    env.execute("second half").unwrap();
    let after = second.values();
    assert!(!after.is_empty(), "the second half joined rows");
    let mut pairs: Vec<String> = before
        .iter()
        .chain(&after)
        .map(|c| format!("{:?}", c.row))
        .collect();
    pairs.sort();
    let mut want: Vec<String> = (2..=GENERATED)
        .map(|i| {
            let v = fjord_sql::types::Value::BigInt;
            format!("{:?}", vec![v(i), v(i - i % 2)])
        })
        .collect();
    want.sort();
    assert_eq!(pairs.len(), want.len(), "each row joined once");
    assert_eq!(pairs, want, "each row joined with the version of its time");
}
