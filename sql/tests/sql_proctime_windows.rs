//! Processing-time windows (`TUMBLE(TABLE t, DESCRIPTOR(pt), ...)` over a `pt AS PROCTIME()`
//! column, and the legacy `GROUP BY TUMBLE(pt, ...)`): rows are counted in windows of the
//! wall clock, which fire when the clock passes their end. Their rows depend on when each row
//! is processed, so the checks are about the windows' shape and totals, not exact rows.
//! As in Flink, windows still open when a bounded input ends are not fired (Flink 2.3 prints
//! nothing for the same query over a file).

use fjord::StreamExecutionEnvironment;
use std::time::{SystemTime, UNIX_EPOCH};

mod common;
use common::lines_in;

/// A result row: key, count, window start and end (epoch ms).
type WindowRow = (i64, i64, i64, i64);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Runs `query` (its sink `res (k BIGINT, n BIGINT, ws TIMESTAMP(3), we TIMESTAMP(3))`)
/// over 90 generated rows at 30 rows per second (about 3 s), one key per row modulo 2.
fn run(query: &str) -> (Vec<WindowRow>, i64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "SET 'parallelism.default' = '1';
         CREATE TABLE g (id BIGINT, pt AS PROCTIME())
           WITH ('connector' = 'datagen', 'rows-per-second' = '30', 'number-of-rows' = '90',
                 'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '90');
         CREATE VIEW t AS SELECT MOD(id, 2) AS k, pt FROM g;
         CREATE TABLE res (k BIGINT, n BIGINT, ws TIMESTAMP(3), we TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO res {query};",
        out.display()
    );
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let explain = fjord_sql::plan_portable(&script).unwrap().explain();
    assert!(explain.contains("(processing time)"), "{explain}");
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    let started = now_ms();
    env.execute("proctime windows").unwrap();
    let ended = now_ms();
    let ts = |s: &str| {
        fjord_sql::types::parse_timestamp(s).unwrap_or_else(|| panic!("not a timestamp: {s}"))
    };
    let rows = lines_in(&out)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                ts(f[2]),
                ts(f[3]),
            )
        })
        .collect();
    (rows, started, ended)
}

/// Each fired window is one second of the wall clock during the run, aligned to the second;
/// its counts come from the rows processed then (at most the 45 of each key), and the windows
/// that fired before the input ended are there (the last one is not fired, as in Flink).
fn check(rows: &[WindowRow], started: i64, ended: i64) {
    assert!(
        rows.len() >= 2,
        "windows of the 3 s run fired while it ran: {rows:?}"
    );
    for &(k, n, ws, we) in rows {
        assert!(k == 0 || k == 1, "{rows:?}");
        assert_eq!(we - ws, 1000, "{rows:?}");
        assert_eq!(ws % 1000, 0, "aligned to the second: {rows:?}");
        assert!(
            ws >= started - 1000 && we <= ended + 1000,
            "a window of the run's wall clock ({started}..{ended}): {rows:?}"
        );
        assert!(n >= 1, "{rows:?}");
    }
    for k in [0, 1] {
        let total: i64 = rows.iter().filter(|r| r.0 == k).map(|r| r.1).sum();
        assert!(
            total <= 45,
            "key {k} counted {total} of its 45 rows: {rows:?}"
        );
    }
}

#[test]
fn a_tumble_tvf_over_a_proctime_column_counts_rows_per_second_of_the_wall_clock() {
    let (rows, started, ended) = run("SELECT k, COUNT(*), window_start, window_end
         FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(pt), INTERVAL '1' SECOND))
         GROUP BY k, window_start, window_end");
    check(&rows, started, ended);
}

#[test]
fn a_legacy_group_window_over_a_proctime_column_does_the_same() {
    let (rows, started, ended) = run(
        "SELECT k, COUNT(*), TUMBLE_START(pt, INTERVAL '1' SECOND), TUMBLE_END(pt, INTERVAL '1' SECOND)
         FROM t GROUP BY k, TUMBLE(pt, INTERVAL '1' SECOND)",
    );
    check(&rows, started, ended);
}

#[test]
fn nexmark_q12_plans_with_processing_time_windows_and_the_rest_is_refused() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let q12 = std::fs::read_to_string(root.join("bench/nexmark/flink/q12.sql")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    std::fs::write(&events, "").unwrap();
    let plans_a_proctime_tumble = |script: &str| {
        let explain = fjord_sql::plan_portable(script)
            .unwrap_or_else(|e| panic!("{e}"))
            .explain();
        assert!(
            explain.contains("TUMBLE(size=10000 ms) on $7 (processing time)"),
            "{explain}"
        );
    };
    plans_a_proctime_tumble(&(fjord_nexmark_ddl(&events) + &q12));
    // docs/sql.md's example (the same query as written there), into a sink.
    let docs = common::docs_sql_block("### Processing-time windows", 1);
    let (view, query) = docs.split_once(";\n").expect("a view, then the query");
    let script = format!(
        "{}{view};
         CREATE TABLE per_bidder (bidder BIGINT, n BIGINT, ws TIMESTAMP(3), we TIMESTAMP(3))
           WITH ('connector' = 'blackhole');
         INSERT INTO per_bidder {query};",
        fjord_nexmark_ddl(&events)
    );
    plans_a_proctime_tumble(&script);
    // Event-time-only shapes over a processing-time column name what to do.
    let head = "CREATE TABLE g (id BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen');
                CREATE TABLE res (id BIGINT) WITH ('connector' = 'blackhole');";
    for (query, want) in [
        (
            "SELECT id FROM TABLE(TUMBLE(TABLE g, DESCRIPTOR(pt), INTERVAL '1' SECOND))",
            "a processing-time window TVF is supported in a window aggregation",
        ),
        (
            "SELECT COUNT(*) FROM TABLE(CUMULATE(TABLE g, DESCRIPTOR(pt), INTERVAL '1' SECOND, INTERVAL '2' SECOND)) GROUP BY window_start, window_end",
            "CUMULATE windows run in event time",
        ),
        (
            "SELECT id FROM TABLE(TUMBLE(TABLE g, DESCRIPTOR(id), INTERVAL '1' SECOND))",
            "is not a time attribute",
        ),
    ] {
        let e = fjord_sql::plan(&format!("{head} INSERT INTO res {query};"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{query}: {e}");
    }
}

/// The Nexmark benchmark's table and views (as `fjord_nexmark::sql::source_ddl` writes them;
/// fjord-sql's tests cannot depend on the benchmark crate).
fn fjord_nexmark_ddl(input: &std::path::Path) -> String {
    format!(
        "CREATE TABLE nexmark (
  event_type INT,
  bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>,
  `dateTime` AS bid.`dateTime`,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE VIEW bid AS SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, `dateTime`, bid.extra FROM nexmark WHERE event_type = 2;
",
        input.display()
    )
}
