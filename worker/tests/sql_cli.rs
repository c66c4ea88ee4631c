//! `fjord sql`: the example scripts of docs/sql.md run verbatim by the real binary, its
//! `--explain`, and a script with a mistake (exit code 2, line and column).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fjord(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_example_script_prints_windowed_totals_per_customer() {
    let out = fjord(
        &["sql", "-f", "examples/sql/windowed_orders.sql"],
        &repo_root(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Parallelism 2 (the script's SET): each line is "orders:<subtask>> +I[...]".
    let mut rows: Vec<&str> = stdout
        .lines()
        .map(|l| {
            assert!(
                l.starts_with("orders:1> ") || l.starts_with("orders:2> "),
                "{l}"
            );
            l.split_once("> ").unwrap().1
        })
        .collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        [
            "+I[2024-01-01T00:00, 2024-01-01T00:00:10, alice, 2, 17.75, 1]",
            "+I[2024-01-01T00:00:10, 2024-01-01T00:00:20, bob, 1, 20.0, 1]",
            "+I[2024-01-01T00:00:10, 2024-01-01T00:00:20, nobody, 1, 3.0, 0]",
            "+I[2024-01-01T00:00:20, 2024-01-01T00:00:30, alice, 1, 1.0, 0]",
        ]
    );
}

/// docs/sql.md's changelog example, verbatim: the totals per customer as the print
/// connector shows updates (one source read in order at parallelism 1, so the sequence is
/// exact), and the left join's rows, whose changes depend on which source is read first: the
/// table they leave once applied is checked.
#[test]
fn the_changelog_example_prints_updates_with_their_kinds() {
    let out = fjord(
        &["sql", "-f", "examples/sql/changelog_orders.sql"],
        &repo_root(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // docs/sql.md shows the example's sinks and inserts: they must be the file's, verbatim.
    let docs = std::fs::read_to_string(repo_root().join("docs/sql.md")).unwrap();
    let example =
        std::fs::read_to_string(repo_root().join("examples/sql/changelog_orders.sql")).unwrap();
    let section = &docs[docs.find("## Updating queries").unwrap()..];
    let block = section
        .split("```sql\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .unwrap();
    assert!(
        example.contains(block),
        "docs/sql.md's changelog snippet is not a part of the example file:\n{block}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let tagged =
        |tag: &str| -> Vec<&str> { stdout.lines().filter_map(|l| l.strip_prefix(tag)).collect() };
    assert_eq!(
        tagged("totals> "),
        [
            "+I[alice, 1, 10.5]",
            "+I[bob, 1, null]",
            "-U[alice, 1, 10.5]",
            "+U[alice, 2, 17.75]",
            "+I[null, 1, 3.0]",
            "-U[bob, 1, null]",
            "+U[bob, 2, 20.0]",
            "-U[alice, 2, 17.75]",
            "+U[alice, 3, 18.75]",
        ]
    );
    let changes = tagged("located> ").into_iter().map(|l| {
        let kind = fjord_sql::changelog::RowKind::parse(&l[..2]).expect("a change kind");
        (kind, l[2..].to_string())
    });
    let table = fjord_sql::changelog::materialize(changes).unwrap();
    let rows: Vec<&str> = table.keys().map(String::as_str).collect();
    assert_eq!(
        rows,
        [
            "[1, alice, paris]",
            "[2, bob, oslo]",
            "[3, alice, paris]",
            "[4, null, null]",
            "[5, bob, oslo]",
            "[6, alice, paris]",
        ]
    );
    assert!(table.values().all(|n| *n == 1), "{table:?}");
}

/// The rows of `identifier` in print-connector output at parallelism 2, sorted.
fn printed_rows<'a>(stdout: &'a str, identifier: &str) -> Vec<&'a str> {
    let mut rows: Vec<&str> = stdout
        .lines()
        .filter_map(|l| {
            let (tag, row) = l.split_once("> ")?;
            (tag == format!("{identifier}:1") || tag == format!("{identifier}:2")).then_some(row)
        })
        .collect();
    rows.sort_unstable();
    rows
}

#[test]
fn the_top_n_example_prints_the_best_orders_and_the_last_order_per_window() {
    let out = fjord(&["sql", "-f", "examples/sql/top_orders.sql"], &repo_root());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        10,
        "five ranked rows and five last orders:\n{stdout}"
    );
    assert_eq!(
        printed_rows(&stdout, "top"),
        [
            "+I[2024-01-01T00:00:10, 1, 10.5, 1]",
            "+I[2024-01-01T00:00:10, 3, 7.25, 2]",
            "+I[2024-01-01T00:00:20, 4, 3.0, 2]",
            "+I[2024-01-01T00:00:20, 5, 20.0, 1]",
            "+I[2024-01-01T00:00:30, 6, 1.0, 1]",
        ]
    );
    assert_eq!(
        printed_rows(&stdout, "last"),
        [
            "+I[2024-01-01T00:00:10, alice, 3]",
            "+I[2024-01-01T00:00:10, bob, 2]",
            "+I[2024-01-01T00:00:20, bob, 5]",
            "+I[2024-01-01T00:00:20, null, 4]",
            "+I[2024-01-01T00:00:30, alice, 6]",
        ]
    );
}

#[test]
fn explain_prints_the_plan_and_runs_nothing() {
    let out = fjord(
        &[
            "sql",
            "--explain",
            "-p",
            "3",
            "-f",
            "examples/sql/windowed_orders.sql",
        ],
        &repo_root(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "Source: orders (connector=filesystem)",
        "[uid sql-source-0-orders,",
        "Watermarks: rowtime=ts",
        "Hash partition by",
        "WindowAggregate: TUMBLE(size=10000 ms)",
        "uid sql-window-agg-",
        "Sink: per_customer (connector=print)",
        "(parallelism 3,",
        "--HASH-->",
    ] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
    assert!(
        !text.contains("+I["),
        "explain must not run the job:\n{text}"
    );
}

#[test]
fn a_script_with_an_unknown_column_exits_2_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.sql");
    std::fs::write(
        &script,
        "CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\n\
         CREATE TABLE o (a INT) WITH ('connector' = 'print');\n\
         INSERT INTO o\n  SELECT b FROM t;\n",
    )
    .unwrap();
    let out = fjord(&["sql", "-f", script.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("bad.sql: line 4, column 10: column 'b' not found; the input has columns: a"),
        "{stderr}"
    );
}

/// The built-in `sql` job (what a StreamJob's `spec.job.sql` runs): `fjord list` shows it,
/// `fjord run sql --file` prints the same rows as `fjord sql -f`, `--script=` takes the text
/// itself (one word: the script starts with a `--` comment), and a script that does not plan exits 2 naming line and column.
#[test]
fn the_builtin_sql_job_runs_a_script_like_fjord_sql() {
    let root = repo_root();
    let list = String::from_utf8(fjord(&["list"], &root).stdout).unwrap();
    assert!(
        list.lines().any(|l| l.starts_with("sql ")),
        "fjord list: {list}"
    );
    let rows = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut rows: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split_once("> ").unwrap().1.to_string())
            .collect();
        rows.sort_unstable();
        rows
    };
    let want = rows(fjord(
        &["sql", "-f", "examples/sql/windowed_orders.sql"],
        &root,
    ));
    assert_eq!(want.len(), 4);
    let by_file = rows(fjord(
        &["run", "sql", "--file", "examples/sql/windowed_orders.sql"],
        &root,
    ));
    assert_eq!(by_file, want);
    let script = std::fs::read_to_string(root.join("examples/sql/windowed_orders.sql")).unwrap();
    assert_eq!(
        rows(fjord(&["run", "sql", &format!("--script={script}")], &root)),
        want
    );

    let bad = fjord(
        &[
            "run",
            "sql",
            &format!("--script={}", script.replace("SUM(amount)", "SUM(amountt)")),
        ],
        &root,
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line ") && stderr.contains("column ") && stderr.contains("amountt"),
        "{stderr}"
    );
    let neither = fjord(&["run", "sql"], &root);
    assert_eq!(neither.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("--script=<text> or --file <path>"));
}
