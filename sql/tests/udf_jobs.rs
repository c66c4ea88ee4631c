//! User-defined functions in SQL jobs on the embedded mini-cluster: a scalar and a table
//! function (inner and left lateral joins) over a file, and a user-defined aggregate in
//! windows whose accumulators are stopped with a savepoint mid-stream and restored at
//! another parallelism. Expected rows are worked out by hand.

use fjord::StreamExecutionEnvironment;
use fjord_sql::types::{DataType, Value};
use fjord_sql::udf::{AggregateFunction, FunctionRegistry, ScalarFunction, TableFunction};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod common;
use common::{lines_in, stop_once_windows_fired};

/// The sum and count of BIGINTs, as `sum/count` text: a UDAF whose accumulator is a struct.
struct SumCount;

#[derive(Serialize, Deserialize)]
struct SumCountAcc {
    sum: i64,
    count: i64,
}

impl AggregateFunction for SumCount {
    type Accumulator = SumCountAcc;
    fn argument_types(&self) -> Vec<DataType> {
        vec![DataType::BigInt]
    }
    fn result_type(&self) -> DataType {
        DataType::String
    }
    fn create_accumulator(&self) -> SumCountAcc {
        SumCountAcc { sum: 0, count: 0 }
    }
    fn accumulate(&self, acc: &mut SumCountAcc, args: &[Value]) {
        if let Value::BigInt(x) = args[0] {
            acc.sum += x;
            acc.count += 1;
        }
    }
    fn merge(&self, acc: &mut SumCountAcc, other: SumCountAcc) {
        acc.sum += other.sum;
        acc.count += other.count;
    }
    fn get_value(&self, acc: &SumCountAcc) -> Value {
        Value::String(format!("{}/{}", acc.sum, acc.count))
    }
}

fn functions() -> FunctionRegistry {
    let mut f = FunctionRegistry::new();
    f.register_scalar(
        "shout",
        ScalarFunction::typed(|s: String, times: i32| {
            format!("{}{}", s.to_uppercase(), "!".repeat(times.max(0) as usize))
        }),
    );
    f.register_table(
        "words",
        TableFunction::new(
            &[DataType::String],
            &[("word", DataType::String), ("pos", DataType::Int)],
            |args, out| {
                if let Value::String(s) = &args[0] {
                    for (i, w) in s.split_whitespace().enumerate() {
                        out.push(vec![Value::String(w.to_string()), Value::Int(i as i32)]);
                    }
                }
                Ok(())
            },
        ),
    );
    f.register_aggregate("sum_count", SumCount);
    f
}

#[test]
fn scalar_and_table_functions_run_in_a_job_with_null_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.csv");
    // id, text (empty = NULL), times
    std::fs::write(&input, "1,hello big world,1\n2,,2\n3,solo,\n4,   ,3\n").unwrap();
    let (inner, left) = (dir.path().join("inner"), dir.path().join("left"));
    let script = format!(
        "CREATE TABLE lines (id INT, txt STRING, times INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.null-literal' = '');
         CREATE TABLE inner_out (id INT, word STRING, pos INT, loud STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE left_out (id INT, word STRING, loud STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO inner_out
           SELECT id, T.w, T.p, shout(T.w, times) FROM lines, LATERAL TABLE(words(txt)) AS T(w, p)
           WHERE T.p < 2;
         INSERT INTO left_out
           SELECT id, word, shout(txt, 1) FROM lines LEFT JOIN LATERAL TABLE(words(txt)) ON TRUE;",
        input.display(),
        inner.display(),
        left.display()
    );
    let job =
        fjord_sql::plan_with_functions(&script, &functions()).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("udf test").unwrap();
    // Row 1 has three words (the WHERE keeps positions 0 and 1); row 3's NULL `times` makes
    // SHOUT NULL (a NULL argument of a non-Option parameter); rows 2 (NULL text) and 4 (only
    // spaces) give no words, so the inner join drops them.
    assert_eq!(
        lines_in(&inner),
        ["1,big,1,BIG!", "1,hello,0,HELLO!", "3,solo,0,"]
    );
    // The left join keeps them with NULL columns.
    assert_eq!(
        lines_in(&left),
        [
            "1,big,HELLO BIG WORLD!",
            "1,hello,HELLO BIG WORLD!",
            "1,world,HELLO BIG WORLD!",
            "2,,",
            "3,solo,SOLO!",
            "4,,   !",
        ]
    );
}

#[test]
fn a_failing_scalar_function_fails_the_job_naming_it() {
    let mut f = FunctionRegistry::new();
    f.register_scalar(
        "strict_div",
        ScalarFunction::typed(|a: i64, b: i64| a.checked_div(b).ok_or("division by zero")),
    );
    let script = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '3');
         CREATE TABLE out (q BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO out SELECT strict_div(10, id) FROM src;";
    let job = fjord_sql::plan_with_functions(script, &f).unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    fjord_sql::build(&job, &env).unwrap();
    let e = env.execute("failing udf").unwrap_err().to_string();
    assert!(
        e.contains("user-defined function STRICT_DIV: division by zero"),
        "{e}"
    );
}

/// (window_start, k, count, sum, udaf text) of the CSV files in `dir`.
fn window_rows(dir: &Path) -> Vec<(String, i64, u64, u64, String)> {
    lines_in(dir)
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_user_aggregate_is_restored_from_a_savepoint_at_another_parallelism_without_loss() {
    const N: u64 = 6000;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let savepoints = dir.path().join("savepoints");
    // 1000 rows/s of wall-clock event time: the job runs ~6 s and is stopped in the middle,
    // with windows open (their SUM_COUNT accumulators are in the savepoint).
    let script = |parallelism: usize| {
        format!(
            "SET 'parallelism.default' = '{parallelism}';
             SET 'execution.checkpointing.interval' = '200ms';
             CREATE TABLE gen (id BIGINT, k INT, ts TIMESTAMP(3),
                               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
               WITH ('connector' = 'datagen', 'rows-per-second' = '1000',
                     'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{N}',
                     'fields.k.min' = '0', 'fields.k.max' = '5');
             CREATE TABLE sums (ws TIMESTAMP(3), k INT, cnt BIGINT, ids BIGINT, sc STRING)
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             INSERT INTO sums
             SELECT window_start, k, COUNT(*), SUM(id), sum_count(id)
             FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '1' SECOND))
             GROUP BY window_start, window_end, k;",
            out.display()
        )
    };
    let start = |parallelism: usize, savepoint: Option<&str>| {
        let job = fjord_sql::plan_with_functions(&script(parallelism), &functions()).unwrap();
        let env = StreamExecutionEnvironment::new();
        fjord_sql::build(&job, &env).unwrap();
        if let Some(path) = savepoint {
            env.restore_from(path, false);
        }
        env
    };

    let savepoint = stop_once_windows_fired(start(2, None), &out, &savepoints);
    let first: u64 = window_rows(&out).iter().map(|r| r.2).sum();
    assert!(
        first > 0 && first < N,
        "stopped in the middle: {first} of {N}"
    );

    start(3, Some(&savepoint)).execute("second half").unwrap();
    let rows = window_rows(&out);
    // Every window's UDAF result equals the built-in SUM and COUNT of the same rows, also
    // for the windows that were open at the savepoint (their accumulators were restored).
    for (ws, k, cnt, ids, sc) in &rows {
        assert_eq!(sc, &format!("{ids}/{cnt}"), "window {ws} key {k}");
    }
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), N, "every row once");
    assert_eq!(
        rows.iter().map(|r| r.3).sum::<u64>(),
        N * (N + 1) / 2,
        "every id once"
    );
    let mut windows: Vec<(&String, i64)> = rows.iter().map(|r| (&r.0, r.1)).collect();
    windows.sort();
    let before = windows.len();
    windows.dedup();
    assert_eq!(windows.len(), before, "no window fired twice");
}
