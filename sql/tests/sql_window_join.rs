//! Window joins: docs/sql.md's example run verbatim over `examples/sql/orders.csv` and
//! `examples/sql/store_orders.csv` into a file (an outer window join appends), its plan, and
//! the shapes that are not window joins or are refused. The rows of such joins equal Flink
//! 2.3's in `e2e/tests/flink_sql_oracle.rs` (case `window-joins`).

use fjord::StreamExecutionEnvironment;
use std::path::Path;

mod common;
use common::{lines_in, sorted};

/// `web_orders` and `store_orders` as `examples/sql/union_orders.sql` declares them, and a
/// `filesystem` sink in `out`.
fn tables(out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE web_orders (id INT, customer STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3),
                                  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE store_orders (id BIGINT, customer STRING, amount DECIMAL(10, 2), qty BIGINT,
                                    ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
                 'csv.null-literal' = '');
         CREATE TABLE out (customer STRING, web_id INT, store_id BIGINT, ws TIMESTAMP(3),
                           we TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n",
        root.join("examples/sql/orders.csv").display(),
        root.join("examples/sql/store_orders.csv").display(),
        out.display()
    )
}

/// The `sql` block of docs/sql.md's window join section.
fn docs_example() -> String {
    common::docs_sql_block("## Window joins", 1)
}

#[test]
fn the_docs_example_joins_each_window_once_and_appends_padded_rows_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!("{}INSERT INTO out {};", tables(&out), docs_example());
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("window join").unwrap();
    let (w0, w1, w2, w3) = (
        "2024-01-01 00:00:00",
        "2024-01-01 00:00:10",
        "2024-01-01 00:00:20",
        "2024-01-01 00:00:30",
    );
    assert_eq!(
        lines_in(&out),
        sorted(&[
            &format!("alice,1,102,{w0},{w1}"),
            &format!("alice,3,102,{w0},{w1}"),
            &format!("bob,2,,{w0},{w1}"),
            &format!("carol,,101,{w0},{w1}"),
            &format!(",4,,{w1},{w2}"),
            &format!("bob,5,,{w1},{w2}"),
            &format!("dave,,103,{w1},{w2}"),
            &format!("alice,6,,{w2},{w3}"),
            &format!("carol,,104,{w2},{w3}"),
        ])
    );
    let explain = job.explain();
    assert!(
        explain.contains("WindowTableFunction: TUMBLE(size=10000 ms)")
            && explain.contains("-> Window(TUMBLE(size=10000 ms), window_end $6 and right $6")
            && explain.contains("Join(joinType=[FULL]")
            && explain.contains("uid sql-window-join-")
            && !explain.contains("updating result"),
        "{explain}"
    );
}

/// The plan of `select` (an INSERT's query over the two tables) into a `blackhole` sink.
fn plan(select: &str) -> fjord_sql::Result<fjord_sql::SqlJob> {
    let dir = tempfile::tempdir().unwrap();
    let head = tables(&dir.path().join("unused")).replace(
        "CREATE TABLE out (",
        "CREATE TABLE hole (a STRING) WITH ('connector' = 'blackhole');
         CREATE TABLE out (",
    );
    fjord_sql::plan(&format!("{head}INSERT INTO {select};"))
}

#[test]
fn window_joins_need_both_bounds_and_the_same_windows() {
    let tvf = |t: &str, w: &str| {
        format!(
            "(SELECT * FROM TABLE({w}(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND{})))",
            if w == "HOP" {
                ", INTERVAL '20' SECOND"
            } else {
                ""
            }
        )
    };
    // The window TVF directly in FROM, aliased, is a window join too.
    let job = plan(
        "hole SELECT w.customer FROM TABLE(TUMBLE(TABLE web_orders, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS w
         JOIN TABLE(TUMBLE(TABLE store_orders, DESCRIPTOR(ts), INTERVAL '10' SECOND)) AS s
         ON w.window_end = s.window_end AND w.window_start = s.window_start",
    )
    .unwrap();
    assert!(
        job.explain().contains("sql-window-join-"),
        "{}",
        job.explain()
    );
    // Only window_start equated: a regular join, whose FULL result is updated (no file sink).
    let regular = format!(
        "out SELECT w.customer, w.id, s.id, w.window_start, w.window_end FROM {} w FULL JOIN {} s
         ON w.customer = s.customer AND w.window_start = s.window_start",
        tvf("web_orders", "TUMBLE"),
        tvf("store_orders", "TUMBLE")
    );
    let e = plan(&regular).unwrap_err().to_string();
    assert!(e.contains("Join(joinType=[FULL])"), "{e}");
    // Different windows: refused, as Flink does.
    let e = plan(&format!(
        "hole SELECT w.customer FROM {} w JOIN {} s
         ON w.window_start = s.window_start AND w.window_end = s.window_end",
        tvf("web_orders", "TUMBLE"),
        tvf("store_orders", "HOP")
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("the same windows on both sides"), "{e}");
    // SESSION windows differ per key: no window TVF of them on their own.
    let e = plan(
        "hole SELECT customer FROM TABLE(SESSION(TABLE web_orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("SESSION window TVF is supported in a window aggregation"),
        "{e}"
    );
}

#[test]
fn a_window_tvf_selected_on_its_own_keeps_rows_per_window_for_a_window_top_n() {
    // The TVF's rows, ranked per window: a window Top-N reading each row's window from its
    // columns (not an updating Top-N over the whole stream).
    let job = plan(
        "hole SELECT customer FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY amount DESC) AS rn
           FROM (SELECT id, customer, amount, window_start, window_end
                 FROM TABLE(HOP(TABLE web_orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))))
         WHERE rn <= 1",
    )
    .unwrap();
    let explain = job.explain();
    assert!(
        explain.contains("WindowTableFunction: HOP(slide=5000 ms, size=10000 ms)")
            && explain.contains("WindowTopN: window [$3, $4) of each row"),
        "{explain}"
    );
}
