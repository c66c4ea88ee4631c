//! A user's own worker binary: the same `run`, `jobmanager` and `taskmanager` roles as the
//! `fjord` binary, carrying this crate's jobs. Build an image from it (see the worker
//! Dockerfile, with `PACKAGE=my-fjord-worker BIN=my-worker`) and name a job in a StreamJob.
//!
//! ```text
//! cargo run -p my-fjord-worker -- list
//! cargo run -p my-fjord-worker -- run temperature-alerts --threshold 30
//! cargo run -p my-fjord-worker -- sql -f examples/custom-worker/sql/readings.sql
//! ```
//!
//! It also registers user-defined SQL functions (docs/sql.md, "User-defined functions"):
//! every SQL script this binary plans can call them.

use fjord::{FjordError, JobArgs, JobRegistry, Result, StreamExecutionEnvironment};
use fjord_worker::fjord_sql::types::{DataType, Value};
use fjord_worker::fjord_sql::udf::{
    AggregateFunction, FunctionRegistry, ScalarFunction, TableFunction,
};

/// Readings above a threshold, per sensor, with the highest reading so far.
fn temperature_alerts(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let threshold: i64 = args.get_parsed("threshold", 25)?;
    if !(-50..=150).contains(&threshold) {
        return Err(FjordError::BadArguments(format!(
            "--threshold {threshold} is not a plausible temperature"
        )));
    }
    env.from_generator(Some(1_000), |i| {
        (format!("sensor-{}", i % 3), ((i * 7) % 40) as i64)
    })
    .uid("readings")
    .filter(move |(_, t): &(String, i64)| *t > threshold)
    .key_by(|(sensor, _): &(String, i64)| sensor.clone())
    .max::<1>()
    .uid("highest")
    .print();
    Ok(())
}

/// `spread(x DOUBLE) -> DOUBLE`: the highest minus the lowest value (NULLs skipped; NULL
/// when there is none).
struct Spread;

impl AggregateFunction for Spread {
    /// The lowest and highest value so far (kept in the window's keyed state).
    type Accumulator = Option<(f64, f64)>;

    fn argument_types(&self) -> Vec<DataType> {
        vec![DataType::Double]
    }

    fn result_type(&self) -> DataType {
        DataType::Double
    }

    fn create_accumulator(&self) -> Self::Accumulator {
        None
    }

    fn accumulate(&self, acc: &mut Self::Accumulator, args: &[Value]) {
        if let Value::Double(x) = args[0] {
            let (lo, hi) = acc.unwrap_or((x, x));
            *acc = Some((lo.min(x), hi.max(x)));
        }
    }

    fn merge(&self, acc: &mut Self::Accumulator, other: Self::Accumulator) {
        if let Some((lo, hi)) = other {
            let (a, b) = acc.unwrap_or((lo, hi));
            *acc = Some((a.min(lo), b.max(hi)));
        }
    }

    fn get_value(&self, acc: &Self::Accumulator) -> Value {
        acc.map_or(Value::Null, |(lo, hi)| Value::Double(hi - lo))
    }
}

/// The SQL functions of this binary.
fn functions() -> FunctionRegistry {
    let mut functions = FunctionRegistry::new();
    // A scalar function from a typed closure: fahrenheit(DOUBLE) -> DOUBLE; a NULL
    // argument gives NULL without calling it.
    functions.register_scalar(
        "fahrenheit",
        ScalarFunction::typed(|celsius: f64| celsius * 9.0 / 5.0 + 32.0),
    );
    functions.register_aggregate("spread", Spread);
    // A table function: split_tags('a;b') gives the rows ('a') and ('b').
    functions.register_table(
        "split_tags",
        TableFunction::new(
            &[DataType::String],
            &[("tag", DataType::String)],
            |args, out| {
                if let Value::String(tags) = &args[0] {
                    for tag in tags.split(';').filter(|t| !t.is_empty()) {
                        out.push(vec![Value::String(tag.to_string())]);
                    }
                }
                Ok(())
            },
        ),
    );
    functions
}

fn main() -> std::process::ExitCode {
    let mut jobs = JobRegistry::new();
    jobs.register(
        "temperature-alerts",
        "readings above --threshold per sensor, with the maximum so far",
        temperature_alerts,
    );
    fjord_worker::main_with_functions(jobs, functions())
}
