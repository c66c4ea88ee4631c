//! The UDF API and its planning: signatures from closures, NULL handling, argument checks
//! with positions, unknown names, `CREATE FUNCTION` and `LATERAL TABLE`.

use fjord_sql::ErrorKind;
use fjord_sql::plan::Step;
use fjord_sql::plan_with_functions;
use fjord_sql::types::{DataType, Value};
use fjord_sql::udf::{AggregateFunction, FunctionRegistry, ScalarFunction, TableFunction};

/// A weighted average: SUM(x * w) / SUM(w) over DOUBLEs, skipping NULLs.
struct WeightedAvg;

impl AggregateFunction for WeightedAvg {
    type Accumulator = (f64, f64);
    fn argument_types(&self) -> Vec<DataType> {
        vec![DataType::Double, DataType::Int]
    }
    fn result_type(&self) -> DataType {
        DataType::Double
    }
    fn create_accumulator(&self) -> (f64, f64) {
        (0.0, 0.0)
    }
    fn accumulate(&self, acc: &mut (f64, f64), args: &[Value]) {
        if let (Value::Double(x), Value::Int(w)) = (&args[0], &args[1]) {
            acc.0 += x * f64::from(*w);
            acc.1 += f64::from(*w);
        }
    }
    fn merge(&self, acc: &mut (f64, f64), other: (f64, f64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn get_value(&self, acc: &(f64, f64)) -> Value {
        if acc.1 == 0.0 {
            Value::Null
        } else {
            Value::Double(acc.0 / acc.1)
        }
    }
}

/// [`WeightedAvg`] with another accumulator type.
struct WeightedAvgF32;

impl AggregateFunction for WeightedAvgF32 {
    type Accumulator = (f32, f32);
    fn argument_types(&self) -> Vec<DataType> {
        WeightedAvg.argument_types()
    }
    fn result_type(&self) -> DataType {
        DataType::Double
    }
    fn create_accumulator(&self) -> (f32, f32) {
        (0.0, 0.0)
    }
    fn accumulate(&self, _: &mut (f32, f32), _: &[Value]) {}
    fn merge(&self, _: &mut (f32, f32), _: (f32, f32)) {}
    fn get_value(&self, _: &(f32, f32)) -> Value {
        Value::Null
    }
}

fn uid_of(job: &fjord_sql::SqlJob) -> String {
    job.inserts[0]
        .pipeline
        .steps
        .iter()
        .find_map(|s| match s {
            Step::WindowAggregate { uid, .. } => Some(uid.clone()),
            _ => None,
        })
        .expect("a window aggregate")
}

fn registry() -> FunctionRegistry {
    let mut r = FunctionRegistry::new();
    r.register_scalar(
        "mask",
        ScalarFunction::typed(|s: String, keep: i64| {
            let keep = usize::try_from(keep).unwrap_or(0);
            format!("{}***", s.chars().take(keep).collect::<String>())
        }),
    );
    r.register_scalar(
        "or_default",
        ScalarFunction::typed(|s: Option<String>| s.unwrap_or_else(|| "?".into())),
    );
    r.register_scalar(
        "checked_div",
        ScalarFunction::typed(|a: i64, b: i64| {
            a.checked_div(b).ok_or_else(|| format!("{a} / {b}"))
        }),
    );
    r.register_aggregate("weighted_avg", WeightedAvg);
    r.register_table(
        "split",
        TableFunction::new(
            &[DataType::String],
            &[("word", DataType::String), ("len", DataType::Int)],
            |args, out| {
                if let Value::String(s) = &args[0] {
                    for w in s.split(' ').filter(|w| !w.is_empty()) {
                        out.push(vec![Value::String(w.into()), Value::Int(w.len() as i32)]);
                    }
                }
                Ok(())
            },
        ),
    );
    r
}

const TABLES: &str = "CREATE TABLE t (s STRING, n INT, x DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (a STRING) WITH ('connector' = 'blackhole');
";

#[test]
fn typed_closures_declare_their_signature_and_handle_null() {
    let mask = ScalarFunction::typed(|s: String, keep: i64| {
        let keep = usize::try_from(keep).unwrap_or(0);
        format!("{}***", s.chars().take(keep).collect::<String>())
    });
    assert_eq!(mask.signature(), "(STRING, BIGINT) -> STRING");
    assert_eq!(
        mask.call(&[Value::String("alice".into()), Value::BigInt(2)]),
        Ok(Value::String("al***".into()))
    );
    // A NULL for a non-Option argument: NULL without calling.
    assert_eq!(mask.call(&[Value::Null, Value::BigInt(2)]), Ok(Value::Null));
    // An Option argument receives NULL.
    let or_default = ScalarFunction::typed(|s: Option<String>| s.unwrap_or_else(|| "?".into()));
    assert_eq!(
        or_default.call(&[Value::Null]),
        Ok(Value::String("?".into()))
    );
    // A Result's error is the call's error; an Option result may be NULL.
    let div = ScalarFunction::typed(|a: i64, b: i64| {
        a.checked_div(b).ok_or_else(|| format!("{a} / {b}"))
    });
    assert_eq!(
        div.call(&[Value::BigInt(1), Value::BigInt(0)]),
        Err("1 / 0".to_string())
    );
    let half = ScalarFunction::typed(|a: i32| (a % 2 == 0).then_some(a / 2));
    assert_eq!(half.signature(), "(INT) -> INT");
    assert_eq!(half.call(&[Value::Int(3)]), Ok(Value::Null));
    assert_eq!(half.call(&[Value::Int(4)]), Ok(Value::Int(2)));
}

#[test]
fn a_scalar_call_is_typed_and_widened_at_plan_time() {
    let job = plan_with_functions(
        &format!("{TABLES}INSERT INTO out SELECT mask(s, n) FROM t;"),
        &registry(),
    )
    .unwrap();
    let Step::Calc { projection, .. } = &job.inserts[0].pipeline.steps[0] else {
        panic!("{:?}", job.inserts[0].pipeline.steps)
    };
    // n (INT) is widened to the declared BIGINT.
    assert_eq!(projection[0].to_string(), "MASK($0, CAST($1 AS BIGINT))");
    let row = vec![
        Value::String("bob".into()),
        Value::Int(1),
        Value::Null,
        Value::Null,
    ];
    assert_eq!(projection[0].eval(&row), Ok(Value::String("b***".into())));
}

#[test]
fn bad_calls_name_the_line_column_and_what_to_do() {
    for (select, kind, column, needle) in [
        (
            "mask(n, n)",
            ErrorKind::TypeMismatch,
            29,
            "argument 1 of MASK (STRING, BIGINT) -> STRING must be STRING, found INT; CAST it AS STRING",
        ),
        (
            "mask(s)",
            ErrorKind::TypeMismatch,
            24,
            "takes 2 argument(s)",
        ),
        (
            "maks(s, 1)",
            ErrorKind::UnknownFunction,
            24,
            "did you mean MASK?",
        ),
        // Without GROUP BY an aggregate is one global group (an updating result, as in
        // Flink): here its DOUBLE does not fit the sink's STRING column.
        (
            "weighted_avg(x, n)",
            ErrorKind::TypeMismatch,
            13,
            "is DOUBLE but sink column 'a' is STRING",
        ),
        (
            "split(s)",
            ErrorKind::TypeMismatch,
            24,
            "LATERAL TABLE(SPLIT(...))",
        ),
    ] {
        let e = plan_with_functions(
            &format!("{TABLES}INSERT INTO out SELECT {select} FROM t;"),
            &registry(),
        )
        .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.kind(), Some(kind), "{select}: {text}");
        assert!(
            text.starts_with(&format!("line 3, column {column}:")),
            "{select}: {text}"
        );
        assert!(text.contains(needle), "{select}: {text}");
    }
    // Without the registry the same name is unknown, and the message says how to register.
    let e = fjord_sql::plan(&format!(
        "{TABLES}INSERT INTO out SELECT mask(s, 1) FROM t;"
    ))
    .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::UnknownFunction));
    assert!(e.to_string().contains("User-defined functions"), "{e}");
}

#[test]
fn an_aggregate_is_a_window_aggregate_call_with_its_accumulator_in_the_uid() {
    let script = format!(
        "{TABLES}CREATE TABLE agg_out (s STRING, w DOUBLE) WITH ('connector' = 'blackhole');
INSERT INTO agg_out SELECT s, weighted_avg(x, n) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, s;"
    );
    let job = plan_with_functions(&script, &registry()).unwrap();
    let explain = job.explain();
    assert!(explain.contains("aggs=[WEIGHTED_AVG($2, $1)]"), "{explain}");
    let Some(Step::WindowAggregate { aggs, .. }) = job.inserts[0]
        .pipeline
        .steps
        .iter()
        .find(|s| matches!(s, Step::WindowAggregate { .. }))
    else {
        panic!("{explain}")
    };
    // The accumulator's type is part of the plan text the uid hashes.
    let debug = format!("{:?}", aggs[0].user);
    assert!(debug.contains("acc (f64, f64)"), "{debug}");
    let mut other = registry();
    other.register_aggregate("weighted_avg", WeightedAvgF32);
    let changed = plan_with_functions(&script, &other).unwrap();
    assert_ne!(uid_of(&job), uid_of(&changed));
    assert_eq!(
        uid_of(&job),
        uid_of(&plan_with_functions(&script, &registry()).unwrap())
    );
}

#[test]
fn lateral_table_joins_add_the_function_columns() {
    for (from, left_outer) in [
        (", LATERAL TABLE(split(s)) AS T(w, l)", false),
        (" CROSS JOIN LATERAL TABLE(split(s)) AS T(w, l)", false),
        (
            " LEFT JOIN LATERAL TABLE(split(s)) AS T(w, l) ON TRUE",
            true,
        ),
    ] {
        let job = plan_with_functions(
            &format!("{TABLES}INSERT INTO out SELECT CONCAT(T.w, CAST(l AS STRING)) FROM t{from};"),
            &registry(),
        )
        .unwrap_or_else(|e| panic!("{from}: {e}"));
        let steps = &job.inserts[0].pipeline.steps;
        assert!(
            matches!(&steps[0], Step::Lateral { left_outer: l, args, .. } if *l == left_outer && args.len() == 1),
            "{from}: {steps:?}"
        );
    }
    for (from, kind, needle) in [
        (
            " LEFT JOIN LATERAL TABLE(split(s)) AS T(w, l) ON n > 1",
            ErrorKind::Unsupported,
            "ON TRUE",
        ),
        (
            ", LATERAL TABLE(split(s)) AS T(w)",
            ErrorKind::TypeMismatch,
            "returns 2 column(s) (word STRING, len INT), but AS T(...) names 1",
        ),
        (
            ", LATERAL TABLE(split(s)) AS T(s, l)",
            ErrorKind::InvalidOption,
            "already has a column 's'",
        ),
        (
            ", LATERAL TABLE(mask(s, 1)) AS T(w)",
            ErrorKind::TypeMismatch,
            "not a table function",
        ),
        (
            ", LATERAL TABLE(split(n)) AS T(w, l)",
            ErrorKind::TypeMismatch,
            "must be STRING, found INT",
        ),
    ] {
        let e = plan_with_functions(
            &format!("{TABLES}INSERT INTO out SELECT s FROM t{from};"),
            &registry(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), Some(kind), "{from}: {e}");
        assert!(e.to_string().contains(needle), "{from}: {e}");
        assert!(e.to_string().starts_with("line 3, column "), "{from}: {e}");
    }
}

#[test]
fn create_function_aliases_a_registered_function_and_refuses_classes() {
    let script = format!(
        "CREATE TEMPORARY FUNCTION hide AS 'mask';\n{TABLES}INSERT INTO out SELECT hide(s, 2) FROM t;"
    );
    let job = plan_with_functions(&script, &registry()).unwrap();
    assert!(
        job.explain().contains("MASK($0, CAST(2 AS BIGINT))"),
        "{}",
        job.explain()
    );
    for (statement, kind, needle) in [
        (
            "CREATE FUNCTION hide AS 'com.example.Mask';",
            ErrorKind::UnknownFunction,
            "looks like a Java class",
        ),
        (
            "CREATE FUNCTION hide AS 'nope';",
            ErrorKind::UnknownFunction,
            "no function 'nope' is registered in this worker binary (registered: CHECKED_DIV, MASK,",
        ),
        (
            "CREATE FUNCTION hide AS 'mask' LANGUAGE PYTHON;",
            ErrorKind::Unsupported,
            "written in Rust",
        ),
        (
            "CREATE FUNCTION upper AS 'mask';",
            ErrorKind::InvalidOption,
            "exists already",
        ),
    ] {
        let e = plan_with_functions(
            &format!("{statement}\n{TABLES}INSERT INTO out SELECT s FROM t;"),
            &registry(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), Some(kind), "{statement}: {e}");
        assert!(e.to_string().contains(needle), "{statement}: {e}");
        assert!(
            e.to_string().starts_with("line 1, column "),
            "{statement}: {e}"
        );
    }
}

#[test]
fn a_view_over_a_lateral_join_keeps_the_rowtime_and_can_be_windowed() {
    let script = format!(
        "{TABLES}CREATE VIEW words AS SELECT ts, w FROM t, LATERAL TABLE(split(s)) AS T(w, l);
CREATE TABLE counts (w STRING, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO counts SELECT w, COUNT(*) FROM TABLE(TUMBLE(TABLE words, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, w;"
    );
    let job = plan_with_functions(&script, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let explain = job.explain();
    assert!(explain.contains("-> LateralJoin: SPLIT($0)"), "{explain}");
    assert!(explain.contains("WindowAggregate: TUMBLE"), "{explain}");
}

/// The window uid of a query without user-defined aggregates is what it was before they
/// existed, so its savepoints still restore: the value main's `fjord sql --explain` printed
/// for this query before this change.
const UID_BEFORE_UDFS: &str = "sql-window-agg-d11b649f91c01b43";

#[test]
fn window_uids_of_builtin_aggregates_did_not_change() {
    let script = format!(
        "{TABLES}CREATE TABLE agg_out (s STRING, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO agg_out SELECT s, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, s;"
    );
    let job = fjord_sql::plan(&script).unwrap();
    assert_eq!(uid_of(&job), UID_BEFORE_UDFS);
}
